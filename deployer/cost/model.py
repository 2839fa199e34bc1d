"""The monthly bill of a footprint, line by line: what is used (with the stated assumptions
for what depends on traffic) times a price. Pure: prices come in as a mapping by key.

A month is 730 hours. What the lines leave out, and why, is in `Assumptions.notes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from deployer.cost.footprint import Database, Footprint, Tasks

HOURS = 730


@dataclass(frozen=True)
class Assumptions:
    """What the bill depends on besides the settings: traffic, logs, data."""

    lcu: float = 0.1  # load balancer capacity units used on average
    logs_gb_per_task: float = 0.5  # log lines a task writes a month
    image_gb: float = 0.15  # one image in the registry, compressed
    daily_change: float = 0.05  # share of the database changed a day (incremental backups)

    def notes(self) -> list[str]:
        return [
            f"{HOURS} hours a month; list prices in USD, before tax; no free tier counted "
            "but CloudFront's",
            f"load balancer: {self.lcu:g} LCU on average (about {self.lcu:g} GB an hour "
            "through it; a quiet environment uses far less, a busy one more)",
            f"logs: {self.logs_gb_per_task:g} GB a month per task (access lines; the health "
            "checks every 5 s alone log about 0.1 GB)",
            f"registry: {self.image_gb:g} GB per image kept, shared layers counted for each",
            "database backups: the disk full of data (the most it can hold), "
            f"{self.daily_change:.0%} of it changed a day, each kept snapshot adding a day's "
            "changes; RDS stores backups up to the allocated storage for free",
            "CloudFront: within the always-free tier (1 TB out and 10 million requests a "
            "month per account); its fetches from the load balancer are free",
            "not counted: data out of the load balancer with a domain (100 GB a month free), "
            "traffic between zones, the tasks a rollout or a migration runs for minutes, "
            "burst credits of the database, log storage, API requests to Secrets Manager",
        ]


@dataclass(frozen=True)
class Usage:
    """One line before pricing: how much of what, and the price it is billed at."""

    item: str
    quantity: float
    unit: str
    detail: str
    price_key: str | None  # None: free (the line says why)
    note: str = ""


@dataclass(frozen=True)
class Line:
    item: str
    detail: str
    quantity: float
    unit: str
    unit_price: float
    monthly: float
    price_key: str | None
    note: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "item": self.item,
            "detail": self.detail,
            "quantity": round(self.quantity, 4),
            "unit": self.unit,
            "unit_price": self.unit_price,
            "monthly": round(self.monthly, 2),
            "price": self.price_key,
            "note": self.note,
        }


@dataclass(frozen=True)
class Estimate:
    lines: tuple[Line, ...]

    @property
    def total(self) -> float:
        """The sum of the lines as shown, in cents: what a reader adding them up gets."""
        return round(sum(round(line.monthly, 2) for line in self.lines), 2)


def usages(footprint: Footprint, assumptions: Assumptions) -> list[Usage]:
    """Every billed line of a footprint, unpriced."""
    found: list[Usage] = []
    for lines in (
        _tasks(footprint.tasks),
        _load_balancer(footprint.load_balancer_zones, assumptions),
        _database(footprint.database, assumptions),
        _addresses(footprint),
        _logs(footprint.tasks, assumptions),
        _registry(footprint.images_kept, assumptions),
        _monthly_things(footprint),
        _front(footprint),
    ):
        found += lines
    return found


def price_keys(footprints: Iterable[Footprint], assumptions: Assumptions) -> set[str]:
    return {
        u.price_key for f in footprints for u in usages(f, assumptions) if u.price_key is not None
    }


def estimate(
    footprint: Footprint, prices: Mapping[str, float], assumptions: Assumptions
) -> Estimate:
    """The footprint's lines priced; every price key they name must be in `prices`."""
    return Estimate(tuple(_priced(u, prices) for u in usages(footprint, assumptions)))


def _priced(usage: Usage, prices: Mapping[str, float]) -> Line:
    unit_price = prices[usage.price_key] if usage.price_key else 0.0
    return Line(
        usage.item,
        usage.detail,
        usage.quantity,
        usage.unit,
        unit_price,
        usage.quantity * unit_price,
        usage.price_key,
        usage.note,
    )


def _tasks(tasks: Tasks | None) -> list[Usage]:
    if tasks is None or tasks.count == 0:
        return []
    kind = "fargate_spot" if tasks.spot else "fargate"
    label = "Fargate Spot" if tasks.spot else "Fargate"
    count = _tasks_count(tasks.count)
    note = f"autoscaling: up to {tasks.most} tasks" if tasks.most > tasks.count else ""
    return [
        Usage(
            f"{label} vCPU",
            tasks.count * tasks.vcpu * HOURS,
            "vCPU-hour",
            f"{count} x {tasks.vcpu:g} vCPU x {HOURS} h",
            f"{kind}.vcpu_hour",
            note,
        ),
        Usage(
            f"{label} memory",
            tasks.count * tasks.memory_gb * HOURS,
            "GB-hour",
            f"{count} x {tasks.memory_gb:g} GB x {HOURS} h",
            f"{kind}.gb_hour",
            note,
        ),
    ]


