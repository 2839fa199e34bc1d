"""Faults injected into botocore, the way real AWS produces them, and state snapshots."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import boto3
from botocore.exceptions import ClientError, ConnectionClosedError

from deployer.aws import is_mutating
from tests.deployer.conftest import REGION

FAULT_KINDS = ("client-error", "http-500", "dropped-connection")


class FailNth:
    """Fail the nth call of one operation the way AWS can: a modeled ClientError, an HTTP
    500 on every attempt (botocore retries it, then gives up), or a connection dropped on
    every attempt before any answer came back."""

    def __init__(
        self,
        operation: str,
        nth: int,
        code: str = "InternalFailure",
        message: str = "injected fault",
        kind: str = "client-error",
    ) -> None:
        self.operation, self.nth, self.code, self.message = operation, nth, code, message
        self.kind = kind
        self.seen = 0
        self.fired = False
        self.lock = threading.Lock()
        self.current = threading.local()  # is the call under way in this thread the target?

    def __call__(self, model: Any, **_: Any) -> None:
        self.current.target = False
        if model.name != self.operation:
            return
        with self.lock:
            self.seen += 1
            self.current.target = self.seen == self.nth
        if self.current.target and self.kind == "client-error":
            self.fired = True
            raise ClientError(
                {
                    "Error": {"Code": self.code, "Message": self.message},
                    "ResponseMetadata": {"RequestId": "fault-1"},
                },
                model.name,
            )

    def send(self, request: Any, **_: Any) -> Any:
        if not getattr(self.current, "target", False):
            return None
        self.fired = True
        if self.kind == "http-500":
            from botocore.awsrequest import AWSResponse

            return AWSResponse(request.url, 500, {}, _Raw(b""))
        raise ConnectionClosedError(endpoint_url=request.url)

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        return [("before-call.*.*", self), ("before-send", self.send)]


def mutating_calls(
    calls: dict[str, int], skip_services: tuple[str, ...] = ("ssm",)
) -> list[tuple[str, int]]:
    """(Operation, occurrence) for every mutating call a run made, e.g. ("CreateSubnet", 2)."""
    found = []
    for name, count in sorted(calls.items()):
        service, operation = name.split(":")
        if is_mutating(operation) and service not in skip_services:
            found += [(operation, n) for n in range(1, count + 1)]
    return found


def snapshot() -> dict[str, list[str]]:
    """Everything in the emulated account that a run could touch, described in full."""
    ec2 = boto3.client("ec2", region_name=REGION)
    rds = boto3.client("rds", region_name=REGION)
    ecr = boto3.client("ecr", region_name=REGION)

    def rows(items: list[dict[str, Any]], drop: tuple[str, ...] = ()) -> list[str]:
        return sorted(
            json.dumps({k: v for k, v in i.items() if k not in drop}, sort_keys=True, default=str)
            for i in items
        )

    return {
        "vpcs": rows(ec2.describe_vpcs()["Vpcs"]),
        "subnets": rows(ec2.describe_subnets()["Subnets"], ("AvailableIpAddressCount",)),
        "groups": rows(ec2.describe_security_groups()["SecurityGroups"]),
        "gateways": rows(ec2.describe_internet_gateways()["InternetGateways"]),
        "routes": rows(ec2.describe_route_tables()["RouteTables"]),
        "databases": rows(rds.describe_db_instances()["DBInstances"], ("LatestRestorableTime",)),
        "subnet_groups": rows(rds.describe_db_subnet_groups()["DBSubnetGroups"]),
        "repositories": rows(ecr.describe_repositories()["repositories"]),
        **_runtime_snapshot(rows),
    }


def _runtime_snapshot(rows: Callable[..., list[str]]) -> dict[str, list[str]]:
    """What `up` adds on top of the base: roles, secrets, logs, cluster, load balancer.

    Deleted ECS clusters and services stay listed as INACTIVE for a while, as on AWS; the
    service-linked roles are the account's, made once and shared by every user of a service.
    """
    client = partial(boto3.client, region_name=REGION)
    ecs, elb = client("ecs"), client("elbv2")
    clusters = [
        c["clusterArn"]
        for c in ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
        if c["status"] != "INACTIVE"
    ]
    services = [
        s["serviceArn"]
        for c in clusters
        for arns in [ecs.list_services(cluster=c)["serviceArns"]]
        if arns
        for s in ecs.describe_services(cluster=c, services=arns)["services"]
        if s["status"] != "INACTIVE"
    ]
    iam = client("iam")
    roles = [r for r in iam.list_roles()["Roles"] if not r["Path"].startswith(SERVICE_ROLE_PATH)]
    listeners = [
        listener
        for lb in elb.describe_load_balancers()["LoadBalancers"]
        for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    ]
    return {
        "roles": rows(roles),
        "role_policies": sorted(
            f"{role['RoleName']} {policy}" for role in roles for policy in _policies_of(iam, role)
        ),
        "parameters": sorted(p["Name"] for p in client("ssm").describe_parameters()["Parameters"]),
        "listeners": rows(listeners),
        "listener_rules": rows(
            [
                rule
                for listener in listeners
                for rule in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
            ]
        ),
        **_https_snapshot(rows),
        "scaling": rows(
            client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")[
                "ScalableTargets"
            ]
        ),
        "secrets": rows(client("secretsmanager").list_secrets()["SecretList"]),
        "log_groups": rows(client("logs").describe_log_groups()["logGroups"]),
        "clusters": sorted(clusters),
        "services": sorted(services),
        "task_definitions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "load_balancers": rows(elb.describe_load_balancers()["LoadBalancers"]),
        "target_groups": rows(elb.describe_target_groups()["TargetGroups"]),
    }


def _https_snapshot(rows: Callable[..., list[str]]) -> dict[str, list[str]]:
    """The front door: CloudFront distributions, ACM certificates, every Route 53 record."""
    cloudfront = boto3.client("cloudfront", region_name="us-east-1")
    route53 = boto3.client("route53", region_name="us-east-1")
    acm = boto3.client("acm", region_name=REGION)
    zones = route53.list_hosted_zones()["HostedZones"]
    return {
        "distributions": rows(
            cloudfront.list_distributions()["DistributionList"].get("Items") or [],
            ("Status", "LastModifiedTime"),
        ),
        # Which certificates exist, not their state: moto issues anyone's pending request by
        # itself after a minute (MOTO_ACM_VALIDATION_WAIT), a bystander's included.
        "certificates": sorted(
            f"{c['CertificateArn']} {c['DomainName']}"
            for c in acm.list_certificates()["CertificateSummaryList"]
        ),
        "records": rows(
            [
                {"zone": zone["Name"], **record}
                for zone in zones
                for record in route53.list_resource_record_sets(HostedZoneId=zone["Id"])[
                    "ResourceRecordSets"
                ]
            ]
        ),
    }


def _policies_of(iam: Any, role: dict[str, Any]) -> list[str]:
    name = role["RoleName"]
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    return [p["PolicyArn"] for p in attached] + iam.list_role_policies(RoleName=name)["PolicyNames"]


# Service-linked roles (ECS, ELB, RDS, autoscaling) belong to the account: made once on first
# use and shared with every other user of the service, never deleted by a rollback or `down`.
SERVICE_ROLE_PATH = "/aws-service-role/"


def bystanders() -> None:
    """Resources that are not this environment's: another env's, another app's, untagged,
    and another team's repository and DB subnet group (which the deploy role may not read)."""
    ec2 = boto3.client("ec2", region_name=REGION)

    def tags(app: str, env: str) -> list[dict[str, Any]]:
        return [
            {
                "ResourceType": "vpc",
                "Tags": [
                    {"Key": "nnote:app", "Value": app},
                    {"Key": "nnote:env", "Value": env},
                    {"Key": "nnote:managed-by", "Value": "nnote-deploy"},
                    {"Key": "nnote:component", "Value": "network"},
                ],
            }
        ]

    ec2.create_vpc(CidrBlock="10.41.0.0/16", TagSpecifications=tags("nnote", "prod"))
    ec2.create_vpc(CidrBlock="10.40.0.0/16", TagSpecifications=tags("otherapp", "staging"))
    untagged = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(
        GroupName="nnote-staging-db", Description="look-alike", VpcId=untagged
    )
    boto3.client("ecr", region_name=REGION).create_repository(repositoryName="nnote-prod")
    boto3.client("ecr", region_name=REGION).create_repository(repositoryName="payments-api")
    subnet = ec2.create_subnet(VpcId=untagged, CidrBlock="10.40.200.0/24")["Subnet"]["SubnetId"]
    boto3.client("rds", region_name=REGION).create_db_subnet_group(
        DBSubnetGroupName="payments-db",
        DBSubnetGroupDescription="another team's",
        SubnetIds=[subnet],
    )
    _https_bystanders()


