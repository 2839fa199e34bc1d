"""The preview role's policy (deployer/preview_policy.py, docs/iam-policy-preview.json): every
call of the preview workflow's commands (`up`, `status`, `cost`, `down`, `gc`) is allowed, as
AWS would authorize it (tests/support/iam_policy.py, through the realism layer), and the same
calls on staging's resources are refused: a branch's workflow cannot reach staging or prod."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deployer import pipeline
from deployer.preview_policy import (
    LEFT_OUT,
    NOT_NARROWED,
    is_preview_only,
    preview_policy,
    rendered,
)
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.faults import snapshot
from tests.deployer.sweep import QuietEvents
from tests.deployer.test_policy import CERTIFICATE, DISTRIBUTION, LB, TAGS, StateOfOurs
from tests.deployer.test_previews import PAST, _commands, _deploy_preview, _rows_of, _workflow
from tests.support.iam_policy import Call, authorizations, evaluate, lint
from tests.support.realism import Realism

DEPLOY: dict[str, Any] = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
PREVIEW_FILE = ROOT / "docs" / "iam-policy-preview.json"
# What bootstrap installs (the realism layer reads PREVIEW_FILE, kept equal to it below).
PREVIEW = preview_policy(DEPLOY)
PREVIEW_KEY = "AKIANNOTEPREVIEW0001"  # what the preview role's runs sign with here
AS_PREVIEW_ROLE = {"AWS_ACCESS_KEY_ID": PREVIEW_KEY, "AWS_SECRET_ACCESS_KEY": PREVIEW_KEY}
BOUNDARY_ARN = "arn:aws:iam::*:policy/nnote-deploy-boundary"
PREVIEW_BOUNDARY_ARN = "arn:aws:iam::*:policy/nnote-preview-deploy-boundary"


def test_the_preview_policy_file_is_the_deploy_policy_narrowed() -> None:
    regenerate = (
        "uv run --frozen python -c 'import json; from deployer.preview_policy import rendered; "
        'print(rendered(json.load(open("docs/iam-policy.json"))), end="")\' '
        "> docs/iam-policy-preview.json"
    )
    assert PREVIEW_FILE.read_text() == rendered(DEPLOY), f"out of date: {regenerate}"


def test_every_preview_statement_reaches_only_previews_or_says_why_not() -> None:
    wide = [s["Sid"] for s in PREVIEW["Statement"] if not is_preview_only(s)]
    assert sorted(wide) == sorted(NOT_NARROWED), "narrow it, or say why not in NOT_NARROWED"
    sids = {s["Sid"] for s in DEPLOY["Statement"]}
    assert sids >= LEFT_OUT and not LEFT_OUT & {s["Sid"] for s in PREVIEW["Statement"]}


def test_the_preview_policy_passes_the_linter_and_fits_the_role() -> None:
    from deployer.bootstrap import MANAGED_POLICIES_PER_ROLE, policy_chunks

    assert lint(PREVIEW) == []
    assert len(policy_chunks(PREVIEW)) <= MANAGED_POLICIES_PER_ROLE


def test_names_become_the_previews_and_our_tag_conditions_gain_the_env() -> None:
    statement = {
        "Sid": "S",
        "Effect": "Allow",
        "Action": ["ecs:RunTask"],
        "Resource": [
            "arn:aws:ecs:*:*:service/nnote-*/nnote-*",
            "arn:aws:logs:*:*:log-group:/nnote/*:log-stream:*",
            "arn:aws:secretsmanager:*:*:secret:nnote/*",
            "arn:aws:ssm:*:*:parameter/nnote-deploy/*",
            "arn:aws:iam::*:policy/nnote-deploy-boundary",
        ],
        "Condition": {
            "StringEquals": {"aws:ResourceTag/nnote:managed-by": "nnote-deploy"},
            "StringEqualsIfExists": {"aws:RequestTag/nnote:managed-by": "nnote-deploy"},
            "StringLike": {"aws:RequestTag/nnote:app": ["nnote", "nnote-*"]},
            "ArnLike": {
                "ecs:cluster": "arn:aws:ecs:*:*:cluster/nnote-*",
                "iam:PermissionsBoundary": [BOUNDARY_ARN, PREVIEW_BOUNDARY_ARN],
            },
        },
    }
    (narrowed,) = preview_policy({"Version": "2012-10-17", "Statement": [statement]})["Statement"]
    assert narrowed["Resource"] == [
        "arn:aws:ecs:*:*:service/nnote-pr-*/nnote-pr-*",
        "arn:aws:logs:*:*:log-group:/nnote/nnote-pr-*:log-stream:*",
        "arn:aws:secretsmanager:*:*:secret:nnote/pr-*",
        "arn:aws:ssm:*:*:parameter/nnote-deploy/nnote/pr-*",
        PREVIEW_BOUNDARY_ARN,  # the task roles' boundary: the previews' own
    ]
    assert narrowed["Condition"] == {
        "StringEquals": {"aws:ResourceTag/nnote:managed-by": "nnote-deploy"},
        "StringEqualsIfExists": {"aws:RequestTag/nnote:managed-by": "nnote-deploy"},
        "StringLike": {
            "aws:RequestTag/nnote:app": ["nnote", "nnote-*"],  # the app tag is left as it is
            "aws:ResourceTag/nnote:env": "pr-*",
        },
        "StringLikeIfExists": {"aws:RequestTag/nnote:env": "pr-*"},
        "ArnLike": {
            "ecs:cluster": "arn:aws:ecs:*:*:cluster/nnote-pr-*",
            "iam:PermissionsBoundary": PREVIEW_BOUNDARY_ARN,  # either boundary: the previews'
        },
    }


# -- staging's resources are out of reach -------------------------------------------------------


class StateOfAPreview(StateOfOurs):
    """Every named resource exists and is ours, of the preview pr-5."""

    def tags(self, arn: str) -> dict[str, str] | None:
        found = super().tags(arn)
        return None if found is None else {**found, "nnote:env": "pr-5"}

    def task_definition_roles(self, arn: str) -> list[str]:
        return [role.replace("staging", "pr-5") for role in super().task_definition_roles(arn)]

    def permissions_boundary(self, role_name: str) -> str | None:
        return "arn:aws:iam::123456789012:policy/nnote-preview-deploy-boundary"


LOCK = "/nnote-deploy/nnote/staging/lock"
STAGING_TAGS = [t for t in TAGS if t["Key"] != "nnote:env"] + [
    {"Key": "nnote:env", "Value": "staging"}
]
# Calls the deployer makes on an environment's resources: named like staging, tagged staging.
ON_STAGING: list[tuple[str, str, dict[str, Any]]] = [
    ("ecs", "UpdateService", {"cluster": "nnote-staging", "service": "nnote-staging"}),
    ("ecs", "DeleteService", {"cluster": "nnote-staging", "service": "nnote-staging"}),
    ("ecs", "RunTask", {"cluster": "nnote-staging", "taskDefinition": "nnote-staging:3"}),
    ("rds", "DeleteDBInstance", {"DBInstanceIdentifier": "nnote-staging"}),
    ("rds", "ModifyDBInstance", {"DBInstanceIdentifier": "nnote-staging"}),
    ("ssm", "PutParameter", {"Name": LOCK, "Value": "{}", "Overwrite": True}),
    ("ssm", "PutParameter", {"Name": LOCK, "Value": "{}", "Tags": STAGING_TAGS}),
    ("ssm", "DeleteParameter", {"Name": LOCK}),
    ("ec2", "DeleteVpc", {"VpcId": "vpc-1"}),  # no name: told apart by its env tag
    ("ec2", "AuthorizeSecurityGroupIngress", {"GroupId": "sg-1", "IpPermissions": []}),
    (
        "ec2",
        "CreateVpc",
        {
            "CidrBlock": "10.0.0.0/16",
            "TagSpecifications": [{"ResourceType": "vpc", "Tags": STAGING_TAGS}],
        },
    ),
    ("elbv2", "DeleteLoadBalancer", {"LoadBalancerArn": LB}),
    ("cloudfront", "DeleteDistribution", {"Id": DISTRIBUTION.rsplit("/", 1)[1], "IfMatch": "E"}),
    ("acm", "DeleteCertificate", {"CertificateArn": CERTIFICATE}),
    (
        "iam",
        "PutRolePolicy",
        {"RoleName": "nnote-staging-task", "PolicyName": "p", "PolicyDocument": "{}"},
    ),
    ("iam", "DeleteRole", {"RoleName": "nnote-staging-task"}),
    ("secretsmanager", "DeleteSecret", {"SecretId": "nnote/staging/secret-key"}),
    ("logs", "DeleteLogGroup", {"logGroupName": "/nnote/nnote-staging"}),
    ("ecr", "BatchDeleteImage", {"repositoryName": "nnote-staging", "imageIds": []}),
    ("cloudwatch", "DeleteAlarms", {"AlarmNames": ["nnote-staging-rollout-5xx"]}),
    # Refused by name alone (no tag condition): staging's logs, lock, tasks and secrets.
    ("logs", "FilterLogEvents", {"logGroupName": "/nnote/nnote-staging"}),
    ("ssm", "GetParameter", {"Name": LOCK}),
    ("ecs", "ListTasks", {"cluster": "nnote-staging"}),
    ("secretsmanager", "DescribeSecret", {"SecretId": "nnote/staging/secret-key"}),
]
IDS = [f"{service}:{operation}" for service, operation, _ in ON_STAGING]


def as_preview(params: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(params).replace("staging", "pr-5")))


def allowed(policy: dict[str, Any], call: Call, state: Any) -> bool:
    requests = authorizations(call, state)
    return bool(requests) and all(evaluate(policy, request) for request in requests)


@pytest.mark.parametrize(("service", "operation", "params"), ON_STAGING, ids=IDS)
def test_the_preview_policy_refuses_on_staging_what_it_allows_on_a_preview(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    staging = Call(service, operation, params, REGION)
    preview = Call(service, operation, as_preview(params), REGION)
    assert allowed(DEPLOY, staging, StateOfOurs()), "the deploy role may (a mapped call)"
    assert not allowed(PREVIEW, staging, StateOfOurs()), "the preview role must not"
    assert allowed(PREVIEW, preview, StateOfAPreview()), "but it may on a preview"


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        (
            "route53",
            "ChangeResourceRecordSets",
            {
                "HostedZoneId": "Z0123456789ABCDEFGHIJ",
                "ChangeBatch": {
                    "Changes": [
                        {
                            "Action": "DELETE",
                            "ResourceRecordSet": {"Name": "notes.example.com.", "Type": "A"},
                        }
                    ]
                },
            },
        ),
        (
            "application-autoscaling",
            "DeregisterScalableTarget",
            {
                "ServiceNamespace": "ecs",
                "ResourceId": "service/nnote-pr-5/nnote-pr-5",
                "ScalableDimension": "ecs:service:DesiredCount",
            },
        ),
    ],
    ids=["route53", "autoscaling"],
)
def test_the_preview_policy_leaves_out_what_cannot_be_told_apart(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    """A record in the user's zone, a scalable target: neither names nor tags say whose, so
    the preview role has neither, even for a preview's own."""
    call = Call(service, operation, params, REGION)
    assert allowed(DEPLOY, call, StateOfOurs()) and not allowed(PREVIEW, call, StateOfAPreview())


