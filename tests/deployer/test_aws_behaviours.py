"""What real AWS does that moto does not, each once a defect of the deployer: names still being
released after a `down`, states that refuse a delete, pages of results, an autoscaler that
owns the task count, a lock release that fails after the work is done, zones Fargate skips.

The realism layer (tests/support/realism.py) brings most of these behaviours back; the rest
are injected here with botocore hooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from deployer import aws as aws_module
from deployer import inventory, pipeline
from deployer.config import load
from deployer.errors import DeployError
from deployer.steps.network import NetworkStep
from tests.deployer.conftest import DEPLOYER_CREDENTIALS, PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.faults import FailNth, sample_distribution, snapshot
from tests.deployer.sweep import QuietEvents

STEPS = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)


class Notes(QuietEvents):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def step_note(self, step: str, message: str) -> None:
        self.notes.append(message)


def configured(tmp_path: Path, env: str = "staging", **replacements: str) -> Any:
    """A run whose deploy.toml has `old` replaced by `new` for each keyword (old=new)."""
    text = (ROOT / "deploy.toml").read_text()
    for old, new in replacements.values():
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "deploy.toml").write_text(text)
    run = make_run(env=env)
    run.config = load(tmp_path / "deploy.toml", env)
    return run


def test_up_right_after_down_waits_for_names_aws_still_holds(aws_env: dict[str, str]) -> None:
    """After `down` the SECRET_KEY secret is "scheduled for deletion" for a while, even when
    forced, and the service drains before its name is free: the next `up` waits for both
    names instead of failing."""
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    pipeline.down(make_run(), QuietEvents())
    run = make_run()
    run.progress = notes = Notes()
    pipeline.up(run, QuietEvents(), steps=STEPS)
    assert pipeline.plan(make_run(), STEPS) == []
    assert any("secret nnote/staging/secret-key is still being deleted" in n for n in notes.notes)
    assert any("ECS not ready for the service yet" in n for n in notes.notes), notes.notes


def test_up_after_an_interrupted_down_waits_for_the_database_to_go(
    aws_env: dict[str, str],
) -> None:
    """A `down` stopped while RDS deletes the instance leaves it `deleting`: the next `up`
    waits until the name is free, then creates the database again."""
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    lost_while_waiting = FailNth("DescribeDBInstances", 2)  # the first look after the delete
    with pytest.raises(DeployError):
        pipeline.down(make_run(hooks=lost_while_waiting.hooks()), QuietEvents())
    run = make_run()
    run.progress = notes = Notes()
    assert "after the one being deleted is gone" in str(pipeline.plan(make_run(), STEPS))
    pipeline.up(run, QuietEvents(), steps=STEPS)
    assert pipeline.plan(make_run(), STEPS) == []
    assert any("deleting DB instance nnote-staging" in n for n in notes.notes), notes.notes


def test_down_while_the_database_is_still_creating_waits_then_keeps_the_snapshot(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    """RDS refuses a final snapshot of a `creating` instance: `down` waits until it can,
    instead of taking the refusal for a deletion and polling for an hour."""
    stop_waiting = FailNth("DescribeDBInstances", 3)  # the first wait after CreateDBInstance
    with pytest.raises(pipeline.UpFailed):
        pipeline.up(make_run(hooks=stop_waiting.hooks()), QuietEvents(), rollback=False)
    run = configured(tmp_path, snapshot=("final_snapshot = false", "final_snapshot = true"))
    run.progress = notes = Notes()
    result = pipeline.down(run, QuietEvents())
    assert any("is creating; deleting it once RDS allows" in n for n in notes.notes), notes.notes
    assert [r.type for r in result.kept] == ["rds:snapshot"]
    assert result.leftovers == []


def test_down_refuses_a_failed_database_it_cannot_snapshot_before_deleting_anything(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    before = snapshot()

    def failed(parsed: dict[str, Any], **_: Any) -> None:
        for instance in parsed.get("DBInstances", []):
            instance["DBInstanceStatus"] = "failed"

    run = configured(tmp_path, snapshot=("final_snapshot = false", "final_snapshot = true"))
    run.aws.hooks.append(("after-call.rds.DescribeDBInstances", failed))
    with pytest.raises(pipeline.DownRefused) as refused:
        pipeline.down(run, QuietEvents())
    assert "nothing was deleted: DB instance nnote-staging is failed" in refused.value.message
    assert "db.final_snapshot = false" in refused.value.hint
    assert snapshot() == before


def test_down_with_a_final_snapshot_keeps_it_and_finds_no_leak(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """CopyTagsToSnapshot tags the final snapshot as ours: kept as asked, not a leak."""
    config = tmp_path / "deploy.toml"
    config.write_text(
        (ROOT / "deploy.toml")
        .read_text()
        .replace("final_snapshot = false", "final_snapshot = true")
    )
    assert cli("up", "--yes", "--image", PREBUILT_IMAGE, config=config).code == 0
    down = cli("down", "--yes", config=config)
    assert down.code == 0, down.text
    assert (
        "kept (db.final_snapshot, db.snapshot_before_migrate) (1):" in down.out
        and "rds:snapshot" in down.out
    )
    assert "leak audit: nothing left" in down.text


def test_down_deregisters_every_revision_past_the_first_page(aws_env: dict[str, str]) -> None:
    """ListTaskDefinitions answers 100 ARNs a page: after 100 deploys, all must go."""
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    ecs = boto3.client("ecs", region_name=REGION)
    current = ecs.describe_task_definition(taskDefinition="nnote-staging")["taskDefinition"]
    fields = ("family", "containerDefinitions", "cpu", "memory", "networkMode")
    for _ in range(105):
        ecs.register_task_definition(
            **{k: current[k] for k in fields}, requiresCompatibilities=["FARGATE"]
        )
    pipeline.down(make_run(), QuietEvents())
    left = ecs.list_task_definitions(familyPrefix="nnote-staging", status="ACTIVE")
    assert left["taskDefinitionArns"] == []


def test_autoscaler_owns_the_task_count_of_the_full_prod_config(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy.toml's prod as committed (two tasks, autoscaling 2-6): deployed, scaled out by
    the autoscaler, then a no-change `up` leaves the count alone and changes nothing."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # the moto server runs in this process
    pipeline.up(make_run(env="prod"), QuietEvents(), steps=STEPS)
    ecs = boto3.client("ecs", region_name=REGION)
    service = ecs.describe_services(cluster="nnote-prod", services=["nnote-prod"])["services"][0]
    assert service["desiredCount"] == 2
    ecs.update_service(cluster="nnote-prod", service="nnote-prod", desiredCount=5)  # scaled out
    assert pipeline.plan(make_run(env="prod"), STEPS) == []
    run = make_run(env="prod")
    pipeline.up(run, QuietEvents(), steps=STEPS)
    assert run.aws.log.mutating == 0
    service = ecs.describe_services(cluster="nnote-prod", services=["nnote-prod"])["services"][0]
    assert service["desiredCount"] == 5


def test_autoscaling_removed_from_the_settings_is_removed(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    def with_autoscaling() -> Any:
        return configured(
            tmp_path,
            scaling=("[env.staging]", "[env.staging]\nservice.autoscaling = { max_tasks = 3 }"),
        )

    pipeline.up(with_autoscaling(), QuietEvents(), steps=STEPS)
    changes = pipeline.plan(make_run(), STEPS)
    assert [(c.action, c.type) for c in changes] == [("delete", "autoscaling")]
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    assert scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []


def test_a_lock_release_that_fails_does_not_fail_a_finished_up(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything deployed; only deleting the lock parameter failed: the deploy succeeded,
    and the lock lapses by itself within its lease."""

    class LastReleaseFails(aws_module.Aws):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            fault = FailNth("DeleteParameter", 1, code="InternalServerError")
            super().__init__(*args, hooks=fault.hooks(), **kwargs)

    monkeypatch.setattr(aws_module, "Aws", LastReleaseFails)
    result = CliRunner().invoke(
        pipeline_app(),
        ["up", "--yes", "--config", str(ROOT / "deploy.toml"), "--image", PREBUILT_IMAGE],
        env={"COLUMNS": "200", **DEPLOYER_CREDENTIALS},
    )
    assert result.exit_code == 0, result.output
    assert "up: done" in result.output
    assert "warning: could not release the lock" in result.output
    assert "it lapses by itself within 120s" in result.output


