"""Rollouts against the emulator with what moto never does injected on the wire's answers:
tasks that go through provisioning, pull and start with AWS's timestamps, targets turning
healthy, tasks that stop with reasons and exit codes and log lines, FAILED deployments and
ECS's own rollback. What is checked is what a user sees: the timeline, the explanation of
each failure with its log tail, the fail-fast judgement, and a non-zero exit on a rollback."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from deployer import aws as aws_module
from deployer import pipeline
from deployer.cli import app
from deployer.rollout import failures
from tests.deployer.conftest import DEPLOYER_CREDENTIALS, PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.sweep import QuietEvents
from tests.support.realism import write_task_log

IMAGE_B = PREBUILT_IMAGE.replace("0" * 64, "b" * 64)
IMAGE_C = PREBUILT_IMAGE.replace("0" * 64, "c" * 64)
# When the injected deployment was created: set by each scenario as it starts, so that AWS's
# timestamps fall after the register call, as they do.
T0 = datetime.now(UTC)
NEW_IP = "10.40.0.99"
OLD_IP = "10.40.1.7"
TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/nnote-staging/{}"
LOG_GROUP = "/nnote/nnote-staging"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def start_clock() -> None:
    global T0
    T0 = datetime.now(UTC)


class Scenario:
    """Answers moto cannot give, edited into its real answers (the calls still go over the
    wire, through the realism layer and the IAM policy check): the new deployment's state by
    poll, its tasks (running and stopped) and the target group's health."""

    def __init__(
        self,
        deployment: Callable[[int, dict[str, Any]], None],
        running: list[dict[str, Any]] | None = None,
        stopped: list[dict[str, Any]] | None = None,
        targets: dict[str, str] | None = None,
    ) -> None:
        self.deployment = deployment
        self.running = running or []
        self.stopped = stopped or []
        self.targets = targets or {}
        self.polls = 0
        self.listing = "RUNNING"
        self.asked: list[str] = []
        self.deployment_id = ""

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        return [
            ("after-call.ecs.DescribeServices", self._services),
            ("before-call.ecs.ListTasks", self._remember),
            ("after-call.ecs.ListTasks", self._list),
            ("before-call.ecs.DescribeTasks", self._remember_tasks),
            ("after-call.ecs.DescribeTasks", self._describe),
            ("after-call.elastic-load-balancing-v2.DescribeTargetHealth", self._health),
        ]

    def _services(self, parsed: dict[str, Any], **_: Any) -> None:
        for service in parsed.get("services", []):
            new = [d for d in service.get("deployments", []) if d["status"] == "PRIMARY"]
            if new and not service["taskDefinition"].endswith(":1"):
                self.polls += 1
                # moto keeps the first revision on its one deployment; ECS names the new one.
                new[0].update(createdAt=T0, taskDefinition=service["taskDefinition"])
                self.deployment_id = new[0]["id"]
                self.deployment(self.polls, service)

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self.listing = json.loads(params["body"]).get("desiredStatus", "RUNNING")

    def _list(self, parsed: dict[str, Any], **_: Any) -> None:
        tasks = self.running if self.listing == "RUNNING" else self.stopped
        parsed["taskArns"] = [t["taskArn"] for t in tasks]

    def _remember_tasks(self, params: dict[str, Any], **_: Any) -> None:
        self.asked = json.loads(params["body"])["tasks"]

    def _describe(self, parsed: dict[str, Any], **_: Any) -> None:
        # Started by the deployment being watched, as ECS sets startedBy for a service's tasks.
        tasks = [
            {"startedBy": self.deployment_id, **task}
            for task in self.running + self.stopped
            if task["taskArn"] in self.asked
        ]
        injected = {task["taskArn"] for task in tasks}
        # Tasks the scenario does not script (a release's migration task) stay as they were.
        kept = [t for t in parsed.get("tasks", []) if t["taskArn"] not in injected]
        parsed["tasks"], parsed["failures"] = tasks + kept, []

    def _health(self, parsed: dict[str, Any], **_: Any) -> None:
        parsed["TargetHealthDescriptions"] = [
            {"Target": {"Id": ip, "Port": 5000}, "TargetHealth": {"State": state}}
            for ip, state in self.targets.items()
        ]


