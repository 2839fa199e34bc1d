"""certificate: with `service.domain`, an ACM certificate for it, validated by DNS through the
domain's Route 53 hosted zone (the validation CNAME is written there), and waited for until
ACM has issued it. The load balancer's HTTPS listener uses it.

Without a domain (CloudFront's certificate serves the environment) or with a certificate the
user brings (`service.certificate_arn`), this step has nothing to make. `down` deletes every
certificate of the environment and its validation record; the hosted zone is the user's.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from deployer import dns, inventory
from deployer.aws import absent, call, paginate, retry_while
from deployer.errors import AwsError, DeployError
from deployer.inventory import Resource, key_of
from deployer.steps.base import Change, Observed, Outputs, Run, Step, undo_ignoring, wait_for

COMPONENT = "certificate"
GONE = ("ResourceNotFoundException",)
USABLE = ("PENDING_VALIDATION", "ISSUED")
FAILED = ("FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE")
# ACM adds the validation record to DomainValidationOptions a few seconds after the request.
RECORD_APPEARS_SECONDS = 120.0


class CertificateStep(Step):
    name = COMPONENT

    def observe(self, run: Run) -> Observed:
        domain = wanted_domain(run)
        certificates = _owned_certificates(run, domain)
        zones = _zones(run, domain, {c["DomainName"] for c in certificates})
        records = {}
        for certificate in certificates:
            wanted, zone = _validation_record(certificate), zones.get(certificate["DomainName"])
            if zone and wanted:
                found = dns.get_record(run.aws, zone["Id"], wanted["Name"], "CNAME")
                records[certificate["CertificateArn"]] = found
        observed = {
            "domain": domain,
            "zone": zones.get(domain) if domain else None,
            "zones": zones,
            "certificates": certificates,
            "records": records,
        }
        observed["aliases"] = _old_aliases(run, observed)
        return observed

    def resources(self, observed: Observed) -> list[Resource]:
        found = []
        for certificate in observed["certificates"]:
            found.append(
                Resource(
                    COMPONENT, "acm:certificate", certificate["DomainName"], certificate["Status"]
                )
            )
            record = observed["records"].get(certificate["CertificateArn"])
            if record:
                found.append(
                    Resource(COMPONENT, "route53:record", record["Name"], "validation CNAME")
                )
        found += [
            Resource(COMPONENT, "route53:record", record["Name"], "alias of an old domain")
            for record in observed["aliases"].values()
        ]
        return found

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        changes = [
            Change(COMPONENT, "delete", "acm:certificate", c["DomainName"], "no longer used")
            for c in _stale(observed)
        ]
        changes += [
            Change(COMPONENT, "delete", "route53:record", name, "alias of an old domain")
            for name in observed["aliases"]
        ]
        domain = observed["domain"]
        if domain is None:
            return changes
        if observed["zone"] is None:
            raise dns.no_zone(domain, run.config.settings.service.hosted_zone)
        zone = observed["zone"]["Name"].rstrip(".")
        certificate = _usable(observed)
        record = Change(COMPONENT, "create", "route53:record", f"CNAME in {zone}", "validation")
        if certificate is None:
            create = Change(COMPONENT, "create", "acm:certificate", domain, "validated by DNS")
            return [*changes, create, record]
        if observed["records"].get(certificate["CertificateArn"]) is None:
            return [*changes, record]
        return changes

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        observed = self.observe(run)
        for name, alias in observed["aliases"].items():
            zone_id = observed["zones"][name.rstrip(".")]["Id"]
            run.retire(COMPONENT, f"the alias {name}", partial(dns.delete, run.aws, zone_id, alias))
        for stale in _stale(observed):
            remove = partial(self._remove, run, observed, stale)
            run.retire(COMPONENT, f"the certificate for {stale['DomainName']}", remove)
        domain = observed["domain"]
        if domain is None:
            return {"certificate_arn": run.config.settings.service.certificate_arn}
        if observed["zone"] is None:
            raise dns.no_zone(domain, run.config.settings.service.hosted_zone)
        zone = observed["zone"]
        certificate = _usable(observed)
        arn = certificate["CertificateArn"] if certificate else self._request(run, domain)
        record = self._wait_for_record(run, arn)
        self._write_record(run, zone, record, observed["records"].get(arn))
        self._wait_until_issued(run, arn, domain, zone["Name"].rstrip("."))
        return {"certificate_arn": arn}

    def _request(self, run: Run, domain: str) -> str:
        arn = str(
            call(
                run.aws,
                "acm",
                "request_certificate",
                DomainName=domain,
                ValidationMethod="DNS",
                # The same token within an hour returns the same certificate: a retried
                # request after a lost answer does not make a second one.
                IdempotencyToken=re.sub(r"[^A-Za-z0-9]", "", run.owner.run_id)[-32:],
                Tags=run.owner.tags(COMPONENT),
            )["CertificateArn"]
        )
        run.journal.record(
            COMPONENT,
            f"requested certificate for {domain}",
            undo_ignoring(GONE, lambda: delete_certificate(run, arn)),
            made=key_of(arn),
        )
        return arn

    def _wait_for_record(self, run: Run, arn: str) -> dns.Record:
        # Right after the request ACM may not know the certificate yet, nor its record.
        def record() -> dns.Record | None:
            certificate = _find(run, arn)
            return _validation_record(certificate) if certificate else None

        def late(waited: float) -> DeployError:
            return DeployError(
                f"ACM gave no DNS validation record for {arn} within {waited:.0f}s",
                "run `nnote-deploy up` again; ACM adds the record within seconds as a rule",
            )

        waiting = "waiting for ACM's DNS validation record"
        return wait_for(run, COMPONENT, record, waiting, RECORD_APPEARS_SECONDS, late)

    def _write_record(
        self, run: Run, zone: dns.Zone, wanted: dns.Record, found: dns.Record | None
    ) -> None:
        found = found or dns.get_record(run.aws, zone["Id"], wanted["Name"], "CNAME")
        if found is not None:
            if _values(found) != _values(wanted):
                raise DeployError(
                    f"{wanted['Name']} already has a CNAME to {sorted(_values(found))} in "
                    f"{zone['Name']}, not ACM's validation value",
                    "delete that record if it is stale, then run `nnote-deploy up` again",
                )
            return  # written by an earlier run, or for another certificate of the same name
        zone_id = zone["Id"]
        dns.create(run.aws, zone_id, wanted)
        run.journal.record(
            COMPONENT,
            f"wrote validation record {wanted['Name']}",
            partial(dns.delete, run.aws, zone_id, wanted),
        )

    def _wait_until_issued(self, run: Run, arn: str, domain: str, zone: str) -> None:
        def issued() -> bool | None:
            certificate = _describe(run, arn)
            if certificate["Status"] in FAILED:
                reason = certificate.get("FailureReason", "no reason given")
                raise DeployError(
                    f"ACM did not issue the certificate for {domain}: "
                    f"{certificate['Status']} ({reason})",
                    "check the domain and zone in deploy.toml; `nnote-deploy down` removes it",
                )
            return True if certificate["Status"] == "ISSUED" else None

        def timed_out(waited: float) -> DeployError:
            return DeployError(
                f"the certificate for {domain} is still not validated after {waited:.0f}s",
                f"check that the name servers of {zone} at your registrar are the hosted "
                "zone's (ACM reads the record through public DNS); then run `nnote-deploy "
                "up` again, or raise service.certificate_timeout_seconds",
            )

        timeout = run.config.settings.service.certificate_timeout_seconds
        waiting = f"waiting for ACM to validate {domain} through its record in {zone}"
        wait_for(run, COMPONENT, issued, waiting, timeout, timed_out)

    def _remove(self, run: Run, observed: Observed, certificate: dict[str, Any]) -> None:
        """A certificate and its validation record, unless a kept certificate shares it."""
        arn = certificate["CertificateArn"]
        record, zone = (
            observed["records"].get(arn),
            observed["zones"].get(certificate["DomainName"]),
        )
        kept = [observed["records"].get(c["CertificateArn"]) for c in _kept(observed)]
        if zone and record and record not in kept:
            dns.delete(run.aws, zone["Id"], record)
        undo_ignoring(GONE, partial(delete_certificate, run, arn))()

    def destroy(self, run: Run, observed: Observed) -> None:
        for name, alias in observed["aliases"].items():
            dns.delete(run.aws, observed["zones"][name.rstrip(".")]["Id"], alias)
        for certificate in observed["certificates"]:
            self._remove(run, {**observed, "domain": None}, certificate)


def wanted_domain(run: Run) -> str | None:
    """The domain whose certificate this step makes (none when the user brings one)."""
    service = run.config.settings.service
    return None if service.certificate_arn else service.domain


def delete_certificate(run: Run, arn: str) -> None:
    # The load balancer's listener lets go of the certificate a little after it is deleted.
    retry_while(
        ("ResourceInUseException",),
        run.dependency_budget_seconds,
        lambda: call(run.aws, "acm", "delete_certificate", CertificateArn=arn),
        delay=min(10.0, run.poll_seconds),
        sleep=run.sleep,
    )


def _owned_certificates(run: Run, domain: str | None) -> list[dict[str, Any]]:
    """The environment's certificates: those the tagging API lists as ours, and those for
    the domain whose tags say so (the tagging API may not list one made a moment ago)."""
    arns = set(inventory.tagged(run.aws, run.owner, "acm:certificate"))
    if domain:
        summaries = paginate(run.aws, "acm", "list_certificates", "CertificateSummaryList")
        for summary in summaries:
            arn = summary["CertificateArn"]
            if summary.get("DomainName") == domain and arn not in arns:
                tags = call(run.aws, "acm", "list_tags_for_certificate", CertificateArn=arn)
                if run.owner.owns(tags.get("Tags")):
                    arns.add(arn)
    described = [_find(run, arn) for arn in sorted(arns)]
    return [c for c in described if c is not None]


def _find(run: Run, arn: str) -> dict[str, Any] | None:
    answer = absent(run.aws, "acm", "describe_certificate", GONE, CertificateArn=arn)
    return dict(answer["Certificate"]) if answer else None


def _describe(run: Run, arn: str) -> dict[str, Any]:
    certificate = _find(run, arn)
    if certificate is None:
        raise AwsError(f"the certificate {arn} is gone", "run `nnote-deploy up` again")
    return certificate


def usable_certificate(observed: Observed | None) -> str | None:
    """The ARN of the certificate the load balancer should serve, from this step's
    observation (None without a domain, or before one is requested)."""
    found = _usable(observed) if observed and observed["domain"] else None
    return str(found["CertificateArn"]) if found else None


def _kept(observed: Observed) -> list[dict[str, Any]]:
    usable = _usable(observed) if observed["domain"] else None
    return [usable] if usable else []


def _stale(observed: Observed) -> list[dict[str, Any]]:
    """Certificates of this environment the settings no longer use (another domain, none,
    a failed request, or a second one for the same domain)."""
    kept = _kept(observed)
    return [c for c in observed["certificates"] if c not in kept]


def _zones(run: Run, domain: str | None, others: set[str]) -> dict[str, dns.Zone]:
    """The hosted zone of the wanted domain and of every certificate's domain, by domain."""
    zones = {}
    for name in sorted(others | ({domain} if domain else set())):
        zone_name = run.config.settings.service.hosted_zone if name == domain else None
        zone = dns.find_zone(run.aws, name, zone_name)
        if zone:
            zones[name] = zone
    return zones


