"""The GitHub Actions side: workflows pass actionlint, deploy only what CI passed, install
only what deploying needs, pin every action; up writes outputs and a summary."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.deployer.conftest import ROOT
from tests.support.net import wait_until

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACCEPTANCE = ROOT / ".github/workflows/aws-acceptance.yml"
DEPLOY = ROOT / ".github/workflows/deploy.yml"
DEPENDABOT = ROOT / ".github/dependabot.yml"


def load(path: Path) -> dict[Any, Any]:
    """A workflow as YAML reads it (its `on:` key is True)."""
    workflow: dict[Any, Any] = yaml.safe_load(path.read_text())
    return workflow


def test_workflows_pass_actionlint() -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    done = subprocess.run([actionlint, *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {w.name for w in WORKFLOWS} == {
        "ci.yml",
        "deploy.yml",
        "destroy.yml",
        "aws-acceptance.yml",
        "reliability.yml",
        "preview.yml",
    }


def test_the_checks_every_push_skips_run_nightly() -> None:
    """The suite leaves the full sweep and the storm out (its time budget); they must still run
    somewhere: the nightly workflow runs scripts/reliability, which selects them."""
    nightly = load(ROOT / ".github/workflows/reliability.yml")
    assert nightly[True]["schedule"], "a scheduled run"
    steps = nightly["jobs"]["reliability"]["steps"]
    assert any(step.get("run") == "scripts/reliability" for step in steps)
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", ""]
        + [str(ROOT / "tests/deployer" / name) for name in ("test_sweep.py", "test_storm.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    assert "test_full_fault_sweep_survives_everything" in collected
    assert "test_up_and_down_converge_through_a_throttling_storm" in collected
    assert '-m ""' in (ROOT / "scripts/reliability").read_text()


def test_deploy_workflow_uses_oidc_and_one_run_per_environment() -> None:
    deploy = load(DEPLOY)
    assert deploy["permissions"]["id-token"] == "write"
    # On the job: a run for a failed CI run (its jobs skipped) must not join the group, where it
    # would cancel a pending deploy of a good commit.
    assert "concurrency" not in deploy
    assert deploy["jobs"]["deploy"]["concurrency"] == {
        "group": "deploy-${{ inputs.environment || 'staging' }}",
        "cancel-in-progress": False,
    }
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


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` script in the shell GitHub gives it."""
    assert "${{" not in script, "values reach scripts through env, never spliced in"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
    )


