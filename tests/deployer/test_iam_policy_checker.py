"""The IAM checker itself (tests/support/iam_policy.py): policy evaluation rule by rule, what
it says AWS authorizes for a call, and its recording hooks and linter."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.support.iam_policy import (
    AuthRequest,
    BotoLookup,
    Call,
    MappingError,
    UnmappedOperation,
    authorizations,
    denials,
    evaluate,
    lint,
    normalized_record_name,
    recording_hooks,
    resource_type,
)

REGION = "eu-west-1"
ARN = f"arn:aws:ec2:{REGION}:123456789012:vpc/vpc-1"
OURS = {"nnote:managed-by": "nnote-deploy"}


def allow(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}


def request(action: str = "ec2:DeleteVpc", resource: str = ARN, **context: Any) -> AuthRequest:
    return AuthRequest(action, resource, context)


# -- evaluation: Action, Resource, Effect ---------------------------------------------------


def test_evaluate_denies_implicitly_when_no_statement_matches() -> None:
    assert not evaluate(allow(Action="ec2:CreateVpc", Resource="*"), request())


def test_evaluate_lets_an_explicit_deny_win_over_any_allow() -> None:
    policy = allow(Action="ec2:*", Resource="*")
    policy["Statement"].append({"Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": ARN})
    assert not evaluate(policy, request())
    assert evaluate(policy, request("ec2:DeleteSubnet"))


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("ec2:DeleteVpc", "ec2:deletevpc", True),  # action names are case-insensitive
        ("EC2:Delete*", "ec2:DeleteVpc", True),
        ("ec2:Delete?pc", "ec2:DeleteVpc", True),
        ("ec2:Delete?", "ec2:DeleteVpc", False),
        ("ec2:Describe*", "ec2:DeleteVpc", False),
    ],
)
def test_evaluate_matches_actions_with_iam_wildcards(
    pattern: str, action: str, matches: bool
) -> None:
    assert evaluate(allow(Action=pattern, Resource="*"), request(action)) is matches


def test_evaluate_applies_not_action_to_every_other_action() -> None:
    policy = allow(NotAction=["ec2:DeleteVpc"], Resource="*")
    assert evaluate(policy, request("ec2:DeleteSubnet"))
    assert not evaluate(policy, request("ec2:DeleteVpc"))


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("arn:aws:ec2:*:*:vpc/*", True),
        ("arn:aws:ec2:*:*:vpc/vpc-?", True),
        ("arn:aws:ec2:*:*:VPC/*", False),  # ARNs are case-sensitive
        ("arn:aws:ec2:*:*:subnet/*", False),
        ("*", True),
    ],
)
def test_evaluate_matches_resources_case_sensitively(pattern: str, matches: bool) -> None:
    assert evaluate(allow(Action="ec2:DeleteVpc", Resource=pattern), request()) is matches


def test_evaluate_applies_not_resource_to_every_other_resource() -> None:
    policy = allow(Action="ec2:DeleteVpc", NotResource="arn:aws:ec2:*:*:vpc/vpc-1")
    assert not evaluate(policy, request())
    assert evaluate(policy, request(resource=ARN.replace("vpc-1", "vpc-2")))


def test_evaluate_matches_a_resource_less_action_only_with_star() -> None:
    describe = request("ec2:DescribeVpcs", "*")
    assert not evaluate(allow(Action="ec2:DescribeVpcs", Resource="arn:aws:ec2:*:*:*"), describe)
    assert evaluate(allow(Action="ec2:DescribeVpcs", Resource="*"), describe)


def test_evaluate_accepts_a_single_statement_object() -> None:
    policy = {"Statement": {"Effect": "Allow", "Action": "ec2:DeleteVpc", "Resource": "*"}}
    assert evaluate(policy, request())


# -- evaluation: conditions -------------------------------------------------------------------

TAG = "aws:ResourceTag/nnote:managed-by"
CASES = [
    # operator, policy value, request context, holds
    ("StringEquals", "nnote-deploy", {TAG: "nnote-deploy"}, True),
    ("StringEquals", "nnote-deploy", {TAG: "Nnote-Deploy"}, False),
    ("StringEquals", "nnote-deploy", {}, False),
    ("StringEqualsIfExists", "nnote-deploy", {}, True),
    ("StringEqualsIfExists", "nnote-deploy", {TAG: "other"}, False),
    ("StringNotEquals", "nnote-deploy", {TAG: "other"}, True),
    ("StringNotEquals", "nnote-deploy", {TAG: "nnote-deploy"}, False),
    # "If the policy condition requires that the key is not matched ... and the right key is
    # not present, the condition is true" (IAM User Guide, condition operators).
    ("StringNotEquals", "nnote-deploy", {}, True),
    ("StringNotEqualsIfExists", "nnote-deploy", {}, True),
    ("StringLike", "nnote-*", {TAG: "nnote-deploy"}, True),
    ("StringLike", "nnote-?", {TAG: "nnote-deploy"}, False),
    ("StringLike", "nnote-*", {}, False),
    ("StringLikeIfExists", "nnote-*", {}, True),
    ("StringNotLike", "nnote-*", {TAG: "other"}, True),
    ("StringNotLike", "nnote-*", {TAG: "nnote-deploy"}, False),
    ("StringNotLike", "nnote-*", {}, True),
    ("StringEqualsIgnoreCase", "NNOTE-DEPLOY", {TAG: "nnote-deploy"}, True),
    ("StringEqualsIgnoreCase", "NNOTE-DEPLOY", {}, False),
    ("StringEqualsIgnoreCaseIfExists", "x", {}, True),
    ("Bool", "true", {TAG: "true"}, True),
    ("Bool", True, {TAG: "true"}, True),
    ("Bool", "true", {TAG: "false"}, False),
    ("Bool", "true", {}, False),
    ("BoolIfExists", "true", {}, True),
    ("Null", "true", {}, True),
    ("Null", "true", {TAG: "x"}, False),
    ("Null", "false", {TAG: "x"}, True),
    ("Null", "false", {}, False),
]


@pytest.mark.parametrize(("operator", "value", "context", "holds"), CASES)
def test_evaluate_string_bool_and_null_operators(
    operator: str, value: Any, context: dict[str, str], holds: bool
) -> None:
    policy = allow(Action="*", Resource="*", Condition={operator: {TAG: value}})
    assert evaluate(policy, request(**context)) is holds


ROLE = "arn:aws:iam::123456789012:role/nnote-staging-task"
ARN_CASES = [
    ("ArnEquals", ROLE, {"iam:PolicyARN": ROLE}, True),
    ("ArnEquals", ROLE, {}, False),
    ("ArnEqualsIfExists", ROLE, {}, True),
    ("ArnLike", "arn:aws:iam::*:role/nnote-*", {"iam:PolicyARN": ROLE}, True),
    # Each of the six parts is matched on its own: a wildcard does not cross a colon.
    ("ArnLike", "arn:aws:*", {"iam:PolicyARN": ROLE}, False),
    ("ArnLike", "arn:aws:iam::*:role/other-*", {"iam:PolicyARN": ROLE}, False),
    ("ArnLikeIfExists", "arn:aws:iam::*:role/other-*", {}, True),
    ("ArnNotLike", "arn:aws:iam::*:role/other-*", {"iam:PolicyARN": ROLE}, True),
]


@pytest.mark.parametrize(("operator", "value", "context", "holds"), ARN_CASES)
def test_evaluate_arn_operators_match_part_by_part(
    operator: str, value: str, context: dict[str, str], holds: bool
) -> None:
    policy = allow(Action="*", Resource="*", Condition={operator: {"iam:PolicyARN": value}})
    assert evaluate(policy, request(**context)) is holds


def test_evaluate_ors_the_values_of_one_condition() -> None:
    policy = allow(Action="*", Resource="*", Condition={"StringEquals": {TAG: ["a", "b"]}})
    assert evaluate(policy, request(**{TAG: "b"}))
    assert not evaluate(policy, request(**{TAG: "c"}))


def test_evaluate_ands_keys_and_operators() -> None:
    condition = {
        "StringEquals": {TAG: "nnote-deploy", "ec2:CreateAction": "CreateVpc"},
        "Null": {"aws:RequestTag/owner": "true"},
    }
    policy = allow(Action="*", Resource="*", Condition=condition)
    assert evaluate(policy, request(**{TAG: "nnote-deploy", "ec2:CreateAction": "CreateVpc"}))
    assert not evaluate(policy, request(**{TAG: "nnote-deploy"}))
    assert not evaluate(
        policy,
        request(
            **{TAG: "nnote-deploy", "ec2:CreateAction": "CreateVpc", "aws:RequestTag/owner": "x"}
        ),
    )


def test_evaluate_reads_condition_key_names_case_insensitively() -> None:
    policy = allow(Action="*", Resource="*", Condition={"StringEquals": {TAG.upper(): "x"}})
    assert evaluate(policy, request(**{TAG: "x"}))


SET_CASES = [
    ("ForAllValues:StringEquals", ["a", "b"], ["a"], True),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "c"], False),
    ("ForAllValues:StringEquals", ["a"], None, True),  # no key: vacuously true
    ("ForAllValues:StringEquals", ["a"], [], True),
    ("ForAllValues:StringLike", ["nnote:*"], ["nnote:app", "nnote:env"], True),
    ("ForAllValues:StringNotEquals", ["nnote:managed-by"], ["nnote:app"], True),
    ("ForAllValues:StringNotEquals", ["nnote:managed-by"], ["nnote:managed-by"], False),
    ("ForAnyValue:StringEquals", ["a"], ["b", "a"], True),
    ("ForAnyValue:StringEquals", ["a"], ["b"], False),
    ("ForAnyValue:StringEquals", ["a"], None, False),  # no key: false
    ("ForAnyValue:StringEqualsIfExists", ["a"], None, True),
    ("ForAnyValue:StringNotEquals", ["a"], ["a", "b"], True),
]


@pytest.mark.parametrize(("operator", "value", "keys", "holds"), SET_CASES)
def test_evaluate_set_operators_on_multivalued_keys(
    operator: str, value: list[str], keys: list[str] | None, holds: bool
) -> None:
    policy = allow(Action="*", Resource="*", Condition={operator: {"aws:TagKeys": value}})
    context: dict[str, str | list[str]] = {} if keys is None else {"aws:TagKeys": keys}
    assert evaluate(policy, AuthRequest("ec2:DeleteVpc", ARN, context)) is holds


@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
        {"NullIfExists": {TAG: "true"}},
        {"StringEquals": {TAG: "${aws:username}"}},
    ],
)
def test_evaluate_refuses_what_it_does_not_model(condition: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        evaluate(allow(Action="*", Resource="*", Condition=condition), request(**{TAG: "x"}))


# -- what AWS authorizes for a call ---------------------------------------------------------


class Account:
    """A Lookup where every named resource exists, tagged as ours; roles as told."""

    def __init__(self, linked_roles: bool = False) -> None:
        self.linked_roles = linked_roles

    def tags(self, arn: str) -> dict[str, str] | None:
        return None if "*" in arn.removesuffix(":*") else dict(OURS)

    def service_linked_role_exists(self, aws_service_name: str) -> bool:
        return self.linked_roles

    def secret_arn(self, secret_id: str) -> str | None:
        return None

    def route_table_association(self, association_id: str) -> tuple[str, str | None] | None:
        return ("rtb-1", "subnet-1")

    def scalable_target_arn(self, namespace: str, resource_id: str, dimension: str) -> str | None:
        return None

    def permissions_boundary(self, role_name: str) -> str | None:
        return "arn:aws:iam::123456789012:policy/nnote-deploy-boundary"

    def task_definition_roles(self, arn: str) -> list[str]:
        return []


def auths(service: str, operation: str, lookup: Any = None, **params: Any) -> list[AuthRequest]:
    return authorizations(Call(service, operation, params, REGION), lookup or Account())


def pairs(found: list[AuthRequest]) -> list[tuple[str, str]]:
    return [(r.action, r.resource.split(":", 5)[5] if r.resource != "*" else "*") for r in found]


TAG_SPEC = [{"ResourceType": "subnet", "Tags": [{"Key": "nnote:managed-by", "Value": "x"}]}]


def test_authorizations_of_an_unmapped_operation_raise_naming_it() -> None:
    with pytest.raises(UnmappedOperation, match=r"ec2:RunInstances"):
        auths("ec2", "RunInstances")


def test_authorizations_of_a_tagged_create_include_tag_on_create() -> None:
    found = auths("ec2", "CreateSubnet", VpcId="vpc-1", CidrBlock="x", TagSpecifications=TAG_SPEC)
    assert pairs(found) == [
        ("ec2:CreateSubnet", "subnet/*"),
        ("ec2:CreateSubnet", "vpc/vpc-1"),
        ("ec2:CreateTags", "subnet/*"),
    ]
    create, parent, tagging = found
    assert create.context["aws:RequestTag/nnote:managed-by"] == "x"
    assert create.context["aws:TagKeys"] == ["nnote:managed-by"]
    # The VPC the subnet goes into is authorized with its own tags, not the request's.
    assert "aws:RequestTag/nnote:managed-by" not in parent.context
    assert parent.context["aws:ResourceTag/nnote:managed-by"] == "nnote-deploy"
    assert tagging.context["ec2:CreateAction"] == "CreateSubnet"


def test_authorizations_of_an_untagged_create_need_no_tagging() -> None:
    assert pairs(auths("ec2", "CreateVpc", CidrBlock="x")) == [("ec2:CreateVpc", "vpc/*")]


def test_authorizations_set_only_keys_the_action_supports() -> None:
    """ecs:DeregisterTaskDefinition has no resource-level permissions and no condition keys:
    a condition on the resource's tags can never hold for it."""
    (found,) = auths("ecs", "DeregisterTaskDefinition", taskDefinition="nnote-staging:1")
    assert found.resource == "*" and set(found.context) == {"aws:RequestedRegion"}


