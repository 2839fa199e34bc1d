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
- **ordering**: a subnet or security group in use, a subnet group in use, a cluster with
  services, a target group behind a listener cannot be deleted; ECS list calls paginate.

The tests' own calls (access key `testing`) see moto's plain truth and are never refused;
every other key is held to the rules. `python -m tests.support.realism PORT` serves it alone
(scripts/demo uses it the way the tests do).
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

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
STALE_LISTINGS = 3

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
                StaleTags,
                Pagination,
            )
        ]

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
    """A permissions boundary must be a policy that exists (moto takes any ARN)."""

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


# -- the tagging API lags behind -------------------------------------------------------------


class StaleTags(Rule):
    """GetResources keeps listing recently deleted resources (in its next STALE_LISTINGS
    answers), and lists the types AWS's tagging API covers that moto's leaves out (ECR
    repositories, DB subnet groups, listeners)."""

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
        if document.get("PaginationToken"):
            return None
        listed = {item["ResourceARN"] for item in document.get("ResourceTagMappingList", [])}
        extra = {**_uncovered(self.layer, call.region), **self._listed_ghosts()}
        wanted = call.params.get("TagFilters", [])
        for arn, tags in extra.items():
            if arn not in listed and _matches(tags, wanted):
                document.setdefault("ResourceTagMappingList", []).append(
                    {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                )
        return json_answer(document)

    def _listed_ghosts(self) -> dict[str, dict[str, str]]:
        """The deleted resources this answer still lists; each is listed a few times only."""
        with self.layer.lock:
            ghosts = self._ghosts()
            listed = {arn: tags for arn, (tags, _left) in ghosts.items()}
            for arn, (tags, left) in list(ghosts.items()):
                if left <= 1:
                    del ghosts[arn]
                else:
                    ghosts[arn] = (tags, left - 1)
        return listed


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
            tags = elb.describe_tags(ResourceArns=[listener["ListenerArn"]])["TagDescriptions"]
            found[listener["ListenerArn"]] = {
                t["Key"]: t["Value"] for d in tags for t in d.get("Tags", [])
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
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
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
    """What `nnote-deploy bootstrap` makes in an account before a first `up`: the permissions
    boundary every role the deployer creates must carry (made as an administrator would)."""
    from deployer import boundary
    from deployer.bootstrap import bootstrap_tags

    _admin_client(url, "iam", "us-east-1").create_policy(
        PolicyName=boundary.name(app),
        PolicyDocument=json.dumps(boundary.document()),
        Tags=bootstrap_tags(app),
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
