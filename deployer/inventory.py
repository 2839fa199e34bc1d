"""The tag schema and the queries that find what nnote-deploy owns (there is no state file).

Every resource gets five tags at creation (six in a preview: `nnote:expires`, when `gc` may
delete it). A resource is ours only when `nnote:app`, `nnote:env` and `nnote:managed-by` all
match: another app's, another environment's and untagged look-alikes are never touched.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deployer.aws import Aws, absent, call, paginate
from deployer.resource_state import State, state_of

APP = "nnote:app"
ENV = "nnote:env"
COMPONENT = "nnote:component"
MANAGED_BY = "nnote:managed-by"
RUN = "nnote:run"
# A preview's expiry, ISO-8601 UTC (2026-12-06T04:20:00Z): `gc` deletes it after then.
EXPIRES = "nnote:expires"
MANAGER = "nnote-deploy"


def new_run_id() -> str:
    """GitHub's run id in Actions, so resources lead back to the workflow run; else a fresh id."""
    github = os.environ.get("GITHUB_RUN_ID")
    if github:
        return f"gh-{github}-{os.environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class Owner:
    app: str
    env: str
    run_id: str
    # Set for previews only: every resource they make carries it.
    expires: str | None = None

    def tags(self, component: str, name: str | None = None) -> list[dict[str, str]]:
        tags = [
            {"Key": APP, "Value": self.app},
            {"Key": ENV, "Value": self.env},
            {"Key": COMPONENT, "Value": component},
            {"Key": MANAGED_BY, "Value": MANAGER},
            {"Key": RUN, "Value": self.run_id},
        ]
        if self.expires:
            tags.append({"Key": EXPIRES, "Value": self.expires})
        if name:
            tags.append({"Key": "Name", "Value": name})
        return tags

    def lower_tags(self, component: str) -> list[dict[str, str]]:
        """The same tags spelled the way ECS wants them (key/value)."""
        return [{"key": t["Key"], "value": t["Value"]} for t in self.tags(component)]

    def tag_specifications(
        self, resource_type: str, component: str, name: str
    ) -> list[dict[str, Any]]:
        return [{"ResourceType": resource_type, "Tags": self.tags(component, name)}]

    def ec2_filters(self, component: str | None = None) -> list[dict[str, Any]]:
        wanted = {APP: self.app, ENV: self.env, MANAGED_BY: MANAGER}
        if component:
            wanted[COMPONENT] = component
        return [{"Name": f"tag:{key}", "Values": [value]} for key, value in wanted.items()]

    def owns(self, tags: Iterable[Mapping[str, str]] | None) -> bool:
        found = tags_as_dict(tags)
        return (found.get(APP), found.get(ENV), found.get(MANAGED_BY)) == (
            self.app,
            self.env,
            MANAGER,
        )


def tags_as_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Tags as one dict, whichever spelling the service uses (Key/Value or key/value)."""
    result = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        value = tag.get("Value", tag.get("value"))
        if key is not None:
            result[key] = value or ""
    return result


@dataclass(frozen=True)
class Resource:
    """One owned resource as `status` and the leak audit show it."""

    component: str
    type: str
    id: str
    detail: str  # the service's own words: "available", "1/1 running, rollout COMPLETED"

    @property
    def state(self) -> State:
        return state_of(self.type, self.detail)

    def as_json(self) -> dict[str, str]:
        return {
            "component": self.component,
            "type": self.type,
            "id": self.id,
            "state": self.state.value,
            "detail": self.detail,
        }


# -- the leak audit: everything still tagged for this app and environment -----------------


def role_names(prefix: str) -> dict[str, str]:
    """The environment's IAM roles, by what they are for (the tagging API never lists roles)."""
    return {"execution": f"{prefix}-execution", "task": f"{prefix}-task"}


def leftovers(aws: Aws, owner: Owner, only_run: bool = False) -> list[Resource]:
    """Every resource that still carries our tags and still exists; with `only_run`, only
    those created by this run (tagged with its run id).

    The tagging API lists recently deleted resources for a while, so each hit is confirmed
    by the service's own describe call; it never lists IAM roles, and may not list a resource
    made a moment ago, so our roles, repository and DB subnet group are also looked up by
    their names. Only what is ours is read: other teams' resources are never asked about.
    """
    hits = tagged_everywhere(aws, owner, owner.run_id if only_run else None)
    run_id = owner.run_id if only_run else None
    confirmers = {**CONFIRMERS, "ecs:task-definition": _task_definitions(aws, hits)}
    found = [r for r in (_confirm(confirmers, aws, hit) for hit in hits) if r]
    found += _named(aws, owner, run_id)
    unique = {(r.type, r.id): r for r in found}
    return sorted(unique.values(), key=lambda r: (r.component, r.type, r.id))


