"""The emulator on the dual-stack path (tests/support/dual_stack.py): what moto lacked, now
kept and answered; and AWS's rules for an IPv6 VPC, its subnets' /64s, a load balancer without
public IPv4 and CloudFront reaching it over IPv6, held against the deployer's key.

Calls the deployer's IAM policy does not grant yet (ec2:AssociateVpcCidrBlock,
ec2:AssociateSubnetCidrBlock, elasticloadbalancing:SetIpAddressType) and calls it grants only
on resources tagged as the deployer's are made under the `unchecked` fixture: the policy is
not the subject here."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.deployer.conftest import REGION
from tests.deployer.faults import sample_distribution
from tests.deployer.test_aws_behaviours import deployer
from tests.support.dual_stack import (
    CLOUDFRONT_IPV6_PREFIX_LIST,
    VPC_IPV6_ASSOCIATING_DESCRIBES,
    WITHOUT_PUBLIC_IPV4,
    DualStack,
    front_door_reaches_origin,
    install,
    install_moto_gaps,
    viewer_errors,
)
from tests.support.realism import Constraints, Realism

OWNER_TAGS = [
    {"Key": "nnote:app", "Value": "nnote"},
    {"Key": "nnote:env", "Value": "staging"},
    {"Key": "nnote:managed-by", "Value": "nnote-deploy"},
]


@pytest.fixture
def dual_stack(aws_env: dict[str, str], realism: Realism) -> Iterator[Realism]:
    """The layer, with the dual-stack rule every layer installs (tests/support/realism.py)."""
    assert any(isinstance(rule, DualStack) for rule in realism.rules)
    yield realism


@pytest.fixture
def unchecked(dual_stack: Realism, monkeypatch: pytest.MonkeyPatch) -> Realism:
    """The deployer's key without docs/iam-policy.json (AWS's other rules still hold)."""
    monkeypatch.setattr(dual_stack, "policy", None)
    return dual_stack


def admin(service: str, region: str = REGION) -> Any:
    """The tests' own key: set-up and moto as it is."""
    return boto3.client(service, region_name=region)


