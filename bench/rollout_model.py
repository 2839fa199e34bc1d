"""An ECS rolling deployment in virtual time: the deployer's overhead over the floor AWS allows.

    uv run --frozen python bench/rollout_model.py [--runs 25] [--seed 1] [--image-mb 60]
        [--desired N] [--api-latency 0.08] [--app-start 2] [--scheduler-delay 2]

No AWS and no sleeping: fake ECS, ELBv2 and CloudWatch Logs clients answer from a simulated
deployment whose state is a function of a virtual clock, and the deployer's real rollout
watcher (deployer.rollout.watch.Watcher) watches it through deployer.aws.call, in a real
deployer.steps.base.Run whose sleep advances that clock. Every call advances the clock by
the simulated API latency (+-25%) and answers with the state at its midpoint; everything is
drawn from --seed, so a run takes well under a second.

The simulated deployment (one PRIMARY deployment "ecs-svc/1", createdAt t0, desired N new
tasks beside N old ones, minimum healthy 100%, maximum 200%):
  - each new task exists 0.3-1 s after t0 (PROVISIONING) and starts pulling 10-20 s after t0
    (ENI attachment; `pullStartedAt`); the pull takes --image-mb / 40-80 MB/s + 1 s
    (`pullStoppedAt`); the container starts 0.3-1 s later (`startedAt`, RUNNING), when its
    target is registered; the app answers --app-start seconds after that;
  - the load balancer checks a new target every health check interval, at a uniform phase
    after registration; the first check once the app answers passes (+0.05 s) and the target
    is healthy: ALB needs one passing check for a newly registered target, whatever the
    healthy threshold (the ELB and ECS guides say so). Only if the unhealthy threshold's
    checks fail first (an app slower than that many intervals) is the target unhealthy, and
    then it needs the healthy threshold's passes;
  - the task definition's container health check (the same interval) first runs one interval
    after the container starts (Docker's rule); ECS counts a new task toward the minimum
    healthy percent only when both checks pass (the ECS guide's minimumHealthyPercent);
  - 0.2-1 s later ECS deregisters an old target (healthy -> draining), waits the
    deregistration delay, stops the old task (0.3-1.2 s: gunicorn has nothing in flight; at
    most the stop timeout), and marks the deployment COMPLETED (`updatedAt`) after a
    scheduler delay of --scheduler-delay +-50%.

Per run, three deploys of the same draws: "old" (the settings before [service.rollout]: checks
every 15 s, deregistration delay 30 s, stop timeout 30 s, and the old watcher, a
describe_services loop every 15 s), "new settings, 15 s poll" (deploy.toml's settings, the old
loop) and "new" (deploy.toml's settings and the real Watcher). Figures:
  floor            COMPLETED - t0: what AWS allows, whoever watches;
  detection lag    when the watch returned - COMPLETED;
  overhead         the lag plus the calls that follow the watch (describe_task_definition,
                   two tag_resource, describe_services), i.e. the tool's time beyond the floor;
  modelled deploy  register_task_definition + update_service + floor + overhead (`up`'s
                   service step; `redeploy` registers nothing: one call less);
and for the new watcher, per phase of its timeline: the recorded end minus the model's true
time (0 for the phases AWS timestamps), and how long after the true event the watcher
recorded it (its notice lag). Medians and p90 over --runs runs.
Targets: overhead < 3 s; every phase noticed within 2 s; modelled deploy < 90 s with
deploy.toml's defaults. Nothing is asserted: the figures are printed.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from deployer.aws import Aws, call  # noqa: E402
from deployer.config import DeployConfig, RolloutSettings, load  # noqa: E402
from deployer.inventory import Owner  # noqa: E402
from deployer.rollout.timeline import ROLLOUT_PHASES, Phase, Timeline  # noqa: E402
from deployer.rollout.watch import Watcher  # noqa: E402
from deployer.steps.base import Run  # noqa: E402

EPOCH = 1_798_761_600.0  # 2027-01-01T00:00:00Z: where virtual time starts
CLUSTER = "nnote-staging"
ECS_ARN = "arn:aws:ecs:eu-west-1:123456789012"
NEW_TD = f"{ECS_ARN}:task-definition/nnote-staging:2"
OLD_TD = f"{ECS_ARN}:task-definition/nnote-staging:1"
NEW_ID, OLD_ID = "ecs-svc/1", "ecs-svc/0"
TARGET_GROUP = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/nnote-staging/0123456789abcdef"
)

# The model's AWS (seconds).
LAUNCH = (0.3, 1.0)  # deployment created -> task exists (PROVISIONING)
PROVISIONING = (10.0, 20.0)  # deployment created -> pullStartedAt (ENI attachment and so on)
THROUGHPUT = (40.0, 80.0)  # image pull, MB/s of compressed layers
PULL_FIXED = 1.0  # registry authentication, manifest, unpacking the last layer
CONTAINER_START = (0.3, 1.0)  # pullStoppedAt -> startedAt
CHECK_SECONDS = 0.05  # one passing health check's answer
REACTION = (0.2, 1.0)  # ECS sees a new task healthy -> deregisters an old target
OLD_STOP = (0.3, 1.2)  # SIGTERM -> gunicorn exits; nothing in flight once drained
JITTER = (0.75, 1.25)  # of --api-latency, per call

# The deploy around the watch: the service step's calls before and after it (`up`).
PRE_CALLS = ("ecs:RegisterTaskDefinition", "ecs:UpdateService")
POST_CALLS = (
    "ecs:DescribeTaskDefinition",
    "ecs:TagResource",
    "ecs:DescribeServices",
    "ecs:TagResource",
)

# Targets the figures are read against.
OVERHEAD_TARGET, NOTICE_TARGET, DEPLOY_TARGET = 3.0, 2.0, 90.0


def at(seconds: float) -> datetime:
    """Virtual epoch seconds as botocore gives timestamps."""
    return datetime.fromtimestamp(seconds, UTC)


# -- virtual time ---------------------------------------------------------------------------


@dataclass
class Clock:
    now: float = EPOCH

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class VirtualRun(Run):
    """A real Run whose waits advance the virtual clock instead of the wall clock."""

    clock: Clock = field(default_factory=Clock)

    def sleep(self, seconds: float | None = None) -> None:
        self.clock.advance(self.poll_seconds if seconds is None else seconds)


@dataclass
class RecordingTimeline(Timeline):
    """The watcher's timeline, noting the virtual time at which each phase end was recorded."""

    clock: Clock = field(default_factory=Clock)
    recorded: dict[str, float] = field(default_factory=dict)

    def end(self, phase: str, at: float) -> bool:
        news = super().end(phase, at)
        if news:
            self.recorded[phase] = self.clock.now
        return news


