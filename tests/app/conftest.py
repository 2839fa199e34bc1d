"""flaskr-style fixtures: `app` (SQLite by default, MariaDB when parametrized), `client`, `auth`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from werkzeug.test import TestResponse

from nnote import create_app
from tests.conftest import csrf_token_in
from tests.support.mariadb import MariaDB

PASSWORD = "correct horse battery"
_database_numbers = itertools.count()


def base_config(database_uri: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "NOTES_PER_PAGE": 5,
    }


def _database_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'nnote.sqlite'}"
        return
    server: MariaDB = request.getfixturevalue("mariadb")
    name = f"nnote_test_{next(_database_numbers)}"
    server.create_database(name, "nnote", "nnote-test-pw")
    yield server.url(name, "nnote", "nnote-test-pw")
    server.drop_database(name)


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """A fresh app on an empty database, migrated with the committed migrations."""
    for uri in _database_uri(request, tmp_path):
        app = create_app(base_config(uri))
        with app.app_context():
            upgrade()
        yield app
        with app.app_context():
            from nnote.models import db

            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class AuthActions:
    """Sign up, log in and post forms the way a browser does: with the page's CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def token(self, path: str = "/auth/login") -> str:
        page = self.client.get(path, follow_redirects=True)
        return csrf_token_in(page.get_data(as_text=True))

    def post(
        self, path: str, data: dict[str, Any], token_from: str | None = None, **kwargs: Any
    ) -> TestResponse:
        form = {"csrf_token": self.token(token_from or "/auth/login"), **data}
        return self.client.post(path, data=form, **kwargs)

    def signup(
        self, email: str = "ann@example.com", password: str = PASSWORD, first_name: str = "Ann"
    ) -> TestResponse:
        return self.post(
            "/auth/signup",
            {"email": email, "first_name": first_name, "password": password, "confirm": password},
            token_from="/auth/signup",
        )

    def login(
        self, email: str = "ann@example.com", password: str = PASSWORD, remember: bool = False
    ) -> TestResponse:
        data = {"email": email, "password": password}
        if remember:
            data["remember"] = "y"
        return self.post("/auth/login", data)

    def logout(self) -> TestResponse:
        return self.post("/auth/logout", {}, token_from="/account/")

    def add_note(self, body: str) -> TestResponse:
        return self.post("/notes", {"body": body}, token_from="/")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def user(auth: AuthActions) -> AuthActions:
    """A signed-up, logged-in user (Ann)."""
    response = auth.signup()
    assert response.status_code == 302
    return auth
