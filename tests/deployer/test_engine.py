"""The engine's parts on moto's in-process mock: graph order and concurrency, journal, lock."""

from __future__ import annotations

import getpass
import importlib.util
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from deployer import inventory, pipeline
from deployer.aws import Aws
from deployer.errors import AwsError, DeployError, ExitCode, Interrupted, LockedError
from deployer.inventory import Owner
from deployer.journal import RunJournal
from deployer.lock import Lock
from deployer.pipeline import StepFailed, run_graph
from deployer.steps.base import Change, Observed, Outputs, Refusal, Run, Step
from deployer.steps.image import ImageStep
from deployer.steps.service import ServiceStep
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.faults import FailNth
from tests.deployer.sweep import QuietEvents


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


class FakeStep(Step):
    def __init__(self, name: str, depends_on: tuple[str, ...] = (), action: Any = None) -> None:
        self.name, self.depends_on, self.action = name, depends_on, action

    def observe(self, run: Run) -> Observed:
        return {}

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        return []

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        if self.action:
            self.action(inputs)
        return {"inputs": sorted(inputs)}

    def destroy(self, run: Run, observed: Observed) -> None: ...

    def resources(self, observed: Observed) -> list:  # type: ignore[type-arg]
        return []


def test_independent_steps_run_concurrently(mocked: None) -> None:
    both_running = threading.Barrier(2, timeout=5)  # breaks unless the two overlap
    steps = [
        FakeStep("network"),
        FakeStep("slow-db", ("network",), lambda _i: both_running.wait()),
        FakeStep("registry", (), lambda _i: both_running.wait()),
    ]
    results, timings = run_graph(
        steps, lambda s, i: s.apply(make_run(), i), make_run(), QuietEvents()
    )
    assert "network" in results["slow-db"]["inputs"], "a step gets its dependencies' outputs"
    assert set(timings) == {"network", "slow-db", "registry"}


def test_dependents_wait_and_a_failure_stops_what_has_not_started(mocked: None) -> None:
    started: list[str] = []

    def boom(_inputs: dict[str, Any]) -> None:
        raise AwsError("ec2:create_vpc failed: InternalFailure", "retry", code="InternalFailure")

    steps = [
        FakeStep("network", (), boom),
        FakeStep("database", ("network",), lambda _i: started.append("database")),
    ]
    with pytest.raises(StepFailed) as failed:
        run_graph(steps, lambda s, i: s.apply(make_run(), i), make_run(), QuietEvents())
    assert failed.value.step == "network" and started == []


def test_reverse_order_deletes_dependents_first(mocked: None) -> None:
    order: list[str] = []
    steps = [
        FakeStep("network", (), lambda _i: order.append("network")),
        FakeStep("database", ("network",), lambda _i: order.append("database")),
    ]
    run_graph(steps, lambda s, i: s.apply(make_run(), i), make_run(), QuietEvents(), reverse=True)
    assert order == ["database", "network"]


def test_journal_undoes_newest_first_and_reports_what_it_could_not() -> None:
    journal = RunJournal()
    undone: list[str] = []
    journal.record("network", "created vpc", lambda: undone.append("vpc"))
    journal.record(
        "network", "created subnet", lambda: (_ for _ in ()).throw(RuntimeError("stuck"))
    )
    journal.record("registry", "created repo", lambda: undone.append("repo"))
    report = journal.rollback()
    assert undone == ["repo", "vpc"]
    assert report.undone == ["created repo", "created vpc"]
    assert report.failed == [("created subnet", "RuntimeError: stuck")]


def test_lock_is_exclusive_and_names_its_holder(mocked: None) -> None:
    aws = Aws(region=REGION)
    first = Lock(aws, Owner("nnote", "staging", "run-1"))
    second = Lock(aws, Owner("nnote", "staging", "run-2"))
    other_env = Lock(aws, Owner("nnote", "prod", "run-3"))
    first.acquire()
    with pytest.raises(LockedError, match=r"locked by run run-1 \(.+\) since \d{4}-"):
        second.acquire()
    other_env.acquire()  # environments do not block each other
    second.release()  # not the holder: the lock stays
    with pytest.raises(LockedError):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
    other_env.release()


def test_a_live_lock_is_renewed_and_a_dead_one_is_taken_over(mocked: None) -> None:
    import time

    aws = Aws(region=REGION)
    alive = Lock(aws, Owner("nnote", "staging", "run-1"), lease=0.4)
    alive.acquire()
    time.sleep(1.0)  # two and a half leases: renewals keep it held
    with pytest.raises(LockedError, match="locked by run run-1"):
        Lock(aws, Owner("nnote", "staging", "run-2"), lease=0.4).acquire()
    alive._stop.set()  # the holder dies (SIGKILL): no more renewals
    alive._renewer.join()  # type: ignore[union-attr]
    time.sleep(0.5)
    heirs = [Lock(aws, Owner("nnote", "staging", f"heir-{n}"), lease=30) for n in range(4)]
    outcomes: list[object] = []

    def contend(lock: Lock) -> None:
        try:
            outcomes.append(lock.acquire())
        except LockedError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=contend, args=(heir,)) for heir in heirs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Exactly one holds it; usually by takeover (it names the dead run), or, when it came in
    # between another's delete and put, as a plain acquire (None).
    winners = [o for o in outcomes if not isinstance(o, LockedError)]
    assert len(winners) == 1, outcomes
    assert winners[0] is None or winners[0]["run"] == "run-1"  # type: ignore[index]
    assert heirs[0].holder()["run"].startswith("heir-")  # type: ignore[index]
    for heir in heirs:
        heir.release()
    assert heirs[0].holder() is None, "released, and no takeover marker is left"
    names = [p["Name"] for p in aws.client("ssm").describe_parameters()["Parameters"]]
    assert names == []


def test_owner_recognises_only_its_own_tags() -> None:
    owner = Owner("nnote", "staging", "r")
    assert owner.owns(owner.tags("network"))
    assert owner.owns([{"key": t["Key"], "value": t["Value"]} for t in owner.tags("x")])
    assert not owner.owns(Owner("nnote", "prod", "r").tags("network"))
    assert not owner.owns(Owner("other", "staging", "r").tags("network"))
    assert not owner.owns(
        [{"Key": "nnote:app", "Value": "nnote"}, {"Key": "nnote:env", "Value": "staging"}]
    )
    assert not owner.owns(None)


# -- the leak audit and the tag schema, on moto's in-process mock ----------------------------

OURS = Owner("nnote", "staging", "run-1")


