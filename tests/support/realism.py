"""A realism layer in front of the moto server: AWS's rules that moto does not enforce.

moto accepts far more than AWS does and applies every change at once. This WSGI middleware
sits between every client and moto (the tests' own process and the CLI subprocesses alike)
and, for calls made with the deployer's credentials only, brings back what real AWS does:

- **permissions**: every call is checked against docs/iam-policy.json with its resources and
  conditions, including what AWS authorizes besides the call itself (tag-on-create,
  iam:PassRole, service-linked roles on an account's first use); a denied call is answered
  AccessDenied and recorded, so the test fails naming it;
- **documented constraints**: name lengths and characters, Fargate CPU/memory pairs, RDS
  engine versions and instance classes (and the catalogue calls moto lacks);
- **eventual consistency**, counted in calls rather than seconds so that runs are
  deterministic at any poll speed: the tagging API keeps listing deleted resources; a
  force-deleted secret is "scheduled for deletion" for a while; a new role is not yet
  assumable by ECS; an RDS instance is `creating` before `available` and `deleting` before
  gone, and refuses actions meanwhile; ENIs of deleted services, load balancers and databases
  linger in their subnets and security groups; a draining service keeps its cluster busy;
  a CloudFront distribution is `InProgress` for a while after each change; a task started by
  RunTask runs a moment, then stops with its container's exit code (moto's run for ever);
  ACM gives a certificate's DNS validation record a moment after the request, and issues it
  only once that record is in a Route 53 zone; a certificate stays in use a moment after its
  listener;
- **ordering**: a subnet or security group in use, a subnet group in use, a cluster with
  services, a target group behind a listener, a certificate on a listener, an enabled or
  still deploying distribution cannot be deleted; a distribution changes only with its
  current ETag; Route 53 creates only records that do not exist and deletes only records
  given exactly; ECS list calls paginate; the tagging API lists a region's resources only
  (CloudFront's in us-east-1).

Two concerns live in modules of their own, registered by every layer: the IPv6 VPC and the
load balancer without public IPv4 behind CloudFront (tests/support/dual_stack.py: moto's gaps
on that path, and AWS's rules for it), and a cluster still applying an earlier capacity
provider change (tests/support/realism_clusters.py).

The tests' own calls (access key `testing`) see moto's plain truth and are never refused;
every other key is held to the rules. `python -m tests.support.realism PORT` serves it alone
(scripts/demo uses it the way the tests do).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import boto3
import botocore.session
from botocore.exceptions import ClientError

from tests.support import iam_policy
from tests.support.aws_wire import (
    Answer,
    WireCall,
    error,
    json_answer,
    query_answer,
    read_call,
    signed_by,
)

DEPLOYER_KEY = "AKIANNOTEDEPLOYER001"  # what the deployer runs with in the tests
BOOTSTRAP_KEY = "AKIANNOTEBOOTSTRAP01"  # what `nnote-deploy bootstrap` runs with in the tests
ADMIN_KEY = "testing"  # the tests' own calls: set-up, inspection, bystanders
ACCOUNT = "123456789012"

# How many calls a transient state lasts (see the module docstring).
CREATING_DESCRIBES = 3
DELETING_CALLS = 4
SECRET_DELETION_CALLS = 3
ROLE_PROPAGATION_CALLS = 2
LINGERING_ENI_CALLS = 2
DRAINING_CALLS = 2
ONE_OFF_RUNNING_DESCRIBES = 2  # DescribeTasks sees a one-off task RUNNING, then STOPPED
STALE_LISTINGS = 3
DISTRIBUTION_DEPLOYING_CALLS = 3  # GetDistribution answers InProgress after a create/update
VALIDATION_RECORD_DESCRIBES = 2  # DescribeCertificate answers without the record at first
ISSUING_DESCRIBES = 2  # ... and PENDING_VALIDATION a while after the record is in DNS
CERTIFICATE_RELEASE_CALLS = 2  # DeleteCertificate: still in use after the listener let go

POLICY = Path(__file__).resolve().parents[2] / "docs" / "iam-policy.json"
BOOTSTRAP_POLICY = POLICY.with_name("bootstrap-policy.json")


class Rule:
    """One realism concern: may answer a call itself (before), or look at moto's answer."""

    def __init__(self, layer: Realism) -> None:
        self.layer = layer

    def before(self, call: WireCall) -> Answer | None:
        return None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        return None


@dataclass
class Realism:
    """The rules and the state they keep about the emulated account, reset with moto."""

    url: str = ""
    policy: Path | None = POLICY  # the deploy role's policy; None lets every call through
    # The policies of other keys than the deployer's, by access key (with `policy` set).
    policies: dict[str, Path] = field(default_factory=lambda: {BOOTSTRAP_KEY: BOOTSTRAP_POLICY})
    denials: list[str] = field(default_factory=list)
    calls: list[WireCall] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from tests.support.realism_clusters import ClusterUpdates  # it imports Rule from here

        self.rules: list[Rule] = [
            rule(self)
            for rule in (
                Permissions,
                Constraints,
                Boundaries,
                RdsCatalogue,
                Quotas,
                ServiceLinkedRoles,
                RolePropagation,
                SecretDeletion,
                RdsLifecycle,
                InUse,
                DrainingServices,
                ServiceSettingsEcho,
                CapacityProviderStrategies,
                ClusterUpdates,
                OneOffTasks,
                CloudFrontDistributions,
                CertificateValidation,
                CertificatesInUse,
                RecordChanges,
                StaleTags,
                Pagination,
            )
        ]
        from tests.support.dual_stack import install  # it imports Rule from this module

        install(self)  # the IPv6 VPC and load balancer: moto's gaps, and AWS's rules

    def reset(self) -> None:
        with self.lock:
            self.state.clear()
            self.denials.clear()
            self.calls.clear()

    def counter(self, name: str) -> dict[str, int]:
        """A named table of countdowns: key -> calls left in a transient state."""
        return self.state.setdefault(name, {})

    @staticmethod
    def tick(table: dict[str, int], key: str) -> bool:
        """True while `key` is still in its transient state; each look uses up one call."""
        left = table.get(key, 0)
        if left <= 0:
            table.pop(key, None)
            return False
        table[key] = left - 1
        return True

    def admin(self, service: str, region: str = "eu-west-1") -> Any:
        """A client with the tests' own credentials: sees moto as it is."""
        return _admin_client(self.url, service, region)

    def handle(self, call: WireCall, forward: Callable[[], Answer]) -> Answer:
        with self.lock:
            self.calls.append(call)
        for rule in self.rules:
            early = rule.before(call)
            if early is not None:
                return early
        answer = forward()
        for rule in self.rules:
            answer = rule.after(call, answer) or answer
        return answer


@cache
def _admin_client(url: str, service: str, region: str) -> Any:
    session = boto3.session.Session(botocore_session=_admin_session())
    return session.client(
        service,
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=ADMIN_KEY,
        aws_secret_access_key=ADMIN_KEY,
    )


@cache
def _admin_session() -> Any:
    return botocore.session.get_session()


def ok(answer: Answer) -> bool:
    return answer.status < 300


# -- permissions ----------------------------------------------------------------------------


class Permissions(Rule):
    """The call and everything AWS authorizes with it, checked against the policy of the
    call's access key (tests/support/iam_policy.py); an operation the checker does not know is
    refused too."""

    def before(self, call: WireCall) -> Answer | None:
        if self.layer.policy is None:
            return None
        path = self.layer.policies.get(call.access_key, self.layer.policy)
        document = _policy_document(path, path.stat().st_mtime)
        lookup = iam_policy.BotoLookup(
            call.region, client=lambda service, region_name: self.layer.admin(service, region_name)
        )
        checked = iam_policy.Call(call.service, call.operation, call.params, call.region)
        try:
            denied = iam_policy.denials(document, checked, lookup)
        except iam_policy.UnmappedOperation as unknown:
            denied = [f"{call.service}:{call.operation} (no authorization mapping: {unknown})"]
        if not denied:
            return None
        with self.layer.lock:
            self.layer.denials += denied
        code = {"ec2": "UnauthorizedOperation", "json": "AccessDeniedException"}.get(
            call.protocol if call.protocol == "json" else call.service, "AccessDenied"
        )
        return error(
            call,
            code,
            f"User: arn:aws:sts::{ACCOUNT}:assumed-role/nnote-deploy/test is not authorized "
            f"to perform: {denied[0]} because no identity-based policy allows it",
            403,
        )


@cache
def _policy_document(path: Path, _mtime: float) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


# -- documented constraints ------------------------------------------------------------------

# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
# The same table as deployer/config.py's on purpose: this copy is the tests' oracle, written
# from AWS's page, not from the code it checks.
FARGATE_SIZES: dict[int, range | tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}
MYSQL_VERSIONS = ("8.0.39", "8.0.40", "8.0.41", "8.0.42", "8.4.4", "8.4.5", "8.4.6")
MYSQL_DEFAULTS = {"8.0": "8.0.42", "8.4": "8.4.6"}
INSTANCE_CLASSES = tuple(
    f"db.{family}.{size}"
    for family in ("t3", "t4g")
    for size in ("micro", "small", "medium", "large", "xlarge", "2xlarge")
) + tuple(
    f"db.{family}.{size}"
    for family in ("m5", "m6g", "m6i", "m7g", "r5", "r6g", "r6i", "r7g")
    for size in ("large", "xlarge", "2xlarge", "4xlarge")
)
RDS_IDENTIFIER = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]*(?<!-)$")
ELB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


