"""up builds the repository's Dockerfile with the real Docker engine and pushes it to a local
registry standing in for ECR's registry endpoint; the ECR API itself is the moto server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployer.test_cli_e2e import calls, owned
from tests.support.images import BASE_IMAGE, build_context, ensure_base_image
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    local = LocalRegistry(tmp_path_factory.mktemp("registry"))
    local.start()
    yield local
    local.stop()


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout of the app with deploy.toml, plus host-downloaded wheels (ignored)."""
    (tmp_path / "repo").mkdir()
    folder = build_context(tmp_path / "repo")
    shutil.copy2(ROOT / "deploy.toml", folder / "deploy.toml")
    (folder / ".gitignore").write_text("wheels/\n")
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "app")
    return folder


@pytest.fixture
def image_env(registry: LocalRegistry) -> dict[str, str]:
    ensure_base_image()
    return {
        "NNOTE_DEPLOY_PUSH_HOST": registry.host,
        "NNOTE_DEPLOY_BUILD_ARGS": json.dumps(
            {"BASE_IMAGE": BASE_IMAGE, "PIP_INSTALL_ARGS": "--no-index --find-links /src/wheels"}
        ),
    }


def test_up_builds_pushes_then_skips_a_commit_already_pushed(  # type: ignore[no-untyped-def]
    cli, checkout: Path, registry: LocalRegistry, image_env: dict[str, str], tmp_path: Path
) -> None:
    commit = git(checkout, "rev-parse", "HEAD")[:12]
    outputs = tmp_path / "outputs"
    first = cli(
        "up",
        "--yes",
        config=checkout / "deploy.toml",
        env={**image_env, "GITHUB_OUTPUT": str(outputs)},
    )
    assert first.code == 0, first.text
    assert f"create image {registry.host}/nnote-staging:{commit}" in first.text
    assert registry.tags("nnote-staging") == sorted([commit, "latest"])
    digest = dict(line.split("=", 1) for line in outputs.read_text().splitlines())["image_digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)

    second = cli("up", "--yes", config=checkout / "deploy.toml", env=image_env)
    assert second.code == 0 and "no changes" in second.text
    assert "building" not in second.text
    total, mutating = calls(second.text)
    # The converged up's 25 (as with --image) and the ECR token that looking up the commit
    # in the registry needs; the plan's lookup is reused when applying, never made twice.
    assert mutating == 0 and total <= 26

    (checkout / "nnote" / "static" / "style.css").write_text("body { color: black; }\n")
    dirty = cli("plan", config=checkout / "deploy.toml", env=image_env)
    assert f"nnote-staging:{commit}-dirty" in dirty.text, "uncommitted changes are marked"
    git(checkout, "commit", "-qam", "restyle")
    new_commit = git(checkout, "rev-parse", "HEAD")[:12]
    third = cli("up", "--yes", config=checkout / "deploy.toml", env=image_env)
    assert third.code == 0, third.text
    assert new_commit in registry.tags("nnote-staging")
    running = next(r for r in owned(cli) if r["type"] == "ecs:task-definition")
    assert running["id"] == "nnote-staging:2", "the code change shipped as a new revision"
    assert running["state"].startswith(f"{registry.host}/nnote-staging@sha256:")
    assert running["state"] != f"{registry.host}/nnote-staging@{digest}"

    down = cli("down", "--yes", config=checkout / "deploy.toml", env=image_env)
    assert down.code == 0 and "leak audit: nothing left" in down.text


def test_no_docker_engine_is_a_clear_error_before_anything_is_made(  # type: ignore[no-untyped-def]
    cli, checkout: Path, image_env: dict[str, str]
) -> None:
    result = cli(
        "up",
        "--yes",
        config=checkout / "deploy.toml",
        env={**image_env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert result.code == 1
    assert "error: no Docker engine reachable" in result.text
    assert "--image" in result.text and "Traceback" not in result.text
    assert owned(cli) == []


def test_unreachable_registry_is_a_clear_error_before_anything_is_made(  # type: ignore[no-untyped-def]
    cli, checkout: Path, image_env: dict[str, str]
) -> None:
    from tests.support.net import free_port

    nobody = {**image_env, "NNOTE_DEPLOY_PUSH_HOST": f"127.0.0.1:{free_port()}"}
    result = cli("up", "--yes", config=checkout / "deploy.toml", env=nobody)
    assert result.code == 1
    assert "error: cannot ask the registry" in result.text and "connection refused" in result.text
    assert owned(cli) == []


def test_push_error_rolls_back_what_the_run_made(  # type: ignore[no-untyped-def]
    cli, checkout: Path, image_env: dict[str, str], tmp_path: Path
) -> None:
    read_only = LocalRegistry(tmp_path / "ro", read_only=True)
    (tmp_path / "ro").mkdir()
    read_only.start()
    try:
        result = cli(
            "up",
            "--yes",
            config=checkout / "deploy.toml",
            env={**image_env, "NNOTE_DEPLOY_PUSH_HOST": read_only.host},
        )
    finally:
        read_only.stop()
    assert result.code == 6, result.text
    assert "up failed in step image: push of" in result.text
    assert "rolled back: created ECR repository nnote-staging" in result.text
    assert "rolled back: created vpc" in result.text
    assert owned(cli) == []
