"""nnote-deploy bootstrap (deployer/bootstrap.py) against the moto server behind the realism
layer, run with the administrator's key, which the layer holds to docs/bootstrap-policy.json:
the GitHub OIDC provider, the deploy role scoped to one repository, docs/iam-policy.json split
into managed policies, idempotence, rollback, --delete, and that the deploy role can change
none of it."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import tomllib
from typing import Any

import boto3
import botocore.session
import pytest

from deployer import bootstrap as bootstrap_module
from deployer import boundary
from deployer.aws import Aws, EventHooks, call, is_mutating
from deployer.bootstrap import (
    BootstrapFailed,
    BootstrapTarget,
    bootstrap,
    bootstrap_tags,
    deploy_policy,
    policy_chunks,
    policy_size,
    remove,
    target_from_config,
)
from deployer.errors import ConfigError, DeployError, ExitCode, NotOwnedError
from deployer.preview_policy import preview_policy
from deployer.steps.runtime import TASK_TRUST
from tests.deployer.conftest import REGION, ROOT
from tests.deployer.faults import FailNth
from tests.support.iam_policy import (
    AuthorizationLog,
    BotoLookup,
    Call,
    authorizations,
    evaluate,
    recording_hooks,
    tag_dict,
)
from tests.support.realism import BOOTSTRAP_KEY, DEPLOYER_KEY, Realism

ACCOUNT = "123456789012"
HOST = "token.actions.githubusercontent.com"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}"
BOUNDARY = "nnote-deploy-boundary"
PREVIEW_BOUNDARY = "nnote-preview-deploy-boundary"
PREVIEW_BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/{PREVIEW_BOUNDARY}"
ROLE = "nnote-deploy"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
REPO = "octo-org/nnote"
TARGET = BootstrapTarget("nnote", REPO, ("staging", "prod"))
OURS = {"nnote:managed-by": "nnote-bootstrap", "nnote:app": "nnote"}
DEPLOY_POLICY: dict[str, Any] = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
BOOTSTRAP_POLICY: dict[str, Any] = json.loads((ROOT / "docs" / "bootstrap-policy.json").read_text())
ALLOW = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@functools.cache
def _bootstrap_session() -> Any:
    """Signs with the administrator's key, which the realism layer checks against
    docs/bootstrap-policy.json (as make_run's session signs with the deployer's)."""
    session = botocore.session.get_session()
    session.set_credentials(BOOTSTRAP_KEY, BOOTSTRAP_KEY)
    return session


def admin(hooks: EventHooks | None = None) -> Aws:
    return Aws(region=REGION, hooks=hooks, max_attempts=2, botocore_session=_bootstrap_session())


def iam() -> Any:
    """The tests' own view (key `testing`): moto as it is."""
    return boto3.client("iam", region_name=REGION)


def mutations(aws: Aws) -> dict[str, int]:
    return {name: count for name, count in aws.log.calls.items() if is_mutating(name.split(":")[1])}


def iam_state() -> dict[str, Any]:
    """Everything bootstrap could touch, in full (service-linked roles aside)."""
    client = iam()
    roles = {
        role["RoleName"]: {
            "trust": role["AssumeRolePolicyDocument"],
            "tags": tag_dict(client.list_role_tags(RoleName=role["RoleName"])["Tags"]),
            "attached": sorted(
                p["PolicyArn"]
                for p in client.list_attached_role_policies(RoleName=role["RoleName"])[
                    "AttachedPolicies"
                ]
            ),
        }
        for role in client.list_roles()["Roles"]
        if not role["Path"].startswith("/aws-service-role/")
    }
    policies = {
        policy["PolicyName"]: {
            "default": policy["DefaultVersionId"],
            "versions": [
                (v["VersionId"], v["Document"])
                for v in client.list_policy_versions(PolicyArn=policy["Arn"])["Versions"]
            ],
            "tags": tag_dict(client.list_policy_tags(PolicyArn=policy["Arn"])["Tags"]),
        }
        for policy in client.list_policies(Scope="Local")["Policies"]
    }
    providers = {
        entry["Arn"]: {
            key: value
            for key, value in client.get_open_id_connect_provider(
                OpenIDConnectProviderArn=entry["Arn"]
            ).items()
            if key in ("Url", "ClientIDList", "Tags")
        }
        for entry in client.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    }
    return {"roles": roles, "policies": policies, "providers": providers}


