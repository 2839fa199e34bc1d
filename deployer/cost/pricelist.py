"""Today's on-demand prices from the AWS Price List Query API (`pricing` GetProducts).

The API is served from a few endpoint regions only (us-east-1, eu-central-1 and ap-south-1 in
botocore's endpoint data): the nearest is asked, with the environment's region as a filter
(`regionCode`). Each query names the service code and a product family (or group) and keeps
the products whose usage type is exactly the one wanted, with or without the region's prefix
(`EU-LoadBalancerUsage`, plain `LoadBalancerUsage` in us-east-1): a variant such as
`TS-LoadBalancerUsage`, Windows or ARM Fargate never stands in for it. A query that finds no
single price leaves that price out; the caller falls back to the shipped table for it.

Every query narrows by attributes of the offer files (`productFamily`, `group`) so that it
answers a handful of products: GetProducts returns at most 100 a page (MaxResults 1-100), and
a query answering more than one page is taken as too broad to trust: the table prices
everything, and the reason says which query it was (never a price picked from a partial list).
Filter values that no product has answer nothing: the table prices that line and says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError

from deployer.aws import Aws, paginate
from deployer.errors import DeployError

SERVICE = "pricing"
# At most one page of products a query (the API's largest, 100); the filters keep each query
# to a few. One more is asked for, to tell a full page from a query that was cut short.
MOST_PRODUCTS = 100


class Unavailable(Exception):
    """The Price List API cannot be asked, or did not answer; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Query:
    service: str
    filters: tuple[tuple[str, str], ...]
    usage_type: str

    def params(self, region: str) -> dict[str, Any]:
        filters = [("regionCode", region), *self.filters]
        return {
            "ServiceCode": self.service,
            "Filters": [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters],
            "FormatVersion": "aws_v1",
            "PaginationConfig": {"MaxItems": MOST_PRODUCTS + 1, "PageSize": MOST_PRODUCTS},
        }


FARGATE = ("AmazonECS", (("productFamily", "Compute"),))
ALB = ("AWSELB", (("productFamily", "Load Balancer-Application"),))
GP3 = (("productFamily", "Database Storage"), ("volumeType", "General Purpose-GP3"))
GP2 = (("productFamily", "Database Storage"), ("volumeType", "General Purpose"))
SINGLE_AZ = (("deploymentOption", "Single-AZ"),)
QUERIES = {
    "fargate.vcpu_hour": Query(*FARGATE, "Fargate-vCPU-Hours:perCPU"),
    "fargate.gb_hour": Query(*FARGATE, "Fargate-GB-Hours"),
    "alb.hour": Query(*ALB, "LoadBalancerUsage"),
    "alb.lcu_hour": Query(*ALB, "LCUUsage"),
    "rds.gp3_gb_month": Query("AmazonRDS", GP3 + SINGLE_AZ, "RDS:GP3-Storage"),
    "rds.gp2_gb_month": Query("AmazonRDS", GP2 + SINGLE_AZ, "RDS:GP2-Storage"),
    "rds.backup_gb_month": Query(
        "AmazonRDS", (("productFamily", "Storage Snapshot"),), "RDS:ChargedBackupUsage"
    ),
    "rds.extended_support_vcpu_hour": Query(
        "AmazonRDS",
        (("databaseEngine", "MySQL"), ("extendedSupportPricingYear", "Year 1, Year 2")),
        "ExtendedSupport:Yr1-Yr2:MySQL8.0",
    ),
    "vpc.public_ipv4_hour": Query(
        "AmazonVPC", (("group", "VPCPublicIPv4Address"),), "PublicIPv4:InUseAddress"
    ),
    # Unfiltered, AmazonCloudWatch answers hundreds of products a region (metrics, API
    # requests, dashboards, every log class and destination), AmazonECR its data transfer.
    "logs.ingest_gb": Query(
        "AmazonCloudWatch",
        (("productFamily", "Data Payload"), ("group", "Ingested Logs")),
        "DataProcessing-Bytes",
    ),
    "cloudwatch.alarm_month": Query(
        "AmazonCloudWatch", (("productFamily", "Alarm"),), "CW:AlarmMonitorUsage"
    ),
    "ecr.storage_gb_month": Query(
        "AmazonECR", (("productFamily", "EC2 Container Registry"),), "TimedStorage-ByteHrs"
    ),
    "secretsmanager.secret_month": Query(
        "AWSSecretsManager", (("productFamily", "Secret"),), "AWSSecretsManager-Secrets"
    ),
}
INSTANCE_KEY = "rds.instance_hour."


def query(key: str) -> Query | None:
    """How the Price List is asked for a price key; None for what it does not list (Fargate
    Spot's prices move daily and are on the Fargate pricing page only)."""
    if key.startswith(INSTANCE_KEY):
        instance_class = key.removeprefix(INSTANCE_KEY)
        return Query(
            "AmazonRDS",
            (
                ("productFamily", "Database Instance"),
                ("instanceType", instance_class),
                ("databaseEngine", "MySQL"),
                *SINGLE_AZ,
            ),
            f"InstanceUsage:{instance_class}",
        )
    return QUERIES.get(key)