# The user's hosted zone (sweeps with a domain deploy into it), with a record of their own.
ZONE = "example.com"


def _https_bystanders() -> None:
    """The user's hosted zone and mail record; another team's certificate and distribution."""
    route53 = boto3.client("route53", region_name="us-east-1")
    zone = route53.create_hosted_zone(Name=ZONE, CallerReference="bystander")["HostedZone"]
    mail = {"Name": f"{ZONE}.", "Type": "MX", "TTL": 300, "ResourceRecords": [{"Value": "10 mx"}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone["Id"],
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": mail}]},
    )
    boto3.client("acm", region_name=REGION).request_certificate(DomainName="shop.example.org")
    origin = {
        "Id": "shop",
        "DomainName": "shop.example.org",
        "CustomOriginConfig": {
            "HTTPPort": 80,
            "HTTPSPort": 443,
            "OriginProtocolPolicy": "https-only",
        },
    }
    boto3.client("cloudfront", region_name="us-east-1").create_distribution(
        DistributionConfig={
            "CallerReference": "another-team",
            "Comment": "the shop",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "shop",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


class ThrottleFirst:
    """A `before-send` hook answering the first n sends of an EC2 operation with a real 400
    RequestLimitExceeded, so botocore's own retry logic (adaptive mode) has to handle it."""

    def __init__(self, operation: str, times: int) -> None:
        self.operation, self.times, self.sent = operation, times, 0

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.sent += 1
        if self.sent > self.times:
            return None
        body = (
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down"
            b"</Message></Error></Errors><RequestID>throttle</RequestID></Response>"
        )
        return AWSResponse(request.url, 400, {}, _Raw(body))

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        return [(f"before-send.ec2.{self.operation}", self)]


# Services whose errors are XML: the query protocol's and the REST-XML ones (same shape).
XML_ERRORS = ("rds", "iam", "elastic-load-balancing-v2", "sts", "cloudfront", "route-53")


class ThrottleStorm:
    """A `before-send` hook answering a share of all sends with the throttling error each
    service really uses: RequestLimitExceeded from EC2, Throttling from the XML ones (query
    protocol, CloudFront, Route 53), ThrottlingException from the JSON ones."""

    def __init__(self, share: float, seed: int) -> None:
        self.share, self.random = share, random.Random(seed)
        self.sends = self.throttled = 0
        self.lock = threading.Lock()

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        with self.lock:
            self.sends += 1
            if self.random.random() >= self.share:
                return None
            self.throttled += 1
        service = event_name.split(".")[1]
        if service == "ec2":
            body = (
                b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down"
                b"</Message></Error></Errors><RequestID>storm</RequestID></Response>"
            )
        elif service in XML_ERRORS:
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate "
                b"exceeded</Message></Error><RequestId>storm</RequestId></ErrorResponse>"
            )
        else:
            body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
        return AWSResponse(request.url, 400, {}, _Raw(body))

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        return [("before-send", self)]


def sample_distribution(caller: str, secret: str) -> dict[str, Any]:
    """A distribution in front of a load balancer, as the deployer makes one."""
    return {
        "CallerReference": caller,
        "Comment": "nnote staging",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "alb",
                    "DomainName": "nnote-staging-1.eu-west-1.elb.amazonaws.com",
                    "CustomHeaders": {
                        "Quantity": 1,
                        "Items": [{"HeaderName": "X-Origin-Verify", "HeaderValue": secret}],
                    },
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "http-only",
                    },
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "alb",
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
            "OriginRequestPolicyId": "216adef6-5c7f-47e4-b989-5492eafa07d3",
        },
        "PriceClass": "PriceClass_100",
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
    }
