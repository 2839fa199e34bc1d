"""The dual-stack front door in the emulator: an IPv6 VPC, a load balancer without public IPv4
behind CloudFront, and what AWS enforces along that path.

Two halves, installed together by `install(layer)`:

- **moto's gaps**, patched in this process (the moto server runs in it, see
  RealisticMotoServer) by `install_moto_gaps()`, once however often it is called: load
  balancers of type `dualstack-without-public-ipv4`; a CloudFront origin's
  `CustomOriginConfig.IpAddressType`; the AWS-managed prefix list
  `com.amazonaws.global.ipv6.cloudfront.origin-facing` in every region (and after a reset); a
  subnet's IPv6 association state (moto answers "{'State': 'associated'}"); the network border
  group of an Amazon-provided IPv6 block; a second `::/0` route refused like a second
  `0.0.0.0/0`. The tests' own key sees these too: they are what moto should have been.
- **AWS's rules**, for the deployer's key only, in the `DualStack` rule: a load balancer is
  dual-stack only in subnets with an IPv6 block (and without public IPv4 only if it is an
  internet-facing Application Load Balancer); a VPC's new Amazon-provided IPv6 block is
  `associating` for its next VPC_IPV6_ASSOCIATING_DESCRIBES DescribeVpcs answers, and no
  subnet gets a /64 of it before; a subnet's block is one /64 inside the VPC's that no other
  subnet uses; a security group rule names a prefix list that exists, and a group's inbound
  rules stay within 60 per address family (an AWS-managed list counting as its weight in
  both: CloudFront's two lists cannot be allowed at once). CloudFront accepts an
  origin it cannot reach over the IP version asked for (viewers get 502s): that is not
  refused but noted, see `front_door_reaches_origin` and `viewer_errors`.

Register it with `install(layer)`: after the permissions and the documented name constraints,
so that a call the policy denies, or one AWS would refuse for its name, is never judged here.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from tests.support.aws_wire import Answer, WireCall, error
from tests.support.realism import CLOUDFRONT_REGION, Constraints, Realism, Rule, ok

WITHOUT_PUBLIC_IPV4 = "dualstack-without-public-ipv4"
# What an internal load balancer may be. The ELB API reference says "Internal load balancers
# must use ipv4", but the ALB guide's own CloudFormation example is an internal `dualstack` load
# balancer and moto (PR #9680) dropped that check as not what AWS does. Without public IPv4
# means public IPv6, which an internal one has none of: refused (a guess).
INTERNAL_IP_ADDRESS_TYPES = ("ipv4", "dualstack")
# The public addresses a load balancer of each type answers on, and what an origin's
# IpAddressType needs of them (one is enough).
OFFERS = {"ipv4": {"ipv4"}, "dualstack": {"ipv4", "ipv6"}, WITHOUT_PUBLIC_IPV4: {"ipv6"}}
NEEDS = {"ipv4": {"ipv4"}, "ipv6": {"ipv6"}, "dualstack": {"ipv4", "ipv6"}}

CLOUDFRONT_IPV6_PREFIX_LIST = "com.amazonaws.global.ipv6.cloudfront.origin-facing"
CLOUDFRONT_IPV6_RANGES = (  # CloudFront's IPv6 space is 2600:9000::/28
    "2600:9000:1000::/36",
    "2600:9000:2000::/36",
    "2600:9000:3000::/36",
    "2600:9000:f000::/36",
)
VPC_IPV6_ASSOCIATING_DESCRIBES = 2  # DescribeVpcs answers that show a new block associating
SUBNET_IPV6_PREFIX = 64  # "The subnet size must use a /64 prefix length."

Problem = tuple[str, str]  # an AWS error code and message
RULES_PER_GROUP = 60  # inbound rules of each address family (VPC quotas, adjustable)
# What a rule naming an AWS-managed list counts as (VPC guide, "AWS-managed prefix list
# weights"); 1 for the lists not named here.
MANAGED_LIST_WEIGHTS = {
    "com.amazonaws.global.cloudfront.origin-facing": 55,
    CLOUDFRONT_IPV6_PREFIX_LIST: 55,
}

# -- moto's gaps ---------------------------------------------------------------------------

_install_lock = threading.Lock()
_installed: list[str] = []


def install_moto_gaps() -> None:
    """Patch moto (in this process) where it falls short of AWS on the dual-stack path."""
    with _install_lock:
        if _installed:
            return
        for patch in (
            _load_balancers_without_public_ipv4,
            _origin_ip_address_types,
            _cloudfront_ipv6_prefix_list,
            _subnet_ipv6_states,
            _vpc_ipv6_border_groups,
            _ipv6_routes_once,
        ):
            patch()
            _installed.append(patch.__name__)


def _load_balancers_without_public_ipv4() -> None:
    """moto knows ipv4 and dualstack only: create as dualstack, then keep what was asked. And
    it leaves out the scheme and type when they were not given (AWS: internet-facing, an
    Application Load Balancer)."""
    from moto.elbv2.models import ELBv2Backend

    create: Callable[..., Any] = ELBv2Backend.create_load_balancer
    set_type = ELBv2Backend.set_ip_address_type

    def create_load_balancer(
        self: Any,
        *args: Any,
        ip_address_type: str = "ipv4",
        scheme: str | None = None,
        loadbalancer_type: str | None = None,
        **kw: Any,
    ) -> Any:
        asked = "dualstack" if ip_address_type == WITHOUT_PUBLIC_IPV4 else ip_address_type
        balancer = create(
            self,
            *args,
            ip_address_type=asked,
            scheme=scheme or "internet-facing",
            loadbalancer_type=loadbalancer_type or "application",
            **kw,
        )
        balancer.ip_address_type = ip_address_type
        return balancer

    def set_ip_address_type(self: Any, arn: str, ip_type: str) -> None:
        set_type(self, arn, "dualstack" if ip_type == WITHOUT_PUBLIC_IPV4 else ip_type)
        self.load_balancers[arn].ip_address_type = ip_type

    setattr(ELBv2Backend, "create_load_balancer", create_load_balancer)  # noqa: B010
    setattr(ELBv2Backend, "set_ip_address_type", set_ip_address_type)  # noqa: B010


def _origin_ip_address_types() -> None:
    """moto's CustomOriginConfig drops IpAddressType; its serializer reads `ip_address_type`
    off the object (ActionResult), so keeping the attribute is all it takes."""
    from moto.cloudfront.models import CustomOriginConfig

    made = CustomOriginConfig.__init__

    def __init__(self: Any, config: dict[str, Any]) -> None:
        made(self, config)
        self.ip_address_type = config.get("IpAddressType")

    setattr(CustomOriginConfig, "__init__", __init__)  # noqa: B010


def _cloudfront_ipv6_prefix_list() -> None:
    """Every EC2 backend made from now on (a reset makes new ones) has the IPv6 list beside
    moto's IPv4 one; so do those already made."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.managed_prefixes import ManagedPrefixListBackend

    defaults = ManagedPrefixListBackend.create_default_pls

    def create_default_pls(self: Any) -> None:
        defaults(self)
        _add_cloudfront_ipv6_list(self)

    setattr(ManagedPrefixListBackend, "create_default_pls", create_default_pls)  # noqa: B010
    for account in dict.values(ec2_backends):
        for backend in dict.values(account):
            _add_cloudfront_ipv6_list(backend)


