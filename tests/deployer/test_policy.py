"""docs/iam-policy.json allows every AWS call the deployer makes, as AWS would authorize it
(resources, conditions, dependent actions: tests/support/iam_policy.py), and nothing beyond
what the deployer needs: no create without our tag, no change to what is not ours."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import pytest

from deployer import pipeline, service_logs
from deployer.steps.base import Run
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.faults import FailNth, sample_distribution
from tests.deployer.sweep import QuietEvents
from tests.support.iam_policy import (
    AuthorizationLog,
    AuthRequest,
    BotoLookup,
    Call,
    authorizations,
    evaluate,
    lint,
    recording_hooks,
)

POLICY: dict[str, Any] = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
OURS = {"nnote:app": "nnote", "nnote:env": "staging", "nnote:managed-by": "nnote-deploy"}
LINKED_SERVICES = {
    "ecs.amazonaws.com",
    "rds.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "ecs.application-autoscaling.amazonaws.com",
}


def recorder() -> AuthorizationLog:
    """Works out each call's authorizations just before it is sent (moto's state then)."""
    return AuthorizationLog(BotoLookup(REGION))


def run_with(log: AuthorizationLog, env: str = "staging", extra: list[Any] | None = None) -> Run:
    return make_run(env, hooks=[*recording_hooks(log, REGION), *(extra or [])])


def deploy(run: Run) -> pipeline.UpResult:
    return pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))


def every_command(log: AuthorizationLog, env: str) -> None:
    """up from nothing, a no-change up, plan, status, redeploy and logs."""
    deploy(run_with(log, env))
    assert deploy(run_with(log, env)).changes == []
    pipeline.plan(run_with(log, env), pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    pipeline.status(run_with(log, env))
    pipeline.redeploy(run_with(log, env), QuietEvents())
    list(service_logs.tail(run_with(log, env), 600, follow=False))


def assert_allowed(log: AuthorizationLog, policy: dict[str, Any] = POLICY) -> None:
    assert log.unmapped == [], "\n".join(log.unmapped)
    denied = log.denied(policy)
    assert denied == [], "docs/iam-policy.json denies:\n" + "\n".join(denied)


def linked_roles_asked(log: AuthorizationLog) -> set[str]:
    return {
        str(request.context["iam:AWSServiceName"])
        for _, requests in log.requests
        for request in requests
        if request.action == "iam:CreateServiceLinkedRole"
    }


def with_db(run: Run, **changes: Any) -> Run:
    """The same run with database settings changed, as an edit of deploy.toml would."""
    settings = run.config.settings
    db = settings.db.model_copy(update=changes)
    run.config = run.config.model_copy(update={"settings": settings.model_copy(update={"db": db})})
    return run


# -- the policy allows what the deployer does --------------------------------------------------


def test_policy_allows_every_staging_command_up_to_down(aws_env: dict[str, str]) -> None:
    log = recorder()
    every_command(log, "staging")
    pipeline.down(run_with(log), QuietEvents())
    assert_allowed(log)
    assert "rds:DeleteDBInstance" in log.actions()


def test_policy_allows_a_first_autoscaled_prod_and_its_down_with_final_snapshot(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new account (moto is reset: no service-linked role exists), two tasks, autoscaling;
    then deletion protection off (an up that modifies the instance) and down, which keeps a
    final snapshot."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # read by the in-process moto
    log = recorder()
    every_command(log, "prod")
    assert linked_roles_asked(log) == LINKED_SERVICES, "first use makes all four roles"
    deploy(with_db(run_with(log, "prod"), deletion_protection=False))
    pipeline.down(with_db(run_with(log, "prod"), deletion_protection=False), QuietEvents())
    assert_allowed(log)
    assert {"cloudwatch:PutMetricAlarm", "rds:CreateDBSnapshot"} <= log.actions()


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_policy_allows_the_rollback_of_a_failed_up(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    """The last call of `up` fails, so its rollback undoes everything the run made."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2" if env == "prod" else "1")
    log = recorder()
    fault = FailNth("TagResource", 1)
    with pytest.raises(pipeline.UpFailed) as failed:
        deploy(run_with(log, env, fault.hooks()))
    assert failed.value.rollback is not None
    assert "created ECS service" in " ".join(failed.value.rollback.undone)
    assert_allowed(log)
    assert "ecs:DeleteService" in log.actions()


# -- calls the deployer makes on paths the runs above do not take, or is about to make ---------


class StateOfOurs:
    """A Lookup for calls made without a run: every named resource exists and is ours."""

    def tags(self, arn: str) -> dict[str, str] | None:
        return None if "*" in arn.removesuffix(":*") else dict(OURS)

    def service_linked_role_exists(self, aws_service_name: str) -> bool:
        return False

    def secret_arn(self, secret_id: str) -> str | None:
        return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{secret_id}-AbCdEf"

    def route_table_association(self, association_id: str) -> tuple[str, str | None] | None:
        return ("rtb-1", "subnet-1")

    def scalable_target_arn(self, namespace: str, resource_id: str, dimension: str) -> str | None:
        return f"arn:aws:application-autoscaling:{REGION}:123456789012:scalable-target/0abc"

    def permissions_boundary(self, role_name: str) -> str | None:
        return "arn:aws:iam::123456789012:policy/nnote-deploy-boundary"

    def task_definition_roles(self, arn: str) -> list[str]:
        return [ROLE]


