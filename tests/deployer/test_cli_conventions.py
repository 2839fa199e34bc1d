"""The conventions users of gh, the AWS CLI and Terraform expect: exit codes, the two streams,
`--version`, completion, what `status` answers, what `down` asks, the GitHub step summaries."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from rich.console import Console

from deployer import github
from deployer.inventory import Resource
from deployer.render import Renderer
from deployer.resource_state import State, state_of
from tests.deployer.conftest import CLI, ROOT, cli_command, cli_env

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


def bare(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """nnote-deploy with no AWS anywhere: what is answered here was answered before any call."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        env={**clean, "AWS_CONFIG_FILE": "/nonexistent", **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


# -- usage errors, version, completion -----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("up", "--bogus"),
        ("plan", "--lock-wait", "1"),  # an option another command has
        ("up", "--lock-wait", "soon"),
        ("status", "--json=yes"),
        ("frobnicate",),
    ],
)
def test_a_usage_error_exits_3_with_one_error_and_a_hint_on_stderr(args: tuple[str, ...]) -> None:
    done = bare(*args)
    assert done.returncode == 3, done.stderr  # 2 means "changes pending" to plan's callers
    assert done.stdout == ""
    lines = [re.sub(TIMESTAMP, "", line) for line in done.stderr.splitlines()]
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: see `nnote-deploy")
    assert len(lines) == 2 and "Traceback" not in done.stderr


def test_no_arguments_print_help_and_succeed() -> None:
    done = bare()
    assert done.returncode == 0 and "Commands" in done.stdout and "up" in done.stdout


def test_version_is_the_package_version() -> None:
    done = bare("--version")
    assert done.returncode == 0
    assert done.stdout == f"nnote-deploy {version('nnote')}\n"


def test_shell_completion_is_offered() -> None:
    done = bare("--show-completion", "bash")
    assert done.returncode == 0, done.stderr
    assert "_NNOTE_DEPLOY_COMPLETE" in done.stdout
    assert "--install-completion" in bare("--help").stdout


def test_a_bad_since_is_answered_before_any_aws_call() -> None:
    # No credentials at all: reaching AWS would fail with "no AWS credentials found" instead.
    done = bare("logs", "--since", "5x")
    assert done.returncode == 3, done.stderr
    assert "5x" in done.stderr and "credentials" not in done.stderr


# -- what the two streams carry ---------------------------------------------------------


def test_stdout_carries_only_results_and_up_ends_with_the_url(cli) -> None:  # type: ignore[no-untyped-def]
    plan = cli("plan")
    assert plan.code == 0, plan.text
    *changes, counts = plan.out.splitlines()
    assert changes and all(
        re.fullmatch(r"[+~-] [a-z]+: (create|update|delete) .+", c) for c in changes
    )
    assert re.fullmatch(r"\d+ to create, \d+ to update, \d+ to delete", counts)
    assert "account 123456789012" in plan.err and "AWS API calls" in plan.err

    up = cli("up", "--yes")
    assert up.code == 0, up.text
    [url] = up.out.splitlines()  # `URL=$(nnote-deploy up --yes)` gets the URL and nothing else
    assert url.startswith("https://") and "up: done" in up.err

    status = cli("status")
    assert status.out.splitlines()[:2] == [
        f"url: {url}",
        "health: healthy (1/1 tasks running, revision 1)",
    ]
    assert "account" not in status.out, "the header is progress, on stderr"

    failed = cli("up", "--yes", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert failed.code != 0 and failed.out == "" and "error: " in failed.err


# -- the terminal table ------------------------------------------------------------------

LONG_ID = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/nnote-staging/"
    "0123456789abcdef"
)


def table_output(width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    resources = [
        Resource("network", "ec2:vpc", "vpc-0123456789abcdef0", "available"),
        Resource("loadbalancer", "elbv2:loadbalancer", LONG_ID, "active"),
    ]
    Renderer(console=Console(file=io.StringIO()), out=console).resources(resources)
    return out.getvalue()


def test_results_reach_a_pipe_exactly_as_given() -> None:
    out = io.StringIO()
    renderer = Renderer(console=Console(file=io.StringIO()), out=Console(file=out))
    renderer.result("12:00:01 web GET /notes :ok: [b]200[/b]\tlast")  # a log line, verbatim
    resources = [Resource("network", "ec2:vpc", "vpc-0abc", "available")]
    renderer.resources(resources)
    assert out.getvalue() == (
        "12:00:01 web GET /notes :ok: [b]200[/b]\tlast\n"
        "owned resources (1):\nnetwork\tec2:vpc\tvpc-0abc\tavailable\n"
    )  # tabs kept for `cut -f3`, no emoji, no markup, no timestamp


def test_github_outputs_leave_out_what_a_run_does_not_have() -> None:
    outputs = github.flat_outputs({"image": {"digest": None}, "network": {"vpc_id": "vpc-1"}})
    assert outputs == {"vpc_id": "vpc-1"}  # an image by tag has no digest: no "None"


def test_the_table_never_cuts_an_id_or_drops_a_row() -> None:
    wide = table_output(200)
    assert "┃" in wide and LONG_ID in wide and "vpc-0123456789abcdef0" in wide
    narrow = table_output(60)  # too narrow for a table: one line per resource, ids whole
    assert LONG_ID in narrow and "vpc-0123456789abcdef0" in narrow and "…" not in narrow


@pytest.mark.parametrize(
    ("kind", "detail", "state"),
    [
        ("ec2:vpc", "available", State.READY),
        ("rds:db", "backing-up", State.CHANGING),
        ("rds:db", "storage-full", State.FAILED),
        ("rds:db", "stopped", State.STOPPED),
        ("acm:certificate", "PENDING_VALIDATION", State.CHANGING),
        ("cloudfront:distribution", "InProgress", State.CHANGING),
        ("cloudfront:distribution", "disabled", State.STOPPED),
        ("elbv2:loadbalancer", "active_impaired", State.FAILED),
        ("ecs:service", "1/1 running, rollout COMPLETED", State.READY),
        ("ecs:service", "1/2 running, rollout IN_PROGRESS", State.CHANGING),
        ("ecs:service", "0/1 running, rollout FAILED", State.FAILED),
        ("ecs:service", "0/1 running, rollout COMPLETED", State.FAILED),  # as health says: down
        ("ecs:service", "0/0 running, rollout COMPLETED", State.STOPPED),
        ("ec2:internet-gateway", "detached", State.FAILED),
        ("rds:db", "delete-precheck", State.DELETING),
        ("rds:db", "storage-initialization", State.CHANGING),
        ("ecs:service", "ACTIVE", State.READY),  # as the leak audit sees it
        ("ecs:task-definition", "repo@sha256:ab", State.READY),
        ("ec2:vpc", "never-heard-of-it", State.UNKNOWN),
    ],
)
def test_each_service_s_words_map_to_one_state(kind: str, detail: str, state: State) -> None:
    assert state_of(kind, detail) is state


# -- down's question -----------------------------------------------------------------------


def down_on_a_terminal(aws_env: dict[str, str], answer: str, config: Path) -> tuple[int, str]:
    """`down` with a terminal on stdin, as a person runs it: what it printed, its exit code."""
    leader, follower = pty.openpty()
    done = subprocess.Popen(
        cli_command("down", config=config),
        env=cli_env(aws_env),
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(follower)
    os.write(leader, f"{answer}\n".encode())
    output, _ = done.communicate(timeout=300)
    os.close(leader)
    return done.returncode, output


def test_down_asks_after_listing_what_goes_and_warns_when_the_data_goes_for_good(
    cli, aws_env: dict[str, str], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    code, output = down_on_a_terminal(aws_env, "stagin", ROOT / "deploy.toml")
    assert code == 1 and "nothing was deleted" in output
    assert "to be deleted (" in output and "rds:db" in output and "ec2:vpc" in output
    assert "WITHOUT a final snapshot" in output and "db.final_snapshot = true" in output
    assert "owned resources" in cli("status").out, "a wrong answer deletes nothing"

    keeping = tmp_path / "deploy.toml"
    text = (ROOT / "deploy.toml").read_text()
    keeping.write_text(text.replace("final_snapshot = false", "final_snapshot = true", 1))
    code, output = down_on_a_terminal(aws_env, "staging", keeping)
    assert code == 0, output
    assert "WITHOUT a final snapshot" not in output and "leak audit: nothing left" in output


# -- GitHub step summaries -------------------------------------------------------------------


def test_plan_redeploy_and_down_write_step_summaries(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def summarised(*args: str) -> tuple[str, str]:
        summary, outputs = tmp_path / f"{args[0]}.md", tmp_path / f"{args[0]}.out"
        github = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
        result = cli(*args, env=github)
        assert result.code == 0, result.text
        return summary.read_text(), outputs.read_text() if outputs.exists() else ""

    plan, _ = summarised("plan")
    assert "## nnote-deploy plan: staging" in plan and "change(s) pending" in plan
    assert "| network | create | ec2:vpc |" in plan
    assert cli("up", "--yes").code == 0

    redeploy, outputs = summarised("redeploy", "--config", str(ROOT / "deploy.toml"))
    url = outputs.removeprefix("service_url=").strip()
    assert url.startswith("https://")
    assert "## nnote-deploy redeploy: staging" in redeploy
    assert re.search(rf"\*\*Result:\*\* revision \d+ is serving: {re.escape(url)}", redeploy)

    down, _ = summarised("down", "--yes")
    assert "## nnote-deploy down: staging" in down and "leak audit: nothing left" in down
    assert re.search(r"\| network \| ec2:vpc \| vpc-[0-9a-f]+ \|", down)


@pytest.mark.parametrize("command", ["up", "plan", "verify"])
def test_a_malformed_image_is_answered_before_any_aws_call(command: str) -> None:
    done = bare(command, "--config", str(ROOT / "deploy.toml"), "--image", "Nnote Latest")
    assert done.returncode == 3, done.stderr
    assert "image" in done.stderr and "credentials" not in done.stderr
    assert "hint: " in done.stderr and done.stdout == ""
