"""endpoint: the environment's public HTTPS URL.

- No domain (the default): a CloudFront distribution in front of the load balancer. Viewers
  get `https://<id>.cloudfront.net` with CloudFront's certificate (plain HTTP redirects to
  HTTPS); CloudFront reaches the load balancer over HTTP (its own name has no certificate),
  adding the secret origin header the load balancer's listener rule requires, and caches
  nothing (every page is per user). A distribution has no name: ours is the one whose
  comment names the environment and whose tags say so.
- `service.domain`: an alias record for the domain, in its Route 53 zone, to the load balancer
  (whose HTTPS listener carries the domain's certificate): `https://notes.example.com`.
- `service.certificate_arn` alone: the load balancer's own name, over HTTPS.

`down` disables the distribution, waits while CloudFront takes it out of its edge locations
(minutes), then deletes it; it deletes the alias record only while it still leads to the load
balancer of this environment.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from deployer import dns
from deployer.aws import absent, call, pages
from deployer.errors import AwsError, DeployError, NotOwnedError
from deployer.inventory import Resource, key_of
from deployer.steps.base import Change, Observed, Outputs, Run, Step, wait_for
from deployer.steps.loadbalancer import ORIGIN_HEADER, secret_of

COMPONENT = "endpoint"
GONE = ("NoSuchDistribution",)
ORIGIN_ID = "load-balancer"
# AWS-managed policies (the same ids in every account): cache nothing, and pass the viewer's
# headers (Host included: the app builds its links from it), cookies and query strings on.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
# A new or changed distribution reaches every edge location within minutes as a rule.
DEPLOY_TIMEOUT_SECONDS = 1800.0
ORIGIN_ADDRESSES = "ipv6"


def _cloudfront(run: Run, operation: str, **params: Any) -> Any:
    return call(run.aws, "cloudfront", operation, **params)


class EndpointStep(Step):
    name = COMPONENT
    depends_on = ("loadbalancer", "certificate")

    def observe(self, run: Run) -> Observed:
        service = run.config.settings.service
        lb = _load_balancer(run)
        zone = (
            dns.find_zone(run.aws, service.domain, service.hosted_zone) if service.domain else None
        )
        records = [
            dns.get_record(run.aws, zone["Id"], service.domain, kind)
            for kind in ("A", "CNAME")
            if zone and service.domain
        ]
        found = next((r for r in records if r), None)
        ours = lb is not None and dns.points_at(found, lb["DNSName"])
        return {
            "lb_dns": lb["DNSName"] if lb else None,
            "zone": zone,
            "record": found if ours else None,
            "foreign_record": None if ours else found,  # someone else's A or CNAME there
            "distribution": _our_distribution(run),
        }

    def resources(self, observed: Observed) -> list[Resource]:
        found = []
        distribution = observed["distribution"]
        if distribution:
            state = distribution["Status"] if distribution["Enabled"] else "disabled"
            found.append(
                Resource(
                    COMPONENT,
                    "cloudfront:distribution",
                    f"https://{distribution['DomainName']}",
                    state,
                )
            )
        if observed["record"]:
            name = observed["record"]["Name"].rstrip(".")
            found.append(Resource(COMPONENT, "route53:record", f"https://{name}", "alias"))
        return found

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        service = run.config.settings.service
        changes = []
        distribution = observed["distribution"]
        if service.front == "cloudfront":
            if distribution is None:
                changes.append(
                    Change(
                        COMPONENT,
                        "create",
                        "cloudfront:distribution",
                        run.config.prefix,
                        "https://*.cloudfront.net in front of the load balancer",
                    )
                )
            elif observed["lb_dns"] and _drift(run, distribution, observed["lb_dns"]):
                detail = _drift(run, distribution, observed["lb_dns"])
                changes.append(
                    Change(
                        COMPONENT, "update", "cloudfront:distribution", distribution["Id"], detail
                    )
                )
        elif distribution is not None:
            changes.append(
                Change(
                    COMPONENT,
                    "delete",
                    "cloudfront:distribution",
                    distribution["Id"],
                    "no longer the front door, once the new one serves",
                )
            )
        if service.domain:
            if observed["zone"] is None:
                raise dns.no_zone(service.domain, service.hosted_zone)
            if observed["foreign_record"]:
                raise _taken(service.domain, observed["foreign_record"])
            if observed["record"] is None:
                changes.append(
                    Change(
                        COMPONENT,
                        "create",
                        "route53:record",
                        service.domain,
                        "alias to the load balancer",
                    )
                )
        return changes

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        service = run.config.settings.service
        lb = inputs["loadbalancer"]
        observed = self.observe(run)
        distribution = observed["distribution"]
        if service.front == "cloudfront":
            distribution = self._converge_distribution(run, distribution, lb)
            return {"url": f"https://{distribution['DomainName']}"}
        url = f"https://{lb['dns_name']}"
        if service.domain:
            self._ensure_alias(run, service.domain, observed, lb)
            url = f"https://{service.domain}"
        if distribution is not None:  # the old front door goes once everything new works
            delete = partial(self._delete_distribution, run, distribution)
            run.retire(COMPONENT, f"CloudFront distribution {distribution['Id']}", delete)
        return {"url": url}

    # -- CloudFront ------------------------------------------------------------------------

    def _converge_distribution(
        self, run: Run, found: dict[str, Any] | None, lb: Outputs
    ) -> dict[str, Any]:
        if found is None:
            created = self._create_distribution(run, lb)
        else:
            created = self._update_distribution(run, found, lb)
        return self._wait_deployed(run, created["Id"], "to serve the environment's URL")

    def _create_distribution(self, run: Run, lb: Outputs) -> dict[str, Any]:
        config = distribution_config(run, lb["dns_name"], lb["origin_secret"])
        try:
            distribution = _cloudfront(
                run,
                "create_distribution_with_tags",
                DistributionConfigWithTags={
                    "DistributionConfig": config,
                    "Tags": {"Items": run.owner.tags(COMPONENT)},
                },
            )["Distribution"]
        except AwsError as error:
            # This run's caller reference: the create went through, its answer was lost.
            distribution = (
                _our_distribution(run) if error.code == "DistributionAlreadyExists" else None
            )
            if distribution is None:
                raise
        ident = distribution["Id"]
        run.journal.record(
            COMPONENT,
            f"created CloudFront distribution {ident}",
            lambda: self._delete_distribution(run, {"Id": ident}),
            made=key_of(distribution["ARN"]),
        )
        return dict(distribution)

    def _update_distribution(self, run: Run, found: dict[str, Any], lb: Outputs) -> dict[str, Any]:
        ident = found["Id"]
        answer = _cloudfront(run, "get_distribution_config", Id=ident)
        current, etag = answer["DistributionConfig"], answer["ETag"]
        wanted = _converged(current, lb["dns_name"], lb["origin_secret"])
        if wanted == current:
            return found
        updated = _cloudfront(
            run, "update_distribution", Id=ident, IfMatch=etag, DistributionConfig=wanted
        )
        run.journal.record(
            COMPONENT,
            f"changed CloudFront distribution {ident}",
            lambda: self._restore(run, ident, current),
        )
        return dict(updated["Distribution"])

    def _restore(self, run: Run, ident: str, config: dict[str, Any]) -> None:
        etag = _cloudfront(run, "get_distribution_config", Id=ident)["ETag"]
        _cloudfront(run, "update_distribution", Id=ident, IfMatch=etag, DistributionConfig=config)

    def _wait_deployed(self, run: Run, ident: str, why: str) -> dict[str, Any]:
        def deployed() -> dict[str, Any] | None:
            distribution = _cloudfront(run, "get_distribution", Id=ident)["Distribution"]
            return dict(distribution) if distribution["Status"] == "Deployed" else None

        def timed_out(waited: float) -> DeployError:
            return DeployError(
                f"CloudFront distribution {ident} is still deploying after {waited:.0f}s",
                "run the command again to keep waiting; AWS Health shows CloudFront issues",
            )

        waiting = f"waiting for CloudFront {why}"
        return wait_for(run, COMPONENT, deployed, waiting, DEPLOY_TIMEOUT_SECONDS, timed_out)

    def _delete_distribution(self, run: Run, distribution: dict[str, Any]) -> None:
        """Disable, wait until every edge has let go, delete. Gone already is done."""
        ident = distribution["Id"]
        answer = absent(run.aws, "cloudfront", "get_distribution_config", GONE, Id=ident)
        if answer is None:
            return
        config, etag = answer["DistributionConfig"], answer["ETag"]
        if config["Enabled"]:
            disabled = {**config, "Enabled": False}
            etag = _cloudfront(
                run, "update_distribution", Id=ident, IfMatch=etag, DistributionConfig=disabled
            )["ETag"]
        self._wait_deployed(run, ident, f"to disable distribution {ident} before deleting it")
        absent(run.aws, "cloudfront", "delete_distribution", GONE, Id=ident, IfMatch=etag)

    # -- Route 53 ---------------------------------------------------------------------------

    def _ensure_alias(self, run: Run, domain: str, observed: Observed, lb: Outputs) -> None:
        zone = observed["zone"]
        if zone is None:
            raise dns.no_zone(domain, run.config.settings.service.hosted_zone)
        found = observed["record"] or observed["foreign_record"]
        if found is not None and dns.points_at(found, lb["dns_name"]):
            return
        if found is not None:
            raise _taken(domain, found)
        record = dns.alias(domain, lb["dns_name"], lb["zone_id"])
        dns.create(run.aws, zone["Id"], record)
        run.journal.record(
            COMPONENT,
            f"created alias record {domain}",
            partial(dns.delete, run.aws, zone["Id"], record),
        )

    def destroy(self, run: Run, observed: Observed) -> None:
        if observed["record"] and observed["zone"]:
            dns.delete(run.aws, observed["zone"]["Id"], observed["record"])
        if observed["distribution"]:
            self._delete_distribution(run, observed["distribution"])


def public_url(run: Run, observed: Observed | None) -> str | None:
    """The environment's URL from an observation of this step; None while it has none."""
    if not observed:
        return None
    service = run.config.settings.service
    if service.front == "cloudfront":
        distribution = observed["distribution"]
        return f"https://{distribution['DomainName']}" if distribution else None
    if service.domain:
        return f"https://{service.domain}" if observed["record"] else None
    return f"https://{observed['lb_dns']}" if observed["lb_dns"] else None


