"""What real AWS does that moto does not, each once a defect of the deployer: names still being
released after a `down`, states that refuse a delete, pages of results, an autoscaler that
owns the task count, a lock release that fails after the work is done, zones Fargate skips.

The realism layer (tests/support/realism.py) brings most of these behaviours back; the rest
are injected here with botocore hooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from deployer import aws as aws_module
from deployer import inventory, pipeline
from deployer.config import load
from deployer.errors import DeployError
from deployer.steps.network import NetworkStep
from tests.deployer.conftest import DEPLOYER_CREDENTIALS, PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.faults import FailNth, snapshot
from tests.deployer.sweep import QuietEvents

STEPS = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)


class Notes(QuietEvents):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def step_note(self, step: str, message: str) -> None:
        self.notes.append(message)


def configured(tmp_path: Path, env: str = "staging", **replacements: str) -> Any:
    """A run whose deploy.toml has `old` replaced by `new` for each keyword (old=new)."""
    text = (ROOT / "deploy.toml").read_text()
    for old, new in replacements.values():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "deploy.toml").write_text(text)
    run = make_run(env=env)
    run.config = load(tmp_path / "deploy.toml", env)
    return run


def test_up_right_after_down_waits_for_names_aws_still_holds(aws_env: dict[str, str]) -> None:
    """After `down` the SECRET_KEY secret is "scheduled for deletion" for a while, even when
    forced, and the service drains before its name is free: the next `up` waits for both
    names instead of failing."""
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    pipeline.down(make_run(), QuietEvents())
    run = make_run()
    run.progress = notes = Notes()
    pipeline.up(run, QuietEvents(), steps=STEPS)
    assert pipeline.plan(make_run(), STEPS) == []
    assert any("secret nnote/staging/secret-key is still being deleted" in n for n in notes.notes)
    assert any("ECS not ready for the service yet" in n for n in notes.notes), notes.notes


def test_up_after_an_interrupted_down_waits_for_the_database_to_go(
    aws_env: dict[str, str],
) -> None:
    """A `down` stopped while RDS deletes the instance leaves it `deleting`: the next `up`
    waits until the name is free, then creates the database again."""
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    lost_while_waiting = FailNth("DescribeDBInstances", 2)  # the first look after the delete
    with pytest.raises(DeployError):
        pipeline.down(make_run(hooks=lost_while_waiting.hooks()), QuietEvents())
    run = make_run()
    run.progress = notes = Notes()
    assert "after the one being deleted is gone" in str(pipeline.plan(make_run(), STEPS))
    pipeline.up(run, QuietEvents(), steps=STEPS)
    assert pipeline.plan(make_run(), STEPS) == []
    assert any("deleting DB instance nnote-staging" in n for n in notes.notes), notes.notes


def test_down_while_the_database_is_still_creating_waits_then_keeps_the_snapshot(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    """RDS refuses a final snapshot of a `creating` instance: `down` waits until it can,
    instead of taking the refusal for a deletion and polling for an hour."""
    stop_waiting = FailNth("DescribeDBInstances", 3)  # the first wait after CreateDBInstance
    with pytest.raises(pipeline.UpFailed):
        pipeline.up(make_run(hooks=stop_waiting.hooks()), QuietEvents(), rollback=False)
    run = configured(tmp_path, snapshot=("final_snapshot = false", "final_snapshot = true"))
    run.progress = notes = Notes()
    result = pipeline.down(run, QuietEvents())
    assert any("is creating; deleting it once RDS allows" in n for n in notes.notes), notes.notes
    assert [r.type for r in result.kept] == ["rds:snapshot"]
    assert result.leftovers == []


def test_down_refuses_a_failed_database_it_cannot_snapshot_before_deleting_anything(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    before = snapshot()

    def failed(parsed: dict[str, Any], **_: Any) -> None:
        for instance in parsed.get("DBInstances", []):
            instance["DBInstanceStatus"] = "failed"

    run = configured(tmp_path, snapshot=("final_snapshot = false", "final_snapshot = true"))
    run.aws.hooks.append(("after-call.rds.DescribeDBInstances", failed))
    with pytest.raises(pipeline.DownRefused) as refused:
        pipeline.down(run, QuietEvents())
    assert "nothing was deleted: DB instance nnote-staging is failed" in refused.value.message
    assert "db.final_snapshot = false" in refused.value.hint
    assert snapshot() == before


def test_down_with_a_final_snapshot_keeps_it_and_finds_no_leak(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """CopyTagsToSnapshot tags the final snapshot as ours: kept as asked, not a leak."""
    config = tmp_path / "deploy.toml"
    config.write_text(
        (ROOT / "deploy.toml")
        .read_text()
        .replace("final_snapshot = false", "final_snapshot = true")
    )
    assert cli("up", "--yes", "--image", PREBUILT_IMAGE, config=config).code == 0
    down = cli("down", "--yes", config=config)
    assert down.code == 0, down.text
    assert "kept (db.final_snapshot) (1):" in down.out and "rds:snapshot" in down.out
    assert "leak audit: nothing left" in down.text


def test_down_deregisters_every_revision_past_the_first_page(aws_env: dict[str, str]) -> None:
    """ListTaskDefinitions answers 100 ARNs a page: after 100 deploys, all must go."""
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    ecs = boto3.client("ecs", region_name=REGION)
    current = ecs.describe_task_definition(taskDefinition="nnote-staging")["taskDefinition"]
    fields = ("family", "containerDefinitions", "cpu", "memory", "networkMode")
    for _ in range(105):
        ecs.register_task_definition(
            **{k: current[k] for k in fields}, requiresCompatibilities=["FARGATE"]
        )
    pipeline.down(make_run(), QuietEvents())
    left = ecs.list_task_definitions(familyPrefix="nnote-staging", status="ACTIVE")
    assert left["taskDefinitionArns"] == []


def test_autoscaler_owns_the_task_count_of_the_full_prod_config(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy.toml's prod as committed (two tasks, autoscaling 2-6): deployed, scaled out by
    the autoscaler, then a no-change `up` leaves the count alone and changes nothing."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # the moto server runs in this process
    pipeline.up(make_run(env="prod"), QuietEvents(), steps=STEPS)
    ecs = boto3.client("ecs", region_name=REGION)
    service = ecs.describe_services(cluster="nnote-prod", services=["nnote-prod"])["services"][0]
    assert service["desiredCount"] == 2
    ecs.update_service(cluster="nnote-prod", service="nnote-prod", desiredCount=5)  # scaled out
    assert pipeline.plan(make_run(env="prod"), STEPS) == []
    run = make_run(env="prod")
    pipeline.up(run, QuietEvents(), steps=STEPS)
    assert run.aws.log.mutating == 0
    service = ecs.describe_services(cluster="nnote-prod", services=["nnote-prod"])["services"][0]
    assert service["desiredCount"] == 5


def test_autoscaling_removed_from_the_settings_is_removed(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    def with_autoscaling() -> Any:
        return configured(
            tmp_path,
            scaling=("[env.staging]", "[env.staging]\nservice.autoscaling = { max_tasks = 3 }"),
        )

    pipeline.up(with_autoscaling(), QuietEvents(), steps=STEPS)
    changes = pipeline.plan(make_run(), STEPS)
    assert [(c.action, c.type) for c in changes] == [("delete", "autoscaling")]
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    assert scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []


def test_a_lock_release_that_fails_does_not_fail_a_finished_up(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything deployed; only deleting the lock parameter failed: the deploy succeeded,
    and the lock lapses by itself within its lease."""

    class LastReleaseFails(aws_module.Aws):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            fault = FailNth("DeleteParameter", 1, code="InternalServerError")
            super().__init__(*args, hooks=fault.hooks(), **kwargs)

    monkeypatch.setattr(aws_module, "Aws", LastReleaseFails)
    result = CliRunner().invoke(
        pipeline_app(),
        ["up", "--yes", "--config", str(ROOT / "deploy.toml"), "--image", PREBUILT_IMAGE],
        env={"COLUMNS": "200", **DEPLOYER_CREDENTIALS},
    )
    assert result.exit_code == 0, result.output
    assert "up: done" in result.output
    assert "warning: could not release the lock" in result.output
    assert "it lapses by itself within 120s" in result.output