# -- the boundary of a preview's roles -------------------------------------------------------

WIDER = "arn:aws:iam::123456789012:policy/nnote-deploy-boundary"
NARROWER = "arn:aws:iam::123456789012:policy/nnote-preview-deploy-boundary"
PREVIEW_TAGS = as_preview({"Tags": STAGING_TAGS})["Tags"]
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


class StateOfAnOlderPreview(StateOfAPreview):
    """A preview made before previews had a boundary of their own: its roles carry the one of
    every environment, which lets a task read staging's and prod's secrets."""

    def permissions_boundary(self, role_name: str) -> str | None:
        return WIDER


def task_role(boundary: str) -> dict[str, Any]:
    return {
        "RoleName": "nnote-pr-5-task",
        "AssumeRolePolicyDocument": "{}",
        "Tags": PREVIEW_TAGS,
        "PermissionsBoundary": boundary,
    }


def give_boundary(boundary: str) -> dict[str, Any]:
    return {"RoleName": "nnote-pr-5-task", "PermissionsBoundary": boundary}


GRANT = {"RoleName": "nnote-pr-5-task", "PolicyName": "p", "PolicyDocument": "{}"}
ATTACH = {"RoleName": "nnote-pr-5-execution", "PolicyArn": EXECUTION_POLICY}
WIDER_FOR_A_PREVIEW = [
    ("make a preview's role with the wider boundary", "CreateRole", task_role(WIDER)),
    (
        "swap a preview's role to the wider boundary",
        "PutRolePermissionsBoundary",
        give_boundary(WIDER),
    ),
    ("grant a preview's role still carrying the wider boundary", "PutRolePolicy", GRANT),
    ("attach the execution policy to it", "AttachRolePolicy", ATTACH),
]


