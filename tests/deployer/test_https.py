"""HTTPS by default: CloudFront in front of the load balancer without a domain; an ACM
certificate, its DNS validation, the HTTPS listener and an alias record with one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployer import inventory, pipeline
from deployer.aws import is_mutating
from deployer.config import load
from deployer.errors import DeployError
from deployer.steps.base import Run
from deployer.steps.endpoint import ALL_VIEWER, CACHING_DISABLED
from deployer.steps.loadbalancer import ORIGIN_HEADER, SSL_POLICY
from tests.deployer import sweep
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.sweep import QuietEvents
from tests.support.realism import DEPLOYER_KEY, Realism

DOMAIN = "notes.example.com"


def with_settings(tmp_path: Path, *lines: str) -> Path:
    text = (
        (ROOT / "deploy.toml")
        .read_text()
        .replace("[env.staging]", "\n".join(["[env.staging]", *lines]))
    )
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    return path


def run_with(config: Path | None = None, **kwargs: Any) -> Run:
    return make_run(config=config, **kwargs)


def up(run: Run) -> pipeline.UpResult:
    return pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))


def down(run: Run) -> pipeline.DownResult:
    return pipeline.down(run, QuietEvents())


def with_domain(tmp_path: Path) -> Path:
    return with_settings(tmp_path, f'service.domain = "{DOMAIN}"')


def hosted_zone() -> str:
    """The user's zone for the domain, as they have it before any `up`."""
    created = client("route53").create_hosted_zone(Name="example.com", CallerReference="zone")
    return str(created["HostedZone"]["Id"])


def records_of(zone_id: str) -> list[dict[str, Any]]:
    return list(
        client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    )


def client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1" if service == "cloudfront" else REGION)


def load_balancer() -> dict[str, Any]:
    return dict(
        client("elbv2").describe_load_balancers(Names=["nnote-staging"])["LoadBalancers"][0]
    )


def listeners() -> dict[int, dict[str, Any]]:
    arn = load_balancer()["LoadBalancerArn"]
    return {
        x["Port"]: x for x in client("elbv2").describe_listeners(LoadBalancerArn=arn)["Listeners"]
    }


def lb_ingress() -> list[dict[str, Any]]:
    groups = client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["nnote-staging-lb"]}]
    )["SecurityGroups"]
    return list(groups[0]["IpPermissions"])


def distributions() -> list[dict[str, Any]]:
    listed = client("cloudfront").list_distributions()["DistributionList"]
    return list(listed.get("Items") or [])


def container_environment() -> dict[str, str]:
    ecs = client("ecs")
    service = ecs.describe_services(cluster="nnote-staging", services=["nnote-staging"])[
        "services"
    ][0]
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    container = definition["taskDefinition"]["containerDefinitions"][0]
    return {e["name"]: e["value"] for e in container["environment"]}


def test_a_fresh_up_serves_https_through_cloudfront_only(aws_env: dict[str, str]) -> None:
    result = up(run_with())

    assert result.url is not None and result.url.startswith("https://")
    assert result.url.endswith(".cloudfront.net")
    [listed] = distributions()
    assert result.url == f"https://{listed['DomainName']}"
    cloudfront = client("cloudfront")
    config = cloudfront.get_distribution_config(Id=listed["Id"])["DistributionConfig"]
    [origin] = config["Origins"]["Items"]
    lb = load_balancer()
    assert origin["DomainName"] == lb["DNSName"]
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "http-only"
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["CachePolicyId"] == CACHING_DISABLED  # every page is per user
    assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER
    tags = cloudfront.list_tags_for_resource(Resource=listed["ARN"])["Tags"]["Items"]
    assert {"Key": "nnote:env", "Value": "staging"} in tags

    # The load balancer answers only CloudFront, and only requests with its secret header.
    prefix_list = client("ec2").describe_managed_prefix_lists(
        Filters=[
            {
                "Name": "prefix-list-name",
                "Values": ["com.amazonaws.global.ipv6.cloudfront.origin-facing"],
            }
        ]
    )["PrefixLists"][0]["PrefixListId"]
    [rule] = lb_ingress()
    assert (rule["FromPort"], rule["ToPort"]) == (80, 80)
    assert rule["IpRanges"] == [] and rule.get("Ipv6Ranges", []) == []
    assert [p["PrefixListId"] for p in rule["PrefixListIds"]] == [prefix_list]
    assert set(listeners()) == {80}
    default = listeners()[80]["DefaultActions"][0]
    assert default["Type"] == "fixed-response"
    assert default["FixedResponseConfig"]["StatusCode"] == "403"
    rules = client("elbv2").describe_rules(ListenerArn=listeners()[80]["ListenerArn"])["Rules"]
    [forward] = [r for r in rules if not r["IsDefault"]]
    [condition] = forward["Conditions"]
    assert condition["HttpHeaderConfig"]["HttpHeaderName"] == ORIGIN_HEADER
    [secret] = condition["HttpHeaderConfig"]["Values"]
    assert len(secret) >= 32
    assert origin["CustomHeaders"]["Items"] == [
        {"HeaderName": ORIGIN_HEADER, "HeaderValue": secret}
    ]
    assert forward["Actions"][0]["Type"] == "forward"

    environment = container_environment()
    assert environment["SESSION_COOKIE_SECURE"] == "1"  # Secure cookies, and the app sends HSTS
    assert environment["PROXY_FIX_X_FOR"] == "2"  # the viewer's address is before CloudFront's

    again = run_with()
    converged = up(again)
    assert converged.changes == []
    assert again.aws.log.mutating == 0
    assert converged.url == result.url

    finished = down(run_with())
    assert finished.leftovers == []
    assert distributions() == []