# -- the simulated deployment ---------------------------------------------------------------


@dataclass(frozen=True)
class Knobs:
    """The settings that shape a rollout's floor."""

    interval: float  # load balancer and container health checks
    healthy_threshold: int
    unhealthy_threshold: int
    deregistration_delay: float
    stop_timeout: float

    @classmethod
    def of(cls, rollout: RolloutSettings) -> Knobs:
        return cls(
            interval=float(rollout.health_check_interval_seconds),
            healthy_threshold=rollout.healthy_threshold,
            unhealthy_threshold=rollout.unhealthy_threshold,
            deregistration_delay=float(rollout.deregistration_delay_seconds),
            stop_timeout=float(rollout.stop_timeout_seconds),
        )


# Before [service.rollout]: target group checks every 15 s (healthy threshold 2, unhealthy 3),
# container checks every 15 s, a 30 s deregistration delay and Fargate's default 30 s stop
# timeout.
OLD = Knobs(
    interval=15.0,
    healthy_threshold=2,
    unhealthy_threshold=3,
    deregistration_delay=30.0,
    stop_timeout=30.0,
)


@dataclass(frozen=True)
class Draws:
    """One run's luck, shared by every scenario so that they differ only in settings."""

    launch: list[float]
    provisioning: list[float]
    throughput: list[float]
    container_start: list[float]
    check_phase: list[float]  # fraction of an interval
    reaction: list[float]
    stop: list[float]
    scheduler: float

    @classmethod
    def of(cls, rng: random.Random, desired: int, scheduler_delay: float) -> Draws:
        def many(low: float, high: float) -> list[float]:
            return [rng.uniform(low, high) for _ in range(desired)]

        return cls(
            launch=many(*LAUNCH),
            provisioning=many(*PROVISIONING),
            throughput=many(*THROUGHPUT),
            container_start=many(*CONTAINER_START),
            check_phase=many(0.0, 1.0),
            reaction=many(*REACTION),
            stop=many(*OLD_STOP),
            scheduler=rng.uniform(0.5 * scheduler_delay, 1.5 * scheduler_delay),
        )