def _add_cloudfront_ipv6_list(backend: Any) -> None:
    names = {p.prefix_list_name for p in backend.managed_prefix_lists.values()}
    if CLOUDFRONT_IPV6_PREFIX_LIST not in names:
        backend._create_aws_managed_prefix_list(
            name=CLOUDFRONT_IPV6_PREFIX_LIST,
            address_family="IPv6",
            entries=[{"Cidr": cidr, "Description": "default"} for cidr in CLOUDFRONT_IPV6_RANGES],
        )


def _subnet_ipv6_states() -> None:
    """moto nests the state dict in another: DescribeSubnets says "{'State': 'associated'}"."""
    from moto.ec2.models.subnets import Subnet

    def ipv6_cidr_block_association_set(self: Any) -> list[dict[str, Any]]:
        return [
            {
                "ipv6CidrBlock": association["ipv6CidrBlock"],
                "associationId": association["associationId"],
                "ipv6CidrBlockState": dict(association["ipv6CidrBlockState"]),
            }
            for association in self.ipv6_cidr_block_associations.values()
            if association["ipv6CidrBlockState"]["State"] == "associated"
        ]

    setattr(Subnet, "ipv6_cidr_block_association_set", property(ipv6_cidr_block_association_set))  # noqa: B010


def _vpc_ipv6_border_groups() -> None:
    """An Amazon-provided block is advertised from the VPC's region unless asked otherwise;
    AWS reports it as the association's NetworkBorderGroup (moto leaves it out)."""
    from moto.ec2.models.vpcs import VPC

    associate = VPC.associate_vpc_cidr_block

    def associate_vpc_cidr_block(
        self: Any,
        cidr_block: str,
        amazon_provided_ipv6_cidr_block: bool = False,
        ipv6_cidr_block_network_border_group: str | None = None,
    ) -> dict[str, Any]:
        group = ipv6_cidr_block_network_border_group
        if amazon_provided_ipv6_cidr_block and not group:
            group = self.ec2_backend.region_name
        association = associate(self, cidr_block, amazon_provided_ipv6_cidr_block, group)
        if amazon_provided_ipv6_cidr_block:
            association["network_border_group"] = group
        return association

    setattr(VPC, "associate_vpc_cidr_block", associate_vpc_cidr_block)  # noqa: B010