class StateOfOursUnbounded(StateOfOurs):
    """Our roles, made before roles had the permissions boundary."""

    def permissions_boundary(self, role_name: str) -> str | None:
        return None


class StateOfSomeoneElse(StateOfOurs):
    """Every named resource exists and is tagged as another tool's."""

    def tags(self, arn: str) -> dict[str, str] | None:
        return None if "*" in arn.removesuffix(":*") else {"nnote:managed-by": "someone-else"}


class StateOfOthers(StateOfOurs):
    """Every named resource exists and belongs to someone else (untagged)."""

    def tags(self, arn: str) -> dict[str, str] | None:
        return None if "*" in arn.removesuffix(":*") else {}


class StateOfAnotherApp(StateOfOurs):
    """Every named resource exists and is another app's, deployed by nnote-deploy too: what
    names no app in its ARN (a certificate, a distribution) is told apart by its tags only."""

    def tags(self, arn: str) -> dict[str, str] | None:
        if "*" in arn.removesuffix(":*"):
            return None
        return {**OURS, "nnote:app": "payments", "nnote:env": "prod"}


TARGET = {
    "ServiceNamespace": "ecs",
    "ResourceId": "service/nnote-prod/nnote-prod",
    "ScalableDimension": "ecs:service:DesiredCount",
}
LOCK = "/nnote-deploy/nnote/staging/lock"
TAGS = [{"Key": k, "Value": v} for k, v in OURS.items()]
# HTTPS (issue 11): the load balancer's listener and rule, a certificate validated through the
# user's hosted zone, a CloudFront distribution.
LB = f"arn:aws:elasticloadbalancing:{REGION}:123456789012:loadbalancer/app/nnote-staging/0abc"
LISTENER = f"arn:aws:elasticloadbalancing:{REGION}:123456789012:listener/app/nnote-staging/0abc/1d"
RULE = LISTENER.replace(":listener/", ":listener-rule/") + "/2e"
CERTIFICATE = f"arn:aws:acm:{REGION}:123456789012:certificate/0abc-1def"
DISTRIBUTION = "arn:aws:cloudfront::123456789012:distribution/E1ABCDEF"
ZONE = "Z0123456789ABCDEFGHIJ"
VALIDATION_RECORD = {
    "Name": "_0abc.notes.example.com.",
    "Type": "CNAME",
    "TTL": 300,
    "ResourceRecords": [{"Value": "_1def.acm-validations.aws."}],
}
ALIAS_RECORD = {
    "Name": "notes.example.com.",
    "Type": "A",
    "AliasTarget": {
        "HostedZoneId": "Z32O12XQLNTSW2",
        "DNSName": "dualstack.nnote-staging-1.eu-west-1.elb.amazonaws.com.",
        "EvaluateTargetHealth": False,
    },
}


def record_change(action: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "HostedZoneId": ZONE,
        "ChangeBatch": {"Changes": [{"Action": action, "ResourceRecordSet": record}]},
    }