def _elb_name(kind: str, name: str) -> str | None:
    if len(name) > 32:
        return f"{kind} name cannot be longer than 32 characters"
    if not ELB_NAME.match(name):
        return f"{kind} name '{name}' can only contain alphanumeric characters and hyphens"
    if kind == "LoadBalancer" and name.startswith("internal-"):
        return "LoadBalancer name cannot begin with 'internal-'"
    return None


def _fargate(params: dict[str, Any]) -> str | None:
    if "FARGATE" not in params.get("requiresCompatibilities", []):
        return None
    try:
        cpu, memory = int(params["cpu"]), int(params["memory"])
    except (KeyError, ValueError):
        return "Fargate requires task definition to have cpu and memory values"
    if memory not in FARGATE_SIZES.get(cpu, ()):
        return (
            f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
            "See the Amazon ECS documentation for the valid values."
        )
    return None


def mysql_version(requested: str) -> str | None:
    """The full version RDS would create for `requested` (a major picks its default minor)."""
    if requested in MYSQL_VERSIONS:
        return requested
    return MYSQL_DEFAULTS.get(requested)


def _rds_create(params: dict[str, Any]) -> tuple[str, str] | None:
    identifier = params["DBInstanceIdentifier"]
    if len(identifier) > 63 or not RDS_IDENTIFIER.match(identifier):
        return (
            "InvalidParameterValue",
            "The parameter DBInstanceIdentifier is not a valid identifier. Identifiers must "
            "begin with a letter; must contain only ASCII letters, digits, and hyphens; and "
            "must not end with a hyphen or contain two consecutive hyphens.",
        )
    version = params.get("EngineVersion", "8.0")
    if params.get("Engine") == "mysql" and mysql_version(version) is None:
        return ("InvalidParameterCombination", f"Cannot find version {version} for mysql")
    if params["DBInstanceClass"] not in INSTANCE_CLASSES:
        return (
            "InvalidParameterCombination",
            "RDS does not support creating a DB instance with the following combination: "
            f"DBInstanceClass={params['DBInstanceClass']}, Engine=mysql, "
            f"EngineVersion={version}, LicenseModel=general-public-license.",
        )
    return None


def _snapshot_name(params: dict[str, Any]) -> tuple[str, str] | None:
    name = params.get("FinalDBSnapshotIdentifier")
    if name is None or (len(name) <= 255 and RDS_IDENTIFIER.match(name)):
        return None
    return (
        "InvalidParameterValue",
        "The parameter FinalDBSnapshotIdentifier is not a valid identifier.",
    )


def _pattern(
    key: str, pattern: str, longest: int, code: str = "ValidationException"
) -> Callable[[dict[str, Any]], tuple[str, str] | None]:
    compiled = re.compile(pattern)

    def check(params: dict[str, Any]) -> tuple[str, str] | None:
        value = str(params.get(key, ""))
        if len(value) <= longest and compiled.fullmatch(value):
            return None
        return (code, f"{key} '{value}' does not satisfy the constraints of the API")

    return check


CONSTRAINTS: dict[tuple[str, str], Callable[[dict[str, Any]], tuple[str, str] | None]] = {
    ("elbv2", "CreateLoadBalancer"): lambda p: _as_validation(_elb_name("LoadBalancer", p["Name"])),
    ("elbv2", "CreateTargetGroup"): lambda p: _as_validation(_elb_name("Target group", p["Name"])),
    ("ecs", "RegisterTaskDefinition"): lambda p: _as_client_error(_fargate(p)),
    ("rds", "CreateDBInstance"): _rds_create,
    ("rds", "DeleteDBInstance"): _snapshot_name,
    ("iam", "CreateRole"): _pattern("RoleName", r"[\w+=,.@-]+", 64, "ValidationError"),
    ("ecr", "CreateRepository"): _pattern(
        "repositoryName",
        r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*",
        256,
        "InvalidParameterException",
    ),
    ("ec2", "CreateSecurityGroup"): _pattern(
        "GroupName", r"(?!sg-)[\x20-\x7e]+", 255, "InvalidParameterValue"
    ),
    ("secretsmanager", "CreateSecret"): _pattern("Name", r"[A-Za-z0-9/_+=.@-]+", 512),
    ("logs", "CreateLogGroup"): _pattern("logGroupName", r"[.\-_/#A-Za-z0-9]+", 512),
    ("ecs", "CreateCluster"): _pattern(
        "clusterName", r"[A-Za-z0-9_-]+", 255, "InvalidParameterException"
    ),
    ("ecs", "CreateService"): _pattern(
        "serviceName", r"[A-Za-z0-9_-]+", 255, "InvalidParameterException"
    ),
}


def _as_validation(message: str | None) -> tuple[str, str] | None:
    return ("ValidationError", message) if message else None


def _as_client_error(message: str | None) -> tuple[str, str] | None:
    return ("ClientException", message) if message else None


class Constraints(Rule):
    def before(self, call: WireCall) -> Answer | None:
        check = CONSTRAINTS.get((call.service, call.operation))
        problem = check(call.params) if check else None
        return error(call, *problem) if problem else None