def _ipv6_routes_once() -> None:
    """moto refuses a second route to an IPv4 destination (RouteAlreadyExists) but silently
    replaces one to an IPv6 destination."""
    from moto.ec2.exceptions import RouteAlreadyExistsError
    from moto.ec2.models.route_tables import RouteBackend

    create = RouteBackend.create_route

    def create_route(
        self: Any,
        route_table_id: str,
        destination_cidr_block: str | None,
        destination_ipv6_cidr_block: str | None = None,
        *args: Any,
        **kw: Any,
    ) -> Any:
        wanted = destination_ipv6_cidr_block
        if wanted and not kw.get("local"):
            routes = self.get_route_table(route_table_id)._routes.values()
            if any(r.destination_ipv6_cidr_block == wanted and not r.local for r in routes):
                raise RouteAlreadyExistsError(wanted)
        return create(
            self, route_table_id, destination_cidr_block, destination_ipv6_cidr_block, *args, **kw
        )

    setattr(RouteBackend, "create_route", create_route)  # noqa: B010


# -- AWS's rules -----------------------------------------------------------------------------


def install(layer: Realism) -> None:
    """Patch moto and hold the deployer's calls to the rules below (once per layer)."""
    install_moto_gaps()
    if any(isinstance(rule, DualStack) for rule in layer.rules):
        return
    after = next(i for i, rule in enumerate(layer.rules) if isinstance(rule, Constraints))
    layer.rules.insert(after + 1, DualStack(layer))


