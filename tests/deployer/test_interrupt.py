"""Real signals at random points of a real `nnote-deploy up` against the moto server.

Ctrl-C (SIGINT) must roll back what the run made and say so; kill -9 (SIGKILL) leaves work
behind with no journal, so the next `up` must find it by its tags, take over the dead run's
lock once its lease runs out, and converge; `down` must then leave nothing.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time

import pytest
import requests

from deployer import inventory
from deployer.errors import ExitCode
from tests.deployer.conftest import bootstrapped, cli_command, cli_env, make_run
from tests.deployer.faults import bystanders, snapshot
from tests.reporting import report

LEASE = {"NNOTE_DEPLOY_LOCK_LEASE_SECONDS": "2"}
POINTS = int(os.environ.get("NNOTE_RELIABILITY_POINTS", "3"))
SEED = int(os.environ.get("NNOTE_RELIABILITY_SEED", "20261124"))


def reset(aws_env: dict[str, str]) -> None:
    """A fresh account, bootstrapped (the boundary of task roles exists), as aws_env makes."""
    requests.post(f"{aws_env['AWS_ENDPOINT_URL']}/moto-api/reset", timeout=10)
    bootstrapped()


def up_process(
    aws_env: dict[str, str], *args: str, env: dict[str, str] = LEASE
) -> subprocess.Popen[str]:
    """`up --yes` as a real process; by default with a short lock lease, so that the next
    run can take over the lock of one that was killed."""
    return subprocess.Popen(
        cli_command("up", "--yes", *args),
        env=cli_env(aws_env, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def random_points(aws_env: dict[str, str], salt: int) -> list[int]:
    """Points to strike at, as a number of progress lines printed (plain output prints one
    per step start and end), spread over one full run's lines."""
    process = up_process(aws_env)
    output = process.communicate(timeout=300)[0].splitlines()
    assert process.returncode == 0
    # Strike while the run works: up to its call count, printed once every step is done (what
    # follows is the report of finished work, which an interrupt can no longer undo).
    lines = next(i for i, line in enumerate(output) if "AWS API calls:" in line)
    rng = random.Random(SEED + salt)
    return sorted(rng.randint(1, max(2, lines - 1)) for _ in range(POINTS))


def strike(aws_env: dict[str, str], after_lines: int, sig: signal.Signals) -> tuple[int, str]:
    process = up_process(aws_env)
    assert process.stdout is not None
    seen = [process.stdout.readline() for _ in range(after_lines)]
    process.send_signal(sig)
    rest, _ = process.communicate(timeout=300)
    return process.returncode, "".join(seen) + rest


def test_ctrl_c_at_random_points_rolls_back_and_says_so(aws_env: dict[str, str], cli) -> None:  # type: ignore[no-untyped-def]
    points = random_points(aws_env, salt=1)
    struck = 0
    outcomes = []
    for delay in points:
        reset(aws_env)
        bystanders()
        before = snapshot()
        code, out = strike(aws_env, delay, signal.SIGINT)
        outcomes.append(f"line {delay}→exit {code}")
        if code == 0:
            continue  # the last lines: the run finished first
        struck += 1
        where = f"SIGINT after line {delay}:\n{out}"
        assert code in (ExitCode.INTERRUPTED, ExitCode.ROLLED_BACK), where
        assert "Traceback" not in out, where
        assert "interrupted" in out, where
        if code == ExitCode.ROLLED_BACK:
            assert "rolled back" in out and "could NOT undo" not in out, where
        assert snapshot() == before, where
        assert inventory.leftovers(make_run().aws, make_run().owner) == [], where
        assert cli("up", "--yes").code == 0, where
    assert struck >= 1, f"every strike came after the run finished: {points}"
    report("SIGINT at random points of `up` (then state == before, no leaks)", ", ".join(outcomes))


def test_kill_9_at_random_points_then_up_resumes_and_down_cleans(  # type: ignore[no-untyped-def]
    aws_env: dict[str, str], cli
) -> None:
    points = random_points(aws_env, salt=2)
    resumed_at: list[str] = []
    for delay in points:
        reset(aws_env)
        bystanders()
        before = snapshot()
        _, out = strike(aws_env, delay, signal.SIGKILL)
        where = f"SIGKILL after line {delay}:\n{out}"
        resumed = cli("up", "--yes", "--lock-wait", "30", env=LEASE)
        assert resumed.code == 0, where + resumed.text
        assert "no changes" in cli("plan").text, where
        down = cli("down", "--yes")
        assert down.code == 0, where + down.text
        assert snapshot() == before, where
        resumed_at.append(f"line {delay}")
    report(
        "SIGKILL at random points of `up` (then up resumes, plan empty, down leaves nothing)",
        ", ".join(resumed_at),
    )


@pytest.mark.parametrize("wait", [False, True])
def test_two_ups_at_once_one_proceeds(aws_env: dict[str, str], cli, wait: bool) -> None:  # type: ignore[no-untyped-def]
    """The first `up` is frozen (SIGSTOP) while it holds the lock, so the two surely overlap."""
    first = up_process(aws_env, env={})  # the default lease: frozen is not dead
    assert first.stdout is not None
    while "started" not in first.stdout.readline():  # steps run only under the lock
        pass
    first.send_signal(signal.SIGSTOP)
    try:
        second = up_process(aws_env, *(["--lock-wait", "120"] if wait else []), env={})
        if wait:
            time.sleep(3)  # the second is waiting on the lock by now
        else:
            out = second.communicate(timeout=120)[0]
            assert second.returncode == ExitCode.LOCKED, out
            assert re.search(r"is locked by run \S+ \(.+\) since \d{4}-", out), out
            assert "--lock-wait" in out and "Traceback" not in out
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0
    if wait:
        out = second.communicate(timeout=300)[0]
        assert second.returncode == 0, out
        assert "re-planned after waiting: 0 change(s) left" in out
    assert "no changes" in cli("plan").text