CLOUDFRONT_ORIGIN = [
    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "PrefixListIds": [{"PrefixListId": "pl-1"}]}
]
DISTRIBUTION_CONFIG = sample_distribution("nnote-staging", "secret")
DENY_ACTION = {
    "Type": "fixed-response",
    "FixedResponseConfig": {"StatusCode": "403", "ContentType": "text/plain"},
}
HTTPS_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "ec2",
        "DescribeManagedPrefixLists",
        {
            "Filters": [
                {
                    "Name": "prefix-list-name",
                    "Values": ["com.amazonaws.global.cloudfront.origin-facing"],
                }
            ]
        },
    ),
    (
        "ec2",
        "AuthorizeSecurityGroupIngress",
        {"GroupId": "sg-1", "IpPermissions": CLOUDFRONT_ORIGIN},
    ),
    ("ec2", "RevokeSecurityGroupIngress", {"GroupId": "sg-1", "IpPermissions": CLOUDFRONT_ORIGIN}),
    (
        "elbv2",
        "CreateListener",
        {
            "LoadBalancerArn": LB,
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [DENY_ACTION],
            "Tags": TAGS,
        },
    ),
    ("elbv2", "DescribeRules", {"ListenerArn": LISTENER}),
    (
        "elbv2",
        "CreateRule",
        {
            "ListenerArn": LISTENER,
            "Priority": 1,
            "Conditions": [
                {
                    "Field": "http-header",
                    "HttpHeaderConfig": {"HttpHeaderName": "X-Origin-Verify", "Values": ["s"]},
                }
            ],
            "Actions": [{"Type": "forward", "TargetGroupArn": "tg"}],
            "Tags": TAGS,
        },
    ),
    ("elbv2", "DeleteRule", {"RuleArn": RULE}),
    ("elbv2", "ModifyListener", {"ListenerArn": LISTENER, "DefaultActions": [DENY_ACTION]}),
    (
        "elbv2",
        "ModifyListener",
        {
            "ListenerArn": LISTENER,
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": CERTIFICATE}],
            "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": "tg"}],
        },
    ),
    ("acm", "ListCertificates", {}),
    ("acm", "ListTagsForCertificate", {"CertificateArn": CERTIFICATE}),
    (
        "acm",
        "RequestCertificate",
        {
            "DomainName": "notes.example.com",
            "ValidationMethod": "DNS",
            "IdempotencyToken": "testrun1",
            "Tags": TAGS,
        },
    ),
    ("acm", "DescribeCertificate", {"CertificateArn": CERTIFICATE}),
    ("acm", "DeleteCertificate", {"CertificateArn": CERTIFICATE}),
    ("route53", "ListHostedZonesByName", {"DNSName": "example.com", "MaxItems": "10"}),
    (
        "route53",
        "ListResourceRecordSets",
        {
            "HostedZoneId": f"/hostedzone/{ZONE}",
            "StartRecordName": "notes.example.com.",
            "StartRecordType": "CNAME",
            "MaxItems": "1",
        },
    ),
    ("route53", "ChangeResourceRecordSets", record_change("CREATE", VALIDATION_RECORD)),
    ("route53", "ChangeResourceRecordSets", record_change("DELETE", VALIDATION_RECORD)),
    ("route53", "ChangeResourceRecordSets", record_change("CREATE", ALIAS_RECORD)),
    ("route53", "ChangeResourceRecordSets", record_change("DELETE", ALIAS_RECORD)),
    ("cloudfront", "ListDistributions", {}),
    ("cloudfront", "ListTagsForResource", {"Resource": DISTRIBUTION}),
    (
        "cloudfront",
        "CreateDistributionWithTags",
        {
            "DistributionConfigWithTags": {
                "DistributionConfig": DISTRIBUTION_CONFIG,
                "Tags": {"Items": TAGS},
            }
        },
    ),
    ("cloudfront", "GetDistribution", {"Id": "E1ABCDEF"}),
    ("cloudfront", "GetDistributionConfig", {"Id": "E1ABCDEF"}),
    (
        "cloudfront",
        "UpdateDistribution",
        {
            "Id": "E1ABCDEF",
            "IfMatch": "E2QWRUHAPOMQZL",
            "DistributionConfig": {**DISTRIBUTION_CONFIG, "Enabled": False},
        },
    ),
    ("cloudfront", "DeleteDistribution", {"Id": "E1ABCDEF", "IfMatch": "E2QWRUHAPOMQZL"}),
    (
        "resourcegroupstaggingapi",
        "GetResources",
        {"TagFilters": [{"Key": "nnote:app", "Values": ["nnote"]}], "ResourceTypeFilters": []},
    ),
]
OTHER_PATH_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("ec2", "ReplaceRoute", {"RouteTableId": "rtb-1", "DestinationCidrBlock": "0.0.0.0/0"}),
    ("ec2", "DeleteRoute", {"RouteTableId": "rtb-1", "DestinationCidrBlock": "0.0.0.0/0"}),
    ("ec2", "RevokeSecurityGroupIngress", {"GroupId": "sg-1", "IpPermissions": []}),
    ("ec2", "DescribeNetworkInterfaces", {}),
    ("ec2", "DescribeAccountAttributes", {}),
    (
        "elbv2",
        "ModifyTargetGroup",
        {
            "TargetGroupArn": "arn:aws:elasticloadbalancing:"
            f"{REGION}:123456789012:targetgroup/nnote-staging/0abc"
        },
    ),
    ("elbv2", "DescribeAccountLimits", {}),
    ("ecr", "PutImageScanningConfiguration", {"repositoryName": "nnote-staging"}),
    ("ecr", "DeleteLifecyclePolicy", {"repositoryName": "nnote-staging"}),
    ("ecr", "BatchDeleteImage", {"repositoryName": "nnote-staging", "imageIds": []}),
    # A prebuilt image (--image) in the app's ECR, looked up before anything is changed.
    (
        "ecr",
        "DescribeImages",
        {"repositoryName": "nnote-staging", "imageIds": [{"imageTag": "v1"}]},
    ),
    ("ecr", "GetAuthorizationToken", {}),
    ("logs", "DeleteRetentionPolicy", {"logGroupName": "/nnote/nnote-staging"}),
    ("rds", "DescribeDBEngineVersions", {"Engine": "mysql"}),
    ("rds", "DescribeOrderableDBInstanceOptions", {"Engine": "mysql"}),
    ("rds", "DescribeDBSnapshots", {"DBSnapshotIdentifier": "nnote-prod-final-run-1"}),
    ("service-quotas", "GetServiceQuota", {"ServiceCode": "vpc", "QuotaCode": "L-F678F1CE"}),
    (
        "service-quotas",
        "GetServiceQuota",
        {"ServiceCode": "elasticloadbalancing", "QuotaCode": "L-53DA6B97"},
    ),
    ("service-quotas", "ListServiceQuotas", {"ServiceCode": "rds"}),
    ("application-autoscaling", "DescribeScalingPolicies", {"ServiceNamespace": "ecs"}),
    ("application-autoscaling", "DeleteScalingPolicy", {**TARGET, "PolicyName": "nnote-prod-cpu"}),
    ("application-autoscaling", "DeregisterScalableTarget", TARGET),
    ("ecs", "ListTaskDefinitions", {"familyPrefix": "nnote-staging", "nextToken": "2"}),
    ("iam", "ListRoleTags", {"RoleName": "nnote-staging-task"}),
    ("secretsmanager", "DescribeSecret", {"SecretId": "nnote/staging/secret-key"}),
    ("secretsmanager", "DeleteSecret", {"SecretId": "nnote/staging/secret-key"}),
    ("secretsmanager", "CreateSecret", {"Name": "nnote/staging/secret-key", "Tags": TAGS}),
    ("ssm", "GetParameter", {"Name": LOCK}),
    ("ssm", "PutParameter", {"Name": LOCK, "Value": "{}", "Overwrite": True}),
    ("ssm", "PutParameter", {"Name": LOCK, "Value": "{}", "Tags": TAGS}),
    ("ssm", "DeleteParameter", {"Name": LOCK}),
    ("ssm", "GetParameter", {"Name": f"{LOCK}-lease-run-1"}),  # the holder's heartbeat
    ("ssm", "PutParameter", {"Name": f"{LOCK}-lease-run-1", "Value": "{}", "Tags": TAGS}),
    ("ssm", "PutParameter", {"Name": f"{LOCK}-lease-run-1", "Value": "{}", "Overwrite": True}),
    ("ssm", "DeleteParameter", {"Name": f"{LOCK}-lease-run-1"}),
    ("sts", "GetCallerIdentity", {}),
    # service.spot on a cluster made before the cluster got the Fargate capacity providers
    (
        "ecs",
        "PutClusterCapacityProviders",
        {
            "cluster": "nnote-staging",
            "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "defaultCapacityProviderStrategy": [],
        },
    ),
    *HTTPS_CALLS,
]


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    OTHER_PATH_CALLS,
    ids=[f"{s}:{o}" for s, o, _ in OTHER_PATH_CALLS],
)
def test_policy_allows_calls_off_the_recorded_paths(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    call = Call(service, operation, params, REGION)
    denied = [r for r in authorizations(call, StateOfOurs()) if not evaluate(POLICY, r)]
    assert denied == []


@pytest.mark.parametrize("region", [REGION, "us-east-1", "ap-northeast-1"])
@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [c for c in HTTPS_CALLS if c[0] in ("cloudfront", "route53", "resourcegroupstaggingapi")],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_policy_allows_the_global_calls_from_any_client_region(
    service: str, operation: str, params: dict[str, Any], region: str
) -> None:
    """CloudFront's and Route 53's calls are us-east-1's whatever region the client has; the
    tagging API lists distributions from a client in us-east-1."""
    call = Call(service, operation, params, region)
    denied = [r for r in authorizations(call, StateOfOurs()) if not evaluate(POLICY, r)]
    assert denied == []


# -- and nothing beyond it ------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/nnote-staging-task"
THEIR_TAGS = [{"Key": "nnote:managed-by", "Value": "someone-else"}]
THEIR_APP_TAGS = [
    {"Key": "nnote:managed-by", "Value": "nnote-deploy"},
    {"Key": "nnote:app", "Value": "payments"},
]
FORBIDDEN_CALLS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("create a VPC without our tag", "ec2", "CreateVpc", {"CidrBlock": "10.0.0.0/16"}),
    (
        "create a VPC tagged as someone else's",
        "ec2",
        "CreateVpc",
        {
            "CidrBlock": "10.0.0.0/16",
            "TagSpecifications": [{"ResourceType": "vpc", "Tags": THEIR_TAGS}],
        },
    ),
    ("tag an existing VPC", "ec2", "CreateTags", {"Resources": ["vpc-1"], "Tags": TAGS}),
    (
        "create a repository without our tag",
        "ecr",
        "CreateRepository",
        {"repositoryName": "nnote-x"},
    ),
    ("create a log group without our tag", "logs", "CreateLogGroup", {"logGroupName": "/nnote/x"}),
    (
        "create a role without our tag",
        "iam",
        "CreateRole",
        {"RoleName": "nnote-x", "AssumeRolePolicyDocument": "{}"},
    ),
    ("create a cluster without our tag", "ecs", "CreateCluster", {"clusterName": "nnote-x"}),
    (
        "create a secret outside nnote/",
        "secretsmanager",
        "CreateSecret",
        {"Name": "prod/db", "Tags": TAGS},
    ),
    (
        "attach AdministratorAccess",
        "iam",
        "AttachRolePolicy",
        {
            "RoleName": "nnote-staging-task",
            "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
    ),
    (
        "pass a role of another app",
        "ecs",
        "RegisterTaskDefinition",
        {
            "family": "nnote-staging",
            "containerDefinitions": [],
            "tags": [{"key": k, "value": v} for k, v in OURS.items()],
            "taskRoleArn": "arn:aws:iam::123456789012:role/admin",
        },
    ),
    (
        "retag our service as someone else's",
        "ecs",
        "TagResource",
        {
            "resourceArn": f"arn:aws:ecs:{REGION}:123456789012:service/nnote-staging/nnote-staging",
            "tags": [{"key": "nnote:managed-by", "value": "someone-else"}],
        },
    ),
    (
        "make a service-linked role for EC2 Auto Scaling",
        "iam",
        "CreateServiceLinkedRole",
        {"AWSServiceName": "autoscaling.amazonaws.com"},
    ),
]
# The hosted zone is the user's: only CREATE and DELETE of A and CNAME records, never UPSERT
# (which would overwrite a record someone else wrote).
HTTPS_FORBIDDEN_CALLS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "overwrite a record with UPSERT",
        "route53",
        "ChangeResourceRecordSets",
        record_change("UPSERT", ALIAS_RECORD),
    ),
    (
        "slip an UPSERT into a batch of allowed changes",
        "route53",
        "ChangeResourceRecordSets",
        {
            "HostedZoneId": ZONE,
            "ChangeBatch": {
                "Changes": [
                    {"Action": "CREATE", "ResourceRecordSet": VALIDATION_RECORD},
                    {"Action": "UPSERT", "ResourceRecordSet": ALIAS_RECORD},
                ]
            },
        },
    ),
    (
        "write a TXT record",
        "route53",
        "ChangeResourceRecordSets",
        record_change(
            "CREATE",
            {**VALIDATION_RECORD, "Type": "TXT", "ResourceRecords": [{"Value": '"x"'}]},
        ),
    ),
    (
        "delegate a subdomain with NS records",
        "route53",
        "ChangeResourceRecordSets",
        record_change(
            "CREATE",
            {**VALIDATION_RECORD, "Type": "NS", "ResourceRecords": [{"Value": "ns.evil.test."}]},
        ),
    ),
    (
        "delete the zone's MX record",
        "route53",
        "ChangeResourceRecordSets",
        record_change(
            "DELETE",
            {
                "Name": "example.com.",
                "Type": "MX",
                "TTL": 300,
                "ResourceRecords": [{"Value": "10 mx.example.com."}],
            },
        ),
    ),
    (
        "create a distribution without our tags",
        "cloudfront",
        "CreateDistribution",
        {"DistributionConfig": DISTRIBUTION_CONFIG},
    ),
    (
        "create a distribution tagged as someone else's",
        "cloudfront",
        "CreateDistributionWithTags",
        {
            "DistributionConfigWithTags": {
                "DistributionConfig": DISTRIBUTION_CONFIG,
                "Tags": {"Items": THEIR_TAGS},
            }
        },
    ),
    (
        "create a distribution for another app",
        "cloudfront",
        "CreateDistributionWithTags",
        {
            "DistributionConfigWithTags": {
                "DistributionConfig": DISTRIBUTION_CONFIG,
                "Tags": {"Items": [*THEIR_APP_TAGS]},
            }
        },
    ),
    (
        "request a certificate without our tags",
        "acm",
        "RequestCertificate",
        {"DomainName": "notes.example.com", "ValidationMethod": "DNS"},
    ),
    (
        "request a certificate validated by email",
        "acm",
        "RequestCertificate",
        {"DomainName": "notes.example.com", "ValidationMethod": "EMAIL", "Tags": TAGS},
    ),
    (
        "add a rule to another app's listener",
        "elbv2",
        "CreateRule",
        {
            "ListenerArn": LISTENER.replace("/nnote-staging/", "/payments-prod/"),
            "Priority": 1,
            "Conditions": [],
            "Actions": [],
            "Tags": TAGS,
        },
    ),
]
FORBIDDEN_CALLS += HTTPS_FORBIDDEN_CALLS
OUR_TASK_DEFINITION = f"arn:aws:ecs:{REGION}:123456789012:task-definition/nnote-staging:1"
OUR_DATABASE = f"arn:aws:rds:{REGION}:123456789012:db:nnote-staging"
FORBIDDEN_CALLS += [
    (
        "run one of our revisions in another team's cluster",
        "ecs",
        "RunTask",
        {"cluster": "payments", "taskDefinition": OUR_TASK_DEFINITION, "launchType": "FARGATE"},
    ),
    (
        "delete a snapshot that is not one taken before a migration",
        "rds",
        "DeleteDBSnapshot",
        {"DBSnapshotIdentifier": "nnote-staging-final-20261202"},
    ),
    (
        "tag our database with more than its schema record",
        "rds",
        "AddTagsToResource",
        {
            "ResourceName": OUR_DATABASE,
            "Tags": [{"Key": "nnote:schema", "Value": "x"}, {"Key": "owner", "Value": "me"}],
        },
    ),
]
TRUST_ME = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/nnote-deploy"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
TAGS = [{"Key": k, "Value": v} for k, v in OURS.items()]
# Without the boundary, a role the deploy role makes could be given any permission and then
# assumed by it (or run as a task): these are how it would become an administrator.
ESCALATIONS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "make a role it can assume, with no boundary",
        "iam",
        "CreateRole",
        {"RoleName": "nnote-staging-x", "AssumeRolePolicyDocument": TRUST_ME, "Tags": TAGS},
    ),
    (
        "make a role with a boundary of its choosing",
        "iam",
        "CreateRole",
        {
            "RoleName": "nnote-staging-x",
            "AssumeRolePolicyDocument": TRUST_ME,
            "Tags": TAGS,
            "PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
    ),
    (
        "take a task role's boundary off",
        "iam",
        "DeleteRolePermissionsBoundary",
        {"RoleName": "nnote-staging-task"},
    ),
    (
        "swap a task role's boundary",
        "iam",
        "PutRolePermissionsBoundary",
        {
            "RoleName": "nnote-staging-task",
            "PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
    ),
]
# A role of ours made before roles had the boundary: nothing may be granted to it until `up`
# puts the boundary on.
ON_UNBOUNDED_ROLES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "give an unbounded role any policy",
        "iam",
        "PutRolePolicy",
        {"RoleName": "nnote-staging-task", "PolicyName": "all", "PolicyDocument": "{}"},
    ),
    (
        "attach the execution policy to an unbounded role",
        "iam",
        "AttachRolePolicy",
        {
            "RoleName": "nnote-staging-task",
            "PolicyArn": "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
        },
    ),
]
# Tagging a resource of someone else's as ours would hand it to the rules for ours (delete).
RETAGGING_OTHERS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "delete another tool's alarm named like ours",
        "cloudwatch",
        "DeleteAlarms",
        {"AlarmNames": ["nnote-staging-rollout-5xx"]},
    ),
    (
        "overwrite another tool's alarm named like ours",
        "cloudwatch",
        "PutMetricAlarm",
        {
            "AlarmName": "nnote-staging-rollout-p95",
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    ),
    (
        "retag someone else's database as ours",
        "rds",
        "AddTagsToResource",
        {"ResourceName": f"arn:aws:rds:{REGION}:123456789012:db:nnote-staging", "Tags": TAGS},
    ),
    (
        "retag someone else's repository as ours",
        "ecr",
        "TagResource",
        {
            "resourceArn": f"arn:aws:ecr:{REGION}:123456789012:repository/nnote-staging",
            "tags": TAGS,
        },
    ),
    (
        "retag someone else's log group as ours",
        "logs",
        "TagResource",
        {
            "resourceArn": f"arn:aws:logs:{REGION}:123456789012:log-group:/nnote/nnote-staging",
            "tags": OURS,
        },
    ),
    (
        "retag someone else's secret as ours",
        "secretsmanager",
        "TagResource",
        {"SecretId": "nnote/staging/secret-key", "Tags": TAGS},
    ),
    (
        "retag someone else's role as ours",
        "iam",
        "TagRole",
        {"RoleName": "nnote-staging-task", "Tags": TAGS},
    ),
    (
        "retag someone else's lock as ours",
        "ssm",
        "AddTagsToResource",
        {"ResourceType": "Parameter", "ResourceId": LOCK, "Tags": TAGS},
    ),
    (
        "retag someone else's certificate as ours",
        "acm",
        "AddTagsToCertificate",
        {"CertificateArn": CERTIFICATE, "Tags": TAGS},
    ),
    (
        "retag someone else's distribution as ours",
        "cloudfront",
        "TagResource",
        {"Resource": DISTRIBUTION, "Tags": {"Items": TAGS}},
    ),
]
FORBIDDEN_ON_OTHERS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("delete someone else's VPC", "ec2", "DeleteVpc", {"VpcId": "vpc-1"}),
    (
        "change the capacity providers of an unowned nnote-* cluster",
        "ecs",
        "PutClusterCapacityProviders",
        {"cluster": "nnote-staging", "capacityProviders": ["FARGATE", "FARGATE_SPOT"]},
    ),
    (
        "move someone else's service to Fargate Spot",
        "ecs",
        "UpdateService",
        {
            "cluster": "nnote-staging",
            "service": "nnote-staging",
            "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
            "forceNewDeployment": True,
        },
    ),
    ("list another cluster's tasks", "ecs", "ListTasks", {"cluster": "payments"}),
    (
        "read another app's task logs",
        "logs",
        "GetLogEvents",
        {"logGroupName": "/payments/api", "logStreamName": "app/app/1"},
    ),
    (
        "tag another app's task definition as a release",
        "ecs",
        "TagResource",
        {
            "resourceArn": f"arn:aws:ecs:{REGION}:123456789012:task-definition/payments:3",
            "tags": [{"key": "nnote:release-at", "value": "2026-12-02"}],
        },
    ),
    (
        "delete someone else's database",
        "rds",
        "DeleteDBInstance",
        {"DBInstanceIdentifier": "nnote-staging", "SkipFinalSnapshot": True},
    ),
    (
        "delete someone else's repository",
        "ecr",
        "DeleteRepository",
        {"repositoryName": "nnote-staging"},
    ),
    (
        "delete someone else's load balancer",
        "elbv2",
        "DeleteLoadBalancer",
        {
            "LoadBalancerArn": f"arn:aws:elasticloadbalancing:{REGION}:123456789012:"
            "loadbalancer/app/nnote-staging/0abc"
        },
    ),
    ("delete someone else's role", "iam", "DeleteRole", {"RoleName": "nnote-staging-task"}),
    (
        "scale someone else's service",
        "ecs",
        "UpdateService",
        {"cluster": "nnote-staging", "service": "nnote-staging", "desiredCount": 0},
    ),
    ("break someone else's lock", "ssm", "DeleteParameter", {"Name": LOCK}),
]
HTTPS_FORBIDDEN_ON_OTHERS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "delete someone else's certificate",
        "acm",
        "DeleteCertificate",
        {"CertificateArn": CERTIFICATE},
    ),
    (
        "delete someone else's distribution",
        "cloudfront",
        "DeleteDistribution",
        {"Id": "E1ABCDEF", "IfMatch": "E2QWRUHAPOMQZL"},
    ),
    (
        "disable someone else's distribution",
        "cloudfront",
        "UpdateDistribution",
        {
            "Id": "E1ABCDEF",
            "IfMatch": "E2QWRUHAPOMQZL",
            "DistributionConfig": {**DISTRIBUTION_CONFIG, "Enabled": False},
        },
    ),
    (
        "add a rule to someone else's listener",
        "elbv2",
        "CreateRule",
        {"ListenerArn": LISTENER, "Priority": 1, "Conditions": [], "Actions": [], "Tags": TAGS},
    ),
    ("delete someone else's listener rule", "elbv2", "DeleteRule", {"RuleArn": RULE}),
    (
        "point someone else's listener elsewhere",
        "elbv2",
        "ModifyListener",
        {"ListenerArn": LISTENER, "DefaultActions": [DENY_ACTION]},
    ),
]
FORBIDDEN_ON_OTHERS += HTTPS_FORBIDDEN_ON_OTHERS
FORBIDDEN_ON_OTHERS += [
    (
        "run someone else's task definition",
        "ecs",
        "RunTask",
        {
            "cluster": "nnote-staging",
            "taskDefinition": OUR_TASK_DEFINITION,
            "launchType": "FARGATE",
        },
    ),
    (
        "delete someone else's snapshot",
        "rds",
        "DeleteDBSnapshot",
        {"DBSnapshotIdentifier": "nnote-staging-release-3"},
    ),
    (
        "record a schema on someone else's database",
        "rds",
        "AddTagsToResource",
        {"ResourceName": OUR_DATABASE, "Tags": [{"Key": "nnote:schema", "Value": "x"}]},
    ),
]
# The same, on another app's certificate and distribution (their ARNs carry no name).
ON_ANOTHER_APP = [case for case in HTTPS_FORBIDDEN_ON_OTHERS if case[1] in ("acm", "cloudfront")]
FORBIDDEN_REQUESTS = [
    (
        "pass our role to Lambda",
        AuthRequest("iam:PassRole", ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}),
    ),
    (
        "make a service-linked role for EC2 Auto Scaling",
        AuthRequest(
            "iam:CreateServiceLinkedRole",
            "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/"
            "AWSServiceRoleForAutoScaling",
            {"iam:AWSServiceName": "autoscaling.amazonaws.com"},
        ),
    ),
]


