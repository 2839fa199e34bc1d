"""What an environment costs, line by line, at a fixed price table: each line is what `up`
creates for the settings (tasks, load balancer zones, addresses, database, secrets, alarms,
the front door), times a price. No AWS here."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from deployer.config import DeployConfig, load
from deployer.cost import footprint, model, prices
from deployer.cost.model import HOURS, Assumptions
from tests.deployer.conftest import ROOT

# Round prices, so that every expected figure below can be checked by hand.
FIXED = {
    "fargate.vcpu_hour": 0.04,
    "fargate.gb_hour": 0.004,
    "fargate_spot.vcpu_hour": 0.012,
    "fargate_spot.gb_hour": 0.0012,
    "alb.hour": 0.02,
    "alb.lcu_hour": 0.008,
    "rds.instance_hour.db.t4g.micro": 0.02,
    "rds.instance_hour.db.t4g.small": 0.04,
    "rds.gp3_gb_month": 0.1,
    "rds.backup_gb_month": 0.1,
    "rds.extended_support_vcpu_hour": 0.1,
    "vpc.public_ipv4_hour": 0.005,
    "logs.ingest_gb": 0.5,
    "cloudwatch.alarm_month": 0.1,
    "ecr.storage_gb_month": 0.1,
    "secretsmanager.secret_month": 0.4,
}


def settings(env: str, toml: str | None = None, tmp: Path | None = None) -> DeployConfig:
    if toml is None:
        return load(ROOT / "deploy.toml", env)
    assert tmp is not None
    path = tmp / "deploy.toml"
    path.write_text(toml)
    return load(path, env)


def lines(config: DeployConfig) -> dict[str, float]:
    estimate = model.estimate(footprint.wanted(config), FIXED, Assumptions())
    return {line.item: line.monthly for line in estimate.lines}


def test_cost_of_staging_is_a_line_per_thing_up_creates() -> None:
    assert lines(settings("staging")) == pytest.approx(
        {
            # service.spot: the task on Fargate Spot.
            "Fargate Spot vCPU": 1 * 0.25 * HOURS * 0.012,  # 2.19
            "Fargate Spot memory": 1 * 0.5 * HOURS * 0.0012,  # 0.44
            "Load balancer (ALB)": HOURS * 0.02,
            "Load balancer capacity": 0.1 * HOURS * 0.008,  # the LCU assumption
            "RDS db.t4g.micro": HOURS * 0.02,
            "RDS storage (gp3)": 20 * 0.1,
            # 20 GB of data, 1 day of backups (5% changed): 21 GB, of which 20 are free.
            "RDS backup storage": 1 * 0.1,
            # The task's public address: behind CloudFront the load balancer has public
            # IPv6 addresses only, which AWS does not bill.
            "Public IPv4 addresses": 1 * HOURS * 0.005,
            "CloudWatch Logs ingestion": 0.5 * 0.5,
            "ECR image storage": 3 * 0.15 * 0.1,  # the newest 3 images kept
            "Secrets Manager": 2 * 0.4,  # the RDS-managed master password and SECRET_KEY
            "CloudFront distribution": 0,  # the free tier
        }
    )


def test_cost_of_prod_doubles_the_database_and_counts_min_tasks_and_every_alarm() -> None:
    prod = lines(settings("prod"))
    assert prod["RDS db.t4g.micro"] == pytest.approx(2 * HOURS * 0.02)  # a standby too
    assert prod["RDS storage (gp3)"] == pytest.approx(2 * 20 * 0.1)
    # 14 days of changes and 3 snapshots kept before migrations: 37 GB, 20 free.
    assert prod["RDS backup storage"] == pytest.approx(17 * 0.1)
    # autoscaling 2-6: the minimum, 2 tasks, each with an address (the load balancer has
    # none: it is behind CloudFront).
    assert prod["Fargate vCPU"] == pytest.approx(2 * 0.25 * HOURS * 0.04)
    assert prod["Public IPv4 addresses"] == pytest.approx(2 * HOURS * 0.005)
    # Billed per metric read: the rollout alarms read 3 (the 5xx share divides two), the two
    # target tracking makes 1 each.
    assert prod["CloudWatch alarms"] == pytest.approx(5 * 0.1)
    assert "CloudWatch alarms" not in lines(settings("staging"))


def test_autoscaling_says_how_far_it_may_go() -> None:
    estimate = model.estimate(footprint.wanted(settings("prod")), FIXED, Assumptions())
    fargate = next(line for line in estimate.lines if line.item == "Fargate vCPU")
    assert fargate.detail == "2 tasks x 0.25 vCPU x 730 h"
    assert fargate.note == "autoscaling: up to 6 tasks"


DOMAIN = """
app = "nnote"
region = "eu-west-1"
[defaults.service]
domain = "notes.example.com"
desired_count = 0
[env.staging]
"""


def test_a_domain_has_no_cloudfront_and_no_tasks_cost_no_task_lines(tmp_path: Path) -> None:
    found = lines(settings("staging", DOMAIN, tmp_path))
    assert "CloudFront distribution" not in found
    assert not {"Fargate vCPU", "Fargate memory", "CloudWatch Logs ingestion"} & set(found)
    assert found["Public IPv4 addresses"] == pytest.approx(2 * HOURS * 0.005)  # the ALB's


EXTENDED = """
app = "nnote"
region = "eu-west-1"
[defaults.db]
engine_version = "8.0"
extended_support = true
instance_class = "db.t4g.small"
[env.staging]
"""


def test_mysql_8_0_past_standard_support_pays_extended_support_per_vcpu(tmp_path: Path) -> None:
    found = lines(settings("staging", EXTENDED, tmp_path))
    assert found["RDS Extended Support"] == pytest.approx(2 * HOURS * 0.1)  # 2 vCPUs
    assert found["RDS db.t4g.small"] == pytest.approx(HOURS * 0.04)
    assert "RDS Extended Support" not in lines(settings("staging"))


@pytest.mark.parametrize(
    ("instance_class", "vcpus"),
    [
        ("db.t4g.micro", 2),
        ("db.t3.large", 2),
        ("db.t4g.xlarge", 4),
        ("db.m6g.large", 2),
        ("db.r6g.4xlarge", 16),
        ("db.m5.medium", 1),
    ],
)
def test_vcpus_of_instance_classes(instance_class: str, vcpus: int) -> None:
    assert footprint.vcpus(instance_class) == vcpus


def test_the_model_prices_spot_tasks_and_tasks_without_public_addresses() -> None:
    """What-if figures (not settings yet): Fargate Spot, tasks without a public address."""
    staging = footprint.wanted(settings("staging"))
    assert staging.tasks is not None
    spot = replace(staging, tasks=replace(staging.tasks, spot=True, public_ip=False))
    found = {line.item: line.monthly for line in model.estimate(spot, FIXED, Assumptions()).lines}
    assert found["Fargate Spot vCPU"] == pytest.approx(0.25 * HOURS * 0.012)
    assert "Fargate vCPU" not in found
    assert "Public IPv4 addresses" not in found  # nor has the load balancer, behind CloudFront


def test_every_assumption_is_stated() -> None:
    notes = " ".join(Assumptions().notes())
    for said in ("730 hours", "0.1 LCU", "0.5 GB a month per task", "0.15 GB per image"):
        assert said in notes
    assert "always-free tier" in notes and "allocated storage for free" in notes


# -- the shipped table ----------------------------------------------------------------------


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_shipped_table_prices_every_line_of_the_shipped_envs(region: str, env: str) -> None:
    config = settings(env)
    keys = model.price_keys([footprint.wanted(config)], Assumptions())
    assert keys <= set(prices.table_prices(region)), keys - set(prices.table_prices(region))


def test_every_figure_of_the_table_says_where_it_came_from_and_when() -> None:
    table = prices.table()
    assert datetime.date.fromisoformat(table["compiled"]) <= datetime.date.today()
    assert table["currency"] == "USD"
    for entries in table["regions"].values():
        for key, entry in entries.items():
            assert entry["from"] in table["sources"], key
            assert 0 < entry["usd"] < 1, key
            assert set(entry) <= {"usd", "from", "estimate"}, key
            if "estimate" in entry:  # said on the lines it prices: short, and its source says why
                assert 0 < len(entry["estimate"]) <= 80, key
                assert table["sources"][entry["from"]].startswith("An estimate: "), key


@pytest.mark.parametrize("key", ["fargate_spot.vcpu_hour", "fargate_spot.gb_hour"])
def test_a_spot_figure_one_region_borrows_from_another_is_marked_an_estimate(key: str) -> None:
    """Spot has no list price to read per region: where two regions show one figure, it is at
    most one region's reading, and the others say they borrowed it."""
    regions = prices.table()["regions"]
    by_figure: dict[float, list[str]] = {}
    for region, entries in regions.items():
        by_figure.setdefault(entries[key]["usd"], []).append(region)
    for figure, sharing in by_figure.items():
        read_here = [r for r in sharing if "estimate" not in regions[r][key]]
        assert len(read_here) <= 1, f"{key} {figure} in {sharing}, none marked an estimate"
    assert "estimate" in regions["us-east-1"][key], "no us-east-1 Spot reading was found"