def fresh_inventory() -> ModuleType:
    """deployer.inventory loaded anew, outside sys.modules.

    Its table of confirmers (one describe call a kind) is built when the module loads; a copy
    loaded inside the test checks the table as the code builds it now, not as the suite's
    first import left it (scripts/mutation can only switch on code that runs in a test)."""
    spec = importlib.util.spec_from_file_location(inventory.__name__, inventory.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def plant(owner: Owner, component: str = "extra") -> dict[str, tuple[str, str, str]]:
    """One resource of each kind the audit confirms, tagged for `owner`: ARN -> (component,
    type, id) as the audit must name it. Roles, subnet group and repository are by name."""
    tags = owner.tags(component)
    prefix = f"{owner.app}-{owner.env}"
    ec2, rds, elb = client("ec2"), client("rds"), client("elbv2")

    def spec(kind: str) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": tags}]

    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16", TagSpecifications=spec("vpc"))["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.8.{n}.0/24", AvailabilityZone=f"{REGION}{zone}"
        )["Subnet"]["SubnetId"]
        for n, zone in ((1, "a"), (2, "b"))
    ]
    ec2.create_tags(Resources=[subnets[0]], Tags=tags)
    gateway = ec2.create_internet_gateway(TagSpecifications=spec("internet-gateway"))
    table = ec2.create_route_table(VpcId=vpc, TagSpecifications=spec("route-table"))
    group = ec2.create_security_group(
        GroupName=prefix, Description="x", VpcId=vpc, TagSpecifications=spec("security-group")
    )
    rds.create_db_subnet_group(
        DBSubnetGroupName=prefix, DBSubnetGroupDescription="x", SubnetIds=subnets, Tags=tags
    )
    db = rds.create_db_instance(
        DBInstanceIdentifier=prefix,
        Engine="mysql",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        DBSubnetGroupName=prefix,
        Tags=tags,
    )["DBInstance"]
    final = rds.create_db_snapshot(
        DBInstanceIdentifier=prefix, DBSnapshotIdentifier=f"{prefix}-final-x", Tags=tags
    )["DBSnapshot"]
    repository = client("ecr").create_repository(repositoryName=prefix, tags=tags)
    client("logs").create_log_group(
        logGroupName=f"/{prefix}", tags={t["Key"]: t["Value"] for t in tags}
    )
    secret = client("secretsmanager").create_secret(Name=f"{prefix}/k", SecretString="x", Tags=tags)
    client("ssm").put_parameter(Name=f"/{prefix}/lock", Value="x", Type="String", Tags=tags)
    for role in ("execution", "task"):
        client("iam").create_role(
            RoleName=f"{prefix}-{role}", AssumeRolePolicyDocument="{}", Tags=tags
        )
    ecs, lower = client("ecs"), owner.lower_tags(component)
    cluster = ecs.create_cluster(clusterName=prefix, tags=lower)["cluster"]
    revision = ecs.register_task_definition(
        family=prefix, containerDefinitions=[{"name": "a", "image": "x", "memory": 128}], tags=lower
    )["taskDefinition"]["taskDefinitionArn"]
    service = ecs.create_service(
        cluster=prefix, serviceName=prefix, taskDefinition=prefix, desiredCount=0, tags=lower
    )["service"]
    balancer = elb.create_load_balancer(Name=prefix, Subnets=subnets, Tags=tags)
    target = elb.create_target_group(
        Name=prefix, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip", Tags=tags
    )["TargetGroups"][0]["TargetGroupArn"]
    arn = f"arn:aws:ec2:{REGION}:123456789012"
    lb_arn = balancer["LoadBalancers"][0]["LoadBalancerArn"]
    return {
        f"{arn}:vpc/{vpc}": (component, "ec2:vpc", vpc),
        f"{arn}:subnet/{subnets[0]}": (component, "ec2:subnet", subnets[0]),
        f"{arn}:internet-gateway/{gateway['InternetGateway']['InternetGatewayId']}": (
            component,
            "ec2:internet-gateway",
            gateway["InternetGateway"]["InternetGatewayId"],
        ),
        f"{arn}:route-table/{table['RouteTable']['RouteTableId']}": (
            component,
            "ec2:route-table",
            table["RouteTable"]["RouteTableId"],
        ),
        f"{arn}:security-group/{group['GroupId']}": (
            component,
            "ec2:security-group",
            group["GroupId"],
        ),
        db["DBInstanceArn"]: (component, "rds:db", prefix),
        final["DBSnapshotArn"]: (component, "rds:snapshot", f"{prefix}-final-x"),
        repository["repository"]["repositoryArn"]: ("registry", "ecr:repository", prefix),
        f"arn:aws:logs:{REGION}:123456789012:log-group:/{prefix}": (
            component,
            "logs:log-group",
            f"/{prefix}",
        ),
        secret["ARN"]: (component, "secretsmanager:secret", secret["ARN"].split(":")[-1]),
        f"arn:aws:ssm:{REGION}:123456789012:parameter/{prefix}/lock": (
            component,
            "ssm:parameter",
            f"{prefix}/lock",
        ),
        f"{prefix}-execution": ("runtime", "iam:role", f"{prefix}-execution"),
        f"{prefix}-task": ("runtime", "iam:role", f"{prefix}-task"),
        f"{prefix}:subgrp": ("database", "rds:subgrp", prefix),
        cluster["clusterArn"]: (component, "ecs:cluster", prefix),
        revision: (component, "ecs:task-definition", f"{prefix}/1"),
        service["serviceArn"]: (component, "ecs:service", f"{prefix}/{prefix}"),
        lb_arn: (
            component,
            "elasticloadbalancing:loadbalancer",
            lb_arn.split(":loadbalancer/")[1],
        ),
        target: (component, "elasticloadbalancing:targetgroup", target.split(":targetgroup/")[1]),
    }


def test_leak_audit_names_everything_ours_that_exists_and_nothing_else(mocked: None) -> None:
    planted = plant(OURS)
    plant(Owner("nnote", "prod", "run-1"))  # another environment's
    client("iam").create_role(RoleName="nnote-staging-bystander", AssumeRolePolicyDocument="{}")
    client("iam").create_role(
        RoleName="nnote-staging-other",
        AssumeRolePolicyDocument="{}",
        Tags=Owner("x", "staging", "r").tags("y"),
    )
    found = fresh_inventory().leftovers(Aws(region=REGION), OURS)
    assert [(r.component, r.type, r.id) for r in found] == sorted(planted.values())
    states = {r.type: r.detail for r in found}
    assert states["ec2:vpc"] == "available" and states["ec2:security-group"] == "exists"
    assert states["rds:db"] == "available" and states["rds:subgrp"] == "Complete"
    assert states["ecs:cluster"] == "ACTIVE" and states["ecs:service"] == "ACTIVE"
    assert states["elasticloadbalancing:loadbalancer"] == "active"
    assert states["elasticloadbalancing:targetgroup"] == "exists"
    assert states["secretsmanager:secret"] == states["logs:log-group"] == "exists"
    assert states["rds:snapshot"] == "available"
    assert states["iam:role"] == states["ecr:repository"] == "exists"
    assert states["ecs:task-definition"] == "ACTIVE"


def test_leak_audit_by_run_names_only_what_that_run_made(mocked: None) -> None:
    plant(Owner("nnote", "staging", "run-0"))
    audit = fresh_inventory()
    aws = Aws(region=REGION)
    assert audit.leftovers(aws, Owner("nnote", "staging", "run-1"), only_run=True) == []
    made = audit.leftovers(aws, Owner("nnote", "staging", "run-0"), only_run=True)
    assert made == audit.leftovers(aws, Owner("nnote", "staging", "run-9")) != []


