"""Previews: `pr-<N>` made from deploy.toml's [preview] template, with an expiry on every
resource that each `up` renews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from deployer import pipeline, previews
from deployer.config import load
from deployer.errors import ConfigError
from deployer.inventory import EXPIRES, Owner
from deployer.steps.base import Run
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.sweep import QuietEvents

# -- the template ---------------------------------------------------------------------------


def test_a_pr_env_is_made_from_the_preview_template() -> None:
    preview = load(ROOT / "deploy.toml", "pr-42")
    staging = load(ROOT / "deploy.toml", "staging")
    assert preview.preview and not staging.preview
    db, service = preview.settings.db, preview.settings.service
    assert (db.instance_class, db.multi_az, db.deletion_protection, db.final_snapshot) == (
        "db.t4g.micro",
        False,
        False,
        False,
    )
    assert db.backup_retention_days == 0
    assert (service.desired_count, service.log_retention_days) == (1, 1)
    assert service.rollout_timeout_seconds == 600
    assert preview.settings.registry.keep_images == 2
    # Every preview shares one block: separate VPCs, never peered.
    assert load(ROOT / "deploy.toml", "pr-99999").settings.network == preview.settings.network


def _config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(
        'app = "nnote"\nregion = "eu-west-1"\n[env.staging]\n[preview]\n'
        "service.log_retention_days = 1\n" + extra,
        encoding="utf-8",
    )
    return path


def test_a_pr_env_named_under_env_is_no_preview(tmp_path: Path) -> None:
    path = _config(tmp_path, "[env.pr-5]\nservice.log_retention_days = 7\n")
    declared = load(path, "pr-5")
    assert not declared.preview and declared.settings.service.log_retention_days == 7
    assert load(path, "pr-6").settings.service.log_retention_days == 1


@pytest.mark.parametrize("name", ["pr-x", "pr-0", "pr-007", "pr-", "pr--1", "qa"])
def test_a_name_that_is_neither_declared_nor_a_preview_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown environment") as raised:
        load(ROOT / "deploy.toml", name)
    assert "pr-<N>" in (raised.value.hint or "")


def test_the_longest_preview_names_fit_aws_name_limits() -> None:
    assert load(ROOT / "deploy.toml", "pr-99999").prefix == "nnote-pr-99999"
    with pytest.raises(ConfigError, match="too long") as raised:
        load(ROOT / "deploy.toml", "pr-" + "9" * 20)
    assert "19 digits" in (raised.value.hint or "")


def test_a_bad_preview_template_is_named_where_it_was_written(tmp_path: Path) -> None:
    path = _config(tmp_path, "db.instance_clas = 'db.t4g.micro'\n")
    with pytest.raises(ConfigError) as raised:
        load(path, "staging")  # every table is checked, whichever env is chosen
    assert any(p.startswith("preview.db.instance_clas: unknown key") for p in raised.value.problems)


# -- the time to live -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "hours"), [("1h", 1), ("36h", 36), ("2d", 48), ("90d", 90 * 24)])
def test_ttl_takes_hours_or_days(text: str, hours: int) -> None:
    assert previews.parse_ttl(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["5q", "0d", "3", "d", "-1d", "91d", "1.5d", "3 days"])
def test_a_bad_ttl_is_refused_with_a_hint(text: str) -> None:
    with pytest.raises(ConfigError, match="--ttl") as raised:
        previews.parse_ttl(text)
    assert "12h" in (raised.value.hint or "")


def test_expiry_is_utc_to_the_minute() -> None:
    now = datetime(2026, 12, 3, 4, 20, 59, 999, tzinfo=UTC)
    assert previews.expiry(now) == "2026-12-06T04:20:00Z"
    assert previews.expiry(now, timedelta(hours=2)) == "2026-12-03T06:20:00Z"
    assert previews.parse_expiry("2026-12-06T04:20:00Z") == datetime(2026, 12, 6, 4, 20, tzinfo=UTC)
    assert previews.parse_expiry("soon") is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("up", "--env", "pr-x", "--yes"), "unknown environment 'pr-x'"),
        (("up", "--env", "pr-3", "--yes", "--ttl", "5q"), "--ttl '5q' is not a time to live"),
        (("up", "--env", "staging", "--yes", "--ttl", "2d"), "--ttl is for previews only"),
        (("cost", "--env", "pr-x"), "unknown environment 'pr-x'"),
    ],
)
def test_bad_preview_input_is_one_line_and_exit_3(cli, args: tuple[str, ...], says: str) -> None:  # type: ignore[no-untyped-def]
    done = cli(*args)
    assert done.code == 3, done.text
    assert says in done.err and "hint:" in done.err
    assert "Traceback" not in done.text and "AWS API calls" not in done.err


def test_cost_works_for_a_preview(cli) -> None:  # type: ignore[no-untyped-def]
    done = cli("cost", "--env", "pr-1", "--json")
    assert done.code == 0, done.text
    import json

    estimate = json.loads(done.out)
    assert estimate["env"] == "pr-1" and estimate["monthly"] > 0


# -- expiry on every resource, renewed by each up ------------------------------------------


def _preview_run(env: str, expires: str) -> Run:
    run = make_run(env)
    run.owner = Owner(run.owner.app, env, run.owner.run_id, expires)
    return run


def _expiries(env: str) -> dict[str, str | None]:
    """Every resource tagged for `env`, as the tagging API, IAM, ECR and RDS show it."""
    found: dict[str, str | None] = {}
    for region in (REGION, "us-east-1"):
        tagging = boto3.client("resourcegroupstaggingapi", region_name=region)
        listed = tagging.get_resources(TagFilters=[{"Key": "nnote:env", "Values": [env]}])
        for item in listed["ResourceTagMappingList"]:
            if ":snapshot:rds:" in item["ResourceARN"]:
                continue  # RDS's automated backup: copies the instance's tags, goes with it
            tags = {t["Key"]: t["Value"] for t in item["Tags"]}
            found[item["ResourceARN"]] = tags.get(EXPIRES)
    iam = boto3.client("iam", region_name=REGION)
    for kind in ("execution", "task"):
        tags = iam.list_role_tags(RoleName=f"nnote-{env}-{kind}")["Tags"]
        found[f"role/{kind}"] = {t["Key"]: t["Value"] for t in tags}.get(EXPIRES)
    ecr = boto3.client("ecr", region_name=REGION)
    repo = ecr.describe_repositories(repositoryNames=[f"nnote-{env}"])["repositories"][0]
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    found["ecr"] = {t["Key"]: t["Value"] for t in tags}.get(EXPIRES)
    rds = boto3.client("rds", region_name=REGION)
    group = f"arn:aws:rds:{REGION}:123456789012:subgrp:nnote-{env}"
    tags = rds.list_tags_for_resource(ResourceName=group)["TagList"]
    found["subgrp"] = {t["Key"]: t["Value"] for t in tags}.get(EXPIRES)
    found.update(_listener_expiries(env))
    secrets = boto3.client("secretsmanager", region_name=REGION)
    tags = secrets.describe_secret(SecretId=f"nnote/{env}/secret-key").get("Tags", [])
    found["secret"] = {t["Key"]: t["Value"] for t in tags}.get(EXPIRES)
    return found


def _listener_expiries(env: str) -> dict[str, str | None]:
    """Listeners and their rules, which moto's tagging API does not list."""
    elb = boto3.client("elbv2", region_name=REGION)
    (balancer,) = elb.describe_load_balancers(Names=[f"nnote-{env}"])["LoadBalancers"]
    arns = []
    for listener in elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
        "Listeners"
    ]:
        rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        arns += [listener["ListenerArn"], *(r["RuleArn"] for r in rules if not r["IsDefault"])]
    assert arns
    return {
        d["ResourceArn"]: {t["Key"]: t["Value"] for t in d["Tags"]}.get(EXPIRES)
        for d in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]
    }


