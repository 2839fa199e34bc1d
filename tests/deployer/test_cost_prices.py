"""Prices from the AWS Price List API when it answers (moto has no pricing API: a botocore
`before-send` hook answers as the API does, from a small catalogue), from the shipped table
when it cannot be asked, and the answer says which. Every client here is pointed at a closed
port on 127.0.0.1: nothing can reach a real endpoint, even if a stub stayed silent."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from deployer.config import AutoscalingSettings
from deployer.cost import footprint, model, pricelist, prices, report
from deployer.cost.model import Assumptions
from deployer.steps.base import Run
from tests.deployer.conftest import REGION, ROOT, make_run
from tests.deployer.faults import _Raw
from tests.support.iam_policy import AuthorizationLog, recording_hooks

POLICY: dict[str, Any] = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
NOWHERE = "http://127.0.0.1:9"  # the discard port: closed, so a call that got out fails here


def product(service: str, family: str, usage: str, usd: float, **attributes: str) -> dict:
    free_tier = attributes.pop("free_first", None)
    dimensions = {"a": {"beginRange": "0", "unit": "x", "pricePerUnit": {"USD": f"{usd:.10f}"}}}
    if free_tier:  # a free first tier, as CloudWatch Logs lists its always-free 5 GB
        dimensions = {
            "free": {"beginRange": "0", "unit": "x", "pricePerUnit": {"USD": "0.0000000000"}},
            "paid": {"beginRange": free_tier, "unit": "x", "pricePerUnit": {"USD": f"{usd}"}},
        }
    return {
        "serviceCode": service,
        "product": {
            "productFamily": family,
            "attributes": {"regionCode": REGION, "usagetype": usage, **attributes},
        },
        "terms": {"OnDemand": {"T1": {"priceDimensions": dimensions}}},
    }


# eu-west-1 as the Price List describes it, at prices unlike the shipped table's, and with
# look-alikes that must never be taken for the product wanted.
CATALOGUE = [
    product("AmazonECS", "Compute", "EU-Fargate-vCPU-Hours:perCPU", 0.05),
    product("AmazonECS", "Compute", "EU-Fargate-ARM-vCPU-Hours:perCPU", 0.9),
    product("AmazonECS", "Compute", "EU-Fargate-GB-Hours", 0.005),
    product("AmazonECS", "Compute", "EU-Fargate-Windows-GB-Hours", 0.9),
    product("AWSELB", "Load Balancer-Application", "EU-LoadBalancerUsage", 0.03),
    product("AWSELB", "Load Balancer-Application", "EU-TS-LoadBalancerUsage", 0.9),
    product("AWSELB", "Load Balancer-Application", "EU-LCUUsage", 0.01),
    product(
        "AmazonRDS",
        "Database Instance",
        "EU-InstanceUsage:db.t4g.micro",
        0.02,
        instanceType="db.t4g.micro",
        databaseEngine="MySQL",
        deploymentOption="Single-AZ",
    ),
    product(
        "AmazonRDS",
        "Database Instance",
        "EU-Multi-AZUsage:db.t4g.micro",
        0.9,
        instanceType="db.t4g.micro",
        databaseEngine="MySQL",
        deploymentOption="Multi-AZ",
    ),
    product(
        "AmazonRDS",
        "Database Storage",
        "EU-RDS:GP3-Storage",
        0.13,
        volumeType="General Purpose-GP3",
        deploymentOption="Single-AZ",
    ),
    product("AmazonRDS", "Storage Snapshot", "EU-RDS:ChargedBackupUsage", 0.1),
    product("AmazonVPC", "", "EU-PublicIPv4:InUseAddress", 0.006, group="VPCPublicIPv4Address"),
    product("AmazonVPC", "", "EU-PublicIPv4:IdleAddress", 0.9, group="VPCPublicIPv4Address"),
    product(
        "AmazonCloudWatch",
        "Data Payload",
        "EU-DataProcessing-Bytes",
        0.6,
        free_first="5",
        group="Ingested Logs",
    ),
    product("AmazonCloudWatch", "Data Payload", "EU-VendedLog-Bytes", 0.9, group="Ingested Logs"),
    product("AmazonCloudWatch", "Alarm", "EU-CW:AlarmMonitorUsage", 0.11),
    product("AmazonECR", "EC2 Container Registry", "EU-TimedStorage-ByteHrs", 0.12),
    product("AWSSecretsManager", "Secret", "EU-AWSSecretsManager-Secrets", 0.45),
]


class PriceListStub:
    """A `before-send` hook answering GetProducts as the Price List API does: the products of
    the service code matching every TERM_MATCH filter, as JSON strings, a page (MaxResults,
    at most 100) at a time with a NextToken while more are left; `error` answers every call
    with that error instead."""

    def __init__(self, catalogue: list[dict] = CATALOGUE, error: str | None = None) -> None:
        self.catalogue, self.error = catalogue, error
        self.asked: list[dict[str, Any]] = []  # each request, with the region it was signed for
        self.answered: dict[str, int] = {}  # products matched, by service code and filters
        self.lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        body = json.loads(request.body)
        signature = request.headers["Authorization"].decode()
        scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/pricing/", signature)
        with self.lock:
            self.asked.append({**body, "signed_for": scope.group(1) if scope else None})
        if self.error:
            answer = {"__type": self.error, "message": "injected"}
            return AWSResponse(request.url, 400, {}, _Raw(json.dumps(answer).encode()))
        found = [json.dumps(p) for p in self.catalogue if self._matches(p, body)]
        with self.lock:
            self.answered[self._query(body)] = len(found)
        start, size = int(body.get("NextToken") or 0), min(int(body.get("MaxResults", 100)), 100)
        page: dict[str, Any] = {"PriceList": found[start : start + size]}
        if start + size < len(found):
            page["NextToken"] = str(start + size)
        return AWSResponse(request.url, 200, {}, _Raw(json.dumps(page).encode()))

    @staticmethod
    def _query(body: dict) -> str:
        narrowed = [f"{f['Field']}={f['Value']}" for f in body["Filters"]]
        return " ".join([body["ServiceCode"], *narrowed[1:]])  # regionCode left out

    @staticmethod
    def _matches(item: dict, body: dict) -> bool:
        fields = {
            **item["product"]["attributes"],
            "productFamily": item["product"]["productFamily"],
        }
        return item["serviceCode"] == body["ServiceCode"] and all(
            f["Type"] == "TERM_MATCH" and fields.get(f["Field"]) == f["Value"]
            for f in body.get("Filters", [])
        )

    def hooks(self) -> list[tuple[str, Any]]:
        return [("before-send.pricing.GetProducts", self)]


@pytest.fixture
def local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client at a closed local port; the Price List asked there (not as an emulator)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", NOWHERE)


def staging_run(hooks: list[tuple[str, Any]] | None = None, spot: bool = False) -> Run:
    """Staging, on demand unless `spot`: the Price List lists on-demand Fargate only (Spot's
    price is the table's, named in the summary: see the test of it)."""
    run = make_run("staging", hooks=hooks, max_attempts=2)
    service = run.config.settings.service.model_copy(update={"spot": spot})
    settings = run.config.settings.model_copy(update={"service": service})
    run.config = run.config.model_copy(update={"settings": settings})
    return run


def line_prices(estimate: report.CostReport) -> dict[str, float]:
    return {line.item: line.unit_price for line in estimate.estimate.lines}


def test_the_price_list_prices_the_lines_when_it_answers(local_only: None) -> None:
    stub = PriceListStub()
    estimate = report.of_settings(staging_run(stub.hooks()))
    assert estimate.prices.source == "price-list"
    assert estimate.prices.summary.startswith("AWS Price List API, eu-west-1, asked ")
    assert line_prices(estimate) == {
        "Fargate vCPU": 0.05,
        "Fargate memory": 0.005,
        "Load balancer (ALB)": 0.03,  # not TS-LoadBalancerUsage's
        "Load balancer capacity": 0.01,
        "RDS db.t4g.micro": 0.02,  # Single-AZ's rate; Multi-AZ is two instances of it
        "RDS storage (gp3)": 0.13,
        "RDS backup storage": 0.1,
        "Public IPv4 addresses": 0.006,  # in use, not idle
        "CloudWatch Logs ingestion": 0.6,  # the first paid tier: free tiers are the account's
        "ECR image storage": 0.12,
        "Secrets Manager": 0.45,
        "CloudFront distribution": 0.0,
    }


def test_spot_is_priced_from_the_table_beside_the_price_list_and_named(local_only: None) -> None:
    estimate = report.of_settings(staging_run(PriceListStub().hooks(), spot=True))
    assert estimate.prices.source == "price-list"
    assert estimate.prices.from_table == ("fargate_spot.gb_hour", "fargate_spot.vcpu_hour")
    assert estimate.prices.summary.endswith(": Fargate Spot memory, Fargate Spot vCPU")
    usd = prices.table_prices(REGION)
    found = line_prices(estimate)
    assert found["Fargate Spot vCPU"] == usd["fargate_spot.vcpu_hour"]
    assert found["Load balancer (ALB)"] == 0.03, "the rest from the Price List"


def test_the_price_list_is_asked_at_its_nearest_endpoint_with_the_region_as_a_filter(
    local_only: None,
) -> None:
    stub = PriceListStub()
    report.of_settings(staging_run(stub.hooks()))
    assert {asked["signed_for"] for asked in stub.asked} == {"eu-central-1"}
    for asked in stub.asked:
        assert asked["FormatVersion"] == "aws_v1"
        assert {"Type": "TERM_MATCH", "Field": "regionCode", "Value": REGION} in asked["Filters"]
    services = sorted(asked["ServiceCode"] for asked in stub.asked)
    # One query per product group: ALB hours and LCUs together.
    assert services.count("AWSELB") == 1 and services.count("AmazonECS") == 1
    assert len(services) == 9


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [("eu-west-1", "eu-central-1"), ("ap-southeast-2", "ap-south-1"), ("us-west-2", "us-east-1")],
)
def test_endpoint_regions_are_those_botocore_knows_for_the_price_list(
    region: str, endpoint: str
) -> None:
    assert pricelist.endpoint_region(staging_run().aws, region) == endpoint