def is_kept_snapshot(resource: Resource, prefix: str) -> bool:
    """A snapshot the settings ask to keep: `down`'s final one, or one taken before a
    migration (deleted only by `down --delete-snapshots`). Kept, never a leak."""
    return resource.type == "rds:snapshot" and resource.id.startswith(
        (f"{prefix}-final-", f"{prefix}-release-")
    )


def tagged_everywhere(
    aws: Aws, owner: Owner, run_id: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    """(ARN, tags) of everything the tagging API lists for the environment: in its region,
    and its CloudFront distribution, listed in us-east-1 only. Unconfirmed: the listing
    lags behind deletes."""
    hits = _tagged_arns(aws, owner, run_id)
    if aws.region != CLOUDFRONT_REGION:
        hits += _tagged_arns(aws, owner, run_id, "cloudfront:distribution")
    return hits


def tagged_by_env(aws: Aws, app: str) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Everything the tagging API lists for the app, by environment (its CloudFront
    distributions from us-east-1): how `gc` and `status --all` find every environment."""
    filters = [{"Key": APP, "Values": [app]}, {"Key": MANAGED_BY, "Values": [MANAGER]}]
    listings: list[tuple[Aws, dict[str, Any]]] = [(aws, {})]
    if aws.region != CLOUDFRONT_REGION:
        cloudfront = {"ResourceTypeFilters": ["cloudfront:distribution"]}
        listings.append((aws.in_region(CLOUDFRONT_REGION), cloudfront))
    found: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for where, by_type in listings:
        items = paginate(
            where,
            "resourcegroupstaggingapi",
            "get_resources",
            "ResourceTagMappingList",
            TagFilters=filters,
            **by_type,
        )
        for item in items:
            tags = tags_as_dict(item.get("Tags"))
            found.setdefault(tags.get(ENV, "?"), []).append((item["ResourceARN"], tags))
    return found


def tagged(aws: Aws, owner: Owner, resource_type: str) -> list[str]:
    """The ARNs of our resources of one type (`acm:certificate`) the tagging API lists."""
    return [arn for arn, _ in _tagged_arns(aws, owner, None, resource_type)]


# CloudFront is global: the tagging API lists its distributions in this region only.
CLOUDFRONT_REGION = "us-east-1"


def _tagged_arns(
    aws: Aws, owner: Owner, run_id: str | None, resource_type: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    if resource_type == "cloudfront:distribution":
        aws = aws.in_region(CLOUDFRONT_REGION)
    filters = [
        {"Key": APP, "Values": [owner.app]},
        {"Key": ENV, "Values": [owner.env]},
        {"Key": MANAGED_BY, "Values": [MANAGER]},
    ]
    if run_id:
        filters.append({"Key": RUN, "Values": [run_id]})
    by_type = {"ResourceTypeFilters": [resource_type]} if resource_type else {}
    items = paginate(
        aws,
        "resourcegroupstaggingapi",
        "get_resources",
        "ResourceTagMappingList",
        TagFilters=filters,
        **by_type,
    )
    return [(item["ResourceARN"], tags_as_dict(item.get("Tags"))) for item in items]


def _ours(owner: Owner, tags: Iterable[Mapping[str, str]] | None, run_id: str | None) -> bool:
    return owner.owns(tags) and (run_id is None or tags_as_dict(tags).get(RUN) == run_id)


def key_of(arn: str) -> tuple[str, str]:
    """An ARN as the audit names it: ("service:kind", id), e.g. ("ecs:cluster", "nnote-staging")."""
    parts = arn.split(":", 5)
    service, tail = parts[2], parts[5]
    kind, _, ident = tail.replace(":", "/", 1).partition("/")
    return f"{service}:{kind}", ident or arn


def _confirm(
    confirmers: dict[str, Confirmer], aws: Aws, hit: tuple[str, dict[str, str]]
) -> Resource | None:
    arn, tags = hit
    kind, ident = key_of(arn)
    if kind == "rds:snapshot" and ident.startswith("rds:"):
        return None  # an automated backup copies the instance's tags and goes with it
    confirm = confirmers.get(kind)
    # A type we never make but that carries our tags is reported, unconfirmed, to be safe.
    state = confirm(aws, ident, arn) if confirm else "unknown type: check it by hand"
    if state is None:
        return None
    return Resource(tags.get(COMPONENT, "?"), kind, ident, state)


def _ec2_state(operation: str, key: str, id_param: str) -> Callable[[Aws, str, str], str | None]:
    def confirm(aws: Aws, ident: str, _arn: str) -> str | None:
        answer = absent(aws, "ec2", operation, MISSING_EC2, **{id_param: [ident]})
        items = (answer or {}).get(key, [])
        return (items[0].get("State") or "exists") if items else None

    return confirm


MISSING_EC2 = (
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
)


def _described(
    service: str,
    operation: str,
    missing: tuple[str, ...],
    params: Callable[[str, str], dict[str, Any]],
    state: Callable[[dict[str, Any]], str | None],
) -> Callable[[Aws, str, str], str | None]:
    """A confirmer: describe one resource by id or ARN; None when AWS says it is gone."""

    def confirm(aws: Aws, ident: str, arn: str) -> str | None:
        answer = absent(aws, service, operation, missing, **params(ident, arn))
        return state(answer) if answer else None

    return confirm


def _first(key: str, field: str | None = None) -> Callable[[dict[str, Any]], str | None]:
    def state(answer: dict[str, Any]) -> str | None:
        items = answer.get(key) or []
        if not items:
            return None
        return str(items[0].get(field, "exists")) if field else "exists"

    return state


def _secret(aws: Aws, _ident: str, arn: str) -> str | None:
    answer = absent(
        aws, "secretsmanager", "describe_secret", ("ResourceNotFoundException",), SecretId=arn
    )
    if answer is None or answer.get("DeletedDate"):
        return None
    return "exists"


def _distribution(aws: Aws, ident: str, _arn: str) -> str | None:
    """A distribution is global: ours is the one made for this region's environment (its
    comment says which), not the same app and env's in another region."""
    answer = absent(aws, "cloudfront", "get_distribution", ("NoSuchDistribution",), Id=ident)
    if answer is None:
        return None
    distribution = answer["Distribution"]
    comment = distribution.get("DistributionConfig", {}).get("Comment", "")
    return (
        str(distribution.get("Status", "exists")) if comment.endswith(f" in {aws.region}") else None
    )


