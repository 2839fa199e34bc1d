"""network: a dual-stack VPC with DNS hostnames (its own CIDR, and an IPv6 /56 from Amazon),
internet gateway, two public subnets (each with a /64 of the VPC's IPv6 block), a route table
with the default routes of both (0.0.0.0/0 and ::/0 via the gateway), and three security
groups: load balancer, app (container port from the load balancer only) and database (3306
from the app only). The load balancer takes 80 only from CloudFront's IPv6 origin-facing
addresses (AWS's managed prefix list) when CloudFront is the front door, else 80 and 443 from
anywhere.

IPv6 is what lets the load balancer behind CloudFront do without public IPv4 addresses, which
AWS bills per hour (README, "What it costs"). It costs nothing, and a rollback keeps it: an
IPv6 block serves no one until a load balancer uses it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from functools import partial
from typing import Any

from deployer.aws import AwsError, call, retry_while
from deployer.errors import DeployError
from deployer.inventory import Resource
from deployer.steps.base import Change, Observed, Outputs, Run, Step, undo_ignoring, wait_for

COMPONENT = "network"
ANYWHERE = "0.0.0.0/0"
ANYWHERE_IPV6 = "::/0"
SUBNET_IPV6_PREFIX = 64  # the one size AWS allows for a subnet's IPv6 block
# An Amazon-provided IPv6 block is "associating" for seconds as a rule.
IPV6_ASSOCIATION_TIMEOUT_SECONDS = 300.0
GONE = (
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidAssociationID.NotFound",
    "Gateway.NotAttached",
    "InvalidPermission.NotFound",
    "InvalidRoute.NotFound",
)
IN_USE = ("DependencyViolation", "InvalidGroup.InUse", "ResourceInUse")
# Where AWS runs Fargate (Linux) in some zones of a region only, by zone ID (zone names map to
# different zones in different accounts):
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AWS_Fargate-Regions.html
FARGATE_ZONE_IDS = {
    "us-west-1": {"usw1-az1", "usw1-az3"},
    "ap-northeast-1": {"apne1-az1", "apne1-az2", "apne1-az4"},
    "cn-north-1": {"cnn1-az1", "cnn1-az2"},
}
# A capacity-constrained legacy zone: Windows Fargate and many newer instance types are not
# offered there, so it is never picked on its own.
AVOIDED_ZONE_IDS = {"use1-az3"}
ZONE_ID = re.compile(r"^[a-z]+[0-9]*-az[0-9]+$")
ROLES = ("lb", "app", "db")
# AWS keeps these lists of the addresses CloudFront reaches origins from up to date. Each counts
# as its maximum size (55 today) against the 60 inbound rules of a security group for its
# address family. CloudFront reaches our load balancer over IPv6 (it has no public IPv4); the
# IPv4 list is only what older environments allowed, known so that its rule can be retired.
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.ipv6.cloudfront.origin-facing"
CLOUDFRONT_IPV4_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"

Rule = tuple[str, int, int, str]  # protocol, from port, to port, "cidr:..." or "sg:ROLE"
CLOUDFRONT: Rule = ("tcp", 80, 80, "pl:cloudfront")
CLOUDFRONT_IPV4: Rule = ("tcp", 80, 80, "pl:cloudfront-ipv4")
# AWS counts a rule naming an AWS-managed list as its weight (55 for CloudFront's) against a
# group's 60 rules of each address family, so the two CloudFront lists cannot be allowed at
# once. While an environment made before moves to IPv6, port 80 admits IPv6 from anywhere
# instead (the listener still serves only requests with CloudFront's secret header), until
# the load balancer is IPv6-only and the IPv6 list can take the IPv4 one's place.
MOVING: Rule = ("tcp", 80, 80, f"cidr6:{ANYWHERE_IPV6}")


def _ec2(run: Run, operation: str, **params: Any) -> Any:
    return call(run.aws, "ec2", operation, **params)


class NetworkStep(Step):
    name = COMPONENT

    # -- reading ----------------------------------------------------------------------------

    def observe(self, run: Run) -> Observed:
        filters = run.owner.ec2_filters(COMPONENT)
        vpcs = _ec2(run, "describe_vpcs", Filters=filters)["Vpcs"]
        if not vpcs:
            return {"vpc": None}
        vpc = vpcs[0]
        in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, *filters]
        dns = _ec2(
            run, "describe_vpc_attribute", VpcId=vpc["VpcId"], Attribute="enableDnsHostnames"
        )
        return {
            "vpc": vpc,
            "prefix_lists": cloudfront_prefix_lists(run)
            if run.config.settings.service.behind_cloudfront
            else {},
            "dns_hostnames": dns["EnableDnsHostnames"]["Value"],
            "igw": next(
                iter(_ec2(run, "describe_internet_gateways", Filters=filters)["InternetGateways"]),
                None,
            ),
            "subnets": _ec2(run, "describe_subnets", Filters=in_vpc)["Subnets"],
            "route_table": next(
                iter(_ec2(run, "describe_route_tables", Filters=in_vpc)["RouteTables"]), None
            ),
            "groups": {
                g["GroupName"]: g
                for g in _ec2(run, "describe_security_groups", Filters=in_vpc)["SecurityGroups"]
            },
        }

    def resources(self, observed: Observed) -> list[Resource]:
        if observed["vpc"] is None:
            return []
        found = [Resource(COMPONENT, "ec2:vpc", observed["vpc"]["VpcId"], observed["vpc"]["State"])]
        if observed["igw"]:
            attached = "attached" if observed["igw"].get("Attachments") else "detached"
            found.append(
                Resource(
                    COMPONENT,
                    "ec2:internet-gateway",
                    observed["igw"]["InternetGatewayId"],
                    attached,
                )
            )
        found += [
            Resource(COMPONENT, "ec2:subnet", s["SubnetId"], s["State"])
            for s in observed["subnets"]
        ]
        if observed["route_table"]:
            found.append(
                Resource(
                    COMPONENT, "ec2:route-table", observed["route_table"]["RouteTableId"], "exists"
                )
            )
        found += [
            Resource(COMPONENT, "ec2:security-group", g["GroupId"], "exists")
            for g in observed["groups"].values()
        ]
        return found

    # -- planning ---------------------------------------------------------------------------

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        prefix, settings = run.config.prefix, run.config.settings.network
        if observed["vpc"] is None:
            return [
                Change(
                    COMPONENT, "create", "ec2:vpc", prefix, f"{settings.vpc_cidr} and an IPv6 /56"
                ),
                Change(COMPONENT, "create", "ec2:internet-gateway", prefix),
                *[
                    Change(COMPONENT, "create", "ec2:subnet", cidr, "and an IPv6 /64")
                    for cidr in settings.public_subnets
                ],
                Change(
                    COMPONENT,
                    "create",
                    "ec2:route-table",
                    prefix,
                    "default routes (IPv4, IPv6) via the gateway",
                ),
                *[
                    Change(COMPONENT, "create", "ec2:security-group", f"{prefix}-{role}")
                    for role in ROLES
                ],
            ]
        return self._drift(run, observed)

    def _drift(self, run: Run, observed: Observed) -> list[Change]:
        prefix, settings = run.config.prefix, run.config.settings.network
        vpc_id = observed["vpc"]["VpcId"]
        changes = []
        if not observed["dns_hostnames"]:
            changes.append(Change(COMPONENT, "update", "ec2:vpc", vpc_id, "enable DNS hostnames"))
        igw = observed["igw"]
        if igw is None:
            changes.append(Change(COMPONENT, "create", "ec2:internet-gateway", prefix))
        elif not _attached(igw, vpc_id):
            changes.append(
                Change(
                    COMPONENT, "update", "ec2:internet-gateway", igw["InternetGatewayId"], "attach"
                )
            )
        if _ipv6_block(observed["vpc"]) is None:
            changes.append(Change(COMPONENT, "update", "ec2:vpc", vpc_id, "add an IPv6 /56"))
        have = {s["CidrBlock"]: s for s in observed["subnets"]}
        changes += [
            Change(COMPONENT, "create", "ec2:subnet", c, "and an IPv6 /64")
            for c in settings.public_subnets
            if c not in have
        ]
        changes += [
            Change(COMPONENT, "update", "ec2:subnet", have[c]["SubnetId"], "add an IPv6 /64")
            for c in settings.public_subnets
            if c in have and _ipv6_block(have[c]) is None
        ]
        changes += self._route_drift(
            observed, [have[c]["SubnetId"] for c in settings.public_subnets if c in have]
        )
        changes += self._group_drift(run, observed)
        return changes

    def _route_drift(self, observed: Observed, subnet_ids: list[str]) -> list[Change]:
        table = observed["route_table"]
        if table is None:
            return [
                Change(
                    COMPONENT,
                    "create",
                    "ec2:route-table",
                    "public",
                    "default route via the gateway",
                )
            ]
        changes = []
        igw_id = observed["igw"]["InternetGatewayId"] if observed["igw"] else None
        for destination in (ANYWHERE, ANYWHERE_IPV6):
            if _default_route_target(table, destination) != igw_id or igw_id is None:
                changes.append(
                    Change(
                        COMPONENT,
                        "update",
                        "ec2:route-table",
                        table["RouteTableId"],
                        f"restore default route {destination} via the internet gateway",
                    )
                )
        associated = {a.get("SubnetId") for a in table.get("Associations", [])}
        changes += [
            Change(
                COMPONENT, "update", "ec2:route-table", table["RouteTableId"], f"associate {sid}"
            )
            for sid in subnet_ids
            if sid not in associated
        ]
        return changes

    def _group_drift(self, run: Run, observed: Observed) -> list[Change]:
        changes = []
        groups = observed["groups"]
        ids = {
            role: groups[f"{run.config.prefix}-{role}"]["GroupId"]
            for role in ROLES
            if f"{run.config.prefix}-{role}" in groups
        }
        ids.update(observed.get("prefix_lists") or {})
        for role in ROLES:
            name = f"{run.config.prefix}-{role}"
            if name not in groups:
                changes.append(Change(COMPONENT, "create", "ec2:security-group", name))
                continue
            moving = _moving(run, role, groups[name], ids)
            wanted = self.wanted_rules(run, role, moving)
            missing, extra = _rule_diff(wanted, groups[name], ids)
            if moving:
                detail = "then CloudFront's IPv6 list instead of its IPv4 one, once IPv6 serves"
                changes.append(Change(COMPONENT, "update", "ec2:security-group", name, detail))
            changes += [
                Change(COMPONENT, "update", "ec2:security-group", name, f"allow {_show(r)}")
                for r in missing
            ]
            changes += [
                Change(COMPONENT, "update", "ec2:security-group", name, f"revoke {_show(r)}")
                for r in extra
            ]
        return changes

    @staticmethod
    def wanted_rules(run: Run, role: str, moving: bool = False) -> set[Rule]:
        port = run.config.settings.service.container_port
        front: set[Rule] = {CLOUDFRONT_IPV4, MOVING} if moving else {CLOUDFRONT}
        if not run.config.settings.service.behind_cloudfront:
            front = {("tcp", 80, 80, f"cidr:{ANYWHERE}"), ("tcp", 443, 443, f"cidr:{ANYWHERE}")}
        return {
            "lb": front,
            "app": {("tcp", port, port, "sg:lb")},
            "db": {("tcp", 3306, 3306, "sg:app")},
        }[role]

    # -- converging -------------------------------------------------------------------------

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        observed = self.observe(run)
        vpc_id = self._ensure_vpc(run, observed)
        vpc_ipv6 = self._ensure_vpc_ipv6(run, observed, vpc_id)
        igw_id = self._ensure_gateway(run, observed, vpc_id)
        subnet_ids = self._ensure_subnets(run, observed, vpc_id, vpc_ipv6)
        self._ensure_routes(run, observed, vpc_id, igw_id, subnet_ids)
        group_ids = self._ensure_groups(run, observed, vpc_id)
        return {"vpc_id": vpc_id, "subnet_ids": subnet_ids, "security_groups": group_ids}

    def _ensure_vpc(self, run: Run, observed: Observed) -> str:
        if observed["vpc"] is not None:
            vpc_id: str = observed["vpc"]["VpcId"]
        else:
            vpc = _ec2(
                run,
                "create_vpc",
                CidrBlock=run.config.settings.network.vpc_cidr,
                AmazonProvidedIpv6CidrBlock=True,
                TagSpecifications=run.owner.tag_specifications("vpc", COMPONENT, run.config.prefix),
            )["Vpc"]
            vpc_id = vpc["VpcId"]
            run.journal.record(
                COMPONENT,
                f"created vpc {vpc_id}",
                undo_ignoring(
                    GONE, lambda: self._delete_with_retry(run, "delete_vpc", VpcId=vpc_id)
                ),
                made=("ec2:vpc", vpc_id),
            )
            run.note(COMPONENT, f"created VPC {vpc_id}")
        if not observed.get("dns_hostnames"):
            _ec2(run, "modify_vpc_attribute", VpcId=vpc_id, EnableDnsHostnames={"Value": True})
            if observed["vpc"] is not None:
                run.journal.record(
                    COMPONENT,
                    f"enabled DNS hostnames on {vpc_id}",
                    lambda: _ec2(
                        run,
                        "modify_vpc_attribute",
                        VpcId=vpc_id,
                        EnableDnsHostnames={"Value": False},
                    ),
                )
        return vpc_id

    def _ensure_vpc_ipv6(self, run: Run, observed: Observed, vpc_id: str) -> str:
        """The VPC's IPv6 /56, once associated (a new VPC asked for it at creation). A rollback
        keeps it: it costs nothing and serves no one until a load balancer uses it."""
        vpc = observed["vpc"]
        ready = _ipv6_block(vpc, ready=True) if vpc is not None else None
        if ready is not None:
            return ready
        if vpc is not None and _ipv6_block(vpc) is None:
            _ec2(run, "associate_vpc_cidr_block", VpcId=vpc_id, AmazonProvidedIpv6CidrBlock=True)
            run.note(COMPONENT, f"added an IPv6 block to VPC {vpc_id} (kept on rollback)")

        def associated() -> str | None:
            [found] = _ec2(run, "describe_vpcs", VpcIds=[vpc_id])["Vpcs"]
            return _ipv6_block(found, ready=True)

        return wait_for(
            run,
            COMPONENT,
            associated,
            f"waiting for the IPv6 block of VPC {vpc_id}",
            IPV6_ASSOCIATION_TIMEOUT_SECONDS,
            partial(_ipv6_timed_out, vpc_id),
        )

    def _ensure_gateway(self, run: Run, observed: Observed, vpc_id: str) -> str:
        igw = observed.get("igw")
        if igw is None:
            igw = _ec2(
                run,
                "create_internet_gateway",
                TagSpecifications=run.owner.tag_specifications(
                    "internet-gateway", COMPONENT, run.config.prefix
                ),
            )["InternetGateway"]
            igw_id = igw["InternetGatewayId"]
            run.journal.record(
                COMPONENT,
                f"created internet gateway {igw_id}",
                undo_ignoring(
                    GONE, lambda: _ec2(run, "delete_internet_gateway", InternetGatewayId=igw_id)
                ),
                made=("ec2:internet-gateway", igw_id),
            )
        igw_id = igw["InternetGatewayId"]
        if not _attached(igw, vpc_id):
            _ec2(run, "attach_internet_gateway", InternetGatewayId=igw_id, VpcId=vpc_id)
            run.journal.record(
                COMPONENT,
                f"attached {igw_id} to {vpc_id}",
                undo_ignoring(
                    GONE,
                    lambda: _ec2(
                        run, "detach_internet_gateway", InternetGatewayId=igw_id, VpcId=vpc_id
                    ),
                ),
            )
        return str(igw_id)

    def _ensure_subnets(
        self, run: Run, observed: Observed, vpc_id: str, vpc_ipv6: str
    ) -> list[str]:
        settings = run.config.settings.network
        subnets = observed.get("subnets", [])
        have = {s["CidrBlock"]: s["SubnetId"] for s in subnets}
        missing = [c for c in settings.public_subnets if c not in have]
        zones = list(settings.availability_zones or ()) or (fargate_zones(run) if missing else [])
        free_ipv6 = _free_ipv6_blocks(vpc_ipv6, subnets)
        for index, cidr in enumerate(settings.public_subnets):
            if cidr in have:
                continue
            subnet = _ec2(
                run,
                "create_subnet",
                VpcId=vpc_id,
                CidrBlock=cidr,
                Ipv6CidrBlock=next(free_ipv6),
                **_zone_parameter(zones[index]),
                TagSpecifications=run.owner.tag_specifications(
                    "subnet", COMPONENT, f"{run.config.prefix}-public-{index + 1}"
                ),
            )["Subnet"]
            subnet_id = subnet["SubnetId"]
            have[cidr] = subnet_id
            run.journal.record(
                COMPONENT,
                f"created subnet {subnet_id}",
                undo_ignoring(
                    GONE,
                    partial(self._delete_with_retry, run, "delete_subnet", SubnetId=subnet_id),
                ),
                made=("ec2:subnet", subnet_id),
            )
            _ec2(
                run,
                "modify_subnet_attribute",
                SubnetId=subnet_id,
                MapPublicIpOnLaunch={"Value": True},
            )
        by_id = {s["SubnetId"]: s for s in subnets}
        wanted = [have[c] for c in settings.public_subnets]
        for subnet_id in wanted:
            if subnet_id in by_id and _ipv6_block(by_id[subnet_id]) is None:
                block = next(free_ipv6)
                _ec2(run, "associate_subnet_cidr_block", SubnetId=subnet_id, Ipv6CidrBlock=block)
                run.note(COMPONENT, f"added IPv6 block {block} to subnet {subnet_id}")
        if not all(i in by_id and _ipv6_block(by_id[i], ready=True) for i in wanted):
            self._wait_subnets_ipv6(run, wanted)
        return wanted

    def _wait_subnets_ipv6(self, run: Run, subnet_ids: list[str]) -> None:
        """A load balancer takes IPv6 addresses only in subnets whose block is associated."""

        def associated() -> bool | None:
            found = _ec2(run, "describe_subnets", SubnetIds=subnet_ids)["Subnets"]
            return all(_ipv6_block(s, ready=True) for s in found) or None

        waiting = "waiting for the IPv6 blocks of the subnets"
        timed_out = partial(_ipv6_timed_out, ", ".join(subnet_ids))
        wait_for(run, COMPONENT, associated, waiting, IPV6_ASSOCIATION_TIMEOUT_SECONDS, timed_out)

    def _ensure_routes(
        self, run: Run, observed: Observed, vpc_id: str, igw_id: str, subnet_ids: list[str]
    ) -> None:
        table = observed.get("route_table")
        if table is None:
            table = _ec2(
                run,
                "create_route_table",
                VpcId=vpc_id,
                TagSpecifications=run.owner.tag_specifications(
                    "route-table", COMPONENT, f"{run.config.prefix}-public"
                ),
            )["RouteTable"]
            table_id = table["RouteTableId"]
            run.journal.record(
                COMPONENT,
                f"created route table {table_id}",
                undo_ignoring(GONE, lambda: _ec2(run, "delete_route_table", RouteTableId=table_id)),
                made=("ec2:route-table", table_id),
            )
        table_id = table["RouteTableId"]
        for destination in (ANYWHERE, ANYWHERE_IPV6):
            self._ensure_default_route(run, table, destination, igw_id)
        associated = {a.get("SubnetId") for a in table.get("Associations", [])}
        for subnet_id in subnet_ids:
            if subnet_id in associated:
                continue
            association = _ec2(
                run, "associate_route_table", RouteTableId=table_id, SubnetId=subnet_id
            )
            association_id = association["AssociationId"]
            run.journal.record(
                COMPONENT,
                f"associated {subnet_id} with {table_id}",
                undo_ignoring(
                    GONE,
                    partial(_ec2, run, "disassociate_route_table", AssociationId=association_id),
                ),
            )

    def _ensure_default_route(
        self, run: Run, table: dict[str, Any], destination: str, igw_id: str
    ) -> None:
        table_id = table["RouteTableId"]
        target = _default_route_target(table, destination)
        if target == igw_id:
            return
        key = _route_key(destination)
        operation = "replace_route" if target else "create_route"
        _ec2(run, operation, RouteTableId=table_id, GatewayId=igw_id, **{key: destination})
        run.journal.record(
            COMPONENT,
            f"set default route {destination} of {table_id}",
            undo_ignoring(
                GONE,
                partial(_ec2, run, "delete_route", RouteTableId=table_id, **{key: destination}),
            ),
        )

    def _ensure_groups(self, run: Run, observed: Observed, vpc_id: str) -> dict[str, str]:
        groups = dict(observed.get("groups", {}))
        ids: dict[str, str] = {}
        for role in ROLES:
            name = f"{run.config.prefix}-{role}"
            if name not in groups:
                created = _ec2(
                    run,
                    "create_security_group",
                    GroupName=name,
                    VpcId=vpc_id,
                    Description=f"nnote {run.config.env} {role}",
                    TagSpecifications=run.owner.tag_specifications(
                        "security-group", COMPONENT, name
                    ),
                )
                group_id = created["GroupId"]
                run.journal.record(
                    COMPONENT,
                    f"created security group {name} {group_id}",
                    undo_ignoring(
                        GONE,
                        partial(
                            self._delete_with_retry, run, "delete_security_group", GroupId=group_id
                        ),
                    ),
                    made=("ec2:security-group", group_id),
                )
                groups[name] = {"GroupId": group_id, "IpPermissions": []}
            ids[role] = groups[name]["GroupId"]
        sources = dict(ids)
        if run.config.settings.service.behind_cloudfront:
            sources.update(observed.get("prefix_lists") or cloudfront_prefix_lists(run))
        for role in ROLES:
            self._converge_rules(run, role, groups[f"{run.config.prefix}-{role}"], sources)
        return ids

    def _converge_rules(
        self, run: Run, role: str, group: dict[str, Any], ids: dict[str, str]
    ) -> None:
        group_id = group["GroupId"]
        moving = _moving(run, role, group, ids)
        missing, extra = _rule_diff(self.wanted_rules(run, role, moving), group, ids)
        # Each undo is bound to its own rules (a closure over one shared name would revoke
        # the other list's rules when both lists change).
        allowed = [_permission(rule, ids) for rule in sorted(missing)]
        revoked = [_permission(rule, ids) for rule in sorted(extra)]
        authorize = partial(_ec2, run, "authorize_security_group_ingress", GroupId=group_id)
        revoke = partial(_ec2, run, "revoke_security_group_ingress", GroupId=group_id)
        if allowed:
            authorize(IpPermissions=allowed)
            run.journal.record(
                COMPONENT,
                f"allowed {len(allowed)} rule(s) on {group_id}",
                undo_ignoring(GONE, partial(revoke, IpPermissions=allowed)),
            )
        if moving:
            finish = partial(self._finish_move, run, group_id, ids)
            run.retire(COMPONENT, f"CloudFront's IPv4 way into {group_id}", finish)
        if revoked and role == "lb":
            # The load balancer's old way in (from anywhere, or from CloudFront) closes only
            # once the new front door serves.
            description = f"{len(revoked)} old rule(s) of {group_id}"
            run.retire(COMPONENT, description, partial(revoke, IpPermissions=revoked))
        elif revoked:
            revoke(IpPermissions=revoked)
            run.journal.record(
                COMPONENT,
                f"revoked {len(revoked)} unexpected rule(s) on {group_id}",
                partial(authorize, IpPermissions=revoked),
            )

    @staticmethod
    def _finish_move(run: Run, group_id: str, ids: dict[str, str]) -> None:
        """The load balancer is IPv6-only and CloudFront reaches it over IPv6: its IPv6 list
        takes the IPv4 one's place (one at a time: AWS counts each as 55 of both families'
        60 rules), while IPv6 from anywhere keeps CloudFront in, then that goes too."""
        for operation, rule in (
            ("revoke_security_group_ingress", CLOUDFRONT_IPV4),
            ("authorize_security_group_ingress", CLOUDFRONT),
            ("revoke_security_group_ingress", MOVING),
        ):
            _ec2(run, operation, GroupId=group_id, IpPermissions=[_permission(rule, ids)])

    # -- deleting ---------------------------------------------------------------------------

    def destroy(self, run: Run, observed: Observed) -> None:
        if observed["vpc"] is None:
            return
        vpc_id = observed["vpc"]["VpcId"]
        groups = observed["groups"]
        for role in reversed(ROLES):  # db refers to app, app to lb: delete the referrers first
            group = groups.get(f"{run.config.prefix}-{role}")
            if group:
                self._delete_with_retry(run, "delete_security_group", GroupId=group["GroupId"])
        table = observed["route_table"]
        if table:
            for association in table.get("Associations", []):
                if not association.get("Main"):
                    ignore_gone(
                        lambda a=association: _ec2(
                            run,
                            "disassociate_route_table",
                            AssociationId=a["RouteTableAssociationId"],
                        )
                    )
            self._delete_with_retry(run, "delete_route_table", RouteTableId=table["RouteTableId"])
        for subnet in observed["subnets"]:
            self._delete_with_retry(run, "delete_subnet", SubnetId=subnet["SubnetId"])
        igw = observed["igw"]
        if igw:
            for attachment in igw.get("Attachments", []):
                ignore_gone(
                    lambda a=attachment: _ec2(
                        run,
                        "detach_internet_gateway",
                        InternetGatewayId=igw["InternetGatewayId"],
                        VpcId=a["VpcId"],
                    )
                )
            self._delete_with_retry(
                run, "delete_internet_gateway", InternetGatewayId=igw["InternetGatewayId"]
            )
        self._delete_with_retry(run, "delete_vpc", VpcId=vpc_id)

    def _delete_with_retry(self, run: Run, operation: str, **params: Any) -> None:
        """Delete, retrying while AWS says something still uses it (lingering ENIs)."""
        ident = next(iter(params.values()))

        def report(code: str, left: float) -> None:
            run.note(COMPONENT, f"{ident} still in use ({code}); retrying for {left:.0f}s more")

        try:
            retry_while(
                IN_USE,
                run.dependency_budget_seconds,
                lambda: ignore_gone(lambda: _ec2(run, operation, **params)),
                report,
                delay=min(5.0, run.poll_seconds),
                sleep=run.sleep,
            )
        except AwsError as error:
            if error.code in IN_USE:
                raise DeployError(
                    f"{ident} is still in use after {run.dependency_budget_seconds:.0f}s",
                    f"blocking network interfaces: {self._blockers(run, params)}; "
                    "delete them or wait, then run down again",
                ) from error
            raise

    @staticmethod
    def _blockers(run: Run, params: dict[str, Any]) -> str:
        key = {"GroupId": "group-id", "SubnetId": "subnet-id", "VpcId": "vpc-id"}.get(
            next(iter(params))
        )
        if key is None:
            return "none found"
        enis = _ec2(
            run,
            "describe_network_interfaces",
            Filters=[{"Name": key, "Values": [next(iter(params.values()))]}],
        )["NetworkInterfaces"]
        return (
            ", ".join(
                f"{e['NetworkInterfaceId']} ({e.get('Description') or e.get('InterfaceType', '?')})"
                for e in enis
            )
            or "none found"
        )


def fargate_zones(run: Run) -> list[str]:
    """Two zone IDs of the region where Fargate runs, the same ones in every account."""
    region = run.aws.region
    answer = _ec2(
        run,
        "describe_availability_zones",
        Filters=[
            {"Name": "state", "Values": ["available"]},
            {"Name": "zone-type", "Values": ["availability-zone"]},
        ],
    )
    allowed = FARGATE_ZONE_IDS.get(region)
    ids = sorted(
        z["ZoneId"]
        for z in answer["AvailabilityZones"]
        if (allowed is None or z["ZoneId"] in allowed) and z["ZoneId"] not in AVOIDED_ZONE_IDS
    )
    if len(ids) < 2:
        raise DeployError(
            f"{region} has fewer than two available zones where Fargate runs",
            "choose another region, or set network.availability_zones (zone IDs) in deploy.toml",
        )
    return ids[:2]


def _zone_parameter(zone: str) -> dict[str, str]:
    """deploy.toml may name zones by ID (the same zone in every account) or by name."""
    return {"AvailabilityZoneId": zone} if ZONE_ID.match(zone) else {"AvailabilityZone": zone}


def ignore_gone(action: Any) -> Any:
    try:
        return action()
    except AwsError as error:
        if error.code not in GONE:
            raise
        return None


def cloudfront_prefix_list(run: Run) -> str:
    """The id of AWS's list of CloudFront's IPv6 origin-facing addresses in this region."""
    return cloudfront_prefix_lists(run)["cloudfront"]


def cloudfront_prefix_lists(run: Run) -> dict[str, str]:
    """The rule sources of CloudFront's lists: the IPv6 one we allow, and the IPv4 one older
    environments allowed (so that its rule reads as such when it is retired)."""
    names = {CLOUDFRONT_PREFIX_LIST: "cloudfront", CLOUDFRONT_IPV4_PREFIX_LIST: "cloudfront-ipv4"}
    lists = _ec2(
        run,
        "describe_managed_prefix_lists",
        Filters=[{"Name": "prefix-list-name", "Values": list(names)}],
    )["PrefixLists"]
    found = {names[p["PrefixListName"]]: str(p["PrefixListId"]) for p in lists}
    if "cloudfront" not in found:
        raise DeployError(
            f"the region {run.aws.region} has no {CLOUDFRONT_PREFIX_LIST} prefix list",
            "set service.domain in deploy.toml to serve HTTPS from the load balancer instead",
        )
    return found


def _ipv6_block(resource: dict[str, Any], ready: bool = False) -> str | None:
    """A VPC's or subnet's IPv6 block (associated, or on its way unless `ready`)."""
    states = ("associated",) if ready else ("associating", "associated")
    for association in resource.get("Ipv6CidrBlockAssociationSet") or []:
        state = association.get("Ipv6CidrBlockState", {}).get("State")
        if state in states:
            return str(association["Ipv6CidrBlock"])
    return None


def _free_ipv6_blocks(vpc_block: str, subnets: list[dict[str, Any]]) -> Iterator[str]:
    """The VPC's /64s that no subnet of it uses yet, in order."""
    used = {_ipv6_block(s) for s in subnets}
    for block in ipaddress.ip_network(vpc_block).subnets(new_prefix=SUBNET_IPV6_PREFIX):
        if str(block) not in used:
            yield str(block)