@pytest.mark.parametrize(("what", "operation", "params"), WIDER_FOR_A_PREVIEW)
def test_the_preview_policy_refuses_a_previews_role_the_wider_boundary(
    what: str, operation: str, params: dict[str, Any]
) -> None:
    """The deploy role may give a preview's roles either boundary (an operator may run `up
    --env pr-5` with it); the preview role, only the previews' own, and it can grant nothing
    to a role that still carries the wider one."""
    call = Call("iam", operation, params, REGION)
    assert allowed(DEPLOY, call, StateOfAnOlderPreview()), "the deploy role may"
    assert not allowed(PREVIEW, call, StateOfAnOlderPreview()), what


@pytest.mark.parametrize(
    ("operation", "params", "state"),
    [
        ("CreateRole", task_role(NARROWER), StateOfAPreview()),
        ("PutRolePermissionsBoundary", give_boundary(NARROWER), StateOfAnOlderPreview()),
        ("PutRolePolicy", GRANT, StateOfAPreview()),
        ("AttachRolePolicy", ATTACH, StateOfAPreview()),
    ],
    ids=["create", "narrow an older role", "grant", "attach"],
)
def test_both_policies_give_a_previews_roles_the_preview_boundary(
    operation: str, params: dict[str, Any], state: Any
) -> None:
    call = Call("iam", operation, params, REGION)
    assert allowed(DEPLOY, call, state) and allowed(PREVIEW, call, state)


