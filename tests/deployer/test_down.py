"""down: the real-AWS behaviours moto does not model, injected; final snapshots; protection."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from deployer import pipeline
from deployer.config import load
from deployer.errors import DeployError
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.faults import FailNth, snapshot
from tests.deployer.sweep import QuietEvents


class Notes(QuietEvents):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def step_note(self, step: str, message: str) -> None:
        self.notes.append(message)


class FailFirst(FailNth):
    """Fail the first `times` calls of an operation (lingering ENIs keep a group in use)."""

    def __init__(self, operation: str, times: int, code: str, message: str = "injected") -> None:
        super().__init__(operation, 0, code, message)
        self.times = times

    def __call__(self, model, **kwargs):  # type: ignore[no-untyped-def]
        if model.name == self.operation and self.seen < self.times:
            self.nth = self.seen + 1
        return super().__call__(model, **kwargs)


def test_down_retries_dependency_violation_and_says_so(aws_env: dict[str, str]) -> None:
    pipeline.up(make_run(), QuietEvents())
    lingering = FailFirst("DeleteSecurityGroup", 2, "DependencyViolation")
    run = make_run(hooks=lingering.hooks())
    run.progress = notes = Notes()
    result = pipeline.down(run, QuietEvents())
    assert result.leftovers == []
    assert any("still in use (DependencyViolation); retrying" in n for n in notes.notes)


@pytest.mark.parametrize(
    ("operation", "code", "note"),
    [
        ("DeleteDBSubnetGroup", "InvalidDBSubnetGroupStateFault", "subnet group still in use"),
        ("DeleteCluster", "ClusterContainsServicesException", "cluster busy"),
    ],
)
def test_down_waits_for_what_aws_still_holds(
    aws_env: dict[str, str], operation: str, code: str, note: str
) -> None:
    """A subnet group in use until the instance is gone; a cluster whose deleted service
    is still draining: both retried within the budget and reported."""
    pipeline.up(make_run(), QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    held = FailFirst(operation, 2, code)
    run = make_run(hooks=held.hooks())
    run.progress = notes = Notes()
    result = pipeline.down(run, QuietEvents())
    assert result.leftovers == []
    # Two injected refusals, the realism layer's own (AWS lags the same way), then success.
    assert held.seen >= 3 and held.fired, "refused, then the retry went through"
    assert any(note in n for n in notes.notes), notes.notes


def test_down_names_the_blocking_interfaces_when_the_budget_runs_out(
    aws_env: dict[str, str],
) -> None:
    pipeline.up(make_run(), QuietEvents())
    ec2 = boto3.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:nnote:env", "Values": ["staging"]}])
    eni = ec2.create_network_interface(
        SubnetId=subnet["Subnets"][0]["SubnetId"], Description="lingering Fargate ENI"
    )["NetworkInterface"]
    stuck = FailFirst("DeleteSubnet", 10_000, "DependencyViolation")
    with pytest.raises(DeployError) as failed:
        pipeline.down(make_run(hooks=stuck.hooks()), QuietEvents())
    assert "is still in use after 5s" in failed.value.message
    assert eni["NetworkInterfaceId"] in failed.value.hint
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])


def test_down_keeps_a_final_snapshot_when_the_policy_says_so(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    text = (
        (ROOT / "deploy.toml")
        .read_text()
        .replace("final_snapshot = false", "final_snapshot = true")
    )
    (tmp_path / "deploy.toml").write_text(text)
    run = make_run(run_id="keeper")
    run.config = load(tmp_path / "deploy.toml", "staging")
    pipeline.up(run, QuietEvents())
    pipeline.down(run, QuietEvents())
    rds = boto3.client("rds", region_name=REGION)
    snapshots = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snapshots] == ["nnote-staging-final-keeper"]


def test_down_refuses_a_protected_database_before_deleting_anything(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """prod as committed (deletion protection, two tasks, autoscaling), fully deployed: a
    refused `down` must not have deleted the service, load balancer, roles or registry first."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")
    pipeline.up(
        make_run(env="prod"), QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    )
    before = snapshot()
    with pytest.raises(
        DeployError, match="nothing was deleted: DB instance nnote-prod has"
    ) as failed:
        pipeline.down(make_run(env="prod"), QuietEvents())
    assert "db.deletion_protection = false" in failed.value.hint
    assert snapshot() == before, "the whole environment is untouched"


def test_verbose_shows_the_traceback_and_request_id(cli) -> None:  # type: ignore[no-untyped-def]
    plain = cli(
        "status",
        env={
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    verbose = cli(
        "status",
        "--verbose",
        env={
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )
    assert "Traceback" not in plain.text
    assert "Traceback" in verbose.text and "deployer/aws.py" in verbose.text
    assert "error: no AWS credentials found" in verbose.text