def listed_anyway(hits: list[str], untagged_component: tuple[str, ...] = ()) -> Any:
    """The tagging API listing these ARNs too, tagged as ours, as it does for a while after
    a resource is deleted (those in `untagged_component` lack the component tag)."""

    wanted: dict[str, list[str]] = {}

    def ask(params: dict[str, Any], **_: Any) -> None:
        wanted["types"] = params.get("ResourceTypeFilters") or []

    def listed(arn: str) -> bool:
        """As the API filters by type (`cloudfront:distribution`: service, then kind)."""
        kind = ":".join([arn.split(":")[2], arn.split(":", 5)[5].split("/")[0]])
        return not wanted["types"] or kind in wanted["types"]

    def add(parsed: dict[str, Any], **_: Any) -> None:
        tags = OURS.tags("extra")
        found = [a for a in hits if listed(a)]
        parsed["ResourceTagMappingList"] += [{"ResourceARN": a, "Tags": tags} for a in found]
        bare = [t for t in tags if t["Key"] != "nnote:component"]
        mappings = [{"ResourceARN": a, "Tags": bare} for a in untagged_component if listed(a)]
        parsed["ResourceTagMappingList"] += mappings

    return [
        ("provide-client-params.resource-groups-tagging-api.GetResources", ask),
        ("after-call.resource-groups-tagging-api.GetResources", add),
    ]


def being_deleted(parsed: dict[str, Any], **_: Any) -> None:
    """ECS answering as it does while it deletes: the service drains, the cluster goes."""
    for service in parsed.get("services", []):
        if service["serviceName"] == "nnote-draining":
            service["status"] = "DRAINING"
    for cluster in parsed.get("clusters", []):
        cluster["status"] = "DEPROVISIONING"