def test_authorizations_of_register_task_definition_pass_both_roles_to_ecs_tasks() -> None:
    roles = {r: f"arn:aws:iam::123456789012:role/{r}" for r in ("task", "execution")}
    found = auths(
        "ecs",
        "RegisterTaskDefinition",
        family="nnote-staging",
        containerDefinitions=[],
        taskRoleArn=roles["task"],
        executionRoleArn=roles["execution"],
    )
    passed = [r for r in found if r.action == "iam:PassRole"]
    assert sorted(r.resource for r in passed) == sorted(roles.values())
    assert all(r.context["iam:PassedToService"] == "ecs-tasks.amazonaws.com" for r in passed)


@pytest.mark.parametrize(
    ("service", "operation", "params", "linked"),
    [
        ("elbv2", "CreateLoadBalancer", {"Name": "nnote-staging"}, "elasticloadbalancing"),
        ("ecs", "CreateCluster", {"clusterName": "nnote-staging"}, "ecs"),
        (
            "application-autoscaling",
            "RegisterScalableTarget",
            {
                "ServiceNamespace": "ecs",
                "ResourceId": "service/nnote-prod/nnote-prod",
                "ScalableDimension": "ecs:service:DesiredCount",
            },
            "ecs.application-autoscaling",
        ),
    ],
)
def test_authorizations_make_a_missing_service_linked_role_only(
    service: str, operation: str, params: dict[str, Any], linked: str
) -> None:
    def linked_roles(lookup: Account) -> list[str]:
        found = authorizations(Call(service, operation, params, REGION), lookup)
        return [
            str(r.context["iam:AWSServiceName"])
            for r in found
            if r.action == "iam:CreateServiceLinkedRole"
        ]

    assert linked_roles(Account(linked_roles=False)) == [f"{linked}.amazonaws.com"]
    assert linked_roles(Account(linked_roles=True)) == []


