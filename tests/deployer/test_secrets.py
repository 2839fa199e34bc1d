"""No secret in anything the CLI writes: every command, --verbose tracebacks too, and the
GitHub Actions outputs and step summary. (Task definitions: tests/deployer/test_service.py;
image config, history and layers: tests/container/test_image.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from deployer.inventory import Owner
from tests.deployer.conftest import REGION


def secrets_of_the_environment() -> list[str]:
    manager = boto3.client("secretsmanager", region_name=REGION)
    database = boto3.client("rds", region_name=REGION).describe_db_instances()["DBInstances"][0]
    db_secret = manager.get_secret_value(SecretId=database["MasterUserSecret"]["SecretArn"])
    password = json.loads(db_secret["SecretString"])["password"]
    secret_key = manager.get_secret_value(SecretId="nnote/staging/secret-key")["SecretString"]
    assert len(password) >= 8 and len(secret_key) >= 48
    return [password, secret_key]


def test_no_command_prints_a_secret(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    github = {
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "GITHUB_RUN_ID": "4242",
    }
    printed = []
    first = cli("up", "--yes", "--verbose", env=github)
    assert first.code == 0, first.text
    secrets = secrets_of_the_environment()
    for args in (
        ("up", "--yes", "--verbose"),
        ("plan", "--verbose"),
        ("status", "--verbose"),
        ("status", "--json"),
        ("redeploy", "--verbose"),
        ("logs", "--verbose"),
    ):
        result = cli(*args, env=github)
        assert result.code == 0, (args, result.text)
        printed.append(result.text)
    # A failure with --verbose prints a traceback: it must not carry a secret either.
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/nnote-deploy/nnote/staging/lock",
        Type="String",
        Value='{"run": "x", "expires": 1e12}',
        Tags=Owner("nnote", "staging", "x").tags("lock"),  # as another run made it
    )
    locked = cli("down", "--yes", "--verbose", env=github)
    assert locked.code == 4 and "Traceback" in locked.text
    printed.append(locked.text)
    cli("unlock")
    printed.append(cli("down", "--yes", "--verbose", env=github).text)
    everything = "\n".join([first.text, *printed])
    everything += (tmp_path / "output").read_text() + (tmp_path / "summary").read_text()
    assert "nnote-staging" in everything, "the outputs were really captured"
    for secret in secrets:
        assert secret not in everything