class DualStack(Rule):
    """AWS's rules for an IPv6 VPC and a dual-stack load balancer (see the module docstring)."""

    def _associating(self) -> dict[str, int]:
        return self.layer.counter("vpc-ipv6-associating")

    def before(self, call: WireCall) -> Answer | None:
        check: Callable[[WireCall], Problem | None] | None = {
            ("elbv2", "CreateLoadBalancer"): self._new_load_balancer,
            ("elbv2", "SetIpAddressType"): self._new_ip_address_type,
            ("ec2", "CreateSubnet"): self._new_subnet,
            ("ec2", "AssociateSubnetCidrBlock"): self._new_subnet_block,
            ("ec2", "AuthorizeSecurityGroupIngress"): self._rules_quota,
            ("ec2", "AuthorizeSecurityGroupEgress"): self._prefix_lists,
        }.get((call.service, call.operation))
        problem = check(call) if check else None
        return error(call, *problem) if problem else None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if not ok(answer):
            return None
        if call.service == "ec2":
            return self._vpc_blocks(call, answer)
        if (call.service, call.operation) in FRONT_DOOR_CHANGES:
            self._note_viewer_errors(call, answer)
        return None

    # -- load balancers --

    def _new_load_balancer(self, call: WireCall) -> Problem | None:
        p = call.params
        subnets = p.get("Subnets") or [m["SubnetId"] for m in p.get("SubnetMappings") or []]
        return self._ip_address_type_problem(
            call.region,
            p.get("IpAddressType", "ipv4"),
            p.get("Scheme", "internet-facing"),
            p.get("Type", "application"),
            subnets,
        )

    def _new_ip_address_type(self, call: WireCall) -> Problem | None:
        lb = _load_balancer(self.layer, call.region, call.params["LoadBalancerArn"])
        if lb is None:
            return None  # moto answers LoadBalancerNotFound
        return self._ip_address_type_problem(
            call.region,
            call.params["IpAddressType"],
            lb.get("Scheme", "internet-facing"),
            lb.get("Type", "application"),
            [zone["SubnetId"] for zone in lb.get("AvailabilityZones", [])],
        )

    def _ip_address_type_problem(
        self, region: str, wanted: str, scheme: str, kind: str, subnet_ids: list[str]
    ) -> Problem | None:
        if wanted == "ipv4" or not subnet_ids:
            return None  # without subnets, moto refuses it
        if wanted == WITHOUT_PUBLIC_IPV4 and kind != "application":
            return (
                "ValidationError",
                f"IP address type '{wanted}' is only supported for Application Load Balancers",
            )
        if scheme == "internal" and wanted not in INTERNAL_IP_ADDRESS_TYPES:
            return ("ValidationError", f"Internal load balancers cannot use '{wanted}'")
        try:
            subnets = self.layer.admin("ec2", region).describe_subnets(SubnetIds=subnet_ids)
        except ClientError:
            return None  # moto answers SubnetNotFound
        if any(not ipv6_blocks(s) for s in subnets["Subnets"]):
            return (
                "ValidationError",
                "You must specify subnets with an associated IPv6 CIDR block.",
            )
        return None

    # -- a VPC's IPv6 block, and its subnets' /64s --

    def _vpc_blocks(self, call: WireCall, answer: Answer) -> Answer | None:
        """A new Amazon-provided block is associating a while; DescribeVpcs shows it so."""
        if call.operation in ("CreateVpc", "AssociateVpcCidrBlock"):
            if not call.params.get("AmazonProvidedIpv6CidrBlock"):
                return None
            with self.layer.lock:
                for ident in IPV6_ASSOCIATION_ID.findall(answer.body.decode()):
                    self._associating()[ident] = VPC_IPV6_ASSOCIATING_DESCRIBES
            return _with_ipv6_states(answer, lambda ident: ident in self._associating())
        if call.operation == "DescribeVpcs":
            with self.layer.lock:
                return _with_ipv6_states(
                    answer, lambda ident: self.layer.tick(self._associating(), ident)
                )
        return None

    def _new_subnet(self, call: WireCall) -> Problem | None:
        wanted = call.params.get("Ipv6CidrBlock")
        if not wanted:
            return None
        return self._block_problem(call.region, call.params["VpcId"], wanted, subnet_id=None)

    def _new_subnet_block(self, call: WireCall) -> Problem | None:
        wanted, subnet_id = call.params.get("Ipv6CidrBlock"), call.params["SubnetId"]
        subnet = _ec2_one(
            self.layer, call.region, "describe_subnets", "Subnets", SubnetIds=[subnet_id]
        )
        if not wanted or subnet is None:
            return None  # an IPAM pool (not judged here), or moto answers InvalidSubnetID
        if ipv6_blocks(subnet):
            return (
                "InvalidParameterValue",
                f"The subnet {subnet_id} already has an IPv6 CIDR block associated with it",
            )
        return self._block_problem(call.region, subnet["VpcId"], wanted, subnet_id)

    def _block_problem(
        self, region: str, vpc_id: str, wanted: str, subnet_id: str | None
    ) -> Problem | None:
        """One /64 inside the VPC's associated block, used by no other subnet of the VPC."""
        vpc = _ec2_one(self.layer, region, "describe_vpcs", "Vpcs", VpcIds=[vpc_id])
        if vpc is None:
            return None  # moto answers InvalidVpcID.NotFound
        block = _ipv6_network(wanted)
        if block is None or block.prefixlen != SUBNET_IPV6_PREFIX:
            return (
                "InvalidParameterValue",
                f"invalid value for parameter ipv6-cidr-block: {wanted}",
            )
        if not any(block.subnet_of(ready) for ready in self._ready_blocks(vpc)):
            return ("InvalidSubnet.Range", f"The IPv6 CIDR '{wanted}' is invalid.")
        others = [s for s in _subnets_of(self.layer, region, vpc_id) if s["SubnetId"] != subnet_id]
        if any(block.overlaps(ipaddress.IPv6Network(b)) for s in others for b in ipv6_blocks(s)):
            return (
                "InvalidSubnet.Conflict",
                f"The IPv6 CIDR '{wanted}' conflicts with another subnet",
            )
        return None

    def _ready_blocks(self, vpc: dict[str, Any]) -> list[ipaddress.IPv6Network]:
        """The VPC's IPv6 blocks as the deployer was shown them: no longer associating."""
        with self.layer.lock:
            associating = {k for k, left in self._associating().items() if left > 0}
        return [
            ipaddress.IPv6Network(a["Ipv6CidrBlock"])
            for a in vpc.get("Ipv6CidrBlockAssociationSet") or []
            if a["Ipv6CidrBlockState"]["State"] == "associated"
            and a["AssociationId"] not in associating
        ]

    # -- security group rules --

    def _prefix_lists(self, call: WireCall) -> Problem | None:
        named = {
            item["PrefixListId"]
            for permission in call.params.get("IpPermissions") or []
            for item in permission.get("PrefixListIds") or []
        }
        if not named:
            return None
        lists = self.layer.admin("ec2", call.region).describe_managed_prefix_lists()
        missing = sorted(named - {p["PrefixListId"] for p in lists["PrefixLists"]})
        if missing:
            message = f"The prefix list ID '{missing[0]}' does not exist"
            return ("InvalidPrefixListID.NotFound", message)
        return None

    def _rules_quota(self, call: WireCall) -> Problem | None:
        """60 inbound rules per group and address family (VPC quotas): "A rule that
        references a security group or AWS-managed prefix list ID counts as one rule for IPv4
        and one rule for IPv6", an AWS-managed list as its weight (CloudFront's: 55)."""
        problem = self._prefix_lists(call)
        if problem or call.operation != "AuthorizeSecurityGroupIngress":
            return problem
        ec2 = self.layer.admin("ec2", call.region)
        [group] = ec2.describe_security_groups(GroupIds=[call.params["GroupId"]])["SecurityGroups"]
        weights = {
            p["PrefixListId"]: MANAGED_LIST_WEIGHTS.get(p["PrefixListName"], 1)
            for p in ec2.describe_managed_prefix_lists()["PrefixLists"]
        }
        permissions = [*group["IpPermissions"], *(call.params.get("IpPermissions") or [])]
        counts = {"IPv4": 0, "IPv6": 0}
        for permission in permissions:
            counts["IPv4"] += len(permission.get("IpRanges") or [])
            counts["IPv6"] += len(permission.get("Ipv6Ranges") or [])
            shared = len(permission.get("UserIdGroupPairs") or []) + sum(
                weights.get(item["PrefixListId"], 1)
                for item in permission.get("PrefixListIds") or []
            )
            counts["IPv4"] += shared
            counts["IPv6"] += shared
        if max(counts.values()) > RULES_PER_GROUP:
            message = "The maximum number of rules per security group has been reached."
            return ("RulesPerSecurityGroupLimitExceeded", message)
        return None

    # -- what CloudFront's viewers get --

    def _note_viewer_errors(self, call: WireCall, answer: Answer) -> None:
        if call.service == "elbv2":
            listing = self.layer.admin("cloudfront", CLOUDFRONT_REGION).list_distributions()
            idents = [d["Id"] for d in listing["DistributionList"].get("Items", [])]
        else:
            found = FIRST_ID.search(answer.body.decode())
            idents = [call.params.get("Id") or (found.group(1) if found else "")]
        for ident in idents:
            config = _distribution_config(self.layer, ident)
            if config is None or not config.get("Enabled"):
                continue
            with self.layer.lock:
                seen = self.layer.state.setdefault("viewer-errors", {})
                for problem in _origin_problems(self.layer, ident, config):
                    seen.setdefault(problem, f"{problem} (after {call.operation})")