def new_deployment(service: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in service["deployments"] if d["status"] == "PRIMARY")


def running_task(name: str = "good1") -> dict[str, Any]:
    return {
        "taskArn": TASK_ARN.format(name),
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/nnote-staging:2",
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "createdAt": at(1),
        "pullStartedAt": at(12),
        "pullStoppedAt": at(15.5),
        "startedAt": at(18),
        "attachments": [{"details": [{"name": "privateIPv4Address", "value": NEW_IP}]}],
        "containers": [{"name": "app", "lastStatus": "RUNNING"}],
    }


def stopped_task(name: str, reason: str, exit_code: int | None, container_reason: str = ""):  # type: ignore[no-untyped-def]
    return {
        "taskArn": TASK_ARN.format(name),
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/nnote-staging:2",
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited" if exit_code is not None else "TaskFailedToStart",
        "stoppedReason": reason,
        "containers": [
            {
                "name": "app",
                "lastStatus": "STOPPED",
                "exitCode": exit_code,
                "reason": container_reason,
            }
        ],
    }


def write_log(task: str, lines: list[str]) -> None:
    write_task_log(boto3.client("logs", region_name=REGION), LOG_GROUP, task, lines)


def deploy(image: str, scenario: Scenario | None = None, timeout: float | None = None):  # type: ignore[no-untyped-def]
    run = make_run(hooks=scenario.hooks() if scenario else None)
    run.rollout_timeout_seconds = timeout
    pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, image))
    return run


def serving() -> str:
    ecs = boto3.client("ecs", region_name=REGION)
    svc = ecs.describe_services(cluster="nnote-staging", services=["nnote-staging"])["services"][0]
    return str(svc["taskDefinition"]).rsplit(":", 1)[-1]


# -- the timeline ---------------------------------------------------------------------------


def healthy_rollout() -> Scenario:
    """Provisioned at 12 s, pulled at 15.5 s, started at 18 s; the target turns healthy on the
    3rd poll, the old one drains on the 4th; ECS completes the deployment at 31 s."""

    def state(poll: int, service: dict[str, Any]) -> None:
        mine = new_deployment(service)
        mine.update(desiredCount=1, runningCount=1, pendingCount=0, failedTasks=0)
        mine["rolloutState"] = "COMPLETED" if poll >= 5 else "IN_PROGRESS"
        mine["updatedAt"] = at(31)
        scenario.targets = {NEW_IP: "healthy" if poll >= 3 else "initial"}
        scenario.targets[OLD_IP] = "healthy" if poll < 4 else "draining"

    start_clock()
    scenario = Scenario(state, running=[running_task()])
    return scenario


def test_a_rollout_prints_its_phases_from_aws_timestamps(aws_env: dict[str, str]) -> None:
    deploy(PREBUILT_IMAGE)
    run = deploy(IMAGE_B, healthy_rollout())
    phases = {p.name: p for p in run.timeline.phases()}
    # A prebuilt image's schema is unknown: each new revision migrates first.
    assert [name for name in phases] == [
        "register",
        "migrate",
        "provisioning",
        "pull",
        "start",
        "healthy",
        "traffic",
        "drained",
    ]
    # AWS's own timestamps, not the poll times: provisioning from the deployment's creation
    # to the task's pullStartedAt, the pull, the start.
    assert phases["provisioning"].seconds == pytest.approx(12)
    assert phases["pull"].seconds == pytest.approx(3.5)
    assert phases["start"].seconds == pytest.approx(2.5)
    assert phases["healthy"].ended <= phases["traffic"].ended
    assert run.rollout.completed and run.rollout.failures == []


