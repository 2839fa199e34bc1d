"""The GitHub Actions side: workflows pass actionlint; up writes outputs and a summary."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.deployer.conftest import ROOT
from tests.support.net import wait_until

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACCEPTANCE = ROOT / ".github/workflows/aws-acceptance.yml"


def test_workflows_pass_actionlint() -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    done = subprocess.run([actionlint, *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {w.name for w in WORKFLOWS} == {
        "ci.yml",
        "deploy.yml",
        "destroy.yml",
        "aws-acceptance.yml",
    }


def test_deploy_workflow_uses_oidc_and_one_run_per_environment() -> None:
    deploy = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    assert deploy["permissions"]["id-token"] == "write"
    assert "inputs.environment" in deploy["concurrency"]["group"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    steps = deploy["jobs"]["deploy"]["steps"]
    credentials = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
    assert "role-to-assume" in credentials["with"]
    assert "aws-access-key-id" not in credentials["with"], "no long-lived keys"
    assert any("nnote-deploy up --yes" in s.get("run", "") for s in steps)
    environment = deploy["jobs"]["deploy"]["environment"]
    up_step = next(s for s in steps if "nnote-deploy up" in s.get("run", ""))
    assert environment["url"] == f"${{{{ steps.{up_step['id']}.outputs.service_url }}}}"


def test_destroy_needs_the_typed_environment_name() -> None:
    destroy = yaml.safe_load((ROOT / ".github/workflows/destroy.yml").read_text())
    assert destroy["jobs"]["destroy"]["if"] == "inputs.confirm == inputs.environment"
    assert list(destroy[True]) == ["workflow_dispatch"]  # YAML reads `on` as True


def acceptance_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load(ACCEPTANCE.read_text())["jobs"]["acceptance"]
    return job


def life_cycle(steps: list[dict[str, Any]]) -> list[str]:
    """What each command step runs: the nnote-deploy command, or `smoke-check`."""
    found = (
        re.search(r"uv run --frozen nnote-deploy (\w+)|scripts/(smoke-check)", s.get("run", ""))
        for s in steps
    )
    return [match[1] or match[2] for match in found if match]


def test_acceptance_workflow_is_manual_with_oidc_and_one_run_per_environment() -> None:
    workflow = yaml.safe_load(ACCEPTANCE.read_text())
    assert list(workflow[True]) == ["workflow_dispatch"]  # never on a push
    inputs = workflow[True]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["default"] == "acceptance" and "region" in inputs
    assert inputs["keep-on-failure"]["type"] == "boolean"
    assert inputs["keep-on-failure"]["default"] is False
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    assert workflow["concurrency"] == {
        "group": "deploy-${{ inputs.environment }}",  # deploy.yml's and destroy.yml's group
        "cancel-in-progress": False,
    }
    job = acceptance_job()
    assert job["if"] == "startsWith(inputs.environment, 'acceptance')", "never staging or prod"
    credentials = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    assert credentials and all(
        set(c["with"]) == {"role-to-assume", "aws-region", "role-duration-seconds"}
        for c in credentials
    ), "OIDC role only: no long-lived keys"
    assert "secrets." not in ACCEPTANCE.read_text()


def test_acceptance_workflow_smoke_checks_after_up_and_after_redeploy() -> None:
    steps = acceptance_job()["steps"]
    assert life_cycle(steps) == [
        "verify",
        "up",
        "smoke-check",
        "redeploy",
        "smoke-check",
        "down",
        "down",
    ]
    up = next(s for s in steps if "nnote-deploy up" in s.get("run", ""))
    assert up["id"] == "up" and "--yes" in up["run"]
    checks = [s for s in steps if "scripts/smoke-check" in s.get("run", "")]
    assert all(c["env"]["SERVICE_URL"] == "${{ steps.up.outputs.service_url }}" for c in checks)


def test_acceptance_workflow_runs_down_on_failure_unless_kept() -> None:
    job = acceptance_job()
    downs = [s for s in job["steps"] if "nnote-deploy down --yes" in s.get("run", "")]
    assert [d.get("if") for d in downs] == [
        None,  # after the second smoke check, when all went well
        "(failure() || cancelled()) && !inputs.keep-on-failure",
    ]
    commands = [s for s in job["steps"] if life_cycle([s])]
    assert all(s.get("timeout-minutes") for s in commands), "every command step has a timeout"
    assert sum(s["timeout-minutes"] for s in commands) < job["timeout-minutes"], (
        "a hung step times out while the job still has time to clean up"
    )


def run_step(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` step of the acceptance job, in the shell GitHub gives it."""
    script = next(s for s in acceptance_job()["steps"] if s.get("name") == name)["run"]
    assert "${{" not in script, "values reach scripts through env, never spliced in"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_acceptance_steps_time_themselves_into_the_job_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {
        **os.environ,
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_PATH": str(tmp_path / "path"),
        "GITHUB_STEP_SUMMARY": str(summary),
        "NNOTE_ENV_NAME": "acceptance",
        "NNOTE_REGION": "eu-west-1",
        "JOB_STATUS": "failure",
        "KEPT": "true",
    }
    run_step("Set up the step timer", env)
    timed = Path((tmp_path / "path").read_text().strip()) / "timed"
    assert subprocess.run([timed, "verify", "true"], env=env).returncode == 0
    assert subprocess.run([timed, "up", "sh", "-c", "exit 6"], env=env).returncode == 6
    started = tmp_path / "started"
    hung = subprocess.Popen(
        [timed, "redeploy", "sh", "-c", f"touch {started}; sleep 30"],
        env=env,
        start_new_session=True,
    )
    wait_until(started.exists, 10, "the hung step")
    os.killpg(hung.pid, signal.SIGTERM)  # as the step's timeout does
    hung.wait(10)
    run_step("Step timings to the job summary", env)
    table = re.sub(r"\| \d+ \|", "| S |", summary.read_text())
    assert table.splitlines()[:8] == [
        "## Acceptance run: acceptance in eu-west-1: failure",
        "",
        "| step | seconds | result |",
        "| --- | ---: | --- |",
        "| verify | S | ok |",
        "| up | S | failed (exit 6) |",
        "| redeploy | S | stopped (timeout or cancel) |",
        "",
    ]
    assert "nnote-deploy down --env acceptance --region eu-west-1" in table, "kept: how to delete"
    steps = acceptance_job()["steps"]
    commands = [s["run"] for s in steps if life_cycle([s])]
    assert all(run.startswith("timed ") for run in commands), "every step is timed"
    assert steps[-1]["name"] == "Step timings to the job summary" and steps[-1]["if"] == "always()"


def test_ci_workflow_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".github/workflows/ci.yml").read_text()
    assert ".ci/run" in ci
    assert "exec scripts/test" in (ROOT / ".ci/run").read_text()


def test_up_writes_github_outputs_and_summary(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outputs, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_RUN_ID": "777",
    }
    result = cli("up", "--yes", env=env)
    assert result.code == 0, result.text
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert written["vpc_id"].startswith("vpc-")
    assert written["repository_uri"].endswith("/nnote-staging")
    table = summary.read_text()
    assert written["service_url"].startswith("https://")
    assert f"**Result:** converged: {written['service_url']}" in table
    assert "| network | create | ec2:vpc |" in table
    assert "| database |" in table and "AWS API calls:" in table
    import boto3

    vpc = boto3.client("ec2").describe_vpcs(
        Filters=[{"Name": "tag:nnote:run", "Values": ["gh-777-1"]}]
    )["Vpcs"]
    assert len(vpc) == 1, "resources lead back to the workflow run"