def first_check(first: float, interval: float, ready: float) -> float:
    """The first of the checks at first, first + interval, ... that finds the app ready."""
    return first + max(0, math.ceil((ready - first) / interval)) * interval


def target_health(first: float, ready: float, knobs: Knobs) -> tuple[float | None, float]:
    """When a new target turns unhealthy (None if it never does) and healthy: one pass makes
    a target in `initial` healthy, but as many failures as the unhealthy threshold before the
    app answers make it unhealthy, and then it needs the healthy threshold's passes."""
    failing = max(0, math.ceil((ready - first) / knobs.interval))
    if failing < knobs.unhealthy_threshold:
        return None, first + failing * knobs.interval + CHECK_SECONDS
    unhealthy = first + (knobs.unhealthy_threshold - 1) * knobs.interval + CHECK_SECONDS
    passes = failing + knobs.healthy_threshold - 1
    return unhealthy, first + passes * knobs.interval + CHECK_SECONDS


def eni(ip: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "ElasticNetworkInterface",
            "status": "ATTACHED",
            "details": [
                {"name": "subnetId", "value": "subnet-0123456789abcdef0"},
                {"name": "privateIPv4Address", "value": ip},
            ],
        }
    ]


@dataclass(frozen=True)
class NewTask:
    arn: str
    ip: str
    created: float
    pull_started: float
    pull_stopped: float
    started: float
    target_healthy: float
    task_healthy: float  # the container health check passed
    target_unhealthy: float | None = None  # failed checks before the app answered

    def status(self, t: float) -> str | None:
        if t < self.created:
            return None
        if t < self.pull_started:
            return "PROVISIONING"
        return "PENDING" if t < self.started else "RUNNING"

    def describe(self, t: float) -> dict[str, Any]:
        status = self.status(t)
        health = "HEALTHY" if t >= self.task_healthy else "UNKNOWN"
        task: dict[str, Any] = {
            "taskArn": self.arn,
            "taskDefinitionArn": NEW_TD,
            "clusterArn": f"{ECS_ARN}:cluster/{CLUSTER}",
            "group": f"service:{CLUSTER}",
            "startedBy": NEW_ID,
            "launchType": "FARGATE",
            "lastStatus": status,
            "desiredStatus": "RUNNING",
            "healthStatus": health,
            "createdAt": at(self.created),
            "attachments": eni(self.ip),
            "containers": [{"name": "app", "lastStatus": status, "healthStatus": health}],
        }
        for key, stamp in (
            ("pullStartedAt", self.pull_started),
            ("pullStoppedAt", self.pull_stopped),
            ("startedAt", self.started),
        ):
            if t >= stamp:
                task[key] = at(stamp)
        return task

    def target(self, t: float) -> str | None:
        if t < self.started:
            return None
        if t >= self.target_healthy:
            return "healthy"
        unhealthy = self.target_unhealthy is not None and t >= self.target_unhealthy
        return "unhealthy" if unhealthy else "initial"


@dataclass(frozen=True)
class OldTask:
    arn: str
    ip: str
    deregistered: float
    drained: float
    stopped: float

    def status(self, t: float) -> str:
        if t < self.deregistered:
            return "RUNNING"
        if t < self.drained:
            return "DEACTIVATING"
        return "STOPPING" if t < self.stopped else "STOPPED"

    def describe(self, t: float) -> dict[str, Any]:
        status, started = self.status(t), EPOCH - 86_400
        task: dict[str, Any] = {
            "taskArn": self.arn,
            "taskDefinitionArn": OLD_TD,
            "clusterArn": f"{ECS_ARN}:cluster/{CLUSTER}",
            "group": f"service:{CLUSTER}",
            "startedBy": OLD_ID,
            "launchType": "FARGATE",
            "lastStatus": status,
            "desiredStatus": "RUNNING" if t < self.deregistered else "STOPPED",
            "createdAt": at(started - 20),
            "pullStartedAt": at(started - 6),
            "pullStoppedAt": at(started - 2),
            "startedAt": at(started),
            "attachments": eni(self.ip),
            "containers": [{"name": "app", "lastStatus": status}],
        }
        if t >= self.deregistered:
            task["stopCode"] = "ServiceSchedulerInitiated"
            task["stoppedReason"] = f"Scaling activity initiated by (deployment {NEW_ID})"
        if t >= self.stopped:
            task["stoppedAt"] = at(self.stopped)
        return task

    def target(self, t: float) -> str | None:
        if t < self.deregistered:
            return "healthy"
        return "draining" if t < self.drained else None