class Boundaries(Rule):
    """A permissions boundary must be a policy that exists (moto takes any ARN); GetPolicy
    says how many roles carry a policy as theirs (moto leaves PermissionsBoundaryUsageCount
    out). https://docs.aws.amazon.com/IAM/latest/APIReference/API_Policy.html"""

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if (call.service, call.operation) != ("iam", "GetPolicy") or not ok(answer):
            return None
        users = self._roles_bounded_by(call.params["PolicyArn"])
        return _body_sub(
            answer,
            re.compile(r"</DefaultVersionId>"),
            f"</DefaultVersionId><PermissionsBoundaryUsageCount>{users}"
            "</PermissionsBoundaryUsageCount>",
            1,
        )

    def _roles_bounded_by(self, arn: str) -> int:
        iam = self.layer.admin("iam")
        names = [
            r["RoleName"]
            for page in iam.get_paginator("list_roles").paginate()
            for r in page["Roles"]
        ]
        return sum(self._boundary_of(name) == arn for name in names)

    def _boundary_of(self, role: str) -> str | None:
        try:
            found = self.layer.admin("iam").get_role(RoleName=role)["Role"]
        except ClientError:
            return None  # deleted since it was listed
        return (found.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")

    def before(self, call: WireCall) -> Answer | None:
        wanted = call.params.get("PermissionsBoundary")
        if call.service != "iam" or not wanted:
            return None
        try:
            self.layer.admin("iam").get_policy(PolicyArn=wanted)
        except ClientError:
            return error(
                call,
                "NoSuchEntity",
                f"Scope ARN: {wanted} does not exist or is not attachable.",
                404,
            )
        return None


class RdsCatalogue(Rule):
    """The engine versions and orderable classes RDS offers (moto has neither call)."""

    NAMESPACE = "http://rds.amazonaws.com/doc/2014-10-31/"

    def before(self, call: WireCall) -> Answer | None:
        if call.service != "rds":
            return None
        if call.operation == "DescribeDBEngineVersions":
            return self._versions(call.params)
        if call.operation == "DescribeOrderableDBInstanceOptions":
            return self._orderable(call.params)
        return None

    def _versions(self, params: dict[str, Any]) -> Answer:
        wanted = params.get("EngineVersion")
        versions = [v for v in MYSQL_VERSIONS if wanted is None or v.startswith(wanted)]
        if params.get("DefaultOnly"):
            default = mysql_version(wanted or "8.4")
            versions = [default] if default in versions else []
        members = "".join(
            f"<DBEngineVersion><Engine>mysql</Engine><EngineVersion>{v}</EngineVersion>"
            f"<DBParameterGroupFamily>mysql{v[:3]}</DBParameterGroupFamily>"
            f"<Status>available</Status></DBEngineVersion>"
            for v in versions
        )
        result = f"<DBEngineVersions>{members}</DBEngineVersions>"
        return query_answer("DescribeDBEngineVersions", result, self.NAMESPACE)

    def _orderable(self, params: dict[str, Any]) -> Answer:
        version = params.get("EngineVersion")
        wanted_class = params.get("DBInstanceClass")
        options = [
            (cls, v)
            for v in MYSQL_VERSIONS
            for cls in INSTANCE_CLASSES
            if (version is None or v == version) and (wanted_class in (None, cls))
        ]
        zones = "".join(
            f"<AvailabilityZone><Name>{params.get('_region', 'eu-west-1')}{z}</Name>"
            "</AvailabilityZone>"
            for z in "abc"
        )
        members = "".join(
            f"<OrderableDBInstanceOption><Engine>mysql</Engine><EngineVersion>{v}</EngineVersion>"
            f"<DBInstanceClass>{cls}</DBInstanceClass><AvailabilityZones>{zones}"
            "</AvailabilityZones><Vpc>true</Vpc></OrderableDBInstanceOption>"
            for cls, v in options
        )
        result = f"<OrderableDBInstanceOptions>{members}</OrderableDBInstanceOptions>"
        return query_answer("DescribeOrderableDBInstanceOptions", result, self.NAMESPACE)


# -- quotas: moto knows one; AWS has one for everything ---------------------------------------

# AWS's defaults (an account's own values are often lower at first, Fargate's especially).
QUOTA_DEFAULTS = {
    ("vpc", "L-F678F1CE"): 5.0,
    ("elasticloadbalancing", "L-53DA6B97"): 50.0,
    ("fargate", "L-3032A538"): 6.0,
    ("rds", "L-7B6409FD"): 40.0,
}


class Quotas(Rule):
    """Service Quotas and RDS's own account quotas, from AWS's defaults or a test's values
    (`layer.state["quotas"][(service, code)] = value`)."""

    def before(self, call: WireCall) -> Answer | None:
        if call.service == "service-quotas" and call.operation in (
            "GetServiceQuota",
            "GetAWSDefaultServiceQuota",
        ):
            return self._quota(call)
        if (call.service, call.operation) == ("rds", "DescribeAccountAttributes"):
            return self._rds(call)
        return None

    def value(self, service: str, code: str) -> float | None:
        overrides = self.layer.state.get("quotas", {})
        return overrides.get((service, code), QUOTA_DEFAULTS.get((service, code)))

    def _quota(self, call: WireCall) -> Answer:
        service, code = call.params["ServiceCode"], call.params["QuotaCode"]
        value = self.value(service, code)
        if value is None:
            return error(
                call,
                "NoSuchResourceException",
                "The request failed because the specified service does not exist.",
            )
        arn = f"arn:aws:servicequotas:{call.region}:{ACCOUNT}:{service}/{code}"
        quota = {"ServiceCode": service, "QuotaCode": code, "QuotaArn": arn, "Value": value}
        return json_answer({"Quota": quota})

    def _rds(self, call: WireCall) -> Answer:
        used = len(self.layer.admin("rds", call.region).describe_db_instances()["DBInstances"])
        limit = self.value("rds", "L-7B6409FD") or 40.0
        result = (
            "<AccountQuotas><AccountQuota><AccountQuotaName>DBInstances</AccountQuotaName>"
            f"<Used>{used}</Used><Max>{int(limit)}</Max></AccountQuota></AccountQuotas>"
        )
        return query_answer("DescribeAccountAttributes", result, RdsCatalogue.NAMESPACE)


# -- service-linked roles: made by AWS on an account's first use ------------------------------

LINKED_ROLE_SERVICES = {
    ("elbv2", "CreateLoadBalancer"): "elasticloadbalancing.amazonaws.com",
    ("rds", "CreateDBInstance"): "rds.amazonaws.com",
    (
        "application-autoscaling",
        "RegisterScalableTarget",
    ): "ecs.application-autoscaling.amazonaws.com",
    ("ecs", "CreateCluster"): "ecs.amazonaws.com",
    ("ecs", "CreateService"): "ecs.amazonaws.com",
}


def linked_role_exists(layer: Realism, service_name: str) -> bool:
    path = f"/aws-service-role/{service_name}/"
    return bool(layer.admin("iam").list_roles(PathPrefix=path)["Roles"])


class ServiceLinkedRoles(Rule):
    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        service_name = LINKED_ROLE_SERVICES.get((call.service, call.operation))
        if service_name and ok(answer) and not linked_role_exists(self.layer, service_name):
            self.layer.admin("iam").create_service_linked_role(AWSServiceName=service_name)
        return None


# -- IAM is eventually consistent: a new role is not assumable by ECS at once ----------------


class RolePropagation(Rule):
    MESSAGE = (
        "Unable to assume the service linked role. Please verify that the ECS service linked "
        "role exists."
    )

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.operation in ("CreateRole", "CreateServiceLinkedRole") and ok(answer):
            self.layer.counter("role-propagation")["ecs"] = ROLE_PROPAGATION_CALLS
        return None

    def before(self, call: WireCall) -> Answer | None:
        if (call.service, call.operation) != ("ecs", "CreateService"):
            return None
        if self.layer.tick(self.layer.counter("role-propagation"), "ecs"):
            return error(call, "InvalidParameterException", self.MESSAGE)
        return None


# -- Secrets Manager deletes asynchronously, even when forced --------------------------------


class SecretDeletion(Rule):
    SCHEDULED = (
        "You can't create this secret because a secret with this name is already scheduled "
        "for deletion."
    )

    def _pending(self) -> dict[str, int]:
        return self.layer.counter("secret-deletion")

    def _record(self) -> dict[str, dict[str, Any]]:
        return self.layer.state.setdefault("secret-records", {})

    def before(self, call: WireCall) -> Answer | None:
        if call.service != "secretsmanager":
            return None
        if call.operation == "DeleteSecret":
            self._remember(call.params["SecretId"], call.region)
            return None
        name = self._name(call.params.get("SecretId") or call.params.get("Name") or "")
        if name is None or not self.layer.tick(self._pending(), name):
            return None
        if call.operation == "CreateSecret":
            return error(call, "InvalidRequestException", self.SCHEDULED)
        if call.operation == "DescribeSecret":
            record = self._record()[name]
            return json_answer({**record, "DeletedDate": datetime.now(UTC).timestamp()})
        return error(
            call,
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
        )

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if (call.service, call.operation) == ("secretsmanager", "DeleteSecret") and ok(answer):
            name = self._name(call.params["SecretId"])
            if name is not None:
                self._pending()[name] = SECRET_DELETION_CALLS
        return None

    def _remember(self, secret_id: str, region: str) -> None:
        try:
            found = self.layer.admin("secretsmanager", region).describe_secret(SecretId=secret_id)
        except ClientError:
            return
        record = {k: found[k] for k in ("ARN", "Name", "Tags", "Description") if k in found}
        self._record()[found["Name"]] = record

    def _name(self, secret_id: str) -> str | None:
        for name, record in self._record().items():
            if secret_id in (name, record["ARN"]):
                return name
        return None


# -- RDS: creating, then available; deleting, then gone ---------------------------------------

DB_MEMBER = re.compile(r"<DBInstance>.*?</DBInstance>", re.S)
DB_ID = re.compile(r"<DBInstanceIdentifier>([^<]+)</DBInstanceIdentifier>")


class RdsLifecycle(Rule):
    def _creating(self) -> dict[str, int]:
        return self.layer.counter("rds-creating")

    def _deleting(self) -> dict[str, int]:
        return self.layer.counter("rds-deleting")

    def _last_seen(self) -> dict[str, str]:
        return self.layer.state.setdefault("rds-last-seen", {})

    def before(self, call: WireCall) -> Answer | None:
        if call.service != "rds":
            return None
        identifier = call.params.get("DBInstanceIdentifier", "").lower()
        refusal = {
            "CreateDBInstance": self._refuse_create,
            "ModifyDBInstance": self._refuse_change,
            "DeleteDBInstance": self._refuse_delete,
            "DeleteDBSubnetGroup": self._refuse_group_delete,
            "DescribeDBInstances": self._describe_deleting,
        }.get(call.operation)
        return refusal(call, identifier) if refusal else None

    def _refuse_create(self, call: WireCall, identifier: str) -> Answer | None:
        if self.layer.tick(self._deleting(), identifier):
            return error(call, "DBInstanceAlreadyExists", "DB instance already exists")
        return None

    def _refuse_change(self, call: WireCall, identifier: str) -> Answer | None:
        if self._creating().get(identifier) or self.layer.tick(self._deleting(), identifier):
            return error(
                call,
                "InvalidDBInstanceState",
                f"Database instance {identifier} is not in available state.",
            )
        return None

    def _refuse_delete(self, call: WireCall, identifier: str) -> Answer | None:
        if self.layer.tick(self._deleting(), identifier):
            return error(
                call, "InvalidDBInstanceState", f"Instance {identifier} is already being deleted."
            )
        if self._creating().get(identifier) and call.params.get("FinalDBSnapshotIdentifier"):
            return error(
                call,
                "InvalidDBInstanceState",
                "Instance is currently creating - a final snapshot cannot be taken.",
            )
        return None

    def _refuse_group_delete(self, call: WireCall, _identifier: str) -> Answer | None:
        if any(self.layer.tick(self._deleting(), name) for name in list(self._deleting())):
            return error(
                call,
                "InvalidDBSubnetGroupStateFault",
                f"Cannot delete the subnet group '{call.params['DBSubnetGroupName']}' because at "
                "least one database instance is still using it.",
            )
        return None

    def _describe_deleting(self, call: WireCall, identifier: str) -> Answer | None:
        """Deleted in moto, still `deleting` on AWS: answer with its last look, so edited."""
        if not identifier or identifier not in self._last_seen():
            return None
        if not self.layer.tick(self._deleting(), identifier):
            return None
        member = _with_status(self._last_seen()[identifier], "deleting")
        return query_answer(
            "DescribeDBInstances",
            f"<DBInstances>{member}</DBInstances>",
            RdsCatalogue.NAMESPACE,
        )

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "rds" or not ok(answer):
            return None
        identifier = call.params.get("DBInstanceIdentifier", "").lower()
        if call.operation == "CreateDBInstance":
            self._creating()[identifier] = CREATING_DESCRIBES
        elif call.operation == "DeleteDBInstance":
            self._creating().pop(identifier, None)
            self._deleting()[identifier] = DELETING_CALLS
        elif call.operation == "DescribeDBInstances":
            return self._as_creating(answer)
        return None

    def _as_creating(self, answer: Answer) -> Answer:
        text = answer.body.decode()

        def edit(match: re.Match[str]) -> str:
            member = match.group(0)
            found = DB_ID.search(member)
            identifier = found.group(1).lower() if found else ""
            self._last_seen()[identifier] = member
            if self.layer.tick(self._creating(), identifier):
                return re.sub(r"<Endpoint>.*?</Endpoint>", "", _with_status(member, "creating"))
            return member

        return Answer(answer.status, answer.headers, DB_MEMBER.sub(edit, text).encode())


def _with_status(member: str, status: str) -> str:
    return re.sub(
        r"<DBInstanceStatus>[^<]*</DBInstanceStatus>",
        f"<DBInstanceStatus>{status}</DBInstanceStatus>",
        member,
    )


# -- what is still in use cannot be deleted; ENIs outlive what made them ----------------------


class InUse(Rule):
    def _lingering(self) -> dict[str, int]:
        return self.layer.counter("lingering")

    def before(self, call: WireCall) -> Answer | None:
        users = _network_of_user(self.layer, call)
        if users:
            self.layer.state.setdefault("leaving", {})[id(call)] = users
        check = {
            ("ec2", "DeleteSecurityGroup"): lambda: self._network_in_use(call, "GroupId"),
            ("ec2", "DeleteSubnet"): lambda: self._network_in_use(call, "SubnetId"),
            ("ecs", "DeleteCluster"): lambda: self._cluster_in_use(call),
            ("rds", "DeleteDBSubnetGroup"): lambda: self._subnet_group_in_use(call),
            ("elbv2", "DeleteTargetGroup"): lambda: self._target_group_in_use(call),
        }.get((call.service, call.operation))
        return check() if check else None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        """What a deleted service, load balancer or database used keeps its ENIs a while."""
        leaving = self.layer.state.get("leaving", {}).pop(id(call), set())
        if ok(answer):
            for ident in leaving:
                self._lingering()[ident] = LINGERING_ENI_CALLS
            if (call.service, call.operation) == ("ecs", "DeleteService"):
                self.layer.counter("draining")[call.params["cluster"]] = DRAINING_CALLS
        return None

    def _network_in_use(self, call: WireCall, key: str) -> Answer | None:
        ident = call.params[key]
        if ident in _network_users(self.layer, call.region) or self.layer.tick(
            self._lingering(), ident
        ):
            return error(call, "DependencyViolation", f"resource {ident} has a dependent object")
        return None

    def _cluster_in_use(self, call: WireCall) -> Answer | None:
        cluster = call.params["cluster"]
        live = [
            s for s in _services(self.layer, call.region) if s["clusterArn"].endswith(f"/{cluster}")
        ]
        if live or self.layer.tick(self.layer.counter("draining"), cluster):
            return error(
                call,
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            )
        return None

    def _subnet_group_in_use(self, call: WireCall) -> Answer | None:
        name = call.params["DBSubnetGroupName"]
        instances = self.layer.admin("rds", call.region).describe_db_instances()["DBInstances"]
        users = [
            db["DBInstanceIdentifier"]
            for db in instances
            if db.get("DBSubnetGroup", {}).get("DBSubnetGroupName") == name
        ]
        if users:
            return error(
                call,
                "InvalidDBSubnetGroupStateFault",
                f"Cannot delete the subnet group '{name}' because at least one database "
                f"instance: {users[0]} is still using it.",
            )
        return None

    def _target_group_in_use(self, call: WireCall) -> Answer | None:
        """In use while a live load balancer's listener forwards to it."""
        arn, elb = call.params["TargetGroupArn"], self.layer.admin("elbv2", call.region)
        for lb in elb.describe_load_balancers()["LoadBalancers"]:
            for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])[
                "Listeners"
            ]:
                if any(a.get("TargetGroupArn") == arn for a in listener["DefaultActions"]):
                    return error(
                        call,
                        "ResourceInUse",
                        f"Target group '{arn}' is currently in use by a listener or a rule",
                    )
        return None


