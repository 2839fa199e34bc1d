"""The image from the repository's Dockerfile, run by the real Docker engine."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
from docker.models.containers import Container
from docker.models.images import Image

from tests.conftest import csrf_token_in
from tests.support.images import build_offline_image
from tests.support.mariadb import MariaDB
from tests.support.net import free_port, wait_until

pytestmark = pytest.mark.docker

SECRET_KEY = "container-secret-key-7d1f"
CANARY = "local-dev-secret-canary-5c2e"  # planted in the build context as a developer's secrets
DB_PASSWORD = "container-db-password-93ac"
TAG = "nnote:test"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    # The secrets handed to the build as build arguments, as the old pipeline's CI did
    # (`docker build --build-arg DB_PASSWORD=...`): a Dockerfile that declared and used them
    # would write their values into the image history.
    secrets = {"SECRET_KEY": SECRET_KEY, "DB_PASSWORD": DB_PASSWORD}
    context = tmp_path_factory.mktemp("image-context")
    return build_offline_image(context, TAG, canary=CANARY, extra_args=secrets)


@pytest.fixture
def run_container() -> Iterator:  # type: ignore[type-arg]
    started: list[Container] = []

    def run(environment: dict[str, str]) -> tuple[Container, str]:
        port = free_port()
        container = docker.from_env().containers.run(
            TAG,
            detach=True,
            network_mode="host",
            environment={
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "SECRET_KEY": SECRET_KEY,
                **environment,
            },
        )
        started.append(container)
        return container, f"http://127.0.0.1:{port}"

    yield run
    for container in started:
        container.remove(force=True)


def wait_healthy(url: str, container: Container) -> None:
    def answers() -> bool:
        container.reload()
        assert container.status != "exited", container.logs().decode()
        return requests.get(f"{url}/healthz", timeout=1).ok

    wait_until(answers, 60, "container")


def sign_up_and_add_note(url: str, note: str) -> str:
    browser = requests.Session()
    token = csrf_token_in(browser.get(f"{url}/auth/signup").text)
    signup = browser.post(
        f"{url}/auth/signup",
        data={
            "csrf_token": token,
            "email": "box@example.com",
            "first_name": "Box",
            "password": "container pass",
            "confirm": "container pass",
        },
    )
    assert signup.ok and "Welcome, Box!" in signup.text
    token = csrf_token_in(signup.text)
    home = browser.post(f"{url}/notes", data={"csrf_token": token, "body": note})
    assert home.ok
    return home.text


def test_image_runs_on_sqlite_round_trip(image: Image, run_container) -> None:  # type: ignore[no-untyped-def]
    container, url = run_container({})
    wait_healthy(url, container)
    assert "Shipped in a box" in sign_up_and_add_note(url, "Shipped in a box")
    assert requests.get(f"{url}/readyz", timeout=5).json() == {"status": "ready"}
    _exit_code, user = container.exec_run("id -un")
    assert user.decode().strip() == "nnote", "runs as a non-root user"


@pytest.mark.mariadb
def test_image_runs_against_mariadb(image: Image, run_container, mariadb: MariaDB) -> None:  # type: ignore[no-untyped-def]
    mariadb.create_database("nnote_container", "app", DB_PASSWORD)
    container, url = run_container(
        {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(mariadb.port),
            "DB_NAME": "nnote_container",
            "DB_USERNAME": "app",
            "DB_PASSWORD": DB_PASSWORD,
        }
    )
    wait_healthy(url, container)
    sign_up_and_add_note(url, "Stored in MariaDB")
    with mariadb.admin() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT body FROM nnote_container.note")
        assert cursor.fetchall() == (("Stored in MariaDB",),)
    logs = container.logs().decode()
    assert "Running upgrade" in logs, "the entry point migrated the empty database"
    assert DB_PASSWORD not in logs and SECRET_KEY not in logs


def test_entrypoint_gives_up_on_an_unreachable_database(image: Image, run_container) -> None:  # type: ignore[no-untyped-def]
    container, _url = run_container(
        {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(free_port()),
            "DB_NAME": "x",
            "DB_USERNAME": "app",
            "DB_PASSWORD": DB_PASSWORD,
            "DB_WAIT_ATTEMPTS": "2",
            "DB_WAIT_SECONDS": "0.2",
        }
    )
    assert container.wait(timeout=60)["StatusCode"] != 0
    logs = container.logs().decode()
    assert "database not reachable after 2 attempts" in logs
    assert DB_PASSWORD not in logs


def test_image_refuses_to_start_without_secret_key(image: Image, run_container) -> None:  # type: ignore[no-untyped-def]
    container, _url = run_container({"SECRET_KEY": ""})
    assert container.wait(timeout=60)["StatusCode"] != 0
    assert "SECRET_KEY is not set" in container.logs().decode()


def test_image_stops_gracefully_on_sigterm(image: Image, run_container) -> None:  # type: ignore[no-untyped-def]
    container, url = run_container({})
    wait_healthy(url, container)
    started = time.monotonic()
    container.stop(timeout=30)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    assert time.monotonic() - started < 25, "gunicorn exits on SIGTERM, not by SIGKILL"


def test_image_config_and_history_hold_no_secret(image: Image) -> None:
    config = image.attrs["Config"]
    assert config["User"] == "nnote"
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    env_names = {entry.split("=", 1)[0] for entry in config["Env"]}
    assert not env_names & {"SECRET_KEY", "DB_PASSWORD", "DATABASE_URL", "DB_USERNAME"}
    history = json.dumps(image.history())
    assert not re.search(r"(?i)(secret_key|password)\s*=", history)
    assert SECRET_KEY not in history and DB_PASSWORD not in history


def test_image_layers_hold_no_local_secret(image: Image) -> None:
    """Every byte of every layer: the .env and dev SECRET_KEY files in the context stay out."""
    tail = b""
    for chunk in image.save(chunk_size=1 << 20):
        assert CANARY.encode() not in tail + chunk
        tail = chunk[-64:]


def test_image_size_is_reported(image: Image, artifacts: Path) -> None:
    size_mb = image.attrs["Size"] / 1e6
    (artifacts / "image-size.txt").write_text(f"{TAG} on the local Debian base: {size_mb:.0f} MB\n")
    assert size_mb < 600
