"""Watch one ECS deployment to its end and judge it, without changing anything.

Polls start at half a second and back off to 1.5 s (a poll's own three calls fit in the
rest of two seconds), and start over whenever something changed, so a phase change is seen
within two seconds of AWS reporting it (bench/rollout_model.py measures it). ECS's own
ServicesStable waiter is not used: it reports success after a circuit-breaker rollback.
The verdict is `completed` only when *this* deployment is COMPLETED; a deployment ECS
failed or replaced (its circuit breaker or an alarm rolled back), too many failed tasks,
or the timeout are failures, with the revision that serves now.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployer.aws import call, paginate
from deployer.rollout import failures as failures_module
from deployer.rollout.failures import TaskFailure
from deployer.rollout.timeline import Timeline, epoch

if TYPE_CHECKING:
    from deployer.steps.base import Run

FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 1.5
BACKOFF = 1.5
# Polls that ECS's own circuit breaker gets to judge a revision that reached the failed-task
# limit, before the watcher judges it itself (both count the same tasks).
ECS_VERDICT_POLLS = 10
# While nothing changes, say what is awaited this often.
STILL_EVERY_SECONDS = 30.0
COMPONENT = "service"


@dataclass
class Verdict:
    completed: bool
    why: str = ""
    # The task definition ECS serves now, when it is not the one watched (ECS rolled back).
    serving: str | None = None
    failures: list[TaskFailure] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    # The task definition watched.
    task_definition: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": "completed" if self.completed else "failed",
            "revision": _revision(self.task_definition),
            "serving_revision": _revision(self.serving) if self.serving else None,
            "why": self.why or None,
            "timeline": self.timeline.as_json(),
            "failures": [failure.as_json() for failure in self.failures],
        }


def _revision(arn: str | None) -> int | None:
    tail = (arn or "").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def failure_threshold(run: Run, desired: int) -> int:
    """deploy.toml's, or ECS's circuit-breaker threshold: half the desired count rounded up,
    at least 3 and at most 200 (the Amazon ECS Developer Guide's "deployment circuit
    breaker" page)."""
    configured = run.config.settings.service.rollout.fail_after_failed_tasks
    return configured or min(200, max(3, math.ceil(desired / 2)))


@dataclass
class Watcher:
    run: Run
    deployment: dict[str, Any]
    timeline: Timeline = field(default_factory=Timeline)
    clock: Callable[[], float] = time.time
    failed: dict[str, TaskFailure] = field(default_factory=dict)  # by task id
    reported: set[tuple[str, int | None, str]] = field(default_factory=set)
    _over_threshold: int = 0
    _task_ips: set[str] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)  # stopped tasks already read

    @property
    def deployment_id(self) -> str:
        return str(self.deployment["id"])

    def watch(self, timeout: float) -> Verdict:
        started = self.clock()
        self.timeline.rollout_started = epoch(self.deployment.get("createdAt")) or started
        interval, last_note = FIRST_POLL_SECONDS, started
        cap = min(MAX_POLL_SECONDS, self.run.poll_seconds)
        while True:
            service = self._service()
            mine = next(
                (d for d in service.get("deployments", []) if d["id"] == self.deployment_id), None
            )
            known = set(self.timeline.ends)
            changed = self._observe(service, mine)
            for phase in self.timeline.phases():
                if phase.name in set(self.timeline.ends) - known:
                    self.run.note(COMPONENT, f"{phase.name} done in {phase.seconds:.1f}s")
            verdict = self._judge(service, mine, self.clock() - started, timeout)
            if verdict is not None:
                verdict.failures, verdict.timeline = self.distinct_failures(), self.timeline
                verdict.task_definition = str(self.deployment.get("taskDefinition", ""))
                return verdict
            now = self.clock()
            if changed or now - last_note >= STILL_EVERY_SECONDS:
                self.run.note(COMPONENT, progress(mine, now - started))
                last_note = now
            interval = FIRST_POLL_SECONDS if changed else min(cap, interval * BACKOFF)
            self.run.sleep(min(interval, cap))

    # -- judging ----------------------------------------------------------------------------

    def _judge(
        self, service: dict[str, Any], mine: dict[str, Any] | None, elapsed: float, timeout: float
    ) -> Verdict | None:
        state = (mine or {}).get("rolloutState", "IN_PROGRESS")
        if mine is not None and state == "COMPLETED":
            self.timeline.end("drained", epoch(mine.get("updatedAt")) or self.clock())
            return Verdict(True)
        if mine is None or state == "FAILED":
            reason = (mine or {}).get("rolloutStateReason") or "ECS replaced the deployment"
            return Verdict(False, reason, self._serving_instead(service))
        threshold = failure_threshold(self.run, int(mine.get("desiredCount") or 1))
        failed = max(len(self.failed), int(mine.get("failedTasks") or 0))
        if failed >= threshold:
            # ECS's circuit breaker counts the same tasks: give its own verdict (and its
            # rollback) a few polls to arrive rather than race it with ours.
            self._over_threshold += 1
            if self._over_threshold > ECS_VERDICT_POLLS:
                return Verdict(False, f"{failed} task(s) failed (the limit is {threshold})")
        if elapsed > timeout:
            return Verdict(False, f"not complete after {timeout:.0f}s")
        return None

    def _serving_instead(self, service: dict[str, Any]) -> str | None:
        primary: dict[str, Any] = next(
            (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {}
        )
        arn = primary.get("taskDefinition")
        return str(arn) if arn and arn != self.deployment.get("taskDefinition") else None

    # -- observing --------------------------------------------------------------------------

    def _observe(self, service: dict[str, Any], mine: dict[str, Any] | None) -> bool:
        """Read what moved since the last poll; True if anything did."""
        if mine is None:
            return True
        if mine.get("createdAt"):  # the deployment as ECS describes it now is the authority
            self.timeline.rollout_started = epoch(mine["createdAt"])
        # Stopped tasks on every poll: ECS's failedTasks stops counting once one task runs.
        replaced = self._read_failures()
        changed = replaced
        starting = mine.get("runningCount") or mine.get("pendingCount")
        # Running tasks until all have started, and again when one failed (its replacement
        # has another address, which the target health below must look for).
        if starting and ("start" not in self.timeline.ends or replaced):
            changed |= self._read_tasks(int(mine.get("desiredCount") or 0))
        if "start" in self.timeline.ends and "traffic" not in self.timeline.ends:
            changed |= self._read_targets(service)
        return changed

    def _read_tasks(self, desired: int) -> bool:
        live = [t for t in self._tasks("RUNNING") if not failures_module.is_failure(t)]
        self._task_ips = set().union(*(_private_ips(t) for t in live))
        changed = False
        for phase, stamp in (
            ("provisioning", "pullStartedAt"),
            ("pull", "pullStoppedAt"),
            ("start", "startedAt"),
        ):
            reached = [stamped for t in live if (stamped := epoch(t.get(stamp))) is not None]
            if desired and len(reached) >= desired:
                changed |= self.timeline.end(phase, max(reached))
        return changed

    def _read_targets(self, service: dict[str, Any]) -> bool:
        groups = [lb["targetGroupArn"] for lb in service.get("loadBalancers") or []]
        if not groups or not self._task_ips:
            return False
        health = call(self.run.aws, "elbv2", "describe_target_health", TargetGroupArn=groups[0])[
            "TargetHealthDescriptions"
        ]
        state = {h["Target"]["Id"]: h["TargetHealth"]["State"] for h in health}
        now, changed = self.clock(), False
        if all(state.get(ip) == "healthy" for ip in self._task_ips):
            changed |= self.timeline.end("healthy", now)
            old = [ip for ip, s in state.items() if s == "healthy" and ip not in self._task_ips]
            if not old:
                changed |= self.timeline.end("traffic", now)
        return changed

    def _read_failures(self) -> bool:
        """Explain the deployment's newly stopped tasks; True if one failed."""
        news = False
        for task in self._tasks("STOPPED", only_new=True):
            if not failures_module.is_failure(task):
                continue
            failure = failures_module.explain(
                task, self.run.config.settings.service.health_check_path
            )
            if failure.key not in self.reported:
                self.reported.add(failure.key)
                failure = failures_module.with_log_tail(
                    self.run.aws, f"/nnote/{self.run.config.prefix}", failure
                )
                self.run.note(COMPONENT, f"task {failure.task_id} failed: {failure.sentence}")
            self.failed[failure.task_id] = failure
            news = True
        return news

    def _tasks(self, status: str, only_new: bool = False) -> list[dict[str, Any]]:
        """This deployment's tasks in `status`. ListTasks filters by service (startedBy must
        be its only filter, so it cannot be combined with a status); a service task's
        `startedBy` is its deployment's id. With `only_new`, tasks read before are skipped."""
        prefix = self.run.config.prefix
        arns = paginate(
            self.run.aws,
            "ecs",
            "list_tasks",
            "taskArns",
            cluster=prefix,
            serviceName=prefix,
            desiredStatus=status,
        )
        if only_new:
            arns = [arn for arn in arns if arn not in self._seen]
            self._seen.update(arns)
        found: list[dict[str, Any]] = []
        for start in range(0, len(arns), 100):  # DescribeTasks takes 100 at a time
            answer = call(
                self.run.aws,
                "ecs",
                "describe_tasks",
                cluster=prefix,
                tasks=arns[start : start + 100],
            )
            found += answer.get("tasks", [])
        return [t for t in found if t.get("startedBy") == self.deployment_id]

    def _service(self) -> dict[str, Any]:
        prefix = self.run.config.prefix
        return dict(
            call(self.run.aws, "ecs", "describe_services", cluster=prefix, services=[prefix])[
                "services"
            ][0]
        )

    def distinct_failures(self) -> list[TaskFailure]:
        """One failure per kind of failure (the first task that showed it, with its log)."""
        seen: dict[tuple[str, int | None, str], TaskFailure] = {}
        for failure in self.failed.values():
            if failure.key not in seen or (failure.log_tail and not seen[failure.key].log_tail):
                seen[failure.key] = failure
        return list(seen.values())


def progress(deployment: dict[str, Any] | None, elapsed: float) -> str:
    d = deployment or {}
    return (
        f"rollout {d.get('rolloutState', '?')} ({elapsed:.0f}s): "
        f"{d.get('runningCount', 0)} running, {d.get('pendingCount', 0)} pending, "
        f"{d.get('failedTasks', 0)} failed"
    )


def _private_ips(task: dict[str, Any]) -> set[str]:
    """A Fargate task's address: its containers' network interfaces (the documented field),
    or its ENI attachment's details."""
    found = {
        interface["privateIpv4Address"]
        for container in task.get("containers") or []
        for interface in container.get("networkInterfaces") or []
        if interface.get("privateIpv4Address")
    }
    return found or {
        detail["value"]
        for attachment in task.get("attachments") or []
        for detail in attachment.get("details") or []
        if detail.get("name") == "privateIPv4Address"
    }