DB = {
    "DBInstanceIdentifier": "nnote-staging",
    "Engine": "mysql",
    "EngineVersion": "8.0.40",
    "DBSubnetGroupName": "nnote-staging",
    "ManageMasterUserPassword": True,
    "Tags": [{"Key": "nnote:managed-by", "Value": "nnote-deploy"}],
}


def test_authorizations_of_a_database_with_a_managed_password_create_its_secret() -> None:
    found = pairs(auths("rds", "CreateDBInstance", Account(linked_roles=True), **DB))
    assert found == [
        ("rds:CreateDBInstance", "db:nnote-staging"),
        ("rds:CreateDBInstance", "og:default:mysql-8-0"),
        ("rds:CreateDBInstance", "pg:default.mysql8.0"),
        ("rds:CreateDBInstance", "subgrp:nnote-staging"),
        ("rds:AddTagsToResource", "db:nnote-staging"),
        ("secretsmanager:CreateSecret", "secret:rds!db-*"),
        ("secretsmanager:TagResource", "secret:rds!db-*"),
        ("kms:DescribeKey", "key/*"),
    ]


def test_authorizations_refuse_database_parameters_they_do_not_model() -> None:
    with pytest.raises(UnmappedOperation, match="KmsKeyId"):
        auths("rds", "CreateDBInstance", **DB, KmsKeyId="alias/mine")