def test_every_resource_of_a_preview_carries_its_expiry_and_up_renews_it(
    aws_env: dict[str, str],
) -> None:
    first, later = "2026-12-05T04:00:00Z", "2026-12-09T05:30:00Z"
    run = _preview_run("pr-7", first)
    pipeline.up(run, QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE))
    made = _expiries("pr-7")
    assert len(made) >= 20 and set(made.values()) == {first}, made

    renewed = previews.renew(run.aws, _preview_run("pr-7", later).owner)
    assert renewed.expires == later and renewed.renewed > 15 and renewed.unchanged == 0
    assert set(_expiries("pr-7").values()) == {later}


def test_renewing_again_is_idempotent_and_makes_no_tag_call(aws_env: dict[str, str]) -> None:
    expires = "2026-12-06T00:00:00Z"
    pipeline.up(_preview_run("pr-8", expires), QuietEvents())
    again = _preview_run("pr-8", expires)
    renewal = previews.renew(again.aws, again.owner)
    assert renewal.renewed == 0 and renewal.unchanged > 0
    assert again.aws.log.mutating == 0


def test_non_previews_get_no_expiry(aws_env: dict[str, str]) -> None:
    pipeline.up(make_run("staging"), QuietEvents())
    assert set(_expiries_of_base("staging").values()) == {None}