def _ipv6_timed_out(what: str, waited: float) -> DeployError:
    return DeployError(
        f"the IPv6 block of {what} is still not associated after {waited:.0f}s",
        "run the command again to keep waiting; AWS Health shows VPC issues",
    )


def _attached(igw: dict[str, Any], vpc_id: str) -> bool:
    return any(
        a.get("VpcId") == vpc_id and a.get("State", "available") in ("available", "attached")
        for a in igw.get("Attachments", [])
    )


def _route_key(destination: str) -> str:
    """The route field naming `destination`: IPv6 routes have their own."""
    return "DestinationIpv6CidrBlock" if destination == ANYWHERE_IPV6 else "DestinationCidrBlock"


def _default_route_target(table: dict[str, Any], destination: str = ANYWHERE) -> str | None:
    key = _route_key(destination)
    for route in table.get("Routes", []):
        if route.get(key) == destination and route.get("State", "active") == "active":
            return route.get("GatewayId")
    return None


def _actual_rules(group: dict[str, Any], ids: dict[str, str]) -> set[Rule]:
    roles = {group_id: role for role, group_id in ids.items()}
    rules: set[Rule] = set()
    for perm in group.get("IpPermissions", []):
        key = (perm.get("IpProtocol", "-1"), perm.get("FromPort", -1), perm.get("ToPort", -1))
        rules |= {(*key, f"cidr:{r['CidrIp']}") for r in perm.get("IpRanges", [])}
        rules |= {(*key, f"cidr6:{r['CidrIpv6']}") for r in perm.get("Ipv6Ranges", [])}
        rules |= {
            (*key, f"sg:{roles.get(p['GroupId'], p['GroupId'])}")
            for p in perm.get("UserIdGroupPairs", [])
        }
        rules |= {
            (*key, f"pl:{roles.get(p['PrefixListId'], p['PrefixListId'])}")
            for p in perm.get("PrefixListIds", [])
        }
    return rules