def test_authorizations_of_a_final_snapshot_include_the_snapshot_and_its_tags() -> None:
    found = auths(
        "rds",
        "DeleteDBInstance",
        DBInstanceIdentifier="nnote-prod",
        FinalDBSnapshotIdentifier="nnote-prod-final-1",
    )
    assert pairs(found) == [
        ("rds:DeleteDBInstance", "db:nnote-prod"),
        ("rds:CreateDBSnapshot", "db:nnote-prod"),
        ("rds:CreateDBSnapshot", "snapshot:nnote-prod-final-1"),
        ("rds:AddTagsToResource", "snapshot:nnote-prod-final-1"),
    ]
    skipped = auths("rds", "DeleteDBInstance", DBInstanceIdentifier="x", SkipFinalSnapshot=True)
    assert pairs(skipped) == [("rds:DeleteDBInstance", "db:x")]


TARGET = {
    "ServiceNamespace": "ecs",
    "ResourceId": "service/nnote-prod/nnote-prod",
    "ScalableDimension": "ecs:service:DesiredCount",
}


def test_authorizations_of_target_tracking_create_and_delete_its_alarms() -> None:
    put = auths(
        "application-autoscaling", "PutScalingPolicy", PolicyType="TargetTrackingScaling", **TARGET
    )
    assert {r.action for r in put} >= {"cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"}
    gone = auths("application-autoscaling", "DeregisterScalableTarget", **TARGET)
    alarms = [r.resource for r in gone if r.action == "cloudwatch:DeleteAlarms"]
    assert alarms and all(
        ":alarm:TargetTracking-service/nnote-prod/nnote-prod-" in a for a in alarms
    )


