"""`nnote-deploy cost`, and the cost line `plan` and `up` end with, run as a user runs them
against the emulator (which has no Price List: the shipped table prices them, and says so)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from deployer import pipeline
from deployer.cost import footprint, model, prices
from deployer.cost.model import Assumptions
from tests.deployer.conftest import CLI, PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.sweep import QuietEvents

CONFIG = str(ROOT / "deploy.toml")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
TABLE = (
    f"prices: table shipped with nnote-deploy, {REGION}, compiled {prices.table()['compiled']} "
    "(the AWS Price List API was not asked: AWS_ENDPOINT_URL points every client at an emulator)"
)


def stderr_lines(text: str) -> list[str]:
    return [TIMESTAMP.sub("", line) for line in text.splitlines()]


def table_total(env: str, config: Path = ROOT / "deploy.toml") -> float:
    from deployer.config import load

    wanted = footprint.wanted(load(config, env))
    return model.estimate(wanted, prices.table_prices(REGION), Assumptions()).total


def test_cost_prints_every_line_the_total_the_prices_source_and_assumptions(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("cost", "--config", CONFIG)
    assert done.code == 0, done.text
    out = done.out.splitlines()
    assert out[0].split() == ["item", "quantity", "USD", "per", "unit", "USD/month"]
    items = [line[:26].strip() for line in out[1 : out.index(TABLE) - 1]]
    assert items == [
        "Fargate Spot vCPU",  # staging's service.spot
        "Fargate Spot memory",
        "Load balancer (ALB)",
        "Load balancer capacity",
        "RDS db.t4g.micro",
        "RDS storage (gp3)",
        "RDS backup storage",
        "Public IPv4 addresses",
        "CloudWatch Logs ingestion",
        "ECR image storage",
        "Secrets Manager",
        "CloudFront distribution",
    ]
    total = out[out.index(TABLE) - 1].split()
    assert total == ["total", f"{table_total('staging'):.2f}"]
    assert out[out.index(TABLE) + 1] == "assumptions:" and "0.1 LCU" in done.out
    # No account: `cost` asks AWS nothing, not even who the credentials are (sts).
    assert "region eu-west-1 · nnote/staging" in done.err and "account" not in done.err
    assert "AWS API calls: 0 (0 mutating)" in done.err


def test_cost_json_is_one_document_whose_lines_add_up(cli) -> None:  # type: ignore[no-untyped-def]
    found = {}
    for env in ("staging", "prod"):
        done = cli("cost", "--config", CONFIG, "--env", env, "--json")
        assert done.code == 0, done.text
        found[env] = document = json.loads(done.out)
        assert document["schema"] == 1 and document["env"] == env
        assert document["region"] == REGION and document["currency"] == "USD"
        assert document["monthly"] == pytest.approx(sum(x["monthly"] for x in document["lines"]))
        assert document["prices"]["source"] == "table"
        assert document["monthly"] == pytest.approx(table_total(env), abs=0.005)
    assert found["prod"]["monthly"] > found["staging"]["monthly"]
    assert {line["item"] for line in found["prod"]["lines"]} >= {"CloudWatch alarms"}


def cost_without_aws(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`nnote-deploy cost` with no AWS credentials anywhere: no AWS_* variable but these, no
    profile or credentials file, no instance metadata (botocore would probe 169.254.169.254).
    Were credentials found all the same, the Price List is at a closed port on 127.0.0.1."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env |= {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "absent" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent" / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_PRICING": "http://127.0.0.1:9",
        "COLUMNS": "120",
        **extra,
    }
    return subprocess.run(
        [str(CLI), "cost", "--config", CONFIG, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({}, "no AWS credentials were found"),
        (
            {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"},
            "the AWS credentials cannot be loaded: Partial credentials found in env, "
            "missing: AWS_SECRET_ACCESS_KEY",
        ),
    ],
)
def test_cost_needs_no_credentials_and_says_why_the_table_priced_it(
    tmp_path: Path, extra: dict[str, str], why: str
) -> None:
    done = cost_without_aws(tmp_path, **extra)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    total = next(line for line in out if line.startswith("total")).split()
    assert total == ["total", f"{table_total('staging'):.2f}"]
    source = next(line for line in out if line.startswith("prices: "))
    assert source.startswith(f"prices: table shipped with nnote-deploy, {REGION}, compiled ")
    assert source.endswith(f"(the AWS Price List API was not asked: {why})")
    assert "AWS API calls: 0 (0 mutating)" in done.stderr and "error" not in done.stderr


def test_cost_json_without_credentials_names_the_table(tmp_path: Path) -> None:
    done = cost_without_aws(tmp_path, "--env", "prod", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["prices"]["source"] == "table"
    assert document["prices"]["summary"].endswith("not asked: no AWS credentials were found)")
    assert document["monthly"] == pytest.approx(table_total("prod"), abs=0.005)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--env", "nope"), 3, "error: unknown environment 'nope'"),
        (("--region", "ap-southeast-2"), 1, "error: no prices for ap-southeast-2: the AWS"),
    ],
)
def test_cost_of_what_cannot_be_priced_is_one_error_with_a_hint(
    cli,  # type: ignore[no-untyped-def]
    args: tuple[str, ...],
    code: int,
    says: str,
) -> None:
    done = cli("cost", "--config", CONFIG, *args)
    assert done.code == code, done.text
    assert done.out == "" and "Traceback" not in done.err
    lines = stderr_lines(done.err)
    error = next(line for line in lines if line.startswith("error: "))
    assert error.startswith(says)
    assert lines[lines.index(error) + 1].startswith("hint: ")


def test_plan_and_up_end_with_what_the_change_costs_and_a_converged_plan_says_nothing(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    sentence = f"about ${table_total('staging'):,.2f}/month (was $0.00)"
    summary = tmp_path / "summary.md"
    plan = cli("plan", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert plan.code == 0, plan.text
    lines = stderr_lines(plan.err)
    assert lines[-2:] == [sentence, f"  {TABLE}"], "plan ends with the cost and its prices"
    assert f"**Cost:** {sentence}" in summary.read_text()
    assert not re.search(r"about \$", plan.out), "stdout stays the changes and their counts"

    up = cli("up", "--yes")
    assert up.code == 0, up.text
    said = stderr_lines(up.err)
    assert said.index(sentence) < said.index("up: done"), "said before anything changes"

    again = cli("plan")
    assert again.code == 0 and "about $" not in again.err and "cost:" not in again.err


def test_a_converged_autoscaled_prod_costs_what_its_settings_say(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Multi-AZ, autoscaling, the rollout alarms: read back from AWS, the same footprint."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # read by the in-process moto
    steps = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    pipeline.up(make_run("prod"), QuietEvents(), steps=steps)
    converged = make_run("prod")
    assert pipeline.plan(converged, steps) == []
    deployed = footprint.deployed(converged.config, converged.observed)
    assert deployed == footprint.wanted(converged.config).keeping(deployed)
    assert deployed.alarm_metrics == 5 and deployed.database and deployed.database.multi_az
    assert pipeline.cost_change(converged) is None


def test_a_changed_setting_is_priced_against_what_is_deployed(aws_env: dict[str, str]) -> None:
    steps = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    pipeline.up(make_run(), QuietEvents(), steps=steps)

    converged = make_run()
    assert pipeline.plan(converged, steps) == []
    assert pipeline.cost_change(converged) is None
    assert not any(name.startswith("pricing:") for name in converged.aws.log.calls)

    two_tasks = make_run()
    service = two_tasks.config.settings.service.model_copy(update={"desired_count": 2})
    settings = two_tasks.config.settings.model_copy(update={"service": service})
    two_tasks.config = two_tasks.config.model_copy(update={"settings": settings})
    pipeline.plan(two_tasks, steps)
    change = pipeline.cost_change(two_tasks)
    assert change is not None
    assert change.deployed == pytest.approx(table_total("staging"))
    usd = prices.table_prices(REGION)
    task = 730 * (0.25 * usd["fargate_spot.vcpu_hour"] + 0.5 * usd["fargate_spot.gb_hour"])
    address = 730 * usd["vpc.public_ipv4_hour"]
    logs = 0.5 * usd["logs.ingest_gb"]
    # One more task, its public address and its log lines; each line rounded to cents.
    assert change.planned - change.deployed == pytest.approx(task + address + logs, abs=0.02)
    assert change.sentence() == (
        f"about ${change.planned:,.2f}/month (was ${change.deployed:,.2f})"
    )


def test_a_bug_in_the_estimate_is_one_warning_not_a_failed_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deployer import cli

    said: list[str] = []

    class Lines:
        def line(self, text: str, style: str = "") -> None:
            said.append(text)

    def broken(_run: object) -> None:
        raise KeyError("DBInstances")

    monkeypatch.setattr(pipeline, "cost_change", broken)
    assert cli._cost_change(Lines(), make_run("staging")) is None  # type: ignore[arg-type]
    assert said == ["cost: not estimated: KeyError: 'DBInstances'"]