def endpoint_region(aws: Aws, region: str) -> str:
    """The Price List endpoint to ask for `region`'s prices; Unavailable if none serves it in
    US dollars (the price list of the China partition is in yuan)."""
    session = aws.session
    partition = session.get_partition_for_region(region)
    if partition != "aws":
        raise Unavailable(f"has no prices in US dollars for the {partition} partition")
    served = session.get_available_regions(SERVICE, partition)
    near = "ap-south-1" if region.startswith("ap-") else "us-east-1"
    if region.startswith(("eu-", "me-", "af-", "il-")):
        near = "eu-central-1"
    if near not in served:
        raise Unavailable(f"is not served from {near}")
    return near


# Error codes that mean the Price List may not be asked (rather than did not answer).
REFUSALS = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def emulated() -> bool:
    """Whether every client is pointed at an emulator (moto, LocalStack), which has no Price
    List: asking it would only be answered with errors, after retries."""
    return bool(os.environ.get("AWS_ENDPOINT_URL")) and not os.environ.get(
        "AWS_ENDPOINT_URL_PRICING"
    )


def fetch(aws: Aws, region: str, keys: Iterable[str]) -> dict[str, float]:
    """The prices of `keys` in `region` that the Price List has (one query per product group,
    the first alone: if the API cannot be asked, nothing more is tried). Raises Unavailable."""
    if emulated():
        raise Unavailable("was not asked: AWS_ENDPOINT_URL points every client at an emulator")
    missing = aws.missing_credentials()
    if missing:
        raise Unavailable(f"was not asked: {missing}")
    pricing = aws.in_region(endpoint_region(aws, region)).impatient()
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, str]] = {}
    for key in sorted(keys):
        wanted = query(key)
        if wanted is not None:
            groups.setdefault((wanted.service, wanted.filters), {})[key] = wanted.usage_type
    if not groups:
        return {}
    first, *rest = groups.items()
    found = _group_prices(pricing, region, *first)
    with ThreadPoolExecutor(max_workers=min(8, len(rest) or 1)) as pool:
        for prices in pool.map(lambda item: _group_prices(pricing, region, *item), rest):
            found.update(prices)
    return found


def _group_prices(
    aws: Aws,
    region: str,
    group: tuple[str, tuple[tuple[str, str], ...]],
    usage_types: dict[str, str],
) -> dict[str, float]:
    service, filters = group
    products = _products(aws, Query(service, filters, "").params(region))
    if len(products) > MOST_PRODUCTS:
        narrowed = ", ".join(f"{field} {value}" for field, value in filters) or "no filter"
        raise Unavailable(
            f"answered more than {MOST_PRODUCTS} products for {service} ({narrowed}): "
            "too many to pick a price from"
        )
    found = {key: price_of(products, usage) for key, usage in usage_types.items()}
    return {key: price for key, price in found.items() if price is not None}


def _products(aws: Aws, params: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        listed = paginate(aws, SERVICE, "get_products", "PriceList", **params)
    except DeployError as error:
        if getattr(error, "code", "") in REFUSALS:
            raise Unavailable(
                "refused: pricing:GetProducts is not allowed (see docs/iam-policy.json)"
            ) from error
        raise Unavailable(f"did not answer: {error.message}") from error
    except BotoCoreError as error:  # what the boundary does not translate (a bad parameter)
        raise Unavailable(f"was not asked: {error}") from error
    return [json.loads(item) if isinstance(item, str) else item for item in listed]


def price_of(products: list[dict[str, Any]], usage_type: str) -> float | None:
    """The on-demand price of the products of exactly `usage_type`; None unless there is
    exactly one (several different prices cannot be told apart here)."""
    pattern = re.compile(rf"(?:[A-Z]{{2,4}}\d-|EU-)?{re.escape(usage_type)}")
    prices = {
        price
        for product in products
        if pattern.fullmatch(str(product.get("product", {}).get("attributes", {}).get("usagetype")))
        and (price := _on_demand(product)) is not None
    }
    return prices.pop() if len(prices) == 1 else None


def _on_demand(product: dict[str, Any]) -> float | None:
    """The first paid tier of the product's on-demand terms: free tiers are the account's,
    spent by everything else it runs."""
    dimensions = [
        dimension
        for term in (product.get("terms", {}).get("OnDemand") or {}).values()
        for dimension in (term.get("priceDimensions") or {}).values()
    ]
    dimensions.sort(key=lambda d: float(d.get("beginRange") or 0))
    try:
        prices = [float(d["pricePerUnit"]["USD"]) for d in dimensions]
    except (KeyError, ValueError):
        return None
    return next((p for p in prices if p > 0), 0.0 if prices else None)