@dataclass(frozen=True)
class Rollout:
    """The deployment's truth at every instant."""

    t0: float
    new: list[NewTask]
    old: list[OldTask]
    completed: float

    @classmethod
    def model(
        cls, t0: float, knobs: Knobs, draws: Draws, image_mb: float, app_start: float
    ) -> Rollout:
        new, gates = [], []
        for i in range(len(draws.launch)):
            created = t0 + draws.launch[i]
            pull_started = t0 + max(draws.provisioning[i], draws.launch[i])
            pull_stopped = pull_started + image_mb / draws.throughput[i] + PULL_FIXED
            started = pull_stopped + draws.container_start[i]
            ready = started + app_start
            first = started + draws.check_phase[i] * knobs.interval
            unhealthy, target = target_health(first, ready, knobs)
            task = first_check(started + knobs.interval, knobs.interval, ready) + CHECK_SECONDS
            new.append(
                NewTask(
                    f"{ECS_ARN}:task/{CLUSTER}/{i + 1:032x}",
                    f"10.40.1.{10 + i}",
                    created,
                    pull_started,
                    pull_stopped,
                    started,
                    target,
                    task,
                    unhealthy,
                )
            )
            gates.append(max(target, task))
        old = []
        for j, gate in enumerate(sorted(gates)):
            deregistered = gate + draws.reaction[j]
            drained = deregistered + knobs.deregistration_delay
            stopped = drained + min(draws.stop[j], knobs.stop_timeout)
            old.append(
                OldTask(
                    f"{ECS_ARN}:task/{CLUSTER}/{0xF00 + j:032x}",
                    f"10.40.0.{10 + j}",
                    deregistered,
                    drained,
                    stopped,
                )
            )
        completed = max(task.stopped for task in old) + draws.scheduler
        return cls(t0, new, old, completed)

    def truth(self) -> dict[str, float]:
        """When each phase the watcher's timeline records really ended."""
        return {
            "provisioning": max(task.pull_started for task in self.new),
            "pull": max(task.pull_stopped for task in self.new),
            "start": max(task.started for task in self.new),
            "healthy": max(task.target_healthy for task in self.new),
            "traffic": max(task.deregistered for task in self.old),  # no old target serves
            "drained": self.completed,
        }

    def primary(self, t: float) -> dict[str, Any]:
        done = t >= self.completed
        state = "completed" if done else "in progress"
        moments = [self.t0, self.completed]
        moments += [m for task in self.new for m in (task.created, task.started)]
        moments += [m for task in self.old for m in (task.deregistered, task.stopped)]
        return {
            "id": NEW_ID,
            "status": "PRIMARY",
            "taskDefinition": NEW_TD,
            "desiredCount": len(self.new),
            "pendingCount": sum(task.status(t) in ("PROVISIONING", "PENDING") for task in self.new),
            "runningCount": sum(task.status(t) == "RUNNING" for task in self.new),
            "failedTasks": 0,
            "createdAt": at(self.t0),
            "updatedAt": at(max(m for m in moments if m <= t)),
            "launchType": "FARGATE",
            "rolloutState": "COMPLETED" if done else "IN_PROGRESS",
            "rolloutStateReason": f"ECS deployment {NEW_ID} {state}.",
        }

    def service(self, t: float) -> dict[str, Any]:
        deployments = [self.primary(t)]
        if t < self.completed:  # the old deployment goes once its tasks are stopped
            deployments.append(
                {
                    "id": OLD_ID,
                    "status": "ACTIVE",
                    "taskDefinition": OLD_TD,
                    "desiredCount": sum(task.status(t) == "RUNNING" for task in self.old),
                    "pendingCount": 0,
                    "runningCount": sum(task.status(t) == "RUNNING" for task in self.old),
                    "failedTasks": 0,
                    "createdAt": at(EPOCH - 86_400),
                    "updatedAt": at(self.t0),
                    "rolloutState": "COMPLETED",
                }
            )
        return {
            "serviceArn": f"{ECS_ARN}:service/{CLUSTER}/{CLUSTER}",
            "serviceName": CLUSTER,
            "status": "ACTIVE",
            "taskDefinition": NEW_TD,
            "desiredCount": len(self.new),
            "runningCount": sum(d["runningCount"] for d in deployments),
            "pendingCount": sum(d["pendingCount"] for d in deployments),
            "loadBalancers": [
                {"targetGroupArn": TARGET_GROUP, "containerName": "app", "containerPort": 5000}
            ],
            "deployments": deployments,
        }

    def tasks(self) -> list[NewTask | OldTask]:
        return [*self.new, *self.old]


