"""Packaging: one distribution, `nnote`, two products, each behind its own extra.

`nnote[app]` brings the app's dependencies and none of the deployer's; `nnote[deploy]` the
deployer's and none of the app's; `nnote` alone brings neither, and then each entry point says
which extra it needs, in two lines, instead of an ImportError's traceback. The wheel is built
and installed here with uv, offline, from its cache (as `uv sync --frozen` left it).
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Distributions (and their own dependencies) only one of the two products may pull in.
APP_ONLY = {
    "flask",
    "flask-login",
    "flask-migrate",
    "flask-sqlalchemy",
    "flask-wtf",
    "sqlalchemy",
    "pymysql",
    "gunicorn",
    "alembic",
    "werkzeug",
    "wtforms",
    "mdit-py-plugins",
    "nh3",
    "linkify-it-py",
}
DEPLOY_ONLY = {"boto3", "botocore", "s3transfer", "typer", "rich", "pydantic", "docker"}
# The app's and the deployer's settings: none may leak in from the machine running the tests.
LEAKY = re.compile(r"^(VIRTUAL_ENV|UV_PROJECT_ENVIRONMENT|NNOTE_.*|DATABASE_URL|DB_.*|SECRET_KEY)$")


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.skip("no uv")
    return found


def environment(**extra: str) -> dict[str, str]:
    kept = {key: value for key, value in os.environ.items() if not LEAKY.match(key)}
    return {**kept, "UV_OFFLINE": "1", "UV_NO_PROGRESS": "1", **extra}


def run_uv(*args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [uv(), *map(str, args)],
        cwd=ROOT,
        env=env or environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    run_uv("build", "--wheel", "--offline", "--out-dir", folder, ROOT)
    (built,) = folder.glob("nnote-*.whl")
    return built


@pytest.fixture(scope="module")
def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def requirements(metadata: Message, extra: str | None) -> set[str]:
    """The distributions `pip install nnote[extra]` asks for directly (None: plain `nnote`)."""
    names = set()
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if extra is None:
            wanted = marker is None
        else:
            wanted = marker is not None and marker.evaluate({"extra": extra})
        if wanted:
            names.add(canonicalize_name(requirement.name))
    return names


def locked(extra: str) -> set[str]:
    """Everything the lock installs for `nnote[extra]`, dependencies of dependencies included."""
    exported = run_uv("export", "--frozen", "--no-dev", "--no-emit-project", "--extra", extra)
    return {canonicalize_name(m) for m in re.findall(r"^([A-Za-z0-9._-]+)==", exported, re.M)}


def test_nnote_alone_requires_nothing(metadata: Message):
    assert metadata["Name"] == "nnote"
    assert requirements(metadata, None) == set()
    assert set(metadata.get_all("Provides-Extra") or []) == {"app", "deploy"}


def test_each_extra_asks_for_its_own_product_only(metadata: Message):
    app, deploy = requirements(metadata, "app"), requirements(metadata, "deploy")
    assert {"flask", "gunicorn", "sqlalchemy", "pymysql"} <= app
    assert {"boto3", "typer", "rich", "pydantic", "docker"} <= deploy
    assert not app & DEPLOY_ONLY, "the app extra asks for the deployer's dependencies"
    assert not deploy & APP_ONLY, "the deploy extra asks for the app's dependencies"


def test_the_locked_installs_stay_apart_all_the_way_down():
    app, deploy = locked("app"), locked("deploy")
    assert {"flask", "gunicorn", "alembic"} <= app
    assert {"boto3", "botocore", "typer"} <= deploy
    assert not app & DEPLOY_ONLY
    assert not deploy & APP_ONLY


def test_requirements_txt_is_the_app_extras_lock_export():
    """The image installs requirements.txt: the app extra, as locked, and nothing else."""
    exported = run_uv(
        "export", "--frozen", "--no-dev", "--no-emit-project", "--extra", "app",
        "--format", "requirements-txt",
    )  # fmt: skip

    def body(text: str) -> list[str]:  # without the header, which names the command
        return [line for line in text.splitlines() if not line.startswith("#")]

    committed = (ROOT / "requirements.txt").read_text()
    assert body(committed) == body(exported), (
        "requirements.txt is stale: uv export --frozen --no-dev --no-emit-project --extra app "
        "--format requirements-txt -o requirements.txt"
    )
    assert "--extra app" in committed.splitlines()[1]


def test_license_classifiers_and_version_come_from_pyproject(wheel: Path, metadata: Message):
    assert metadata["Version"] == PROJECT["version"]
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read(f"nnote-{PROJECT['version']}.dist-info/licenses/LICENSE")
    assert shipped == (ROOT / "LICENSE").read_bytes()
    assert b"Copyright (c) 2026 the nnote authors" in shipped
    classifiers = set(metadata.get_all("Classifier") or [])
    assert {
        "Framework :: Flask",
        "Environment :: Console",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3.11",
    } <= classifiers
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639: the expression"


@pytest.fixture(scope="module")
def bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding the wheel alone: `pip install nnote`, no extra."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    run_uv("venv", "--offline", "--python", sys.executable, venv)
    run_uv("pip", "install", "--offline", "--python", venv / "bin" / "python", wheel)
    return venv


def run_in(venv: Path, *command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run from `cwd`, away from the checkout, so that only the installed packages import."""
    return subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_the_deploy_extra_nnote_deploy_says_so(bare: Path, tmp_path: Path):
    done = run_in(bare, "nnote-deploy", "--help", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: nnote-deploy needs the deploy extra; "
        "not installed: boto3, botocore, typer, rich, pydantic, docker",
        "hint: pip install 'nnote[deploy]' (in a clone: uv sync --frozen --extra deploy)",
    ]


