"""The small protocol every resource family follows, and the context a step runs in."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from deployer.aws import Aws
from deployer.config import DeployConfig
from deployer.errors import DeployError, Interrupted
from deployer.inventory import Owner, Resource
from deployer.journal import RunJournal
from deployer.rollout.timeline import Timeline


class Progress(Protocol):
    """Where steps report what they are doing; the CLI renders it (the library never prints)."""

    def step_note(self, step: str, message: str) -> None: ...


class SilentProgress:
    def step_note(self, step: str, message: str) -> None:
        pass


@dataclass
class Run:
    """One command's context: AWS, settings, owner tags, journal, progress, cancellation."""

    aws: Aws
    config: DeployConfig
    owner: Owner
    journal: RunJournal = field(default_factory=RunJournal)
    progress: Progress = field(default_factory=SilentProgress)
    cancel: threading.Event = field(default_factory=threading.Event)
    # Seconds between polls of slow resources (RDS, deletions); tests shorten it.
    poll_seconds: float = 15.0
    # How long `down` retries DependencyViolation and similar eventual-consistency errors.
    dependency_budget_seconds: float = 600.0
    # Overrides service.rollout_timeout_seconds (tests); None keeps deploy.toml's.
    rollout_timeout_seconds: float | None = None
    # What `plan` observed, by step: steps whose wanted state depends on others read it.
    observed: dict[str, Observed] = field(default_factory=dict)
    # What `up` removes only once every step has succeeded (see Retirement).
    retirements: list[Retirement] = field(default_factory=list)
    # This run's phases (build, push, register, then the rollout's), as they become known.
    timeline: Timeline = field(default_factory=Timeline)
    # The watched rollout's verdict (deployer.rollout.watch.Verdict), once there is one.
    rollout: Any = None
    # Deploy code for an older schema than the database's even across a migration that is
    # not backward compatible (`rollback --force`).
    force_schema: bool = False
    # `down --delete-snapshots`: the snapshots taken before migrations go too.
    delete_snapshots: bool = False

    def retire(self, component: str, description: str, action: Callable[[], Any]) -> None:
        self.retirements.append(Retirement(component, description, action))

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Interrupted()

    def sleep(self, seconds: float | None = None) -> None:
        """Wait between polls, waking at once on Ctrl-C."""
        if self.cancel.wait(self.poll_seconds if seconds is None else seconds):
            raise Interrupted()

    def note(self, step: str, message: str) -> None:
        self.progress.step_note(step, message)


@dataclass(frozen=True)
class Retirement:
    """Something the new settings no longer want and that cannot be undone once removed (the
    old front door: a CloudFront distribution, the origin rule, the old security group
    rules). `up` removes it only after every step has succeeded, so a failed `up` rolls back
    to an environment that still serves, through the front door it had."""

    component: str
    description: str
    action: Callable[[], Any]


# The order retirements run in: what serves viewers first, what it stood on last.
RETIRE_ORDER = ("service", "endpoint", "loadbalancer", "network", "certificate")

Observed = dict[str, Any]
Outputs = dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """Why `down` must not start: found before anything is deleted, with what to do."""

    problem: str
    fix: str


@dataclass(frozen=True)
class Change:
    """One thing `up` would do; `plan` lists them."""

    component: str
    action: str  # create | update | delete
    type: str
    name: str
    detail: str = ""


class Step(ABC):
    name: str
    depends_on: tuple[str, ...] = ()

    @abstractmethod
    def observe(self, run: Run) -> Observed:
        """Describe what exists now. Read-only: no mutating call."""

    @abstractmethod
    def plan(self, run: Run, observed: Observed) -> list[Change]:
        """What `apply` would change, from an observation. Makes no AWS call."""

    @abstractmethod
    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        """Create or converge; record every mutation in the journal. Idempotent."""

    @abstractmethod
    def destroy(self, run: Run, observed: Observed) -> None:
        """Delete what `observe` found, in a safe order."""

    @abstractmethod
    def resources(self, observed: Observed) -> list[Resource]:
        """The owned resources in an observation, for `status`."""

    def refusals(self, run: Run, observed: Observed) -> list[Refusal]:
        """What makes `destroy` impossible, from an observation: `down` checks every step's
        before it deletes anything, so a refused `down` deletes nothing."""
        return []


T = TypeVar("T")
# How often a long wait (CloudFront deploying, ACM validating) says it is still waiting.
NOTE_EVERY_SECONDS = 60.0


def wait_for(
    run: Run,
    component: str,
    check: Callable[[], T | None],
    waiting: str,
    timeout: float,
    timed_out: Callable[[float], DeployError],
) -> T:
    """Poll `check` until it answers (not None), saying what is awaited now and every minute."""
    started = time.monotonic()
    noted: float | None = None
    while True:
        found = check()
        if found is not None:
            return found
        waited = time.monotonic() - started
        if waited > timeout:
            raise timed_out(waited)
        if noted is None or time.monotonic() - noted >= NOTE_EVERY_SECONDS:
            run.note(component, f"{waiting} ({waited:.0f}s; usually a few minutes)")
            noted = time.monotonic()
        run.sleep()


def undo_ignoring(missing: tuple[str, ...], action: Callable[[], Any]) -> Callable[[], None]:
    """An undo that treats "already gone" as done, so rollback can run twice safely."""
    from deployer.errors import AwsError

    def undo() -> None:
        try:
            action()
        except AwsError as error:
            if error.code not in missing:
                raise

    return undo