def distribution_config(run: Run, lb_dns: str, secret: str) -> dict[str, Any]:
    """The distribution as CreateDistribution takes it."""
    return {
        # Unique per run: a create retried after a lost answer returns the same distribution.
        "CallerReference": f"{run.config.prefix}-{run.owner.run_id}",
        "Comment": comment(run),
        "Enabled": True,
        "PriceClass": "PriceClass_100",
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": ORIGIN_ID,
                    "DomainName": lb_dns,
                    "CustomHeaders": {
                        "Quantity": 1,
                        "Items": [{"HeaderName": ORIGIN_HEADER, "HeaderValue": secret}],
                    },
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        # The load balancer's own name has no certificate CloudFront would
                        # accept, so this hop is HTTP (README: "HTTPS", what this leaves).
                        "OriginProtocolPolicy": "http-only",
                        # The load balancer has public IPv6 addresses only (loadbalancer.py).
                        "IpAddressType": ORIGIN_ADDRESSES,
                        "OriginReadTimeout": 30,
                        "OriginKeepaliveTimeout": 5,
                        "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                    },
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": ORIGIN_ID,
            "ViewerProtocolPolicy": "redirect-to-https",
            "AllowedMethods": {
                "Quantity": len(ALL_METHODS),
                "Items": ALL_METHODS,
                "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]},
            },
            "CachePolicyId": CACHING_DISABLED,
            "OriginRequestPolicyId": ALL_VIEWER,
            "Compress": True,
        },
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
    }


