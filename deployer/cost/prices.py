"""Where the prices come from: the AWS Price List API for the environment's region when it
answers, else the table shipped with the package (`prices.json`: its date, and for each figure
where it came from). A price the API lacks is taken from the table; the summary says which
source was used, and for what. A figure of the table that is no list price read for its region
carries `estimate` (why), which the cost lines it prices repeat.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from deployer.aws import Aws
from deployer.cost import pricelist
from deployer.errors import DeployError

TABLE = "prices.json"


class CostError(DeployError):
    """A cost cannot be estimated: a price is known neither to the API nor to the table."""


@dataclass(frozen=True)
class PriceBook:
    """The prices of one region, by key, with where they came from."""

    region: str
    usd: dict[str, float]
    source: str  # "price-list" or "table"
    summary: str  # one line naming the source(s)
    from_table: tuple[str, ...] = field(default=())  # keys the table gave beside the API
    # Keys the table priced with an estimate, and why it is one.
    estimates: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "summary": self.summary,
            "from_table": list(self.from_table),
            "usd": dict(sorted(self.usd.items())),
            "estimates": dict(sorted(self.estimates.items())),
        }


@cache
def table() -> dict[str, Any]:
    """The shipped price table (read once)."""
    text = resources.files("deployer.cost").joinpath(TABLE).read_text(encoding="utf-8")
    return dict(json.loads(text))


def table_prices(region: str) -> dict[str, float]:
    return {key: float(entry["usd"]) for key, entry in table()["regions"].get(region, {}).items()}


def table_estimates(region: str, keys: Iterable[str]) -> dict[str, str]:
    """Why each of `keys` the table prices in `region` with an estimate is one."""
    entries = table()["regions"].get(region, {})
    return {k: str(entries[k]["estimate"]) for k in keys if "estimate" in entries.get(k, {})}


def resolve(aws: Aws, region: str, keys: Iterable[str]) -> PriceBook:
    """The prices of `keys` in `region`: the Price List's, the table's for what it lacks.
    Raises CostError when a price is in neither."""
    keys = sorted(set(keys))
    try:
        listed = pricelist.fetch(aws, region, keys)
    except pricelist.Unavailable as unavailable:
        return _require(_from_table(region, keys, unavailable.reason), keys, unavailable.reason)
    shipped = table_prices(region)
    filled = tuple(k for k in keys if k not in listed and k in shipped)
    summary = f"AWS Price List API, {region}, asked {datetime.date.today().isoformat()}"
    if filled:
        summary += f"; from the table shipped with nnote-deploy ({table()['compiled']}): "
        summary += ", ".join(describe(k) for k in filled)
    usd = {**{k: shipped[k] for k in filled}, **listed}
    book = PriceBook(region, usd, "price-list", summary, filled, table_estimates(region, filled))
    return _require(book, keys, "")


def _from_table(region: str, keys: list[str], why: str) -> PriceBook:
    shipped = table_prices(region)
    summary = (
        f"table shipped with nnote-deploy, {region}, compiled {table()['compiled']} "
        f"(the AWS Price List API {why})"
    )
    usd = {k: shipped[k] for k in keys if k in shipped}
    return PriceBook(region, usd, "table", summary, tuple(usd), table_estimates(region, usd))


def _require(book: PriceBook, keys: list[str], why: str) -> PriceBook:
    missing = [k for k in keys if k not in book.usd]
    if not missing:
        return book
    covered = ", ".join(sorted(table()["regions"]))
    reason = f"the AWS Price List API {why}" if why else "the AWS Price List API lists none"
    if table_prices(book.region):
        what = ", ".join(describe(k) for k in missing)
        message = f"no price for {what} in {book.region}: {reason}, and the shipped table "
        message += "does not list it"
    else:
        message = f"no prices for {book.region}: {reason}, and the shipped table covers "
        message += f"{covered} only"
    raise CostError(
        message,
        "allow pricing:GetProducts (docs/iam-policy.json) and let the deployer reach the "
        f"Price List API, or price a region and instance class the table covers ({covered})",
    )


NAMES = {
    "fargate.vcpu_hour": "Fargate vCPU",
    "fargate.gb_hour": "Fargate memory",
    "fargate_spot.vcpu_hour": "Fargate Spot vCPU",
    "fargate_spot.gb_hour": "Fargate Spot memory",
    "alb.hour": "load balancer hours",
    "alb.lcu_hour": "load balancer capacity units",
    "rds.gp3_gb_month": "RDS gp3 storage",
    "rds.gp2_gb_month": "RDS gp2 storage",
    "rds.backup_gb_month": "RDS backup storage",
    "rds.extended_support_vcpu_hour": "RDS Extended Support",
    "vpc.public_ipv4_hour": "public IPv4 addresses",
    "logs.ingest_gb": "CloudWatch Logs ingestion",
    "cloudwatch.alarm_month": "CloudWatch alarms",
    "ecr.storage_gb_month": "ECR storage",
    "secretsmanager.secret_month": "Secrets Manager secrets",
}


def describe(key: str) -> str:
    if key.startswith(pricelist.INSTANCE_KEY):
        return f"RDS {key.removeprefix(pricelist.INSTANCE_KEY)}"
    return NAMES.get(key, key)