def test_authorizations_of_get_caller_identity_are_none() -> None:
    assert auths("sts", "GetCallerIdentity") == []


GITHUB = "oidc-provider/token.actions.githubusercontent.com"
IAM_TAGS = [{"Key": "nnote:managed-by", "Value": "x"}]


def test_authorizations_of_a_tagged_oidc_provider_include_tag_on_create() -> None:
    found = auths(
        "iam",
        "CreateOpenIDConnectProvider",
        Url="https://token.actions.githubusercontent.com",
        ClientIDList=["sts.amazonaws.com"],
        Tags=IAM_TAGS,
    )
    assert pairs(found) == [
        ("iam:CreateOpenIDConnectProvider", GITHUB),
        ("iam:TagOpenIDConnectProvider", GITHUB),
    ]
    assert all(r.context["aws:RequestTag/nnote:managed-by"] == "x" for r in found)


def test_authorizations_of_a_tagged_policy_name_its_path_and_include_tag_on_create() -> None:
    found = auths(
        "iam", "CreatePolicy", PolicyName="p-1", Path="/team/", PolicyDocument="{}", Tags=IAM_TAGS
    )
    assert pairs(found) == [
        ("iam:CreatePolicy", "policy/team/p-1"),
        ("iam:TagPolicy", "policy/team/p-1"),
    ]
    untagged = auths("iam", "CreatePolicy", PolicyName="p-1", PolicyDocument="{}")
    assert pairs(untagged) == [("iam:CreatePolicy", "policy/p-1")]