@pytest.mark.parametrize("error", ["AccessDeniedException", "ThrottlingException"])
def test_a_price_list_that_refuses_falls_back_to_the_table_and_says_why(
    local_only: None, error: str
) -> None:
    stub = PriceListStub(error=error)
    estimate = report.of_settings(staging_run(stub.hooks()))
    assert estimate.prices.source == "table"
    assert "table shipped with nnote-deploy, eu-west-1, compiled" in estimate.prices.summary
    if error == "AccessDeniedException":  # named as a refusal, with no role ARN in it
        assert "refused: pricing:GetProducts is not allowed" in estimate.prices.summary
        assert "arn:" not in estimate.prices.summary
    else:
        assert f"did not answer: pricing:get_products failed: {error}" in estimate.prices.summary
    assert line_prices(estimate)["Fargate vCPU"] == prices.table_prices(REGION)["fargate.vcpu_hour"]
    asked = {asked["ServiceCode"] for asked in stub.asked}
    assert len(asked) == 1, "the first query's refusal ends the asking: no other is tried"


def test_a_price_list_out_of_reach_falls_back_to_the_table(local_only: None) -> None:
    estimate = report.of_settings(staging_run())  # nothing answers on 127.0.0.1:9
    assert estimate.prices.source == "table"
    assert "cannot reach AWS" in estimate.prices.summary