def _log_group(aws: Aws, ident: str, _arn: str) -> str | None:
    name = ident.removesuffix(":*").removesuffix("/*")
    groups = call(aws, "logs", "describe_log_groups", logGroupNamePrefix=name).get("logGroups", [])
    return "exists" if any(g["logGroupName"] == name for g in groups) else None


def _ecs(kind: str) -> Confirmer:
    def confirm(aws: Aws, _ident: str, arn: str) -> str | None:
        if kind == "cluster":
            items = call(aws, "ecs", "describe_clusters", clusters=[arn]).get("clusters", [])
        else:
            cluster = arn.split("/")[-2]
            items = call(aws, "ecs", "describe_services", cluster=cluster, services=[arn]).get(
                "services", []
            )
        states = [i.get("status", "ACTIVE") for i in items]
        # A deleted service drains, a deleted cluster deprovisions, then both are INACTIVE.
        gone = ("INACTIVE", "DRAINING", "DEPROVISIONING")
        return states[0] if states and states[0] not in gone else None

    return confirm


def _task_definitions(aws: Aws, hits: list[tuple[str, dict[str, str]]]) -> Confirmer:
    active = active_revisions(aws, [arn for arn, _ in hits])
    return lambda _aws, _ident, arn: "ACTIVE" if arn in active else None


def active_revisions(aws: Aws, arns: list[str]) -> set[str]:
    """Deregistered revisions stay listed by the tagging API, INACTIVE, for good: one list of
    each family's ACTIVE revisions confirms them all (after 100 deploys, one call, not 100)."""
    families = {
        arn.split(":task-definition/")[1].rsplit(":", 1)[0]
        for arn in arns
        if ":task-definition/" in arn
    }
    return {
        arn
        for family in families
        for arn in paginate(
            aws,
            "ecs",
            "list_task_definitions",
            "taskDefinitionArns",
            familyPrefix=family,
            status="ACTIVE",
        )
    }


