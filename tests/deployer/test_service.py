"""The ECS service: secrets by reference only, watched rollouts, exact rollback, redeploy, logs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from deployer import aws as aws_module
from deployer import pipeline
from deployer.cli import app
from tests.deployer.conftest import DEPLOYER_CREDENTIALS, PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.sweep import QuietEvents

IMAGE_B = PREBUILT_IMAGE.replace("0" * 64, "b" * 64)


def deploy(
    image: str = PREBUILT_IMAGE, hooks: list[Any] | None = None, timeout: float | None = None
):  # type: ignore[no-untyped-def]
    run = make_run(hooks=hooks)
    run.rollout_timeout_seconds = timeout
    return pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, image))


def service() -> dict[str, Any]:
    ecs = boto3.client("ecs", region_name=REGION)
    return dict(
        ecs.describe_services(
            cluster="nnote-staging", services=["nnote-staging"], include=["TAGS"]
        )["services"][0]
    )


def rollout_state(state: str):  # type: ignore[no-untyped-def]
    """An after-call hook making every deployment report `state` (moto never fails one)."""

    def edit(parsed: dict[str, Any], **_: Any) -> None:
        for svc in parsed.get("services", []):
            for deployment in svc.get("deployments", []):
                deployment["rolloutState"] = state
                deployment["rolloutStateReason"] = f"injected {state}"

    return [("after-call.ecs.DescribeServices", edit)]


def test_task_definition_holds_secrets_only_by_reference(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    ecs = boto3.client("ecs", region_name=REGION)
    task = ecs.describe_task_definition(taskDefinition="nnote-staging")["taskDefinition"]
    container = task["containerDefinitions"][0]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    db_secret = boto3.client("rds", region_name=REGION).describe_db_instances()["DBInstances"][0][
        "MasterUserSecret"
    ]["SecretArn"]
    password = json.loads(secrets.get_secret_value(SecretId=db_secret)["SecretString"])["password"]
    secret_key = secrets.get_secret_value(SecretId="nnote/staging/secret-key")["SecretString"]
    text = json.dumps(task)
    assert password not in text and secret_key not in text
    assert {e["name"] for e in container["environment"]} >= {"DB_HOST", "DB_PORT", "DB_NAME"}
    assert not {e["name"] for e in container["environment"]} & {
        "DB_PASSWORD",
        "SECRET_KEY",
        "DB_USERNAME",
    }
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == {
        "DB_USERNAME": f"{db_secret}:username::",
        "DB_PASSWORD": f"{db_secret}:password::",
        "SECRET_KEY": secrets.describe_secret(SecretId="nnote/staging/secret-key")["ARN"],
    }
    assert container["image"] == PREBUILT_IMAGE, "the image is referenced by digest"
    # (staging runs on Fargate Spot: a capacity provider strategy, which moto does not keep
    # on CreateService; tests/deployer/test_spot.py checks what ECS is sent)
    assert service()["desiredCount"] == 1
    everything = cli("up", "--yes").text + cli("status").text + cli("status", "--json").text
    assert password not in everything and secret_key not in everything


def test_secret_key_is_generated_once_and_kept(aws_env: dict[str, str]) -> None:
    deploy()
    secrets = boto3.client("secretsmanager", region_name=REGION)
    first = secrets.get_secret_value(SecretId="nnote/staging/secret-key")["SecretString"]
    deploy(IMAGE_B)
    assert secrets.get_secret_value(SecretId="nnote/staging/secret-key")["SecretString"] == first
    assert len(first) >= 48


def test_new_image_ships_a_new_revision_and_records_it_as_last_good(
    aws_env: dict[str, str],
) -> None:
    deploy()
    first = service()["taskDefinition"]
    deploy(IMAGE_B)
    svc = service()
    assert svc["taskDefinition"].endswith(":2") and first.endswith(":1")
    tags = {t["key"]: t["value"] for t in svc["tags"]}
    assert tags["nnote:last-good"] == svc["taskDefinition"]


def test_failed_rollout_goes_back_to_the_recorded_revision(aws_env: dict[str, str]) -> None:
    deploy()
    deploy(IMAGE_B)  # revision 2 is now the last good one
    image_c = PREBUILT_IMAGE.replace("0" * 64, "c" * 64)
    with pytest.raises(pipeline.UpFailed) as failed:
        deploy(image_c, hooks=rollout_state("FAILED"))
    assert "deploy failed; service rolled back to revision 2" in failed.value.message
    assert service()["taskDefinition"].endswith(":2")
    ecs = boto3.client("ecs", region_name=REGION)
    active = ecs.list_task_definitions(familyPrefix="nnote-staging", status="ACTIVE")[
        "taskDefinitionArns"
    ]
    assert [a.rsplit(":", 1)[1] for a in active] == ["1", "2"], (
        "good revisions are never deregistered"
    )


def test_rollout_timeout_rolls_back_the_same_way(aws_env: dict[str, str]) -> None:
    deploy()
    started = time.monotonic()
    with pytest.raises(pipeline.UpFailed) as failed:
        deploy(IMAGE_B, hooks=rollout_state("IN_PROGRESS"), timeout=0.3)
    assert "deploy failed; service rolled back to revision 1" in failed.value.message
    assert "not complete after" in failed.value.hint
    assert service()["taskDefinition"].endswith(":1")
    assert time.monotonic() - started < 60


def test_cli_reports_the_rollback_and_exits_non_zero(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy()

    class FailingRollouts(aws_module.Aws):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, hooks=rollout_state("FAILED"), **kwargs)

    monkeypatch.setattr(aws_module, "Aws", FailingRollouts)
    result = CliRunner().invoke(
        app,
        ["up", "--yes", "--config", str(ROOT / "deploy.toml"), "--image", IMAGE_B],
        env={"COLUMNS": "200", **DEPLOYER_CREDENTIALS},
    )
    assert result.exit_code == 6
    assert "deploy failed; service rolled back to revision 1" in result.output
    assert "Traceback" not in result.output


def test_redeploy_forces_a_watched_deployment(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    result = cli("redeploy")
    assert result.code == 0, result.text
    assert "redeploy: revision 1 is serving" in result.text
    assert cli("redeploy", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}).code == 1


def test_logs_prints_the_service_log_lines(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_stream(logGroupName="/nnote/nnote-staging", logStreamName="app/app/task1")
    logs.put_log_events(
        logGroupName="/nnote/nnote-staging",
        logStreamName="app/app/task1",
        logEvents=[
            {
                "timestamp": int(time.time() * 1000),
                "message": '127.0.0.1 "GET /healthz HTTP/1.1" 200',
            }
        ],
    )
    result = cli("logs", "--since", "5m")
    assert result.code == 0 and 'app/app/task1 127.0.0.1 "GET /healthz HTTP/1.1" 200' in result.text
    bad = cli("logs", "--since", "yesterday")
    assert bad.code == 3 and "--since 'yesterday' is not a duration" in bad.text


def test_target_tracking_autoscaling_when_configured(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    from deployer.config import load

    text = (
        (ROOT / "deploy.toml")
        .read_text()
        .replace(
            "[env.staging]", "[env.staging]\nservice.autoscaling = { min_tasks = 1, max_tasks = 3 }"
        )
    )
    (tmp_path / "deploy.toml").write_text(text)

    def configured_run():  # type: ignore[no-untyped-def]
        run = make_run()
        run.config = load(tmp_path / "deploy.toml", "staging")
        return run

    pipeline.up(configured_run(), QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    target = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in target] == [
        ("service/nnote-staging/nnote-staging", 1, 3)
    ]
    policy = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"][0]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 60.0
    assert pipeline.plan(configured_run(), pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)) == []
    pipeline.down(configured_run(), QuietEvents())
    assert scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []


def test_roles_not_yet_assumable_are_waited_for(aws_env: dict[str, str]) -> None:
    from tests.deployer.test_down import FailFirst

    propagating = FailFirst(
        "CreateService",
        2,
        "InvalidParameterException",
        "Unable to assume the service linked role. Please verify that it exists.",
    )
    deploy(hooks=propagating.hooks())
    # The two injected refusals, then the realism layer's own (a new role propagates), then in.
    assert propagating.seen >= 3 and service()["status"] == "ACTIVE"


def test_other_invalid_parameters_fail_at_once(aws_env: dict[str, str]) -> None:
    from tests.deployer.test_down import FailFirst

    wrong = FailFirst("CreateService", 1, "InvalidParameterException", "subnets are invalid")
    with pytest.raises(pipeline.UpFailed, match="subnets are invalid"):
        deploy(hooks=wrong.hooks())
    assert wrong.seen == 1


def test_certificate_adds_https_and_redirects_http(aws_env: dict[str, str], tmp_path: Path) -> None:
    from deployer.config import load

    acm = boto3.client("acm", region_name=REGION)
    certificate = acm.request_certificate(DomainName="nnote.example.com")["CertificateArn"]
    text = (
        (ROOT / "deploy.toml")
        .read_text()
        .replace("[env.staging]", f'[env.staging]\nservice.certificate_arn = "{certificate}"')
    )
    (tmp_path / "deploy.toml").write_text(text)
    run = make_run()
    run.config = load(tmp_path / "deploy.toml", "staging")
    result = pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    assert result.url is not None and result.url.startswith("https://")
    elb = boto3.client("elbv2", region_name=REGION)
    lb = elb.describe_load_balancers(Names=["nnote-staging"])["LoadBalancers"][0]
    listeners = {
        x["Port"]: x
        for x in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    }
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"][0]["CertificateArn"] == certificate
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    assert listeners[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
