"""The pipeline: which steps run in what order, and the four commands built on them.

- `plan` observes every step (read-only calls only) and lists the changes `up` would make.
- `up` plans first; with no changes it stops there, having made no mutating call. Otherwise it
  takes the environment's lock and runs each step's `apply` as soon as the steps it depends on
  are done, so independent steps (the slow RDS instance, the registry) run concurrently. Every
  mutation goes into the run journal; on a failure or Ctrl-C the journal is undone newest
  first, which leaves everything that existed before the run as it was.
- `status` observes and lists what is owned.
- `down` takes the lock, deletes in reverse dependency order, then audits the tag inventory:
  anything still tagged for this app and env is a leak and fails the command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from deployer import inventory, oneoff
from deployer.cost import report as cost_report
from deployer.errors import DeployError, ExitCode, Interrupted
from deployer.inventory import Resource
from deployer.journal import Entry, RollbackReport
from deployer.lock import Lock
from deployer.rollout import migrations, snapshots
from deployer.rollout.releases import Release, list_releases
from deployer.schema import database_schema
from deployer.steps.base import RETIRE_ORDER, Change, Observed, Refusal, Run, Step
from deployer.steps.certificate import CertificateStep
from deployer.steps.database import DatabaseStep
from deployer.steps.endpoint import EndpointStep, public_url
from deployer.steps.image import ImageStep
from deployer.steps.loadbalancer import LoadBalancerStep
from deployer.steps.network import NetworkStep
from deployer.steps.registry import RegistryStep
from deployer.steps.runtime import RuntimeStep
from deployer.steps.service import ServiceStep


def base_steps() -> list[Step]:
    """The families that need no image: network, database, registry."""
    return [NetworkStep(), DatabaseStep(), RegistryStep()]


def deploy_steps(source: Path, image: str | None = None) -> list[Step]:
    """Everything `up` converges: the app's image from `source` (or a prebuilt `image`)
    running as an ECS service behind a load balancer."""
    return [
        *base_steps(),
        ImageStep(source, prebuilt=image),
        RuntimeStep(),
        CertificateStep(),
        LoadBalancerStep(),
        EndpointStep(),
        ServiceStep(),
    ]


def owned_steps() -> list[Step]:
    """Everything that can own AWS resources, for `status` and `down` (an image is deleted
    with its repository, so it needs no step of its own here)."""
    return [
        *base_steps(),
        RuntimeStep(),
        CertificateStep(),
        LoadBalancerStep(),
        EndpointStep(),
        ServiceStep(),
    ]


class Events(Protocol):
    """What the pipeline reports while it works; the CLI's renderer implements it."""

    def step_started(self, step: str) -> None: ...
    def step_note(self, step: str, message: str) -> None: ...
    def step_finished(self, step: str, seconds: float) -> None: ...
    def step_failed(self, step: str, seconds: float, message: str) -> None: ...
    def undoing(self, entry: Entry) -> None: ...


@dataclass
class UpResult:
    changes: list[Change]
    outputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    critical_seconds: float = 0.0  # the slowest chain of dependent steps
    plan_seconds: float = 0.0  # reading what exists, before anything is changed
    url: str | None = None  # the environment's public HTTPS URL


def critical_path(steps: list[Step], timings: dict[str, float]) -> float:
    """The longest chain of step durations along dependencies: the best wall time possible."""
    finish: dict[str, float] = {}
    for step in steps:  # steps are listed after what they depend on
        before = max((finish.get(d, 0.0) for d in step.depends_on), default=0.0)
        finish[step.name] = before + timings.get(step.name, 0.0)
    return max(finish.values(), default=0.0)