def _old_aliases(run: Run, observed: Observed) -> dict[str, dns.Record]:
    """Alias records of domains the environment had, that still lead to its load balancer
    (the current domain's alias is the endpoint step's)."""
    old = {c["DomainName"] for c in observed["certificates"]} - {observed["domain"]}
    old &= observed["zones"].keys()
    found = {}
    for name in sorted(old):
        record = dns.get_record(run.aws, observed["zones"][name]["Id"], name, "A")
        if record is not None and dns.leads_to_load_balancer(
            record, run.config.prefix, run.aws.region
        ):
            found[dns.absolute(name)] = record
    return found


def _usable(observed: Observed) -> dict[str, Any] | None:
    """An issued certificate for the domain, else one still being validated."""
    mine = [
        c
        for c in observed["certificates"]
        if c["DomainName"] == observed["domain"] and c["Status"] in USABLE
    ]
    mine.sort(key=lambda c: USABLE.index(c["Status"]), reverse=True)
    return mine[0] if mine else None


def _validation_record(certificate: dict[str, Any]) -> dns.Record | None:
    for option in certificate.get("DomainValidationOptions", []):
        record = option.get("ResourceRecord")
        if record and option.get("DomainName") == certificate["DomainName"]:
            return dns.cname(record["Name"], record["Value"])
    return None


def _values(record: dns.Record) -> set[str]:
    return {r["Value"].lower().rstrip(".") for r in record.get("ResourceRecords", [])}
