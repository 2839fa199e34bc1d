"""Releases: every rollout that completed leaves a record on its task definition revision's
tags (no state file): the git commit, the image digest, the schema head it was built for,
when, who or what ran it, and how long the rollout took. `releases` lists them; `rollback`
redeploys one.

ECS tag values allow letters, digits, spaces and `+ - = . _ : / @`, 256 characters at most.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from deployer.aws import call

if TYPE_CHECKING:
    from deployer.steps.base import Run

PREFIX = "nnote:release-"
# The newest revisions `releases` reads (one DescribeTaskDefinition each).
LOOK_BACK = 25


@dataclass(frozen=True)
class Release:
    revision: int
    arn: str
    commit: str
    image: str
    at: str
    by: str
    seconds: float | None
    serving: bool = False
    schema: str | None = None  # the Alembic head its code expects; None: not recorded
    snapshot: str | None = None  # the snapshot taken before its migration, if any

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "task_definition": self.arn,
            "commit": self.commit,
            "image": self.image,
            "released_at": self.at,
            "released_by": self.by,
            "rollout_seconds": self.seconds,
            "serving": self.serving,
            "schema": self.schema,
            "snapshot": self.snapshot,
        }


def record(
    image: str, commit: str | None, seconds: float, schema: str | None = None
) -> list[dict[str, str]]:
    """The tags that make a revision a release."""
    fields = {
        "commit": commit or os.environ.get("GITHUB_SHA", "")[:12] or "unknown",
        "image": image.rsplit("@", 1)[-1] if "@" in image else image,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "by": actor(),
        "seconds": f"{seconds:.1f}",
        "schema": schema or "unknown",
    }
    return [{"key": PREFIX + key, "value": _tag_value(value)} for key, value in fields.items()]


def actor() -> str:
    """Who or what ran the rollout: the GitHub workflow run, or user@host."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return (
            f"github {os.environ.get('GITHUB_ACTOR', '?')} "
            f"{os.environ.get('GITHUB_WORKFLOW', '')} run {os.environ.get('GITHUB_RUN_ID', '?')}"
        )
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _tag_value(value: str) -> str:
    return re.sub(r"[^\w +\-=.:/@]", "_", value)[:256]


def parse(
    task: dict[str, Any], tags: list[dict[str, str]] | None, serving: str | None
) -> Release | None:
    values = {
        t["key"][len(PREFIX) :]: t["value"] for t in tags or [] if t["key"].startswith(PREFIX)
    }
    if "at" not in values:
        return None
    seconds = values.get("seconds")
    return Release(
        revision=int(task["revision"]),
        arn=str(task["taskDefinitionArn"]),
        commit=values.get("commit", "?"),
        image=values.get("image", "?"),
        at=values["at"],
        by=values.get("by", "?"),
        seconds=float(seconds) if seconds and _is_number(seconds) else None,
        serving=task["taskDefinitionArn"] == serving,
        schema=None if values.get("schema", "unknown") == "unknown" else values["schema"],
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def list_releases(run: Run, serving: str | None) -> list[Release]:
    """The recorded releases among the family's newest active revisions, newest first."""
    family = run.config.prefix
    arns = call(
        run.aws,
        "ecs",
        "list_task_definitions",
        familyPrefix=family,
        status="ACTIVE",
        sort="DESC",
        maxResults=LOOK_BACK,
    )["taskDefinitionArns"]
    found = []
    for arn in arns:
        if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] != family:  # familyPrefix is a prefix
            continue
        answer = call(
            run.aws, "ecs", "describe_task_definition", taskDefinition=arn, include=["TAGS"]
        )
        release = parse(answer["taskDefinition"], answer.get("tags"), serving)
        if release is not None:
            found.append(release)
    return sorted(found, key=lambda r: r.revision, reverse=True)