def pipeline_app() -> Any:
    from deployer.cli import app

    return app


def test_leak_audit_sees_roles_listeners_repositories_and_subnet_groups(
    aws_env: dict[str, str],
) -> None:
    """Every type `status` lists is also audited: what survives a `down` is named."""
    run = make_run()
    pipeline.up(run, QuietEvents(), steps=STEPS)
    owned = {(r.type.replace("elbv2", "elasticloadbalancing"), r.id) for r in pipeline.status(run)}
    audited = {(r.type, r.id) for r in inventory.leftovers(run.aws, run.owner)}
    kinds = {kind for kind, _ in owned}
    assert {kind for kind, _ in audited} >= kinds - {
        "elasticloadbalancing:loadbalancer",  # status names these by DNS name, the audit by ARN
        "elasticloadbalancing:targetgroup",
        "elasticloadbalancing:listener",
        "ecs:service",
        "ecs:cluster",
    }
    assert {"iam:role", "elasticloadbalancing:listener", "ecr:repository", "rds:subgrp"} <= {
        kind for kind, _ in audited
    }


def test_subnets_go_to_zones_where_fargate_runs(aws_env: dict[str, str]) -> None:
    """Zone names map to different zones per account; Fargate skips apne1-az3 in Tokyo."""
    tokyo = {
        "ap-northeast-1a": "apne1-az3",
        "ap-northeast-1c": "apne1-az1",
        "ap-northeast-1d": "apne1-az2",
    }

    def this_account(parsed: dict[str, Any], **_: Any) -> None:
        parsed["AvailabilityZones"] = [
            {
                "ZoneName": name,
                "ZoneId": zone,
                "State": "available",
                "ZoneType": "availability-zone",
            }
            for name, zone in tokyo.items()
        ]

    asked: list[dict[str, Any]] = []
    run = make_run(
        hooks=[
            ("after-call.ec2.DescribeAvailabilityZones", this_account),
            ("provide-client-params.ec2.CreateSubnet", lambda params, **_: asked.append(params)),
        ],
        region="ap-northeast-1",
    )
    NetworkStep().apply(run, {})
    zones = [p.get("AvailabilityZoneId") or tokyo[p["AvailabilityZone"]] for p in asked]
    assert sorted(zones) == ["apne1-az1", "apne1-az2"]


