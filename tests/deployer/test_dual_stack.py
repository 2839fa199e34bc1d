"""Behind CloudFront the load balancer has public IPv6 addresses only: the VPC and its subnets
are dual-stack, CloudFront reaches the origin over IPv6, and the two public IPv4 addresses AWS
bills by the hour are gone. An environment made before moves over without its URL ever
leading nowhere: both address families while CloudFront changes, IPv4 dropped last."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from deployer import pipeline
from tests.deployer.conftest import PREBUILT_IMAGE, ROOT
from tests.deployer.test_https import (
    client,
    distributions,
    down,
    hosted_zone,
    lb_ingress,
    load_balancer,
    run_with,
    up,
    with_domain,
)
from tests.support.dual_stack import viewer_errors
from tests.support.realism import Realism

IPV6_ONLY = "dualstack-without-public-ipv4"


def prefix_list(name: str) -> str:
    lists = client("ec2").describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [name]}]
    )["PrefixLists"]
    return str(lists[0]["PrefixListId"])


CLOUDFRONT_IPV6 = "com.amazonaws.global.ipv6.cloudfront.origin-facing"
CLOUDFRONT_IPV4 = "com.amazonaws.global.cloudfront.origin-facing"


def vpc() -> dict[str, Any]:
    subnet = client("ec2").describe_subnets(SubnetIds=[load_balancer_subnets()[0]])["Subnets"][0]
    return dict(client("ec2").describe_vpcs(VpcIds=[subnet["VpcId"]])["Vpcs"][0])


def load_balancer_subnets() -> list[str]:
    return [zone["SubnetId"] for zone in load_balancer()["AvailabilityZones"]]


def ipv6_blocks(resource: dict[str, Any]) -> list[str]:
    return [
        a["Ipv6CidrBlock"]
        for a in resource.get("Ipv6CidrBlockAssociationSet") or []
        if a["Ipv6CidrBlockState"]["State"] == "associated"
    ]


def origin_addresses() -> str:
    [listed] = distributions()
    config = client("cloudfront").get_distribution_config(Id=listed["Id"])["DistributionConfig"]
    [origin] = config["Origins"]["Items"]
    return str(origin["CustomOriginConfig"].get("IpAddressType", "ipv4"))


def ingress_sources() -> set[str]:
    return {p["PrefixListId"] for rule in lb_ingress() for p in rule["PrefixListIds"]} | {
        r["CidrIp"] for rule in lb_ingress() for r in rule["IpRanges"]
    }


def assert_ipv6_front_door() -> None:
    """What a CloudFront environment is: no public IPv4 on the load balancer, CloudFront
    reaching it over IPv6, and only CloudFront's IPv6 addresses let in."""
    assert load_balancer()["IpAddressType"] == IPV6_ONLY
    [vpc_block] = ipv6_blocks(vpc())
    subnets = client("ec2").describe_subnets(SubnetIds=load_balancer_subnets())["Subnets"]
    blocks = [block for subnet in subnets for block in ipv6_blocks(subnet)]
    assert len(blocks) == len(set(blocks)) == len(subnets) == 2
    for block in blocks:
        network = ipaddress.IPv6Network(block)
        assert network.prefixlen == 64 and network.subnet_of(ipaddress.IPv6Network(vpc_block))
    tables = client("ec2").describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": load_balancer_subnets()}]
    )["RouteTables"]
    [table] = tables
    routes = {r.get("DestinationIpv6CidrBlock"): r.get("GatewayId") for r in table["Routes"]}
    assert routes.get("::/0", "").startswith("igw-")
    assert origin_addresses() == "ipv6"
    assert ingress_sources() == {prefix_list(CLOUDFRONT_IPV6)}