class UpFailed(DeployError):
    """`up` failed; what this run did has been rolled back (unless --no-rollback)."""

    exit_code = ExitCode.ROLLED_BACK

    def __init__(
        self, cause: DeployError, step: str, rollback: RollbackReport | None, done: list[str]
    ) -> None:
        if rollback is None:
            summary = f"kept {len(done)} change(s) (--no-rollback)"
            hint = "run `nnote-deploy up` again to resume, or `nnote-deploy down` to remove"
        elif rollback.failed:
            summary = f"rolled back {len(rollback.undone)}, could not undo {len(rollback.failed)}"
            hint = "see the list below; run `nnote-deploy down` to remove what is left"
        else:
            summary = f"rolled back {len(rollback.undone)} change(s) made by this run"
            hint = cause.hint or "fix the cause and run `nnote-deploy up` again"
        super().__init__(
            f"up failed in step {step}: {cause.message}; {summary}",
            hint,
            request_id=cause.request_id,
        )
        self.cause, self.step, self.rollback, self.done = cause, step, rollback, done


# -- running steps in dependency order --------------------------------------------------


def run_graph(
    steps: list[Step],
    work: Callable[[Step, dict[str, Any]], Any],
    run: Run,
    events: Events,
    reverse: bool = False,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Run `work` for each step once its dependencies are done; concurrently where possible.

    `reverse` runs dependents first (for deletion). The first failure stops new steps and
    tells running ones to stop (run.cancel); it is then raised as (step name, error).
    """
    names = {s.name for s in steps}
    needs = {s.name: set(s.depends_on) & names for s in steps}
    if reverse:
        needs = {s.name: {t.name for t in steps if s.name in t.depends_on} for s in steps}
    pending = {s.name: s for s in steps}
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    failure: tuple[str, BaseException] | None = None
    with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
        running: dict[Future[tuple[Any, float]], str] = {}
        while pending or running:
            try:
                failure = _advance(
                    pending, running, needs, results, timings, failure, pool, work, run, events
                )
            except KeyboardInterrupt:
                # Ctrl-C: start nothing new, let running steps stop at their next wait,
                # then the caller rolls back.
                run.cancel.set()
    if failure is not None:
        raise StepFailed(*failure)
    if run.cancel.is_set():
        raise StepFailed("(interrupted)", Interrupted())
    return results, timings


def _advance(
    pending: dict[str, Step],
    running: dict[Future[tuple[Any, float]], str],
    needs: dict[str, set[str]],
    results: dict[str, Any],
    timings: dict[str, float],
    failure: tuple[str, BaseException] | None,
    pool: ThreadPoolExecutor,
    work: Callable[[Step, dict[str, Any]], Any],
    run: Run,
    events: Events,
) -> tuple[str, BaseException] | None:
    """Start what is ready, collect what finished; return the first failure so far."""
    if failure is None and not run.cancel.is_set():
        for name in [n for n in pending if needs[n] <= results.keys()]:
            events.step_started(name)
            running[pool.submit(_timed, work, pending.pop(name), dict(results))] = name
    if not running:
        if pending and failure is None and not run.cancel.is_set():
            raise DeployError(f"steps {sorted(pending)} wait on each other", "a bug: report it")
        pending.clear()
        return failure
    finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
    for future in finished:
        name = running.pop(future)
        try:
            results[name], timings[name] = future.result()
            events.step_finished(name, timings[name])
        except KeyboardInterrupt:
            raise  # Ctrl-C landed in this thread while it read a result: not the step's fault
        except BaseException as error:
            message = error.message if isinstance(error, DeployError) else repr(error)
            events.step_failed(name, getattr(error, "seconds", 0.0), message)
            if failure is None and not isinstance(error, Interrupted):
                failure = (name, error)
            run.cancel.set()
    return failure


class StepFailed(Exception):
    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(step)
        self.step, self.error = step, error


def _timed(
    work: Callable[[Step, dict[str, Any]], Any], step: Step, inputs: dict[str, Any]
) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        return work(step, inputs), time.monotonic() - started
    except BaseException as error:
        error.seconds = time.monotonic() - started  # type: ignore[attr-defined]
        raise


def _as_deploy_error(error: BaseException) -> DeployError:
    if isinstance(error, DeployError):
        return error
    if isinstance(error, KeyboardInterrupt):
        return Interrupted()
    return DeployError(f"unexpected {type(error).__name__}: {error}", "run again with --verbose")


# -- commands -----------------------------------------------------------------------------


def _take_lock(run: Run, events: Events, wait_seconds: float) -> Lock:
    lock = Lock(run.aws, run.owner)
    dead = lock.acquire(wait_seconds)
    if dead is not None:
        events.step_note(
            "lock",
            f"took over the lock of run {dead.get('run', '?')} ({dead.get('owner', '?')}), "
            "whose lease had expired: that run died; this one resumes its work",
        )
    return lock


def observe_all(run: Run, steps: Iterable[Step]) -> dict[str, Observed]:
    steps = list(steps)
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        observed = pool.map(lambda s: (s.name, s.observe(run)), steps)
        return dict(observed)


def plan(run: Run, steps: list[Step] | None = None) -> list[Change]:
    steps = steps or base_steps()
    run.observed = observe_all(run, steps)
    return [change for step in steps for change in step.plan(run, run.observed[step.name])]


def cost_change(run: Run) -> cost_report.CostChange | None:
    """What the changes `plan` found do to the monthly bill, from what it observed (call it
    after `plan`): None when they leave the bill as it is, and then no price is asked for."""
    return cost_report.of_plan(run)


def up(
    run: Run,
    events: Events,
    *,
    rollback: bool = True,
    lock_wait: float = 0,
    steps: list[Step] | None = None,
    changes: list[Change] | None = None,
) -> UpResult:
    """Converge. `changes` is a plan the caller already made (and showed); else one is made."""
    steps = steps or base_steps()
    started = time.monotonic()
    changes = plan(run, steps) if changes is None else changes
    planned = time.monotonic() - started
    if not changes:
        return UpResult(changes=[], wall_seconds=time.monotonic() - started, url=url(run))
    lock = _take_lock(run, events, lock_wait)
    with _released(lock, events):
        if lock.waited:  # the run we waited for changed things: plan again under the lock
            changes = plan(run, steps)
            events.step_note("lock", f"re-planned after waiting: {len(changes)} change(s) left")
            if not changes:
                return UpResult(changes=[], wall_seconds=time.monotonic() - started, url=url(run))
        try:
            outputs, timings = run_graph(
                steps, lambda step, inputs: step.apply(run, inputs), run, events
            )
            _retire(run, events)
        except StepFailed as failed:
            done = [entry.description for entry in run.journal.entries]
            run.cancel.clear()  # the rollback itself must not be cancelled
            report = run.journal.rollback(events.undoing) if rollback else None
            if report is not None:
                report.failed += _unjournaled(run)
            error = _as_deploy_error(failed.error)
            raise UpFailed(error, failed.step, report, done) from failed.error
    return UpResult(
        changes,
        outputs,
        timings,
        time.monotonic() - started,
        critical_path(steps, timings),
        planned,
        outputs.get(EndpointStep.name, {}).get("url"),
    )


def url(run: Run) -> str | None:
    """The environment's URL, from what `plan` or `status` observed."""
    return public_url(run, run.observed.get(EndpointStep.name))


def observed_url(run: Run) -> str | None:
    """The environment's URL, read now (after a command that did not plan: `redeploy`)."""
    return public_url(run, EndpointStep().observe(run))


def _retire(run: Run, events: Events) -> None:
    """Remove what the new settings replaced, now that everything new works. Nothing is left
    to roll back: a failure here leaves the new setup serving and the old part in place."""
    for retirement in sorted(run.retirements, key=lambda r: RETIRE_ORDER.index(r.component)):
        events.step_note(retirement.component, f"removing {retirement.description}")
        try:
            retirement.action()
        except DeployError as error:
            raise DeployError(
                f"up finished, but could not remove {retirement.description}: {error.message}",
                "the environment serves with the new settings; run `nnote-deploy up` again "
                "to remove it",
            ) from error


def _unjournaled(run: Run) -> list[tuple[str, str]]:
    """What still carries this run's id after its rollback: AWS applied a create whose answer
    never came back (a dropped connection), so the journal never knew of it. Said, not hidden."""
    try:
        stray = inventory.leftovers(run.aws, run.owner, only_run=True)
    except DeployError as error:
        return [("the check for resources this run made", error.message)]
    known = run.journal.made  # those the rollback already undid or reported
    return [
        (f"{r.type} {r.id}", "made by this run but its answer was lost; `down` removes it")
        for r in stray
        # The lock is released later; a snapshot taken before a migration is kept on purpose.
        if r.component != "lock"
        and (r.type, r.id) not in known
        and not inventory.is_kept_snapshot(r, run.config.prefix)
    ]


def status(run: Run, steps: list[Step] | None = None) -> list[Resource]:
    steps = steps or owned_steps()
    run.observed = observe_all(run, steps)
    return [resource for step in steps for resource in step.resources(run.observed[step.name])]


@dataclass
class DownResult:
    deleted: list[Resource]
    leftovers: list[Resource]
    timings: dict[str, float]
    kept: list[Resource] = field(default_factory=list)  # snapshots the settings ask to keep


class DownRefused(DeployError):
    """`down` found, before deleting anything, that it could not finish; nothing was deleted."""

    def __init__(self, refusals: list[Refusal]) -> None:
        first = refusals[0]
        more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
        super().__init__(f"down refused, nothing was deleted: {first.problem}{more}", first.fix)
        self.problems = [f"{r.problem}: {r.fix}" for r in refusals]


def down(
    run: Run,
    events: Events,
    *,
    lock_wait: float = 0,
    steps: list[Step] | None = None,
    still_wanted: Callable[[], None] | None = None,
) -> DownResult:
    """The ordered delete and the leak audit. `still_wanted` runs once the lock is held,
    before anything is read or deleted: it raises to call the delete off (gc's check that a
    preview has not been renewed meanwhile)."""
    steps = steps or owned_steps()
    lock = _take_lock(run, events, lock_wait)
    with _released(lock, events):
        if still_wanted is not None:
            still_wanted()
        observed = observe_all(run, steps)
        refusals = [r for step in steps for r in step.refusals(run, observed[step.name])]
        if refusals:
            raise DownRefused(refusals)
        existing = [r for step in steps for r in step.resources(observed[step.name])]
        try:
            _, timings = run_graph(
                steps,
                lambda step, _inputs: step.destroy(run, observed[step.name]),
                run,
                events,
                reverse=True,
            )
        except StepFailed as failed:
            raise _as_deploy_error(failed.error) from failed.error
        found = _swept(lock, inventory.leftovers(run.aws, run.owner), events)
    kept = [r for r in found if inventory.is_kept_snapshot(r, run.config.prefix)]
    return DownResult(existing, [r for r in found if r not in kept], timings, kept)


def _swept(lock: Lock, leftovers: list[Resource], events: Events) -> list[Resource]:
    """The leftovers of a `down`, once the lock parameters of runs that died are deleted
    (the lock itself is released after the audit)."""
    deleted, failed = lock.sweep([r for r in leftovers if r.component == "lock"])
    if deleted:
        names = ", ".join(r.id for r in deleted)
        events.step_note("lock", f"deleted what runs that died left of the lock: {names}")
    return [r for r in leftovers if r.component != "lock"] + failed


@contextmanager
def _released(lock: Lock, events: Events) -> Iterator[None]:
    """Release the lock after the work, whatever happened. A release that fails does not fail
    the work: the lease runs out by itself, and the next run takes the lock over."""
    try:
        yield
    finally:
        try:
            lock.release()
        except DeployError as error:
            events.step_note(
                "lock",
                f"warning: could not release the lock ({error.message}); it lapses by itself "
                f"within {lock.lease:.0f}s",
            )


def redeploy(run: Run, events: Events, *, lock_wait: float = 0) -> str:
    """Force a new deployment of the current revision, watched; returns its revision."""
    return _service_action(run, events, lock_wait, lambda: ServiceStep().redeploy(run))


def rollback(run: Run, events: Events, to: int | None, *, lock_wait: float = 0) -> str:
    """Put the service back on a recorded release (default: the one before the serving one),
    watched; returns its revision. Refused when the release's code expects an older schema
    than the database's across a migration that is not backward compatible, unless
    `run.force_schema`."""

    def roll_back() -> str:
        target = _release_to_roll_back_to(run, to)
        _check_schema(run, events, target)
        return ServiceStep().roll_back_to(run, target.arn)

    return _service_action(run, events, lock_wait, roll_back)


def _check_schema(run: Run, events: Events, target: Release) -> None:
    instance = DatabaseStep().observe(run)["instance"] or {}
    database = database_schema(instance.get("TagList"))
    if database.head is None or database.accepts(target.schema):
        return
    found = snapshots.listed(run)
    what = f"release {target.revision}"
    if not run.force_schema:
        migrations.refuse_if_incompatible(
            target.schema, database, found, what, migrations.FORCE_HINT
        )
    restore = snapshots.before_schema(found, target.schema)
    events.step_note(
        "service",
        f"--force: the database stays at schema {database.head}"
        + (
            f"; the data from before it is in snapshot {restore.name}"
            if restore
            else "; no snapshot holds the older schema"
        ),
    )


def run_command(
    run: Run, command: list[str], on_line: Callable[[str], None], timeout: float
) -> oneoff.TaskOutcome:
    """`command` as a one-off task of the serving revision, beside the service's tasks and
    with their environment and secrets; its log lines to `on_line` as they come."""
    service = ServiceStep().observe(run)["service"]
    if service is None:
        raise DeployError(
            f"no service {run.config.prefix} to run beside", "run `nnote-deploy up` first"
        )
    task = oneoff.start(
        run, service["taskDefinition"], command, service["networkConfiguration"], "nnote-deploy/run"
    )
    revision = str(service["taskDefinition"]).rsplit(":", 1)[-1]
    run.note("run", f"task {task.rsplit('/', 1)[-1]} of revision {revision} started")
    return oneoff.Follower(run, task, on_line).follow(timeout)


def releases(run: Run) -> list[Release]:
    """The recorded releases, newest first, the serving one marked, each with the snapshot
    taken before its migration (if any)."""
    service = ServiceStep().observe(run)["service"]
    found = list_releases(run, service["taskDefinition"] if service else None)
    taken = {s.release: s.name for s in snapshots.listed(run)}
    return [replace(r, snapshot=taken.get(r.revision)) for r in found]


def _release_to_roll_back_to(run: Run, to: int | None) -> Release:
    found = releases(run)
    if not found:
        raise DeployError(
            "no releases recorded to roll back to", "`nnote-deploy up` records one per rollout"
        )
    if to is not None:
        chosen = next((r for r in found if r.revision == to), None)
        if chosen is None:
            known = ", ".join(str(r.revision) for r in found)
            raise DeployError(f"revision {to} is not a recorded release", f"choose one of: {known}")
        return chosen
    serving = next((i for i, r in enumerate(found) if r.serving), None)
    older = found[serving + 1 :] if serving is not None else found
    if not older:
        raise DeployError(
            "no earlier release to roll back to", "`nnote-deploy releases` lists them"
        )
    return older[0]


def _service_action(run: Run, events: Events, lock_wait: float, action: Callable[[], str]) -> str:
    lock = _take_lock(run, events, lock_wait)
    with _released(lock, events):
        events.step_started("service")
        started = time.monotonic()
        try:
            arn = action()
        except DeployError as error:
            events.step_failed("service", time.monotonic() - started, error.message)
            raise
        events.step_finished("service", time.monotonic() - started)
    return arn.rsplit(":", 1)[-1]