class DrainingServices(Rule):
    """A deleted service is DRAINING while its tasks stop, before it is INACTIVE; its name
    cannot be used again meanwhile."""

    def before(self, call: WireCall) -> Answer | None:
        if (call.service, call.operation) != ("ecs", "CreateService"):
            return None
        if self.layer.tick(self.layer.counter("draining-services"), call.params["serviceName"]):
            return error(
                call,
                "InvalidParameterException",
                "Unable to Start a service that is still Draining.",
            )
        return None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "ecs" or not ok(answer):
            return None
        draining = self.layer.counter("draining-services")
        if call.operation == "DeleteService":
            draining[call.params["service"].rsplit("/", 1)[-1]] = DRAINING_CALLS
            return None
        if call.operation != "DescribeServices" or not draining:
            return None
        document = json.loads(answer.body)
        for service in document.get("services", []):
            if self.layer.tick(draining, service["serviceName"]):
                service["status"] = "DRAINING"
        return json_answer(document)


class ServiceSettingsEcho(Rule):
    """ECS reports a service's health check grace period and deployment configuration (its
    defaults when none was given: 200%/100%, circuit breaker off); moto reports neither. And
    an update to a new task definition starts a new PRIMARY deployment of it, where moto
    leaves its one deployment on the first revision."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "healthCheckGracePeriodSeconds": 0,
        "deploymentConfiguration": {
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        },
    }

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "ecs" or not ok(answer):
            return None
        if call.operation not in ("CreateService", "UpdateService", "DescribeServices"):
            return None
        settings = self.layer.state.setdefault("service-settings", {})
        if call.operation != "DescribeServices":
            name = str(call.params.get("serviceName") or call.params["service"]).rsplit("/")[-1]
            known = settings.setdefault(name, json.loads(json.dumps(self.DEFAULTS)))
            for key in self.DEFAULTS:
                if key in call.params:
                    known[key] = (
                        {**known[key], **call.params[key]}
                        if isinstance(known[key], dict)
                        else call.params[key]
                    )
        document = json.loads(answer.body)
        found = document.get("services") or [document.get("service") or {}]
        for service in found:
            service.update(settings.get(service.get("serviceName"), {}))
            for deployment in service.get("deployments") or []:
                if deployment.get("status") == "PRIMARY" and service.get("taskDefinition"):
                    deployment["taskDefinition"] = service["taskDefinition"]
        return json_answer(document)


class CapacityProviderStrategies(Rule):
    """A service's capacity provider strategy (Fargate Spot), which moto ignores on
    CreateService (it reports launch type EC2) and takes on UpdateService without AWS's
    rules. As ECS does: a strategy may name only providers associated with the cluster; a
    service has a launch type or a strategy, never both; moving from a launch type to a
    strategy, or to another strategy, needs forceNewDeployment (UpdateService's
    capacityProviderStrategy, in the ECS API reference); the strategy is reported back."""

    NOT_ASSOCIATED = (
        "The specified capacity provider strategy cannot contain a capacity provider that is "
        "not associated with the cluster. Associate the capacity provider with the cluster or "
        "specify a valid capacity provider and try again."
    )
    NOT_FORCED = (
        "When switching from launch type to capacity provider strategy on an existing service, "
        "or making a change to a capacity provider strategy on a service that is already using "
        "one, you must force a new deployment."
    )

    def before(self, call: WireCall) -> Answer | None:
        if call.service != "ecs" or call.operation not in ("CreateService", "UpdateService"):
            return None
        wanted = call.params.get("capacityProviderStrategy")
        if not wanted:
            return None
        if call.params.get("launchType"):
            return error(
                call,
                "InvalidParameterException",
                "Specify either a launch type or a capacity provider strategy, but not both.",
            )
        cluster = self.layer.admin("ecs", call.region).describe_clusters(
            clusters=[call.params.get("cluster") or "default"]
        )["clusters"]
        associated = set((cluster[0].get("capacityProviders") or []) if cluster else [])
        if any(item["capacityProvider"] not in associated for item in wanted):
            return error(call, "InvalidParameterException", self.NOT_ASSOCIATED)
        name = self._name(call)
        current = self.layer.state.get("capacity-strategies", {}).get(name)
        moved = call.operation == "UpdateService" and current != wanted
        if moved and not call.params.get("forceNewDeployment"):
            return error(call, "InvalidParameterException", self.NOT_FORCED)
        return None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "ecs" or not ok(answer):
            return None
        strategies = self.layer.state.setdefault("capacity-strategies", {})
        if call.operation == "DeleteService":
            strategies.pop(self._name(call), None)
            return None
        if call.operation not in ("CreateService", "UpdateService", "DescribeServices"):
            return None
        if call.operation != "DescribeServices" and call.params.get("capacityProviderStrategy"):
            strategies[self._name(call)] = call.params["capacityProviderStrategy"]
        document = json.loads(answer.body)
        for service in document.get("services") or [document.get("service") or {}]:
            if service.get("serviceName") in strategies:
                service["capacityProviderStrategy"] = strategies[service["serviceName"]]
                service.pop("launchType", None)
        return json_answer(document)

    @staticmethod
    def _name(call: WireCall) -> str:
        return str(call.params.get("serviceName") or call.params["service"]).rsplit("/")[-1]


class OneOffTasks(Rule):
    """A task started by RunTask runs its command for a moment and stops, where moto's tasks
    run for ever: after ONE_OFF_RUNNING_DESCRIBES DescribeTasks it is STOPPED, its container
    exited 0 and logged nothing, unless a test scripted the next one-off tasks in
    `layer.state["one-off"]`, a list of {"exit_code": int | None, "log": [lines],
    "stopped_reason": str, "stop_code": str} taken one per RunTask. The scripted lines go into
    the task's log stream, as the awslogs driver would write them. Each task's command is kept
    in `layer.state["one-off-tasks"]` for tests to read."""

    DEFAULT: ClassVar[dict[str, Any]] = {"exit_code": 0, "log": []}

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "ecs" or not ok(answer):
            return None
        tasks = self.layer.state.setdefault("one-off-tasks", {})
        if call.operation == "RunTask":
            scripts = self.layer.state.setdefault("one-off", [])
            overrides = (call.params.get("overrides") or {}).get("containerOverrides") or [{}]
            for task in json.loads(answer.body).get("tasks", []):
                tasks[task["taskArn"]] = {
                    "left": ONE_OFF_RUNNING_DESCRIBES,
                    "script": scripts.pop(0) if scripts else dict(self.DEFAULT),
                    "command": overrides[0].get("command"),
                    "environment": overrides[0].get("environment") or [],
                    "task_definition": task.get("taskDefinitionArn"),
                }
            return None
        if call.operation != "DescribeTasks":
            return None
        document = json.loads(answer.body)
        for task in document.get("tasks", []):
            known = tasks.get(task.get("taskArn"))
            if known is None:
                continue
            if known["left"] > 0:
                known["left"] -= 1
                task["lastStatus"] = "RUNNING"
                continue
            self._stop(task, known)
        return json_answer(document)

    def _stop(self, task: dict[str, Any], known: dict[str, Any]) -> None:
        script = known["script"]
        if not known.get("logged"):
            known["logged"] = True
            self._log(task["taskArn"], list(script.get("log") or []))
        exit_code = script.get("exit_code")
        container: dict[str, Any] = {"name": "app", "lastStatus": "STOPPED"}
        if exit_code is not None:
            container["exitCode"] = exit_code
        task.update(
            lastStatus="STOPPED",
            desiredStatus="STOPPED",
            stopCode=script.get("stop_code", "EssentialContainerExited"),
            stoppedReason=script.get("stopped_reason", "Essential container in task exited"),
            containers=[container],
        )

    def _log(self, task_arn: str, lines: list[str]) -> None:
        if not lines:
            return
        _, cluster, task_id = task_arn.rsplit("/", 2)
        region = task_arn.split(":")[3]
        write_task_log(self.layer.admin("logs", region), f"/nnote/{cluster}", task_id, lines)


def write_task_log(logs: Any, group: str, task_id: str, lines: list[str]) -> None:
    """`lines` in a task's app log stream, as the awslogs driver writes them."""
    stream = f"app/app/{task_id}"
    with contextlib.suppress(ClientError):  # a stream may exist already
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(datetime.now(UTC).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


def _network_users(layer: Realism, region: str) -> set[str]:
    """Subnets and security groups a live load balancer, database or service uses, or that
    another group's rule refers to."""
    found: set[str] = set()
    for lb in layer.admin("elbv2", region).describe_load_balancers()["LoadBalancers"]:
        found |= _lb_network(lb)
    for db in layer.admin("rds", region).describe_db_instances()["DBInstances"]:
        found |= _db_network(db)
    for service in _services(layer, region):
        found |= _service_network(service)
    for group in layer.admin("ec2", region).describe_security_groups()["SecurityGroups"]:
        for permission in group.get("IpPermissions", []):
            found |= {
                pair["GroupId"]
                for pair in permission.get("UserIdGroupPairs", [])
                if pair["GroupId"] != group["GroupId"]
            }
    return found


def _network_of_user(layer: Realism, call: WireCall) -> set[str]:
    """The subnets and groups of the load balancer, database or service a call deletes."""
    p, region = call.params, call.region
    try:
        if (call.service, call.operation) == ("elbv2", "DeleteLoadBalancer"):
            elb = layer.admin("elbv2", region)
            lbs = elb.describe_load_balancers(LoadBalancerArns=[p["LoadBalancerArn"]])
            return set().union(*(_lb_network(lb) for lb in lbs["LoadBalancers"]))
        if (call.service, call.operation) == ("rds", "DeleteDBInstance"):
            rds = layer.admin("rds", region)
            dbs = rds.describe_db_instances(DBInstanceIdentifier=p["DBInstanceIdentifier"])
            return set().union(*(_db_network(db) for db in dbs["DBInstances"]))
        if (call.service, call.operation) == ("ecs", "DeleteService"):
            ecs = layer.admin("ecs", region)
            found = ecs.describe_services(cluster=p["cluster"], services=[p["service"]])
            return set().union(*(_service_network(s) for s in found["services"]))
    except ClientError:
        return set()
    return set()


def _lb_network(lb: dict[str, Any]) -> set[str]:
    return {z["SubnetId"] for z in lb.get("AvailabilityZones", [])} | set(
        lb.get("SecurityGroups", [])
    )


def _db_network(db: dict[str, Any]) -> set[str]:
    subnets = db.get("DBSubnetGroup", {}).get("Subnets", [])
    return {g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])} | {
        s["SubnetIdentifier"] for s in subnets
    }


