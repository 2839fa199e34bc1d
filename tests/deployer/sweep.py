"""The fault sweep: fail each mutating call of a command in turn, then check what is left.

Shared by tests/deployer/test_sweep.py (which asserts) and bench/reliability.py (which
prints the table). Each case runs against a freshly reset moto server holding bystanders:
another environment's, another app's and untagged look-alike resources.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from deployer import inventory, pipeline
from deployer.errors import DeployError
from deployer.steps.base import Run, SilentProgress
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, bootstrapped, make_run
from tests.deployer.faults import (
    FAULT_KINDS,
    SERVICE_ROLE_PATH,
    FailNth,
    bystanders,
    mutating_calls,
    snapshot,
)
from tests.support.realism import RealisticMotoServer

COMMANDS = ("up", "down", "redeploy")
# The deploy.toml swept: the repository's, unless a test sweeps other settings (a domain).
CONFIG: Path | None = None


def _run(**kwargs: Any) -> Run:
    return make_run(config=CONFIG, **kwargs)


class QuietEvents(SilentProgress):
    def step_started(self, step: str) -> None: ...
    def step_finished(self, step: str, seconds: float) -> None: ...
    def step_failed(self, step: str, seconds: float, message: str) -> None: ...
    def undoing(self, entry: object) -> None: ...


@dataclass
class SweepResult:
    command: str
    kind: str
    swept: int = 0
    survived: int = 0
    leaked: int = 0
    failures: list[str] = field(default_factory=list)


def deploy(run: Run) -> Any:
    return pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))


def down(run: Run) -> pipeline.DownResult:
    return pipeline.down(run, QuietEvents())


def redeploy(run: Run) -> str:
    return pipeline.redeploy(run, QuietEvents())


RUNNERS: dict[str, Callable[[Run], Any]] = {"up": deploy, "redeploy": redeploy, "down": down}


def reset(endpoint: str) -> dict[str, list[str]]:
    """An emulated account holding only the bystanders; returns its snapshot."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    bootstrapped()
    bystanders()
    return snapshot()


def forget_service_linked_role() -> None:
    iam = boto3.client("iam", region_name=REGION)
    roles = iam.list_roles(PathPrefix=SERVICE_ROLE_PATH)["Roles"]
    for role in roles:
        iam.delete_role(RoleName=role["RoleName"])


def owned_now() -> list[tuple[str, str]]:
    """What the tag audit finds, by kind: a deployed env must always show the same list."""
    run = _run()
    return sorted((r.component, r.type) for r in inventory.leftovers(run.aws, run.owner))


def _starting_state(command: str, endpoint: str) -> dict[str, list[str]]:
    """Bystanders only for `up`; a deployed env too for `down` and `redeploy`."""
    pristine = reset(endpoint)
    if command != "up":
        deploy(_run(run_id="setup"))
    return pristine


def probe_calls(command: str, endpoint: str) -> list[tuple[str, int]]:
    """The mutating calls one clean run of `command` makes: the cases to sweep."""
    _starting_state(command, endpoint)
    probe = _run(run_id="probe")
    RUNNERS[command](probe)
    return mutating_calls(probe.aws.log.calls)


def calls_sample(command: str, endpoint: str, every: int) -> list[tuple[str, int]]:
    return probe_calls(command, endpoint)[::every]


def sweep(command: str, kind: str, endpoint: str) -> SweepResult:
    return run_cases(command, kind, endpoint, probe_calls(command, endpoint))


# A failed `up` must leave the account exactly as it was (the full describe snapshot, which
# covers every kind of resource the deployer makes): the next case then starts from it. Every
# CONFIRM_EVERY-th case also runs the converging `up` and the `down` that prove such a state
# deploys and deletes cleanly (each one, for `down` and `redeploy`, which need it anyway).
CONFIRM_EVERY = 10


def run_cases(command: str, kind: str, endpoint: str, cases: list[tuple[str, int]]) -> SweepResult:
    """Fail each case's call in turn. Cases run back to back, each starting from the state
    the previous one's recovery left (which is checked, and reset if wrong)."""
    pristine = _starting_state(command, endpoint)
    deployed = owned_now() if command != "up" else []
    result = SweepResult(command, kind)
    for index, (operation, nth) in enumerate(cases):
        result.swept += 1
        confirm = index % CONFIRM_EVERY == 0 or index == len(cases) - 1
        problems, leaked = one_case(command, kind, operation, nth, pristine, deployed, confirm)
        result.leaked += leaked
        if problems:
            result.failures.append(f"{operation}#{nth}: {'; '.join(problems)}")
            pristine = _starting_state(command, endpoint)
        else:
            result.survived += 1
    if command != "up":
        _final_down(pristine, result)
    return result