def default_document(name: str) -> Any:
    arn = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    version = iam().get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam().get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def with_sid(policy: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The policy with one statement renamed: the same size, so the same split."""
    assert len(old) == len(new)
    changed = copy.deepcopy(policy)
    (statement,) = [s for s in changed["Statement"] if s.get("Sid") == old]
    statement["Sid"] = new
    return changed


# A statement of the first managed policy and one of the last: renaming both changes two.
FIRST_SID = policy_chunks(DEPLOY_POLICY)[0]["Statement"][0]["Sid"]
LAST_SID = policy_chunks(DEPLOY_POLICY)[-1]["Statement"][-1]["Sid"]


def renamed(sid: str, n: int = 1) -> str:
    return sid[:-1] + "XYZWV"[n % 5]


# -- what bootstrap makes -------------------------------------------------------------------


def test_bootstrap_creates_the_provider_the_role_and_its_policies_all_tagged(
    aws_env: dict[str, str], realism: Realism
) -> None:
    result = bootstrap(admin(), TARGET)

    provider = iam().get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER_ARN)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    assert tag_dict(provider["Tags"]) == OURS
    role = iam().get_role(RoleName=ROLE)["Role"]
    assert tag_dict(role["Tags"]) == OURS
    assert role["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{HOST}:aud": "sts.amazonaws.com",
                        f"{HOST}:sub": [
                            f"repo:{REPO}:environment:prod",
                            f"repo:{REPO}:environment:staging",
                        ],
                    }
                },
            }
        ],
    }
    chunks = policy_chunks(DEPLOY_POLICY)
    names = [f"{ROLE}-{n}" for n in range(1, len(chunks) + 1)]
    arns = [f"arn:aws:iam::{ACCOUNT}:policy/{name}" for name in names]
    attached = iam().list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == arns
    assert [default_document(name) for name in names] == chunks
    assert all(tag_dict(iam().list_policy_tags(PolicyArn=arn)["Tags"]) == OURS for arn in arns)
    assert (result.role_arn, result.provider_arn, result.policy_arns) == (
        ROLE_ARN,
        PROVIDER_ARN,
        arns,
    )
    assert result.created == [
        f"OIDC provider {HOST}",
        f"IAM role {ROLE}",
        *(f"IAM policy {name}" for name in names),
    ]
    # The permissions boundary of task roles: the aws_env fixture made it as bootstrap does.
    assert (result.updated, result.unchanged, result.deleted) == (
        [],
        [f"IAM policy {BOUNDARY}"],
        [],
    )
    assert result.boundary_arn == f"arn:aws:iam::{ACCOUNT}:policy/{BOUNDARY}"
    # The layer held these calls to docs/bootstrap-policy.json (aws_env asserts no denial).
    assert any(call.access_key == BOOTSTRAP_KEY for call in realism.calls)


def test_bootstrap_result_renders_the_repository_variables_as_gh_commands(
    aws_env: dict[str, str],
) -> None:
    result = bootstrap(admin(), TARGET)
    assert result.variables == {"AWS_DEPLOY_ROLE_ARN": ROLE_ARN, "AWS_REGION": REGION}
    assert result.gh_commands() == [
        f"gh variable set AWS_DEPLOY_ROLE_ARN --body {ROLE_ARN} --repo {REPO}",
        f"gh variable set AWS_REGION --body {REGION} --repo {REPO}",
    ]


def test_bootstrap_a_second_time_makes_no_mutating_call(aws_env: dict[str, str]) -> None:
    bootstrap(admin(), TARGET)
    again = admin()
    result = bootstrap(again, TARGET)
    assert again.log.mutating == 0, again.log.calls
    assert (result.created, result.updated, result.deleted) == ([], [], [])
    assert result.unchanged[:2] == [f"OIDC provider {HOST}", f"IAM role {ROLE}"]
    assert result.role_arn == ROLE_ARN


def test_bootstrap_with_other_environments_changes_only_the_trust_policy(
    aws_env: dict[str, str],
) -> None:
    bootstrap(admin(), TARGET)
    narrower = BootstrapTarget("nnote", REPO, ("prod",), ("main",))
    aws = admin()
    result = bootstrap(aws, narrower)
    assert mutations(aws) == {"iam:UpdateAssumeRolePolicy": 1}
    assert result.updated == [f"trust policy of IAM role {ROLE}"]
    trust = iam().get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"]["StringEquals"][f"{HOST}:sub"] == [
        f"repo:{REPO}:environment:prod",
        f"repo:{REPO}:ref:refs/heads/main",
    ]


def bootstrap_twice_with_a_changed_policy(
    target: BootstrapTarget, monkeypatch: pytest.MonkeyPatch
) -> tuple[Aws, dict[str, Any], bootstrap_module.BootstrapResult]:
    """Bootstrap, then again once the deploy policy's last statement is renamed."""
    bootstrap(admin(), target)
    changed = with_sid(DEPLOY_POLICY, LAST_SID, renamed(LAST_SID))
    monkeypatch.setattr(bootstrap_module, "deploy_policy", lambda: changed)
    aws = admin()
    return aws, changed, bootstrap(aws, target)


def test_bootstrap_of_a_changed_deploy_policy_makes_a_new_default_version(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws, changed, result = bootstrap_twice_with_a_changed_policy(TARGET, monkeypatch)
    assert mutations(aws) == {"iam:CreatePolicyVersion": 1}
    policies = iam_state()["policies"]
    (updated,) = [name for name, policy in policies.items() if policy["default"] == "v2"]
    assert result.updated == [f"IAM policy {updated} (version v2)"]
    assert default_document(updated) in policy_chunks(changed)


def test_bootstrap_deletes_the_oldest_unused_version_when_a_policy_has_five(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap(admin(), TARGET)
    for n in range(1, 7):
        changed = with_sid(DEPLOY_POLICY, LAST_SID, renamed(LAST_SID, n))
        monkeypatch.setattr(bootstrap_module, "deploy_policy", lambda changed=changed: changed)
        bootstrap(admin(), TARGET)
    (policy,) = [p for p in iam_state()["policies"].values() if p["default"] == "v7"]
    assert [version for version, _ in policy["versions"]] == ["v3", "v4", "v5", "v6", "v7"]


def test_bootstrap_of_a_smaller_deploy_policy_deletes_the_policies_no_longer_needed(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap(admin(), TARGET)
    smaller = {**DEPLOY_POLICY, "Statement": DEPLOY_POLICY["Statement"][:5]}
    monkeypatch.setattr(bootstrap_module, "deploy_policy", lambda: smaller)
    result = bootstrap(admin(), TARGET)
    assert result.policy_arns == [f"arn:aws:iam::{ACCOUNT}:policy/{ROLE}-1"]
    assert result.deleted == [
        f"IAM policy {ROLE}-{n} (no longer needed)"
        for n in range(len(policy_chunks(DEPLOY_POLICY)), 1, -1)
    ]
    assert sorted(iam_state()["policies"]) == [f"{ROLE}-1", BOUNDARY, PREVIEW_BOUNDARY]
    assert iam_state()["roles"][ROLE]["attached"] == result.policy_arns


def test_bootstrap_makes_again_a_policy_deleted_by_hand(aws_env: dict[str, str]) -> None:
    bootstrap(admin(), TARGET)
    arn = f"arn:aws:iam::{ACCOUNT}:policy/{ROLE}-2"
    iam().detach_role_policy(RoleName=ROLE, PolicyArn=arn)
    iam().delete_policy(PolicyArn=arn)
    result = bootstrap(admin(), TARGET)
    assert result.created == [f"IAM policy {ROLE}-2"]
    assert arn in iam_state()["roles"][ROLE]["attached"]


# -- failures -------------------------------------------------------------------------------


def test_bootstrap_failing_half_way_from_nothing_leaves_nothing(aws_env: dict[str, str]) -> None:
    before = iam_state()
    fault = FailNth("AttachRolePolicy", 2)
    with pytest.raises(BootstrapFailed) as failed:
        bootstrap(admin(fault.hooks()), TARGET)
    assert fault.fired
    assert failed.value.exit_code == ExitCode.ROLLED_BACK
    assert "injected fault" in failed.value.message
    assert failed.value.rollback.failed == []
    assert f"created IAM role {ROLE}" in failed.value.rollback.undone
    assert iam_state() == before


def test_bootstrap_failing_half_way_restores_the_trust_and_policy_versions(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap(admin(), TARGET)
    before = iam_state()
    changed = with_sid(DEPLOY_POLICY, FIRST_SID, renamed(FIRST_SID))
    changed = with_sid(changed, LAST_SID, renamed(LAST_SID))
    monkeypatch.setattr(bootstrap_module, "deploy_policy", lambda: changed)
    fault = FailNth("CreatePolicyVersion", 2)
    narrower = BootstrapTarget("nnote", REPO, ("prod",))
    with pytest.raises(BootstrapFailed) as failed:
        bootstrap(admin(fault.hooks()), narrower)
    assert fault.fired
    assert len(failed.value.rollback.undone) == 2  # the trust policy and one policy's version
    assert iam_state() == before


def test_bootstrap_refuses_a_provider_without_the_sts_audience(aws_env: dict[str, str]) -> None:
    iam().create_open_id_connect_provider(Url=f"https://{HOST}", ClientIDList=["other"])
    aws = admin()
    with pytest.raises(DeployError) as refused:
        bootstrap(aws, TARGET)
    assert not isinstance(refused.value, BootstrapFailed)
    assert "does not accept the audience sts.amazonaws.com" in refused.value.message
    assert "add-client-id-to-open-id-connect-provider" in refused.value.hint
    assert aws.log.mutating == 0


def test_bootstrap_refuses_a_role_it_did_not_make_before_changing_anything(
    aws_env: dict[str, str],
) -> None:
    iam().create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
    before = iam_state()
    aws = admin()
    with pytest.raises(NotOwnedError, match=f"IAM role {ROLE} exists but was not made"):
        bootstrap(aws, TARGET)
    assert aws.log.mutating == 0
    assert iam_state() == before


# -- --delete -------------------------------------------------------------------------------


def test_bootstrap_delete_leaves_nothing_of_ours(aws_env: dict[str, str]) -> None:
    before = iam_state()
    made = bootstrap(admin(), TARGET)
    result = remove(admin(), TARGET)
    assert iam_state() == before
    assert result.deleted == [
        f"IAM role {ROLE}",
        *(f"IAM policy {ROLE}-{n}" for n in range(len(made.policy_arns), 0, -1)),
        f"OIDC provider {HOST}",
    ]
    assert remove(admin(), TARGET).deleted == []  # again: nothing left to do


def test_bootstrap_delete_keeps_a_provider_that_is_not_ours(aws_env: dict[str, str]) -> None:
    iam().create_open_id_connect_provider(Url=f"https://{HOST}", ClientIDList=["sts.amazonaws.com"])
    result = bootstrap(admin(), TARGET)
    assert result.unchanged[0] == f"OIDC provider {HOST} (not ours: used as it is)"
    gone = remove(admin(), TARGET)
    provider = iam().get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER_ARN)
    assert tag_dict(provider.get("Tags")) == {}
    assert gone.kept == [f"OIDC provider {HOST} (not made by bootstrap for this app)"]
    assert ROLE not in iam_state()["roles"]


def test_bootstrap_delete_keeps_our_provider_while_another_role_trusts_it(
    aws_env: dict[str, str],
) -> None:
    bootstrap(admin(), TARGET)
    other = bootstrap_module.trust_policy(PROVIDER_ARN, ["repo:octo-org/other:ref:refs/heads/main"])
    iam().create_role(RoleName="other-deploy", AssumeRolePolicyDocument=json.dumps(other))
    result = remove(admin(), TARGET)
    assert result.kept == [f"OIDC provider {HOST} (trusted by other-deploy)"]
    assert PROVIDER_ARN in iam_state()["providers"]


# -- the preview role ------------------------------------------------------------------------

PREVIEW_ROLE = "nnote-preview-deploy"
PREVIEWS = BootstrapTarget("nnote", REPO, ("staging", "prod"), preview_environment="preview")


def role_policies(role: str) -> list[Any]:
    """The default documents of the policies attached to a role, in their numbers' order."""
    attached = iam().list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return [default_document(p["PolicyName"]) for p in sorted(attached, key=_number)]


def _number(policy: dict[str, str]) -> int:
    return int(policy["PolicyName"].rsplit("-", 1)[1])


def trusted_subjects(role: str) -> Any:
    (statement,) = iam().get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    return statement["Condition"]["StringEquals"][f"{HOST}:sub"]


def test_bootstrap_with_a_preview_environment_makes_the_preview_role_trusted_by_it_alone(
    aws_env: dict[str, str],
) -> None:
    result = bootstrap(admin(), PREVIEWS)

    role = iam().get_role(RoleName=PREVIEW_ROLE)["Role"]
    assert tag_dict(role["Tags"]) == OURS
    assert role["AssumeRolePolicyDocument"] == bootstrap_module.trust_policy(
        PROVIDER_ARN, [f"repo:{REPO}:environment:preview"]
    )
    assert trusted_subjects(PREVIEW_ROLE) == [f"repo:{REPO}:environment:preview"]
    assert role["MaxSessionDuration"] == 3 * 3600
    preview = policy_chunks(preview_policy(DEPLOY_POLICY))
    assert role_policies(PREVIEW_ROLE) == preview
    names = [f"{PREVIEW_ROLE}-{n}" for n in range(1, len(preview) + 1)]
    arns = [f"arn:aws:iam::{ACCOUNT}:policy/{name}" for name in names]
    assert all(tag_dict(iam().list_policy_tags(PolicyArn=arn)["Tags"]) == OURS for arn in arns)
    # The deploy role is as without previews: its own policies, and not the preview's subject.
    assert role_policies(ROLE) == policy_chunks(DEPLOY_POLICY)
    assert trusted_subjects(ROLE) == [
        f"repo:{REPO}:environment:prod",
        f"repo:{REPO}:environment:staging",
    ]
    assert (result.preview_role_arn, result.preview_policy_arns) == (
        f"arn:aws:iam::{ACCOUNT}:role/{PREVIEW_ROLE}",
        arns,
    )
    assert result.variables["AWS_PREVIEW_ROLE_ARN"] == result.preview_role_arn
    assert f"IAM role {PREVIEW_ROLE}" in result.created
    # The layer held every call to docs/bootstrap-policy.json (aws_env asserts no denial).


def test_bootstrap_with_previews_a_second_time_makes_no_mutating_call(
    aws_env: dict[str, str],
) -> None:
    bootstrap(admin(), PREVIEWS)
    again = admin()
    result = bootstrap(again, PREVIEWS)
    assert again.log.mutating == 0, again.log.calls
    assert (result.created, result.updated, result.deleted) == ([], [], [])
    assert f"IAM role {PREVIEW_ROLE}" in result.unchanged


def test_bootstrap_of_a_changed_deploy_policy_updates_the_preview_policy_too(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws, changed, _ = bootstrap_twice_with_a_changed_policy(PREVIEWS, monkeypatch)
    assert mutations(aws) == {"iam:CreatePolicyVersion": 2}  # the last part of each role's
    assert role_policies(PREVIEW_ROLE) == policy_chunks(preview_policy(changed))


def test_bootstrap_delete_removes_the_preview_role_without_being_told_of_it(
    aws_env: dict[str, str],
) -> None:
    before = iam_state()
    made = bootstrap(admin(), PREVIEWS)
    result = remove(admin(), TARGET)  # no preview environment named
    assert iam_state() == before
    parts = len(made.preview_policy_arns)
    assert f"IAM role {PREVIEW_ROLE}" in result.deleted
    assert [f"IAM policy {PREVIEW_ROLE}-{n}" for n in range(parts, 0, -1)] == [
        item for item in result.deleted if item.startswith(f"IAM policy {PREVIEW_ROLE}-")
    ]
    assert result.deleted[-1] == f"OIDC provider {HOST}"  # once no role of ours trusts it


def test_bootstrap_failing_in_the_preview_role_leaves_nothing(aws_env: dict[str, str]) -> None:
    before = iam_state()
    fault = FailNth("AttachRolePolicy", len(policy_chunks(DEPLOY_POLICY)) + 1)
    with pytest.raises(BootstrapFailed) as failed:
        bootstrap(admin(fault.hooks()), PREVIEWS)
    assert failed.value.rollback.failed == []
    assert iam_state() == before


def test_bootstrap_makes_the_preview_boundary_only_with_a_preview_environment(
    aws_env: dict[str, str],
) -> None:
    """An account bootstrapped before previews had a boundary of their own (aws_env made it
    as `bootstrap --preview-env` does): without a preview environment it is not made; with
    one it is, narrower than the boundary of every environment, tagged as ours."""
    iam().delete_policy(PolicyArn=PREVIEW_BOUNDARY_ARN)
    without = bootstrap(admin(), TARGET)
    assert without.preview_boundary_arn == ""
    assert PREVIEW_BOUNDARY not in iam_state()["policies"]
    result = bootstrap(admin(), PREVIEWS)
    assert result.preview_boundary_arn == PREVIEW_BOUNDARY_ARN
    assert f"IAM policy {PREVIEW_BOUNDARY}" in result.created
    assert default_document(PREVIEW_BOUNDARY) == boundary.preview_document()
    assert default_document(PREVIEW_BOUNDARY) != default_document(BOUNDARY)
    assert tag_dict(iam().list_policy_tags(PolicyArn=PREVIEW_BOUNDARY_ARN)["Tags"]) == OURS


def test_bootstrap_puts_the_preview_boundary_back_when_it_was_widened(
    aws_env: dict[str, str],
) -> None:
    wider = json.dumps(boundary.document())
    iam().create_policy_version(
        PolicyArn=PREVIEW_BOUNDARY_ARN, PolicyDocument=wider, SetAsDefault=True
    )
    result = bootstrap(admin(), PREVIEWS)
    assert f"IAM policy {PREVIEW_BOUNDARY} (version v3)" in result.updated
    assert default_document(PREVIEW_BOUNDARY) == boundary.preview_document()


BOUNDARIES_ONLY = BootstrapTarget("nnote", "")  # `bootstrap --delete` without --repo


def test_bootstrap_delete_keeps_each_boundary_while_a_role_carries_it(
    aws_env: dict[str, str],
) -> None:
    """Without --repo, --delete removes the boundaries, the previews' too: each only once no
    role carries it (a preview not yet taken down keeps the previews')."""
    bootstrap(admin(), PREVIEWS)
    trust = json.dumps(TASK_TRUST)
    iam().create_role(
        RoleName="nnote-pr-3-task",
        AssumeRolePolicyDocument=trust,
        PermissionsBoundary=PREVIEW_BOUNDARY_ARN,
    )
    result = remove(admin(), BOUNDARIES_ONLY)
    assert result.kept == [f"IAM policy {PREVIEW_BOUNDARY} (the boundary of 1 role(s): down first)"]
    assert result.deleted == [f"IAM policy {BOUNDARY}"]
    iam().delete_role(RoleName="nnote-pr-3-task")
    assert remove(admin(), BOUNDARIES_ONLY).deleted == [f"IAM policy {PREVIEW_BOUNDARY}"]
    assert not {BOUNDARY, PREVIEW_BOUNDARY} & set(iam_state()["policies"])


@pytest.mark.parametrize(
    ("environments", "preview", "problem"),
    [
        (["staging", "preview"], "preview", "the deploy role must not trust it"),
        (["staging"], "pre view", "not an exact name"),
    ],
)
def test_target_refuses_a_deploy_role_trusting_the_preview_environment(
    environments: list[str], preview: str, problem: str
) -> None:
    target = BootstrapTarget("nnote", REPO, tuple(environments), preview_environment=preview)
    assert any(problem in found for found in target.problems()), target.problems()


def test_target_from_config_refuses_the_preview_environment_among_the_deploy_roles() -> None:
    with pytest.raises(ConfigError) as refused:
        target_from_config(ROOT / "deploy.toml", REPO, ["staging"], preview_environment="staging")
    assert any("must not trust" in problem for problem in refused.value.problems)


# -- the policies and who may change them ---------------------------------------------------


def test_policy_chunks_fit_iam_and_hold_exactly_the_deploy_policy() -> None:
    chunks = policy_chunks(deploy_policy())
    assert all(policy_size(chunk) <= 6144 for chunk in chunks), [policy_size(c) for c in chunks]
    # As few as fit: no two of them would fit in one managed policy.
    for first, second in itertools.combinations(chunks, 2):
        both = {**first, "Statement": first["Statement"] + second["Statement"]}
        assert policy_size(both) > 6144
    held = [json.dumps(s, sort_keys=True) for chunk in chunks for s in chunk["Statement"]]
    wanted = [json.dumps(s, sort_keys=True) for s in DEPLOY_POLICY["Statement"]]
    assert sorted(held) == sorted(wanted)
    assert all(chunk["Version"] == DEPLOY_POLICY["Version"] for chunk in chunks)


def test_policy_chunks_refuse_a_statement_larger_than_a_managed_policy() -> None:
    with pytest.raises(DeployError, match="alone is larger than a managed policy"):
        policy_chunks(DEPLOY_POLICY, limit=200)


class Bootstrapped:
    """A Lookup of an account after bootstrap: what a call names exists, tagged as bootstrap
    tags what it makes."""

    def tags(self, arn: str) -> dict[str, str] | None:
        return None if "*" in arn else tag_dict(bootstrap_tags("nnote"))

    def service_linked_role_exists(self, aws_service_name: str) -> bool:
        return True

    def secret_arn(self, secret_id: str) -> str | None:
        return None

    def route_table_association(self, association_id: str) -> tuple[str, str | None] | None:
        return None

    def scalable_target_arn(self, namespace: str, resource_id: str, dimension: str) -> str | None:
        return None

    def permissions_boundary(self, role_name: str) -> str | None:
        return None

    def task_definition_roles(self, arn: str) -> list[str]:
        return []


# The deploy role may change IAM roles named nnote-* tagged nnote-deploy: never its own role,
# policies or provider, which bootstrap tags nnote-bootstrap.
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/{ROLE}-1"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
SELF_CHANGES = [
    ("PutRolePolicy", {"RoleName": ROLE, "PolicyName": "x", "PolicyDocument": "{}"}),
    ("DeleteRolePolicy", {"RoleName": ROLE, "PolicyName": "x"}),
    ("AttachRolePolicy", {"RoleName": ROLE, "PolicyArn": EXECUTION_POLICY}),
    ("DetachRolePolicy", {"RoleName": ROLE, "PolicyArn": POLICY_ARN}),
    ("DeleteRole", {"RoleName": ROLE}),
    ("UpdateAssumeRolePolicy", {"RoleName": ROLE, "PolicyDocument": "{}"}),
    ("UntagRole", {"RoleName": ROLE, "TagKeys": ["nnote:managed-by"]}),
    ("CreatePolicyVersion", {"PolicyArn": POLICY_ARN, "PolicyDocument": "{}"}),
    ("SetDefaultPolicyVersion", {"PolicyArn": POLICY_ARN, "VersionId": "v1"}),
    ("DeletePolicyVersion", {"PolicyArn": POLICY_ARN, "VersionId": "v1"}),
    ("DeletePolicy", {"PolicyArn": POLICY_ARN}),
    ("TagPolicy", {"PolicyArn": POLICY_ARN, "Tags": [{"Key": "x", "Value": "y"}]}),
    ("DeleteOpenIDConnectProvider", {"OpenIDConnectProviderArn": PROVIDER_ARN}),
    ("TagOpenIDConnectProvider", {"OpenIDConnectProviderArn": PROVIDER_ARN, "Tags": []}),
    # Retagging it as ours would hand it the deploy policy's rights over "our" roles.
    ("TagRole", {"RoleName": ROLE, "Tags": [{"Key": "nnote:managed-by", "Value": "nnote-deploy"}]}),
]


@pytest.mark.parametrize(("operation", "params"), SELF_CHANGES)
def test_deploy_policy_cannot_change_the_bootstrap_role_policies_or_provider(
    operation: str, params: dict[str, Any]
) -> None:
    requests = authorizations(Call("iam", operation, params, REGION), Bootstrapped())
    assert not all(evaluate(DEPLOY_POLICY, request) for request in requests), requests


def test_deploy_role_is_refused_a_change_to_its_own_role(
    aws_env: dict[str, str], realism: Realism
) -> None:
    bootstrap(admin(), TARGET)
    deployer = botocore.session.get_session()
    deployer.set_credentials(DEPLOYER_KEY, DEPLOYER_KEY)
    aws = Aws(region=REGION, max_attempts=2, botocore_session=deployer)
    with pytest.raises(DeployError, match="AccessDenied"):
        call(aws, "iam", "put_role_policy", RoleName=ROLE, PolicyName="x", PolicyDocument="{}")
    assert realism.denials == [f"iam:PutRolePolicy on {ROLE_ARN}"]
    realism.denials.clear()  # the denial was the point


def test_bootstrap_policy_attaches_only_the_deploy_policies(
    aws_env: dict[str, str], realism: Realism
) -> None:
    bootstrap(admin(), TARGET)
    admin_arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    with pytest.raises(DeployError, match="AccessDenied"):
        call(admin(), "iam", "attach_role_policy", RoleName=ROLE, PolicyArn=admin_arn)
    assert realism.denials == [f"iam:AttachRolePolicy on {ROLE_ARN} (iam:PolicyARN={admin_arn})"]
    realism.denials.clear()  # the denial was the point


def test_the_deploy_role_lasts_three_hours_for_a_long_first_deploy(
    aws_env: dict[str, str],
) -> None:
    """IAM's default is one hour; a first prod up (Multi-AZ RDS, then a rollout) can last more."""
    bootstrap(admin(), TARGET)
    assert iam().get_role(RoleName=ROLE)["Role"]["MaxSessionDuration"] == 3 * 3600
    iam().update_role(RoleName=ROLE, MaxSessionDuration=3600)  # as an older bootstrap made it
    result = bootstrap(admin(), TARGET)
    assert f"session length of IAM role {ROLE}: 10800s" in result.updated
    assert iam().get_role(RoleName=ROLE)["Role"]["MaxSessionDuration"] == 3 * 3600


def test_bootstrap_policy_grants_exactly_the_actions_bootstrap_uses(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every path: create (with previews: their role and boundary), converge (trust, new
    versions past five, fewer policies), a rollback, --delete of a role someone gave an inline
    policy, and --delete of the boundaries (without --repo)."""
    log = AuthorizationLog(BotoLookup(REGION))

    def recorded(*extra: Any) -> Aws:
        return admin([*recording_hooks(log, REGION), *extra])

    def deploying(policy: dict[str, Any]) -> None:
        monkeypatch.setattr(bootstrap_module, "deploy_policy", lambda: policy)

    iam().delete_policy(PolicyArn=PREVIEW_BOUNDARY_ARN)  # made again below
    bootstrap(recorded(), TARGET)
    bootstrap(recorded(), PREVIEWS)
    bootstrap(recorded(), BootstrapTarget("nnote", REPO, ("prod",)))
    for n in range(1, 6):
        deploying(with_sid(DEPLOY_POLICY, LAST_SID, renamed(LAST_SID, n)))
        bootstrap(recorded(), TARGET)
    deploying(with_sid(DEPLOY_POLICY, FIRST_SID, renamed(FIRST_SID)))  # two policies change
    fault = FailNth("CreatePolicyVersion", 2)
    with pytest.raises(BootstrapFailed):
        bootstrap(recorded(*fault.hooks()), BootstrapTarget("nnote", REPO, ("staging",)))
    deploying({**DEPLOY_POLICY, "Statement": DEPLOY_POLICY["Statement"][:5]})
    bootstrap(recorded(), TARGET)
    iam().update_role(RoleName=ROLE, MaxSessionDuration=3600)  # as an older bootstrap made it
    bootstrap(recorded(), TARGET)
    iam().put_role_policy(RoleName=ROLE, PolicyName="by-hand", PolicyDocument=json.dumps(ALLOW))
    remove(recorded(), TARGET)
    remove(recorded(), BOUNDARIES_ONLY)

    assert log.unmapped == [] and log.denied(BOOTSTRAP_POLICY) == []
    granted = {a for s in BOOTSTRAP_POLICY["Statement"] for a in s["Action"]}
    assert log.actions() == granted


# -- scoping the role -----------------------------------------------------------------------


def test_target_from_config_trusts_every_everyday_environment_by_default() -> None:
    """Not acceptance: its runs belong in a sandbox account, with a role of their own there."""
    names = sorted(tomllib.loads((ROOT / "deploy.toml").read_text())["env"])
    assert "acceptance" in names
    target, region = target_from_config(ROOT / "deploy.toml", REPO)
    assert (target.app, target.role, target.environments, region) == (
        "nnote",
        ROLE,
        ("prod", "staging"),
        "eu-west-1",
    )
    only = target_from_config(ROOT / "deploy.toml", REPO, environments=[], branches=["main"])[0]
    assert only.subjects() == [f"repo:{REPO}:ref:refs/heads/main"]


@pytest.mark.parametrize(
    ("repository", "environments", "branches", "problem"),
    [
        ("nnote", None, (), "repository: 'nnote' is not OWNER/REPO"),
        (REPO, ["qa"], (), "environment 'qa' is not in"),
        (REPO, [], (), "no environment and no branch"),
        (REPO, [], ["release/*"], "'release/*': not an exact name"),
    ],
)
def test_target_from_config_refuses_a_role_it_cannot_scope(
    repository: str, environments: list[str] | None, branches: list[str], problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        target_from_config(ROOT / "deploy.toml", repository, environments, branches)
    assert any(problem in found for found in refused.value.problems), refused.value.problems


def test_cli_bootstrap_prints_the_variables_then_changes_nothing_then_deletes(cli) -> None:  # type: ignore[no-untyped-def]
    """The three commands a user runs, as they run them (with the bootstrap policy's key)."""
    as_admin = {"AWS_ACCESS_KEY_ID": BOOTSTRAP_KEY, "AWS_SECRET_ACCESS_KEY": BOOTSTRAP_KEY}
    first = cli(
        "bootstrap", "--repo", "ann/notes", "--config", str(ROOT / "deploy.toml"), env=as_admin
    )
    assert first.code == 0, first.text
    role_arn = "arn:aws:iam::123456789012:role/nnote-deploy"
    assert f"AWS_DEPLOY_ROLE_ARN={role_arn}" in first.text
    assert f"gh variable set AWS_DEPLOY_ROLE_ARN --body {role_arn} --repo ann/notes" in first.out
    again = cli(
        "bootstrap", "--repo", "ann/notes", "--config", str(ROOT / "deploy.toml"), env=as_admin
    )
    assert again.code == 0 and "(0 mutating)" in again.text and "created:" not in again.text
    gone = cli(
        "bootstrap",
        "--repo",
        "ann/notes",
        "--delete",
        "--config",
        str(ROOT / "deploy.toml"),
        env=as_admin,
    )
    assert gone.code == 0 and "deleted: " in gone.text
    assert "nnote-deploy" not in {r["RoleName"] for r in iam().list_roles()["Roles"]}


def test_cli_bootstrap_with_a_preview_environment_prints_both_role_variables(cli) -> None:  # type: ignore[no-untyped-def]
    as_admin = {"AWS_ACCESS_KEY_ID": BOOTSTRAP_KEY, "AWS_SECRET_ACCESS_KEY": BOOTSTRAP_KEY}
    config = ("--config", str(ROOT / "deploy.toml"))
    made = cli(
        "bootstrap", "--repo", "ann/notes", "--preview-env", "preview", *config, env=as_admin
    )
    assert made.code == 0, made.text
    preview_arn = f"arn:aws:iam::{ACCOUNT}:role/{PREVIEW_ROLE}"
    assert f"AWS_PREVIEW_ROLE_ARN={preview_arn}" in made.text
    assert f"gh variable set AWS_PREVIEW_ROLE_ARN --body {preview_arn} --repo ann/notes" in made.out
    both = ("--env", "staging", "--preview-env", "staging")
    refused = cli("bootstrap", "--repo", "ann/notes", *both, *config, env=as_admin)
    assert refused.code == 3 and "must not trust" in refused.text, refused.text
