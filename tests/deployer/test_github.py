"""The GitHub Actions side: workflows pass actionlint; up writes outputs and a summary."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.deployer.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_pass_actionlint() -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    done = subprocess.run([actionlint, *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {w.name for w in WORKFLOWS} == {"ci.yml", "deploy.yml", "destroy.yml"}


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


def test_destroy_needs_the_typed_environment_name() -> None:
    destroy = yaml.safe_load((ROOT / ".github/workflows/destroy.yml").read_text())
    assert destroy["jobs"]["destroy"]["if"] == "inputs.confirm == inputs.environment"
    assert list(destroy[True]) == ["workflow_dispatch"]  # YAML reads `on` as True


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
    assert "**Result:** converged" in table and "| network | create | ec2:vpc |" in table
    assert "| database |" in table and "AWS API calls:" in table
    import boto3

    vpc = boto3.client("ec2").describe_vpcs(
        Filters=[{"Name": "tag:nnote:run", "Values": ["gh-777-1"]}]
    )["Vpcs"]
    assert len(vpc) == 1, "resources lead back to the workflow run"