def refusal(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def ipv4_vpc() -> str:
    return str(admin("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])


def vpc_block(vpc_id: str) -> ipaddress.IPv6Network:
    [vpc] = admin("ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    return ipaddress.IPv6Network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])


def slash_64s(vpc_id: str) -> list[str]:
    return [str(b) for b in list(vpc_block(vpc_id).subnets(new_prefix=64))[:4]]


def subnets(vpc_id: str, ipv6: bool) -> list[str]:
    """Two subnets in two zones, each with a /64 of the VPC's block if `ipv6`."""
    blocks = slash_64s(vpc_id) if ipv6 else []
    made = []
    for index, zone in enumerate(("a", "b")):
        extra = {"Ipv6CidrBlock": blocks[index]} if ipv6 else {}
        subnet = admin("ec2").create_subnet(
            VpcId=vpc_id,
            CidrBlock=f"10.0.{index}.0/24",
            AvailabilityZone=f"{REGION}{zone}",
            **extra,
        )
        made.append(subnet["Subnet"]["SubnetId"])
    return made


def dual_stack_vpc() -> str:
    ec2 = admin("ec2")
    return str(
        ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    )


def load_balancer(ip_address_type: str = "ipv4", ipv6_subnets: bool = True, **extra: Any) -> Any:
    vpc_id = dual_stack_vpc() if ipv6_subnets else ipv4_vpc()
    return admin("elbv2").create_load_balancer(
        Name="nnote-staging",
        Subnets=subnets(vpc_id, ipv6_subnets),
        IpAddressType=ip_address_type,
        **extra,
    )["LoadBalancers"][0]


def distribution(domain: str, ip_address_type: str) -> dict[str, Any]:
    """The deployer's distribution in front of `domain`, reaching it over `ip_address_type`."""
    config = sample_distribution("nnote-staging-run-1", "s3cr3t")
    origin = config["Origins"]["Items"][0]
    origin["DomainName"] = domain
    origin["CustomOriginConfig"]["IpAddressType"] = ip_address_type
    return config


def create_distribution(config: dict[str, Any]) -> dict[str, Any]:
    made = deployer("cloudfront", "us-east-1").create_distribution_with_tags(
        DistributionConfigWithTags={"DistributionConfig": config, "Tags": {"Items": OWNER_TAGS}}
    )
    return dict(made["Distribution"])


def origin_ip_address_type(config: dict[str, Any]) -> str:
    return str(config["Origins"]["Items"][0]["CustomOriginConfig"]["IpAddressType"])


# -- what moto lacked --------------------------------------------------------------------------


def test_install_is_idempotent_and_judges_after_the_name_constraints(dual_stack: Realism) -> None:
    install(dual_stack)
    install_moto_gaps()
    kinds = [type(rule) for rule in dual_stack.rules]
    assert kinds.count(DualStack) == 1
    assert kinds.index(DualStack) == kinds.index(Constraints) + 1


@pytest.mark.parametrize("region", [REGION, "us-east-1", "ap-northeast-1"])
def test_cloudfront_ipv6_prefix_list_is_in_every_region_after_a_reset(
    dual_stack: Realism, region: str
) -> None:
    found = deployer("ec2", region).describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [CLOUDFRONT_IPV6_PREFIX_LIST]}]
    )["PrefixLists"]
    assert [(p["AddressFamily"], p["OwnerId"]) for p in found] == [("IPv6", "AWS")]
    entries = admin("ec2", region).get_managed_prefix_list_entries(
        PrefixListId=found[0]["PrefixListId"]
    )["Entries"]
    cloudfront = ipaddress.IPv6Network("2600:9000::/28")
    assert entries and all(ipaddress.IPv6Network(e["Cidr"]).subnet_of(cloudfront) for e in entries)


def test_vpc_ipv6_block_reports_its_pool_and_border_group(dual_stack: Realism) -> None:
    ec2 = admin("ec2")
    vpc_id = ipv4_vpc()
    associated = ec2.associate_vpc_cidr_block(VpcId=vpc_id, AmazonProvidedIpv6CidrBlock=True)
    [vpc] = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    [block] = vpc["Ipv6CidrBlockAssociationSet"]
    assert associated["Ipv6CidrBlockAssociation"]["NetworkBorderGroup"] == REGION
    assert (block["Ipv6Pool"], block["NetworkBorderGroup"]) == ("Amazon", REGION)
    assert block["Ipv6CidrBlockState"] == {"State": "associated"}  # the tests' key: at once
    assert ipaddress.IPv6Network(block["Ipv6CidrBlock"]).prefixlen == 56


def test_subnet_ipv6_blocks_read_associated(dual_stack: Realism) -> None:
    """Made with the subnet or associated later, DescribeSubnets says `associated` (moto said
    "{'State': 'associated'}")."""
    vpc_id = dual_stack_vpc()
    first, second = subnets(vpc_id, ipv6=False)
    ec2 = admin("ec2")
    for subnet_id, block in zip((first, second), slash_64s(vpc_id), strict=False):
        ec2.associate_subnet_cidr_block(SubnetId=subnet_id, Ipv6CidrBlock=block)
    described = ec2.describe_subnets(SubnetIds=[first, second])["Subnets"]
    states = [a["Ipv6CidrBlockState"] for s in described for a in s["Ipv6CidrBlockAssociationSet"]]
    assert states == [{"State": "associated"}] * 2


def test_ipv6_default_route_is_kept_once_and_deleted(dual_stack: Realism) -> None:
    ec2 = admin("ec2")
    vpc_id = dual_stack_vpc()
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
    ec2.create_route(RouteTableId=table, DestinationIpv6CidrBlock="::/0", GatewayId=gateway)
    with pytest.raises(ClientError) as refused:
        ec2.create_route(RouteTableId=table, DestinationIpv6CidrBlock="::/0", GatewayId=gateway)
    assert refusal(refused)[0] == "RouteAlreadyExists"

    def ipv6_routes() -> list[tuple[str, str]]:
        [found] = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]
        return [
            (r["DestinationIpv6CidrBlock"], r["GatewayId"])
            for r in found["Routes"]
            if "DestinationIpv6CidrBlock" in r
        ]

    assert ipv6_routes() == [(str(vpc_block(vpc_id)), "local"), ("::/0", gateway)]
    ec2.delete_route(RouteTableId=table, DestinationIpv6CidrBlock="::/0")
    assert ipv6_routes() == [(str(vpc_block(vpc_id)), "local")]


def test_load_balancer_without_public_ipv4_is_kept_and_described(dual_stack: Realism) -> None:
    elb = admin("elbv2")
    made = load_balancer(WITHOUT_PUBLIC_IPV4)
    assert made["IpAddressType"] == WITHOUT_PUBLIC_IPV4
    arn = made["LoadBalancerArn"]
    assert elb.set_ip_address_type(LoadBalancerArn=arn, IpAddressType="ipv4")["IpAddressType"]
    answer = elb.set_ip_address_type(LoadBalancerArn=arn, IpAddressType=WITHOUT_PUBLIC_IPV4)
    [described] = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
    assert answer["IpAddressType"] == described["IpAddressType"] == WITHOUT_PUBLIC_IPV4
    assert (described["Scheme"], described["Type"]) == ("internet-facing", "application")