def test_leak_audit_confirms_each_hit_and_drops_what_is_gone(mocked: None) -> None:
    at = f"{REGION}:123456789012"
    ecs, logs = client("ecs"), client("logs")
    ecs.create_cluster(clusterName="nnote-gone")
    ecs.register_task_definition(
        family="nnote-gone", containerDefinitions=[{"name": "a", "image": "x", "memory": 128}]
    )
    service = ecs.create_service(
        cluster="nnote-gone", serviceName="nnote-gone", taskDefinition="nnote-gone"
    )["service"]["serviceArn"]
    ecs.delete_service(cluster="nnote-gone", service="nnote-gone", force=True)
    draining = ecs.create_service(
        cluster="nnote-gone", serviceName="nnote-draining", taskDefinition="nnote-gone"
    )["service"]["serviceArn"]
    old_revision = ecs.register_task_definition(
        family="nnote-gone", containerDefinitions=[{"name": "b", "image": "x", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=old_revision)
    secret = client("secretsmanager").create_secret(Name="nnote-gone", SecretString="x")["ARN"]
    client("secretsmanager").delete_secret(SecretId=secret, RecoveryWindowInDays=7)
    logs.create_log_group(logGroupName="/nnote-gone-2")  # shares the gone group's prefix
    logs.create_log_group(logGroupName="/nnote-live")
    for n in range(55):  # more than one page of groups before ours: it is asked for by name
        logs.create_log_group(logGroupName=f"/aaa-{n:02}")
    gone = [
        f"arn:aws:ec2:{at}:vpc/vpc-0123456789abcdef0",
        f"arn:aws:ec2:{at}:subnet/subnet-0123456789abcdef0",
        f"arn:aws:ec2:{at}:security-group/sg-0123456789abcdef0",
        f"arn:aws:ec2:{at}:internet-gateway/igw-0123456789abcdef0",
        f"arn:aws:ec2:{at}:route-table/rtb-0123456789abcdef0",
        f"arn:aws:rds:{at}:db:nnote-gone",
        f"arn:aws:rds:{at}:subgrp:nnote-gone",
        f"arn:aws:rds:{at}:snapshot:nnote-gone-final-1",
        f"arn:aws:ecr:{at}:repository/nnote-gone",
        f"arn:aws:ssm:{at}:parameter/nnote-gone/lock",
        f"arn:aws:elasticloadbalancing:{at}:loadbalancer/app/nnote-gone/50dc6c495c0c9188",
        f"arn:aws:elasticloadbalancing:{at}:targetgroup/nnote-gone/73e2d6bc24d8a067",
        f"arn:aws:elasticloadbalancing:{at}:listener/app/nnote-gone/50dc6c495c0c9188/f2f7dc8e",
        f"arn:aws:elasticloadbalancing:{at}:listener-rule/app/nnote-gone/50dc6c495c0c9188/"
        "f2f7dc8e/9683b2d02a6cabee",
        f"arn:aws:acm:{at}:certificate/0b4e2f2c-6a7e-4f7c-9d6e-0d2a9b6f1c11",
        "arn:aws:cloudfront::123456789012:distribution/E2GONE0EXAMPLE",
        f"arn:aws:logs:{at}:log-group:/nnote-gone",
        f"arn:aws:ecs:{at}:cluster/nnote-gone-too",
        f"arn:aws:secretsmanager:{at}:secret:nnote-never-a1b2c3",
        service,
        draining,
        f"arn:aws:ecs:{at}:cluster/nnote-gone",
        secret,
        old_revision,
    ]
    automated_backup = f"arn:aws:rds:{at}:snapshot:rds:nnote-staging-2026-12-01-03-10"
    unknown = f"arn:aws:lambda:{at}:function:nnote-staging-hook"
    live_groups = [f"arn:aws:logs:{at}:log-group:/nnote-live{end}" for end in (":*", "/*")]
    queue = f"arn:aws:sqs:{at}:nnote-staging-queue"  # no kind/id in it: named by its ARN
    hits = [*gone, automated_backup, unknown, *live_groups]
    hooks = [
        *listed_anyway(hits, untagged_component=(queue,)),
        ("after-call.ecs.DescribeServices", being_deleted),
        ("after-call.ecs.DescribeClusters", being_deleted),
    ]
    aws = Aws(region=REGION, hooks=hooks)
    found = fresh_inventory().leftovers(aws, OURS)
    unknown_type = "unknown type: check it by hand"
    assert [(r.component, r.type, r.id, r.detail) for r in found] == [
        ("?", "sqs:nnote-staging-queue", queue, unknown_type),
        ("extra", "lambda:function", "nnote-staging-hook", unknown_type),
        ("extra", "logs:log-group", "/nnote-live/*", "exists"),
        ("extra", "logs:log-group", "/nnote-live:*", "exists"),
    ]
    assert aws.log.calls["rds:DescribeDBSnapshots"] == 1, "automated backups are not asked about"


def test_leak_audit_skips_a_role_deleted_while_it_looked(mocked: None) -> None:
    def one_more_role(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Roles"].append({**parsed["Roles"][0], "RoleName": "nnote-staging-deleted"})

    client("iam").create_role(
        RoleName="nnote-staging-task", AssumeRolePolicyDocument="{}", Tags=OURS.tags("runtime")
    )
    aws = Aws(region=REGION, hooks=[("after-call.iam.ListRoles", one_more_role)])
    found = fresh_inventory().leftovers(aws, OURS)
    assert [(r.type, r.id) for r in found] == [("iam:role", "nnote-staging-task")]


def test_every_resource_carries_the_five_tags_and_its_name() -> None:
    owner = Owner("nnote", "staging", "run-7")
    tags = [
        {"Key": "nnote:app", "Value": "nnote"},
        {"Key": "nnote:env", "Value": "staging"},
        {"Key": "nnote:component", "Value": "network"},
        {"Key": "nnote:managed-by", "Value": "nnote-deploy"},
        {"Key": "nnote:run", "Value": "run-7"},
    ]
    assert owner.tag_specifications("vpc", "network", "nnote-staging") == [
        {"ResourceType": "vpc", "Tags": [*tags, {"Key": "Name", "Value": "nnote-staging"}]}
    ]
    assert owner.lower_tags("network") == [{"key": t["Key"], "value": t["Value"]} for t in tags]
    assert owner.ec2_filters("network") == [
        {"Name": "tag:nnote:app", "Values": ["nnote"]},
        {"Name": "tag:nnote:env", "Values": ["staging"]},
        {"Name": "tag:nnote:managed-by", "Values": ["nnote-deploy"]},
        {"Name": "tag:nnote:component", "Values": ["network"]},
    ]
    assert len(owner.ec2_filters()) == 3, "without a component: all of the environment's"
    assert inventory.tags_as_dict(
        [{"Key": "a"}, {"value": "no key"}, {"key": "b", "value": "2"}]
    ) == {
        "a": "",
        "b": "2",
    }


def test_run_id_leads_back_to_the_github_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.delenv("GITHUB_RUN_ATTEMPT", raising=False)
    assert inventory.new_run_id() == "gh-4242-1"
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "3")
    assert inventory.new_run_id() == "gh-4242-3"
    monkeypatch.delenv("GITHUB_RUN_ID")
    first, second = inventory.new_run_id(), inventory.new_run_id()
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", first) and first != second


def test_only_final_and_release_snapshots_of_this_environment_are_kept() -> None:
    def snapshot(ident: str, kind: str = "rds:snapshot") -> inventory.Resource:
        return inventory.Resource("database", kind, ident, "available")

    assert inventory.is_kept_snapshot(snapshot("nnote-staging-final-run-1"), "nnote-staging")
    assert not inventory.is_kept_snapshot(snapshot("nnote-prod-final-run-1"), "nnote-staging")
    assert not inventory.is_kept_snapshot(snapshot("nnote-staging-manual"), "nnote-staging")
    assert inventory.is_kept_snapshot(snapshot("nnote-staging-release-7"), "nnote-staging")
    assert not inventory.is_kept_snapshot(snapshot("nnote-prod-release-7"), "nnote-staging")
    assert not inventory.is_kept_snapshot(
        snapshot("nnote-staging-final-x", "rds:db"), "nnote-staging"
    )
    assert inventory.role_names("nnote-staging") == {
        "execution": "nnote-staging-execution",
        "task": "nnote-staging-task",
    }


# -- the lock's edges ---------------------------------------------------------------------


LOCK = "/nnote-deploy/nnote/staging/lock"
BEAT = f"{LOCK}-lease-run-1"  # where run-1 renews its lease


def lock_value(aws: Aws, name: str = LOCK) -> dict[str, Any]:
    return dict(json.loads(aws.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]))


def test_lock_records_who_holds_it_until_when_and_is_tagged_as_ours(
    mocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("NNOTE_DEPLOY_LOCK_LEASE_SECONDS", "90")
    aws = Aws(region=REGION)
    lock = Lock(aws, OURS)
    before = time.time()
    lock.acquire()
    held = lock_value(aws)
    assert held["run"] == "run-1" and held["owner"] == "github:octocat"
    assert before + 89 <= held["expires"] <= time.time() + 90
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", held["since"])
    tags = aws.client("ssm").list_tags_for_resource(
        ResourceType="Parameter", ResourceId="/nnote-deploy/nnote/staging/lock"
    )
    assert OURS.owns(tags["TagList"])
    with pytest.raises(LockedError) as locked:
        Lock(aws, Owner("nnote", "staging", "run-2")).acquire()
    assert "locked by run run-1 (github:octocat) since " + held["since"] in locked.value.message
    assert "loses the lock 90s after its last renewal" in locked.value.hint
    lock.release()
    assert lock.holder() is None


def test_lock_without_a_github_actor_names_user_and_host(mocked: None) -> None:
    aws = Aws(region=REGION)
    lock = Lock(aws, OURS)
    lock.acquire()
    assert lock_value(aws)["owner"] == f"{getpass.getuser()}@{socket.gethostname()}"
    lock.release()


@pytest.mark.parametrize("value", ["not json", '{"run": "run-0", "expires": "soon"}', "[1, 2]"])
def test_an_unreadable_lock_is_taken_over(mocked: None, value: str) -> None:
    aws = Aws(region=REGION)
    aws.client("ssm").put_parameter(
        Name="/nnote-deploy/nnote/staging/lock", Value=value, Type="String"
    )
    lock = Lock(aws, OURS, lease=30)
    dead = lock.acquire()
    assert lock_value(aws)["run"] == "run-1"
    if value.startswith("{"):
        assert dead == {"run": "run-0", "expires": "soon"}
    else:
        assert dead == {"run": "?", "owner": "unreadable lock value", "expires": 0}
    lock.release()


def ends_when_asked_about(holder: Lock) -> Any:
    """A hook for the waiting run: the holder finishes right after the waiter found it held."""
    return ("after-call.ssm.GetParameter", lambda **_: holder.release())


def test_waiting_for_the_lock_takes_it_once_the_holder_is_done(mocked: None) -> None:
    holder = Lock(Aws(region=REGION), Owner("nnote", "staging", "run-0"), lease=30)
    holder.acquire()
    aws = Aws(region=REGION, hooks=[ends_when_asked_about(holder)])
    waiter = Lock(aws, OURS, lease=30)
    started = time.monotonic()
    assert waiter.acquire(wait_seconds=20, poll=0.1) is None
    assert waiter.waited and time.monotonic() - started < 10
    assert lock_value(aws)["run"] == "run-1"
    waiter.release()


def taken(lease: float, aws: Aws | None = None) -> tuple[Aws, Lock]:
    """The environment's lock, taken by run-1 with a `lease` short enough to watch renewals."""
    aws = aws or Aws(region=REGION)
    lock = Lock(aws, OURS, lease=lease)
    lock.acquire()
    return aws, lock


def eventually(condition: Any, seconds: float = 20) -> bool:
    """Whether `condition()` comes true within `seconds` (renewals run on their own thread)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_lock_broken_by_unlock_is_not_renewed_back(mocked: None) -> None:
    aws, lock = taken(lease=8)  # renewed every 2 s: the unlock lands between renewals
    Lock(aws, Owner("nnote", "staging", "admin")).force_release()  # `nnote-deploy unlock`
    assert lock._renewer is not None
    lock._renewer.join(timeout=20)
    assert not lock._renewer.is_alive(), "the renewer saw it gone and stopped"
    assert lock.holder() is None
    other = Lock(aws, Owner("nnote", "staging", "run-2"), lease=30)
    other.acquire()
    time.sleep(0.2)
    lock.release()  # the old holder ends: the new holder's lock stays
    assert lock_value(aws)["run"] == "run-2"
    other.release()


def expires(lock: Lock) -> float:
    holder = lock.holder()
    assert holder is not None, "the lock is held"
    return float(holder["expires"])


def parameters(aws: Aws) -> list[str]:
    return sorted(p["Name"] for p in aws.client("ssm").describe_parameters()["Parameters"])


def test_renewal_extends_the_lease_and_release_leaves_nothing(mocked: None) -> None:
    aws, lock = taken(lease=8)  # renewed every 2 s
    first = lock_value(aws)["expires"]
    assert eventually(lambda: expires(lock) > first + 0.1)
    assert lock_value(aws)["run"] == "run-1", "the lock itself is never rewritten"
    assert parameters(aws) == [LOCK, BEAT]
    lock._stop.set()  # no more renewals: what holds the lock now is the last heartbeat
    lock._renewer.join()  # type: ignore[union-attr]
    hold_lock(aws, "run-1", time.time() - 1, overwrite=True)  # its first lease has run out
    with pytest.raises(LockedError, match="locked by run run-1"):
        Lock(aws, Owner("nnote", "staging", "run-2"), lease=30).acquire()
    lock.release()
    assert lock.holder() is None and parameters(aws) == []


def test_a_dead_holders_heartbeat_goes_with_its_lock(mocked: None) -> None:
    aws = Aws(region=REGION)
    hold_lock(aws, "run-0", time.time() - 60)
    aws.client("ssm").put_parameter(
        Name=f"{LOCK}-lease-run-0", Value=json.dumps({"expires": time.time() - 1}), Type="String"
    )
    lock = Lock(aws, OURS, lease=30)
    assert lock.acquire() is not None, "taken over"
    assert parameters(aws) == [LOCK]
    lock.release()


def test_unlock_breaks_the_lock_and_its_heartbeat(mocked: None) -> None:
    aws, lock = taken(lease=0.4)
    assert eventually(lambda: BEAT in parameters(aws))
    lock._stop.set()  # the holder is frozen (SIGSTOP): no more renewals
    lock._renewer.join()  # type: ignore[union-attr]
    admin = Lock(aws, Owner("nnote", "staging", "admin"))
    admin.force_release(admin.holder())  # as `nnote-deploy unlock` does
    assert parameters(aws) == []


def hold_lock(aws: Aws, run: str, expires: float, overwrite: bool = False) -> None:
    aws.client("ssm").put_parameter(
        Name="/nnote-deploy/nnote/staging/lock",
        Type="String",
        Value=json.dumps({"run": run, "owner": "ann@laptop", "since": "T", "expires": expires}),
        Overwrite=overwrite,
    )


def test_a_takeover_left_half_done_blocks_only_that_dead_lock(mocked: None) -> None:
    """A run that died while taking over a dead lock leaves its marker: that dead lock stays
    blocked (exclusive takeover), another dead lock does not."""
    aws = Aws(region=REGION)
    name = "/nnote-deploy/nnote/staging/lock"
    aws.client("ssm").put_parameter(Name=f"{name}-takeover-unknown", Value="{}", Type="String")
    aws.client("ssm").put_parameter(Name=name, Value='{"expires": 0}', Type="String")
    with pytest.raises(LockedError):
        Lock(aws, OURS, lease=30).acquire()
    hold_lock(aws, "run-5", time.time() - 1, overwrite=True)
    lock = Lock(aws, OURS, lease=30)
    dead = lock.acquire()
    assert dead is not None and dead["run"] == "run-5" and lock_value(aws)["run"] == "run-1"
    lock.release()


def test_a_lock_renewed_during_the_takeover_is_not_taken(mocked: None) -> None:
    admin = Aws(region=REGION)
    hold_lock(admin, "run-0", time.time() - 1)

    def renewed_meanwhile(params: dict[str, Any], **_: Any) -> None:
        if "-takeover-" in params["Name"]:  # the holder was only slow: it renews now
            admin.client("ssm").put_parameter(
                Name=f"{LOCK}-lease-run-0",
                Value=json.dumps({"run": "run-0", "expires": time.time() + 600}),
                Type="String",
            )

    aws = Aws(region=REGION, hooks=[("provide-client-params.ssm.PutParameter", renewed_meanwhile)])
    with pytest.raises(LockedError, match="locked by run run-0"):
        Lock(aws, OURS, lease=30).acquire()
    assert parameters(admin) == [LOCK, f"{LOCK}-lease-run-0"], "the marker is gone"


def test_a_missed_renewal_is_retried_and_its_heartbeat_is_still_tagged(mocked: None) -> None:
    failing = FailNth("PutParameter", 2, code="InternalServerError")  # the first renewal
    aws, lock = taken(lease=0.4, aws=Aws(region=REGION, hooks=failing.hooks()))
    first = lock_value(aws)["expires"]
    assert eventually(lambda: failing.fired and expires(lock) > first)
    tags = aws.client("ssm").list_tags_for_resource(ResourceType="Parameter", ResourceId=BEAT)
    assert OURS.owns(tags["TagList"]), "created tagged: the policy lets us put only on ours"
    lock.release()
    assert parameters(aws) == []


def test_unlock_of_an_environment_that_is_not_locked_is_fine(mocked: None) -> None:
    lock = Lock(Aws(region=REGION), OURS)
    lock.force_release()
    lock.acquire()
    lock.force_release()
    lock.force_release()
    assert lock.holder() is None
    lock.release()  # the run ends: its renewals stop


def test_an_unlock_during_a_renewal_is_not_undone(mocked: None) -> None:
    admin = Aws(region=REGION)

    unlocked = threading.Event()

    def unlock_meanwhile(**_: Any) -> None:
        if threading.current_thread().name == "lock-renewer":  # it has just seen us holding
            Lock(admin, Owner("nnote", "staging", "admin")).force_release()
            unlocked.set()

    aws = Aws(region=REGION, hooks=[("after-call.ssm.GetParameter", unlock_meanwhile)])
    _, lock = taken(lease=0.4, aws=aws)
    assert unlocked.wait(20)
    lock._renewer.join(timeout=20)  # type: ignore[union-attr]
    assert not lock._renewer.is_alive(), "the renewer saw it gone and stopped"  # type: ignore[union-attr]
    assert Lock(admin, OURS).holder() is None, "the unlock stands"
    assert parameters(admin) == [], "the heartbeat it wrote meanwhile went with it"
    before = aws.log.calls.copy()
    lock.release()  # the run ends: nothing of it is left to delete, and it asks only once
    assert aws.log.calls - before == {"ssm:GetParameter": 1}


def test_each_renewal_writes_the_heartbeat_once_and_moves_the_lease(mocked: None) -> None:
    puts: list[dict[str, Any]] = []
    checks: list[str] = []  # what the renewer read

    def put(params: dict[str, Any], **_: Any) -> None:
        if params["Name"] == BEAT:
            puts.append(dict(params))

    def get(params: dict[str, Any], **_: Any) -> None:
        if threading.current_thread().name == "lock-renewer":
            checks.append(params["Name"])

    aws = Aws(
        region=REGION,
        hooks=[
            ("provide-client-params.ssm.PutParameter", put),
            ("provide-client-params.ssm.GetParameter", get),
        ],
    )
    _, lock = taken(lease=0.4, aws=aws)  # renewed every 0.1 s
    admin, seen = Aws(region=REGION), set()

    def moved_three_times() -> bool:
        if BEAT in parameters(admin):
            seen.add(lock_value(admin, BEAT)["expires"])
        return len(seen) > 3

    assert eventually(moved_three_times), "every renewal moves the lease"
    lock._stop.set()
    lock._renewer.join()  # type: ignore[union-attr]
    assert set(checks) == {LOCK}, "the renewer reads only the lock"
    renewals = len(checks) - 1  # one check each, and one more right after the creation
    assert len(puts) == renewals, "one put a renewal"
    assert "Tags" in puts[0] and not puts[0].get("Overwrite"), "created once, tagged"
    assert all(put["Overwrite"] is True and "Tags" not in put for put in puts[1:])
    lock.release()


def test_a_takeover_that_cannot_clear_the_dead_heartbeat_takes_nothing_yet(
    mocked: None,
) -> None:
    aws = Aws(region=REGION, hooks=FailNth("DeleteParameter", 1, code="AccessDenied").hooks())
    hold_lock(aws, "run-0", time.time() - 60)
    aws.client("ssm").put_parameter(
        Name=f"{LOCK}-lease-run-0", Value=json.dumps({"expires": 0}), Type="String"
    )
    lock = Lock(aws, OURS, lease=30)
    with pytest.raises(LockedError, match="locked by run run-0"):
        lock.acquire()  # its heartbeat could not be deleted: the dead lock stays as it was
    assert lock_value(aws)["run"] == "run-0"
    dead = lock.acquire()  # the next try finishes the takeover
    assert dead is not None and lock_value(aws)["run"] == "run-1"
    assert parameters(aws) == [LOCK]
    lock.release()


def test_a_short_run_takes_and_releases_the_lock_in_three_calls(mocked: None) -> None:
    aws, lock = taken(lease=120)
    lock.release()
    ssm = {op: n for op, n in aws.log.calls.items() if op.startswith("ssm")}
    assert ssm == {"ssm:PutParameter": 1, "ssm:GetParameter": 1, "ssm:DeleteParameter": 1}


def test_down_deletes_what_dead_runs_left_of_the_lock(mocked: None) -> None:
    run, events = make_run(run_id="r"), Recorder()
    ssm = run.aws.client("ssm")
    for name in (f"{LOCK}-lease-run-0", f"{LOCK}-takeover-run-0"):  # a run died mid-takeover
        ssm.put_parameter(Name=name, Value="{}", Type="String", Tags=OURS.tags("lock"))
    step = PlannedStep("network")
    step.destroy = lambda _run, _observed: None  # type: ignore[method-assign]
    result = pipeline.down(run, events, steps=[step])
    assert result.leftovers == [] and parameters(run.aws) == []
    names = f"{LOCK[1:]}-lease-run-0, {LOCK[1:]}-takeover-run-0"
    assert ("note", "lock", f"deleted what runs that died left of the lock: {names}") in events.seen


def test_down_reports_a_lock_leftover_it_could_not_delete(mocked: None) -> None:
    run = make_run(run_id="r", hooks=FailNth("DeleteParameter", 1, code="AccessDenied").hooks())
    name = f"{LOCK}-lease-run-0"
    run.aws.client("ssm").put_parameter(
        Name=name, Value="{}", Type="String", Tags=OURS.tags("lock")
    )
    step = PlannedStep("network")
    step.destroy = lambda _run, _observed: None  # type: ignore[method-assign]
    result = pipeline.down(run, Recorder(), steps=[step])
    assert [(r.component, r.type, r.id) for r in result.leftovers] == [
        ("lock", "ssm:parameter", name.lstrip("/"))
    ]


# -- the commands on fake steps: what a user reads when up, down or redeploy end -----------


class Recorder(QuietEvents):
    """The events a command reports, in order, as the CLI's renderer would get them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    def step_note(self, step: str, message: str) -> None:
        self.seen.append(("note", step, message))

    def step_started(self, step: str) -> None:
        self.seen.append(("started", step))

    def step_finished(self, step: str, seconds: float) -> None:
        self.seen.append(("finished", step))
        assert 0 <= seconds < 60, "a step reports how long it ran"

    def step_failed(self, step: str, seconds: float, message: str) -> None:
        self.seen.append(("failed", step, message))
        assert 0 < seconds < 60, "a failed step reports how long it ran"

    def undoing(self, entry: object) -> None:
        self.seen.append(("undoing", entry.description))  # type: ignore[attr-defined]

    @property
    def notes(self) -> list[str]:
        return [event[2] for event in self.seen if event[0] == "note"]


class PlannedStep(FakeStep):
    """A step with `changes` to make; its apply journals `journaled` (description, undo)."""

    def __init__(
        self,
        name: str,
        depends_on: tuple[str, ...] = (),
        action: Any = None,
        changes: int = 1,
        journaled: list[tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__(name, depends_on, action)
        self.changes, self.journaled = changes, journaled or []
        self.resource = inventory.Resource(name, f"fake:{name}", f"{name}-1", "exists")

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        return [
            Change(self.name, "create", "fake", f"{self.name}-{n}") for n in range(self.changes)
        ]

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        for description, undo in self.journaled:
            run.journal.record(self.name, description, undo)
        return super().apply(run, inputs)

    def resources(self, observed: Observed) -> list:  # type: ignore[type-arg]
        return [self.resource]


def fails(error: BaseException) -> Any:
    def action(_inputs: dict[str, Any]) -> None:
        time.sleep(0.01)
        raise error

    return action


AWS_FAILURE = AwsError(
    "rds:create_db_instance failed: InternalFailure",
    "try again",
    code="InternalFailure",
    request_id="req-1",
)


def test_up_with_nothing_to_change_stops_before_the_lock(mocked: None) -> None:
    run = make_run()
    result = pipeline.up(run, Recorder(), steps=[PlannedStep("network", changes=0)])
    assert result.changes == [] and result.outputs == {} and 0 < result.wall_seconds < 60
    assert run.aws.log.total == 0, "no lock taken: not a single AWS call"


def test_up_reports_its_changes_outputs_and_timings(mocked: None) -> None:
    events = Recorder()
    steps = [
        PlannedStep("network", action=lambda _i: time.sleep(0.05)),
        PlannedStep("database", ("network",), changes=2),
    ]
    run = make_run()
    result = pipeline.up(run, events, steps=steps)
    assert [c.name for c in result.changes] == ["network-0", "database-0", "database-1"]
    assert result.outputs["database"] == {"inputs": ["network"]}
    assert result.timings["network"] >= 0.05
    assert result.critical_seconds == pytest.approx(sum(result.timings.values()))
    assert 0 < result.plan_seconds < result.wall_seconds < 60
    assert result.wall_seconds >= result.critical_seconds
    assert ("started", "database") in events.seen and ("finished", "database") in events.seen
    assert Lock(run.aws, run.owner).holder() is None, "the lock is released"


def test_critical_path_is_the_slowest_chain_of_dependencies() -> None:
    steps = [
        FakeStep("network"),
        FakeStep("registry"),
        FakeStep("database", ("network",)),
        FakeStep("image", ("registry",)),
        FakeStep("service", ("database", "image")),
    ]
    timings = {"network": 2.0, "registry": 1.0, "database": 5.0, "image": 7.0, "service": 0.5}
    assert pipeline.critical_path(steps, timings) == 8.5  # registry, image, service
    assert pipeline.critical_path(steps, {"database": 3.0}) == 3.0
    assert pipeline.critical_path([], {}) == 0.0
    # `down` and `redeploy` run without the image step the service depends on.
    assert pipeline.critical_path([FakeStep("service", ("image",))], {"service": 1.5}) == 1.5


def test_failed_up_rolls_back_and_says_what_it_undid(mocked: None) -> None:
    undone: list[str] = []
    events = Recorder()
    steps = [
        PlannedStep("network", journaled=[("created vpc", lambda: undone.append("vpc"))]),
        PlannedStep("database", ("network",), fails(AWS_FAILURE)),
    ]
    run = make_run()
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(run, events, steps=steps)
    error = failed.value
    assert error.message == (
        "up failed in step database: rds:create_db_instance failed: InternalFailure; "
        "rolled back 1 change(s) made by this run"
    )
    assert error.hint == "try again" and error.request_id == "req-1"
    assert error.exit_code == ExitCode.ROLLED_BACK
    assert error.cause is AWS_FAILURE and error.step == "database" and error.done == ["created vpc"]
    assert error.rollback is not None and error.rollback.undone == ["created vpc"]
    assert error.rollback.failed == [] and undone == ["vpc"]
    assert ("failed", "database", AWS_FAILURE.message) in events.seen
    assert ("undoing", "created vpc") in events.seen
    assert not run.cancel.is_set(), "the rollback was not cancelled"
    assert Lock(run.aws, run.owner).holder() is None


def test_failed_up_without_rollback_keeps_the_work_and_says_how_to_resume(mocked: None) -> None:
    undone: list[str] = []
    steps = [
        PlannedStep("network", journaled=[("created vpc", lambda: undone.append("vpc"))]),
        PlannedStep("database", ("network",), fails(DeployError("no capacity"))),
    ]
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(), Recorder(), rollback=False, steps=steps)
    assert failed.value.message.endswith("; kept 1 change(s) (--no-rollback)")
    assert failed.value.hint == (
        "run `nnote-deploy up` again to resume, or `nnote-deploy down` to remove"
    )
    assert failed.value.rollback is None and undone == []


def test_failed_up_whose_undo_fails_points_to_down(mocked: None) -> None:
    def stuck() -> None:
        raise AwsError("ec2:delete_vpc failed: DependencyViolation", "", code="DependencyViolation")

    steps = [
        PlannedStep("network", journaled=[("created vpc", stuck), ("created igw", lambda: None)]),
        PlannedStep("database", ("network",), fails(DeployError("no capacity"))),
    ]
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(), Recorder(), steps=steps)
    assert failed.value.message.endswith("; rolled back 1, could not undo 1")
    assert failed.value.hint == "see the list below; run `nnote-deploy down` to remove what is left"
    assert failed.value.rollback is not None
    assert failed.value.rollback.failed == [
        ("created vpc", "ec2:delete_vpc failed: DependencyViolation")
    ]


def test_failed_up_without_a_hint_says_to_fix_the_cause(mocked: None) -> None:
    steps = [PlannedStep("network", action=fails(DeployError("no capacity")))]
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(), Recorder(), steps=steps)
    assert failed.value.hint == "fix the cause and run `nnote-deploy up` again"


def test_an_unexpected_error_in_a_step_is_named_with_its_type(mocked: None) -> None:
    steps = [PlannedStep("network", action=fails(RuntimeError("boom")))]
    events = Recorder()
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(), events, steps=steps)
    assert ("failed", "network", "RuntimeError('boom')") in events.seen
    assert failed.value.cause.message == "unexpected RuntimeError: boom"
    assert failed.value.cause.hint == "run again with --verbose"
    assert "up failed in step network: unexpected RuntimeError: boom" in failed.value.message