def _expiries_of_base(env: str) -> dict[str, str | None]:
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    listed = tagging.get_resources(TagFilters=[{"Key": "nnote:env", "Values": [env]}])
    return {
        item["ResourceARN"]: {t["Key"]: t["Value"] for t in item["Tags"]}.get(EXPIRES)
        for item in listed["ResourceTagMappingList"]
    }


def test_the_cli_up_of_a_preview_tags_and_renews(cli) -> None:  # type: ignore[no-untyped-def]
    started = datetime.now(UTC)
    done = cli("up", "--env", "pr-9", "--yes", "--ttl", "2d")
    assert done.code == 0, done.text
    assert "preview: expires" in done.err
    values = {v for v in _expiries("pr-9").values()}
    assert len(values) == 1, values
    (stamp,) = values
    when = previews.parse_expiry(stamp)
    assert when is not None
    assert timedelta(hours=47) < when - started <= timedelta(days=2)
    again = cli("up", "--env", "pr-9", "--yes")  # nothing to change: only the expiry moves
    assert again.code == 0, again.text
    (renewed,) = {v for v in _expiries("pr-9").values()}
    assert previews.parse_expiry(renewed) - when >= timedelta(hours=23)  # type: ignore[operator]


def test_verify_counts_a_previews_own_vpc_as_already_there(aws_env: dict[str, str]) -> None:
    """Five VPCs is the default quota: with the region full, a preview that exists passes
    the VPC check (its next `up` makes none), a new one is told to free one up."""
    from deployer import preflight

    pipeline.up(_preview_run("pr-1", "2026-12-06T00:00:00Z"), QuietEvents())
    ec2 = boto3.client("ec2", region_name=REGION)
    while len(ec2.describe_vpcs()["Vpcs"]) < 5:
        ec2.create_vpc(CidrBlock="10.90.0.0/16")
    vpc_probe = [p for p in preflight.PROBES if p.name == "quota: VPCs per Region"]
    (existing,) = preflight.run_all(make_run("pr-1"), None, vpc_probe)
    (new,) = preflight.run_all(make_run("pr-2"), None, vpc_probe)
    assert existing.ok and "5 of 5 used; up needs 0 more" in existing.detail
    assert not new.ok and "up needs 1 more" in new.detail


# -- gc ---------------------------------------------------------------------------------------

PAST, FUTURE = "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"


def test_environments_judges_only_undeclared_previews_by_their_latest_expiry() -> None:
    listing = {
        "staging": [("arn:aws:ec2:eu-west-1:1:vpc/vpc-1", {EXPIRES: PAST})],
        "pr-1": [("arn:aws:ec2:eu-west-1:1:vpc/vpc-2", {EXPIRES: PAST})],
        "pr-2": [
            ("arn:aws:ec2:eu-west-1:1:vpc/vpc-3", {EXPIRES: PAST}),
            ("arn:aws:ecs:eu-west-1:1:cluster/nnote-pr-2", {EXPIRES: FUTURE}),
        ],
        "pr-3": [("arn:aws:ec2:eu-west-1:1:vpc/vpc-4", {EXPIRES: PAST})],  # declared
        "pr-4": [("arn:aws:ec2:eu-west-1:1:vpc/vpc-5", {})],  # no expiry: never judged
        "pr-5": [("arn:aws:cloudfront::1:distribution/E1", {EXPIRES: PAST})],  # elsewhere
    }
    now = datetime(2026, 12, 3, tzinfo=UTC)
    found = {e.name: e for e in previews.environments(listing, frozenset({"staging", "pr-3"}))}
    assert sorted(found) == ["pr-1", "pr-2", "pr-3", "pr-4", "staging"]
    assert [n for n, e in found.items() if e.expired(now)] == ["pr-1"]
    assert not found["staging"].preview and not found["pr-3"].preview