def one_case(
    command: str,
    kind: str,
    operation: str,
    nth: int,
    pristine: dict[str, list[str]],
    deployed: list[tuple[str, str]],
    confirm: bool = True,
) -> tuple[list[str], int]:
    """Fail one call; return what went wrong and how many resources leaked."""
    if command == "up":
        forget_service_linked_role()  # account-wide, made by the first up: make it again
    before = snapshot()
    fault = FailNth(operation, nth, kind=kind)
    run = _run(hooks=fault.hooks(), run_id=f"sweep-{operation}-{nth}")
    problems = _fails_cleanly(command, run)
    if not fault.fired:
        problems.append("the fault never fired")
    problems += _denials()
    if command != "down" and snapshot() != before:
        problems.append(f"state differs from before the run: {differences(before, snapshot())}")
    leaked = len(inventory.leftovers(run.aws, run.owner)) if command == "up" else 0
    if command == "up" and not confirm and not problems and not leaked:
        return problems, leaked  # exactly as before: the next case starts from here
    deploy(_run(run_id="converge"))  # a following up converges...
    if pipeline.plan(_run(), pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)):
        problems.append("a following up did not converge")
    if command == "up":  # ...and a following down leaves exactly the bystanders
        result = down(_run(run_id="cleanup"))
        if result.leftovers or snapshot() != pristine:
            left = result.leftovers or differences(pristine, snapshot())
            problems.append(f"a following down left {left}")
    elif owned_now() != deployed:
        now = Counter(owned_now())
        extra, missing = now - Counter(deployed), Counter(deployed) - now
        leaked = sum(extra.values())
        problems.append(f"converged env differs from a fresh one: +{extra} -{missing}")
    return problems, leaked


def _denials() -> list[str]:
    """In a worker, what the IAM policy refused since the last look (the main process's
    aws_env fixture checks its own server)."""
    if _server is None or not _server.layer.denials:
        return []
    denied = list(_server.layer.denials)
    _server.layer.denials.clear()
    return [f"docs/iam-policy.json denied {denied}"]


def _fails_cleanly(command: str, run: Run) -> list[str]:
    """The faulted command must fail with our error (never a traceback), fully rolled back."""
    try:
        RUNNERS[command](run)
    except DeployError as error:
        report = getattr(error, "rollback", None)
        if report is not None and report.failed:
            return [f"rollback incomplete: {report.failed}"]
        return []
    except Exception as error:  # anything else would reach the user as a traceback
        return [f"escaped as {type(error).__name__}: {error}"]
    return ["the command succeeded despite the fault"]


def _final_down(pristine: dict[str, list[str]], result: SweepResult) -> None:
    cleanup = down(_run(run_id="cleanup"))
    if cleanup.leftovers or snapshot() != pristine:
        left = cleanup.leftovers or differences(pristine, snapshot())
        result.failures.append(f"final down left {left}")
        result.leaked += len(cleanup.leftovers)


def differences(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """What changed, one short line per kind of resource."""
    changed = []
    for key in sorted(before.keys() | after.keys()):
        gone = set(before.get(key, [])) - set(after.get(key, []))
        new = set(after.get(key, [])) - set(before.get(key, []))
        if gone or new:
            changed.append(f"{key}: -{[g[:300] for g in gone]} +{[n[:300] for n in new]}")
    return changed


def table(results: list[SweepResult]) -> str:
    lines = [f"{'command':<9} {'fault':<19} {'swept':>5} {'survived':>8} {'leaked':>6}"]
    for r in results:
        lines.append(f"{r.command:<9} {r.kind:<19} {r.swept:>5} {r.survived:>8} {r.leaked:>6}")
    return "\n".join(lines)


# -- running sweeps in parallel, each worker process with its own moto server ----------------


_server: RealisticMotoServer | None = None  # a worker process's own emulator


def _start_own_moto() -> None:
    """Worker initializer: an emulated AWS private to this process, used by every call."""
    os.environ.update(
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        MOTO_ECS_SERVICE_RUNNING="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    os.environ.pop("AWS_PROFILE", None)
    global _server
    _server = RealisticMotoServer()
    os.environ["AWS_ENDPOINT_URL"] = _server.start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _sweep_here(command: str, kind: str) -> SweepResult:
    """In a worker: a sweep that cannot even start comes back as a failure, not as an
    exception the process pool could not carry back."""
    try:
        return sweep(command, kind, os.environ["AWS_ENDPOINT_URL"])
    except Exception as error:
        message = error.message if isinstance(error, DeployError) else repr(error)
        return SweepResult(command, kind, failures=[f"the sweep could not run: {message}"])


def sweep_all(
    commands: tuple[str, ...] = COMMANDS,
    kinds: tuple[str, ...] = FAULT_KINDS,
    workers: int | None = None,
) -> list[SweepResult]:
    """Every (command, fault kind) sweep, spread over worker processes (one per core)."""
    pairs = [(c, k) for c in commands for k in kinds]
    pairs.sort(key=lambda pair: COMMANDS.index(pair[0]))  # `up` (the longest) first
    context = multiprocessing.get_context("spawn")  # no fork of a process running threads
    with ProcessPoolExecutor(
        max_workers=workers or os.cpu_count() or 2,
        mp_context=context,
        initializer=_start_own_moto,
    ) as pool:
        return list(pool.map(_sweep_here, *zip(*pairs, strict=True)))