def test_what_the_price_list_lacks_comes_from_the_table_and_is_named(local_only: None) -> None:
    without_ecr = [p for p in CATALOGUE if p["serviceCode"] != "AmazonECR"]
    estimate = report.of_settings(staging_run(PriceListStub(without_ecr).hooks()))
    assert estimate.prices.source == "price-list"
    assert estimate.prices.from_table == ("ecr.storage_gb_month",)
    assert "from the table shipped with nnote-deploy" in estimate.prices.summary
    assert estimate.prices.summary.endswith(": ECR storage")
    assert line_prices(estimate)["ECR image storage"] == 0.1
    assert line_prices(estimate)["Fargate vCPU"] == 0.05


def look_alikes(service: str, family: str, count: int, **attributes: str) -> list[dict]:
    """`count` products of a service that none of our queries wants (metrics, API requests,
    data transfer...): what an unfiltered query would wade through."""
    return [
        product(service, family, f"EU-Other-{family}-{n}", 0.9, **attributes) for n in range(count)
    ]


CROWDED = [
    *CATALOGUE,
    *look_alikes("AmazonCloudWatch", "Metric", 150),
    *look_alikes("AmazonCloudWatch", "API Request", 150),
    *look_alikes("AmazonCloudWatch", "Data Payload", 60, group="Vended Logs"),
    *look_alikes("AmazonECR", "Data Transfer", 150),
    *look_alikes("AWSSecretsManager", "API Request", 120),
]


