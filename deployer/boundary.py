"""The permissions boundaries of the roles nnote-deploy makes for the app's tasks.

The deploy role creates the task and execution roles and puts policies on them. Unbounded,
it could give such a role any permission and run code with it (a task), or make a role it can
assume itself: it would be an administrator. So every role it makes carries a boundary, made
once per account by `nnote-deploy bootstrap` (an administrator), and docs/iam-policy.json lets
the deploy role create or change a role only with a boundary on. Whatever policy a task role
gets, it can never do more than its boundary allows: pull the app's images, write its logs,
read its secrets.

There are two. `{app}-deploy-boundary` (docs/iam-task-boundary.json) bounds every ordinary
environment's roles. A preview's (`pr-N`, made from the [preview] template) carry
`{app}-preview-deploy-boundary` instead (made by `bootstrap --preview-env`): the same document
narrowed to previews by deployer/preview_policy.py's naming rules, so a preview's task reads
only previews' secrets (`nnote/pr-*`, and the RDS-managed secrets of `nnote-pr-*` instances,
told apart by the tag RDS puts on them), writes only previews' logs and pulls only previews'
images (docs/iam-task-boundary-preview.json is the result, kept equal to it by a test). The
preview role may create or change roles only with that one on, so whoever can push a branch
cannot give a preview's task staging's or prod's database password; the deploy role may use
either (an operator may deploy a preview with it).
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

from deployer import preview_policy
from deployer.aws import Aws
from deployer.errors import DeployError

FILE = "iam-task-boundary.json"  # the wheel carries docs/ files beside this module


def name(app: str) -> str:
    return f"{app}-deploy-boundary"


def preview_name(app: str) -> str:
    return f"{app}-preview-deploy-boundary"


def name_for(app: str, preview: bool) -> str:
    """The boundary of an environment's roles: a preview's own, or the one of all others."""
    return preview_name(app) if preview else name(app)


def arn(aws: Aws, app: str, preview: bool = False) -> str:
    """The boundary policy's ARN in the caller's account and partition."""
    identity = aws.identity()
    partition = identity["arn"].split(":")[1]
    return f"arn:{partition}:iam::{identity['account']}:policy/{name_for(app, preview)}"


def document() -> dict[str, Any]:
    return packaged_document(FILE)


def preview_document() -> dict[str, Any]:
    """docs/iam-task-boundary-preview.json, derived here as bootstrap installs it."""
    return preview_policy.preview_boundary(document())


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