# -- fake AWS -------------------------------------------------------------------------------


@dataclass
class Latency:
    """Each API call takes the simulated latency of virtual time; answers are read midway."""

    clock: Clock
    seconds: float
    rng: random.Random
    calls: Counter[str] = field(default_factory=Counter)

    def served(self, operation: str) -> float:
        half = self.seconds * self.rng.uniform(*JITTER) / 2
        self.clock.advance(half)
        moment = self.clock.now
        self.clock.advance(half)
        self.calls[operation] += 1
        return moment

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class FakeEcs:
    def __init__(self, latency: Latency, rollout: Rollout) -> None:
        self.latency, self.rollout = latency, rollout

    def describe_services(self, **_: Any) -> dict[str, Any]:
        t = self.latency.served("ecs:DescribeServices")
        return {"services": [self.rollout.service(t)], "failures": []}

    def list_tasks(
        self, startedBy: str = "", desiredStatus: str = "RUNNING", **_: Any
    ) -> dict[str, Any]:
        t = self.latency.served("ecs:ListTasks")
        found = []
        for task in self.rollout.tasks():
            answer = task.describe(t)
            if (
                answer["lastStatus"] is not None  # launched
                and answer["startedBy"] == (startedBy or answer["startedBy"])
                and answer["desiredStatus"] == desiredStatus
            ):
                found.append(task.arn)
        return {"taskArns": found}

    def describe_tasks(self, tasks: list[str], **_: Any) -> dict[str, Any]:
        t = self.latency.served("ecs:DescribeTasks")
        by_arn = {task.arn: task for task in self.rollout.tasks()}
        return {"tasks": [by_arn[arn].describe(t) for arn in tasks], "failures": []}


class FakeElb:
    def __init__(self, latency: Latency, rollout: Rollout) -> None:
        self.latency, self.rollout = latency, rollout

    def describe_target_health(self, **_: Any) -> dict[str, Any]:
        t = self.latency.served("elbv2:DescribeTargetHealth")
        reasons = {
            "initial": "Elb.InitialHealthChecking",
            "unhealthy": "Target.FailedHealthChecks",
            "draining": "Target.DeregistrationInProgress",
        }
        found = []
        for task in self.rollout.tasks():
            state = task.target(t)
            if state is not None:
                health = {
                    "State": state,
                    **({"Reason": reasons[state]} if state in reasons else {}),
                }
                found.append({"Target": {"Id": task.ip, "Port": 5000}, "TargetHealth": health})
        return {"TargetHealthDescriptions": found}


class FakeLogs:
    def __init__(self, latency: Latency) -> None:
        self.latency = latency

    def filter_log_events(self, **_: Any) -> dict[str, Any]:
        self.latency.served("logs:FilterLogEvents")
        return {"events": []}


class FakeAws:
    """What deployer.aws.call needs of an Aws: clients by service name."""

    def __init__(self, latency: Latency, rollout: Rollout) -> None:
        self.region = "eu-west-1"
        self.clients: dict[str, Any] = {
            "ecs": FakeEcs(latency, rollout),
            "elbv2": FakeElb(latency, rollout),
            "logs": FakeLogs(latency),
        }

    def client(self, service: str) -> Any:
        return self.clients[service]


# -- one deploy -----------------------------------------------------------------------------


@dataclass
class Outcome:
    floor: float  # COMPLETED - t0
    returned: float  # watch returned - t0
    lag: float  # watch returned - COMPLETED
    calls: int  # made by the watch
    overhead: float  # lag + the calls after the watch
    deploy: float  # calls before + floor + overhead
    truth: dict[str, float] = field(default_factory=dict)  # phase -> true end - t0
    error: dict[str, float] = field(default_factory=dict)  # phase -> timeline end - true end
    noticed: dict[str, float] = field(default_factory=dict)  # phase -> recorded - true end
    phases: list[Phase] = field(default_factory=list)
    why: str = ""  # a verdict that was not `completed`


