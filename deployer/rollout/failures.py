"""Why a task of a rollout stopped, in one plain sentence with a hint, and the last lines it
logged. ECS gives the words (`stopCode`, `stoppedReason`, the container's `exitCode` and
`reason`); the kinds below are ECS's documented stopped-task errors:
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployer.aws import Aws, AwsError, call

LOG_LINES = 20
# The log stream of a task's app container: awslogs-stream-prefix/container/task-id.
STREAM = "app/app/{task_id}"
# Stops ECS makes on purpose (a deployment replacing tasks, scaling in) are not failures.
ROUTINE = ("Scaling activity initiated by", "Service scheduler initiated", "Deployment")
# Fargate Spot took its capacity back (`service.spot`), or the task's host was being retired
# (AWS's "underlying infrastructure maintenance": ECS TaskStopCode TerminationNotice): a task
# stopped with warning says nothing about the revision it ran, and the service starts another.
NOT_THE_REVISION = ("SpotInterruption", "TerminationNotice")


@dataclass(frozen=True)
class TaskFailure:
    task_id: str
    revision: str
    kind: str  # image-pull | secrets | health-check | out-of-memory | crash | other
    sentence: str
    hint: str
    stopped_reason: str
    exit_code: int | None
    container_reason: str = ""
    log_tail: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, int | None, str]:
        """Failures with the same key are the same failure: reported once."""
        return (self.kind, self.exit_code, self.stopped_reason[:60])

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task_id,
            "revision": self.revision,
            "kind": self.kind,
            "explanation": self.sentence,
            "hint": self.hint,
            "stopped_reason": self.stopped_reason,
            "exit_code": self.exit_code,
            "container_reason": self.container_reason or None,
            "log_tail": list(self.log_tail),
        }


def is_failure(task: dict[str, Any]) -> bool:
    """A stopped task that failed, not one ECS stopped on purpose."""
    if task.get("lastStatus") != "STOPPED" and task.get("desiredStatus") != "STOPPED":
        return False
    if task.get("stopCode") in NOT_THE_REVISION:
        return False
    reason = task.get("stoppedReason") or ""
    if any(reason.startswith(words) for words in ROUTINE) and "health check" not in reason:
        return False
    return bool(reason) or task.get("stopCode") in ("TaskFailedToStart", "EssentialContainerExited")


def explain(task: dict[str, Any], health_path: str) -> TaskFailure:
    container = _app_container(task)
    reason = task.get("stoppedReason") or task.get("stopCode") or "stopped"
    exit_code = container.get("exitCode")
    kind, sentence, hint = _classify(reason, container.get("reason") or "", exit_code, health_path)
    return TaskFailure(
        task_id=task_id(task),
        revision=task.get("taskDefinitionArn", "?").rsplit(":", 1)[-1],
        kind=kind,
        sentence=sentence,
        hint=hint,
        stopped_reason=reason,
        exit_code=exit_code,
        container_reason=container.get("reason") or "",
    )


def _classify(
    reason: str, container_reason: str, exit_code: int | None, health_path: str
) -> tuple[str, str, str]:
    words = f"{reason} {container_reason}"
    lower = words.lower()
    # "ResourceInitializationError: unable to pull secrets or registry auth: ..." is said of
    # both; what follows tells a secret from ECR's credentials.
    secret = any(w in lower for w in ("unable to retrieve secret", "secretsmanager", "ssm"))
    if not secret and (
        "CannotPullContainerError" in words or "pull image" in lower or "registry auth" in lower
    ):
        return (
            "image-pull",
            "the image could not be pulled",
            "check that the image exists in ECR and that the tasks can reach it "
            "(public IP or VPC endpoints); the reason above has ECR's words",
        )
    if "ResourceInitializationError" in words and secret:
        return (
            "secrets",
            "a secret the task needs could not be read",
            "check that the secret exists and that the execution role may read it "
            "(`nnote-deploy up` sets both)",
        )
    if "OutOfMemory" in words:
        return (
            "out-of-memory",
            "the app ran out of memory and was killed",
            "raise service.memory_mb in deploy.toml",
        )
    if "health check" in words.lower():
        return (
            "health-check",
            f"the app never answered its health check ({health_path}) in time",
            "the log lines below say why; /readyz fails while the database is unreachable",
        )
    if exit_code is not None or "exited" in words:
        return (
            "crash",
            f"the app exited with code {exit_code}" if exit_code is not None else "the app exited",
            "the log lines below are its last words",
        )
    return ("other", "the task stopped", "see the reason above and the log lines below")


def with_log_tail(aws: Aws, log_group: str, failure: TaskFailure) -> TaskFailure:
    """The failure with the last lines its task logged (none if it never started)."""
    from dataclasses import replace

    return replace(failure, log_tail=tuple(log_tail(aws, log_group, failure.task_id)))


def log_tail(aws: Aws, log_group: str, task: str, lines: int = LOG_LINES) -> list[str]:
    """The last `lines` messages of a task's log stream (none if it never logged)."""
    try:
        answer = call(
            aws,
            "logs",
            "get_log_events",
            logGroupName=log_group,
            logStreamName=STREAM.format(task_id=task),
            startFromHead=False,
            limit=lines,
        )
    except AwsError as error:
        if error.code == "ResourceNotFoundException":  # never started, never logged
            return []
        raise
    return [event["message"].rstrip("\n") for event in answer.get("events", [])][-lines:]


def task_id(task: dict[str, Any]) -> str:
    return str(task.get("taskArn", "?")).rsplit("/", 1)[-1]


def _app_container(task: dict[str, Any]) -> dict[str, Any]:
    containers = task.get("containers") or [{}]
    return next((c for c in containers if c.get("name") == "app"), containers[0])
