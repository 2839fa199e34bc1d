"""up builds the repository's Dockerfile with the real Docker engine and pushes it to a local
registry standing in for ECR's registry endpoint; the ECR API itself is the moto server.

The image holds what its tag names: a clean checkout (no wheels, nothing git ignores) builds,
and the build context is the checkout's tracked files as the working tree has them."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deployer.docker_engine import context_archive
from deployer.steps.image import ImageStep, source_version, tracked_files
from tests.deployer.test_cli_e2e import calls, owned
from tests.support.images import clean_checkout, git, offline_build_args
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.docker
TAG = "nnote:source-test"
STRAY = "nnote/stray.py"  # a file a developer has not added yet
IGNORED = "nnote/leftover.pyc"  # matched by .gitignore, not by .dockerignore


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    local = LocalRegistry(tmp_path_factory.mktemp("registry"))
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def offline_args() -> Iterator[dict[str, str]]:
    with offline_build_args() as build_args:
        yield build_args


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clean git checkout of the repository (deploy.toml included), as CI, a laptop or the
    deploy workflow has it: no wheels, nothing git ignores."""
    return clean_checkout(tmp_path / "repo")


@pytest.fixture
def image_env(registry: LocalRegistry, offline_args: dict[str, str]) -> dict[str, str]:
    return {
        "NNOTE_DEPLOY_PUSH_HOST": registry.host,
        "NNOTE_DEPLOY_BUILD_ARGS": json.dumps(offline_args),
        "NNOTE_DEPLOY_BUILD_NETWORK": "host",  # pip reaches the wheel server on 127.0.0.1
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
    # The checkout's own migrations, read from the source built: one task migrates them.
    migrations = sorted((checkout / "nnote" / "migrations" / "versions").glob("0*.py"))
    head = re.search(r'^revision = "([^"]+)"', migrations[-1].read_text(), re.M)[1]  # type: ignore[index]
    steps = len(migrations)
    assert f"migration: (none recorded) -> {head} ({steps} steps)" in first.text
    digest = dict(line.split("=", 1) for line in outputs.read_text().splitlines())["image_digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)

    second = cli("up", "--yes", config=checkout / "deploy.toml", env=image_env)
    assert second.code == 0 and "no changes" in second.text
    assert "building" not in second.text
    total, mutating = calls(second.text)
    # The converged up's 34 (as with --image) and the ECR token that looking up the commit
    # in the registry needs; the plan's lookup is reused when applying, never made twice.
    assert mutating == 0 and total <= 35

    (checkout / "nnote" / "static" / "style.css").write_text("body { color: black; }\n")
    dirty = cli("plan", config=checkout / "deploy.toml", env=image_env)
    assert f"nnote-staging:{commit}-dirty" in dirty.text, "uncommitted changes are marked"
    git(checkout, "commit", "-qam", "restyle")
    new_commit = git(checkout, "rev-parse", "HEAD")[:12]
    third = cli("up", "--yes", config=checkout / "deploy.toml", env=image_env)
    assert third.code == 0, third.text
    assert new_commit in registry.tags("nnote-staging")
    assert "db:schema" not in third.text, "a change without a migration migrates nothing"
    running = next(r for r in owned(cli) if r["type"] == "ecs:task-definition")
    assert running["id"] == "nnote-staging:2", "the code change shipped as a new revision"
    assert running["detail"].startswith(f"{registry.host}/nnote-staging@sha256:")
    assert running["detail"] != f"{registry.host}/nnote-staging@{digest}"

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


def build(checkout: Path, build_args: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Build as `up` does, on the host network so pip reaches the wheel server."""
    monkeypatch.setenv("NNOTE_DEPLOY_BUILD_NETWORK", "host")
    return ImageStep(checkout).build(TAG, build_args)


def files_in(image: str, folder: str) -> set[str]:
    output = docker.from_env().containers.run(
        image, entrypoint=["find", folder, "-type", "f"], network_mode="none", remove=True
    )
    return set(output.decode().split())


def plant_untracked_and_ignored_files(checkout: Path) -> None:
    (checkout / STRAY).write_text("print('not committed')\n")
    (checkout / IGNORED).write_bytes(b"not committed either")
    assert git(checkout, "status", "--porcelain", "--ignored", IGNORED).startswith("!!")


def test_image_builds_from_a_clean_checkout(
    checkout: Path, offline_args: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    image = build(checkout, offline_args, monkeypatch)
    assert "/app/nnote/wsgi.py" in files_in(image, "/app/nnote")


def test_image_leaves_untracked_and_ignored_files_out_of_a_clean_commit(
    checkout: Path, offline_args: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plant_untracked_and_ignored_files(checkout)
    assert source_version(checkout) == git(checkout, "rev-parse", "HEAD")[:12]
    shipped = files_in(build(checkout, offline_args, monkeypatch), "/app/nnote")
    assert "/app/nnote/wsgi.py" in shipped
    assert f"/app/{STRAY}" not in shipped and f"/app/{IGNORED}" not in shipped


def test_image_tag_is_dirty_when_a_tracked_file_is_deleted(checkout: Path) -> None:
    """Deleting is a change too (editing is pinned by the first test's plan)."""
    (checkout / "nnote" / "static" / "favicon.svg").unlink()
    assert source_version(checkout).endswith("-dirty")


def test_image_context_is_the_working_tree_of_tracked_files(checkout: Path) -> None:
    plant_untracked_and_ignored_files(checkout)
    (checkout / "nnote" / "static" / "style.css").write_text("body { color: black; }\n")
    (checkout / "nnote" / "static" / "favicon.svg").unlink()
    with (
        context_archive(checkout, tracked_files(checkout)) as archive,
        tarfile.open(fileobj=archive) as tar,
    ):
        sent = set(tar.getnames())
        style = tar.extractfile("nnote/static/style.css")
        assert style is not None and style.read() == b"body { color: black; }\n"
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "nnote/wsgi.py"} <= sent
    assert not sent & {STRAY, IGNORED, "nnote/static/favicon.svg"}
    assert not any(name.startswith(("tests/", "deployer/")) for name in sent), ".dockerignore"