def pipeline_app() -> Any:
    from deployer.cli import app

    return app


def test_leak_audit_sees_roles_listeners_repositories_and_subnet_groups(
    aws_env: dict[str, str],
) -> None:
    """Every type `status` lists is also audited: what survives a `down` is named."""
    run = make_run()
    pipeline.up(run, QuietEvents(), steps=STEPS)
    owned = {(r.type.replace("elbv2", "elasticloadbalancing"), r.id) for r in pipeline.status(run)}
    audited = {(r.type, r.id) for r in inventory.leftovers(run.aws, run.owner)}
    kinds = {kind for kind, _ in owned}
    assert {kind for kind, _ in audited} >= kinds - {
        "elasticloadbalancing:loadbalancer",  # status names these by DNS name, the audit by ARN
        "elasticloadbalancing:targetgroup",
        "elasticloadbalancing:listener",
        "ecs:service",
        "ecs:cluster",
    }
    assert {"iam:role", "elasticloadbalancing:listener", "ecr:repository", "rds:subgrp"} <= {
        kind for kind, _ in audited
    }


def test_subnets_go_to_zones_where_fargate_runs(aws_env: dict[str, str]) -> None:
    """Zone names map to different zones per account; Fargate skips apne1-az3 in Tokyo."""
    tokyo = {
        "ap-northeast-1a": "apne1-az3",
        "ap-northeast-1c": "apne1-az1",
        "ap-northeast-1d": "apne1-az2",
    }

    def this_account(parsed: dict[str, Any], **_: Any) -> None:
        parsed["AvailabilityZones"] = [
            {
                "ZoneName": name,
                "ZoneId": zone,
                "State": "available",
                "ZoneType": "availability-zone",
            }
            for name, zone in tokyo.items()
        ]

    asked: list[dict[str, Any]] = []
    run = make_run(
        hooks=[
            ("after-call.ec2.DescribeAvailabilityZones", this_account),
            ("provide-client-params.ec2.CreateSubnet", lambda params, **_: asked.append(params)),
        ],
        region="ap-northeast-1",
    )
    NetworkStep().apply(run, {})
    zones = [p.get("AvailabilityZoneId") or tokyo[p["AvailabilityZone"]] for p in asked]
    assert sorted(zones) == ["apne1-az1", "apne1-az2"]


