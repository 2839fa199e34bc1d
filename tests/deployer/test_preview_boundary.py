"""The previews' task boundary (deployer/boundary.py, docs/iam-task-boundary-preview.json): a
preview's task and execution roles carry it, and it keeps staging's and prod's secrets, logs
and images out of their reach whatever policy the preview role puts on them, judged as AWS
would (tests/support/iam_policy.py) on the documents and on what the emulator holds."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from deployer import boundary, pipeline
from deployer.preview_policy import NAMES, preview_boundary, rendered_boundary
from deployer.steps.runtime import TASK_TRUST
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.sweep import QuietEvents
from tests.deployer.test_policy import StateOfOurs
from tests.deployer.test_preview_role import PREVIEW_FILE
from tests.deployer.test_previews import FUTURE, _preview_run
from tests.support.iam_policy import AuthRequest, BotoLookup, Call, authorizations, evaluate
from tests.support.realism import Realism

ACCOUNT = "123456789012"
TASK_BOUNDARY: dict[str, Any] = json.loads((ROOT / "docs" / "iam-task-boundary.json").read_text())
PREVIEW_BOUNDARY_FILE = ROOT / "docs" / "iam-task-boundary-preview.json"
PREVIEW_BOUNDARY = preview_boundary(TASK_BOUNDARY)  # what bootstrap installs
WIDER = f"arn:aws:iam::{ACCOUNT}:policy/nnote-deploy-boundary"
NARROWER = f"arn:aws:iam::{ACCOUNT}:policy/nnote-preview-deploy-boundary"
RDS_TAG = "aws:rds:primaryDBInstanceArn"  # what RDS tags the secret it manages with


def instance(name: str) -> str:
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{name}"


def test_the_preview_boundary_file_is_the_task_boundary_narrowed() -> None:
    regenerate = (
        "uv run --frozen python -c 'import json; from deployer.preview_policy import "
        'rendered_boundary; print(rendered_boundary(json.load(open("docs/iam-task-boundary.json"'
        '))), end="")\' > docs/iam-task-boundary-preview.json'
    )
    assert PREVIEW_BOUNDARY_FILE.read_text() == rendered_boundary(TASK_BOUNDARY), regenerate
    assert boundary.preview_document() == PREVIEW_BOUNDARY


def test_the_preview_rules_rename_the_boundary_deployer_boundary_names() -> None:
    """The deploy policy's boundary ARNs become the previews' under the same rules as names."""
    wider, narrower = boundary.name("nnote"), boundary.preview_name("nnote")
    assert NAMES[f"policy/{wider}"] == f"policy/{narrower}"


def test_the_preview_boundary_wants_rds_secrets_in_a_statement_of_their_own() -> None:
    """A condition holds for every resource of its statement: the instance tag on a statement
    listing `nnote/*` too would refuse a preview its own SECRET_KEY."""
    mixed = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Both",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [
                    "arn:aws:secretsmanager:*:*:secret:nnote/*",
                    "arn:aws:secretsmanager:*:*:secret:rds!db-*",
                ],
            }
        ],
    }
    with pytest.raises(ValueError, match="Both: the RDS-managed secrets need a statement"):
        preview_boundary(mixed)


class SecretTaggedAs(StateOfOurs):
    """The secret read exists with these tags (RDS's on the secrets it manages)."""

    def __init__(self, tags: dict[str, str]) -> None:
        self._tags = tags

    def tags(self, arn: str) -> dict[str, str] | None:
        return dict(self._tags)


def reads(policy: dict[str, Any], secret: str, tags: dict[str, str]) -> bool:
    call = Call("secretsmanager", "GetSecretValue", {"SecretId": secret}, REGION)
    requests = authorizations(call, SecretTaggedAs(tags))
    return bool(requests) and all(evaluate(policy, request) for request in requests)


DATABASE_SECRET = "rds!db-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
SECRETS = [
    ("a preview's SECRET_KEY", "nnote/pr-5/secret-key", {}, True),
    ("staging's SECRET_KEY", "nnote/staging/secret-key", {}, False),
    ("prod's SECRET_KEY", "nnote/prod/secret-key", {}, False),
    ("a preview's database password", DATABASE_SECRET, {RDS_TAG: instance("nnote-pr-5")}, True),
    ("staging's database password", DATABASE_SECRET, {RDS_TAG: instance("nnote-staging")}, False),
    ("prod's database password", DATABASE_SECRET, {RDS_TAG: instance("nnote-prod")}, False),
    ("a database password without RDS's tag", DATABASE_SECRET, {}, False),
]


@pytest.mark.parametrize(("what", "secret", "tags", "preview_reads"), SECRETS)
def test_the_preview_boundary_reads_only_previews_secrets(
    what: str, secret: str, tags: dict[str, str], preview_reads: bool
) -> None:
    """What the boundary of every environment allows a task (so the preview's did too, before
    previews had their own), the previews' allows only for previews' secrets."""
    assert reads(TASK_BOUNDARY, secret, tags), what
    assert reads(PREVIEW_BOUNDARY, secret, tags) == preview_reads, what


@pytest.mark.parametrize(
    ("action", "resource", "preview_may"),
    [
        ("logs:PutLogEvents", "log-group:/nnote/nnote-pr-5:log-stream:app/app/1", True),
        ("logs:PutLogEvents", "log-group:/nnote/nnote-staging:log-stream:app/app/1", False),
        ("ecr:BatchGetImage", "repository/nnote-pr-5", True),
        ("ecr:BatchGetImage", "repository/nnote-staging", False),
    ],
)
def test_the_preview_boundary_writes_and_pulls_only_previews_logs_and_images(
    action: str, resource: str, preview_may: bool
) -> None:
    """Each environment has its own repository (deployer/steps/registry.py: APP-ENV), so a
    preview pulls only from previews' repositories."""
    arn = f"arn:aws:{action.split(':')[0]}:{REGION}:{ACCOUNT}:{resource}"
    assert evaluate(TASK_BOUNDARY, AuthRequest(action, arn, {}))
    assert evaluate(PREVIEW_BOUNDARY, AuthRequest(action, arn, {})) == preview_may


# -- against the emulator ---------------------------------------------------------------------


def iam() -> Any:
    return boto3.client("iam", region_name=REGION)


def boundary_of(role: str) -> str:
    return str(
        iam().get_role(RoleName=role)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"]
    )


def roles(env: str) -> list[str]:
    return [f"nnote-{env}-task", f"nnote-{env}-execution"]


def held(arn: str) -> Any:
    """A policy's document as IAM holds it (what bootstrap made)."""
    version = iam().get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam().get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def secrets_of(env: str) -> list[str]:
    """The environment's two secrets: RDS's for its database password, and SECRET_KEY's."""
    rds = boto3.client("rds", region_name=REGION)
    (db,) = rds.describe_db_instances(DBInstanceIdentifier=f"nnote-{env}")["DBInstances"]
    app = boto3.client("secretsmanager", region_name=REGION).describe_secret(
        SecretId=f"nnote/{env}/secret-key"
    )
    return [db["MasterUserSecret"]["SecretArn"], app["ARN"]]


def test_a_previews_roles_carry_the_preview_boundary_which_keeps_stagings_secrets_out(
    cli: Any,
) -> None:
    """`up` of staging and of a preview (the CLI, its pre-flight checks too) with the deploy
    role: staging's roles keep the boundary of every environment, the preview's get the
    previews', and that one, as IAM holds it, lets the preview's roles read the preview's two
    secrets (tagged by the emulator's RDS as AWS's tags them) and neither of staging's."""
    pipeline.up(
        make_run("staging"), QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    )
    done = cli("up", "--yes", "--env", "pr-7")
    assert done.code == 0, done.text
    assert [boundary_of(role) for role in roles("staging")] == [WIDER, WIDER]
    assert [boundary_of(role) for role in roles("pr-7")] == [NARROWER, NARROWER]

    lookup = BotoLookup(REGION)

    def readable(policy: Any, secret: str) -> bool:
        call = Call("secretsmanager", "GetSecretValue", {"SecretId": secret}, REGION)
        return all(evaluate(policy, request) for request in authorizations(call, lookup))

    narrower, wider = held(NARROWER), held(WIDER)
    assert narrower == PREVIEW_BOUNDARY
    assert [readable(narrower, s) for s in secrets_of("pr-7")] == [True, True]
    assert [readable(narrower, s) for s in secrets_of("staging")] == [False, False]
    assert [readable(wider, s) for s in secrets_of("staging")] == [True, True]


def test_a_preview_role_made_with_the_wider_boundary_gets_the_previews_from_the_preview_role(
    aws_env: dict[str, str], realism: Realism, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preview made before previews had a boundary of their own: `up`, run with the preview
    role (the deployer's key held to docs/iam-policy-preview.json), plans the change and puts
    the previews' boundary on its roles before granting them anything."""
    run = _preview_run("pr-8", FUTURE)
    iam().create_role(
        RoleName="nnote-pr-8-task",
        AssumeRolePolicyDocument=json.dumps(TASK_TRUST),
        Tags=run.owner.tags("runtime"),
        PermissionsBoundary=WIDER,
    )
    monkeypatch.setattr(realism, "policy", PREVIEW_FILE)
    steps = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    changes = {(c.action, c.name, c.detail) for c in pipeline.plan(run, steps)}
    assert ("update", "nnote-pr-8-task", "boundary nnote-preview-deploy-boundary") in changes
    pipeline.up(_preview_run("pr-8", FUTURE), QuietEvents(), steps=steps)
    assert [boundary_of(role) for role in roles("pr-8")] == [NARROWER, NARROWER]
    assert pipeline.plan(_preview_run("pr-8", FUTURE), steps) == []