FRONT_DOOR_CHANGES = (
    ("cloudfront", "CreateDistribution"),
    ("cloudfront", "CreateDistributionWithTags"),
    ("cloudfront", "UpdateDistribution"),
    ("elbv2", "SetIpAddressType"),
)
FIRST_ID = re.compile(r"<Id>([^<]+)</Id>")
IPV6_ASSOCIATION_ID = re.compile(
    r"<associationId>([^<]+)</associationId><ipv6CidrBlock>"
)  # an IPv6 association of a VPC (IPv4 ones have a <cidrBlock> next)
IPV6_ASSOCIATION = re.compile(
    r"<associationId>([^<]+)</associationId><ipv6CidrBlock>.*?</ipv6CidrBlockState>", re.S
)
STATE = re.compile(r"<state>[^<]*</state>")


def _with_ipv6_states(answer: Answer, associating: Callable[[str], bool]) -> Answer:
    """The answer with each IPv6 association that is still `associating` shown so."""

    def edit(match: re.Match[str]) -> str:
        if not associating(match.group(1)):
            return match.group(0)
        return STATE.sub("<state>associating</state>", match.group(0), count=1)

    body = IPV6_ASSOCIATION.sub(edit, answer.body.decode())
    return Answer(answer.status, answer.headers, body.encode())


