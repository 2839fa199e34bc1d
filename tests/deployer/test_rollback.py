"""Failures of `up` beyond the sweep (tests/deployer/test_sweep.py): drift, --no-rollback,
throttling, permissions, Ctrl-C."""

from __future__ import annotations

import pytest

from deployer import inventory, pipeline
from deployer.errors import AwsError, DeployError
from tests.deployer.conftest import make_run
from tests.deployer.faults import FailNth, ThrottleFirst, bystanders, snapshot
from tests.deployer.sweep import QuietEvents


def test_failed_up_on_a_drifted_env_restores_exactly_what_was_there(
    aws_env: dict[str, str],
) -> None:
    import boto3

    pipeline.up(make_run(), QuietEvents())
    rds = boto3.client("rds")
    rds.modify_db_instance(
        DBInstanceIdentifier="nnote-staging", BackupRetentionPeriod=3, ApplyImmediately=True
    )
    ec2 = boto3.client("ec2")
    table = ec2.describe_route_tables(Filters=[{"Name": "tag:nnote:env", "Values": ["staging"]}])
    ec2.delete_route(
        RouteTableId=table["RouteTables"][0]["RouteTableId"], DestinationCidrBlock="0.0.0.0/0"
    )
    before = snapshot()
    # The route is repaired first (network), then the database change fails.
    fault = FailNth("ModifyDBInstance", 1, code="InvalidDBInstanceState")
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(hooks=fault.hooks()), QuietEvents())
    assert "rds:modify_db_instance failed: InvalidDBInstanceState" in failed.value.message
    assert snapshot() == before, "the repaired route was put back as it was: nothing half-done"


def test_no_rollback_keeps_partial_work_and_up_resumes(aws_env: dict[str, str]) -> None:
    fault = FailNth("CreateDBInstance", 1)
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(hooks=fault.hooks()), QuietEvents(), rollback=False)
    assert failed.value.rollback is None and failed.value.done
    run = make_run()
    kept = pipeline.status(run)
    assert {r.type for r in kept} >= {"ec2:vpc", "rds:subgrp"}
    assert "rds:db" not in {r.type for r in kept}
    pipeline.up(make_run(), QuietEvents())
    assert pipeline.plan(make_run()) == []


def test_throttling_is_retried_by_botocore(aws_env: dict[str, str]) -> None:
    throttle = ThrottleFirst("CreateVpc", 3)
    run = make_run(hooks=throttle.hooks(), max_attempts=None)  # the CLI's default retries
    pipeline.up(run, QuietEvents())
    assert throttle.sent == 4, "three throttled sends, then a retry went through"
    assert pipeline.plan(make_run()) == []


def test_throttling_beyond_the_retries_is_a_clear_error(aws_env: dict[str, str]) -> None:
    throttle = ThrottleFirst("CreateVpc", 5)
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(make_run(hooks=throttle.hooks()), QuietEvents())
    assert isinstance(failed.value.cause, AwsError)
    assert failed.value.cause.code == "RequestLimitExceeded"
    assert "throttling" in failed.value.hint


def test_access_denied_names_the_action(aws_env: dict[str, str]) -> None:
    fault = FailNth("CreateRepository", 1, code="AccessDeniedException")
    with pytest.raises(DeployError) as failed:
        pipeline.up(make_run(hooks=fault.hooks()), QuietEvents())
    assert "lack permission for ecr:create_repository" in failed.value.hint


def test_ctrl_c_during_up_rolls_back_what_the_run_made(aws_env: dict[str, str]) -> None:
    import os
    import signal

    def press_ctrl_c(model: object, **_: object) -> None:
        if getattr(model, "name", "") == "CreateDBInstance":
            os.kill(os.getpid(), signal.SIGINT)  # lands in the main thread, as a real Ctrl-C

    bystanders()
    before = snapshot()
    run = make_run(hooks=[("after-call.rds.CreateDBInstance", press_ctrl_c)])
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(run, QuietEvents())
    assert "interrupted" in failed.value.message
    assert failed.value.rollback is not None and not failed.value.rollback.failed
    assert "created DB instance nnote-staging" in failed.value.rollback.undone
    assert snapshot() == before
    assert inventory.leftovers(run.aws, run.owner) == []


LOST = {"CreateVpc": "ec2:vpc", "CreateDBInstance": "rds:db", "CreateRepository": "ecr:repository"}


@pytest.mark.parametrize("operation", sorted(LOST))
def test_a_create_whose_answer_was_lost_is_reported_not_hidden(
    aws_env: dict[str, str], operation: str
) -> None:
    """AWS applied the create, then the connection dropped before the answer: the journal
    never knew of it, so the rollback's audit by run id names it, and `down` removes it."""
    from botocore.exceptions import ConnectionClosedError

    def lose_the_answer(model: object, **_: object) -> None:
        raise ConnectionClosedError(endpoint_url="http://127.0.0.1/lost")

    bystanders()
    before = snapshot()
    run = make_run(hooks=[(f"after-call.*.{operation}", lose_the_answer)], run_id="lossy")
    with pytest.raises(pipeline.UpFailed) as failed:
        pipeline.up(run, QuietEvents())
    assert failed.value.rollback is not None
    stray = [entry for entry, why in failed.value.rollback.failed if "answer was lost" in why]
    assert len(stray) == 1, failed.value.rollback.failed
    assert stray[0].startswith(LOST[operation]), stray
    # What the lost resource holds (a database holds its subnet group, group and subnets)
    # cannot be undone either, and says so.
    assert "could not undo" in failed.value.message
    assert "nnote-deploy down" in failed.value.hint
    pipeline.down(make_run(run_id="cleanup"), QuietEvents())
    assert snapshot() == before