def test_a_create_the_journal_never_heard_of_is_reported_after_rollback(mocked: None) -> None:
    run = make_run(run_id="lossy")
    earlier = Owner("nnote", "staging", "earlier").tag_specifications("vpc", "network", "x")
    client("ec2").create_vpc(CidrBlock="10.3.0.0/16", TagSpecifications=earlier)  # not this run's

    def stuck() -> None:
        raise DeployError("stuck")

    def lost_answer(_inputs: dict[str, Any]) -> None:
        spec = run.owner.tag_specifications("vpc", "network", "nnote-staging")
        vpc = client("ec2").create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=spec)
        journaled = client("ec2").create_vpc(CidrBlock="10.2.0.0/16", TagSpecifications=spec)
        made = ("ec2:vpc", journaled["Vpc"]["VpcId"])
        run.journal.record("network", "created vpc", stuck, made=made)
        raise DeployError(f"lost the answer for {vpc['Vpc']['VpcId']}")

    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(run, Recorder(), steps=[PlannedStep("network", action=lost_answer)])
    lost = failed.value.message.split("lost the answer for ")[1].split(";")[0]
    assert failed.value.rollback is not None
    assert failed.value.rollback.failed == [
        ("created vpc", "stuck"),
        (f"ec2:vpc {lost}", "made by this run but its answer was lost; `down` removes it"),
    ], "the journaled vpc once, the lost one named; the run's lock is not a leak"