def forbidden_but_allowed(policy: dict[str, Any]) -> list[str]:
    """What the policy allows of a list of things the deployer must never be able to do."""
    allowed = [  # every retagging case must be judged: none may hide behind a missing mapping
        f"{what}: no authorization mapping"
        for what, service, operation, params in RETAGGING_OTHERS
        if _authorizations_or_none(Call(service, operation, params, REGION), StateOfSomeoneElse())
        is None
    ]
    for cases, state in (
        (FORBIDDEN_CALLS, StateOfOurs()),
        (ESCALATIONS, StateOfOurs()),
        (ON_UNBOUNDED_ROLES, StateOfOursUnbounded()),
        (FORBIDDEN_ON_OTHERS, StateOfOthers()),
        (ON_ANOTHER_APP, StateOfAnotherApp()),
        (RETAGGING_OTHERS, StateOfSomeoneElse()),
    ):
        for what, service, operation, params in cases:
            requests = _authorizations_or_none(Call(service, operation, params, REGION), state)
            if requests and all(evaluate(policy, r) for r in requests):
                allowed.append(f"{what}: {service}:{operation} is allowed")
    for what, request in FORBIDDEN_REQUESTS:
        if evaluate(policy, request):
            allowed.append(f"{what}: {request.action} is allowed")
    return allowed