def test_a_region_without_two_fargate_zones_is_named(aws_env: dict[str, str]) -> None:
    def one_zone(parsed: dict[str, Any], **_: Any) -> None:
        parsed["AvailabilityZones"] = parsed["AvailabilityZones"][:1]

    run = make_run(hooks=[("after-call.ec2.DescribeAvailabilityZones", one_zone)])
    with pytest.raises(DeployError, match="fewer than two available zones where Fargate runs"):
        NetworkStep().apply(run, {})


def test_task_roles_carry_the_boundary_and_older_ones_get_it(aws_env: dict[str, str]) -> None:
    """Every role `up` makes has the permissions boundary; a role made before (without it) is
    planned as a change and given it, and nothing else is granted to it first."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(  # as an older nnote-deploy made it
        RoleName="nnote-staging-task",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        Tags=make_run().owner.tags("runtime"),
    )
    changes = pipeline.plan(make_run(), STEPS)
    assert ("update", "iam:role", "nnote-staging-task") in {
        (c.action, c.type, c.name) for c in changes
    }
    pipeline.up(make_run(), QuietEvents(), steps=STEPS)
    boundary = "arn:aws:iam::123456789012:policy/nnote-deploy-boundary"
    for name in ("nnote-staging-task", "nnote-staging-execution"):
        role = iam.get_role(RoleName=name)["Role"]
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary, name
    assert pipeline.plan(make_run(), STEPS) == []


def test_a_changed_cpu_target_is_planned_and_applied(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    def with_target(percent: int) -> Any:
        setting = f"service.autoscaling = {{ max_tasks = 3, cpu_target = {percent} }}"
        return configured(tmp_path, scaling=("[env.staging]", f"[env.staging]\n{setting}"))

    pipeline.up(with_target(60), QuietEvents(), steps=STEPS)
    changes = pipeline.plan(with_target(75), STEPS)
    assert [(c.type, c.detail) for c in changes] == [("autoscaling", "1-3 tasks, CPU 75%")]
    pipeline.up(with_target(75), QuietEvents(), steps=STEPS)
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    policy = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"][0]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 75.0
    assert pipeline.plan(with_target(75), STEPS) == []


# -- HTTPS: CloudFront, ACM and Route 53 as the deployer meets them ---------------------------

OWNER_TAGS = [
    {"Key": "nnote:app", "Value": "nnote"},
    {"Key": "nnote:env", "Value": "staging"},
    {"Key": "nnote:managed-by", "Value": "nnote-deploy"},
]
DISTRIBUTION_CONFIG = sample_distribution("nnote-staging-run-1", "s3cr3t")


def deployer(service: str, region: str = REGION) -> Any:
    """A client with the deployer's key: the realism layer holds its calls to AWS's rules."""
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=DEPLOYER_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DEPLOYER_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def refusal(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return (
        raised.value.response["Error"]["Code"],
        raised.value.response["ResponseMetadata"]["HTTPStatusCode"],
    )


def create_distribution(config: dict[str, Any] | None = None) -> tuple[str, str]:
    made = deployer("cloudfront", "us-east-1").create_distribution_with_tags(
        DistributionConfigWithTags={
            "DistributionConfig": config or DISTRIBUTION_CONFIG,
            "Tags": {"Items": OWNER_TAGS},
        }
    )
    return made["Distribution"]["Id"], made["ETag"]


class Captured(Exception):
    """A request stopped just before it would have been sent."""


def test_rest_xml_requests_are_read_back_as_boto3_took_them() -> None:
    """CloudFront and Route 53 speak REST-XML: the realism layer reads each call from its
    method, path, query string, headers and XML body, so the policy and AWS's rules apply to
    it as to any other (unread, it would be refused as unreadable)."""
    import botocore.session

    from tests.support.aws_wire import read_call

    session = botocore.session.get_session()
    session.set_credentials("AKIAEXAMPLE", "secret")
    change = {
        "Action": "CREATE",
        "ResourceRecordSet": {
            "Name": "_x.notes.example.com.",
            "Type": "CNAME",
            "TTL": 300,
            "ResourceRecords": [{"Value": "_y.acm-validations.aws."}],
        },
    }
    alias = {
        "Action": "DELETE",
        "ResourceRecordSet": {
            "Name": "notes.example.com.",
            "Type": "A",
            "AliasTarget": {
                "HostedZoneId": "Z2",
                "DNSName": "d.example.net.",
                "EvaluateTargetHealth": False,
            },
        },
    }
    tagged = {"DistributionConfig": DISTRIBUTION_CONFIG, "Tags": {"Items": OWNER_TAGS}}
    cases = [
        ("cloudfront", "create_distribution_with_tags", {"DistributionConfigWithTags": tagged}),
        (
            "cloudfront",
            "update_distribution",
            {"Id": "E1", "IfMatch": "E2", "DistributionConfig": DISTRIBUTION_CONFIG},
        ),
        ("cloudfront", "delete_distribution", {"Id": "E1", "IfMatch": "E2"}),
        ("cloudfront", "list_distributions", {"Marker": "m", "MaxItems": "10"}),
        (
            "cloudfront",
            "list_tags_for_resource",
            {"Resource": "arn:aws:cloudfront::1:distribution/E1"},
        ),
        ("route53", "list_hosted_zones_by_name", {"DNSName": "example.com", "MaxItems": "1"}),
        (
            "route53",
            "list_resource_record_sets",
            {"HostedZoneId": "Z1", "StartRecordName": "a.example.com.", "MaxItems": "1"},
        ),
        (
            "route53",
            "change_resource_record_sets",
            {"HostedZoneId": "/hostedzone/Z1", "ChangeBatch": {"Changes": [change, alias]}},
        ),
    ]
    for service, method, params in cases:
        client = session.create_client(
            service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9"
        )
        sent: list[Any] = []

        def capture(request: Any, _sent: list[Any] = sent, **_: Any) -> None:
            _sent.append(request)
            raise Captured  # nothing leaves this process

        client.meta.events.register("before-send", capture)
        with pytest.raises(Captured):
            getattr(client, method)(**params)
        request = sent[0]
        path, _, query = request.url.removeprefix("http://127.0.0.1:9").partition("?")
        environ = {
            "REQUEST_METHOD": request.method,
            "PATH_INFO": path,
            "RAW_URI": request.url.removeprefix("http://127.0.0.1:9"),
            "QUERY_STRING": query,
            **{
                "HTTP_" + k.upper().replace("-", "_"): v.decode() if isinstance(v, bytes) else v
                for k, v in request.headers.items()
            },
        }
        call = read_call(environ, request.body or b"")
        assert call is not None, method
        expected = json.loads(json.dumps(params))
        if "HostedZoneId" in expected:  # botocore strips the prefix client-side
            expected["HostedZoneId"] = expected["HostedZoneId"].removeprefix("/hostedzone/")
        assert (call.service, call.params) == (service, expected), method


def test_a_cloudfront_call_is_held_to_the_policy(aws_env: dict[str, str], realism: Any) -> None:
    """A distribution without our tags is refused, as AWS would under docs/iam-policy.json."""
    with pytest.raises(ClientError) as refused:
        deployer("cloudfront", "us-east-1").create_distribution(
            DistributionConfig=DISTRIBUTION_CONFIG
        )
    assert refusal(refused) == ("AccessDenied", 403)
    assert realism.denials == ["cloudfront:CreateDistribution on *"]
    realism.denials.clear()  # the denial was the point


def test_a_distribution_deploys_for_a_while_and_changes_only_with_its_etag(
    aws_env: dict[str, str],
) -> None:
    """InProgress for a few looks after a change; deleted only disabled and deployed; every
    change needs the current ETag, which each update replaces."""
    cloudfront = deployer("cloudfront", "us-east-1")
    ident, etag = create_distribution()
    looks = [cloudfront.get_distribution(Id=ident)["Distribution"]["Status"] for _ in range(4)]
    assert looks == ["InProgress", "InProgress", "InProgress", "Deployed"]
    assert cloudfront.get_distribution(Id=ident)["ETag"] == etag
    with pytest.raises(ClientError) as refused:
        cloudfront.delete_distribution(Id=ident)
    assert refusal(refused) == ("InvalidIfMatchVersion", 400)
    with pytest.raises(ClientError) as refused:
        cloudfront.delete_distribution(Id=ident, IfMatch="E2QWRUHAPOMQZL")
    assert refusal(refused) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as refused:
        cloudfront.delete_distribution(Id=ident, IfMatch=etag)
    assert refusal(refused) == ("DistributionNotDisabled", 409)  # still enabled

    current = cloudfront.get_distribution_config(Id=ident)
    disabled = {**current["DistributionConfig"], "Enabled": False}
    updated = cloudfront.update_distribution(
        Id=ident, IfMatch=current["ETag"], DistributionConfig=disabled
    )
    assert updated["ETag"] != etag and updated["Distribution"]["Status"] == "InProgress"
    with pytest.raises(ClientError) as refused:
        cloudfront.update_distribution(Id=ident, IfMatch=etag, DistributionConfig=disabled)
    assert refusal(refused) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as refused:
        cloudfront.delete_distribution(Id=ident, IfMatch=updated["ETag"])
    assert refusal(refused) == ("DistributionNotDisabled", 409)  # disabled, not yet deployed
    while cloudfront.get_distribution(Id=ident)["Distribution"]["Status"] != "Deployed":
        pass
    cloudfront.delete_distribution(Id=ident, IfMatch=updated["ETag"])
    listed = cloudfront.list_distributions()["DistributionList"]
    assert listed.get("Items", []) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"Comment": "x" * 129}, "InvalidArgument"),
        ({"Origins": {**DISTRIBUTION_CONFIG["Origins"], "Quantity": 2}}, "InconsistentQuantities"),
    ],
)
def test_a_distribution_config_is_held_to_cloudfronts_limits(
    aws_env: dict[str, str], change: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as refused:
        create_distribution({**DISTRIBUTION_CONFIG, **change})
    assert refusal(refused) == (code, 400)


def test_a_distributions_caller_reference_never_changes(aws_env: dict[str, str]) -> None:
    cloudfront = deployer("cloudfront", "us-east-1")
    ident, etag = create_distribution()
    with pytest.raises(ClientError) as refused:
        cloudfront.update_distribution(
            Id=ident,
            IfMatch=etag,
            DistributionConfig={**DISTRIBUTION_CONFIG, "CallerReference": "another"},
        )
    assert refusal(refused) == ("IllegalUpdate", 400)


def test_the_tagging_api_lists_distributions_in_us_east_1_only(aws_env: dict[str, str]) -> None:
    """CloudFront is global: AWS's tagging API lists distributions (and, for a while, a deleted
    one) from us-east-1 only, and only when ResourceTypeFilters allow them."""
    ident, _etag = create_distribution()
    arn = f"arn:aws:cloudfront::123456789012:distribution/{ident}"
    ours = [{"Key": "nnote:managed-by", "Values": ["nnote-deploy"]}]

    def listed(region: str, kinds: list[str]) -> list[str]:
        found = deployer("resourcegroupstaggingapi", region).get_resources(
            TagFilters=ours, ResourceTypeFilters=kinds
        )
        return [item["ResourceARN"] for item in found["ResourceTagMappingList"]]

    assert listed("us-east-1", ["cloudfront:distribution"]) == [arn]
    assert listed("us-east-1", ["acm:certificate"]) == []
    assert arn not in listed(REGION, [])


HOSTED_ZONE = "example.com"


def hosted_zone() -> str:
    """The user's hosted zone (made by the tests: the deployer never makes one)."""
    zone = boto3.client("route53", region_name="us-east-1").create_hosted_zone(
        Name=HOSTED_ZONE, CallerReference="user"
    )
    return str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]


