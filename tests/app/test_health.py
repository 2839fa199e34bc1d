"""Liveness and readiness, including a real database outage and recovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nnote import create_app
from tests.app.conftest import base_config
from tests.support.mariadb import MariaDB


def test_healthz_answers_without_database(tmp_path: Path) -> None:
    """An app whose database cannot be opened at all (built that way, not swapped after its
    engine exists): liveness still answers, readiness says why not."""
    unreachable = f"sqlite:///{tmp_path / 'missing-dir' / 'nnote.sqlite'}"
    client = create_app(base_config(unreachable)).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert client.get("/readyz").status_code == 503, "the database really is unreachable"


def test_readyz_ready_when_database_answers(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json == {"status": "ready"}


@pytest.mark.mariadb
@pytest.mark.parametrize("app", ["mariadb"], indirect=True)
def test_readyz_follows_a_database_outage_and_recovers(
    app: Flask, client: FlaskClient, mariadb: MariaDB
) -> None:
    assert client.get("/readyz").status_code == 200
    mariadb.pause()
    try:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json == {"status": "unavailable", "reason": "database unreachable"}
    finally:
        mariadb.resume()
    assert client.get("/readyz").status_code == 200, "recovers without a restart"
