"""The installed nnote-deploy against a moto server, as a user runs it."""

from __future__ import annotations

import functools
import json
import re
import time
from typing import Any

import boto3
import jsonschema

from deployer.inventory import Owner
from tests.deployer.conftest import REGION, ROOT
from tests.deployer.faults import bystanders, snapshot
from tests.support.realism import Realism

STATUS_SCHEMA = ROOT / "docs" / "status-schema.json"


def calls(text: str) -> tuple[int, int]:
    match = re.search(r"AWS API calls: (\d+) \((\d+) mutating\)", text)
    assert match, text
    return int(match.group(1)), int(match.group(2))


def listed_under(heading: str, text: str) -> list[str]:
    """The resource rows a plain (non-TTY) run prints under a heading such as "deleted"."""
    match = re.search(rf"{re.escape(heading)} \((\d+)\):\n((?:.*\n)*)", text)
    assert match, text
    rows = match.group(2).splitlines()[: int(match.group(1))]
    # Each row: time, component, type (service:kind), id, state.
    assert all(re.search(r"\s[a-z0-9-]+:[a-z-]+\s", row) for row in rows), rows
    return rows


def status_document(cli) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """`status --json`, checked against the documented schema (docs/status-schema.json)."""
    result = cli("status", "--json")
    assert result.code == 0, result.text
    document: dict[str, Any] = json.loads(result.out)
    schema = json.loads(STATUS_SCHEMA.read_text())
    jsonschema.validate(document, schema)
    # The schema lets readers expect more fields later; the document has exactly those listed.
    assert set(document) == set(schema["properties"])
    assert set(document["service"]) == set(schema["properties"]["service"]["properties"])
    items = schema["properties"]["resources"]["items"]["properties"]
    assert all(set(r) == set(items) for r in document["resources"])
    assert document["schema"] == 2 and document["env"] == "staging"
    return document


def owned(cli) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return list(status_document(cli)["resources"])