def comment(run: Run) -> str:
    return f"nnote-deploy {run.config.prefix} in {run.aws.region}"


def _converged(current: dict[str, Any], lb_dns: str, secret: str | None) -> dict[str, Any]:
    """The current configuration with our origin, its header and `Enabled` put right."""
    wanted = {**current, "Enabled": True}
    origins = [dict(o) for o in current["Origins"]["Items"]]
    for origin in origins:
        if origin["Id"] == ORIGIN_ID:
            origin["DomainName"] = lb_dns
            origin["CustomOriginConfig"] = {
                **origin.get("CustomOriginConfig", {}),
                "IpAddressType": ORIGIN_ADDRESSES,
            }
            if secret:
                origin["CustomHeaders"] = {
                    "Quantity": 1,
                    "Items": [{"HeaderName": ORIGIN_HEADER, "HeaderValue": secret}],
                }
    wanted["Origins"] = {**current["Origins"], "Items": origins}
    return wanted


def _drift(run: Run, distribution: dict[str, Any], lb_dns: str) -> str:
    """What differs between a distribution (as listed) and what it should be; "" if nothing.
    Never the secret itself: only that the origin header differs from the listener rule's."""
    if not distribution["Enabled"]:
        return "enable"
    origins = {o["Id"]: o for o in distribution["Origins"]["Items"]}
    origin = origins.get(ORIGIN_ID, {})
    if origin.get("DomainName") != lb_dns:
        return f"origin {origin.get('DomainName')} -> {lb_dns}"
    addresses = origin.get("CustomOriginConfig", {}).get("IpAddressType") or "ipv4"
    if addresses != ORIGIN_ADDRESSES:
        return f"reach the origin over {ORIGIN_ADDRESSES} (was {addresses})"
    rule = (run.observed.get("loadbalancer") or {}).get("origin_rule")
    headers = {h["HeaderName"]: h["HeaderValue"] for h in _items(origin.get("CustomHeaders"))}
    if rule and headers.get(ORIGIN_HEADER) != secret_of(rule):
        return f"origin header {ORIGIN_HEADER} (the listener rule's changed)"
    return ""


