"""The preview role's permissions, and its task roles' boundary: docs/iam-policy.json and
docs/iam-task-boundary.json narrowed to previews (`pr-N`).

A pull request's branch chooses the workflow file that runs for it, so whoever can push a
branch can use the role that workflow assumes. The role previews deploy with must therefore
reach nothing of staging or prod. Its policy is derived here from the deploy policy by three
explicit rules, so the two never drift apart (docs/iam-policy-preview.json is the result, kept
equal to it by a test):

1. names: what the deploy policy names by the app's prefix names the previews' instead:
   `nnote-*` -> `nnote-pr-*` (databases, snapshots, repositories, clusters, services, task
   definitions, load balancers, target groups, listeners, alarms, task roles; `ecs:cluster`
   conditions too), log groups `/nnote/*` -> `/nnote/nnote-pr-*`, secrets `nnote/*` ->
   `nnote/pr-*`, lock parameters `/nnote-deploy/*` -> `/nnote-deploy/nnote/pr-*`, and the
   task roles' permissions boundary `nnote-deploy-boundary` -> `nnote-preview-deploy-boundary`
   (the deploy policy allows roles either boundary; the preview policy, the previews' alone);
2. tags: wherever a statement asks for our `nnote:managed-by` tag on the request or on the
   resource, it asks for an `nnote:env` tag like `pr-*` the same way (the same condition key,
   so the actions support it): what no name tells apart (VPCs, subnets, certificates,
   distributions) is told apart by its env tag;
3. left out: the statements a preview does not need and that cannot be narrowed to previews
   (LEFT_OUT says why).

What a preview still shares with every environment is in NOT_NARROWED, each with its reason;
a test fails when a statement is neither narrowed to previews nor listed there.

The previews' task boundary (deployer/boundary.py; docs/iam-task-boundary-preview.json, kept
equal by a test) is the task boundary under rule 1's names (images of `nnote-pr-*`
repositories: each environment has its own; logs `/nnote/nnote-pr-*`; secrets `nnote/pr-*`),
and the RDS-managed secrets (`rds!db-*`, named by RDS, so no name tells them apart) only with
the tag RDS puts on them naming an `nnote-pr-*` instance. A condition holds for every resource
of its statement, so those secrets must have a statement of their own.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from deployer import inventory

FILE = "iam-policy-preview.json"  # docs/: this module's result, for reading (a test keeps it)
BOUNDARY_FILE = "iam-task-boundary-preview.json"  # docs/: preview_boundary's, the same way
PREVIEW_ENV_PATTERN = "pr-*"  # deployer/config.py: previews are named pr-<N>
ENV_TAG = inventory.ENV
MANAGED_BY_TAG = inventory.MANAGED_BY
# The deploy policy's name patterns (app `nnote`) and the previews' (env `pr-N`, prefix
# `nnote-pr-N`), applied in one pass (a replacement is never replaced again).
NAMES = {
    "log-group:/nnote/*": "log-group:/nnote/nnote-pr-*",  # /nnote/{app}-{env}
    "secret:nnote/*": "secret:nnote/pr-*",  # {app}/{env}/secret-key
    "parameter/nnote-deploy/*": "parameter/nnote-deploy/nnote/pr-*",  # /nnote-deploy/{app}/{env}/
    # deployer/boundary.py: name(app) -> preview_name(app)
    "policy/nnote-deploy-boundary": "policy/nnote-preview-deploy-boundary",
    "nnote-*": "nnote-pr-*",  # {app}-{env}...
}
_NAME = re.compile("|".join(re.escape(pattern) for pattern in NAMES))
# A condition on our tag gets its env twin under the matching "like" operator.
LIKE = {"StringEquals": "StringLike", "StringEqualsIfExists": "StringLikeIfExists"}
TAG_FAMILIES = ("aws:RequestTag", "aws:ResourceTag")
LEFT_OUT = {
    # Route 53 records carry no tags and a preview's record names are not known when bootstrap
    # runs: a preview role allowed to change records could delete prod's alias. A preview has
    # no domain (every preview would share [preview]'s).
    "HttpsDnsRecordsCreateAndDeleteOnly",
    # A scalable target's ARN is an id, and nnote-deploy does not tag them: a preview role
    # could deregister prod's autoscaling. The preview template does not autoscale.
    "ServiceAutoscalingOnEcsServices",
}
NOT_NARROWED = {
    "ReadWithoutResourceLevelPermissions": "read-only; these actions have no resource-level "
    "permissions",
    "DatabaseManagedMasterSecret": "RDS names the managed master secret (rds!db-UUID) of the "
    "instance being created; the create itself is limited to nnote-pr-* instances",
    "DatabaseManagedSecretKey": "read-only (kms:DescribeKey of the key RDS encrypts it with)",
    "TaskDefinitionDeregisterHasNoResourceLevel": "ecs:DeregisterTaskDefinition has no "
    "resource-level permissions: a preview role can mark staging's or prod's revisions "
    "INACTIVE (running tasks and services go on; a rollback to such a revision fails)",
    "HttpsCertificateRead": "read-only (describing certificates to find ours by its tags)",
    "HttpsDnsRecordsRead": "read-only",
    "HttpsFrontDoorRead": "read-only (finding our distribution by its comment and tags)",
    "ServiceLinkedRolesOnFirstUse": "account-wide roles AWS names, made once per account",
    "CostPriceListRead": "read-only, public prices",
}


def preview_policy(deploy: Mapping[str, Any]) -> dict[str, Any]:
    """The deploy policy narrowed to previews (the module docstring's three rules)."""
    policy = copy.deepcopy(dict(deploy))
    policy["Statement"] = [
        _narrowed(statement)
        for statement in policy["Statement"]
        if statement.get("Sid") not in LEFT_OUT
    ]
    return policy


def _narrowed(statement: dict[str, Any]) -> dict[str, Any]:
    statement["Resource"] = _preview_names(statement["Resource"])
    condition = statement.get("Condition", {})
    if "ArnLike" in condition:
        condition["ArnLike"] = {
            key: _preview_names(values) for key, values in condition["ArnLike"].items()
        }
    for operator, like in LIKE.items():
        for family in TAG_FAMILIES:
            if f"{family}/{MANAGED_BY_TAG}" in condition.get(operator, {}):
                condition.setdefault(like, {})[f"{family}/{ENV_TAG}"] = PREVIEW_ENV_PATTERN
    return statement


def _preview_names(values: str | list[str]) -> str | list[str]:
    """Names that become the same one (both boundaries) are given once; one name as a string."""
    if isinstance(values, str):
        return _preview_name(values)
    names = list(dict.fromkeys(_preview_name(v) for v in values))
    return names[0] if len(names) == 1 else names


def _preview_name(resource: str) -> str:
    return _NAME.sub(lambda found: NAMES[found.group(0)], resource)


def is_preview_only(statement: Mapping[str, Any]) -> bool:
    """Whether a statement of the preview policy reaches previews only: by an env condition
    on `pr-*`, or because every resource (or, for `*`, every cluster condition) names one."""
    condition = statement.get("Condition", {})
    env_keys = {f"{family}/{ENV_TAG}" for family in TAG_FAMILIES}
    if any(
        condition.get(like, {}).get(key) == PREVIEW_ENV_PATTERN
        for like in LIKE.values()
        for key in env_keys
    ):
        return True
    resources = statement["Resource"]
    names = [resources] if isinstance(resources, str) else list(resources)
    if names == ["*"]:
        names = [v for values in condition.get("ArnLike", {}).values() for v in _listed(values)]
    return bool(names) and all(_names_a_preview(name) for name in names)


def _listed(values: str | list[str]) -> list[str]:
    return [values] if isinstance(values, str) else values


def _names_a_preview(resource: str) -> bool:
    return any(preview in resource for preview in NAMES.values())


def rendered(deploy: Mapping[str, Any]) -> str:
    """docs/iam-policy-preview.json's text: the preview policy as docs/iam-policy.json is laid
    out."""
    return json.dumps(preview_policy(deploy), indent=2) + "\n"


# -- the previews' task boundary ------------------------------------------------------------

# RDS names the master-user secret it manages `rds!db-<UUID>` and tags it with its instance's
# ARN: that tag is what tells a preview's database password from staging's.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html
RDS_SECRETS = "secret:rds!db-*"
RDS_INSTANCE_TAG = "secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn"
RDS_INSTANCES = "arn:aws:rds:*:*:db:nnote-*"  # deployer/steps/database.py: {app}-{env}


def preview_boundary(boundary: Mapping[str, Any]) -> dict[str, Any]:
    """The task boundary narrowed to previews (the module docstring's last paragraph)."""
    policy = copy.deepcopy(dict(boundary))
    policy["Statement"] = [_bounded(statement) for statement in policy["Statement"]]
    return policy


def _bounded(statement: dict[str, Any]) -> dict[str, Any]:
    narrowed = _narrowed(statement)
    resources = _listed(narrowed["Resource"])
    managed = [r for r in resources if r.endswith(RDS_SECRETS)]
    if not managed:
        return narrowed
    if len(managed) < len(resources):
        raise ValueError(
            f"statement {statement.get('Sid', '?')}: the RDS-managed secrets need a statement "
            "of their own (its instance condition would hold for every resource listed)"
        )
    like = narrowed.setdefault("Condition", {}).setdefault("StringLike", {})
    like[RDS_INSTANCE_TAG] = _preview_name(RDS_INSTANCES)
    return narrowed


def rendered_boundary(boundary: Mapping[str, Any]) -> str:
    """docs/iam-task-boundary-preview.json's text."""
    return json.dumps(preview_boundary(boundary), indent=2) + "\n"