def test_up_converges_then_changes_nothing(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("plan", "--detailed-exitcode").code == 2
    first = cli("up", "--yes")
    assert first.code == 0, first.text
    assert "account 123456789012" in first.text and "up: done" in first.text
    types = sorted(r["type"] for r in owned(cli))
    assert types == sorted(
        [
            "ec2:vpc",
            "ec2:internet-gateway",
            "ec2:subnet",
            "ec2:subnet",
            "ec2:route-table",
            "ec2:security-group",
            "ec2:security-group",
            "ec2:security-group",
            "rds:subgrp",
            "rds:db",
            "ecr:repository",
            "ecs:cluster",
            "logs:log-group",
            "iam:role",
            "iam:role",
            "secretsmanager:secret",
            "elbv2:loadbalancer",
            "elbv2:targetgroup",
            "elbv2:listener",
            "elbv2:listener-rule",
            "cloudfront:distribution",
            "ecs:service",
            "ecs:task-definition",
        ]
    )
    document = status_document(cli)
    service = next(r for r in document["resources"] if r["type"] == "ecs:service")
    assert service["state"] == "ready" and service["detail"] == "1/1 running, rollout COMPLETED"
    assert document["health"] == "healthy" and document["url"].startswith("https://")
    running = document["service"]
    assert (running["desired"], running["running"], running["rollout"]) == (1, 1, "COMPLETED")
    assert running["image"].endswith(f"@{running['image_digest']}")
    assert all(r["state"] == "ready" for r in document["resources"]), document

    second = cli("up", "--yes")
    assert second.code == 0 and "no changes" in second.text
    total, mutating = calls(second.text)
    # 34: every read a converged environment needs, the autoscaling target and the rollout
    # alarms among them (a setting removed from deploy.toml must be undone), the target
    # group's deregistration delay, and the front door's six (prefix list, origin rule,
    # distribution and its tags, certificates, load balancer's name).
    assert mutating == 0 and total <= 34
    assert cli("plan", "--detailed-exitcode").code == 0
    status_calls, status_mutating = calls(cli("status").text)
    assert status_calls <= 34 and status_mutating == 0


def test_database_is_private_encrypted_and_only_reachable_from_the_app(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    rds = boto3.client("rds", region_name=REGION)
    instance = rds.describe_db_instances(DBInstanceIdentifier="nnote-staging")["DBInstances"][0]
    assert instance["PubliclyAccessible"] is False and instance["StorageEncrypted"] is True
    assert "MasterUserSecret" in instance, "the password lives in Secrets Manager"
    ec2 = boto3.client("ec2", region_name=REGION)
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups()["SecurityGroups"]}
    db_rules = groups["nnote-staging-db"]["IpPermissions"]
    assert [
        (r["FromPort"], r["IpRanges"], [p["GroupId"] for p in r["UserIdGroupPairs"]])
        for r in db_rules
    ] == [(3306, [], [groups["nnote-staging-app"]["GroupId"]])]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:nnote:env", "Values": ["staging"]}])["Vpcs"][0]
    attribute = ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsHostnames")
    assert attribute["EnableDnsHostnames"]["Value"] is True
    tags = {t["Key"]: t["Value"] for t in vpc["Tags"]}
    assert tags["nnote:app"] == "nnote" and tags["nnote:managed-by"] == "nnote-deploy"
    assert tags["nnote:component"] == "network" and tags["nnote:run"]


def test_drift_is_planned_and_repaired(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    ec2 = boto3.client("ec2", region_name=REGION)
    rds = boto3.client("rds", region_name=REGION)
    table = ec2.describe_route_tables(Filters=[{"Name": "tag:nnote:env", "Values": ["staging"]}])
    table_id = table["RouteTables"][0]["RouteTableId"]
    ec2.delete_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0")
    db_group = ec2.describe_security_groups(GroupNames=["nnote-staging-db"])["SecurityGroups"][0]
    ec2.authorize_security_group_ingress(
        GroupId=db_group["GroupId"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 3306,
                "ToPort": 3306,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    rds.modify_db_instance(
        DBInstanceIdentifier="nnote-staging", BackupRetentionPeriod=5, ApplyImmediately=True
    )

    plan = cli("plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "restore default route" in plan.text
    assert "revoke tcp/3306 from 0.0.0.0/0" in plan.text
    assert "BackupRetentionPeriod 5 -> 1" in plan.text  # staging keeps a day

    assert cli("up", "--yes").code == 0
    assert cli("plan", "--detailed-exitcode").code == 0
    routes = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]["Routes"]
    assert any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in routes)


def test_down_leaves_nothing_and_spares_others(cli, realism: Realism) -> None:  # type: ignore[no-untyped-def]
    """Other teams' things are not even read: the deploy role may not (docs/iam-policy.json)."""
    realism.state["quotas"] = {("vpc", "L-F678F1CE"): 10.0}  # an account with many VPCs
    bystanders()
    others = snapshot()
    ec2 = boto3.client("ec2", region_name=REGION)
    other_env = ec2.create_vpc(
        CidrBlock="10.9.0.0/16",
        TagSpecifications=Owner("nnote", "prod", "x").tag_specifications("vpc", "network", "other"),
    )["Vpc"]["VpcId"]
    untagged = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    assert cli("up", "--yes").code == 0
    vpc = next(r["id"] for r in owned(cli) if r["type"] == "ec2:vpc")

    refused = cli("down")
    assert refused.code == 1 and "not confirmed" in refused.text

    down = cli("down", "--yes")
    assert down.code == 0, down.text
    assert "leak audit: nothing left" in down.text
    # A CI log says what the rows are: these were deleted, whatever state they were last in.
    assert any(vpc in row for row in listed_under("deleted", down.out))
    assert owned(cli) == []
    remaining = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    assert {other_env, untagged} <= remaining
    ec2.delete_vpc(VpcId=other_env)
    ec2.delete_vpc(VpcId=untagged)
    assert snapshot() == others


def plant_strays() -> dict[str, str]:
    """One resource of each kind, tagged as this environment's but unknown to its steps (left
    by hand, or by a run whose answer was lost): type -> the id the audit must name."""
    tags = Owner("nnote", "staging", "x").tags("extra")
    pairs = {t["Key"]: t["Value"] for t in tags}
    client = functools.partial(boto3.client, region_name=REGION)
    vpc = client("ec2").create_vpc(
        CidrBlock="10.50.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}]
    )["Vpc"]["VpcId"]
    group = client("ec2").create_security_group(
        GroupName="stray",
        Description="left by hand",
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
    )["GroupId"]
    subnet = client("ec2").create_subnet(
        VpcId=vpc,
        CidrBlock="10.50.1.0/24",
        TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
    )["Subnet"]["SubnetId"]
    client("rds").create_db_subnet_group(
        DBSubnetGroupName="nnote-staging-stray",
        DBSubnetGroupDescription="stray",
        SubnetIds=[subnet],
        Tags=tags,
    )
    client("ecr").create_repository(repositoryName="nnote-staging-stray", tags=tags)
    client("logs").create_log_group(logGroupName="/nnote/stray", tags=pairs)
    client("secretsmanager").create_secret(Name="nnote/staging/stray", SecretString="x", Tags=tags)
    client("iam").create_role(
        RoleName="nnote-staging-stray", AssumeRolePolicyDocument="{}", Tags=tags
    )
    target_group = client("elbv2").create_target_group(
        Name="nnote-staging-stray", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip", Tags=tags
    )["TargetGroups"][0]["TargetGroupArn"]
    return {
        "ec2:vpc": vpc,
        "ec2:security-group": group,
        "ec2:subnet": subnet,
        "rds:subgrp": "nnote-staging-stray",
        "ecr:repository": "nnote-staging-stray",
        "logs:log-group": "/nnote/stray",
        "secretsmanager:secret": "nnote/staging/stray",
        "iam:role": "nnote-staging-stray",
        "elasticloadbalancing:targetgroup": target_group.split(":targetgroup/")[1],
    }


def test_leak_audit_names_every_kind_that_survives(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    strays = plant_strays()
    down = cli("down", "--yes")
    assert down.code == 5, down.text
    leftovers = listed_under("LEAK AUDIT: still tagged and existing", down.out)
    for kind, ident in strays.items():
        assert any(kind in row and ident in row for row in leftovers), (kind, ident, leftovers)
    assert len(leftovers) == len(strays) and "left behind" in down.text


def hold_lock(run: str, expires: float) -> None:
    """The lock as another run of nnote-deploy holds it (tagged as it tags it)."""
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/nnote-deploy/nnote/staging/lock",
        Type="String",
        Tags=Owner("nnote", "staging", run).tags("lock"),
        Value=json.dumps(
            {"run": run, "owner": "ann@laptop", "since": "2026-11-24T07:00:00Z", "expires": expires}
        ),
    )


def test_lock_held_by_another_run_stops_up(cli) -> None:  # type: ignore[no-untyped-def]
    hold_lock("run-42", time.time() + 600)
    locked = cli("up", "--yes")
    assert locked.code == 4
    assert "locked by run run-42 (ann@laptop) since 2026-11-24T07:00:00Z" in locked.text
    assert "--lock-wait" in locked.text and "nnote-deploy unlock" in locked.text
    assert owned(cli) == [], "nothing was created"
    assert "broke the lock of run run-42" in cli("unlock").text
    assert cli("up", "--yes").code == 0


def test_lock_of_a_dead_run_is_taken_over_by_the_next(cli) -> None:  # type: ignore[no-untyped-def]
    hold_lock("run-43", time.time() - 1)  # its lease ran out: nobody renewed it
    result = cli("up", "--yes")
    assert result.code == 0, result.text
    assert "took over the lock of run run-43 (ann@laptop)" in result.text


def test_missing_credentials_is_one_clear_line(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "status",
        env={
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    assert result.code == 1
    assert "error: no AWS credentials found" in result.text
    assert "hint: set AWS_PROFILE" in result.text
    assert "Traceback" not in result.text