def _deploy_preview(env: str, expires: str) -> None:
    """The whole environment: network, database, registry, roles, load balancer, CloudFront,
    service (a prebuilt image)."""
    steps = pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    pipeline.up(_preview_run(env, expires), QuietEvents(), steps=steps)


def _rows_of(state: dict[str, list[str]], *marks: str) -> set[tuple[str, str]]:
    return {
        (kind, row) for kind, rows in state.items() for row in rows if any(m in row for m in marks)
    }


def test_gc_deletes_only_the_expired_preview(cli) -> None:  # type: ignore[no-untyped-def]
    from deployer.inventory import leftovers
    from tests.deployer.faults import snapshot

    pipeline.up(
        make_run("staging"), QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    )
    _deploy_preview("pr-1", PAST)
    _deploy_preview("pr-2", FUTURE)
    ec2 = boto3.client("ec2", region_name=REGION)
    staging_vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:nnote:env", "Values": ["staging"]}])
    ec2.create_tags(  # someone marks staging as expired: gc must not care
        Resources=[staging_vpc["Vpcs"][0]["VpcId"]], Tags=[{"Key": EXPIRES, "Value": PAST}]
    )
    before = snapshot()
    bystanders = _rows_of(before, '"staging"', "nnote-staging", '"pr-2"', "nnote-pr-2")
    assert len(bystanders) > 10

    listed = cli("gc", "--dry-run", "--config", str(ROOT / "deploy.toml"))
    assert listed.code == 0, listed.text
    assert "pr-1\texpired\t2026-01-01T00:00:00Z" in listed.out
    assert "pr-2\tlive\t2099-01-01T00:00:00Z" in listed.out
    assert "staging" not in listed.out and "1 expired preview(s) (dry run)" in listed.err
    assert snapshot() == before  # a dry run deletes nothing

    done = cli("gc", "--yes", "--config", str(ROOT / "deploy.toml"))
    assert done.code == 0, done.text
    assert "leak audit: nothing left" in done.err and "gc: deleted 1 expired preview(s)" in done.err
    assert "nnote-pr-1" in done.out and "nnote-pr-2" not in done.out
    assert leftovers(make_run("pr-1").aws, Owner("nnote", "pr-1", "audit")) == []
    after = snapshot()
    assert bystanders <= _rows_of(after, '"staging"', "nnote-staging", '"pr-2"', "nnote-pr-2")
    assert not _rows_of(after, '"pr-1"', "nnote-pr-1/")  # nothing of pr-1 is left

    again = cli("gc", "--yes", "--config", str(ROOT / "deploy.toml"))
    assert again.code == 0 and "gc: 0 expired preview(s)" in again.err, again.text


def test_gc_keeps_a_preview_renewed_after_it_listed_it(aws_env: dict[str, str]) -> None:
    """gc lists the expired previews first, then deletes them one by one (minutes each): a
    push that renews one still waiting its turn must keep it. gc reads the expiry again once
    it holds that preview's lock."""
    from deployer import cli as cli_module
    from tests.deployer.faults import snapshot

    _deploy_preview("pr-3", PAST)  # expired when gc listed it...
    renewing = _preview_run("pr-3", FUTURE)
    previews.renew(renewing.aws, renewing.owner)  # ...then an `up` of its pull request ran
    before = snapshot()

    code = cli_module._collect(ROOT / "deploy.toml", "pr-3", None, None, cli_module._renderer())

    assert code is None, "kept, and not counted as a failure"
    assert snapshot() == before, "nothing of the renewed preview was deleted"
    assert previews.still_there(renewing.aws, "nnote", "pr-3")


def test_gc_without_a_terminal_or_yes_deletes_nothing(cli) -> None:  # type: ignore[no-untyped-def]
    _deploy_preview("pr-1", PAST)
    done = cli("gc", "--config", str(ROOT / "deploy.toml"))
    assert done.code == 1 and "not confirmed; nothing was deleted" in done.err, done.text
    assert make_run("pr-1") and _expiries_of_base("pr-1")


# -- status --all -----------------------------------------------------------------------------