def test_authorizations_of_tagging_an_existing_role_see_its_tags_and_the_new_ones() -> None:
    (tag,) = auths("iam", "TagRole", RoleName="r", Tags=IAM_TAGS)
    assert tag.context["aws:RequestTag/nnote:managed-by"] == "x"
    assert tag.context["aws:ResourceTag/nnote:managed-by"] == "nnote-deploy"
    (untag,) = auths("iam", "UntagPolicy", PolicyArn="arn:aws:iam::1:policy/p", TagKeys=["a"])
    assert (untag.action, untag.context["aws:TagKeys"]) == ("iam:UntagPolicy", ["a"])


LISTENER = (
    f"arn:aws:elasticloadbalancing:{REGION}:123456789012:listener/app/nnote-staging/0abc/1def"
)
OWNER_TAGS = [{"Key": "nnote:managed-by", "Value": "nnote-deploy"}]


def test_authorizations_of_a_tagged_listener_rule_include_tag_on_create() -> None:
    found = auths(
        "elbv2",
        "CreateRule",
        ListenerArn=LISTENER,
        Priority=1,
        Conditions=[],
        Actions=[],
        Tags=OWNER_TAGS,
    )
    assert pairs(found) == [
        ("elasticloadbalancing:CreateRule", "listener/app/nnote-staging/0abc/1def"),
        ("elasticloadbalancing:AddTags", "listener-rule/app/nnote-staging/0abc/1def/*"),
    ]
    create, tagging = found
    # The listener's own tags and the request's both hold for the create.
    assert create.context["aws:ResourceTag/nnote:managed-by"] == "nnote-deploy"
    assert create.context["aws:RequestTag/nnote:managed-by"] == "nnote-deploy"
    assert tagging.context["elasticloadbalancing:CreateAction"] == "CreateRule"


def test_authorizations_of_an_https_listener_change_carry_its_protocol_and_policy() -> None:
    (found,) = auths(
        "elbv2",
        "ModifyListener",
        ListenerArn=LISTENER,
        Protocol="HTTPS",
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
    )
    assert found.context["elasticloadbalancing:ListenerProtocol"] == "HTTPS"
    assert found.context["elasticloadbalancing:SecurityPolicy"] == (
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )


def test_authorizations_of_a_certificate_request_name_its_domains_and_tag_it() -> None:
    found = auths(
        "acm",
        "RequestCertificate",
        DomainName="notes.example.com",
        SubjectAlternativeNames=["www.notes.example.com"],
        ValidationMethod="DNS",
        Tags=OWNER_TAGS,
    )
    assert pairs(found) == [
        ("acm:RequestCertificate", "*"),
        ("acm:AddTagsToCertificate", "certificate/*"),
    ]
    request, tagging = found
    assert request.context["acm:DomainNames"] == ["notes.example.com", "www.notes.example.com"]
    assert request.context["acm:ValidationMethod"] == "DNS"
    assert "acm:KeyAlgorithm" not in request.context  # not in the request: not set
    assert tagging.context["aws:RequestTag/nnote:managed-by"] == "nnote-deploy"