def _authorizations_or_none(call: Call, state: Any) -> list[AuthRequest] | None:
    from tests.support.iam_policy import UnmappedOperation

    try:
        return authorizations(call, state)
    except UnmappedOperation:
        return None  # (AWS would need permissions the checker cannot name: not allowed here)


def test_policy_allows_nothing_the_deployer_must_not_do() -> None:
    assert forbidden_but_allowed(POLICY) == []


@pytest.mark.parametrize(
    ("what", "service", "operation", "params", "state"),
    [
        *((*case, StateOfOurs()) for case in HTTPS_FORBIDDEN_CALLS),
        *((*case, StateOfOthers()) for case in HTTPS_FORBIDDEN_ON_OTHERS),
        *((*case, StateOfAnotherApp()) for case in ON_ANOTHER_APP),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_the_https_refusals_are_judged_not_unmapped(
    what: str, service: str, operation: str, params: dict[str, Any], state: Any
) -> None:
    """Each HTTPS case is refused by the policy itself, not for want of a mapping."""
    requests = authorizations(Call(service, operation, params, REGION), state)
    assert requests and not all(evaluate(POLICY, r) for r in requests), what


def test_a_dns_statement_that_allows_upsert_is_caught() -> None:
    loose = edited(
        lambda s: s["HttpsDnsRecordsCreateAndDeleteOnly"]["Condition"][
            "ForAllValues:StringEquals"
        ].update({"route53:ChangeResourceRecordSetsActions": ["CREATE", "DELETE", "UPSERT"]})
    )
    assert any("overwrite a record with UPSERT" in line for line in forbidden_but_allowed(loose))


def test_a_distribution_change_without_its_owner_condition_is_caught() -> None:
    loose = edited(lambda s: s["HttpsFrontDoorChangeOnlyOwned"].pop("Condition"))
    found = forbidden_but_allowed(loose)
    assert any("delete someone else's distribution" in line for line in found), found


def test_the_boundary_caps_a_task_role_at_the_apps_images_logs_and_secrets() -> None:
    """Whatever policy the deploy role puts on a task role, the role can do no more than this."""
    boundary = json.loads((ROOT / "docs" / "iam-task-boundary.json").read_text())
    account = f"{REGION}:123456789012"
    allowed = [
        ("ecr:BatchGetImage", f"arn:aws:ecr:{account}:repository/nnote-staging"),
        ("logs:PutLogEvents", f"arn:aws:logs:{account}:log-group:/nnote/nnote-staging:*"),
        ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{account}:secret:nnote/x-1"),
        ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{account}:secret:rds!db-1"),
    ]
    refused = [
        ("iam:CreateRole", "arn:aws:iam::123456789012:role/nnote-x"),
        ("iam:PutRolePolicy", "arn:aws:iam::123456789012:role/nnote-deploy"),
        ("ecr:BatchGetImage", f"arn:aws:ecr:{account}:repository/payments-api"),
        ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{account}:secret:payments/x"),
        ("s3:GetObject", "arn:aws:s3:::payments-data/report.csv"),
        ("rds:DeleteDBInstance", f"arn:aws:rds:{account}:db:nnote-staging"),
    ]
    assert all(evaluate(boundary, AuthRequest(a, r, {})) for a, r in allowed)
    assert not any(evaluate(boundary, AuthRequest(a, r, {})) for a, r in refused)


def test_policy_has_no_wildcard_actions_and_passes_the_linter() -> None:
    actions = [a for s in POLICY["Statement"] for a in s.get("Action", [])]
    assert not [a for a in actions if a == "*" or a.endswith(":*")], "least privilege"
    assert all("NotAction" not in s and "NotResource" not in s for s in POLICY["Statement"])
    assert lint(POLICY) == []


# -- the checks fail when the policy is wrong -------------------------------------------------


@functools.cache
def staging_up() -> AuthorizationLog:
    """One recorded staging `up` from nothing (the first test to ask has a fresh moto)."""
    log = recorder()
    deploy(run_with(log))
    return log


def edited(change: Any) -> dict[str, Any]:
    policy = copy.deepcopy(POLICY)
    change({s["Sid"]: s for s in policy["Statement"]})
    return policy


def test_a_create_statement_without_its_tag_condition_is_caught() -> None:
    loose = edited(lambda s: s["NetworkCreateOnlyTagged"].pop("Condition"))
    assert any("ec2:CreateVpc is allowed" in line for line in forbidden_but_allowed(loose))


def test_a_policy_without_ec2_create_tags_is_caught(aws_env: dict[str, str]) -> None:
    without = edited(lambda s: s["NetworkTagOnCreateOnly"].update(Action=["ec2:DeleteTags"]))
    denied = staging_up().denied(without)
    assert denied and all(line.startswith("ec2:CreateTags on ") for line in denied), denied
    assert "(ec2:CreateAction=CreateVpc)" in "\n".join(denied)


def test_pass_role_without_its_condition_is_caught() -> None:
    loose = edited(lambda s: s["TaskRolesPassOnlyToEcsTasks"].pop("Condition"))
    assert any("iam:PassRole is allowed" in line for line in forbidden_but_allowed(loose))


def test_pass_role_limited_to_another_service_is_caught(aws_env: dict[str, str]) -> None:
    wrong = edited(
        lambda s: s["TaskRolesPassOnlyToEcsTasks"]["Condition"]["StringEquals"].update(
            {"iam:PassedToService": "ecs.amazonaws.com"}
        )
    )
    denied = staging_up().denied(wrong)
    assert denied and all(line.startswith("iam:PassRole on ") for line in denied), denied


def test_the_old_policy_that_ignored_resources_and_conditions_is_caught(
    aws_env: dict[str, str],
) -> None:
    """The policy this checker replaced allowed every action name the runs used, but AWS
    would have refused it these, among others."""
    old = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateVpc", "ec2:CreateSubnet", "ec2:CreateTags"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestTag/nnote:managed-by": "nnote-deploy"}},
            }
        ],
    }
    denied = staging_up().denied(old)
    assert any(
        line.startswith("ec2:CreateSubnet on arn:aws:ec2:") and "vpc/vpc-" in line
        for line in denied
    ), denied