def old_watch(run: Run, deployment_id: str) -> None:
    """The watcher before deployer.rollout (HEAD's ServiceStep.watch): describe_services,
    then run.sleep() for Run's default poll_seconds (15 s), until COMPLETED."""
    while True:
        service = call(run.aws, "ecs", "describe_services", cluster=CLUSTER, services=[CLUSTER])
        current = next(
            (d for d in service["services"][0]["deployments"] if d["id"] == deployment_id), None
        )
        if current is not None and current.get("rolloutState") == "COMPLETED":
            return
        run.sleep()


def deploy(
    config: DeployConfig,
    knobs: Knobs,
    draws: Draws,
    args: argparse.Namespace,
    seed: str,
    *,
    new_watcher: bool,
) -> Outcome:
    clock = Clock()
    latency = Latency(clock, args.api_latency, random.Random(seed))
    began = clock.now
    latency.served(PRE_CALLS[0])
    t0 = latency.served(PRE_CALLS[1])  # ECS creates the deployment while answering
    rollout = Rollout.model(t0, knobs, draws, args.image_mb, args.app_start)
    run = VirtualRun(
        aws=cast(Aws, FakeAws(latency, rollout)),
        config=config,
        owner=Owner(config.app, config.env, "bench"),
        clock=clock,
    )
    before = latency.total
    timeline = RecordingTimeline(clock=clock)
    why = ""
    if new_watcher:
        deployment = {"taskDefinition": NEW_TD, **rollout.primary(t0)}
        timeout = float(config.settings.service.rollout_timeout_seconds)
        verdict = Watcher(run, deployment, timeline=timeline, clock=clock).watch(timeout)
        why = "" if verdict.completed else verdict.why or "not completed"
    else:
        old_watch(run, NEW_ID)
    returned, calls = clock.now, latency.total - before
    for operation in POST_CALLS:
        latency.served(operation)
    truth = rollout.truth()
    return Outcome(
        floor=rollout.completed - t0,
        returned=returned - t0,
        lag=returned - rollout.completed,
        calls=calls,
        overhead=clock.now - rollout.completed,
        deploy=clock.now - began,
        truth={phase: moment - t0 for phase, moment in truth.items()},
        # Rounded: AWS's timestamps carry microseconds, so "exact" shows as 0.00, not -0.00.
        error={phase: round(end - truth[phase], 3) + 0.0 for phase, end in timeline.ends.items()},
        noticed={phase: moment - truth[phase] for phase, moment in timeline.recorded.items()},
        phases=timeline.phases(),
        why=why,
    )


# -- the report -----------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def both(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} / {p90(values):.{digits}f}"


SCENARIOS = ("old (15 s poll)", "new settings, 15 s poll", "new (Watcher)")


def report(
    results: dict[str, list[Outcome]], config: DeployConfig, args: argparse.Namespace
) -> None:
    rollout = config.settings.service.rollout
    print(
        f"{args.runs} runs (seed {args.seed}): {args.desired} task(s), image {args.image_mb:g} MB,"
        f" app start {args.app_start:g} s, API latency {args.api_latency:g} s +-25%,"
        f" scheduler delay {args.scheduler_delay:g} s +-50%"
    )
    print(
        f"old: checks every {OLD.interval:g} s, deregistration {OLD.deregistration_delay:g} s,"
        f" stop timeout {OLD.stop_timeout:g} s, a 15 s poll; new (deploy.toml staging): checks"
        f" every {rollout.health_check_interval_seconds} s, deregistration"
        f" {rollout.deregistration_delay_seconds} s, stop timeout {rollout.stop_timeout_seconds} s"
    )
    print()
    report_totals(results)
    new = results[SCENARIOS[2]]
    print()
    report_phases(new)
    print()
    print("example timeline (run 1, new watcher: verdict.timeline.phases())")
    phases = new[0].phases
    for phase in phases:
        done = phase.ended - phases[0].started
        print(f"  {phase.name:<13}{phase.seconds:7.1f}s   done at +{done:.1f}s")
    failed = [o.why for outcomes in results.values() for o in outcomes if o.why]
    if failed:
        print(f"\nverdicts not completed: {len(failed)} (first: {failed[0]})")
    print()
    report_targets(results)