def test_status_all_lists_every_env_with_age_expiry_and_cost(cli) -> None:  # type: ignore[no-untyped-def]
    import json

    pipeline.up(
        make_run("staging"), QuietEvents(), steps=pipeline.deploy_steps(ROOT, PREBUILT_IMAGE)
    )
    _deploy_preview("pr-1", PAST)
    _deploy_preview("pr-2", FUTURE)
    done = cli("status", "--all", "--json", "--config", str(ROOT / "deploy.toml"))
    assert done.code == 0, done.text
    document = json.loads(done.out)
    rows = {row["name"]: row for row in document["environments"]}
    assert sorted(rows) == ["pr-1", "pr-2", "staging"]
    staging, expired, live = rows["staging"], rows["pr-1"], rows["pr-2"]
    assert (staging["preview"], staging["expires"], staging["expired"]) == (False, None, False)
    assert (expired["expires"], expired["expired"]) == (PAST, True)
    assert (live["expires"], live["expired"]) == (FUTURE, False)
    assert all(row["created"] and row["age"].endswith("h") for row in rows.values())
    # The preview's template is cheaper than staging (no backups, shorter logs, fewer images).
    assert 0 < live["monthly_usd"] < staging["monthly_usd"]
    assert live["cost_basis"].startswith("deploy.toml [preview]")
    assert staging["cost_basis"].startswith("deploy.toml [env.staging]")

    table = cli("status", "--all", "--config", str(ROOT / "deploy.toml"))
    assert table.code == 0, table.text
    lines = table.out.splitlines()
    assert lines[0] == "env\tage\texpires\tmonthly"
    assert any(line.startswith("pr-1\t") and f"{PAST} (expired)" in line for line in lines)
    assert any(line.startswith("staging\t") and "\t-\t$" in line for line in lines)
    assert "not its bill" in table.err


# -- the workflow -----------------------------------------------------------------------------

PREVIEW_WORKFLOW = ROOT / ".github/workflows/preview.yml"


def _workflow() -> dict:  # type: ignore[type-arg]
    import yaml

    loaded: dict = yaml.safe_load(PREVIEW_WORKFLOW.read_text())  # type: ignore[type-arg]
    return loaded


def _commands(job: str, env: str) -> list[list[str]]:
    """The nnote-deploy commands a job's steps run, as a shell would split them."""
    import re
    import shlex

    found = []
    for step in _workflow()["jobs"][job]["steps"]:
        for match in re.finditer(r"uv run --frozen nnote-deploy ([^)\n]*)", step.get("run", "")):
            found.append(shlex.split(match[1].replace("$NNOTE_ENV_NAME", env)))
    return found


def test_the_preview_workflow_runs_for_same_repo_prs_one_group_each() -> None:
    workflow = _workflow()
    triggers = workflow[True]
    assert triggers["pull_request"]["types"] == ["opened", "synchronize", "reopened", "closed"]
    assert triggers["schedule"]
    jobs = workflow["jobs"]
    for name in ("up", "down"):
        assert "head.repo.full_name == github.repository" in jobs[name]["if"]
        assert jobs[name]["concurrency"] == {
            "group": "preview-pr-${{ github.event.number }}",
            "cancel-in-progress": False,
        }
        assert jobs[name]["permissions"]["id-token"] == "write"
    assert "closed" in jobs["down"]["if"] and "!= 'closed'" in jobs["up"]["if"]
    assert "schedule" in jobs["gc"]["if"]
    assert workflow["permissions"] == {}


def test_the_preview_workflow_commands_work_against_the_emulator(cli) -> None:  # type: ignore[no-untyped-def]
    import json

    up, status, cost = _commands("up", "pr-12")
    assert up == ["up", "--yes", "--env", "pr-12"]
    made = cli(*up)
    assert made.code == 0 and made.out.strip().startswith("https://"), made.text
    facts = json.loads(cli(*status).out)
    assert facts["url"].startswith("https://") and facts["service"]["image"]
    assert json.loads(cli(*cost).out)["monthly"] > 0
    assert _expiries_of_base("pr-12")

    (down,) = _commands("down", "pr-12")
    gone = cli(*down)
    assert gone.code == 0 and "leak audit: nothing left" in gone.err, gone.text

    (gc,) = _commands("gc", "-")
    assert gc == ["gc", "--yes"]
    swept = cli(*gc, "--config", str(ROOT / "deploy.toml"))
    assert swept.code == 0 and "gc: 0 expired preview(s)" in swept.err, swept.text
