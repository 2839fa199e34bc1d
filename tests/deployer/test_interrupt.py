"""Real signals at random points of a real `nnote-deploy up` against the moto server.

Ctrl-C (SIGINT) must roll back what the run made and say so; kill -9 (SIGKILL) leaves work
behind with no journal, so the next `up` must find it by its tags, take over the dead run's
lock once its lease runs out, and converge; `down` must then leave nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
import requests

from deployer import inventory
from deployer.errors import ExitCode
from tests.deployer.conftest import cli_command, cli_env, make_run
from tests.deployer.faults import bystanders, snapshot

LEASE = {"NNOTE_DEPLOY_LOCK_LEASE_SECONDS": "2"}
POINTS = int(os.environ.get("NNOTE_RELIABILITY_POINTS", "3"))
SEED = int(os.environ.get("NNOTE_RELIABILITY_SEED", "20261124"))


def reset(aws_env: dict[str, str]) -> None:
    requests.post(f"{aws_env['AWS_ENDPOINT_URL']}/moto-api/reset", timeout=10)


def up_process(aws_env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command("up", "--yes"),
        env=cli_env(aws_env, LEASE),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def random_points(aws_env: dict[str, str], salt: int) -> list[float]:
    """Seconds into an `up` at which to strike, spread over one timed full run."""
    started = time.monotonic()
    assert up_process(aws_env).wait(timeout=300) == 0
    duration = time.monotonic() - started
    rng = random.Random(SEED + salt)
    return sorted(rng.uniform(0.3, duration * 0.95) for _ in range(POINTS))


def strike(aws_env: dict[str, str], delay: float, sig: signal.Signals) -> tuple[int, str]:
    process = up_process(aws_env)
    time.sleep(delay)
    process.send_signal(sig)
    out, _ = process.communicate(timeout=300)
    return process.returncode, out


def test_ctrl_c_at_random_points_rolls_back_and_says_so(aws_env: dict[str, str], cli) -> None:  # type: ignore[no-untyped-def]
    points = random_points(aws_env, salt=1)
    struck = 0
    for delay in points:
        reset(aws_env)
        bystanders()
        before = snapshot()
        code, out = strike(aws_env, delay, signal.SIGINT)
        if code == 0:
            continue  # the run finished first: nothing to check but that it worked
        struck += 1
        where = f"SIGINT at {delay:.2f}s:\n{out}"
        assert code in (ExitCode.INTERRUPTED, ExitCode.ROLLED_BACK), where
        assert "Traceback" not in out, where
        if "account " in out:  # the CLI had started (not still importing): it says why
            assert "interrupted" in out, where
        if code == ExitCode.ROLLED_BACK:
            assert "rolled back" in out and "could NOT undo" not in out, where
        assert snapshot() == before, where
        assert inventory.leftovers(make_run().aws, make_run().owner) == [], where
        assert cli("up", "--yes").code == 0, where
    assert struck >= 1, f"every strike came after the run finished: {points}"


def test_kill_9_at_random_points_then_up_resumes_and_down_cleans(  # type: ignore[no-untyped-def]
    aws_env: dict[str, str], cli
) -> None:
    points = random_points(aws_env, salt=2)
    for delay in points:
        reset(aws_env)
        bystanders()
        before = snapshot()
        _, out = strike(aws_env, delay, signal.SIGKILL)
        where = f"SIGKILL at {delay:.2f}s:\n{out}"
        resumed = cli("up", "--yes", "--lock-wait", "30", env=LEASE)
        assert resumed.code == 0, where + resumed.text
        assert "no changes" in cli("plan").text, where
        down = cli("down", "--yes")
        assert down.code == 0, where + down.text
        assert snapshot() == before, where


@pytest.mark.parametrize("wait", [False, True])
def test_two_ups_at_once_one_proceeds(aws_env: dict[str, str], cli, wait: bool) -> None:  # type: ignore[no-untyped-def]
    extra = ["--lock-wait", "120"] if wait else []
    first, second = (
        subprocess.Popen(
            cli_command("up", "--yes", *extra),
            env=cli_env(aws_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    )
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    if wait:
        assert codes == [0, 0], outputs
        assert any("re-planned after waiting: 0 change(s) left" in out for out in outputs)
    else:
        assert codes == [0, ExitCode.LOCKED], outputs
        assert any("is locked by run" in out and " since " in out for out in outputs)
    assert "no changes" in cli("plan").text