def change_records(zone: str, *changes: tuple[str, dict[str, Any]]) -> None:
    deployer("route53").change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={"Changes": [{"Action": a, "ResourceRecordSet": r} for a, r in changes]},
    )


def cname(name: str, value: str, ttl: int = 300) -> dict[str, Any]:
    return {"Name": name, "Type": "CNAME", "TTL": ttl, "ResourceRecords": [{"Value": value}]}


def test_route53_creates_only_new_records_and_deletes_only_exact_ones(
    aws_env: dict[str, str],
) -> None:
    """A batch holds as a whole or changes nothing: CREATE of an existing record, DELETE of
    a missing one or with other values, a CNAME beside another record of its name."""
    zone = hosted_zone()
    record = cname("_v.notes.example.com.", "_a.acm-validations.aws.")
    change_records(zone, ("CREATE", record))
    refusals = {
        "create again": [("CREATE", record)],
        "other TTL": [("DELETE", {**record, "TTL": 60})],
        "other value": [("DELETE", cname("_v.notes.example.com.", "_b.acm-validations.aws."))],
        "missing": [("DELETE", cname("_w.notes.example.com.", "_a.acm-validations.aws."))],
        "beside a CNAME": [
            ("CREATE", {**cname("_v.notes.example.com.", "x"), "Type": "A", "TTL": 60}),
        ],
        "atomic": [("CREATE", cname("new.example.com.", "x.example.net.")), ("CREATE", record)],
    }
    messages = {}
    for what, changes in refusals.items():
        with pytest.raises(ClientError) as refused:
            change_records(zone, *changes)
        assert refusal(refused) == ("InvalidChangeBatch", 400), what
        messages[what] = refused.value.response["Error"]["Message"]
    assert "but it already exists" in messages["create again"]
    assert "do not match the current values" in messages["other TTL"]
    assert "but it was not found" in messages["missing"]
    listed = boto3.client("route53", region_name="us-east-1").list_resource_record_sets(
        HostedZoneId=zone
    )["ResourceRecordSets"]
    assert "new.example.com." not in {r["Name"] for r in listed}  # the batch changed nothing
    change_records(zone, ("DELETE", record))  # exactly as created: deleted


