"""The permissions boundary of the roles nnote-deploy makes for the app's tasks.

The deploy role creates the task and execution roles and puts policies on them. Unbounded,
it could give such a role any permission and run code with it (a task), or make a role it can
assume itself: it would be an administrator. So every role it makes carries this boundary,
made once per account by `nnote-deploy bootstrap` (an administrator), and
docs/iam-policy.json lets the deploy role create or change a role only with the boundary on.
Whatever policy a task role gets, it can never do more than docs/iam-task-boundary.json
allows: pull the app's images, write its logs, read its secrets.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

from deployer.aws import Aws
from deployer.errors import DeployError

FILE = "iam-task-boundary.json"  # the wheel carries docs/ files beside this module


def name(app: str) -> str:
    return f"{app}-deploy-boundary"


def arn(aws: Aws, app: str) -> str:
    """The boundary policy's ARN in the caller's account and partition."""
    identity = aws.identity()
    partition = identity["arn"].split(":")[1]
    return f"arn:{partition}:iam::{identity['account']}:policy/{name(app)}"


def document() -> dict[str, Any]:
    return packaged_document(FILE)


def packaged_document(file: str) -> dict[str, Any]:
    """A policy document from docs/: packaged beside this module in a wheel, else the
    checkout's."""
    packaged = importlib.resources.files("deployer").joinpath(file)
    checkout = Path(__file__).resolve().parents[1] / "docs" / file
    try:
        source = packaged if packaged.is_file() else checkout
        return dict(json.loads(source.read_text(encoding="utf-8")))
    except OSError as error:
        raise DeployError(
            f"the policy {file} cannot be read: {error}",
            "reinstall nnote-deploy, or run it from a checkout of the repository",
        ) from None
