"""Build the repository's Dockerfile offline: a local base image and host-downloaded wheels.

No registry is reachable from the test machines, so the build gets `BASE_IMAGE` (made by
scripts/build-base-image) and `PIP_INSTALL_ARGS` pointing at wheels pip downloaded on the
host. The user's default build path is untouched: both are build arguments.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import docker
from docker.models.images import Image

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "local/nnote-python:bookworm"
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "requirements.txt", "gunicorn.conf.py", "nnote")
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


def build_context(folder: Path, source: Path = ROOT) -> Path:
    """A copy of what the Dockerfile needs, plus the wheels folder."""
    for name in CONTEXT_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, folder / name)
    shutil.copytree(wheels(), folder / "wheels", ignore=shutil.ignore_patterns(".complete"))
    return folder


def build_offline_image(folder: Path, tag: str, canary: str | None = None) -> Image:
    """Build from a copy of the checkout; `canary` plants a developer's local secrets in the
    context (a .env file, the dev SECRET_KEY in the instance folders) to prove they stay out."""
    client = docker.from_env()
    context = build_context(folder)
    if canary:
        for path in (".env", "instance/secret_key", "nnote/instance/secret_key"):
            (context / path).parent.mkdir(parents=True, exist_ok=True)
            (context / path).write_text(f"SECRET_KEY={canary}\n")
    image, _logs = client.images.build(
        path=str(context),
        tag=tag,
        rm=True,
        buildargs={
            "BASE_IMAGE": ensure_base_image(),
            "PIP_INSTALL_ARGS": "--no-index --find-links /src/wheels",
        },
    )
    return image