Confirmer = Callable[[Aws, str, str], str | None]
CONFIRMERS: dict[str, Confirmer] = {
    "ec2:vpc": _ec2_state("describe_vpcs", "Vpcs", "VpcIds"),
    "ec2:subnet": _ec2_state("describe_subnets", "Subnets", "SubnetIds"),
    "ec2:security-group": _ec2_state("describe_security_groups", "SecurityGroups", "GroupIds"),
    "ec2:internet-gateway": _ec2_state(
        "describe_internet_gateways", "InternetGateways", "InternetGatewayIds"
    ),
    "ec2:route-table": _ec2_state("describe_route_tables", "RouteTables", "RouteTableIds"),
    "rds:db": _described(
        "rds",
        "describe_db_instances",
        ("DBInstanceNotFound", "DBInstanceNotFoundFault"),
        lambda ident, _arn: {"DBInstanceIdentifier": ident},
        _first("DBInstances", "DBInstanceStatus"),
    ),
    "rds:subgrp": _described(
        "rds",
        "describe_db_subnet_groups",
        ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"),
        lambda ident, _arn: {"DBSubnetGroupName": ident},
        _first("DBSubnetGroups", "SubnetGroupStatus"),
    ),
    "rds:snapshot": _described(
        "rds",
        "describe_db_snapshots",
        ("DBSnapshotNotFound", "DBSnapshotNotFoundFault"),
        lambda ident, _arn: {"DBSnapshotIdentifier": ident},
        _first("DBSnapshots", "Status"),
    ),
    "ecr:repository": _described(
        "ecr",
        "describe_repositories",
        ("RepositoryNotFoundException",),
        lambda ident, _arn: {"repositoryNames": [ident]},
        _first("repositories"),
    ),
    "secretsmanager:secret": _secret,
    "logs:log-group": _log_group,
    "ssm:parameter": _described(
        "ssm",
        "get_parameter",
        ("ParameterNotFound",),
        lambda ident, _arn: {"Name": f"/{ident}"},
        lambda _answer: "exists",
    ),
    "ecs:cluster": _ecs("cluster"),
    "ecs:service": _ecs("service"),
    "elasticloadbalancing:loadbalancer": _described(
        "elbv2",
        "describe_load_balancers",
        ("LoadBalancerNotFound",),
        lambda _ident, arn: {"LoadBalancerArns": [arn]},
        lambda answer: next((lb["State"]["Code"] for lb in answer["LoadBalancers"]), None),
    ),
    "elasticloadbalancing:targetgroup": _described(
        "elbv2",
        "describe_target_groups",
        ("TargetGroupNotFound",),
        lambda _ident, arn: {"TargetGroupArns": [arn]},
        _first("TargetGroups"),
    ),
    "elasticloadbalancing:listener-rule": _described(
        "elbv2",
        "describe_rules",
        ("RuleNotFound",),
        lambda _ident, arn: {"RuleArns": [arn]},
        _first("Rules"),
    ),
    "acm:certificate": _described(
        "acm",
        "describe_certificate",
        ("ResourceNotFoundException",),
        lambda _ident, arn: {"CertificateArn": arn},
        lambda answer: str(answer["Certificate"].get("Status", "exists")),
    ),
    "cloudfront:distribution": _distribution,
    "cloudwatch:alarm": _described(
        "cloudwatch",
        "describe_alarms",
        (),
        lambda ident, _arn: {"AlarmNames": [ident]},
        _first("MetricAlarms", "StateValue"),
    ),
    "elasticloadbalancing:listener": _described(
        "elbv2",
        "describe_listeners",
        ("ListenerNotFound",),
        lambda _ident, arn: {"ListenerArns": [arn]},
        _first("Listeners"),
    ),
}


def _named(aws: Aws, owner: Owner, run_id: str | None) -> list[Resource]:
    """Our own roles, repository and DB subnet group, found by their names."""
    prefix = f"{owner.app}-{owner.env}"
    found = [
        Resource("runtime", "iam:role", name, "exists")
        for name in _role_names_like(aws, prefix)
        if _ours(owner, _role_tags(aws, name), run_id)
    ]
    group = absent(
        aws,
        "rds",
        "describe_db_subnet_groups",
        ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"),
        DBSubnetGroupName=prefix,
    )
    for item in (group or {}).get("DBSubnetGroups", []):
        tags = call(aws, "rds", "list_tags_for_resource", ResourceName=item["DBSubnetGroupArn"])
        if _ours(owner, tags.get("TagList"), run_id):
            state = item.get("SubnetGroupStatus", "exists")
            found.append(Resource("database", "rds:subgrp", prefix, state))
    repos = absent(
        aws,
        "ecr",
        "describe_repositories",
        ("RepositoryNotFoundException",),
        repositoryNames=[prefix],
    )
    for repo in (repos or {}).get("repositories", []):
        tags = call(aws, "ecr", "list_tags_for_resource", resourceArn=repo["repositoryArn"])
        if _ours(owner, tags.get("tags"), run_id):
            found.append(Resource("registry", "ecr:repository", prefix, "exists"))
    return found


def _role_names_like(aws: Aws, prefix: str) -> list[str]:
    """Roles named `PREFIX-*`: ours, and any a failed run or a person left with our tags."""
    roles = paginate(aws, "iam", "list_roles", "Roles")
    return [role["RoleName"] for role in roles if role["RoleName"].startswith(f"{prefix}-")]


def _role_tags(aws: Aws, name: str) -> list[dict[str, str]] | None:
    answer = absent(
        aws, "iam", "list_role_tags", ("NoSuchEntity", "NoSuchEntityException"), RoleName=name
    )
    return None if answer is None else list(answer.get("Tags") or [])