def test_acm_gives_the_validation_record_late_and_issues_once_it_is_in_dns(
    aws_env: dict[str, str],
) -> None:
    """No validation options at first, then no record in them; the certificate waits for its
    record in the hosted zone, then is issued a couple of describes later."""
    zone = hosted_zone()
    acm = deployer("acm")
    arn = acm.request_certificate(
        DomainName="notes.example.com",
        ValidationMethod="DNS",
        IdempotencyToken="run1",
        Tags=OWNER_TAGS,
    )["CertificateArn"]

    def look() -> tuple[str, dict[str, str] | None]:
        found = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        options = found.get("DomainValidationOptions", [{}])
        return found["Status"], options[0].get("ResourceRecord")

    first = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert "DomainValidationOptions" not in first
    assert look()[1] is None
    statuses = []
    for _ in range(3):
        status, record = look()
        statuses.append(status)
    assert record is not None and statuses == ["PENDING_VALIDATION"] * 3  # no record in DNS
    change_records(zone, ("CREATE", cname(record["Name"], record["Value"])))
    assert [look()[0] for _ in range(3)] == ["PENDING_VALIDATION", "PENDING_VALIDATION", "ISSUED"]
    summaries = acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
    assert [s["CertificateArn"] for s in summaries] == [arn]