def _service_network(service: dict[str, Any]) -> set[str]:
    vpc = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    return set(vpc.get("subnets", [])) | set(vpc.get("securityGroups", []))


def _services(layer: Realism, region: str) -> Iterator[dict[str, Any]]:
    ecs = layer.admin("ecs", region)
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        if arns:
            for service in ecs.describe_services(cluster=cluster, services=arns)["services"]:
                if service.get("status") == "ACTIVE":
                    yield service


# -- CloudFront: a distribution deploys for a while; changes need its current ETag -----------

CLOUDFRONT_REGION = "us-east-1"  # CloudFront is global: its API signs for this region
FIRST_ID = re.compile(r"<Id>([^<]+)</Id>")
SUMMARY = re.compile(r"<DistributionSummary>.*?</DistributionSummary>", re.S)
STATUS = re.compile(r"<Status>[^<]*</Status>")


class CloudFrontDistributions(Rule):
    """What CloudFront enforces that moto does not. A created or updated distribution is
    `InProgress` for its next DISTRIBUTION_DEPLOYING_CALLS GetDistribution answers, then
    `Deployed` (moto deploys at once); it can be deleted only disabled and deployed
    (DistributionNotDisabled, 409). UpdateDistribution and DeleteDistribution need IfMatch
    (InvalidIfMatchVersion) holding the current ETag (PreconditionFailed, 412), and the ETag
    changes with each update (moto keeps one and takes any). A config's Quantity must count
    its Items (InconsistentQuantities), its Comment is at most 128 characters, its
    CallerReference is required and never changes (IllegalUpdate)."""

    def _etags(self) -> dict[str, str]:
        return self.layer.state.setdefault("cloudfront-etags", {})

    def _deploying(self) -> dict[str, int]:
        return self.layer.counter("cloudfront-deploying")

    def _current(self, ident: str) -> tuple[dict[str, Any], str] | None:
        """The distribution's config as moto has it, and its ETag as AWS would give it."""
        try:
            found = self.layer.admin("cloudfront", CLOUDFRONT_REGION).get_distribution_config(
                Id=ident
            )
        except ClientError:
            return None
        with self.layer.lock:
            etag = self._etags().setdefault(ident, found["ETag"])
        return found["DistributionConfig"], etag

    def before(self, call: WireCall) -> Answer | None:
        if call.service != "cloudfront":
            return None
        if call.operation in ("CreateDistribution", "CreateDistributionWithTags"):
            wrapped = call.params.get("DistributionConfigWithTags") or {}
            config = wrapped.get("DistributionConfig") or call.params.get("DistributionConfig")
            problem = _distribution_config_problem(config or {})
            return error(call, *problem) if problem else None
        if call.operation not in ("UpdateDistribution", "DeleteDistribution"):
            return None
        current = self._current(call.params["Id"])
        if current is None:
            return None  # moto answers NoSuchDistribution
        config, etag = current
        if not call.params.get("IfMatch"):
            return error(
                call,
                "InvalidIfMatchVersion",
                "The If-Match version is missing or not valid for the resource.",
            )
        if call.params["IfMatch"] != etag:
            return error(
                call,
                "PreconditionFailed",
                "The precondition given in one or more of the request-header fields evaluated "
                "to false.",
                412,
            )
        if call.operation == "UpdateDistribution":
            wanted = call.params.get("DistributionConfig") or {}
            problem = _distribution_config_problem(wanted)
            if problem is None and wanted.get("CallerReference") != config["CallerReference"]:
                problem = ("IllegalUpdate", "You can't change the value of CallerReference.")
            return error(call, *problem) if problem else None
        if config.get("Enabled") or self._deploying().get(call.params["Id"], 0) > 0:
            return error(
                call,
                "DistributionNotDisabled",
                "The distribution you are trying to delete has not been disabled.",
                409,
            )
        return None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "cloudfront" or not ok(answer):
            return None
        operation = call.operation
        if operation in ("CreateDistribution", "CreateDistributionWithTags", "UpdateDistribution"):
            found = FIRST_ID.search(answer.body.decode())
            ident = call.params.get("Id") or (found.group(1) if found else "")
            with self.layer.lock:
                if operation == "UpdateDistribution" or ident not in self._etags():
                    self._etags()[ident] = _new_etag(answer, operation)
                self._deploying()[ident] = DISTRIBUTION_DEPLOYING_CALLS
                etag = self._etags()[ident]
            return _with_etag(_body_sub(answer, STATUS, "<Status>InProgress</Status>", 1), etag)
        if operation in ("GetDistribution", "GetDistributionConfig"):
            ident = call.params["Id"]
            with self.layer.lock:
                etag = self._etags().setdefault(ident, _header(answer, "ETag"))
                if operation == "GetDistribution":
                    status = (
                        "InProgress" if self.layer.tick(self._deploying(), ident) else "Deployed"
                    )
                    answer = _body_sub(answer, STATUS, f"<Status>{status}</Status>", 1)
            return _with_etag(answer, etag)
        if operation == "ListDistributions":
            return self._list(answer)
        if operation == "DeleteDistribution":
            with self.layer.lock:
                self._etags().pop(call.params["Id"], None)
                self._deploying().pop(call.params["Id"], None)
        return None

    def _list(self, answer: Answer) -> Answer:
        def edit(match: re.Match[str]) -> str:
            summary = match.group(0)
            found = FIRST_ID.search(summary)
            deploying = found is not None and self._deploying().get(found.group(1), 0) > 0
            status = "InProgress" if deploying else "Deployed"
            return STATUS.sub(f"<Status>{status}</Status>", summary, count=1)

        return Answer(
            answer.status, answer.headers, SUMMARY.sub(edit, answer.body.decode()).encode()
        )


