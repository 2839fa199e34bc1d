"""The session-user query runs on the driver's cursor (nnote.plain_reads): it must answer
as SQLAlchemy would, end its snapshot when the request's connection rolls back, and fail
as SQLAlchemy would (the 503 page)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import column, select, table, text
from sqlalchemy.exc import OperationalError

from nnote.models import db
from nnote.plain_reads import PlainRead
from nnote.security import SESSION_USER
from nnote.sessions import token_hash
from tests.app.conftest import AuthActions

BOTH = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True
)


def _login_of(user: AuthActions) -> dict[str, object]:
    """The parameters the session-user query gets for the logged-in test client."""
    with user.client.session_transaction() as session:
        user_id, _token, secret = session["_user_id"].split(":")
    return {"user_id": int(user_id), "token_hash": token_hash(secret)}


@BOTH
def test_rows_are_sqlalchemys_rows(app: Flask, user: AuthActions) -> None:
    found = _login_of(user)
    with app.app_context(), db.engine.connect() as connection:
        plain = SESSION_USER.first(connection, found)
        core = connection.execute(SESSION_USER.query, found).first()
        assert core is not None and plain is not None
        assert plain._asdict() == {**core._asdict(), "notes_stale": int(core.notes_stale)}
        assert plain.first_name == "Ann"
        wrong = {**found, "token_hash": token_hash("not the secret")}
        assert SESSION_USER.first(connection, wrong) is None


@pytest.mark.mariadb
@pytest.mark.parametrize("app", ["mariadb"], indirect=True)
def test_rollback_ends_the_snapshot_the_query_began(app: Flask, user: AuthActions) -> None:
    """The home page rolls the request's connection back after a sweep, to read what the
    sweep stored: on MySQL a read sees the snapshot its transaction began with."""
    found = _login_of(user)
    version = text("SELECT notes_version FROM user WHERE id = :id")
    with app.app_context(), db.engine.connect() as reader:
        before = SESSION_USER.first(reader, found).notes_version
        with db.engine.begin() as writer:  # the sweep, on the ORM session's connection
            writer.execute(text("UPDATE user SET notes_version = notes_version + 5"))
        reader.rollback()
        assert reader.execute(version, {"id": found["user_id"]}).scalar() == before + 5


def test_a_driver_error_is_sqlalchemys(app: Flask) -> None:
    missing = PlainRead(select(table("no_such_table", column("x"))))
    with app.app_context(), db.engine.connect() as connection:
        with pytest.raises(OperationalError, match="no_such_table"):
            missing.first(connection, {})
        assert connection.execute(text("SELECT 1")).scalar() == 1  # still usable


def test_a_failing_session_query_is_the_503_page(app: Flask, user: AuthActions) -> None:
    assert user.client.get("/").status_code == 200
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text("ALTER TABLE login_session RENAME TO login_session_gone"))
    response = user.client.get("/")
    assert response.status_code == 503
    assert "try again" in response.get_data(as_text=True).lower()


@BOTH
def test_values_bound_in_the_select_are_sent_too(app: Flask, user: AuthActions) -> None:
    """A select may carry values of its own (a LIMIT, a literal): they go with the caller's."""
    users = table("user", column("id"), column("first_name"))
    first = PlainRead(select(users.c.first_name).where(users.c.id == 1).limit(1))
    with app.app_context(), db.engine.connect() as connection:
        assert first.first(connection, {}).first_name == "Ann"