def test_the_origin_secret_never_shows_in_status_plan_or_outputs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outputs = tmp_path / "outputs"
    created = cli("up", "--yes", env={"GITHUB_OUTPUT": str(outputs)})
    assert created.code == 0, created.text
    rules = client("elbv2").describe_rules(ListenerArn=listeners()[80]["ListenerArn"])["Rules"]
    secret = next(r for r in rules if not r["IsDefault"])["Conditions"][0]["HttpHeaderConfig"][
        "Values"
    ][0]
    [listed] = distributions()
    url = f"https://{listed['DomainName']}"
    assert created.out.strip().splitlines() == [url]  # up's result, on stdout, is the URL
    assert f"service_url={url}" in outputs.read_text()
    status = cli("status")
    assert status.code == 0 and status.out.splitlines()[0] == f"url: {url}"
    document = json.loads(cli("status", "--json").out)
    assert document["url"] == url
    plan = cli("plan")
    for text in (created.text, status.text, plan.text, json.dumps(document), outputs.read_text()):
        assert secret not in text


def test_a_domain_gets_a_validated_certificate_https_listener_and_alias(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    zone_id = hosted_zone()
    before = records_of(zone_id)
    config = with_domain(tmp_path)

    result = up(run_with(config))

    assert result.url == f"https://{DOMAIN}"
    acm = client("acm")
    [summary] = acm.list_certificates()["CertificateSummaryList"]
    certificate = acm.describe_certificate(CertificateArn=summary["CertificateArn"])["Certificate"]
    assert (certificate["DomainName"], certificate["Status"]) == (DOMAIN, "ISSUED")
    validation = certificate["DomainValidationOptions"][0]["ResourceRecord"]
    records = {(r["Name"], r["Type"]): r for r in records_of(zone_id)}
    assert records[(validation["Name"], "CNAME")]["ResourceRecords"] == [
        {"Value": validation["Value"]}
    ]
    alias = records[(f"{DOMAIN}.", "A")]["AliasTarget"]
    lb = load_balancer()
    assert alias["DNSName"].rstrip(".") == f"dualstack.{lb['DNSName']}".lower()
    assert alias["HostedZoneId"] == lb["CanonicalHostedZoneId"]

    https, http = listeners()[443], listeners()[80]
    assert https["Protocol"] == "HTTPS" and https["SslPolicy"] == SSL_POLICY
    assert https["Certificates"][0]["CertificateArn"] == certificate["CertificateArn"]
    assert http["DefaultActions"][0]["Type"] == "redirect"  # plain HTTP answers only a redirect
    assert http["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    ports = {(r["FromPort"], r["IpRanges"][0]["CidrIp"]) for r in lb_ingress()}
    assert ports == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    assert distributions() == []
    assert container_environment()["SESSION_COOKIE_SECURE"] == "1"
    assert container_environment()["PROXY_FIX_X_FOR"] == "1"

    again = run_with(config)
    assert up(again).changes == []
    assert again.aws.log.mutating == 0

    finished = down(run_with(config))
    assert finished.leftovers == []
    assert acm.list_certificates()["CertificateSummaryList"] == []
    # The hosted zone is the user's: it stays, with exactly the records it had.
    after = records_of(zone_id)
    assert after == before


def test_a_domain_without_a_hosted_zone_is_refused_before_any_change(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    run = run_with(with_domain(tmp_path))
    with pytest.raises(
        DeployError, match=r"no public Route 53 hosted zone for notes\.example\.com"
    ) as error:
        up(run)
    assert "example.com" in error.value.hint
    assert run.aws.log.mutating == 0


def test_a_record_someone_else_wrote_is_never_overwritten(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    route53 = client("route53")
    zone_id = hosted_zone()
    theirs = {
        "Name": f"{DOMAIN}.",
        "Type": "A",
        "TTL": 60,
        "ResourceRecords": [{"Value": "192.0.2.7"}],
    }
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": theirs}]},
    )
    run = run_with(with_domain(tmp_path))
    with pytest.raises(DeployError, match="already has an A record"):
        up(run)
    assert run.aws.log.mutating == 0
    records = records_of(zone_id)
    assert theirs in records


def test_a_failed_up_with_a_domain_leaves_the_zone_as_it_was(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.deployer.test_down import FailFirst

    zone_id = hosted_zone()
    before = records_of(zone_id)
    config = with_domain(tmp_path)
    broken = FailFirst("CreateService", 1, "InvalidParameterException", "injected")
    run = run_with(config, hooks=broken.hooks())
    with pytest.raises(pipeline.UpFailed) as failed:
        up(run)
    assert failed.value.rollback is not None and failed.value.rollback.failed == []
    assert records_of(zone_id) == before
    assert client("acm").list_certificates()["CertificateSummaryList"] == []
    assert inventory.leftovers(run.aws, run.owner, only_run=True) == []


def test_switching_from_cloudfront_to_a_domain_replaces_the_front_door(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    up(run_with())
    [distribution] = distributions()
    hosted_zone()
    config = with_domain(tmp_path)

    switch = run_with(config)
    changes = pipeline.plan(switch, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    kinds = {(c.action, c.type) for c in changes}
    assert ("delete", "cloudfront:distribution") in kinds
    assert ("create", "acm:certificate") in kinds
    result = up(run_with(config))

    assert result.url == f"https://{DOMAIN}"
    assert distributions() == []
    assert set(listeners()) == {80, 443}
    rules = client("elbv2").describe_rules(ListenerArn=listeners()[80]["ListenerArn"])["Rules"]
    assert [r for r in rules if not r["IsDefault"]] == []  # the origin rule went with CloudFront
    ports = {(r["FromPort"], r["IpRanges"][0]["CidrIp"]) for r in lb_ingress()}
    assert ports == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    assert distribution["Id"] not in {d["Id"] for d in distributions()}


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (['service.hosted_zone = "example.com"'], "set domain too"),
        (
            ['service.domain = "notes.example.com"', 'service.hosted_zone = "example.org"'],
            "not inside example.org",
        ),
        (['service.domain = "Notes.Example.com"'], "service.domain"),
        (['service.domain = "localhost"'], "service.domain"),
        (['service.domain = "https://notes.example.com"'], "service.domain"),
    ],
)
def test_domain_settings_are_checked_before_any_call(
    tmp_path: Path, lines: list[str], problem: str
) -> None:
    from deployer.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        load(with_settings(tmp_path, *lines), "staging")
    assert any(problem in p for p in error.value.problems), error.value.problems


# The calls only a domain makes (the default path's are in the full sweep).
DOMAIN_CALLS = {
    "RequestCertificate",
    "ChangeResourceRecordSets",
    "CreateListener",
    "DeleteCertificate",
}


def test_the_domain_path_survives_a_fault_in_each_of_its_calls(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    """Each of its own calls fails in turn (a modeled AWS error): `up` rolls back to exactly
    the account before it (the user's zone with its records included), `down` can be run
    again to finish, and nothing is left."""
    sweep.CONFIG = with_domain(tmp_path)
    try:
        for command in ("up", "down"):
            calls = sweep.probe_calls(command, aws_env["AWS_ENDPOINT_URL"])
            cases = [case for case in calls if case[0] in DOMAIN_CALLS]
            assert len(cases) >= 3, (command, calls)
            result = sweep.run_cases(command, "client-error", aws_env["AWS_ENDPOINT_URL"], cases)
            assert result.failures == [], "\n".join(result.failures)
    finally:
        sweep.CONFIG = None


def test_a_failed_switch_to_a_domain_keeps_cloudfront_serving(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    """The old front door goes only once everything new works: a switch that fails half-way
    rolls back to the distribution, its origin rule and its security group rule, all there."""
    from tests.deployer.test_down import FailFirst

    up(run_with())
    [distribution] = distributions()
    before = snapshot_front()
    hosted_zone()
    config = with_domain(tmp_path)
    broken = FailFirst("RegisterTaskDefinition", 1, "ClientException", "injected")
    with pytest.raises(pipeline.UpFailed) as failed:
        up(run_with(config, hooks=broken.hooks()))
    assert failed.value.rollback is not None and failed.value.rollback.failed == []

    assert [d["Id"] for d in distributions()] == [distribution["Id"]]
    assert distributions()[0]["Enabled"]
    assert snapshot_front() == before
    assert client("acm").list_certificates()["CertificateSummaryList"] == []


def snapshot_front() -> dict[str, Any]:
    """What lets CloudFront in: the security group rules, the listeners and their rules."""
    elb = client("elbv2")
    return {
        "ingress": sorted(json.dumps(rule, sort_keys=True) for rule in lb_ingress()),
        "listeners": {
            port: (
                listener["DefaultActions"],
                [
                    (rule["Priority"], rule["Conditions"], rule["Actions"])
                    for rule in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
                ],
            )
            for port, listener in listeners().items()
        },
    }


def test_a_changed_or_removed_domain_leaves_no_old_record_or_certificate(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    zone_id = hosted_zone()
    before = records_of(zone_id)
    up(run_with(with_domain(tmp_path)))
    other = tmp_path / "other"
    other.mkdir()
    moved = up(run_with(with_settings(other, 'service.domain = "app.example.com"')))

    assert moved.url == "https://app.example.com"
    acm = client("acm")
    domains = [c["DomainName"] for c in acm.list_certificates()["CertificateSummaryList"]]
    assert domains == ["app.example.com"]
    names = {r["Name"] for r in records_of(zone_id)}
    assert f"{DOMAIN}." not in names and not any(n.endswith(f".{DOMAIN}.") for n in names)
    assert "app.example.com." in names

    removed = up(run_with())  # no domain: CloudFront again
    assert removed.url is not None and removed.url.endswith(".cloudfront.net")
    assert acm.list_certificates()["CertificateSummaryList"] == []
    assert records_of(zone_id) == before
    assert set(listeners()) == {80}
    assert down(run_with()).leftovers == []


def test_verify_names_the_missing_hosted_zone_and_up_creates_nothing(  # type: ignore[no-untyped-def]
    cli, realism: Realism, tmp_path: Path
) -> None:
    config = with_domain(tmp_path)
    checked = cli("verify", "--image", PREBUILT_IMAGE, config=config)
    assert checked.code == 1
    assert f"FAIL HTTPS: no public Route 53 hosted zone for {DOMAIN}" in checked.text
    assert "create the hosted zone example.com" in checked.text
    refused = cli("up", "--yes", "--image", PREBUILT_IMAGE, config=config)
    assert refused.code == 1 and "Traceback" not in refused.text
    assert f"no public Route 53 hosted zone for {DOMAIN}" in refused.text
    made = [c.operation for c in realism.calls if c.access_key == DEPLOYER_KEY]
    assert made and [op for op in made if is_mutating(op)] == []


def test_an_up_with_nothing_to_change_still_gives_the_url(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A re-run of the deploy job must still hand `service_url` to the next step."""
    assert cli("up", "--yes").code == 0
    outputs = tmp_path / "outputs"
    again = cli("up", "--yes", env={"GITHUB_OUTPUT": str(outputs)})
    assert again.code == 0 and "no changes" in again.text
    [listed] = distributions()
    assert f"service_url=https://{listed['DomainName']}" in outputs.read_text()
    assert again.out.strip().splitlines() == [f"https://{listed['DomainName']}"]
