"""The preview role's permissions: docs/iam-policy.json narrowed to previews (`pr-N`).

A pull request's branch chooses the workflow file that runs for it, so whoever can push a
branch can use the role that workflow assumes. The role previews deploy with must therefore
reach nothing of staging or prod. Its policy is derived here from the deploy policy by three
explicit rules, so the two never drift apart (docs/iam-policy-preview.json is the result, kept
equal to it by a test):

1. names: what the deploy policy names by the app's prefix names the previews' instead:
   `nnote-*` -> `nnote-pr-*` (databases, snapshots, repositories, clusters, services, task
   definitions, load balancers, target groups, listeners, alarms, task roles; `ecs:cluster`
   conditions too), log groups `/nnote/*` -> `/nnote/nnote-pr-*`, secrets `nnote/*` ->
   `nnote/pr-*`, lock parameters `/nnote-deploy/*` -> `/nnote-deploy/nnote/pr-*`;
2. tags: wherever a statement asks for our `nnote:managed-by` tag on the request or on the
   resource, it asks for an `nnote:env` tag like `pr-*` the same way (the same condition key,
   so the actions support it): what no name tells apart (VPCs, subnets, certificates,
   distributions) is told apart by its env tag;
3. left out: the statements a preview does not need and that cannot be narrowed to previews
   (LEFT_OUT says why).

What a preview still shares with every environment is in NOT_NARROWED, each with its reason;
a test fails when a statement is neither narrowed to previews nor listed there.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from deployer import inventory

FILE = "iam-policy-preview.json"  # docs/: this module's result, for reading (a test keeps it)
PREVIEW_ENV_PATTERN = "pr-*"  # deployer/config.py: previews are named pr-<N>
ENV_TAG = inventory.ENV
MANAGED_BY_TAG = inventory.MANAGED_BY
# The deploy policy's name patterns (app `nnote`) and the previews' (env `pr-N`, prefix
# `nnote-pr-N`), applied in one pass (a replacement is never replaced again).
NAMES = {
    "log-group:/nnote/*": "log-group:/nnote/nnote-pr-*",  # /nnote/{app}-{env}
    "secret:nnote/*": "secret:nnote/pr-*",  # {app}/{env}/secret-key
    "parameter/nnote-deploy/*": "parameter/nnote-deploy/nnote/pr-*",  # /nnote-deploy/{app}/{env}/
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
    "TaskRolesBoundaryRead": "read-only (the permissions boundary every task role carries)",
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
    resources = statement["Resource"]
    statement["Resource"] = (
        _preview_name(resources)
        if isinstance(resources, str)
        else [_preview_name(r) for r in resources]
    )
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
    return _preview_name(values) if isinstance(values, str) else [_preview_name(v) for v in values]


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