def test_cloudwatch_ecr_and_secrets_queries_answer_a_handful_among_hundreds(
    local_only: None,
) -> None:
    stub = PriceListStub(CROWDED)
    run = make_run("prod", hooks=stub.hooks(), max_attempts=2)  # prod: alarms too
    estimate = report.of_settings(run)
    assert estimate.prices.source == "price-list", estimate.prices.summary
    assert estimate.prices.from_table == ()
    found = line_prices(estimate)
    assert found["CloudWatch Logs ingestion"] == 0.6
    assert found["CloudWatch alarms"] == 0.11
    assert found["ECR image storage"] == 0.12
    assert found["Secrets Manager"] == 0.45
    wide = {query: n for query, n in stub.answered.items() if n > 5}
    assert wide == {}, "every query narrowed to a handful of products"
    assert {q.split()[0] for q in stub.answered} >= {"AmazonCloudWatch", "AmazonECR"}


def test_a_query_answering_more_than_a_page_falls_back_to_the_table_and_says_which(
    local_only: None,
) -> None:
    crowded = [*CATALOGUE, *look_alikes("AWSSecretsManager", "Secret", 100)]
    stub = PriceListStub(crowded)
    estimate = report.of_settings(staging_run(stub.hooks()))
    assert estimate.prices.source == "table"
    assert estimate.prices.summary.endswith(
        "(the AWS Price List API answered more than 100 products for AWSSecretsManager "
        "(productFamily Secret): too many to pick a price from)"
    )
    assert (
        line_prices(estimate)["Secrets Manager"]
        == prices.table_prices(REGION)["secretsmanager.secret_month"]
    )
    pages = [a for a in stub.asked if a["ServiceCode"] == "AWSSecretsManager"]
    assert [a.get("NextToken") for a in pages] == [None, "100"], "read past the first page"
    assert all(a["MaxResults"] == 100 for a in pages)


def test_two_different_prices_for_one_product_are_not_guessed_between() -> None:
    twice = [
        product("AmazonECR", "x", "EU-TimedStorage-ByteHrs", 0.1),
        product("AmazonECR", "x", "EU-TimedStorage-ByteHrs", 0.2),
    ]
    assert pricelist.price_of(twice, "TimedStorage-ByteHrs") is None
    assert pricelist.price_of(twice[:1], "TimedStorage-ByteHrs") == 0.1
    plain = [product("AWSELB", "x", "LoadBalancerUsage", 0.0225)]  # us-east-1: no prefix
    assert pricelist.price_of(plain, "LoadBalancerUsage") == 0.0225


def test_an_emulator_is_not_asked_for_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    monkeypatch.delenv("AWS_ENDPOINT_URL_PRICING", raising=False)
    stub = PriceListStub()
    run = staging_run(stub.hooks())
    estimate = report.of_settings(run)
    assert stub.asked == [] and not any(c.startswith("pricing:") for c in run.aws.log.calls)
    assert estimate.prices.source == "table"
    assert "not asked: AWS_ENDPOINT_URL points every client at an emulator" in (
        estimate.prices.summary
    )


def test_a_region_neither_source_prices_is_one_clear_error(local_only: None) -> None:
    run = make_run(
        "staging",
        hooks=PriceListStub(error="AccessDeniedException").hooks(),
        max_attempts=2,
        region="ap-southeast-2",
    )
    with pytest.raises(prices.CostError) as refused:
        report.of_settings(run)
    assert refused.value.message.startswith("no prices for ap-southeast-2: the AWS Price List")
    assert "refused: pricing:GetProducts is not allowed" in refused.value.message
    assert refused.value.message.endswith("the shipped table covers eu-west-1, us-east-1 only")
    assert "pricing:GetProducts" in refused.value.hint