def _distribution_config_problem(config: dict[str, Any]) -> tuple[str, str] | None:
    if not config.get("CallerReference"):
        return ("InvalidArgument", "The parameter CallerReference is required.")
    if len(config.get("Comment") or "") > 128:
        return ("InvalidArgument", "The comment cannot be longer than 128 characters.")
    if _inconsistent_quantity(config):
        return (
            "InconsistentQuantities",
            "The value of Quantity and the size of Items don't match.",
        )
    return None


def _inconsistent_quantity(value: Any) -> bool:
    if isinstance(value, list):
        return any(_inconsistent_quantity(item) for item in value)
    if not isinstance(value, dict):
        return False
    if "Quantity" in value and int(value["Quantity"]) != len(value.get("Items") or []):
        return True
    return any(_inconsistent_quantity(item) for item in value.values())


def _new_etag(answer: Answer, operation: str) -> str:
    """moto's ETag for a new distribution; a new one of AWS's form for each update."""
    if operation != "UpdateDistribution" and _header(answer, "ETag"):
        return _header(answer, "ETag")
    return "E" + secrets.token_hex(7).upper()[:13]


def _header(answer: Answer, name: str) -> str:
    return next((v for k, v in answer.headers if k.lower() == name.lower()), "")


def _with_etag(answer: Answer, etag: str) -> Answer:
    headers = [(k, v) for k, v in answer.headers if k.lower() != "etag"]
    return Answer(answer.status, [*headers, ("ETag", etag)], answer.body)


def _body_sub(answer: Answer, pattern: re.Pattern[str], text: str, count: int = 0) -> Answer:
    return Answer(
        answer.status, answer.headers, pattern.sub(text, answer.body.decode(), count).encode()
    )


# -- ACM: the validation record comes a moment late; issued only once it is in DNS -----------

PENDING_ONLY_FIELDS = ("IssuedAt", "NotBefore", "NotAfter", "Serial")


class CertificateValidation(Rule):
    """ACM as DNS validation really goes (moto gives the validation record at once and issues
    every certificate after MOTO_ACM_VALIDATION_WAIT seconds, whatever DNS says). "After
    successful completion of the RequestCertificate action, there is a delay of several
    seconds before you can retrieve information about the new certificate" (its API
    reference): its first VALIDATION_RECORD_DESCRIBES DescribeCertificate answers have no
    DomainValidationOptions, then options without their ResourceRecord. It is
    PENDING_VALIDATION until each validation CNAME is in a Route 53 hosted zone of the
    account, and for ISSUING_DESCRIBES answers more; then ISSUED (moto's own view, which the
    tests read, is told so too). ListCertificates shows the same status.

    A repeated IdempotencyToken answers the same certificate while it exists, and a new one
    once it is deleted (moto fails on a token whose certificate is gone; what AWS does then
    is not documented: a new certificate is what a deployer can go on with)."""

    def _requested(self) -> dict[str, dict[str, Any]]:
        return self.layer.state.setdefault("acm-requested", {})

    def _tokens(self) -> dict[str, str]:
        return self.layer.state.setdefault("acm-tokens", {})

    def before(self, call: WireCall) -> Answer | None:
        token = call.params.get("IdempotencyToken")
        if (call.service, call.operation) != ("acm", "RequestCertificate") or not token:
            return None
        with self.layer.lock:
            earlier = self._tokens().get(token)
        if earlier is None:
            return None  # moto makes it, and keeps the token
        acm = self.layer.admin("acm", call.region)
        try:
            acm.describe_certificate(CertificateArn=earlier)
            return json_answer({"CertificateArn": earlier})
        except ClientError:
            pass
        params = {k: v for k, v in call.params.items() if k != "IdempotencyToken"}
        arn = str(acm.request_certificate(**params)["CertificateArn"])
        self._requested_now(arn, token)
        return json_answer({"CertificateArn": arn})

    def _requested_now(self, arn: str, token: str | None) -> None:
        with self.layer.lock:
            self._requested().setdefault(
                arn, {"hidden": VALIDATION_RECORD_DESCRIBES, "issuing": None, "issued": False}
            )
            if token:
                self._tokens()[token] = arn

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "acm" or not ok(answer):
            return None
        if call.operation == "RequestCertificate":
            arn = json.loads(answer.body)["CertificateArn"]
            self._requested_now(arn, call.params.get("IdempotencyToken"))
        elif call.operation == "DescribeCertificate":
            return self._describe(call, answer)
        elif call.operation == "ListCertificates":
            return self._list(call, answer)
        elif call.operation == "DeleteCertificate":
            self._requested().pop(call.params["CertificateArn"], None)
        return None

    def _describe(self, call: WireCall, answer: Answer) -> Answer | None:
        document = json.loads(answer.body)
        certificate = document["Certificate"]
        options = certificate.get("DomainValidationOptions", [])
        with self.layer.lock:
            state = self._requested().get(certificate["CertificateArn"])
            if state is None:
                return None
            if state["hidden"] > 0:
                state["hidden"] -= 1
                for option in options:
                    option.pop("ResourceRecord", None)
                if state["hidden"] == VALIDATION_RECORD_DESCRIBES - 1:  # the very first look
                    certificate.pop("DomainValidationOptions", None)
            elif not state["issued"]:
                if state["issuing"] is None and _validation_records_exist(self.layer, options):
                    state["issuing"] = ISSUING_DESCRIBES
                if state["issuing"] is not None:
                    state["issued"] = state["issuing"] <= 0
                    state["issuing"] -= 1
                    if state["issued"]:
                        _issued_in_moto(certificate["CertificateArn"])
            issued = state["issued"]
        _set_certificate_status(certificate, issued)
        return json_answer(document)

    def _list(self, call: WireCall, answer: Answer) -> Answer:
        document = json.loads(answer.body)
        wanted = call.params.get("CertificateStatuses") or []
        with self.layer.lock:
            issued = {arn: state["issued"] for arn, state in self._requested().items()}
        summaries = document.get("CertificateSummaryList", [])
        if wanted:  # moto filtered by its own status: start again from all of them
            everything = self.layer.admin("acm", call.region).list_certificates()
            summaries = [
                {k: v for k, v in summary.items() if isinstance(v, str | bool | int)}
                for summary in everything["CertificateSummaryList"]
            ]
        for summary in summaries:
            if summary["CertificateArn"] in issued:
                ours = issued[summary["CertificateArn"]]
                summary["Status"] = "ISSUED" if ours else "PENDING_VALIDATION"
        if wanted:
            summaries = [s for s in summaries if s.get("Status") in wanted]
        document["CertificateSummaryList"] = summaries
        return json_answer(document)


def _issued_in_moto(arn: str) -> None:
    """Tell moto the certificate is issued, so the tests' own calls see what the deployer
    was told (moto would flip it only after MOTO_ACM_VALIDATION_WAIT seconds). moto has no
    API for it: its backend, which runs in this process, is set directly."""
    from moto.acm.models import acm_backends

    _, _, _, region, account, _ = arn.split(":", 5)
    certificate = acm_backends[account][region]._certificates.get(arn)
    if certificate is not None:
        certificate.status = "ISSUED"


def _set_certificate_status(certificate: dict[str, Any], issued: bool) -> None:
    certificate["Status"] = "ISSUED" if issued else "PENDING_VALIDATION"
    for option in certificate.get("DomainValidationOptions", []):
        option["ValidationStatus"] = "SUCCESS" if issued else "PENDING_VALIDATION"
    if not issued:
        for key in PENDING_ONLY_FIELDS:
            certificate.pop(key, None)


def _validation_records_exist(layer: Realism, options: list[dict[str, Any]]) -> bool:
    """Whether every domain's validation CNAME, with ACM's value, is in one of the account's
    Route 53 hosted zones (ACM reads it through public DNS; the zones stand for that here)."""
    route53 = layer.admin("route53", "us-east-1")
    records = {
        key: record
        for zone in route53.list_hosted_zones()["HostedZones"]
        for key, record in _zone_records(layer, zone["Id"]).items()
    }
    for option in options:
        wanted = option.get("ResourceRecord")
        if wanted is None:
            return False
        found = records.get((_absolute(wanted["Name"]), wanted["Type"], ""))
        values = {_absolute(r["Value"]) for r in (found or {}).get("ResourceRecords", [])}
        if _absolute(wanted["Value"]) not in values:
            return False
    return bool(options)


