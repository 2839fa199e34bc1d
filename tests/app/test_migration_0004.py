"""Migration 0004 (titles, stored renderings, tags, folded search text, the trash), up and
down on SQLite and MariaDB, and what `backward_compatible = True` promises: code from before
it (0003's) still writes correctly on it, and what it writes is shown as it wrote it."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, text

from nnote.models import Note, User, db
from tests.app.conftest import AuthActions
from tests.app.test_notes import note_bodies
from tests.app.test_pinned import BOTH_DATABASES, add_notes

NEW_COLUMNS = {"title", "trashed_at", "html", "search_text", "rendered_at", "stale"}
NEW_INDEXES = {"ix_note_listed", "ix_note_user_id_stale", "ix_note_trashed_at"}


def schema(app: Flask) -> tuple[set[str], set[str | None], set[str]]:
    with app.app_context():
        inspector = inspect(db.engine)
        columns = {column["name"] for column in inspector.get_columns("note")}
        indexes = {index["name"] for index in inspector.get_indexes("note")}
        return columns, indexes, set(inspector.get_table_names())


def old_code(app: Flask, sql: str, **params: object) -> None:
    """A statement as the code from before 0004 makes it: it knows none of the new columns."""
    with app.app_context():
        params.setdefault("owner", db.session.scalar(select(User.id)))
        db.session.execute(text(sql), params)
        db.session.commit()
        db.session.close()


OLD_INSERT = (
    "INSERT INTO note (user_id, body, created_at, updated_at, pinned)"
    " VALUES (:owner, :body, :at, :at, :pinned)"
)


@BOTH_DATABASES
def test_migration_0004_upgrades_and_downgrades(app: Flask) -> None:
    columns, indexes, tables = schema(app)
    assert columns >= NEW_COLUMNS and indexes >= NEW_INDEXES and "note_tag" in tables
    with app.app_context():
        downgrade(revision="0003_login_sessions")
    columns, indexes, tables = schema(app)
    assert not NEW_COLUMNS & columns and not NEW_INDEXES & indexes and "note_tag" not in tables
    assert {"ix_note_user_id_id", "ix_note_user_id_pinned_id"} <= indexes, "older indexes stay"
    with app.app_context():
        upgrade()
    columns, indexes, tables = schema(app)
    assert columns >= NEW_COLUMNS and indexes >= NEW_INDEXES and "note_tag" in tables


@BOTH_DATABASES
def test_a_downgrade_keeps_titles_in_the_text_and_trashed_notes(
    app: Flask, user: AuthActions
) -> None:
    user.post("/notes", {"title": "Trip", "body": "pack #tent"}, token_from="/")
    user.add_note("untitled")
    user.post("/notes/2/delete", {}, token_from="/")
    with app.app_context():
        downgrade(revision="0003_login_sessions")
        rows = db.session.execute(text("SELECT body FROM note ORDER BY id")).scalars().all()
    assert rows == ["# Trip\n\npack #tent", "untitled"]


@BOTH_DATABASES
def test_notes_the_old_code_inserts_are_rendered_tagged_and_found(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    add_notes(user, app, "new code")
    old_code(
        app,
        OLD_INSERT,
        body="- [ ] from **old** code #Legacy",
        at="2030-01-01 10:00:00",
        pinned=False,
    )
    old_code(app, OLD_INSERT, body="pinned by old code", at="2030-01-01 09:00:00", pinned=True)
    with app.app_context():
        assert db.session.scalars(select(Note.title).where(Note.body != "new code")).all() == [
            "",
            "",
        ], "the server default fills the title"
    page = client.get("/").text  # shown first, before any search stores what it renders
    assert note_bodies(page) == [
        "pinned by old code",
        "☐ from old code #Legacy",
        "new code",
    ]
    assert "<strong>old</strong>" in page and 'class="task-box"' in page
    assert note_bodies(client.get("/?tag=legacy").text) == ["☐ from old code #Legacy"]
    assert note_bodies(client.get("/?q=OLD").text) == [
        "pinned by old code",
        "☐ from old code #Legacy",
    ]
    with app.app_context():
        assert not any(db.session.scalars(select(Note.stale))), "stored once seen"


@BOTH_DATABASES
def test_an_edit_by_the_old_code_never_shows_a_stale_rendering(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    user.add_note("Groceries\nbuy #milk")
    assert "buy #milk" in client.get("/").text
    with app.app_context():
        saved = db.session.scalar(select(Note.updated_at))
    # Within the same second as the save: only microseconds tell the two versions apart.
    edited_at = saved.replace(microsecond=(saved.microsecond + 1) % 1_000_000)
    old_code(
        app,
        "UPDATE note SET body = :body, updated_at = :at",
        body="Groceries\nbuy #bread",
        at=edited_at,
    )
    assert note_bodies(client.get("/").text) == ["Groceries buy #bread"]
    assert note_bodies(client.get("/?q=bread").text) == ["Groceries buy #bread"]
    assert note_bodies(client.get("/?tag=milk").text) == []
    assert note_bodies(client.get("/?tag=bread").text) == ["Groceries buy #bread"]


@BOTH_DATABASES
def test_a_search_finds_what_the_old_code_wrote_before_any_page_shows_it(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    user.add_note("Groceries\nbuy #milk")
    old_code(app, OLD_INSERT, body="Sale on #Bread", at="2020-01-01 10:00:00", pinned=False)
    with app.app_context():
        saved = db.session.scalar(select(Note.updated_at).where(Note.body.contains("milk")))
    old_code(
        app,
        "UPDATE note SET body = :body, updated_at = :at WHERE body LIKE '%milk%'",
        body="Groceries\nbuy #butter",
        at=saved.replace(microsecond=(saved.microsecond + 1) % 1_000_000),
    )
    assert note_bodies(client.get("/?q=BUTTER").text) == ["Groceries buy #butter"]
    assert note_bodies(client.get("/?tag=bread").text) == ["Sale on #Bread"]


@BOTH_DATABASES
def test_old_code_deleting_a_note_takes_its_tags(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    user.add_note("#gone soon")
    old_code(app, "DELETE FROM note")
    with app.app_context():
        assert db.session.execute(text("SELECT COUNT(*) FROM note_tag")).scalar() == 0
    assert "No note is tagged #gone." in client.get("/?tag=gone").text


@pytest.mark.mariadb
@pytest.mark.parametrize("app", ["mariadb"], indirect=True)
def test_on_mariadb_times_keep_microseconds_and_search_compares_bytes(app: Flask) -> None:
    with app.app_context():
        columns = {c["name"]: c for c in inspect(db.engine).get_columns("note")}
        ddl = db.session.execute(text("SHOW CREATE TABLE note")).one()[1]
    assert "`updated_at` datetime(6) NOT NULL" in ddl and "`rendered_at` datetime(6)" in ddl
    assert "utf8mb4_bin" in ddl.split("`search_text`")[1].split("\n")[0]
    assert columns["stale"]["computed"]["sqltext"]