def test_a_failed_check_for_lost_creates_is_reported_too(
    mocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def audit_fails(*_args: Any, **_kwargs: Any) -> None:
        raise DeployError("tagging:get_resources failed: AccessDenied")

    monkeypatch.setattr(inventory, "leftovers", audit_fails)
    steps = [PlannedStep("network", action=fails(DeployError("no capacity")))]
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(), Recorder(), steps=steps)
    assert failed.value.rollback is not None
    assert failed.value.rollback.failed == [
        ("the check for resources this run made", "tagging:get_resources failed: AccessDenied")
    ]


def test_up_that_waited_for_the_lock_plans_again(mocked: None) -> None:
    holder = Lock(Aws(region=REGION), Owner("nnote", "staging", "run-0"), lease=30)
    holder.acquire()
    run, events = make_run(hooks=[ends_when_asked_about(holder)]), Recorder()
    done_meanwhile = PlannedStep("network")
    changes = pipeline.plan(run, [done_meanwhile])
    done_meanwhile.changes = 0  # the run we waited for made them
    result = pipeline.up(run, events, lock_wait=30, steps=[done_meanwhile], changes=changes)
    assert result.changes == [] and result.outputs == {}
    # Said as the lock's line ("lock: re-planned after waiting: ..."), not a step's.
    assert [e for e in events.seen if e[0] == "note"] == [
        ("note", "lock", "re-planned after waiting: 0 change(s) left")
    ]
    assert ("started", "network") not in events.seen


