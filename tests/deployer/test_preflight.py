"""`verify` and the pre-flight checks `up` runs before it creates anything: quotas, what the
region sells, zones where Fargate runs, the Docker engine and the image's base."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from tests.deployer.conftest import REGION, ROOT
from tests.deployer.test_cli_e2e import owned
from tests.support.realism import Realism


def test_verify_on_a_fresh_account_passes_every_check(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("verify")
    assert result.code == 0, result.text
    for name in (
        "quota: VPCs per Region: 1 of 5 used; up needs 1 more",  # the default VPC
        "quota: Application Load Balancers per Region: 0 of 50 used",
        "quota: Fargate On-Demand vCPU resource count: 6 vCPU; up needs up to 0.5 vCPU",
        "quota: RDS DB instances: 0 of 40 used",
        "quota: Elastic IP addresses: none needed",
        "zones where Fargate runs: euw1-az1, euw1-az2",
        "database: MySQL 8.4.6 on db.t4g.micro: offered in eu-west-1a",
        "Docker engine: not needed: a prebuilt image is deployed",
        "prebuilt image: 127.0.0.1:5000/nnote-staging@sha256:",  # not ECR: not looked up
        "permissions boundary of task roles: nnote-deploy-boundary",
        "HTTPS: CloudFront in front; the load balancer admits pl-",
    ):
        assert name in result.text, name
    assert "verify: all 11 checks passed" in result.text


def test_a_full_quota_stops_up_before_anything_is_created(cli, realism: Realism) -> None:  # type: ignore[no-untyped-def]
    boto3.client("ec2", region_name=REGION).create_vpc(CidrBlock="10.9.0.0/16")
    realism.state["quotas"] = {("vpc", "L-F678F1CE"): 2.0}  # the default VPC and that one
    checked = cli("verify")
    assert checked.code == 1
    assert "FAIL quota: VPCs per Region: 2 of 2 used; up needs 1 more" in checked.text
    assert "ask for more in Service Quotas (vpc L-F678F1CE)" in checked.text
    up = cli("up", "--yes")
    assert up.code == 1
    assert "pre-flight check failed, nothing was created: quota: VPCs per Region" in up.text
    assert owned(cli) == []


def test_a_fargate_quota_below_the_deploy_peak_is_named(  # type: ignore[no-untyped-def]
    cli, realism: Realism
) -> None:
    """prod runs up to 6 tasks of 0.25 vCPU, twice that while a deploy replaces them: 3 vCPU."""
    realism.state["quotas"] = {("fargate", "L-3032A538"): 2.0}
    result = cli("verify", "--env", "prod")
    assert result.code == 1
    assert "FAIL quota: Fargate On-Demand vCPU resource count: 2 vCPU; up needs up to 3 vCPU" in (
        result.text
    )


def test_a_database_class_the_region_does_not_sell_stops_up_first(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text(
        (ROOT / "deploy.toml")
        .read_text()
        .replace('instance_class = "db.t4g.micro"', 'instance_class = "db.x9.tiny"')
    )
    up = cli("up", "--yes", "--image", "127.0.0.1:5000/x@sha256:" + "0" * 64, config=config)
    assert up.code == 1
    assert "database: MySQL 8.4.6 on db.x9.tiny: not offered in eu-west-1" in up.text
    assert "hint: choose another db.instance_class" in up.text
    assert owned(cli) == []


def test_a_converged_up_runs_no_check(cli, realism: Realism) -> None:  # type: ignore[no-untyped-def]
    assert cli("up", "--yes").code == 0
    first = len(realism.calls)
    assert any(c.service == "service-quotas" for c in realism.calls), "the first up checked"
    assert cli("up", "--yes").code == 0
    checks = ("service-quotas", "DescribeOrderableDBInstanceOptions", "GetPolicy")
    later = [c for c in realism.calls[first:] if c.service in checks or c.operation in checks]
    assert later == [], [c.operation for c in later]


def test_verify_writes_nothing_and_is_allowed_by_the_policy(cli, realism: Realism) -> None:  # type: ignore[no-untyped-def]
    assert cli("verify").code == 0
    assert realism.denials == []
    mutating = [c for c in realism.calls if not c.operation.startswith(("Describe", "Get", "List"))]
    assert mutating == [], [c.operation for c in mutating]
    assert json.loads(cli("status", "--json").out)["resources"] == []


def test_up_before_bootstrap_names_the_missing_boundary_and_creates_nothing(cli) -> None:  # type: ignore[no-untyped-def]
    iam = boto3.client("iam", region_name=REGION)
    iam.delete_policy(PolicyArn="arn:aws:iam::123456789012:policy/nnote-deploy-boundary")
    up = cli("up", "--yes")
    assert up.code == 1
    assert (
        "permissions boundary of task roles: the IAM policy nnote-deploy-boundary does not exist"
        in up.text
    )
    assert "hint: run `nnote-deploy bootstrap` once as an administrator" in up.text
    assert owned(cli) == []


def test_up_of_a_preview_without_the_preview_boundary_names_it_and_creates_nothing(cli) -> None:  # type: ignore[no-untyped-def]
    """An account bootstrapped without --preview-env (or before previews had a boundary of
    their own): a preview's roles may not get the wider one instead, so `up` stops first."""
    iam = boto3.client("iam", region_name=REGION)
    iam.delete_policy(PolicyArn="arn:aws:iam::123456789012:policy/nnote-preview-deploy-boundary")
    up = cli("up", "--yes", "--env", "pr-3")
    assert up.code == 1
    assert (
        "permissions boundary of task roles: the IAM policy nnote-preview-deploy-boundary does "
        "not exist" in up.text
    )
    assert "hint: run `nnote-deploy bootstrap --preview-env preview` once" in up.text
    status = cli("status", "--env", "pr-3", "--json")
    assert status.code == 0 and json.loads(status.out)["resources"] == [], status.text