def test_a_certificate_on_a_listener_cannot_be_deleted(aws_env: dict[str, str]) -> None:
    """ResourceInUseException while a listener uses it, and a moment after it lets go."""
    acm = deployer("acm")
    arn = acm.request_certificate(
        DomainName="notes.example.com", ValidationMethod="DNS", Tags=OWNER_TAGS
    )["CertificateArn"]
    ec2, elb = boto3.client("ec2", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    lb = elb.create_load_balancer(Name="nnote-staging", Subnets=subnets)["LoadBalancers"][0]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Port=443,
        Protocol="HTTPS",
        Certificates=[{"CertificateArn": arn}],
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        ],
        Tags=OWNER_TAGS,
    )["Listeners"][0]
    with pytest.raises(ClientError) as refused:
        acm.delete_certificate(CertificateArn=arn)
    assert refusal(refused) == ("ResourceInUseException", 400)
    deployer("elbv2").delete_listener(ListenerArn=listener["ListenerArn"])
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            acm.delete_certificate(CertificateArn=arn)
        assert refusal(refused) == ("ResourceInUseException", 400)
    acm.delete_certificate(CertificateArn=arn)


def test_a_request_cut_short_by_a_killed_client_is_no_denial(
    aws_env: dict[str, str], realism: Any
) -> None:
    """kill -9 mid-send leaves the server a body shorter than its Content-Length: AWS never
    authorizes such a request, so the realism layer records nothing (it used to count it as
    unreadable, failing the kill -9 test's teardown at random)."""
    import socket
    from urllib.parse import urlsplit

    endpoint = urlsplit(aws_env["AWS_ENDPOINT_URL"])
    with socket.create_connection((endpoint.hostname, endpoint.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
            b"Authorization: AWS4-HMAC-SHA256 Credential=AKIANNOTEDEPLOYER001/20261202/"
            b"eu-west-1/rds/aws4_request, SignedHeaders=host, Signature=0\r\n"
            b"Content-Length: 400\r\n\r\nVers"
        )
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1024)
    assert realism.denials == []
