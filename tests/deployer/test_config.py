"""deploy.toml validation: every bad field reported at once, before any AWS call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployer.config import load
from deployer.errors import ConfigError, ExitCode
from deployer.validation import known_regions
from tests.deployer.conftest import ROOT

GOOD = (ROOT / "deploy.toml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    return path


def test_committed_config_loads_every_env() -> None:
    staging = load(ROOT / "deploy.toml", "staging")
    prod = load(ROOT / "deploy.toml", "prod")
    assert staging.prefix == "nnote-staging"
    assert staging.settings.db.instance_class == "db.t4g.micro"
    assert staging.settings.db.deletion_protection is False
    assert prod.settings.db.deletion_protection and prod.settings.db.final_snapshot
    assert prod.settings.network.vpc_cidr == "10.41.0.0/16"


def test_prod_is_protected_by_default(tmp_path: Path) -> None:
    path = write(tmp_path, 'app = "x1"\nregion = "eu-west-1"\n[env.prod]\n[env.dev]\n')
    assert load(path, "prod").settings.db.deletion_protection is True
    assert load(path, "dev").settings.db.deletion_protection is False


def test_every_bad_field_is_reported_with_its_path(tmp_path: Path) -> None:
    text = GOOD.replace('instance_class = "db.t4g.micro"', 'instance_class = "huge"').replace(
        "[env.prod]", "[env.prod]\ndb.allocated_storage_gb = 5\nservice.cpu = 300\nsurprise = 1"
    )
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text), "staging")
    problems = "\n".join(raised.value.problems)
    assert "defaults.db.instance_class: 'huge' is not an RDS instance class (db.FAMILY.SIZE" in (
        problems
    )
    assert (
        "env.prod.db.allocated_storage_gb: Input should be greater than or equal to 20" in problems
    )
    assert "env.prod.service.cpu:" in problems
    assert "env.prod.surprise: unknown key" in problems
    assert raised.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('vpc_cidr = "10.40.0.0/16"', 'vpc_cidr = "10.40.0.0/33"'), "not an IPv4 CIDR"),
        (('"10.40.1.0/24"]', '"10.40.0.128/25"]'), "overlap"),
        (('"10.40.1.0/24"]', '"10.99.1.0/24"]'), "is not inside vpc_cidr"),
        (('app = "nnote"', 'app = "No Spaces"'), "app: String should match pattern"),
        (("[env.staging]", "[env.Bad_Name]"), "env.Bad_Name: must be 2-22 lowercase letters"),
        (
            ("keep_images = 10", 'keep_images = "ten"'),
            "keep_images: Input should be a valid integer",
        ),
    ],
)
def test_bad_values_are_named(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, GOOD.replace(*edit)), "prod")
    assert expected in "\n".join(raised.value.problems) + raised.value.message


def test_unknown_env_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        load(ROOT / "deploy.toml", "qa")
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "missing.toml", "staging")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "app = ["), "staging")


def test_cli_config_error_exits_3_before_any_aws_call(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = write(tmp_path, GOOD.replace("allocated_storage_gb = 20", "allocated_storage_gb = 5"))
    # An endpoint nobody listens on: any AWS call would fail with a connection error instead.
    result = cli("up", "--yes", config=bad, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.code == 3
    assert (
        "defaults.db.allocated_storage_gb: Input should be greater than or equal to 20"
        in result.text
    )
    assert "hint: fix deploy.toml" in result.text
    assert "Traceback" not in result.text and "account" not in result.text


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        # AWS caps load balancer and target group names (APP-ENV) at 32 characters.
        (
            [
                ('app = "nnote"', 'app = "notes-service-app"'),
                ("[env.prod]", "[env.preview-branch-1]"),
            ],
            "env.preview-branch-1: notes-service-app-preview-branch-1 is 34 characters; "
            "AWS allows 32",
        ),
        # RDS identifiers may not hold two hyphens in a row.
        ([("[env.prod]", "[env.pr--1]")], "env.pr--1: must be 2-22 lowercase letters"),
        # Fargate offers each CPU size with some memory sizes only.
        (
            [("cpu = 256", "cpu = 512")],
            "defaults.service: memory_mb: Fargate offers 512 CPU units with 1024-4096 MiB",
        ),
        (
            [("memory_mb = 512", "memory_mb = 1536")],
            "defaults.service: memory_mb: Fargate offers 256 CPU units with 512, 1024, 2048 MiB",
        ),
        # MySQL 8.0 is past RDS standard support: only with paid Extended Support.
        (
            [('engine_version = "8.4"', 'engine_version = "8.0"')],
            "defaults.db: engine_version: MySQL 8.0 left RDS standard support on 2026-07-31",
        ),
    ],
)
def test_names_and_sizes_aws_would_refuse_are_refused_first(
    tmp_path: Path, edits: list[tuple[str, str]], expected: str
) -> None:
    text = GOOD
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text), "staging")
    assert expected in "\n".join(raised.value.problems)


def test_mysql_8_0_stays_selectable_with_extended_support(tmp_path: Path) -> None:
    text = GOOD.replace('engine_version = "8.4"', 'engine_version = "8.0"\nextended_support = true')
    assert load(write(tmp_path, text), "staging").settings.db.engine_version == "8.0"
    assert load(ROOT / "deploy.toml", "staging").settings.db.engine_version == "8.4"


# -- close typos: what was meant is said ------------------------------------------------------


def problems_of(tmp_path: Path, text: str, env: str = "staging") -> str:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text), env)
    assert raised.value.exit_code == ExitCode.CONFIG
    return "\n".join(raised.value.problems)


def test_a_region_typo_in_the_file_names_the_region_meant(tmp_path: Path) -> None:
    text = GOOD.replace('region = "eu-west-1"', 'region = "eu-wst-1"')
    assert "region: 'eu-wst-1' is not an AWS region; did you mean eu-west-1?" in problems_of(
        tmp_path, text
    )


def test_a_region_override_typo_is_a_config_error_with_the_region_meant() -> None:
    with pytest.raises(ConfigError) as raised:
        load(ROOT / "deploy.toml", "staging", "eu-wst-1")
    assert raised.value.exit_code == ExitCode.CONFIG
    assert (
        raised.value.message == "--region 'eu-wst-1' is not an AWS region; did you mean eu-west-1?"
    )
    assert raised.value.hint == "pass a region name, e.g. --region eu-west-1"
    assert load(ROOT / "deploy.toml", "staging", "us-east-2").region == "us-east-2"


@pytest.mark.parametrize(
    "region", ["mars-north-1", "eu-west-9", "EU-WEST-1", "eu-west-1 ", "euwest1", "no"]
)
def test_only_regions_botocore_knows_are_taken(tmp_path: Path, region: str) -> None:
    text = GOOD.replace('region = "eu-west-1"', f'region = "{region}"')
    assert f"region: {region!r} is not an AWS region" in problems_of(tmp_path, text)
    with pytest.raises(ConfigError, match="is not an AWS region"):
        load(ROOT / "deploy.toml", "staging", region)


def test_the_known_regions_are_every_partitions_from_botocores_data() -> None:
    regions = known_regions()
    assert {"eu-west-1", "us-east-1", "ap-northeast-1", "us-gov-west-1", "cn-north-1"} <= regions
    # Newer regions are in partitions.json before endpoints.json (botocore 1.44: both these).
    assert {"me-west-1", "sa-west-1", "mx-central-1", "eusc-de-east-1"} <= regions
    assert "eu-wst-1" not in regions and "aws-global" not in regions


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("db.t4g.mirco", "db.t4g.micro"),
        ("db.t3.larg", "db.t3.large"),
        ("db.r6g.xlareg", "db.r6g.xlarge"),
        ("db.t4g-micro", "db.t4g.micro"),
        ("t4g.micro", "db.t4g.micro"),
        ("db.T4g.micro", "db.t4g.micro"),
    ],
)
def test_an_instance_class_typo_names_the_class_meant(
    tmp_path: Path, written: str, meant: str
) -> None:
    text = GOOD.replace('instance_class = "db.t4g.micro"', f'instance_class = "{written}"')
    problems = problems_of(tmp_path, text)
    assert f"defaults.db.instance_class: {written!r}" in problems
    assert f"did you mean {meant}?" in problems


@pytest.mark.parametrize(
    "instance_class",
    # Not in the shipped list but well formed: RDS may sell them; the pre-flight asks.
    [
        "db.m7i.large",
        "db.r8g.2xlarge",
        "db.m5d.large",
        "db.t2.micro",
        "db.x9.tiny",
        "db.t4g.4xlarge",
    ],
)
def test_a_well_formed_class_outside_the_list_is_still_taken(
    tmp_path: Path, instance_class: str
) -> None:
    text = GOOD.replace('instance_class = "db.t4g.micro"', f'instance_class = "{instance_class}"')
    assert load(write(tmp_path, text), "staging").settings.db.instance_class == instance_class


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("[env.prod]", "[env.prod]\ndb.instance_clas = 1"),
            "env.prod.db.instance_clas: unknown key; did you mean instance_class?",
        ),
        (
            ("cpu_target = 60 }\n", "cpu_targt = 60 }\n"),
            "env.prod.service.autoscaling.cpu_targt: unknown key; did you mean cpu_target?",
        ),
        (
            ("[defaults.db]", "[defaults.dbb]"),
            "defaults.dbb: unknown key; did you mean db?",
        ),
        (
            ('region = "eu-west-1"', 'regoin = "eu-west-1"'),
            "regoin: unknown key; did you mean region?",
        ),
        (
            ("[env.prod]", "[env.prod]\nsurprise = 1"),
            "env.prod.surprise: unknown key; known keys here: network, db, registry, image, "
            "service",
        ),
    ],
)
def test_an_unknown_key_names_the_key_meant(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    assert edit[0] in GOOD
    assert expected in problems_of(tmp_path, GOOD.replace(*edit), "prod")


def test_a_config_error_is_answered_without_importing_boto3(tmp_path: Path) -> None:
    """A fresh interpreter where `import boto3` fails: every config check still answers."""
    bad = write(
        tmp_path, GOOD.replace('instance_class = "db.t4g.micro"', 'instance_class = "db.t4g.mirco"')
    )
    script = f"""