def test_without_the_app_extra_the_app_says_so(bare: Path, tmp_path: Path):
    done = run_in(bare, "python", "-m", "nnote.boot", "gunicorn", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "nnote: cannot start: the app extra is not installed (missing: flask, flask_login, "
        "flask_migrate, flask_sqlalchemy, flask_wtf, sqlalchemy, pymysql, gunicorn, "
        "markdown_it, mdit_py_plugins, nh3, linkify_it)",
        "nnote: hint: pip install 'nnote[app]' (in a clone: uv sync --frozen --extra app)",
    ]


def test_the_shim_names_only_what_is_missing(tmp_path: Path):
    """One module gone (None in sys.modules makes it unimportable), the rest installed."""
    code = "import sys; sys.modules['typer'] = None; from deployer.entry import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "error: nnote-deploy needs the deploy extra; not installed: typer"
    )
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`uv sync --frozen --no-dev --extra EXTRA` into a fresh environment, not a clone's .venv."""

    def sync(extra: str) -> Path:
        venv = tmp_path_factory.mktemp(extra) / "venv"
        env = environment(UV_PROJECT_ENVIRONMENT=str(venv))
        run_uv(
            "sync", "--frozen", "--offline", "--no-dev", "--no-editable", "--extra", extra,
            "--python", sys.executable, env=env,
        )  # fmt: skip
        return venv

    return sync


def importable(venv: Path, modules: set[str], cwd: Path) -> set[str]:
    code = (
        "import importlib.util, sys; "
        "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))"
    )
    done = run_in(venv, "python", "-c", code, *sorted(modules), cwd=cwd)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_deployer_installs_and_runs_without_the_app(
    synced: Callable[[str], Path], tmp_path: Path
):
    venv = synced("deploy")
    assert importable(venv, {"flask", "gunicorn", "sqlalchemy", "boto3", "typer"}, tmp_path) == {
        "boto3",
        "typer",
    }
    done = run_in(venv, "nnote-deploy", "--help", cwd=tmp_path, COLUMNS="120")
    assert done.returncode == 0, done.stderr
    assert "Usage: nnote-deploy" in done.stdout


def test_the_app_installs_and_boots_without_the_deployer(
    synced: Callable[[str], Path], tmp_path: Path
):
    venv = synced("app")
    assert importable(venv, {"flask", "gunicorn", "boto3", "typer", "rich"}, tmp_path) == {
        "flask",
        "gunicorn",
    }
    # The image's entry point without a command: settings, database, migrations, exit 0.
    database = f"sqlite:///{tmp_path / 'nnote.sqlite'}"
    done = run_in(venv, "python", "-m", "nnote.boot", cwd=tmp_path, DATABASE_URL=database)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "nnote.sqlite").stat().st_size > 0