def test_behind_cloudfront_the_load_balancer_has_no_public_ipv4(aws_env: dict[str, str]) -> None:
    first = run_with()
    changes = pipeline.plan(first, pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    [created] = [c for c in changes if c.type == "elbv2:loadbalancer"]
    assert created.detail == "internet-facing, public IPv6 only"
    result = up(run_with())
    assert result.url and result.url.endswith(".cloudfront.net")

    assert_ipv6_front_door()
    again = run_with()
    assert up(again).changes == []
    assert again.aws.log.mutating == 0
    assert down(run_with()).leftovers == []


def make_it_as_before(realism: Realism) -> None:
    """Turn a fresh environment into one made before IPv6: public IPv4 addresses on the load
    balancer, CloudFront over IPv4 and its IPv4 list let in, no IPv6 anywhere."""
    ec2, elb, cloudfront = client("ec2"), client("elbv2"), client("cloudfront")
    lb = load_balancer()
    elb.set_ip_address_type(LoadBalancerArn=lb["LoadBalancerArn"], IpAddressType="ipv4")
    [group] = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["nnote-staging-lb"]}]
    )["SecurityGroups"]
    for source, action in (
        (CLOUDFRONT_IPV6, ec2.revoke_security_group_ingress),
        (CLOUDFRONT_IPV4, ec2.authorize_security_group_ingress),
    ):
        action(
            GroupId=group["GroupId"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 80,
                    "ToPort": 80,
                    "PrefixListIds": [{"PrefixListId": prefix_list(source)}],
                }
            ],
        )
    [listed] = distributions()
    answer = cloudfront.get_distribution_config(Id=listed["Id"])
    config = answer["DistributionConfig"]
    config["Origins"]["Items"][0]["CustomOriginConfig"].pop("IpAddressType", None)
    cloudfront.update_distribution(
        Id=listed["Id"], IfMatch=answer["ETag"], DistributionConfig=config
    )
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": load_balancer_subnets()}]
    )["RouteTables"]
    ec2.delete_route(RouteTableId=tables[0]["RouteTableId"], DestinationIpv6CidrBlock="::/0")
    for subnet in ec2.describe_subnets(SubnetIds=load_balancer_subnets())["Subnets"]:
        for association in subnet.get("Ipv6CidrBlockAssociationSet") or []:
            ec2.disassociate_subnet_cidr_block(AssociationId=association["AssociationId"])
    for association in vpc().get("Ipv6CidrBlockAssociationSet") or []:
        ec2.disassociate_vpc_cidr_block(AssociationId=association["AssociationId"])
    assert load_balancer()["IpAddressType"] == "ipv4" and ipv6_blocks(vpc()) == []
    assert origin_addresses() == "ipv4"
    realism.calls.clear()


def test_an_environment_from_before_moves_to_ipv6_and_always_serves(
    aws_env: dict[str, str], realism: Realism
) -> None:
    up(run_with())
    make_it_as_before(realism)

    planned = pipeline.plan(run_with(), pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    details = {(c.type, c.detail) for c in planned}
    assert ("elbv2:loadbalancer", "addresses: public IPv4 -> public IPv6 only") in details
    assert ("ec2:vpc", "add an IPv6 /56") in details
    assert ("cloudfront:distribution", "reach the origin over ipv6 (was ipv4)") in details
    up(run_with())

    assert_ipv6_front_door()
    # The order that keeps the URL serving: the load balancer gains IPv6 before CloudFront
    # turns to it, and loses IPv4 only once CloudFront has deployed the change.
    calls = [(c.operation, c.params) for c in realism.calls]
    sets = [i for i, (op, _) in enumerate(calls) if op == "SetIpAddressType"]
    assert [calls[i][1]["IpAddressType"] for i in sets] == ["dualstack", IPV6_ONLY]
    [update] = [i for i, (op, _) in enumerate(calls) if op == "UpdateDistribution"]
    assert sets[0] < update < sets[1]
    revoked = [i for i, (op, _) in enumerate(calls) if op == "RevokeSecurityGroupIngress"]
    assert revoked and min(revoked) > update  # CloudFront's IPv4 list goes after the change
    assert viewer_errors(realism) == []
    again = run_with()
    assert up(again).changes == []
    assert again.aws.log.mutating == 0


def test_a_failed_move_to_ipv6_leaves_cloudfront_serving_over_ipv4(
    aws_env: dict[str, str], realism: Realism
) -> None:
    from tests.deployer.test_down import FailFirst

    up(run_with())
    make_it_as_before(realism)
    # CloudFront refuses the change to IPv6: the load balancer has both families by then.
    broken = FailFirst("UpdateDistribution", 1, "InvalidArgument", "injected")
    try:
        up(run_with(hooks=broken.hooks()))
    except pipeline.UpFailed as failed:
        assert failed.rollback is not None and failed.rollback.failed == []
    else:
        raise AssertionError("the injected fault did not fail the up")

    assert load_balancer()["IpAddressType"] == "ipv4"
    assert origin_addresses() == "ipv4"
    assert prefix_list(CLOUDFRONT_IPV4) in ingress_sources()
    assert viewer_errors(realism) == []


def test_a_domain_keeps_public_ipv4_and_moving_to_one_drops_ipv6_last(
    aws_env: dict[str, str], tmp_path: Path, realism: Realism
) -> None:
    up(run_with())
    hosted_zone()
    realism.calls.clear()
    up(run_with(with_domain(tmp_path)))

    assert load_balancer()["IpAddressType"] == "ipv4"
    sets = [c.params["IpAddressType"] for c in realism.calls if c.operation == "SetIpAddressType"]
    assert sets == ["dualstack", "ipv4"]
    assert distributions() == []
    operations = [c.operation for c in realism.calls]
    last_set = len(operations) - 1 - operations[::-1].index("SetIpAddressType")
    assert operations.index("DeleteDistribution") < last_set  # IPv6 goes after CloudFront
    assert viewer_errors(realism) == []