class CertificatesInUse(Rule):
    """ACM refuses to delete a certificate a load balancer's listener or a CloudFront
    distribution uses (ResourceInUseException; moto's load balancers never mark theirs in
    use), and for CERTIFICATE_RELEASE_CALLS attempts more after the listener let go of it."""

    def _releasing(self) -> dict[str, int]:
        return self.layer.counter("certificates-releasing")

    def before(self, call: WireCall) -> Answer | None:
        if (call.service, call.operation) == ("acm", "DeleteCertificate"):
            arn = call.params["CertificateArn"]
            in_use = arn in _certificate_users(self.layer, call.region)
            if in_use or self.layer.tick(self._releasing(), arn):
                return error(
                    call,
                    "ResourceInUseException",
                    f"Certificate {arn} in account {ACCOUNT} is in use.",
                )
        elif call.service == "elbv2" and call.operation in LETTING_GO:
            held = _listener_certificates(self.layer, call)
            self.layer.state.setdefault("certificates-held", {})[id(call)] = held
        return None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        held = self.layer.state.get("certificates-held", {}).pop(id(call), set())
        if held and ok(answer):
            for arn in held - _certificate_users(self.layer, call.region):
                self._releasing()[arn] = CERTIFICATE_RELEASE_CALLS
        return None


LETTING_GO = ("DeleteListener", "DeleteLoadBalancer", "ModifyListener")


def _certificate_users(layer: Realism, region: str) -> set[str]:
    """The certificates the region's listeners use (and CloudFront's, for us-east-1)."""
    elb = layer.admin("elbv2", region)
    found = {
        certificate["CertificateArn"]
        for lb in elb.describe_load_balancers()["LoadBalancers"]
        for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        for certificate in listener.get("Certificates", [])
    }
    if region == CLOUDFRONT_REGION:
        listing = layer.admin("cloudfront", region).list_distributions()["DistributionList"]
        found |= {
            d["ViewerCertificate"]["ACMCertificateArn"]
            for d in listing.get("Items", [])
            if d.get("ViewerCertificate", {}).get("ACMCertificateArn")
        }
    return found


def _listener_certificates(layer: Realism, call: WireCall) -> set[str]:
    elb = layer.admin("elbv2", call.region)
    try:
        if call.operation == "DeleteLoadBalancer":
            listeners = elb.describe_listeners(LoadBalancerArn=call.params["LoadBalancerArn"])
        else:
            listeners = elb.describe_listeners(ListenerArns=[call.params["ListenerArn"]])
    except ClientError:
        return set()
    return {
        certificate["CertificateArn"]
        for listener in listeners["Listeners"]
        for certificate in listener.get("Certificates", [])
    }


# -- Route 53: a change batch holds as a whole, or nothing changes -----------------------------


class RecordChanges(Rule):
    """Route 53 applies a change batch only if each change holds, in order: CREATE of a record
    that exists, DELETE of one that does not, or with other values than it has, a CNAME beside
    other records of its name (or another record beside a CNAME) are InvalidChangeBatch, and
    nothing changes. moto judges CREATE and DELETE by its journal of earlier changes instead
    (refusing to CREATE again a record deleted since, when a record sorting after it exists),
    so a batch found valid here is applied here too, its CREATEs as UPSERTs (the same, for
    records that do not exist), and answered PENDING as Route 53 does."""

    def before(self, call: WireCall) -> Answer | None:
        if (call.service, call.operation) != ("route53", "ChangeResourceRecordSets"):
            return None
        zone_id = call.params["HostedZoneId"]
        try:
            zone = self.layer.admin("route53", "us-east-1").get_hosted_zone(Id=zone_id)
        except ClientError:
            return None  # moto answers NoSuchHostedZone
        records = _zone_records(self.layer, zone_id)
        problems = []
        for change in call.params["ChangeBatch"]["Changes"]:
            wanted, action = change["ResourceRecordSet"], change["Action"]
            key = _record_key(wanted)
            named = f"[name='{key[0]}', type='{key[1]}'" + (
                f", set-identifier='{key[2]}']" if key[2] else "]"
            )
            found = records.get(key)
            if action == "CREATE" and found is not None:
                problems.append(
                    f"Tried to create resource record set {named} but it already exists"
                )
            elif action == "DELETE" and found is None:
                problems.append(f"Tried to delete resource record set {named} but it was not found")
            elif action == "DELETE" and _record_value(found or {}) != _record_value(wanted):
                problems.append(
                    f"Tried to delete resource record set {named} but the values provided do "
                    "not match the current values"
                )
            elif action in ("CREATE", "UPSERT"):
                problems += _cname_conflict(records, key, zone["HostedZone"]["Name"])
            if action == "DELETE":
                records.pop(key, None)
            else:
                records[key] = wanted
        if problems:
            return error(call, "InvalidChangeBatch", f"[{', '.join(problems)}]")
        return self._apply(call)

    def _apply(self, call: WireCall) -> Answer:
        batch = dict(call.params["ChangeBatch"])
        batch["Changes"] = [
            {**change, "Action": "UPSERT" if change["Action"] == "CREATE" else change["Action"]}
            for change in batch["Changes"]
        ]
        try:
            done = self.layer.admin("route53", "us-east-1").change_resource_record_sets(
                HostedZoneId=call.params["HostedZoneId"], ChangeBatch=batch
            )
        except ClientError as refused:
            found = refused.response
            return error(
                call,
                found["Error"]["Code"],
                found["Error"].get("Message", ""),
                found["ResponseMetadata"]["HTTPStatusCode"],
            )
        info = done["ChangeInfo"]
        comment = f"<Comment>{_xml_text(info['Comment'])}</Comment>" if info.get("Comment") else ""
        xml = (
            f'<?xml version="1.0"?><ChangeResourceRecordSetsResponse xmlns="{ROUTE53_XMLNS}">'
            f"<ChangeInfo><Id>{info['Id']}</Id><Status>PENDING</Status>"
            f"<SubmittedAt>{info['SubmittedAt'].strftime('%Y-%m-%dT%H:%M:%S.000Z')}</SubmittedAt>"
            f"{comment}</ChangeInfo></ChangeResourceRecordSetsResponse>"
        )
        return Answer(200, [("Content-Type", "text/xml")], xml.encode())