def test_the_timeline_reaches_the_terminal_json_and_the_step_summary(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deploy(PREBUILT_IMAGE)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = invoke_with(
        monkeypatch, healthy_rollout(), "up", "--yes", "--image", IMAGE_B, "--json"
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outcome"] == "completed" and document["revision"] == 2
    phases = {p["phase"]: p["seconds"] for p in document["timeline"]}
    assert list(phases) == [
        "register", "migrate", "provisioning", "pull", "start", "healthy", "traffic", "drained"
    ]  # fmt: skip
    assert phases["pull"] == 3.5
    # Live: each phase as it ends; then the table.
    assert "service: pull done in 3.5s" in result.stderr
    assert "timeline:" in result.stderr
    assert re.search(r"provisioning +12\.0s +done at \+", result.stderr)
    table = summary.read_text()
    assert "**Rollout timeline**" in table and "| pull | 3.5 |" in table


def test_tasks_of_earlier_deployments_are_not_this_rollouts_failures(
    aws_env: dict[str, str],
) -> None:
    """The service's stopped tasks include the last deployment's (ListTasks lists a service's
    tasks); only those started by the deployment being watched are its failures."""
    deploy(PREBUILT_IMAGE)
    scenario = healthy_rollout()
    scenario.stopped = [
        {
            **stopped_task(f"old{i}", "Essential container in task exited", 1),
            "startedBy": "ecs-svc/7",
        }
        for i in range(4)
    ]
    run = deploy(IMAGE_B, scenario, timeout=600)
    assert run.rollout.completed and run.rollout.failures == []


def test_a_completed_rollout_is_a_release_and_rollback_goes_back_to_one(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    deploy(IMAGE_B)
    listed = cli("releases", "--json")
    assert listed.code == 0, listed.text
    found = json.loads(listed.out)["releases"]
    assert [(r["revision"], r["serving"]) for r in found] == [(2, True), (1, False)]
    assert found[0]["image"] == "sha256:" + "b" * 64
    assert found[0]["released_by"] and found[0]["released_at"].startswith("20")
    plain = cli("releases")
    assert plain.out.splitlines()[0].startswith("* 2\t")

    back = cli("rollback")
    assert back.code == 0, back.text
    assert "rollback: revision 1 is serving" in back.err
    assert serving() == "1"
    again = cli("rollback", "--to", "7")
    assert again.code == 1
    assert "revision 7 is not a recorded release" in again.err
    assert "choose one of: 2, 1" in again.err
    to_two = cli("rollback", "--to", "2", "--json")
    assert to_two.code == 0 and json.loads(to_two.out)["outcome"] == "completed"
    assert serving() == "2"


def test_rollback_with_nothing_recorded_says_so(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    result = cli("rollback")
    assert result.code == 1 and "no earlier release to roll back to" in result.err


# -- failures explained, fail fast, never a success ------------------------------------------


def crashing_rollout(crashes: int, counted: bool = True) -> Scenario:
    """Every new task exits with code 3; ECS counts them in failedTasks (unless `counted` is
    off: once one task of a deployment runs, ECS stops counting) and never finishes."""

    def state(_poll: int, service: dict[str, Any]) -> None:
        mine = new_deployment(service)
        failed = crashes if counted else 0
        mine.update(desiredCount=1, runningCount=0, pendingCount=1, failedTasks=failed)
        mine["rolloutState"] = "IN_PROGRESS"

    stopped = [
        stopped_task(
            f"crash{i}", "Essential container in task exited", 3, "RuntimeError raised at boot"
        )
        for i in range(crashes)
    ]
    return Scenario(state, stopped=stopped)


def test_tasks_that_keep_crashing_fail_the_rollout_early_with_their_last_log_lines(
    aws_env: dict[str, str],
) -> None:
    deploy(PREBUILT_IMAGE)
    write_log("crash0", [f"boot line {i}" for i in range(25)] + ["RuntimeError: no DB_HOST"])
    with pytest.raises(pipeline.UpFailed) as failed:
        deploy(IMAGE_B, crashing_rollout(3), timeout=600)
    assert "deploy failed; service rolled back to revision 1" in failed.value.message
    assert "3 task(s) failed (the limit is 3)" in failed.value.hint
    assert serving() == "1"


def test_failures_ecs_no_longer_counts_are_still_read_and_judged(aws_env: dict[str, str]) -> None:
    """ECS's failedTasks resets once a task of the deployment runs; the stopped tasks are
    read on every poll all the same, explained, and judged against the limit."""
    deploy(PREBUILT_IMAGE)
    with pytest.raises(pipeline.UpFailed) as failed:
        deploy(IMAGE_B, crashing_rollout(3, counted=False), timeout=600)
    assert "3 task(s) failed (the limit is 3)" in failed.value.hint
    assert serving() == "1"


def test_the_cli_explains_each_distinct_failure_once_and_exits_non_zero(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(PREBUILT_IMAGE)
    write_log("crash0", [f"boot line {i}" for i in range(25)] + ["RuntimeError: no DB_HOST"])
    result = invoke_with(monkeypatch, crashing_rollout(3), "up", "--yes", "--image", IMAGE_B)
    assert result.exit_code == 6
    err = result.stderr
    # Three tasks failed the same way: one explanation, with the first task's log tail.
    assert err.count("(revision 2): the app exited with code 3") == 1, err
    assert "ECS: Essential container in task exited; exit code 3" in err
    assert "container: RuntimeError raised at boot" in err
    assert "its last 20 log line(s):" in err
    assert "| RuntimeError: no DB_HOST" in err and "| boot line 5" not in err
    assert "| boot line 6" in err
    assert "deploy failed; service rolled back to revision 1" in err
    assert "Traceback" not in err


def test_json_reports_the_failure_and_the_revision_serving(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(PREBUILT_IMAGE)
    result = invoke_with(
        monkeypatch, crashing_rollout(3), "up", "--yes", "--image", IMAGE_B, "--json"
    )
    assert result.exit_code == 6
    document = json.loads(result.stdout)
    assert document["outcome"] == "failed" and document["revision"] == 2
    assert document["failures"][0]["kind"] == "crash"
    assert document["failures"][0]["exit_code"] == 3
    assert "rolled back to revision 1" in document["error"]


def ecs_rolled_back() -> Scenario:
    """ECS's circuit breaker failed the new deployment and made the old revision PRIMARY."""

    def state(_poll: int, service: dict[str, Any]) -> None:
        mine = new_deployment(service)
        mine.update(status="ACTIVE", rolloutState="FAILED", failedTasks=0)
        mine["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        old = {
            **mine,
            "id": "ecs-svc/0000000000000000001",
            "status": "PRIMARY",
            "taskDefinition": mine["taskDefinition"].rsplit(":", 1)[0] + ":1",
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": "ECS deployment circuit breaker: rolling back",
        }
        service["deployments"].insert(0, old)

    return Scenario(state)


def test_an_ecs_rollback_is_never_reported_as_success(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(PREBUILT_IMAGE)
    result = invoke_with(
        monkeypatch, ecs_rolled_back(), "up", "--yes", "--image", IMAGE_B, "--json"
    )
    assert result.exit_code == 6
    assert "ECS rolled back to revision 1, which is serving now" in result.stderr
    assert "circuit breaker: tasks failed to start" in result.stderr
    document = json.loads(result.stdout)
    assert document["outcome"] == "failed" and document["serving_revision"] == 1
    assert "up: done" not in result.stderr


def invoke_with(monkeypatch: pytest.MonkeyPatch, scenario: Scenario, *args: str) -> Any:
    class Scripted(aws_module.Aws):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, hooks=scenario.hooks(), **kw)

    monkeypatch.setattr(aws_module, "Aws", Scripted)
    return CliRunner().invoke(
        app,
        [*args, "--config", str(ROOT / "deploy.toml")],
        env={"COLUMNS": "200", "NNOTE_DEPLOY_POLL_SECONDS": "0.01", **DEPLOYER_CREDENTIALS},
    )


@pytest.mark.parametrize(
    ("reason", "exit_code", "container_reason", "kind", "words"),
    [
        (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
            "failed to resolve ref 123.dkr.ecr.eu-west-1.amazonaws.com/nnote-staging@sha256:ab",
            None,
            "",
            "image-pull",
            "the image could not be pulled",
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: "
            "execution resource retrieval failed: unable to retrieve secret from asm",
            None,
            "",
            "secrets",
            "a secret the task needs could not be read",
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution "
            "resource retrieval failed: unable to retrieve ecr registry auth: service call has "
            "been retried 3 time(s): RequestError: send request failed",
            None,
            "",
            "image-pull",
            "the image could not be pulled",
        ),
        (
            "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:x)",
            None,
            "",
            "health-check",
            "never answered its health check (/readyz)",
        ),
        (
            "Essential container in task exited",
            137,
            "OutOfMemoryError: Container killed due to memory usage",
            "out-of-memory",
            "ran out of memory",
        ),
        ("Essential container in task exited", 1, "", "crash", "exited with code 1"),
    ],
)
def test_each_kind_of_failure_gets_its_own_sentence(
    reason: str, exit_code: int | None, container_reason: str, kind: str, words: str
) -> None:
    task = stopped_task("t1", reason, exit_code, container_reason)
    assert failures.is_failure(task)
    explained = failures.explain(task, "/readyz")
    assert explained.kind == kind and words in explained.sentence and explained.hint


def test_tasks_ecs_stopped_on_purpose_are_not_failures() -> None:
    replaced = stopped_task("t2", "Scaling activity initiated by (deployment ecs-svc/1)", 0)
    assert not failures.is_failure(replaced)


# -- rollout settings ----------------------------------------------------------------------


def test_rollout_settings_reach_the_target_group_and_the_service(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    from deployer.config import load

    deploy(PREBUILT_IMAGE)
    elb = boto3.client("elbv2", region_name=REGION)
    tg = elb.describe_target_groups(Names=["nnote-staging"])["TargetGroups"][0]
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthyThresholdCount"]) == (5, 2)
    text = (ROOT / "deploy.toml").read_text() + (
        "\n[env.staging.service.rollout]\nhealth_check_interval_seconds = 10\n"
        "deregistration_delay_seconds = 20\ngrace_period_seconds = 45\n"
        "stop_timeout_seconds = 15\n"
    )
    (tmp_path / "deploy.toml").write_text(text)
    run = make_run(config=tmp_path / "deploy.toml")
    details = {c.detail for c in pipeline.plan(run, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))}
    assert "HealthCheckIntervalSeconds 5 -> 10" in details
    assert "deregistration delay 5 -> 20" in details
    assert "rollout settings" in details
    pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    tg = elb.describe_target_groups(Names=["nnote-staging"])["TargetGroups"][0]
    assert tg["HealthCheckIntervalSeconds"] == 10
    attributes = elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])
    delay = {a["Key"]: a["Value"] for a in attributes["Attributes"]}
    assert delay["deregistration_delay.timeout_seconds"] == "20"
    ecs = boto3.client("ecs", region_name=REGION)
    task = ecs.describe_task_definition(taskDefinition="nnote-staging")["taskDefinition"]
    assert task["containerDefinitions"][0]["stopTimeout"] == 15
    again = make_run(config=tmp_path / "deploy.toml")
    assert pipeline.plan(again, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)) == []
    assert (
        load(tmp_path / "deploy.toml", "staging").settings.service.rollout.grace_period_seconds
        == 45
    )


def refusals(tmp_path: Path, env: str, rollout: str) -> list[str]:
    """The problems deploy.toml's validation finds in an env with these [service.rollout] lines."""
    from deployer.config import load
    from deployer.errors import ConfigError

    text = (ROOT / "deploy.toml").read_text() + f"\n[env.{env}.service.rollout]\n{rollout}\n"
    (tmp_path / "deploy.toml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load(tmp_path / "deploy.toml", env)
    return refused.value.problems


def test_a_health_check_timeout_not_below_its_interval_is_refused(tmp_path: Path) -> None:
    problems = refusals(
        tmp_path, "fast", "health_check_interval_seconds = 5\nhealth_check_timeout_seconds = 5"
    )
    assert any("must be less than health_check_interval_seconds" in p for p in problems)


def test_every_rollout_setting_is_documented_in_the_shipped_deploy_toml_with_its_default() -> None:
    """deploy.toml states each [service.rollout] key with the default the code uses, and a
    reason after it; a default changed in one place and not the other fails here."""
    from deployer.config import RolloutSettings

    text = (ROOT / "deploy.toml").read_text()
    for name, field in RolloutSettings.model_fields.items():
        line = re.search(rf"^#? ?{name} = (\S+)\s+# \w+", text, re.MULTILINE)
        assert line, f"{name} is not documented in deploy.toml"
        if field.default is not None:
            assert line.group(1) == json.dumps(field.default), name


def test_alarm_rollback_alarms_are_created_attached_listed_and_removed(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    text = (ROOT / "deploy.toml").read_text()
    (tmp_path / "on.toml").write_text(text + "\n[env.staging.service.rollout]\nalarms = true\n")
    (tmp_path / "off.toml").write_text(text)
    on = make_run(config=tmp_path / "on.toml")
    planned = pipeline.plan(on, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    assert {(c.action, c.name) for c in planned if c.type == "cloudwatch:alarm"} == {
        ("create", "nnote-staging-rollout-5xx"),
        ("create", "nnote-staging-rollout-p95"),
    }
    pipeline.up(on, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    found = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(found) == {"nnote-staging-rollout-5xx", "nnote-staging-rollout-p95"}
    slow = found["nnote-staging-rollout-p95"]
    dimensions = {d["Name"]: d["Value"] for d in slow["Dimensions"]}
    assert dimensions["LoadBalancer"].startswith("app/nnote-staging/")
    assert dimensions["TargetGroup"].startswith("targetgroup/nnote-staging/")
    tags = cloudwatch.list_tags_for_resource(ResourceARN=slow["AlarmArn"])["Tags"]
    assert {"Key": "nnote:managed-by", "Value": "nnote-deploy"} in tags
    svc = as_deployer_sees_it()
    assert svc["deploymentConfiguration"]["alarms"] == {
        "alarmNames": ["nnote-staging-rollout-5xx", "nnote-staging-rollout-p95"],
        "enable": True,
        "rollback": True,
    }
    again = make_run(config=tmp_path / "on.toml")
    assert pipeline.plan(again, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)) == []
    listed = {r.id for r in pipeline.status(again) if r.type == "cloudwatch:alarm"}
    assert listed == {"nnote-staging-rollout-5xx", "nnote-staging-rollout-p95"}

    off = make_run(config=tmp_path / "off.toml")
    planned = pipeline.plan(off, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    assert {(c.action, c.type) for c in planned} >= {("delete", "cloudwatch:alarm")}
    pipeline.up(off, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert as_deployer_sees_it()["deploymentConfiguration"]["alarms"]["enable"] is False

    pipeline.up(
        make_run(config=tmp_path / "on.toml"),
        QuietEvents(),
        steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE),
    )
    result = pipeline.down(make_run(config=tmp_path / "on.toml"), QuietEvents())
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert result.leftovers == []


def as_deployer_sees_it() -> dict[str, Any]:
    """The service through the realism layer (which reports what ECS keeps and moto drops)."""
    from deployer.aws import call

    answer = call(
        make_run().aws,
        "ecs",
        "describe_services",
        cluster="nnote-staging",
        services=["nnote-staging"],
    )
    return dict(answer["services"][0])


def test_a_rollout_with_no_room_to_move_is_refused(tmp_path: Path) -> None:
    problems = refusals(tmp_path, "stuck", "minimum_healthy_percent = 100\nmaximum_percent = 100")
    assert any("maximum_percent must be above minimum_healthy_percent" in p for p in problems)
