"""Route 53: the user's hosted zone for a domain, and the records nnote-deploy writes in it.

The zone is the user's and is never created, changed otherwise or deleted. Records carry no
tags, so a record is ours only by what it says: the certificate's validation CNAME with the
value ACM gave, an alias to our own load balancer. Records are created with CREATE, never
UPSERT, so a record someone else wrote is never overwritten: AWS refuses the change instead.
"""

from __future__ import annotations

import re
from typing import Any

from deployer.aws import Aws, call
from deployer.errors import AwsError, DeployError

Zone = dict[str, Any]
Record = dict[str, Any]


def absolute(name: str) -> str:
    """A DNS name as Route 53 writes it: lowercase, with the trailing dot."""
    return name.lower().rstrip(".") + "."


def find_zone(aws: Aws, domain: str, zone_name: str | None = None) -> Zone | None:
    """The public hosted zone for `domain`: `zone_name` if given, else the closest enclosing
    one (notes.example.com, then example.com). Private zones cannot validate a certificate."""
    labels = domain.split(".")
    candidates = (
        [zone_name] if zone_name else [".".join(labels[i:]) for i in range(len(labels) - 1)]
    )
    for candidate in candidates:
        zones = call(aws, "route53", "list_hosted_zones_by_name", DNSName=candidate, MaxItems="10")
        for zone in zones.get("HostedZones", []):
            if zone["Name"] == absolute(candidate) and not zone.get("Config", {}).get(
                "PrivateZone"
            ):
                return dict(zone)
    return None


def no_zone(domain: str, zone_name: str | None) -> DeployError:
    where = zone_name or (domain.split(".", 1)[1] if domain.count(".") > 1 else domain)
    return DeployError(
        f"no public Route 53 hosted zone for {domain} in this account",
        f"create the hosted zone {where} in Route 53 (and point the domain's name servers at "
        "it), or set service.hosted_zone in deploy.toml",
    )


def get_record(aws: Aws, zone_id: str, name: str, kind: str) -> Record | None:
    """The record of this name and type, if the zone has one."""
    answer = call(
        aws,
        "route53",
        "list_resource_record_sets",
        HostedZoneId=zone_id,
        StartRecordName=absolute(name),
        StartRecordType=kind,
        MaxItems="1",
    )
    for record in answer.get("ResourceRecordSets", []):
        if record["Name"].lower() == absolute(name) and record["Type"] == kind:
            return dict(record)
    return None


def change(aws: Aws, zone_id: str, action: str, record: Record) -> None:
    """CREATE or DELETE one record (DELETE must repeat the record exactly)."""
    call(
        aws,
        "route53",
        "change_resource_record_sets",
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": "nnote-deploy",
            "Changes": [{"Action": action, "ResourceRecordSet": record}],
        },
    )


def create(aws: Aws, zone_id: str, record: Record) -> None:
    """CREATE a record. Route 53 refuses it if the name and type exist; when what exists is
    exactly this record, our own create went through and only its answer was lost (a retry
    after a dropped connection), so it counts as done."""
    try:
        change(aws, zone_id, "CREATE", record)
    except AwsError as error:
        found = get_record(aws, zone_id, record["Name"], record["Type"])
        if error.code != "InvalidChangeBatch" or not same(found, record):
            raise


def delete(aws: Aws, zone_id: str, record: Record) -> None:
    """DELETE a record; gone already counts as done. Route 53 gives the same error for a
    record that differs from the one named, which is not done: that one is raised."""
    try:
        change(aws, zone_id, "DELETE", record)
    except AwsError as error:
        if error.code != "InvalidChangeBatch" or get_record(
            aws, zone_id, record["Name"], record["Type"]
        ):
            raise


def same(found: Record | None, wanted: Record) -> bool:
    """Whether a record as Route 53 lists it is this one (names and targets compared as DNS
    compares them: without case or the trailing dot)."""
    if found is None:
        return False

    def key(record: Record) -> tuple[Any, ...]:
        target = record.get("AliasTarget", {})
        values = sorted(v["Value"].lower().rstrip(".") for v in record.get("ResourceRecords", []))
        return (
            record["Name"].lower().rstrip("."),
            record["Type"],
            target.get("DNSName", "").lower().rstrip("."),
            tuple(values),
        )

    return key(found) == key(wanted)


def cname(name: str, value: str) -> Record:
    return {
        "Name": absolute(name),
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": value}],
    }


def alias(name: str, target_dns: str, target_zone_id: str) -> Record:
    """An A alias to a load balancer: Route 53 answers with its current addresses, free."""
    return {
        "Name": absolute(name),
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": target_zone_id,
            "DNSName": absolute(f"dualstack.{target_dns}"),
            "EvaluateTargetHealth": False,
        },
    }


def points_at(record: Record | None, target_dns: str) -> bool:
    """Whether an alias record leads to this load balancer (with or without dualstack.)."""
    if record is None or "AliasTarget" not in record:
        return False
    found = record["AliasTarget"]["DNSName"].lower().rstrip(".").removeprefix("dualstack.")
    return found == target_dns.lower().rstrip(".")


def leads_to_load_balancer(record: Record | None, name: str, region: str) -> bool:
    """Whether an alias leads to the load balancer called `name` in `region`: its DNS name
    is NAME-ID.REGION.elb.amazonaws.com (the same name after a delete and re-create)."""
    if record is None or "AliasTarget" not in record:
        return False
    target = record["AliasTarget"]["DNSName"].lower().rstrip(".").removeprefix("dualstack.")
    pattern = rf"{re.escape(name)}-\d+\.{re.escape(region)}\.elb\.amazonaws\.com(\.cn)?"
    return re.fullmatch(pattern, target) is not None