ROUTE53_XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _absolute(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _record_key(record: dict[str, Any]) -> tuple[str, str, str]:
    return (_absolute(record["Name"]), record["Type"], record.get("SetIdentifier", ""))


def _record_value(record: dict[str, Any]) -> tuple[Any, ...]:
    """What a DELETE must repeat exactly: the TTL and values, or the alias target."""
    alias = record.get("AliasTarget")
    if alias:
        zone = str(alias["HostedZoneId"]).rsplit("/", 1)[-1]
        return ("alias", zone, _absolute(alias["DNSName"]), bool(alias["EvaluateTargetHealth"]))
    values = sorted(r["Value"] for r in record.get("ResourceRecords", []))
    return ("records", record.get("TTL"), values)


def _cname_conflict(
    records: dict[tuple[str, str, str], Any], key: tuple[str, str, str], zone: str
) -> list[str]:
    name, kind = key[0], key[1]
    others = {k[1] for k in records if k[0] == name and k != key}
    if kind == "CNAME" and others - {"CNAME"}:
        return [
            f"RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with "
            f"other records with the same DNS name in zone {zone}"
        ]
    if kind != "CNAME" and "CNAME" in others:
        return [
            f"RRSet of type {kind} with DNS name {name} is not permitted because a conflicting "
            f"RRSet of type CNAME with the same DNS name already exists in zone {zone}"
        ]
    return []


def _zone_records(layer: Realism, zone_id: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    route53 = layer.admin("route53", "us-east-1")
    found = {}
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for record in page["ResourceRecordSets"]:
            found[_record_key(record)] = record
    return found


# -- the tagging API lags behind -------------------------------------------------------------


class StaleTags(Rule):
    """GetResources keeps listing recently deleted resources (in its next STALE_LISTINGS
    answers), and lists the types AWS's tagging API covers that moto's leaves out (ECR
    repositories, DB subnet groups, listeners and their rules). Like AWS's, it lists the
    resources of the region it is called in, and those of global services (CloudFront) in
    us-east-1 only (moto lists those everywhere), of the ResourceTypeFilters asked for."""

    def _ghosts(self) -> dict[str, tuple[dict[str, str], int]]:
        return self.layer.state.setdefault("ghosts", {})

    def before(self, call: WireCall) -> Answer | None:
        if call.operation.startswith("Delete") or call.operation == "DeregisterTaskDefinition":
            found = _arn_and_tags(self.layer, call)
            if found:
                self.layer.state.setdefault("deleting", {})[id(call)] = found
        return None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        pending = self.layer.state.get("deleting", {}).pop(id(call), None)
        if pending and ok(answer):
            arn, tags = pending
            self._ghosts()[arn] = (tags, STALE_LISTINGS)
        if (call.service, call.operation) != ("resourcegroupstaggingapi", "GetResources"):
            return None
        if not ok(answer):
            return None
        document = json.loads(answer.body)
        kinds = call.params.get("ResourceTypeFilters") or []
        document["ResourceTagMappingList"] = [
            item
            for item in document.get("ResourceTagMappingList", [])
            if _in_scope(item["ResourceARN"], call.region, kinds)
        ]
        if document.get("PaginationToken"):
            return json_answer(document)
        listed = {item["ResourceARN"] for item in document["ResourceTagMappingList"]}
        ghosts = self._listed_ghosts(call.region, kinds)
        extra = {**_uncovered(self.layer, call.region), **ghosts}
        wanted = call.params.get("TagFilters", [])
        for arn, tags in extra.items():
            if arn not in listed and _matches(tags, wanted) and _in_scope(arn, call.region, kinds):
                document["ResourceTagMappingList"].append(
                    {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                )
        return json_answer(document)

    def _listed_ghosts(self, region: str, kinds: list[str]) -> dict[str, dict[str, str]]:
        """The deleted resources this answer still lists; each is listed a few times only
        (by the answers whose region and types cover it)."""
        with self.layer.lock:
            ghosts = self._ghosts()
            listed = {}
            for arn, (tags, left) in list(ghosts.items()):
                if not _in_scope(arn, region, kinds):
                    continue
                listed[arn] = tags
                if left <= 1:
                    del ghosts[arn]
                else:
                    ghosts[arn] = (tags, left - 1)
        return listed


def _in_scope(arn: str, region: str, kinds: list[str]) -> bool:
    """Whether GetResources called in `region` with these ResourceTypeFilters lists `arn`."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return False
    where = parts[3] or "us-east-1"  # global services' resources are listed there only
    kind = f"{parts[2]}:{re.split(r'[/:]', parts[5], maxsplit=1)[0]}"
    return where == region and (not kinds or any(k in (kind, parts[2]) for k in kinds))


def _matches(tags: dict[str, str], filters: list[dict[str, Any]]) -> bool:
    return all(
        f["Key"] in tags and (not f.get("Values") or tags[f["Key"]] in f["Values"]) for f in filters
    )


def _uncovered(layer: Realism, region: str) -> dict[str, dict[str, str]]:
    """Tagged resources of the types moto's tagging API misses, as AWS's would list them."""
    found: dict[str, dict[str, str]] = {}
    ecr = layer.admin("ecr", region)
    for repo in ecr.describe_repositories()["repositories"]:
        tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
        found[repo["repositoryArn"]] = {t["Key"]: t["Value"] for t in tags}
    rds = layer.admin("rds", region)
    for group in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
        tags = rds.list_tags_for_resource(ResourceName=group["DBSubnetGroupArn"])["TagList"]
        found[group["DBSubnetGroupArn"]] = {t["Key"]: t["Value"] for t in tags}
    elb = layer.admin("elbv2", region)
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        for listener in listeners:
            rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
            arns = [listener["ListenerArn"], *(r["RuleArn"] for r in rules if not r["IsDefault"])]
            for described in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]:
                found[described["ResourceArn"]] = {
                    t["Key"]: t["Value"] for t in described.get("Tags", [])
                }
    return {arn: tags for arn, tags in found.items() if tags}


def _arn_and_tags(layer: Realism, call: WireCall) -> tuple[str, dict[str, str]] | None:
    """What a delete call is about to remove, as the tagging API would list it."""
    p, region = call.params, call.region
    try:
        if call.service == "ec2":
            ident = next((v for k, v in p.items() if k.endswith("Id")), None)
            if not ident:
                return None
            tags = layer.admin("ec2", region).describe_tags(
                Filters=[{"Name": "resource-id", "Values": [ident]}]
            )["Tags"]
            kind = _EC2_KINDS.get(ident.split("-")[0])
            arn = f"arn:aws:ec2:{region}:{ACCOUNT}:{kind}/{ident}"
            return (arn, {t["Key"]: t["Value"] for t in tags}) if kind else None
        if call.service == "elbv2":
            target = next((str(v) for k, v in p.items() if k.endswith("Arn")), None)
            if not target:
                return None
            described = layer.admin("elbv2", region).describe_tags(ResourceArns=[target])
            tags = {t["Key"]: t["Value"] for d in described["TagDescriptions"] for t in d["Tags"]}
            return (target, tags)
        if call.service == "rds" and call.operation == "DeleteDBSubnetGroup":
            name = p["DBSubnetGroupName"]
            arn = f"arn:aws:rds:{region}:{ACCOUNT}:subgrp:{name}"
            tags = layer.admin("rds", region).list_tags_for_resource(ResourceName=arn)["TagList"]
            return (arn, {t["Key"]: t["Value"] for t in tags})
        if call.service == "ecr" and call.operation == "DeleteRepository":
            arn = f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{p['repositoryName']}"
            tags = layer.admin("ecr", region).list_tags_for_resource(resourceArn=arn)["tags"]
            return (arn, {t["Key"]: t["Value"] for t in tags})
        if call.service == "acm" and call.operation == "DeleteCertificate":
            arn = p["CertificateArn"]
            tags = layer.admin("acm", region).list_tags_for_certificate(CertificateArn=arn)
            return (arn, {t["Key"]: t.get("Value", "") for t in tags.get("Tags", [])})
        if call.service == "cloudfront" and call.operation == "DeleteDistribution":
            arn = f"arn:aws:cloudfront::{ACCOUNT}:distribution/{p['Id']}"
            tags = layer.admin("cloudfront", "us-east-1").list_tags_for_resource(Resource=arn)
            return (arn, {t["Key"]: t.get("Value", "") for t in tags["Tags"].get("Items", [])})
    except ClientError:
        return None
    return None


_EC2_KINDS = {
    "vpc": "vpc",
    "subnet": "subnet",
    "sg": "security-group",
    "igw": "internet-gateway",
    "rtb": "route-table",
}


# -- list calls page as on AWS -----------------------------------------------------------------


class Pagination(Rule):
    """ListTaskDefinitions answers at most 100 ARNs a page (moto answers all of them)."""

    PAGE = 100

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if (call.service, call.operation) != ("ecs", "ListTaskDefinitions") or not ok(answer):
            return None
        arns = json.loads(answer.body).get("taskDefinitionArns", [])
        start = int(call.params.get("nextToken") or 0)
        size = min(int(call.params.get("maxResults") or self.PAGE), self.PAGE)
        page: dict[str, Any] = {"taskDefinitionArns": arns[start : start + size]}
        if start + size < len(arns):
            page["nextToken"] = str(start + size)
        return json_answer(page)


# -- the middleware ----------------------------------------------------------------------------


class Middleware:
    """WSGI: read each request, let the realism layer answer or pass it on to moto."""

    def __init__(self, app: Any, layer: Realism) -> None:
        self.app, self.layer = app, layer

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/moto-api/reset":
            self.layer.reset()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        if len(body) < length:
            # The client died mid-request (the kill -9 tests): a request cut short never
            # reaches AWS's authorization either. Nothing to answer, nothing to record.
            start_response("400 Bad Request", [("Content-Length", "0")])
            return [b""]
        call = read_call(environ, body)

        def forward() -> Answer:
            environ["wsgi.input"] = io.BytesIO(body)
            seen: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                seen.update(status=status, headers=headers)
                return lambda _data: None

            chunks = b"".join(self.app(environ, capture))
            return Answer(int(seen["status"].split()[0]), list(seen["headers"]), chunks)

        if call is not None and call.access_key != ADMIN_KEY:
            answer = self.layer.handle(call, forward)
        elif call is None and signed_by(environ) not in (None, ADMIN_KEY):
            answer = self._unreadable(environ)  # fail closed: no unchecked call gets through
        else:
            answer = forward()
        headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(answer.body))))
        start_response(f"{answer.status} {'OK' if answer.status < 300 else 'Error'}", headers)
        return [answer.body]

    def _unreadable(self, environ: dict[str, Any]) -> Answer:
        what = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        with self.layer.lock:
            self.layer.denials.append(f"a request the realism layer cannot read: {what}")
        return Answer(403, [("Content-Type", "text/plain")], b"unreadable request")


def bootstrap_account(url: str, app: str = "nnote") -> None:
    """What `nnote-deploy bootstrap --preview-env preview` makes in an account before a first
    `up`: the permissions boundaries every role the deployer creates must carry, the previews'
    and every other environment's (made as an administrator would)."""
    from deployer import boundary
    from deployer.bootstrap import bootstrap_tags

    iam = _admin_client(url, "iam", "us-east-1")
    for name, document in (
        (boundary.name(app), boundary.document()),
        (boundary.preview_name(app), boundary.preview_document()),
    ):
        iam.create_policy(
            PolicyName=name, PolicyDocument=json.dumps(document), Tags=bootstrap_tags(app)
        )


class RealisticMotoServer:
    """moto's threaded server with the realism layer in front; `.layer` holds its state."""

    def __init__(self, policy: Path | None = POLICY) -> None:
        self.layer = Realism(policy=policy)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, port: int = 0) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        app = Middleware(DomainDispatcherApplication(create_backend_app), self.layer)
        self._server = make_server(
            "127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.layer.url = f"http://{host}:{port}"
        return self.layer.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join()


if __name__ == "__main__":  # scripts/demo: the emulator as the tests see it, on a given port
    import sys

    server = RealisticMotoServer()
    print(server.start(int(sys.argv[1])), flush=True)
    threading.Event().wait()
