"""What is cheap to check is checked before anything is changed: `--image` references, the
prebuilt image's existence in ECR, `logs --since` and `logs` of an environment never deployed.
(Region names, instance classes and unknown keys of deploy.toml: tests/deployer/test_config.py.)
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployer import service_logs
from deployer.errors import ConfigError, DeployError, ExitCode
from deployer.inventory import Owner
from deployer.validation import ImageReference, check_image_reference, close_match
from tests.deployer.conftest import PREBUILT_IMAGE, REGION, ROOT, make_run
from tests.deployer.test_cli_e2e import owned
from tests.support.realism import DEPLOYER_KEY, Realism

DIGEST = "sha256:" + "ab" * 32
ECR = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"
CONFIG = ROOT / "deploy.toml"

# -- did you mean ---------------------------------------------------------------------------


def test_close_match_prefers_the_same_word_in_another_case_then_the_closest() -> None:
    assert close_match("EU-WEST-1", ["eu-west-1", "eu-west-2"]) == "eu-west-1"
    assert close_match("instance_clas", ["name", "instance_class"]) == "instance_class"
    assert close_match("surprise", ["network", "db"]) is None
    assert close_match("db", ["db"]) is None  # the word itself is no suggestion


# -- --image references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PREBUILT_IMAGE,
            ImageReference("127.0.0.1:5000", "nnote-staging", None, PREBUILT_IMAGE[-71:]),
        ),
        (f"{ECR}/nnote-staging:abc123", ImageReference(ECR, "nnote-staging", "abc123")),
        (
            f"{ECR}/team/nnote-staging:v1.2_3@{DIGEST}",
            ImageReference(ECR, "team/nnote-staging", "v1.2_3", DIGEST),
        ),
        ("ghcr.io/owner/nnote__web-app.x", ImageReference("ghcr.io", "owner/nnote__web-app.x")),
        ("localhost/nnote:latest", ImageReference("localhost", "nnote", "latest")),
        ("[::1]:5000/nnote:1", ImageReference("[::1]:5000", "nnote", "1")),
        ("Registry.Example.com:443/nnote", ImageReference("Registry.Example.com:443", "nnote")),
    ],
)
def test_a_well_formed_reference_is_parsed(text: str, expected: ImageReference) -> None:
    assert check_image_reference(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is empty"),
        ("nginx:1.27", "it names no registry host"),
        ("nnote-staging/app@" + DIGEST, "it names no registry host"),
        (f"https://{ECR}/nnote:1", "drop the https://"),
        (f"{ECR}/Nnote-Staging:1", f"must be lower-case; did you mean {ECR}/nnote-staging:1?"),
        (f"{ECR}/nnote@sha256:1234", "64 lower-case hex digits, not 4"),
        (f"{ECR}/nnote@sha256:{'AB' * 32}", f"did you mean {ECR}/nnote@{DIGEST}?"),
        (f"{ECR}/nnote@md5:{'0' * 32}", "the digest must be sha256:<64 hex digits>, not 'md5'"),
        (f"{ECR}/nnote:-dev", "the tag '-dev' is not a tag"),
        (f"{ECR}/nnote:{'x' * 129}", "is not a tag"),
        (f"{ECR}//nnote:1", "the repository path '/nnote' is not one"),
        (f"{ECR}/nnote-:1", "the repository path 'nnote-' is not one"),
        (f"{ECR}/nnote 1", "it holds whitespace"),
        ("bad_host.example.com/nnote", "'bad_host.example.com' is not a registry host"),
        (f"{ECR}/{'a' * 250}", "characters before any @digest; the most is 255"),
    ],
)
def test_a_malformed_reference_is_a_config_error_showing_the_shape(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_image_reference(text)
    assert raised.value.exit_code == ExitCode.CONFIG
    assert raised.value.message.startswith(f"--image {text!r} is not an image reference: ")
    assert reason in raised.value.message
    assert raised.value.hint.startswith(
        "pass REGISTRY[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST], e.g. "
    )
    assert "\n" not in raised.value.message


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        (ECR, ("123456789012", REGION)),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", ("123456789012", "us-east-1")),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ("123456789012", "cn-north-1")),
        ("123456789012.dkr-ecr.us-east-1.on.aws", ("123456789012", "us-east-1")),
        ("public.ecr.aws", None),
        ("127.0.0.1:5000", None),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example", None),
    ],
)
def test_an_ecr_registry_is_told_by_its_host(
    registry: str, expected: tuple[str, str] | None
) -> None:
    assert check_image_reference(f"{registry}/nnote-staging@{DIGEST}").ecr == expected


def test_cli_refuses_a_malformed_image_before_changing_anything(cli, realism: Realism) -> None:  # type: ignore[no-untyped-def]
    result = cli("up", "--yes", "--image", "nginx:latest", config=CONFIG)
    assert result.code == 3, result.text
    assert "error: --image 'nginx:latest' is not an image reference: it names no registry host" in (
        result.text
    )
    assert "hint: pass REGISTRY[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]" in result.text
    assert mutating(realism) == []


# -- the prebuilt image exists before anything is changed -------------------------------------


def mutating(realism: Realism, since: int = 0) -> list[str]:
    return [
        c.operation
        for c in realism.calls[since:]
        if c.access_key == DEPLOYER_KEY
        and not c.operation.startswith(("Describe", "Get", "List", "Filter"))
    ]


def pushed(repository: str = "nnote-staging", tag: str = "v1", env: str = "staging") -> str:
    """An image in ECR as `docker push` leaves it (the repository made as the registry step
    makes it, tagged as ours); returns its digest."""
    ecr = boto3.client("ecr", region_name=REGION)
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(
            repositoryName=repository, tags=Owner("nnote", env, "test").tags("registry")
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "c" * 64, "size": 1},
        "layers": [{"digest": "sha256:" + tag.encode().hex().ljust(64, "0")[:64], "size": 1}],
    }
    answer = ecr.put_image(
        repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag
    )
    return str(answer["image"]["imageId"]["imageDigest"])


def test_an_ecr_image_that_does_not_exist_stops_up_before_anything_changes(  # type: ignore[no-untyped-def]
    cli, realism: Realism
) -> None:
    pushed()  # the repository exists, with another image
    missing = f"{ECR}/nnote-staging@{DIGEST}"
    up = cli("up", "--yes", "--image", missing, config=CONFIG)
    assert up.code == 1, up.text
    assert (
        f"error: image not found: {missing} (ECR repository nnote-staging has no image {DIGEST}); "
        "nothing was changed" in up.text
    )
    assert "hint: push the image first" in up.text
    assert mutating(realism) == []
    assert "RegisterTaskDefinition" not in {c.operation for c in realism.calls}
    assert [r["type"] for r in owned(cli)] == ["ecr:repository"]  # only what the test made
    plan = cli("plan", "--image", f"{ECR}/nnote-staging:v2", config=CONFIG)
    assert plan.code == 1
    assert "(ECR repository nnote-staging has no image tag v2)" in plan.text


def test_an_ecr_image_in_a_repository_that_does_not_exist_is_not_found(cli) -> None:  # type: ignore[no-untyped-def]
    """A first `up` with an image of the environment's own repository: it cannot be there."""
    image = f"{ECR}/nnote-staging@{DIGEST}"
    up = cli("up", "--yes", "--image", image, config=CONFIG)
    assert up.code == 1, up.text
    assert f"image not found: {image} (ECR has no repository nnote-staging in {REGION})" in up.text
    assert owned(cli) == []