# -- the preview workflow's commands, run as the preview role ---------------------------------


def test_every_preview_job_assumes_the_preview_role_in_the_preview_environment() -> None:
    for name, job in _workflow()["jobs"].items():
        environment = job["environment"]
        assert (environment if isinstance(environment, str) else environment["name"]) == "preview"
        (credentials,) = [
            s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")
        ]
        assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}", name


def test_the_preview_role_runs_the_preview_workflow_and_leaves_staging_alone(
    cli: Any, realism: Realism, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands of .github/workflows/preview.yml's jobs (up, status, cost; up again; down;
    gc) as the CLI runs them, each call held by the realism layer to
    docs/iam-policy-preview.json; staging, deployed beside them, is untouched, and the role
    cannot take it down."""
    monkeypatch.setitem(realism.policies, PREVIEW_KEY, PREVIEW_FILE)
    steps = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    pipeline.up(make_run("staging"), QuietEvents(), steps=steps)  # with the deploy role
    _deploy_preview("pr-1", PAST)  # an expired preview, for gc
    staging = _rows_of(snapshot(), '"staging"', "nnote-staging")
    assert len(staging) > 10

    def as_preview_role(*args: str) -> Any:
        return cli(*args, "--config", str(ROOT / "deploy.toml"), env=AS_PREVIEW_ROLE)

    up, status, cost = _commands("up", "pr-12")
    for command in (up, status, cost, up):  # a push, then another
        done = as_preview_role(*command)
        assert done.code == 0, (command, done.text)
    (down,) = _commands("down", "pr-12")
    gone = as_preview_role(*down)
    assert gone.code == 0 and "leak audit: nothing left" in gone.err, gone.text
    (gc,) = _commands("gc", "-")
    swept = as_preview_role(*gc)
    assert swept.code == 0 and "gc: deleted 1 expired preview(s)" in swept.err, swept.text
    assert realism.denials == []
    assert sum(call.access_key == PREVIEW_KEY for call in realism.calls) > 100

    refused = as_preview_role("down", "--yes", "--env", "staging")
    assert refused.code == 1 and "not authorized" in refused.text, refused.text
    assert realism.denials and all("staging" in denial for denial in realism.denials)
    realism.denials.clear()  # expected: aws_env fails a test on any other denial
    assert _rows_of(snapshot(), '"staging"', "nnote-staging") == staging
