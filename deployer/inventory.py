"""The tag schema and the queries that find what nnote-deploy owns (there is no state file).

Every resource gets five tags at creation. A resource is ours only when `nnote:app`,
`nnote:env` and `nnote:managed-by` all match: another app's, another environment's and
untagged look-alikes are never touched.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deployer.aws import Aws, absent, call, paginate

APP = "nnote:app"
ENV = "nnote:env"
COMPONENT = "nnote:component"
MANAGED_BY = "nnote:managed-by"
RUN = "nnote:run"
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

    def tags(self, component: str, name: str | None = None) -> list[dict[str, str]]:
        tags = [
            {"Key": APP, "Value": self.app},
            {"Key": ENV, "Value": self.env},
            {"Key": COMPONENT, "Value": component},
            {"Key": MANAGED_BY, "Value": MANAGER},
            {"Key": RUN, "Value": self.run_id},
        ]
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
    state: str


# -- the leak audit: everything still tagged for this app and environment -----------------


def leftovers(aws: Aws, owner: Owner, only_run: bool = False) -> list[Resource]:
    """Every resource that still carries our tags and still exists; with `only_run`, only
    those created by this run (tagged with its run id).

    The tagging API misses some types (ECR repositories, RDS subnet groups, IAM roles) and
    returns recently deleted ones, so each hit is confirmed by the service's own describe call
    and the missing types are listed by their own APIs.
    """
    run_id = owner.run_id if only_run else None
    found = [r for r in (_confirm(aws, arn) for arn in _tagged_arns(aws, owner, run_id)) if r]
    found += _subnet_groups(aws, owner, run_id) + _repositories(aws, owner, run_id)
    return sorted(set(found), key=lambda r: (r.component, r.type, r.id))


def _tagged_arns(aws: Aws, owner: Owner, run_id: str | None) -> list[tuple[str, dict[str, str]]]:
    filters = [
        {"Key": APP, "Values": [owner.app]},
        {"Key": ENV, "Values": [owner.env]},
        {"Key": MANAGED_BY, "Values": [MANAGER]},
    ]
    if run_id:
        filters.append({"Key": RUN, "Values": [run_id]})
    items = paginate(
        aws,
        "resourcegroupstaggingapi",
        "get_resources",
        "ResourceTagMappingList",
        TagFilters=filters,
    )
    return [(item["ResourceARN"], tags_as_dict(item.get("Tags"))) for item in items]


def _ours(owner: Owner, tags: Iterable[Mapping[str, str]] | None, run_id: str | None) -> bool:
    return owner.owns(tags) and (run_id is None or tags_as_dict(tags).get(RUN) == run_id)


def _confirm(aws: Aws, hit: tuple[str, dict[str, str]]) -> Resource | None:
    arn, tags = hit
    parts = arn.split(":", 5)
    service, tail = parts[2], parts[5]
    kind, _, ident = tail.replace(":", "/", 1).partition("/")
    if (service, kind) == ("rds", "snapshot") and ident.startswith("rds:"):
        return None  # an automated backup copies the instance's tags and goes with it
    confirm = CONFIRMERS.get((service, kind))
    state = confirm(aws, ident, arn) if confirm else "unknown"
    if state is None:
        return None
    return Resource(tags.get(COMPONENT, "?"), f"{service}:{kind}", ident or arn, state)


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


def _rds_instance(aws: Aws, ident: str, _arn: str) -> str | None:
    answer = absent(
        aws,
        "rds",
        "describe_db_instances",
        ("DBInstanceNotFound", "DBInstanceNotFoundFault"),
        DBInstanceIdentifier=ident,
    )
    items = (answer or {}).get("DBInstances", [])
    return items[0]["DBInstanceStatus"] if items else None


def _secret(aws: Aws, _ident: str, arn: str) -> str | None:
    answer = absent(
        aws, "secretsmanager", "describe_secret", ("ResourceNotFoundException",), SecretId=arn
    )
    if answer is None or answer.get("DeletedDate"):
        return None
    return "exists"


def _log_group(aws: Aws, ident: str, _arn: str) -> str | None:
    name = ident.removesuffix(":*").removesuffix("/*")
    groups = call(aws, "logs", "describe_log_groups", logGroupNamePrefix=name).get("logGroups", [])
    return "exists" if any(g["logGroupName"] == name for g in groups) else None


def _ecs(kind: str) -> Callable[[Aws, str, str], str | None]:
    def confirm(aws: Aws, _ident: str, arn: str) -> str | None:
        if kind == "cluster":
            items = call(aws, "ecs", "describe_clusters", clusters=[arn]).get("clusters", [])
        elif kind == "service":
            cluster = arn.split("/")[-2]
            items = call(aws, "ecs", "describe_services", cluster=cluster, services=[arn]).get(
                "services", []
            )
        else:
            items = call(aws, "ecs", "describe_task_definition", taskDefinition=arn).get(
                "taskDefinition"
            )
            items = [items] if items else []
        states = [i.get("status", "ACTIVE") for i in items]
        return states[0] if states and states[0] not in ("INACTIVE", "DELETE_IN_PROGRESS") else None

    return confirm


def _elb(aws: Aws, _ident: str, arn: str) -> str | None:
    answer = absent(
        aws, "elbv2", "describe_load_balancers", ("LoadBalancerNotFound",), LoadBalancerArns=[arn]
    )
    items = (answer or {}).get("LoadBalancers", [])
    return items[0]["State"]["Code"] if items else None


def _target_group(aws: Aws, _ident: str, arn: str) -> str | None:
    answer = absent(
        aws, "elbv2", "describe_target_groups", ("TargetGroupNotFound",), TargetGroupArns=[arn]
    )
    return "exists" if (answer or {}).get("TargetGroups") else None


CONFIRMERS: dict[tuple[str, str], Callable[[Aws, str, str], str | None]] = {
    ("ec2", "vpc"): _ec2_state("describe_vpcs", "Vpcs", "VpcIds"),
    ("ec2", "subnet"): _ec2_state("describe_subnets", "Subnets", "SubnetIds"),
    ("ec2", "security-group"): _ec2_state("describe_security_groups", "SecurityGroups", "GroupIds"),
    ("ec2", "internet-gateway"): _ec2_state(
        "describe_internet_gateways", "InternetGateways", "InternetGatewayIds"
    ),
    ("ec2", "route-table"): _ec2_state("describe_route_tables", "RouteTables", "RouteTableIds"),
    ("rds", "db"): _rds_instance,
    ("secretsmanager", "secret"): _secret,
    ("logs", "log-group"): _log_group,
    ("ecs", "cluster"): _ecs("cluster"),
    ("ecs", "service"): _ecs("service"),
    ("ecs", "task-definition"): _ecs("task-definition"),
    ("elasticloadbalancing", "loadbalancer"): _elb,
    ("elasticloadbalancing", "targetgroup"): _target_group,
}


def _subnet_groups(aws: Aws, owner: Owner, run_id: str | None) -> list[Resource]:
    found = []
    for group in paginate(aws, "rds", "describe_db_subnet_groups", "DBSubnetGroups"):
        tags = call(aws, "rds", "list_tags_for_resource", ResourceName=group["DBSubnetGroupArn"])
        if _ours(owner, tags.get("TagList"), run_id):
            found.append(
                Resource(
                    "database",
                    "rds:subgrp",
                    group["DBSubnetGroupName"],
                    group.get("SubnetGroupStatus", "exists"),
                )
            )
    return found


def _repositories(aws: Aws, owner: Owner, run_id: str | None) -> list[Resource]:
    found = []
    for repo in paginate(aws, "ecr", "describe_repositories", "repositories"):
        tags = call(aws, "ecr", "list_tags_for_resource", resourceArn=repo["repositoryArn"])
        if _ours(owner, tags.get("tags"), run_id):
            found.append(Resource("registry", "ecr:repository", repo["repositoryName"], "exists"))
    return found