def test_an_ecr_image_that_exists_is_planned_and_verified(cli) -> None:  # type: ignore[no-untyped-def]
    digest = pushed()
    by_digest = f"{ECR}/nnote-staging@{digest}"
    plan = cli("plan", "--image", by_digest, config=CONFIG)
    assert plan.code == 0, plan.text
    assert "ecs:service" in plan.text
    verify = cli("verify", "--image", f"{ECR}/nnote-staging:v1", config=CONFIG)
    assert f"prebuilt image: {ECR}/nnote-staging:v1: in ECR ({digest})" in verify.text
    assert "verify: all 11 checks passed" in verify.text, verify.text


def test_a_staging_image_promoted_to_prod_is_found_in_the_staging_repository(
    aws_env: dict[str, str],
) -> None:
    from deployer.steps.image import prebuilt_image

    digest = pushed()
    image = f"{ECR}/nnote-staging@{digest}"
    assert prebuilt_image(make_run("prod"), image) == f"{image}: in ECR ({digest})"


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (PREBUILT_IMAGE, "not in ECR: ECS pulls it when tasks start"),
        (
            f"210987654321.dkr.ecr.{REGION}.amazonaws.com/nnote-staging:v1",
            "in account 210987654321's ECR, not this one's",
        ),
        (f"{ECR}/payments-api:v1", "the deploy role may read only nnote-* repositories"),
    ],
)
def test_an_image_the_deploy_role_cannot_look_up_is_not_checked(
    aws_env: dict[str, str], realism: Realism, image: str, why: str
) -> None:
    from deployer.steps.image import prebuilt_image

    first = len(realism.calls)
    assert prebuilt_image(make_run(), image) == f"{image}: not checked ({why})"
    assert [c.service for c in realism.calls[first:] if c.service == "ecr"] == []