def test_the_price_table_ships_in_the_wheel(tmp_path: Path) -> None:
    """An installed nnote-deploy has no checkout to read the table from: it is package data."""
    uv = shutil.which("uv") or os.environ.get("UV")
    if not uv:
        pytest.skip("no uv")
    subprocess.run(
        [uv, "build", "--wheel", "--offline", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("nnote-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = json.loads(archive.read("deployer/cost/prices.json"))
    assert shipped == prices.table()


def test_behind_cloudfront_the_load_balancer_has_no_billed_address(tmp_path: Path) -> None:
    """Behind CloudFront the load balancer has public IPv6 addresses only; serving a domain
    itself, a public IPv4 address per zone, as every viewer needs."""
    staging = footprint.wanted(settings("staging"))
    assert not staging.public_load_balancer
    found = {line.item: line for line in model.estimate(staging, FIXED, Assumptions()).lines}
    assert found["Public IPv4 addresses"].monthly == pytest.approx(HOURS * 0.005)
    assert found["Public IPv4 addresses"].detail == "1 (1 task, 0 load balancer zones) x 730 h"
    assert found["Load balancer (ALB)"].monthly == pytest.approx(HOURS * 0.02)
    assert footprint.wanted(settings("staging", DOMAIN, tmp_path)).public_load_balancer


def test_up_never_resizes_a_database_so_its_storage_is_not_a_planned_change(
    tmp_path: Path,
) -> None:
    """`up` changes a database's class, Multi-AZ and backups, never its storage or engine
    lifecycle: a plan prices the storage that is there, not the one deploy.toml asks for."""
    bigger = (
        (ROOT / "deploy.toml")
        .read_text()
        .replace("allocated_storage_gb = 20", "allocated_storage_gb = 50")
    )
    wanted = footprint.wanted(settings("staging", bigger, tmp_path))
    assert wanted.database is not None and wanted.database.storage_gb == 50
    existing = replace(wanted.database, storage_gb=20, storage_type="gp2")
    deployed = replace(wanted, database=existing)
    assert wanted.keeping(deployed) == deployed
    resized = replace(existing, multi_az=True)  # what up does change stays planned
    assert replace(wanted, database=resized).keeping(deployed).database == resized