def test_authorizations_of_record_changes_set_route53s_three_keys_normalized() -> None:
    """The zone's ARN has no region or account, the id no /hostedzone/ prefix; names are
    lower case without the trailing dot, `*` escaped; the region is us-east-1 whatever the
    client's."""
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {"Name": "_X.Notes.example.com.", "Type": "CNAME"},
        },
        {"Action": "DELETE", "ResourceRecordSet": {"Name": "*.example.com", "Type": "A"}},
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "notes.example.com", "Type": "A"}},
    ]
    (found,) = auths(
        "route53",
        "ChangeResourceRecordSets",
        HostedZoneId="/hostedzone/Z123",
        ChangeBatch={"Changes": changes},
    )
    assert found.resource == "arn:aws:route53:::hostedzone/Z123"
    assert found.context["route53:ChangeResourceRecordSetsNormalizedRecordNames"] == [
        "_x.notes.example.com",
        "\\052.example.com",
        "notes.example.com",
    ]
    assert found.context["route53:ChangeResourceRecordSetsRecordTypes"] == ["CNAME", "A"]
    assert found.context["route53:ChangeResourceRecordSetsActions"] == ["CREATE", "DELETE"]
    assert found.context["aws:RequestedRegion"] == "us-east-1"


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("Notes.Example.COM.", "notes.example.com"),
        ("_a1-b.example.com", "_a1-b.example.com"),
        ("*.example.com", "\\052.example.com"),
        ("\\052.example.com", "\\052.example.com"),  # already escaped
        ("a b.example.com", "a\\040b.example.com"),
    ],
)
def test_normalized_record_names_are_as_route53_documents(name: str, normalized: str) -> None:
    assert normalized_record_name(name) == normalized


DISTRIBUTION_CONFIG = {
    "CallerReference": "nnote-staging",
    "Comment": "nnote staging",
    "Enabled": True,
    "Origins": {"Quantity": 0, "Items": []},
    "DefaultCacheBehavior": {"TargetOriginId": "alb", "ViewerProtocolPolicy": "redirect-to-https"},
    "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
}


def test_authorizations_of_a_distribution_with_tags_are_create_and_tag_resource() -> None:
    found = auths(
        "cloudfront",
        "CreateDistributionWithTags",
        DistributionConfigWithTags={
            "DistributionConfig": DISTRIBUTION_CONFIG,
            "Tags": {"Items": OWNER_TAGS},
        },
    )
    assert [(r.action, r.resource) for r in found] == [
        ("cloudfront:CreateDistribution", "*"),
        ("cloudfront:TagResource", "arn:aws:cloudfront::123456789012:distribution/*"),
    ]
    assert all(r.context["aws:RequestTag/nnote:managed-by"] == "nnote-deploy" for r in found)
    assert all(r.context["aws:RequestedRegion"] == "us-east-1" for r in found)
    (untagged,) = auths(
        "cloudfront",
        "CreateDistributionWithTags",
        DistributionConfigWithTags={"DistributionConfig": DISTRIBUTION_CONFIG, "Tags": {}},
    )
    assert not any(k.startswith("aws:RequestTag/") for k in untagged.context)


def test_authorizations_of_a_distribution_change_see_its_tags() -> None:
    (found,) = auths("cloudfront", "DeleteDistribution", Id="E1ABC", IfMatch="E2")
    assert found.resource == "arn:aws:cloudfront::123456789012:distribution/E1ABC"
    assert found.context["aws:ResourceTag/nnote:managed-by"] == "nnote-deploy"


