"""nnote-deploy budgets: API calls of a no-change `up` and of `status`, and `--help` start-up.

    uv run python bench/deploy_budget.py [--runs 7]

Runs the installed CLI against a moto server on 127.0.0.1. Call counts come from the CLI's
own botocore hook ("AWS API calls: N (M mutating)"). Start-up is the median wall time of
`nnote-deploy --help` and of each command's `--help` over --runs runs, beside `python -c pass`
measured in the same run. Targets: no-change up <= 26 calls and 0 mutating; status <= 26
calls; every --help < 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "nnote-deploy")
COMMANDS = (
    "up",
    "plan",
    "verify",
    "status",
    "down",
    "redeploy",
    "releases",
    "rollback",
    "logs",
    "unlock",
    "bootstrap",
)
sys.path.insert(0, str(ROOT))  # tests.support.realism: the emulator the tests use


def wall(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def calls(args: list[str], env: dict[str, str]) -> tuple[int, int]:
    done = subprocess.run(
        [CLI, *args, "--config", str(ROOT / "deploy.toml")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"AWS API calls: (\d+) \((\d+) mutating\)", done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    return int(match.group(1)), int(match.group(2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    # The emulator as the tests see it: AWS's rules that moto skips, and the IAM policy.
    from tests.support.realism import RealisticMotoServer, bootstrap_account

    # Services report their task running (the rollout completes), managed policies exist.
    os.environ.update(MOTO_ECS_SERVICE_RUNNING="1", MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    server = RealisticMotoServer()
    endpoint = server.start()
    bootstrap_account(endpoint)  # as `nnote-deploy bootstrap` leaves an account
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "b",
        "AWS_SECRET_ACCESS_KEY": "b",
        "NNOTE_DEPLOY_POLL_SECONDS": "0.05",
    }
    try:
        # A prebuilt image: the budget is AWS's calls (a build adds one registry lookup).
        image = ["--image", "127.0.0.1:5000/nnote-staging@sha256:" + "0" * 64]
        fresh = calls(["up", "--yes", *image], env)
        converged = calls(["up", "--yes", *image], env)
        status = calls(["status"], env)
        plan = calls(["plan", *image], env)
        calls(["down", "--yes"], env)
    finally:
        server.stop()
    python_time = wall([sys.executable, "-c", "pass"], args.runs)
    helps = {
        " ".join(command): wall([CLI, *command, "--help"], args.runs)
        for command in ([], *([name] for name in COMMANDS))
    }
    print(f"up from nothing:  {fresh[0]} calls ({fresh[1]} mutating)")
    print(f"up, no changes:   {converged[0]} calls ({converged[1]} mutating)  (target <= 26, none)")
    print(f"status:           {status[0]} calls ({status[1]} mutating)  target <= 26")
    print(f"plan:             {plan[0]} calls ({plan[1]} mutating)")
    print(
        f"--help, median of {args.runs} runs each (target < 300 ms; bare python "
        f"{python_time * 1000:.0f} ms):"
    )
    for command, seconds in helps.items():
        print(
            f"  nnote-deploy {command + ' ' if command else ''}--help: {seconds * 1000:.0f} ms "
            f"({seconds / python_time:.1f}x python)"
        )
    slowest = max(helps, key=helps.__getitem__)
    print(f"slowest --help: {slowest or '(top level)'} {helps[slowest] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