def _items(listed: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((listed or {}).get("Items") or [])


def _our_distribution(run: Run) -> dict[str, Any] | None:
    """The distribution whose comment names this environment, if its tags say it is ours."""
    listed = pages(run.aws, "cloudfront", "list_distributions")
    items = [item for page in listed for item in page["DistributionList"].get("Items") or []]
    for item in items:
        if item.get("Comment") != comment(run):
            continue
        tags = _cloudfront(run, "list_tags_for_resource", Resource=item["ARN"])
        if not run.owner.owns(tags["Tags"].get("Items")):
            raise NotOwnedError(
                f"CloudFront distribution {item['Id']} is named for {run.config.prefix} but "
                "is not managed by nnote-deploy",
                "change its comment, or rename the app or env in deploy.toml",
            )
        return dict(item)
    return None


def _load_balancer(run: Run) -> dict[str, Any] | None:
    lbs = absent(
        run.aws,
        "elbv2",
        "describe_load_balancers",
        ("LoadBalancerNotFound",),
        Names=[run.config.prefix],
    )
    return (lbs or {}).get("LoadBalancers", [None])[0]


def _taken(domain: str, record: dns.Record) -> DeployError:
    target = record.get("AliasTarget", {}).get("DNSName") or [
        r["Value"] for r in record.get("ResourceRecords", [])
    ]
    return DeployError(
        f"{domain} already has an A record (to {target}) that does not lead to this "
        "environment's load balancer",
        "delete or rename that record in Route 53 if it is stale, or choose another service.domain",
    )
