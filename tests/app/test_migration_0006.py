"""Migration 0006, up and down on SQLite and MariaDB: renderings stored by the renderer before
it (checkboxes all named "Done", bare addresses as text) are made again when next shown, and
the throttle's sweep of old login failures finds them by time through an index."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, func, insert, inspect, literal, select, text, true, update

from nnote.models import LoginFailure, LoginSession, Note, User, db
from tests.app.conftest import AuthActions
from tests.app.test_notes import note_bodies
from tests.app.test_pinned import BOTH_DATABASES, add_notes

BEFORE = "0005_notes_version"
INDEX = "ix_login_failure_at"
OLDER_LINK = re.compile(r'<a rel="next" href="([^"]+)">Older')


def failure_indexes(app: Flask) -> set[str | None]:
    with app.app_context():
        return {index["name"] for index in inspect(db.engine).get_indexes("login_failure")}


def counts(app: Flask) -> list[int | None]:
    """How many users, notes and login sessions there are."""
    with app.app_context():
        return [
            db.session.scalar(select(func.count()).select_from(table))
            for table in (User, Note, LoginSession)
        ]


@BOTH_DATABASES
def test_migration_0006_upgrades_and_downgrades_in_place(app: Flask, user: AuthActions) -> None:
    user.add_note("kept through it all")
    assert INDEX in failure_indexes(app)
    before = counts(app)
    with app.app_context():
        downgrade(revision=BEFORE)
    assert INDEX not in failure_indexes(app)
    assert "ix_login_failure_key_at" in failure_indexes(app), "0001's own index stays"
    assert counts(app) == before == [1, 1, 1], "no user, note or session lost on the way down"
    with app.app_context():
        upgrade()
    assert INDEX in failure_indexes(app)
    assert counts(app) == before


def old_renderings(app: Flask) -> None:
    """Put what a renderer before 0006 stored in place of each note's stored rendering, left
    marked fresh as that renderer left it (a checklist's boxes all named "Done")."""
    boxes = '<button class="task-box" aria-label="Done">☐</button>'
    with app.app_context():
        old = literal('<div class="body">OLD ') + Note.body
        for has_boxes, rest in ((False, "</div>"), (True, f"{boxes}</div>")):
            checklist = Note.body.contains("[ ]") == has_boxes
            db.session.execute(update(Note).where(checklist).values(html=old + rest))
        db.session.commit()


@BOTH_DATABASES
def test_renderings_stored_before_0006_are_made_again_when_next_shown(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    bodies = [f"note {n}\nsee https://example.com/{n}." for n in range(6)]
    add_notes(user, app, "plain words only", "- [ ] buy milk\n- [x] eggs", *bodies)  # 5 a page
    with app.app_context():
        downgrade(revision=BEFORE)
    old_renderings(app)
    first = client.get("/").text
    assert all(body.startswith("OLD") for body in note_bodies(first)), "stored, as shown"

    with app.app_context():
        upgrade()
        assert db.session.scalar(select(func.count()).where(Note.stale == true())) == 7, (
            "the checklist and the notes with an address, not the plain note"
        )

    first = client.get("/").text
    assert not [body for body in note_bodies(first) if "OLD" in body]
    assert '<a href="https://example.com/5" rel="nofollow noopener">' in first
    older = OLDER_LINK.search(first)
    assert older is not None
    second = client.get(html.unescape(older[1])).text
    kept = [body for body in note_bodies(second) if "OLD" in body]
    assert kept == ["OLD plain words only"], "a rendering that did not change is kept"
    assert re.search(r'aria-label="Done: buy milk"[^>]*>☐<', second)
    assert re.search(r'aria-label="Done: eggs"[^>]*>☑<', second)
    with app.app_context():
        assert not db.session.scalar(select(func.count()).where(Note.stale == true())), (
            "the first visit swept them all (fewer than a sweep's most)"
        )
    assert note_bodies(client.get("/?q=EGGS").text) == ["☐ buy milk ☑ eggs"]


@BOTH_DATABASES
def test_old_login_failures_are_found_by_time(app: Flask) -> None:
    """The delete every throttled write makes (nnote.throttle) reads the index on `at`
    rather than the whole table."""
    start = datetime(2030, 1, 1)
    with app.app_context():
        db.session.execute(
            insert(LoginFailure),
            [{"key": f"pair:{n % 50}", "at": start + timedelta(minutes=n)} for n in range(2000)],
        )
        db.session.commit()
        sweep = delete(LoginFailure).where(LoginFailure.at < start + timedelta(minutes=5))
        plan = query_plan(str(sweep.compile(db.engine, compile_kwargs={"literal_binds": True})))
    assert INDEX in plan, plan


def query_plan(sql: str) -> str:
    """How the database would run `sql`: SQLite's plan, or the indexes MariaDB would use."""
    if db.engine.dialect.name == "sqlite":
        rows = db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
        return " ".join(str(row[-1]) for row in rows)
    db.session.execute(text("ANALYZE TABLE login_failure")).all()
    return " ".join(str(row._mapping["key"]) for row in db.session.execute(text(f"EXPLAIN {sql}")))