def _moving(run: Run, role: str, group: dict[str, Any], ids: dict[str, str]) -> bool:
    """Whether the load balancer's group, behind CloudFront, still admits CloudFront's IPv4
    list: an environment made before the load balancer went IPv6-only, moving over."""
    if role != "lb" or not run.config.settings.service.behind_cloudfront:
        return False
    return CLOUDFRONT_IPV4 in _actual_rules(group, ids)


def _rule_diff(
    wanted: set[Rule], group: dict[str, Any], ids: dict[str, str]
) -> tuple[set[Rule], set[Rule]]:
    actual = _actual_rules(group, ids)
    return wanted - actual, actual - wanted


def _permission(rule: Rule, ids: dict[str, str]) -> dict[str, Any]:
    protocol, low, high, source = rule
    permission: dict[str, Any] = {"IpProtocol": protocol, "FromPort": low, "ToPort": high}
    kind, _, value = source.partition(":")
    if kind == "cidr":
        permission["IpRanges"] = [{"CidrIp": value}]
    elif kind == "cidr6":
        permission["Ipv6Ranges"] = [{"CidrIpv6": value}]
    elif kind == "pl":
        permission["PrefixListIds"] = [{"PrefixListId": ids.get(value, value)}]
    else:
        permission["UserIdGroupPairs"] = [{"GroupId": ids.get(value, value)}]
    return permission


def _show(rule: Rule) -> str:
    protocol, low, high, source = rule
    ports = str(low) if low == high else f"{low}-{high}"
    return f"{protocol}/{ports} from {source.split(':', 1)[1]}"