def run_step(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` step of the acceptance job; it must succeed."""
    done = bash(next(s for s in acceptance_job()["steps"] if s.get("name") == name)["run"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


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


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """A GitHub expression made of dotted names, 'strings', ==, &&, || and parentheses."""

    def value(name: re.Match[str]) -> str:
        found: Any = context
        for part in name[0].split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return repr(found)

    python = re.sub(
        r"'[^']*'|([A-Za-z_]\w*(?:\.[\w-]+)+)",
        lambda m: m[0] if m[0][0] == "'" else value(m),
        expression,
    )
    return eval(python.replace("&&", " and ").replace("||", " or "))


def ci_run(**changes: Any) -> dict[str, Any]:
    """The context of a deploy run started by ci.yml's success on a push to main."""
    run = {
        "conclusion": "success",
        "event": "push",
        "head_branch": "main",
        "head_sha": "a" * 40,
        "head_repository": {"full_name": "owner/nnote"},
    }
    return {
        "github": {
            "event_name": "workflow_run",
            "repository": "owner/nnote",
            "event": {"workflow_run": {**run, **changes}},
        }
    }


def test_deploy_runs_after_ci_passed_for_the_same_commit() -> None:
    deploy = load(DEPLOY)
    assert deploy[True]["workflow_run"] == {  # YAML reads `on` as True
        "workflows": [load(ROOT / ".github/workflows/ci.yml")["name"]],
        "types": ["completed"],
        "branches": ["main"],
    }
    assert set(deploy[True]) == {"workflow_run", "workflow_dispatch"}, "no deploy on a bare push"
    assert deploy[True]["workflow_dispatch"]["inputs"]["environment"]["options"] == [
        "staging",
        "prod",
    ]
    gate, job = deploy["jobs"]["commit"], deploy["jobs"]["deploy"]
    runs = {
        "CI passed on a push to main": ci_run(),
        "CI failed": ci_run(conclusion="failure"),
        "CI cancelled by a newer push": ci_run(conclusion="cancelled"),
        "a fork's pull request from its main": ci_run(
            event="pull_request", head_repository={"full_name": "someone/nnote"}
        ),
        "a pull request from this repository's main": ci_run(event="pull_request"),
        "manual": {"github": {"event_name": "workflow_dispatch", "repository": "owner/nnote"}},
    }
    assert {name for name, context in runs.items() if evaluate(gate["if"], context)} == {
        "CI passed on a push to main",
        "manual",
    }
    # The commit is CI's own (a workflow_run's github.sha is main's newest), or the dispatched one.
    step = next(s for s in gate["steps"] if s.get("id") == "commit")
    assert step["env"]["SHA"] == "${{ github.event.workflow_run.head_sha || github.sha }}"
    assert gate["outputs"]["sha"] == "${{ steps.commit.outputs.sha }}"
    assert gate["permissions"] == {"actions": "read"}, "the gate never gets an AWS token"
    assert job["needs"] == "commit" and "if" not in job
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ needs.commit.outputs.sha }}"
    assert job["environment"]["name"] == "${{ inputs.environment || 'staging' }}"


def commit_step(
    tmp_path: Path, event: str, gh: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """deploy.yml's gate step with a stand-in `gh` (its script is `gh`'s body); returns the
    run and what the step wrote to $GITHUB_OUTPUT."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    fake = tmp_path / "bin" / "gh"
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/gh-calls"\n{gh}\n')
    fake.chmod(0o755)
    output = tmp_path / "output"
    output.write_text("")
    script = next(s for s in load(DEPLOY)["jobs"]["commit"]["steps"] if s.get("id") == "commit")
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_OUTPUT": str(output),
        "SHA": "c" * 40,
    }
    return bash(script["run"], env), output.read_text()


def test_a_manual_deploy_needs_a_successful_ci_run_on_its_commit(tmp_path: Path) -> None:
    done, output = commit_step(tmp_path, "workflow_dispatch", "echo 0")
    assert done.returncode == 1 and output == ""
    assert f"::error::CI has not passed for {'c' * 40}" in done.stdout
    assert (tmp_path / "gh-calls").read_text() == (
        f"run list --workflow ci.yml --commit {'c' * 40} --status success "
        "--json databaseId --jq length\n"
    )
    done, output = commit_step(tmp_path, "workflow_dispatch", "exit 4")  # GitHub's API failed
    assert done.returncode == 4 and output == ""
    done, output = commit_step(tmp_path, "workflow_dispatch", "echo 2")
    assert done.returncode == 0 and output == f"sha={'c' * 40}\n"


def test_a_deploy_after_ci_ships_its_commit_without_asking_again(tmp_path: Path) -> None:
    done, output = commit_step(tmp_path, "workflow_run", "exit 9")
    assert done.returncode == 0 and output == f"sha={'c' * 40}\n", done.stderr
    assert not (tmp_path / "gh-calls").exists(), "CI's success is the event itself"


# `owner/action[/path]@<40 hex> # vX.Y.Z`: Dependabot moves the SHA and the comment together.
PINNED = re.compile(
    r"\s*(?:- )?uses: (?P<action>[\w.-]+/[\w./-]+)"
    r"@(?P<sha>[0-9a-f]{40}) # (?P<version>v\d+\.\d+\.\d+)"
)


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in WORKFLOWS:
        jobs = load(path)["jobs"].values()
        uses = [
            u
            for job in jobs
            for u in [job.get("uses"), *(s.get("uses") for s in job.get("steps", []))]
        ]
        lines = [line for line in path.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
        assert len(lines) == len([u for u in uses if u]), f"{path.name}: one `uses:` a line"
        for line in lines:
            if line.split("uses:")[1].strip().startswith("./"):
                continue  # this repository's own action: pinned by the commit itself
            pinned = PINNED.fullmatch(line)
            assert pinned, f"{path.name}: {line.strip()!r} is not `@<commit SHA> # vX.Y.Z`"
            pins.setdefault(pinned["action"], set()).add((pinned["sha"], pinned["version"]))
    assert {"actions/checkout", "astral-sh/setup-uv"} <= set(pins)
    assert all(len(found) == 1 for found in pins.values()), f"one pin per action: {pins}"


def deployer_jobs() -> dict[str, dict[str, Any]]:
    """Every job that runs nnote-deploy, as `workflow.yml:job`."""
    return {
        f"{path.name}:{name}": job
        for path in WORKFLOWS
        for name, job in load(path)["jobs"].items()
        if any("nnote-deploy" in step.get("run", "") for step in job.get("steps", []))
    }


def test_deployer_jobs_install_the_deploy_extra_without_the_dev_group() -> None:
    jobs = deployer_jobs()
    assert set(jobs) == {
        "aws-acceptance.yml:acceptance",
        "deploy.yml:deploy",
        "destroy.yml:destroy",
        "preview.yml:up",
        "preview.yml:down",
        "preview.yml:gc",
    }
    for where, job in jobs.items():
        runs = [step.get("run", "") for step in job["steps"]]
        installs = [run for run in runs if re.search(r"\buv (sync|pip)\b|\bpip install\b", run)]
        # Stays right if the app's dependencies move to an `app` extra: only the deployer's.
        assert installs == ["uv sync --frozen --no-dev --extra deploy"], where
        assert not any(re.search(r"--all-(extras|groups)|--group|--dev\b", run) for run in runs)
        # `uv run` syncs the default groups (dev among them) unless told not to sync.
        assert job["env"]["UV_NO_SYNC"] == "1", where


def test_the_deploy_extra_without_the_dev_group_leaves_the_dev_tools_out() -> None:
    """What `uv sync --no-dev --extra deploy` installs, read from uv.lock (markers ignored, so a
    superset): the deployer's libraries, none of the tests' and linters'."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], []).append(package)
    project = next(p for p in lock["package"] if p["source"].get("editable") == ".")
    wanted = [*project.get("dependencies", []), *project["optional-dependencies"]["deploy"]]
    seen: set[tuple[str, str]] = set()  # (package, one of its extras or "" for itself)
    while wanted:
        dependency = wanted.pop()
        for extra in ["", *dependency.get("extra", [])]:
            if (dependency["name"], extra) in seen:
                continue
            seen.add((dependency["name"], extra))
            for package in versions[dependency["name"]]:
                optional = package.get("optional-dependencies", {})
                wanted += optional.get(extra, []) if extra else package.get("dependencies", [])
    installed = {name for name, _ in seen}
    assert {"boto3", "docker", "typer", "pydantic", "rich"} <= installed
    dev = {dependency["name"] for dependency in project["dev-dependencies"]["dev"]}
    assert {"pytest", "playwright", "moto", "mypy", "ruff", "hypothesis"} <= dev - installed


def test_deployer_jobs_cache_uv_keyed_on_the_lock() -> None:
    for where, job in deployer_jobs().items():
        steps = job["steps"]
        setup = [i for i, s in enumerate(steps) if "astral-sh/setup-uv@" in s.get("uses", "")]
        assert len(setup) == 1, where
        options = steps[setup[0]]["with"]
        # true, not the default "auto", which leaves the cache off for workflow_run events.
        assert options["enable-cache"] is True, where
        assert options["cache-dependency-glob"] == "uv.lock", where
        assert str(options["python-version"]) == "3.11", where
        install = next(i for i, s in enumerate(steps) if "uv sync" in s.get("run", ""))
        assert setup[0] < install, where
        # The image is built by the Docker SDK's classic builder (deployer/docker_engine.py):
        # buildx and its GitHub cache never see it, so neither is set up.
        assert not any("buildx" in s.get("uses", "") for s in steps), where


def test_dependabot_bumps_the_pinned_actions_and_the_lock() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    assert config["version"] == 2
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(updates) == {"github-actions", "uv"}, "pip would edit the export, not uv.lock"
    for update in updates.values():
        assert update["directory"] == "/"
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}
    assert updates["uv"]["exclude-paths"] == ["requirements.txt"], "an export of the lock"


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
