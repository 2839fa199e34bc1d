"""Build the repository's Dockerfile offline: a local base image, wheels served over HTTP.

No registry is reachable from the test machines, so the build gets `BASE_IMAGE` (made by
scripts/build-base-image) and `PIP_INSTALL_ARGS` pointing at a wheel server on 127.0.0.1,
which the build reaches on the host network. The user's default build path is untouched:
both are build arguments and the network is a build option; the Dockerfile knows of neither.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.models.images import Image

from tests.support.wheel_server import pip_install_args, serving

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "local/nnote-python:bookworm"
WHEEL_CACHE = Path.home() / ".cache" / "nnote" / "wheels"


def ensure_base_image() -> str:
    subprocess.run([ROOT / "scripts" / "build-base-image"], check=True)
    return BASE_IMAGE


def wheels() -> Path:
    """Wheels for requirements.txt, downloaded once per version of that file."""
    requirements = ROOT / "requirements.txt"
    folder = WHEEL_CACHE / hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    if not (folder / ".complete").exists():
        python = shutil.which("python3") or "python3"
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                "-r",
                str(requirements),
                "-d",
                str(folder),
            ],
            check=True,
        )
        (folder / ".complete").touch()
    return folder


@contextmanager
def offline_build_args() -> Iterator[dict[str, str]]:
    """Build arguments for a build on the host network; its wheel server runs for the block."""
    base_image = ensure_base_image()
    with serving(wheels()) as url:
        yield {"BASE_IMAGE": base_image, "PIP_INSTALL_ARGS": pip_install_args(url)}


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def copy_tracked_files(folder: Path, source: Path = ROOT) -> Path:
    """What `git clean -xfd` would leave of `source`, with its working tree's contents (so
    uncommitted edits are in); tracked files deleted there are left out."""
    listing = git(source, "ls-files", "-z")
    for name in filter(None, listing.split("\0")):
        if (source / name).exists():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, folder / name, follow_symlinks=False)
    return folder


def clean_checkout(folder: Path, source: Path = ROOT) -> Path:
    """A new git repository holding `source`'s tracked files, all committed."""
    folder.mkdir(parents=True, exist_ok=True)
    copy_tracked_files(folder, source)
    git(folder, "init", "-q")
    git(folder, "add", "--all", "--force")  # tracked there, so kept whatever .gitignore says
    git(folder, "-c", "commit.gpgsign=false", "commit", "-qm", "app")
    return folder


def build_offline_image(
    folder: Path, tag: str, canary: str | None = None, extra_args: dict[str, str] | None = None
) -> Image:
    """Build a copy of the checkout as `docker build .` would; `canary` plants a developer's
    local secrets in it (a .env file, the dev SECRET_KEY in the instance folders) to prove
    that .dockerignore keeps them out; `extra_args` are more build arguments."""
    context = copy_tracked_files(folder)
    if canary:
        for path in (".env", "instance/secret_key", "nnote/instance/secret_key"):
            (context / path).parent.mkdir(parents=True, exist_ok=True)
            (context / path).write_text(f"SECRET_KEY={canary}\n")
    with offline_build_args() as build_args:
        image, _logs = docker.from_env().images.build(
            path=str(context),
            tag=tag,
            rm=True,
            buildargs={**build_args, **(extra_args or {})},
            network_mode="host",
        )
    return image