@pytest.mark.parametrize(
    "extra",
    [
        {"WebACLId": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1"},
        {"ViewerCertificate": {"ACMCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"}},
        {"Logging": {"Enabled": True, "Bucket": "logs.s3.amazonaws.com"}},
    ],
)
def test_authorizations_refuse_distribution_parts_they_do_not_model(extra: dict[str, Any]) -> None:
    with pytest.raises(UnmappedOperation):
        auths(
            "cloudfront", "CreateDistribution", DistributionConfig={**DISTRIBUTION_CONFIG, **extra}
        )


def test_boto_lookup_reads_the_tags_of_certificates_and_distributions() -> None:
    clients = {
        service: boto3.client(
            service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
        )
        for service in ("acm", "cloudfront")
    }
    lookup = BotoLookup(REGION, client=lambda service, region_name: clients[service])
    certificate = f"arn:aws:acm:{REGION}:123456789012:certificate/0abc"
    distribution = "arn:aws:cloudfront::123456789012:distribution/E1ABC"
    with Stubber(clients["acm"]) as acm, Stubber(clients["cloudfront"]) as cloudfront:
        acm.add_response(
            "list_tags_for_certificate",
            {"Tags": [{"Key": "k", "Value": "acm"}]},
            {"CertificateArn": certificate},
        )
        cloudfront.add_response(
            "list_tags_for_resource",
            {"Tags": {"Items": [{"Key": "k", "Value": "cloudfront"}]}},
            {"Resource": distribution},
        )
        assert lookup.tags(certificate) == {"k": "acm"}
        assert lookup.tags(distribution) == {"k": "cloudfront"}


def test_boto_lookup_reads_the_tags_of_iam_roles_policies_and_oidc_providers() -> None:
    client = boto3.client(
        "iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    lookup = BotoLookup(REGION, client=lambda _service, region_name: client)
    account = "arn:aws:iam::123456789012:"
    asked = {
        "list_role_tags": ("role/r", {"RoleName": "r"}),
        "list_policy_tags": ("policy/p-1", {"PolicyArn": f"{account}policy/p-1"}),
        "list_open_id_connect_provider_tags": (
            GITHUB,
            {"OpenIDConnectProviderArn": f"{account}{GITHUB}"},
        ),
    }
    with Stubber(client) as stub:
        for operation, (_, params) in asked.items():
            stub.add_response(operation, {"Tags": [{"Key": "k", "Value": operation}]}, params)
        found = {operation: lookup.tags(account + rest) for operation, (rest, _) in asked.items()}
    assert found == {operation: {"k": operation} for operation in asked}


def test_resource_type_refuses_an_arn_the_action_does_not_take() -> None:
    with pytest.raises(MappingError):
        resource_type("ec2:CreateVpc", f"arn:aws:ec2:{REGION}:123456789012:subnet/subnet-1")
    with pytest.raises(MappingError):
        resource_type("ec2:DeleteVpc", "*")  # it has resource-level permissions
    with pytest.raises(MappingError):
        resource_type("ec2:NoSuchAction", "*")
    assert resource_type("ecs:ListTasks", "*") is None  # no container instance filtered by


def test_denials_name_the_action_resource_and_create_action() -> None:
    policy = allow(Action="ec2:CreateVpc", Resource="*")
    call = Call(
        "ec2",
        "CreateVpc",
        {"CidrBlock": "x", "TagSpecifications": [{**TAG_SPEC[0], "ResourceType": "vpc"}]},
        REGION,
    )
    assert denials(policy, call, Account()) == [
        f"ec2:CreateTags on arn:aws:ec2:{REGION}:123456789012:vpc/* (ec2:CreateAction=CreateVpc)"
    ]


# -- recording and linting ------------------------------------------------------------------


def test_recording_hooks_record_each_call_before_it_is_sent() -> None:
    sink: list[Call] = []
    client = boto3.client(
        "ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    for event, handler in recording_hooks(sink, REGION):
        client.meta.events.register(event, handler)
    with Stubber(client) as stub:
        stub.add_response("delete_vpc", {}, {"VpcId": "vpc-1"})
        client.delete_vpc(VpcId="vpc-1")
    assert sink == [Call("ec2", "DeleteVpc", {"VpcId": "vpc-1"}, REGION)]


def test_lint_reports_findings_it_does_not_accept() -> None:
    found = lint(allow(Action=["ec2:DeleteVpc", "iam:CreateUser"], Resource="*"))
    assert any("RESOURCE_STAR" in f and "ec2:DeleteVpc" in f for f in found), found
    assert any("PERMISSIONS_MANAGEMENT_ACTIONS" in f and "iam:createuser" in f for f in found)
