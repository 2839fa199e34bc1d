"""The same persistence behaviour on SQLite and on a real MariaDB server."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from nnote.models import Note, User, db
from tests.app.conftest import AuthActions
from tests.app.test_notes import note_bodies

pytestmark = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True
)


def test_migrations_are_idempotent(app: Flask) -> None:
    with app.app_context():
        upgrade()  # a second time, on a migrated database
        tables = set(inspect(db.engine).get_table_names())
        indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("note")}
    assert {"user", "note", "login_failure", "alembic_version"} <= tables
    assert "ix_note_user_id_id" in indexes


def test_notes_round_trip_unicode(user: AuthActions, client: FlaskClient) -> None:
    text = 'Grüße 🎉 中文 — "quotes" & <tags>\nsecond line'
    user.add_note(text)
    html = client.get("/").get_data(as_text=True)
    assert "Grüße 🎉 中文" in html and "second line" in html


def test_unique_email_enforced_by_database(user: AuthActions, app: Flask) -> None:
    with app.app_context():
        db.session.add(User(email="ann@example.com", first_name="Dup", password_hash="x"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_pagination_and_search(user: AuthActions, client: FlaskClient) -> None:
    for number in range(7):
        user.add_note(f"item {number} {'even' if number % 2 == 0 else 'odd'}")
    assert note_bodies(client.get("/").get_data(as_text=True))[0] == "item 6 even"
    assert note_bodies(client.get("/?q=ODD").get_data(as_text=True)) == [
        "item 5 odd",
        "item 3 odd",
        "item 1 odd",
    ]


def test_deleting_account_deletes_only_its_notes(user: AuthActions, app: Flask) -> None:
    user.add_note("ann's")
    user.logout()
    bob = AuthActions(app.test_client())
    bob.signup(email="bob@example.com", first_name="Bob")
    bob.add_note("bob's")
    bob.post(
        "/account/delete", {"account_password": "correct horse battery"}, token_from="/account/"
    )
    with app.app_context():
        assert list(db.session.scalars(select(Note.body))) == ["ann's"]
        assert list(db.session.scalars(select(User.email))) == ["ann@example.com"]


def test_every_request_gives_its_connections_back(user: AuthActions, app: Flask) -> None:
    """Pages read through one request-held connection besides the ORM session's: both must go
    back to the pool when the request ends, or a worker runs out of connections."""
    with app.app_context():
        pool = db.engine.pool
        checked_out_before = pool.checkedout()
    client = user.client
    for number in range(3 * pool.size()):
        user.add_note(f"note {number}")
        assert client.get("/").status_code == 200
        assert client.get("/?q=note").status_code == 200
    with app.app_context():
        assert pool.checkedout() == checked_out_before == 0
    assert len(note_bodies(client.get("/").get_data(as_text=True))) == 5