def test_origin_ip_address_type_is_kept_by_every_read_and_update(dual_stack: Realism) -> None:
    """Created, read (GetDistribution, GetDistributionConfig, ListDistributions) and updated
    by the deployer: CloudFront keeps CustomOriginConfig.IpAddressType (moto dropped it)."""
    cloudfront = deployer("cloudfront", "us-east-1")
    made = create_distribution(distribution("nnote-staging-1.eu-west-1.elb.amazonaws.com", "ipv6"))
    ident = made["Id"]
    current = cloudfront.get_distribution_config(Id=ident)
    listed = cloudfront.list_distributions()["DistributionList"]["Items"]
    assert [
        origin_ip_address_type(made["DistributionConfig"]),
        origin_ip_address_type(
            cloudfront.get_distribution(Id=ident)["Distribution"]["DistributionConfig"]
        ),
        origin_ip_address_type(current["DistributionConfig"]),
        origin_ip_address_type(listed[0]),
    ] == ["ipv6"] * 4
    changed = current["DistributionConfig"]
    changed["Origins"]["Items"][0]["CustomOriginConfig"]["IpAddressType"] = "dualstack"
    updated = cloudfront.update_distribution(
        Id=ident, IfMatch=current["ETag"], DistributionConfig=changed
    )
    assert origin_ip_address_type(updated["Distribution"]["DistributionConfig"]) == "dualstack"
    again = cloudfront.get_distribution_config(Id=ident)["DistributionConfig"]
    assert origin_ip_address_type(again) == "dualstack"


def test_load_balancer_group_allows_port_80_from_the_ipv6_cloudfront_list(
    unchecked: Realism,
) -> None:
    ec2 = deployer("ec2")
    vpc_id = dual_stack_vpc()
    group = ec2.create_security_group(GroupName="nnote-staging-lb", Description="lb", VpcId=vpc_id)
    [listed] = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [CLOUDFRONT_IPV6_PREFIX_LIST]}]
    )["PrefixLists"]
    permission = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80}
    ec2.authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[{**permission, "PrefixListIds": [{"PrefixListId": listed["PrefixListId"]}]}],
    )
    [described] = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"]
    assert [p["PrefixListIds"] for p in described["IpPermissions"]] == [
        [{"PrefixListId": listed["PrefixListId"]}]
    ]
    with pytest.raises(ClientError) as refused:  # an ID from another region, say
        ec2.authorize_security_group_ingress(
            GroupId=group["GroupId"],
            IpPermissions=[
                {**permission, "PrefixListIds": [{"PrefixListId": "pl-0123456789abcdef0"}]}
            ],
        )
    assert refusal(refused) == (
        "InvalidPrefixListID.NotFound",
        "The prefix list ID 'pl-0123456789abcdef0' does not exist",
    )


def test_dual_stack_subnets_and_vpc_are_deleted_with_their_blocks(unchecked: Realism) -> None:
    ec2 = deployer("ec2")
    vpc_id = dual_stack_vpc()
    for subnet_id in subnets(vpc_id, ipv6=True):
        ec2.delete_subnet(SubnetId=subnet_id)
    ec2.delete_vpc(VpcId=vpc_id)
    assert (
        admin("ec2").describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"] == []
    )
    assert (
        admin("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        == []
    )


# -- AWS's rules, for the deployer's key ---------------------------------------------------------


def deployer_ipv6_state(vpc_id: str) -> str:
    [vpc] = deployer("ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    return str(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlockState"]["State"])


def test_vpc_ipv6_block_is_associating_for_a_few_describes(unchecked: Realism) -> None:
    vpc_id = ipv4_vpc()
    answer = deployer("ec2").associate_vpc_cidr_block(
        VpcId=vpc_id, AmazonProvidedIpv6CidrBlock=True
    )
    assert answer["Ipv6CidrBlockAssociation"]["Ipv6CidrBlockState"]["State"] == "associating"
    looks = [deployer_ipv6_state(vpc_id) for _ in range(VPC_IPV6_ASSOCIATING_DESCRIBES + 1)]
    assert looks == ["associating"] * VPC_IPV6_ASSOCIATING_DESCRIBES + ["associated"]