def test_a_price_the_table_only_estimates_says_so_on_the_lines_it_prices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """us-east-1 has no Spot figure of its own: eu-west-1's stands in, and each line it prices
    says so (in the text and the JSON alike), beside the line's own note; eu-west-1's do not."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)  # an emulator: the table alone
    monkeypatch.delenv("AWS_ENDPOINT_URL_PRICING", raising=False)
    run = make_run("staging", region="us-east-1")
    service = run.config.settings.service.model_copy(
        update={"autoscaling": AutoscalingSettings(min_tasks=1, max_tasks=3)}
    )
    settings = run.config.settings.model_copy(update={"service": service})
    run.config = run.config.model_copy(update={"settings": settings})
    found = report.of_settings(run)
    said = "estimate: eu-west-1's Spot rate, as no us-east-1 Spot price was found"
    notes = {line.item: line.note for line in found.estimate.lines}
    assert notes["Fargate Spot vCPU"] == f"autoscaling: up to 3 tasks; {said}"
    assert notes["Fargate Spot memory"] == f"autoscaling: up to 3 tasks; {said}"
    assert not any("estimate" in note for item, note in notes.items() if "Spot" not in item)
    estimates = found.as_json()["prices"]["estimates"]
    assert set(estimates) == {"fargate_spot.gb_hour", "fargate_spot.vcpu_hour"}
    ireland = report.of_settings(make_run("staging"))
    assert ireland.prices.estimates == {}
    assert not any("estimate" in line.note for line in ireland.estimate.lines)


def test_an_instance_class_the_table_lacks_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)  # an emulator: the table alone
    monkeypatch.delenv("AWS_ENDPOINT_URL_PRICING", raising=False)
    run = staging_run()
    db = run.config.settings.db.model_copy(update={"instance_class": "db.t4g.small"})
    settings = run.config.settings.model_copy(update={"db": db})
    run.config = run.config.model_copy(update={"settings": settings})
    with pytest.raises(prices.CostError) as refused:
        report.of_settings(run)
    assert refused.value.message.startswith("no price for RDS db.t4g.small in eu-west-1: ")
    assert refused.value.message.endswith("and the shipped table does not list it")


# -- the deploy policy ------------------------------------------------------------------------


def test_the_policy_allows_the_price_list_and_the_old_policy_did_not(local_only: None) -> None:
    log = AuthorizationLog(lookup=None)  # type: ignore[arg-type]  # GetProducts looks nothing up
    stub = PriceListStub()
    report.of_settings(staging_run([*recording_hooks(log, REGION), *stub.hooks()]))
    assert log.unmapped == [] and {c.operation for c in log} == {"GetProducts"}
    assert log.denied(POLICY) == []
    kept = [s for s in POLICY["Statement"] if s["Sid"] != "CostPriceListRead"]
    assert log.denied({**POLICY, "Statement": kept}) == ["pricing:GetProducts on *"]


def test_the_policy_grants_nothing_more_for_prices() -> None:
    [statement] = [s for s in POLICY["Statement"] if s["Sid"] == "CostPriceListRead"]
    assert statement == {
        "Sid": "CostPriceListRead",
        "Effect": "Allow",
        "Action": ["pricing:GetProducts"],
        "Resource": "*",
    }


# -- the model's price keys are what the Price List is asked for -----------------------------


def test_every_price_key_of_the_shipped_envs_has_a_price_list_query_but_spot() -> None:
    from tests.deployer.test_cost_model import settings

    keys = model.price_keys(
        [footprint.wanted(settings(env)) for env in ("staging", "prod")], Assumptions()
    )
    spot = {"fargate_spot.vcpu_hour", "fargate_spot.gb_hour"}
    assert spot <= keys, "staging runs on Spot"
    assert all(pricelist.query(key) is not None for key in keys - spot)
    assert pricelist.query("fargate_spot.vcpu_hour") is None  # the pricing page only


def test_the_price_list_is_given_seconds_not_minutes(local_only: None) -> None:
    """A host that accepts and never answers kept the deployer's usual client (8 adaptive
    attempts, 60 s reads) for nine minutes before the table stood in: the Price List gets two
    tries of at most 13 s each."""
    tries: list[float] = []

    def never_answers(request: Any, **_: Any) -> None:
        tries.append(time.monotonic())
        raise ReadTimeoutError(endpoint_url=request.url)

    run = staging_run([("before-send.pricing.GetProducts", never_answers)])
    estimate = report.of_settings(run)
    assert estimate.prices.source == "table" and "did not answer" in estimate.prices.summary
    assert len(tries) == 2, "two tries, then the table"
    config = run.aws.in_region("us-east-1").impatient().client("pricing").meta.config
    assert config.connect_timeout + config.read_timeout <= 15