def test_steps_that_wait_on_each_other_are_a_bug_said_plainly(mocked: None) -> None:
    steps = [FakeStep("a", ("b",)), FakeStep("b", ("a",))]
    with pytest.raises(DeployError, match=r"steps \['a', 'b'\] wait on each other") as bug:
        run_graph(steps, lambda s, i: s.apply(make_run(), i), make_run(), QuietEvents())
    assert bug.value.hint == "a bug: report it"


def test_ctrl_c_starts_nothing_new(mocked: None) -> None:
    run = make_run()
    started: list[str] = []
    steps = [
        FakeStep("network", (), lambda _i: run.cancel.set()),  # Ctrl-C while it ran; it ends
        FakeStep("database", ("network",), lambda _i: started.append("database")),
    ]
    with pytest.raises(StepFailed) as failed:
        run_graph(steps, lambda s, i: s.apply(run, i), run, QuietEvents())
    assert failed.value.step == "(interrupted)" and started == []


def test_ctrl_c_in_a_step_stops_the_graph_as_interrupted(mocked: None) -> None:
    run = make_run()
    started: list[str] = []

    def ctrl_c(_inputs: dict[str, Any]) -> None:
        run.cancel.set()
        raise Interrupted()

    steps = [
        FakeStep("network", (), ctrl_c),
        FakeStep("database", ("network",), lambda _i: started.append("database")),
    ]
    with pytest.raises(StepFailed) as failed:
        run_graph(steps, lambda s, i: s.apply(run, i), run, QuietEvents())
    assert failed.value.step == "(interrupted)" and isinstance(failed.value.error, Interrupted)
    assert started == []