def test_vpc_made_with_an_ipv6_block_is_associating_first(unchecked: Realism) -> None:
    made = deployer("ec2").create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)
    vpc = made["Vpc"]
    assert vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlockState"]["State"] == "associating"
    assert deployer_ipv6_state(vpc["VpcId"]) == "associating"
    [seen] = admin("ec2").describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert seen["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlockState"]["State"] == "associated"


def test_subnet_gets_no_ipv6_block_before_the_vpcs_is_associated(unchecked: Realism) -> None:
    ec2 = deployer("ec2")
    vpc_id = ipv4_vpc()
    subnet_id, _ = subnets(vpc_id, ipv6=False)
    ec2.associate_vpc_cidr_block(VpcId=vpc_id, AmazonProvidedIpv6CidrBlock=True)
    block = slash_64s(vpc_id)[0]
    with pytest.raises(ClientError) as refused:
        ec2.associate_subnet_cidr_block(SubnetId=subnet_id, Ipv6CidrBlock=block)
    assert refusal(refused) == ("InvalidSubnet.Range", f"The IPv6 CIDR '{block}' is invalid.")
    while deployer_ipv6_state(vpc_id) != "associated":
        pass
    answer = ec2.associate_subnet_cidr_block(SubnetId=subnet_id, Ipv6CidrBlock=block)
    assert answer["Ipv6CidrBlockAssociation"]["Ipv6CidrBlock"] == block


def asked_block(case: str, blocks: list[str], vpc: ipaddress.IPv6Network) -> str:
    return {
        "a /60 of the VPC's": str(next(vpc.subnets(new_prefix=60))),
        "outside the VPC's": "2001:db8::/64",
        "another subnet's": blocks[0],
        "malformed": "2001:db8::1/64",
    }[case]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("a /60 of the VPC's", "InvalidParameterValue"),
        ("outside the VPC's", "InvalidSubnet.Range"),
        ("another subnet's", "InvalidSubnet.Conflict"),
        ("malformed", "InvalidParameterValue"),
    ],
)
def test_subnet_ipv6_block_is_a_free_64_of_the_vpcs(
    unchecked: Realism, case: str, code: str
) -> None:
    """Associated later or given at creation alike."""
    vpc_id = dual_stack_vpc()
    blocks = slash_64s(vpc_id)
    taken, free = subnets(vpc_id, ipv6=False)
    admin("ec2").associate_subnet_cidr_block(SubnetId=taken, Ipv6CidrBlock=blocks[0])
    asked = asked_block(case, blocks, vpc_block(vpc_id))
    with pytest.raises(ClientError) as refused:
        deployer("ec2").associate_subnet_cidr_block(SubnetId=free, Ipv6CidrBlock=asked)
    assert refusal(refused)[0] == code
    with pytest.raises(ClientError) as refused:
        deployer("ec2").create_subnet(
            VpcId=vpc_id,
            CidrBlock="10.0.9.0/24",
            Ipv6CidrBlock=asked,
            AvailabilityZone=f"{REGION}a",
        )
    assert refusal(refused)[0] == code


def test_subnet_has_one_ipv6_block_only(unchecked: Realism) -> None:
    vpc_id = dual_stack_vpc()
    subnet_id, _ = subnets(vpc_id, ipv6=True)
    with pytest.raises(ClientError) as refused:
        deployer("ec2").associate_subnet_cidr_block(
            SubnetId=subnet_id, Ipv6CidrBlock=slash_64s(vpc_id)[3]
        )
    assert refusal(refused)[0] == "InvalidParameterValue"


IPV6_SUBNETS_NEEDED = "You must specify subnets with an associated IPv6 CIDR block."


@pytest.mark.parametrize("wanted", ["dualstack", WITHOUT_PUBLIC_IPV4])
def test_dual_stack_load_balancer_needs_subnets_with_ipv6_blocks(
    unchecked: Realism, wanted: str
) -> None:
    elb = deployer("elbv2")
    with pytest.raises(ClientError) as refused:
        elb.create_load_balancer(
            Name="nnote-staging", Subnets=subnets(ipv4_vpc(), ipv6=False), IpAddressType=wanted
        )
    assert refusal(refused) == ("ValidationError", IPV6_SUBNETS_NEEDED)
    made = elb.create_load_balancer(
        Name="nnote-staging", Subnets=subnets(dual_stack_vpc(), ipv6=True), IpAddressType=wanted
    )["LoadBalancers"][0]
    [described] = elb.describe_load_balancers(LoadBalancerArns=[made["LoadBalancerArn"]])[
        "LoadBalancers"
    ]
    assert described["IpAddressType"] == wanted