def test_verify_names_a_missing_ecr_image(cli) -> None:  # type: ignore[no-untyped-def]
    image = f"{ECR}/nnote-staging:v9"
    pushed()
    verify = cli("verify", "--image", image, config=CONFIG)
    assert verify.code == 1, verify.text
    assert f"FAIL prebuilt image: image not found: {image}" in verify.text


# -- logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), (" 5m ", 300)]
)
def test_since_takes_a_number_and_a_unit(text: str, seconds: float) -> None:
    assert service_logs.parse_since(text) == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yesterday", "--since 'yesterday' is not a duration"),
        ("10", "--since '10' is not a duration"),
        ("-5m", "--since '-5m' is not a duration"),
        ("1.5h", "--since '1.5h' is not a duration"),
        ("10min", "--since '10min' is not a duration; did you mean 10m?"),
        ("2 hours", "--since '2 hours' is not a duration; did you mean 2h?"),
        ("1D", "--since '1D' is not a duration; did you mean 1d?"),
        ("90sec", "did you mean 90s?"),
        ("3654d", "further back than CloudWatch Logs keeps anything (10 years)"),
        ("99999999999999999999h", "further back than CloudWatch Logs keeps anything"),
    ],
)
def test_a_bad_since_is_a_config_error(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        service_logs.parse_since(text)
    assert raised.value.exit_code == ExitCode.CONFIG
    assert expected in raised.value.message
    assert raised.value.hint


def test_logs_of_an_environment_never_deployed_says_so(aws_env: dict[str, str]) -> None:
    with pytest.raises(DeployError) as raised:
        list(service_logs.tail(make_run("prod"), 600, follow=False))
    assert raised.value.message == "no logs: environment prod has no log group (is it deployed?)"
    assert raised.value.hint == "run `nnote-deploy up --env prod` first"
    assert raised.value.exit_code == ExitCode.ERROR


def test_cli_logs_of_an_environment_never_deployed_exits_1(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("logs", "--config", str(CONFIG), "--env", "staging")
    assert result.code == 1, result.text
    assert "error: no logs: environment staging has no log group (is it deployed?)" in result.text
    assert "hint: run `nnote-deploy up --env staging` first" in result.text


# -- before boto3 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["plan", "--image", "127.0.0.1:5000/nnote-staging:v1"],
        ["up"],
        ["status"],
        ["down"],
        ["logs", "--since", "5m"],
        ["unlock"],
    ],
)
def test_cli_answers_a_config_error_before_importing_boto3(
    tmp_path: Path, command: list[str]
) -> None:
    script = f"""
import sys
sys.modules["boto3"] = None  # any import of boto3 now raises ImportError
sys.argv = ["nnote-deploy", *{command!r}, "--config", {str(CONFIG)!r}, "--region", "eu-wst-1"]
from deployer.cli import main
main()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    text: Any = done.stdout + done.stderr
    assert done.returncode == 3, text
    assert "did you mean eu-west-1?" in text
