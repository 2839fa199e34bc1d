"""deploy.toml validation: every bad field reported at once, before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.config import load
from deployer.errors import ConfigError, ExitCode
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
    assert "defaults.db.instance_class: String should match pattern" in problems
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
