"""One-off tasks: a revision of the app's task definition run once with another command (the
schema migration before a release, `nnote-deploy run -- CMD`), in the service's subnets and
security group, with its environment and secrets; its log lines followed while it runs, and
its end reported: the exit code, or why it never ran.

RunTask takes a client token so that a retried request (botocore retries a throttled or
dropped call) starts one task, not two. Right after RunTask, DescribeTasks may not know the
task yet (ECS is eventually consistent: it answers with a MISSING failure), so that counts as
"not yet". The tasks are not tagged: they stop by themselves and ECS forgets them within an
hour, so nothing is left for `down` to find.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployer.aws import AwsError, call, retry_while
from deployer.errors import DeployError, Interrupted
from deployer.rollout.failures import STREAM, TaskFailure, explain, task_id
from deployer.rollout.watch import FIRST_POLL_SECONDS, MAX_POLL_SECONDS
from deployer.steps.task_definition import CONTAINER

if TYPE_CHECKING:
    from deployer.steps.base import Run

LOG_TAIL = 20
# After the task stopped, its last lines may reach CloudWatch Logs a moment later.
LATE_LINES_READS = 5
LATE_LINES_SECONDS = 1.0
# Pages read in one go: a stream that keeps growing is read on at the next poll.
MAX_PAGES = 100


@dataclass
class TaskOutcome:
    task_id: str
    exit_code: int | None
    failure: TaskFailure | None = None
    log_tail: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task_id,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 1),
            "failure": self.failure.as_json() if self.failure else None,
            "log_tail": self.log_tail,
        }


def start(
    run: Run,
    task_definition: str,
    command: list[str],
    network: dict[str, Any],
    started_by: str,
    environment: dict[str, str] | None = None,
) -> str:
    """Start one task of `task_definition` running `command`; its ARN. ECS refuses a task
    for a while, as it refuses a new service, while the roles made moments ago are not yet
    assumable (IAM is eventually consistent): that is waited out."""
    override: dict[str, Any] = {"name": CONTAINER, "command": command}
    if environment:
        override["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
    token = uuid.uuid4().hex  # one token for every attempt: one task, however many sends
    answer = retry_while(
        ("InvalidParameterException",),
        300,
        lambda: call(
            run.aws,
            "ecs",
            "run_task",
            cluster=run.config.prefix,
            taskDefinition=task_definition,
            launchType="FARGATE",
            count=1,
            networkConfiguration=network,
            overrides={"containerOverrides": [override]},
            startedBy=started_by[:128],
            clientToken=token,
        ),
        lambda _code, left: run.note(
            "run", f"ECS cannot use the task's roles yet; {left:.0f}s left"
        ),
        delay=min(5.0, run.poll_seconds),
        sleep=run.sleep,
        when=lambda error: "assume" in error.message.lower(),
    )
    tasks = answer.get("tasks") or []
    if not tasks:
        reasons = "; ".join(
            f"{f.get('reason', '?')} {f.get('detail', '')}".strip()
            for f in answer.get("failures") or []
        )
        raise DeployError(
            f"ECS did not start the task: {reasons or 'no reason given'}",
            "the reason is ECS's (Fargate capacity or a quota); run the command again later",
        )
    return str(tasks[0]["taskArn"])


@dataclass
class Follower:
    """Follows one task to its end: its log lines as they come, then its exit."""

    run: Run
    task_arn: str
    on_line: Callable[[str], None] = lambda _line: None
    clock: Callable[[], float] = time.time
    lines: list[str] = field(default_factory=list)
    _token: str | None = None

    @property
    def log_group(self) -> str:
        return f"/nnote/{self.run.config.prefix}"

    def follow(self, timeout: float) -> TaskOutcome:
        started = self.clock()
        interval = FIRST_POLL_SECONDS
        while True:
            try:
                self.run.check_cancelled()
            except Interrupted:
                self.run.note("run", f"task {self.task_id} keeps running to its end")
                raise
            task = self._describe()
            self._read_logs()
            if task is not None and task.get("lastStatus") == "STOPPED":
                self._read_late_lines()
                return self._outcome(task, self.clock() - started)
            if self.clock() - started > timeout:
                raise DeployError(
                    f"task {self.task_id} did not finish within {timeout:.0f}s; it is still "
                    "running",
                    "its lines go on in `nnote-deploy logs --follow`; run again once it ended",
                )
            self.run.sleep(min(interval, self.run.poll_seconds))
            interval = min(interval * 1.5, MAX_POLL_SECONDS)

    @property
    def task_id(self) -> str:
        return task_id({"taskArn": self.task_arn})

    def _read_late_lines(self) -> None:
        """What the task wrote last (often the traceback) may arrive after it stopped."""
        for _ in range(LATE_LINES_READS):
            if not self._read_logs():
                return
            self.run.sleep(min(LATE_LINES_SECONDS, self.run.poll_seconds))

    def _describe(self) -> dict[str, Any] | None:
        answer = call(
            self.run.aws,
            "ecs",
            "describe_tasks",
            cluster=self.run.config.prefix,
            tasks=[self.task_arn],
        )
        tasks = answer.get("tasks") or []
        return dict(tasks[0]) if tasks else None  # MISSING: not known yet

    def _read_logs(self) -> int:
        """Read the stream on from where the last read ended; the number of new lines.
        GetLogEvents' pages can be empty before the end: the end is the token sent back."""
        params: dict[str, Any] = {
            "logGroupName": self.log_group,
            "logStreamName": STREAM.format(task_id=self.task_id),
            "startFromHead": True,
        }
        found = 0
        for _ in range(MAX_PAGES):
            if self._token:
                params["nextToken"] = self._token
            try:
                answer = call(self.run.aws, "logs", "get_log_events", **params)
            except AwsError as error:
                if error.code == "ResourceNotFoundException":  # not started logging yet
                    return found
                raise
            for event in answer.get("events", []):
                line = event["message"].rstrip("\n")
                self.lines.append(line)
                self.on_line(line)
                found += 1
            token = answer.get("nextForwardToken")
            if token is None or token == self._token:
                return found
            self._token = token
        return found

    def _outcome(self, task: dict[str, Any], seconds: float) -> TaskOutcome:
        container: dict[str, Any] = next(
            (c for c in task.get("containers") or [] if c.get("name") == CONTAINER), {}
        )
        exit_code = container.get("exitCode")
        failure = None if exit_code == 0 else explain(task, "")
        return TaskOutcome(
            task_id=task_id(task),
            exit_code=exit_code,
            failure=failure,
            log_tail=self.lines[-LOG_TAIL:],
            seconds=seconds,
        )