import sys
sys.modules["boto3"] = None  # any import of boto3 now raises ImportError
from pathlib import Path
from deployer.config import load
from deployer.errors import ConfigError
for path, region in (({str(bad)!r}, None), ({str(ROOT / "deploy.toml")!r}, "eu-wst-1")):
    try:
        load(Path(path), "staging", region)
    except ConfigError as error:
        print(error.message, *error.problems)
print("loaded:", load(Path({str(ROOT / "deploy.toml")!r}), "staging", "us-east-1").region)
print("botocore imported:", "botocore" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "did you mean db.t4g.micro?" in done.stdout
    assert "--region 'eu-wst-1' is not an AWS region; did you mean eu-west-1?" in done.stdout
    assert "loaded: us-east-1" in done.stdout
    assert "botocore imported: False" in done.stdout


def test_cli_names_the_key_meant_and_exits_3_before_any_aws_call(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = write(tmp_path, GOOD.replace("[env.prod]", "[env.prod]\ndb.instance_clas = 1"))
    result = cli("plan", config=bad, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.code == 3, result.text
    assert "env.prod.db.instance_clas: unknown key; did you mean instance_class?" in result.text
    region = cli("plan", "--region", "eu-wst-1", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert region.code == 3, region.text
    assert "error: --region 'eu-wst-1' is not an AWS region; did you mean eu-west-1?" in (
        region.text
    )
    assert "hint: pass a region name, e.g. --region eu-west-1" in region.text
    assert "account" not in region.text and "Traceback" not in region.text


# -- the preview template: what a preview cannot have ----------------------------------------

PREVIEW_ONLY_KEYS = [
    ('service.domain = "pr.example.com"', "domain", "Route 53"),
    ('service.domain = "pr.example.com"\nservice.hosted_zone = "example.com"', "hosted_zone", ""),
    (
        'service.certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b-2c3d"',
        "certificate_arn",
        "CloudFront URL",
    ),
    ("service.autoscaling = { min_tasks = 1, max_tasks = 2 }", "autoscaling", "scalable targets"),
]


@pytest.mark.parametrize(("written", "key", "why"), PREVIEW_ONLY_KEYS)
def test_the_preview_template_refuses_what_the_preview_role_cannot_make(
    tmp_path: Path, written: str, key: str, why: str
) -> None:
    """The preview role changes no Route 53 record and registers no scalable target, and one
    domain would be every preview's: refused before any AWS call, whichever env is chosen."""
    text = GOOD.replace("[preview]\n", f"[preview]\n{written}\n")
    for env in ("pr-42", "staging"):
        with pytest.raises(ConfigError) as raised:
            load(write(tmp_path, text), env)
        assert raised.value.exit_code == ExitCode.CONFIG
        [problem] = [p for p in raised.value.problems if p.startswith(f"preview.service.{key}:")]
        assert problem.startswith(f"preview.service.{key}: not for previews (")
        assert why in problem and problem.endswith("set it under [env.NAME] instead")


def test_a_preview_does_not_inherit_a_domain_or_autoscaling_from_defaults(tmp_path: Path) -> None:
    """[defaults] holds them for the declared environments; a preview goes without (served on
    its own CloudFront URL, a fixed task count), since TOML gives [preview] no way to unset
    them."""
    text = GOOD.replace(
        "[defaults.service]\n",
        "[defaults.service]\n"
        'domain = "notes.example.com"\nhosted_zone = "example.com"\n'
        'certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b-2c3d"\n'
        "autoscaling = { min_tasks = 1, max_tasks = 3, cpu_target = 50 }\n",
    )
    path = write(tmp_path, text)
    staging = load(path, "staging").settings.service
    assert (staging.domain, staging.front) == ("notes.example.com", "load-balancer")
    assert staging.autoscaling is not None and staging.autoscaling.max_tasks == 3
    preview = load(path, "pr-42").settings.service
    assert (preview.domain, preview.hosted_zone, preview.certificate_arn) == (None, None, None)
    assert preview.autoscaling is None and preview.front == "cloudfront"
    assert (preview.spot, preview.desired_count) == (True, 1), "the rest of [preview] still holds"


def test_cli_refuses_a_preview_template_with_a_domain_in_one_line_exit_3(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    bad = write(
        tmp_path, GOOD.replace("[preview]\n", '[preview]\nservice.domain = "pr.example.com"\n')
    )
    # An endpoint nobody listens on: any AWS call would fail with a connection error instead.
    result = cli(
        "plan", "--env", "pr-42", config=bad, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert result.code == 3, result.text
    assert "preview.service.domain: not for previews (every preview would share it" in result.text
    assert "set it under [env.NAME] instead" in result.text
    assert "hint: fix deploy.toml" in result.text
    assert "Traceback" not in result.text and "account" not in result.text
