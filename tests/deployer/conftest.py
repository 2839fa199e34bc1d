"""A moto server on 127.0.0.1 for the whole run (reset per test), behind the realism layer
(tests/support/realism.py), and a runner for the CLI.

The deployer (in-process runs and the CLI alike) calls with its own access key, so the
realism layer holds it to AWS's rules and the IAM policy; the tests' own boto3 calls use the
key `testing` and see the emulator as it is."""

from __future__ import annotations

import functools
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from deployer.aws import Aws, EventHooks
from deployer.config import load
from deployer.inventory import Owner
from deployer.steps.base import Run
from tests.support.realism import DEPLOYER_KEY, Realism, RealisticMotoServer, bootstrap_account

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "nnote-deploy"
REGION = "eu-west-1"
PREBUILT_IMAGE = "127.0.0.1:5000/nnote-staging@sha256:" + "0" * 64


@pytest.fixture(scope="session")
def moto_server() -> Iterator[RealisticMotoServer]:
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "1"
    server = RealisticMotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: RealisticMotoServer) -> str:
    return moto_server.layer.url


@pytest.fixture
def realism(moto_server: RealisticMotoServer) -> Realism:
    return moto_server.layer


@pytest.fixture
def aws_env(
    moto_endpoint: str, realism: Realism, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Fresh emulated AWS for each test; credentials and endpoint in this process's env too.

    Fails the test if the IAM policy denied any call the deployer made."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "NNOTE_DEPLOY_POLL_SECONDS": "0.05",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("GITHUB_RUN_ID", raising=False)
    bootstrapped()
    yield env
    assert realism.denials == [], f"docs/iam-policy.json denied: {realism.denials}"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli_command(*args: str, config: Path | None = None) -> list[str]:
    command = [str(CLI), *args]
    if args and args[0] in (
        "up",
        "plan",
        "status",
        "down",
        "unlock",
        "verify",
        "releases",
        "rollback",
    ):
        command += ["--config", str(config or ROOT / "deploy.toml")]
    if args and args[0] in ("up", "plan", "verify") and config is None:
        # Tests of the AWS resources deploy a prebuilt image; tests/deployer/test_image.py
        # passes its own checkout and builds for real.
        command += ["--image", PREBUILT_IMAGE]
    return command


def bootstrapped() -> None:
    """The account as `nnote-deploy bootstrap` leaves it (the boundary of task roles)."""
    bootstrap_account(os.environ["AWS_ENDPOINT_URL"])


# The deployer's credentials: the realism layer holds calls made with them to AWS's rules.
DEPLOYER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": DEPLOYER_KEY, "AWS_SECRET_ACCESS_KEY": DEPLOYER_KEY}


def cli_env(aws_env: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **aws_env, **DEPLOYER_CREDENTIALS, "COLUMNS": "120", **(extra or {})}


@pytest.fixture
def cli(aws_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Run the installed nnote-deploy as a user would, with a fixed terminal width."""

    def run(*args: str, env: dict[str, str] | None = None, config: Path | None = None) -> CliResult:
        done = subprocess.run(
            cli_command(*args, config=config),
            env=cli_env(aws_env, env),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


_run_numbers = itertools.count(1)


@functools.cache
def _models() -> Any:
    """One botocore session for every test run: service models are loaded once. It signs
    with the deployer's key, as the CLI does."""
    import botocore.session

    session = botocore.session.get_session()
    session.set_credentials(DEPLOYER_KEY, DEPLOYER_KEY)
    return session


def make_run(
    env: str = "staging",
    hooks: EventHooks | None = None,
    run_id: str | None = None,
    max_attempts: int | None = 2,
    region: str = REGION,
    config: Path | None = None,
) -> Run:
    """A run as the CLI makes one; each gets its own run id, as each real run does; `config`
    is another deploy.toml than the repository's.

    Two attempts a call keep failure tests fast; `max_attempts=None` is the CLI's default."""
    settings = load(config or ROOT / "deploy.toml", env, region)
    run_id = run_id or f"test-run-{next(_run_numbers)}"
    aws = Aws(region=region, hooks=hooks, max_attempts=max_attempts, botocore_session=_models())
    return Run(
        aws=aws,
        config=settings,
        owner=Owner(settings.app, env, run_id),
        poll_seconds=0.01,
        dependency_budget_seconds=5.0,  # the realism layer lags by a few calls
    )


def ec2() -> object:
    return boto3.client("ec2", region_name=REGION)


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they deselect
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The sample sweep (every eighth call, client errors) is a strict subset of the full
    sweep: when a session selects both (CI), the sample adds nothing but ~100 s, so it runs
    only where the full sweep does not (`-m 'not reliability'`)."""
    selected = {item.name for item in items}
    if "test_full_fault_sweep_survives_everything" not in selected:
        return
    sample = [i for i in items if i.name == "test_a_sample_of_each_command_survives_a_client_error"]
    if sample:
        config.hook.pytest_deselected(items=sample)
        items[:] = [i for i in items if i not in sample]
