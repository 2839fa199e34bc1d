"""The committed IAM policy allows every AWS call the deployer makes, and nothing it does not."""

from __future__ import annotations

import fnmatch
import json

from deployer import pipeline
from tests.deployer.conftest import PREBUILT_IMAGE, ROOT, make_run
from tests.deployer.sweep import QuietEvents

# boto3 client names whose IAM action prefix differs.
IAM_PREFIX = {"resourcegroupstaggingapi": "tag", "elbv2": "elasticloadbalancing"}


def policy_actions() -> list[str]:
    document = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
    return [action for statement in document["Statement"] for action in statement["Action"]]


def test_policy_covers_every_call_of_up_plan_status_and_down(aws_env: dict[str, str]) -> None:
    run = make_run()
    pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    pipeline.plan(run, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    pipeline.status(run)
    pipeline.down(run, QuietEvents())
    allowed = policy_actions()
    used = {
        f"{IAM_PREFIX.get(name.split(':')[0], name.split(':')[0])}:{name.split(':')[1]}"
        for name in run.aws.log.calls
    }
    missing = sorted(a for a in used if not any(fnmatch.fnmatchcase(a, p) for p in allowed))
    assert missing == [], f"add to docs/iam-policy.json: {missing}"
    assert "*" not in allowed and not any(a.endswith(":*") for a in allowed), "least privilege"