def report_totals(results: dict[str, list[Outcome]]) -> None:
    rows = (
        ("rollout floor (COMPLETED - t0)", "floor"),
        ("watch returned - t0", "returned"),
        ("detection lag (returned - COMPLETED)", "lag"),
        ("API calls while watching (count)", "calls"),
        ("overhead (lag + calls after the watch)", "overhead"),
        ("modelled deploy (calls + floor + overhead)", "deploy"),
    )
    print(f"{'median / p90, seconds':44}" + "".join(f"{name:>26}" for name in SCENARIOS))
    for label, attribute in rows:
        digits = 0 if attribute == "calls" else 1
        cells = [
            both([float(getattr(o, attribute)) for o in results[s]], digits) for s in SCENARIOS
        ]
        print(f"{label:44}" + "".join(f"{cell:>26}" for cell in cells))


def report_phases(new: list[Outcome]) -> None:
    """Per phase: the model's true end, the timeline's error, and when the watcher knew."""
    print("new watcher, per phase (seconds; noticed = recorded by the watcher - true event)")
    print(
        f"{'phase':14}{'true end - t0':>15}{'timeline - true':>17}{'noticed median / p90':>23}"
        f"{'max':>7}{'over 2 s':>10}{'recorded':>10}"
    )
    for name in ROLLOUT_PHASES:
        seen = [o for o in new if name in o.noticed]
        if not seen:
            print(f"{name:14}{'never recorded':>15}")
            continue
        noticed = [o.noticed[name] for o in seen]
        late = sum(lag > NOTICE_TARGET for lag in noticed)
        print(
            f"{name:14}{statistics.median(o.truth[name] for o in seen):15.1f}"
            f"{statistics.median(o.error[name] for o in seen):17.2f}{both(noticed, 2):>23}"
            f"{max(noticed):7.2f}{late:>10}{len(seen):>7}/{len(new)}"
        )


def report_targets(results: dict[str, list[Outcome]]) -> None:
    new, old = results[SCENARIOS[2]], results[SCENARIOS[0]]
    overhead = [o.overhead for o in new]
    lag, name = max(((lag, name) for o in new for name, lag in o.noticed.items()), default=(0, "-"))
    deploy_new = statistics.median(o.deploy for o in new)
    deploy_old = statistics.median(o.deploy for o in old)
    print(
        f"overhead: median {statistics.median(overhead):.2f} s, p90 {p90(overhead):.2f} s,"
        f" max {max(overhead):.2f} s (target < {OVERHEAD_TARGET:g} s)"
    )
    print(f"slowest phase notice: {lag:.2f} s ({name}) (target: each within {NOTICE_TARGET:g} s)")
    print(
        f"modelled deploy: median {deploy_new:.1f} s (target < {DEPLOY_TARGET:g} s); old"
        f" {deploy_old:.1f} s, {deploy_old - deploy_new:.1f} s ({deploy_old / deploy_new:.1f}x)"
        " slower"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--image-mb", type=float, default=60.0, help="compressed image size")
    parser.add_argument("--desired", type=int, default=None, help="default: deploy.toml's")
    parser.add_argument("--api-latency", type=float, default=0.08, help="seconds per call")
    parser.add_argument(
        "--app-start", type=float, default=2.0, help="container start -> app answers"
    )
    parser.add_argument(
        "--scheduler-delay", type=float, default=2.0, help="old task stopped -> COMPLETED"
    )
    args = parser.parse_args()
    config = load(ROOT / "deploy.toml", "staging")
    args.desired = args.desired or config.settings.service.desired_count or 1
    new_knobs = Knobs.of(config.settings.service.rollout)
    scenarios = {
        SCENARIOS[0]: (OLD, False),
        SCENARIOS[1]: (new_knobs, False),
        SCENARIOS[2]: (new_knobs, True),
    }
    results: dict[str, list[Outcome]] = {name: [] for name in scenarios}
    for index in range(args.runs):
        draws = Draws.of(random.Random(f"{args.seed}:{index}"), args.desired, args.scheduler_delay)
        for number, (name, (knobs, new_watcher)) in enumerate(scenarios.items()):
            seed = f"{args.seed}:{index}:{number}"
            results[name].append(deploy(config, knobs, draws, args, seed, new_watcher=new_watcher))
    report(results, config, args)


if __name__ == "__main__":
    main()