@pytest.mark.parametrize(
    ("wanted", "accepted"), [("dualstack", True), (WITHOUT_PUBLIC_IPV4, False)]
)
def test_internal_load_balancer_has_no_public_ipv6_to_go_without_ipv4(
    unchecked: Realism, wanted: str, accepted: bool
) -> None:
    """See INTERNAL_IP_ADDRESS_TYPES: the ELB API reference says internal ones are ipv4 only,
    AWS's ALB guide (and moto, since) make an internal dualstack one."""
    create = {
        "Name": "nnote-staging",
        "Subnets": subnets(dual_stack_vpc(), ipv6=True),
        "Scheme": "internal",
        "IpAddressType": wanted,
    }
    if accepted:
        deployer("elbv2").create_load_balancer(**create)
        return
    with pytest.raises(ClientError) as refused:
        deployer("elbv2").create_load_balancer(**create)
    assert refusal(refused)[0] == "ValidationError"


def test_network_load_balancer_cannot_go_without_public_ipv4(unchecked: Realism) -> None:
    with pytest.raises(ClientError) as refused:
        deployer("elbv2").create_load_balancer(
            Name="nnote-staging",
            Subnets=subnets(dual_stack_vpc(), ipv6=True),
            Type="network",
            IpAddressType=WITHOUT_PUBLIC_IPV4,
        )
    assert refusal(refused)[0] == "ValidationError"


def test_set_ip_address_type_needs_the_load_balancers_subnets_to_have_ipv6(
    unchecked: Realism,
) -> None:
    elb = deployer("elbv2")
    ipv4_only = load_balancer(ipv6_subnets=False)["LoadBalancerArn"]
    with pytest.raises(ClientError) as refused:
        elb.set_ip_address_type(LoadBalancerArn=ipv4_only, IpAddressType=WITHOUT_PUBLIC_IPV4)
    assert refusal(refused) == ("ValidationError", IPV6_SUBNETS_NEEDED)
    elb.delete_load_balancer(LoadBalancerArn=ipv4_only)
    ready = load_balancer(ipv6_subnets=True)["LoadBalancerArn"]
    elb.set_ip_address_type(LoadBalancerArn=ready, IpAddressType=WITHOUT_PUBLIC_IPV4)
    [described] = elb.describe_load_balancers(LoadBalancerArns=[ready])["LoadBalancers"]
    assert described["IpAddressType"] == WITHOUT_PUBLIC_IPV4


@pytest.mark.parametrize(
    ("offered", "asked", "reached"),
    [
        ("ipv4", "ipv4", True),
        ("ipv4", "ipv6", False),
        ("ipv4", "dualstack", True),
        ("dualstack", "ipv4", True),
        ("dualstack", "ipv6", True),
        (WITHOUT_PUBLIC_IPV4, "ipv4", False),
        (WITHOUT_PUBLIC_IPV4, "ipv6", True),
        (WITHOUT_PUBLIC_IPV4, "dualstack", True),
    ],
)
def test_front_door_reaches_its_load_balancer_only_over_what_it_offers(
    dual_stack: Realism, offered: str, asked: str, reached: bool
) -> None:
    """CloudFront takes any IpAddressType (no refusal); viewers get 502s when the load
    balancer has no public address of that version."""
    lb = load_balancer(offered)
    made = create_distribution(distribution(lb["DNSName"], asked))
    assert front_door_reaches_origin(dual_stack, made["Id"]) is reached
    assert bool(viewer_errors(dual_stack)) is not reached


def test_viewer_errors_name_a_load_balancer_that_stopped_offering_ipv6(
    unchecked: Realism,
) -> None:
    lb = load_balancer(WITHOUT_PUBLIC_IPV4)
    made = create_distribution(distribution(lb["DNSName"], "ipv6"))
    assert front_door_reaches_origin(unchecked, made["Id"])
    deployer("elbv2").set_ip_address_type(
        LoadBalancerArn=lb["LoadBalancerArn"], IpAddressType="ipv4"
    )
    assert not front_door_reaches_origin(unchecked, made["Id"])
    [noted] = viewer_errors(unchecked)
    assert made["Id"] in noted and "viewers get 502" in noted and "SetIpAddressType" in noted


def test_front_door_of_a_missing_distribution_is_a_lookup_error(dual_stack: Realism) -> None:
    with pytest.raises(LookupError):
        front_door_reaches_origin(dual_stack, "E0000000000000")