def test_a_region_without_two_fargate_zones_is_named(aws_env: dict[str, str]) -> None:
    def one_zone(parsed: dict[str, Any], **_: Any) -> None:
        parsed["AvailabilityZones"] = parsed["AvailabilityZones"][:1]

    run = make_run(hooks=[("after-call.ec2.DescribeAvailabilityZones", one_zone)])
    with pytest.raises(DeployError, match="fewer than two available zones where Fargate runs"):
        NetworkStep().apply(run, {})


def test_task_roles_carry_the_boundary_and_older_ones_get_it(aws_env: dict[str, str]) -> None:
    """Every role `up` makes has the permissions boundary; a role made before (without it) is
    planned as a change and given it, and nothing else is granted to it first."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(  # as an older nnote-deploy made it
        RoleName="nnote-staging-task",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        Tags=make_run().owner.tags("runtime"),
    )
    changes = pipeline.plan(make_run(), STEPS)
    assert ("update", "iam:role", "nnote-staging-task") in {
        (c.action, c.type, c.name) for c in changes
    }
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    boundary = "arn:aws:iam::123456789012:policy/nnote-deploy-boundary"
    for name in ("nnote-staging-task", "nnote-staging-execution"):
        role = iam.get_role(RoleName=name)["Role"]
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary, name
    assert pipeline.plan(make_run(), STEPS) == []


def test_a_changed_cpu_target_is_planned_and_applied(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    def with_target(percent: int) -> Any:
        setting = f"service.autoscaling = {{ max_tasks = 3, cpu_target = {percent} }}"
        return configured(tmp_path, scaling=("[env.staging]", f"[env.staging]\n{setting}"))

    pipeline.up(with_target(60), QuietEvents(), steps=STEPS)
    changes = pipeline.plan(with_target(75), STEPS)
    assert [(c.type, c.detail) for c in changes] == [("autoscaling", "1-3 tasks, CPU 75%")]
    pipeline.up(with_target(75), QuietEvents(), steps=STEPS)
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    policy = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"][0]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 75.0
    assert pipeline.plan(with_target(75), STEPS) == []