def _load_balancer(zones: int, assumptions: Assumptions) -> list[Usage]:
    if not zones:
        return []
    return [
        Usage("Load balancer (ALB)", HOURS, "hour", f"1 load balancer x {HOURS} h", "alb.hour"),
        Usage(
            "Load balancer capacity",
            assumptions.lcu * HOURS,
            "LCU-hour",
            f"{assumptions.lcu:g} LCU x {HOURS} h",
            "alb.lcu_hour",
            "assumed traffic",
        ),
    ]


def _database(db: Database | None, assumptions: Assumptions) -> list[Usage]:
    if db is None:
        return []
    copies = 2 if db.multi_az else 1
    deployment = "Multi-AZ: 2 instances" if db.multi_az else "Single-AZ"
    found = [
        Usage(
            f"RDS {db.instance_class}",
            copies * HOURS,
            "instance-hour",
            f"{deployment} x {HOURS} h",
            f"rds.instance_hour.{db.instance_class}",
        ),
        Usage(
            f"RDS storage ({db.storage_type})",
            copies * db.storage_gb,
            "GB-month",
            f"{db.storage_gb} GB" + (" x 2 (Multi-AZ)" if db.multi_az else ""),
            f"rds.{db.storage_type}_gb_month",
        ),
        _backups(db, assumptions),
    ]
    if db.extended_support_vcpus:
        found.append(
            Usage(
                "RDS Extended Support",
                copies * db.extended_support_vcpus * HOURS,
                "vCPU-hour",
                f"{copies} x {db.extended_support_vcpus} vCPU x {HOURS} h",
                "rds.extended_support_vcpu_hour",
                "MySQL 8.0 past standard support (db.extended_support)",
            )
        )
    return found


def _backups(db: Database, assumptions: Assumptions) -> Usage:
    """Backup storage beyond the free amount (as much as the allocated storage)."""
    change = db.storage_gb * assumptions.daily_change
    automated = db.storage_gb + db.backup_days * change if db.backup_days else 0.0
    stored = automated + db.snapshots_kept * change
    billed = max(0.0, stored - db.storage_gb)
    snapshots = f" and {db.snapshots_kept} snapshots" if db.snapshots_kept else ""
    return Usage(
        "RDS backup storage",
        billed,
        "GB-month",
        f"about {stored:g} GB ({_days(db.backup_days)}{snapshots}) - {db.storage_gb} GB free",
        "rds.backup_gb_month",
        "assumed data",
    )


def _addresses(footprint: Footprint) -> list[Usage]:
    tasks = footprint.tasks
    per_task = tasks.count if tasks and tasks.public_ip else 0
    zones = footprint.load_balancer_zones if footprint.public_load_balancer else 0
    if not per_task + zones:
        return []
    return [
        Usage(
            "Public IPv4 addresses",
            (per_task + zones) * HOURS,
            "address-hour",
            f"{per_task + zones} ({_tasks_count(per_task)}, {zones} load balancer zones) "
            f"x {HOURS} h",
            "vpc.public_ipv4_hour",
        )
    ]


def _logs(tasks: Tasks | None, assumptions: Assumptions) -> list[Usage]:
    if tasks is None or tasks.count == 0:
        return []
    gb = tasks.count * assumptions.logs_gb_per_task
    return [
        Usage(
            "CloudWatch Logs ingestion",
            gb,
            "GB",
            f"{_tasks_count(tasks.count)} x {assumptions.logs_gb_per_task:g} GB",
            "logs.ingest_gb",
            "assumed traffic",
        )
    ]


def _registry(kept: int, assumptions: Assumptions) -> list[Usage]:
    if not kept:
        return []
    return [
        Usage(
            "ECR image storage",
            kept * assumptions.image_gb,
            "GB-month",
            f"{kept} images x {assumptions.image_gb:g} GB",
            "ecr.storage_gb_month",
            "assumed image size",
        )
    ]


def _monthly_things(footprint: Footprint) -> list[Usage]:
    """What is billed per thing a month: secrets, and alarms by the metrics they read."""
    things = [
        ("Secrets Manager", footprint.secrets, "secret", "secretsmanager.secret_month"),
        ("CloudWatch alarms", footprint.alarm_metrics, "alarm metric", "cloudwatch.alarm_month"),
    ]
    return [
        Usage(item, count, f"{unit}-month", f"{count} {unit}{'s' if count != 1 else ''}", key)
        for item, count, unit, key in things
        if count
    ]


def _front(footprint: Footprint) -> list[Usage]:
    if not footprint.cloudfront:
        return []
    return [
        Usage(
            "CloudFront distribution",
            0,
            "",
            "HTTPS at *.cloudfront.net",
            None,
            "always-free tier assumed",
        )
    ]


def _tasks_count(count: int) -> str:
    return f"{count} task{'s' if count != 1 else ''}"


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"