def ipv6_blocks(resource: dict[str, Any]) -> list[str]:
    """A VPC's or subnet's associated IPv6 blocks (as the caller was shown them)."""
    return [
        a["Ipv6CidrBlock"]
        for a in resource.get("Ipv6CidrBlockAssociationSet") or []
        if a.get("Ipv6CidrBlockState", {}).get("State") == "associated"
    ]


def _ipv6_network(text: str) -> ipaddress.IPv6Network | None:
    try:
        return ipaddress.IPv6Network(text)
    except ValueError:
        return None


def _ec2_one(layer: Realism, region: str, method: str, key: str, **params: Any) -> Any:
    """The one resource an EC2 describe call finds, or None."""
    try:
        found = getattr(layer.admin("ec2", region), method)(**params)[key]
    except ClientError:
        return None
    return found[0] if found else None


def _subnets_of(layer: Realism, region: str, vpc_id: str) -> list[dict[str, Any]]:
    ec2 = layer.admin("ec2", region)
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
    return list(ec2.describe_subnets(Filters=filters)["Subnets"])


def _load_balancer(layer: Realism, region: str, arn: str) -> dict[str, Any] | None:
    try:
        found = layer.admin("elbv2", region).describe_load_balancers(LoadBalancerArns=[arn])
    except ClientError:
        return None
    return dict(found["LoadBalancers"][0]) if found["LoadBalancers"] else None


# -- CloudFront in front of a load balancer --------------------------------------------------


def front_door_reaches_origin(layer: Realism, distribution_id: str) -> bool:
    """Whether CloudFront reaches each load balancer origin of the distribution over the IP
    version its IpAddressType asks for (ipv4 by default): ipv4 needs a load balancer of type
    ipv4 or dualstack, ipv6 one of type dualstack or dualstack-without-public-ipv4, dualstack
    either. Viewers get 502s from an origin it does not reach; AWS accepts the setting."""
    config = _distribution_config(layer, distribution_id)
    if config is None:
        raise LookupError(f"no distribution {distribution_id}")
    return not _origin_problems(layer, distribution_id, config)


def viewer_errors(layer: Realism) -> list[str]:
    """Each time a change by the deployer left an enabled distribution asking for an origin
    over an IP version its load balancer does not offer (what viewers got: 502s)."""
    with layer.lock:
        return list(layer.state.get("viewer-errors", {}).values())


def _origin_problems(layer: Realism, ident: str, config: dict[str, Any]) -> list[str]:
    problems = []
    for origin in config.get("Origins", {}).get("Items", []):
        custom, domain = origin.get("CustomOriginConfig"), _host(origin["DomainName"])
        if custom is None or not domain.endswith(".elb.amazonaws.com"):
            continue  # not a load balancer: not judged
        wanted = custom.get("IpAddressType") or "ipv4"
        offers, what = _offers(_load_balancer_named(layer, domain))
        if not NEEDS[wanted] & offers:
            problems.append(
                f"distribution {ident}: CloudFront reaches origin {origin['Id']} ({domain}) "
                f"over {wanted}, but it is {what}: viewers get 502"
            )
    return problems


def _offers(lb: dict[str, Any] | None) -> tuple[set[str], str]:
    """The public address families a load balancer answers on, and how to name it."""
    if lb is None:
        return set(), "no load balancer of the account"
    if lb.get("Scheme") == "internal":
        return set(), "an internal load balancer"
    return OFFERS[lb["IpAddressType"]], f"a load balancer of type {lb['IpAddressType']}"


def _host(domain: str) -> str:
    return domain.lower().rstrip(".").removeprefix("dualstack.")


def _load_balancer_named(layer: Realism, domain: str) -> dict[str, Any] | None:
    """The account's load balancer with this DNS name (its region is in the name)."""
    labels = domain.split(".")
    if len(labels) < 5:
        return None
    try:
        found = layer.admin("elbv2", labels[-4]).describe_load_balancers()["LoadBalancers"]
    except (ClientError, ValueError):
        return None
    return next((dict(lb) for lb in found if lb["DNSName"].lower() == domain), None)


def _distribution_config(layer: Realism, ident: str) -> dict[str, Any] | None:
    try:
        found = layer.admin("cloudfront", CLOUDFRONT_REGION).get_distribution_config(Id=ident)
    except ClientError:
        return None
    return dict(found["DistributionConfig"])