class RefusingStep(PlannedStep):
    def refusals(self, run: Run, observed: Observed) -> list[Refusal]:
        return [Refusal(f"{self.name} is protected", f"unprotect {self.name}")]

    def destroy(self, run: Run, observed: Observed) -> None:
        raise AssertionError("nothing may be deleted")


def test_down_refuses_before_deleting_anything_and_names_every_problem(mocked: None) -> None:
    steps = [PlannedStep("network"), RefusingStep("database"), RefusingStep("registry")]
    with pytest.raises(pipeline.DownRefused) as refused:
        pipeline.down(make_run(), Recorder(), steps=steps)
    assert refused.value.message == (
        "down refused, nothing was deleted: database is protected (and 1 more)"
    )
    assert refused.value.hint == "unprotect database"
    assert refused.value.problems == [
        "database is protected: unprotect database",
        "registry is protected: unprotect registry",
    ]
    with pytest.raises(pipeline.DownRefused) as one:
        pipeline.down(make_run(), Recorder(), steps=[RefusingStep("database")])
    assert one.value.message.endswith(": database is protected")


def test_down_lists_what_it_deleted_kept_and_left(mocked: None) -> None:
    run = make_run(run_id="r")
    order: list[str] = []
    steps = [
        PlannedStep("network", action=lambda _i: order.append("network")),
        PlannedStep("database", ("network",), action=lambda _i: order.append("database")),
    ]
    for step in steps:
        step.destroy = lambda _run, _observed, step=step: step.action({})  # type: ignore[method-assign]
    planted = plant(OURS)
    result = pipeline.down(run, Recorder(), steps=steps)
    assert order == ["database", "network"]
    assert result.deleted == [steps[0].resource, steps[1].resource]
    assert set(result.timings) == {"network", "database"}
    assert [(r.type, r.id) for r in result.kept] == [("rds:snapshot", "nnote-staging-final-x")]
    left = {(r.component, r.type, r.id) for r in result.leftovers}
    assert left == set(planted.values()) - {("extra", "rds:snapshot", "nnote-staging-final-x")}
    assert "lock" not in {r.component for r in result.leftovers}, "its own lock is no leak"
    assert Lock(run.aws, run.owner).holder() is None


def test_down_that_fails_says_why_and_releases_the_lock(mocked: None) -> None:
    run = make_run()
    step = PlannedStep("network")
    step.destroy = lambda _run, _observed: fails(AWS_FAILURE)({})  # type: ignore[method-assign]
    with pytest.raises(AwsError) as failed:
        pipeline.down(run, Recorder(), steps=[step])
    assert failed.value is AWS_FAILURE
    assert Lock(run.aws, run.owner).holder() is None


def test_status_lists_every_steps_resources_in_order(mocked: None) -> None:
    steps = [PlannedStep("network"), PlannedStep("database")]
    assert pipeline.status(make_run(), steps) == [steps[0].resource, steps[1].resource]


def test_redeploy_names_the_new_revision_and_reports_the_service_step(
    mocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, events = make_run(), Recorder()

    def rollout(self: ServiceStep, redeployed: Run) -> str:
        assert redeployed is run
        return f"arn:aws:ecs:{REGION}:123456789012:task-definition/nnote-staging:7"

    monkeypatch.setattr(ServiceStep, "redeploy", rollout)
    hold_lock(run.aws, "run-0", time.time() - 1)
    assert pipeline.redeploy(run, events) == "7"
    assert events.seen == [
        ("note", "lock", events.notes[0]),
        ("started", "service"),
        ("finished", "service"),
    ]
    assert events.notes[0].startswith("took over the lock of run run-0 (ann@laptop)")
    assert Lock(run.aws, run.owner).holder() is None


COMMANDS = ["up", "down", "redeploy"]


def run_command(name: str, run: Run, events: Recorder) -> Any:
    """up or down on one fake step, or redeploy (whose rollout the caller fakes)."""
    if name == "up":
        return pipeline.up(run, events, steps=[PlannedStep("network")])
    if name == "down":
        return pipeline.down(run, events, steps=[PlannedStep("network")])
    return pipeline.redeploy(run, events)


@pytest.fixture
def rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    arn = f"arn:aws:ecs:{REGION}:123456789012:task-definition/nnote-staging:8"
    monkeypatch.setattr(ServiceStep, "redeploy", lambda self, run: arn)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_locked_environment_is_refused_at_once(mocked: None, command: str) -> None:
    """The CLI waits only when asked to (--lock-wait)."""
    run = make_run()
    holder = Lock(Aws(region=REGION), Owner("nnote", "staging", "run-0"), lease=30)
    holder.acquire()
    with pytest.raises(LockedError, match="locked by run run-0"):
        run_command(command, run, Recorder())
    assert run.aws.log.calls["ssm:PutParameter"] == 1, "one try, no wait"
    holder.release()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_dead_runs_lock_is_taken_over_and_said(mocked: None, rollout: None, command: str) -> None:
    run, events = make_run(), Recorder()
    hold_lock(run.aws, "run-0", time.time() - 1)
    run_command(command, run, events)
    assert events.notes == [
        "took over the lock of run run-0 (ann@laptop), whose lease had expired: that run died; "
        "this one resumes its work"
    ]
    assert Lock(run.aws, run.owner).holder() is None


def release_fails(self: Lock) -> None:
    """Lock.release whose delete fails: renewals stop, the parameter stays until its lease ends."""
    self._stop.set()
    raise AwsError("ssm:delete_parameter failed: InternalError", "", code="InternalError")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_lock_that_cannot_be_released_does_not_fail_the_work(
    mocked: None, rollout: None, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.setattr(Lock, "release", release_fails)
    events = Recorder()
    run_command(command, make_run(), events)
    assert events.notes == [
        "warning: could not release the lock (ssm:delete_parameter failed: InternalError); "
        "it lapses by itself within 120s"
    ]


def test_failed_redeploy_reports_the_failure_and_releases_the_lock(
    mocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rollout_fails(self: ServiceStep, run: Run) -> str:
        time.sleep(0.01)
        raise AWS_FAILURE

    monkeypatch.setattr(ServiceStep, "redeploy", rollout_fails)
    run, events = make_run(), Recorder()
    with pytest.raises(AwsError):
        pipeline.redeploy(run, events)
    assert events.seen == [("started", "service"), ("failed", "service", AWS_FAILURE.message)]
    assert Lock(run.aws, run.owner).holder() is None


def test_up_deploys_every_family_in_dependency_order() -> None:
    steps = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    names = [s.name for s in steps]
    assert names == [
        "network",
        "database",
        "registry",
        "image",
        "runtime",
        "certificate",
        "loadbalancer",
        "endpoint",
        "service",
    ]
    assert all(names.index(d) < names.index(s.name) for s in steps for d in s.depends_on)
    image = next(s for s in steps if isinstance(s, ImageStep))
    assert image.source == ROOT and image.prebuilt == PREBUILT_IMAGE
    assert [s.name for s in pipeline.owned_steps()] == [n for n in names if n != "image"]
