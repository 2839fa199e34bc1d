"""The trash: Delete moves a note there with an Undo right in the message; the Trash page
restores or deletes forever; 30 days later the note is gone; trashed notes are in no list,
search, tag or export."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from nnote.models import Note, NoteTag, db, utcnow
from tests.app.conftest import AuthActions
from tests.app.test_notes import note_bodies
from tests.app.test_pinned import BOTH_DATABASES, add_notes

UNDO = re.compile(
    r'<p class="flash flash-undo" role="status">Note moved to the trash\. '
    r'<button form="note-actions" formaction="(/trash/\d+/restore)" class="link undo">Undo'
    r"</button></p>"
)


def trash(user: AuthActions, note_id: int, page: str = "/") -> str:
    """Delete the note from `page` (its list's button); the page the browser lands on."""
    response = user.post(f"/notes/{note_id}/delete", {"next": page}, token_from=page)
    assert response.status_code == 302
    return user.client.get(response.headers["Location"]).get_data(as_text=True)


def in_database(app: Flask) -> dict[str, bool]:
    """Every note's body, and whether it is in the trash."""
    with app.app_context():
        rows = db.session.execute(select(Note.body, Note.trashed_at))
        return {body: trashed is not None for body, trashed in rows}


def test_delete_moves_to_the_trash_with_an_undo_in_the_message(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "keep", "oops")
    page = trash(user, ids["oops"])
    undo = UNDO.search(page)
    assert undo, "the Undo is a button inside the flash message"
    assert '<form id="note-actions" method="post" hidden>' in page, "the form the Undo submits"
    assert note_bodies(page) == ["keep"]
    assert in_database(app) == {"keep": False, "oops": True}
    response = user.post(undo.group(1), {"next": "/"}, token_from="/")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Note restored." in page and note_bodies(page) == ["oops", "keep"]
    assert in_database(app) == {"keep": False, "oops": False}


def test_the_undo_works_even_when_no_note_is_left(user: AuthActions, app: Flask) -> None:
    ids = add_notes(user, app, "only one")
    page = trash(user, ids["only one"])
    assert "No notes yet" in page and UNDO.search(page)
    assert '<form id="note-actions" method="post" hidden>' in page


def test_deleting_from_the_notes_page_goes_back_to_the_list(user: AuthActions, app: Flask) -> None:
    ids = add_notes(user, app, "a note")
    response = user.post(f"/notes/{ids['a note']}/delete", {"next": f"/notes/{ids['a note']}"})
    assert response.headers["Location"] == "/"


def test_the_trash_page_lists_restores_and_deletes_forever(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "first", "second", "third")
    for body in ("first", "second"):
        trash(user, ids[body])
    page = client.get("/trash/").get_data(as_text=True)
    assert note_bodies(page) == ["second", "first"]
    assert "deleted forever on" in page and "Empty trash (2 notes)" in page
    restore = f'formaction="/trash/{ids["first"]}/restore"'
    assert restore in page and f'formaction="/trash/{ids["second"]}/delete"' in page
    response = user.post(f"/trash/{ids['second']}/delete", {"next": "/trash/"}, "/trash/")
    assert response.headers["Location"] == "/trash/"
    assert "Note deleted forever." in client.get("/trash/").get_data(as_text=True)
    assert in_database(app) == {"first": True, "third": False}
    user.post(f"/trash/{ids['first']}/restore", {"next": "/trash/"}, "/trash/")
    assert "The trash is empty." in client.get("/trash/").get_data(as_text=True)
    assert in_database(app) == {"first": False, "third": False}


def test_emptying_the_trash_deletes_only_trashed_notes(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "gone 1", "gone 2", "stays")
    trash(user, ids["gone 1"])
    trash(user, ids["gone 2"])
    response = user.post("/trash/empty", {}, token_from="/trash/")
    assert response.headers["Location"] == "/trash/"
    assert "2 notes deleted forever" in client.get("/trash/").get_data(as_text=True)
    assert in_database(app) == {"stays": False}


@BOTH_DATABASES
def test_trash_older_than_30_days_is_deleted_for_good(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    ids = add_notes(user, app, "old", "recent", "live", "#tagged old")
    for body in ("old", "recent", "#tagged old"):
        trash(user, ids[body])
    with app.app_context():
        db.session.execute(
            update(Note)
            .where(Note.body.in_(["old", "#tagged old"]))
            .values(trashed_at=utcnow() - timedelta(days=30, minutes=1))
        )
        db.session.execute(
            update(Note)
            .where(Note.body == "recent")
            .values(trashed_at=utcnow() - timedelta(days=29, hours=23))
        )
        db.session.commit()
    assert note_bodies(client.get("/trash/").get_data(as_text=True)) == ["recent"]
    assert in_database(app) == {"recent": True, "live": False}
    with app.app_context():
        assert db.session.scalars(select(NoteTag.tag)).all() == [], "its tags went with it"


def test_any_delete_also_purges_anyones_expired_trash(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    """Expired notes do not linger while their owner stays away: any user's delete purges
    them too, a bounded batch at a time."""
    add_notes(user, app, "ann's old")
    trash(user, 1)
    with app.app_context():
        db.session.execute(update(Note).values(trashed_at=utcnow() - timedelta(days=31)))
        db.session.commit()
    user.logout()
    bob = AuthActions(app.test_client())
    bob.signup("bob@example.com", first_name="Bob")
    bob.add_note("bob's")
    bob.post("/notes/2/delete", {}, token_from="/")
    assert in_database(app) == {"bob's": True}


def test_trashed_notes_are_in_no_list_search_tag_or_zip(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "#topic visible", "#topic hidden")
    trash(user, ids["#topic hidden"])
    for query in ("", "?q=hidden", "?q=topic", "?tag=topic"):
        assert "hidden" not in " ".join(note_bodies(client.get(f"/{query}").text)), query
    assert client.get(f"/notes/{ids['#topic hidden']}/edit").status_code == 404
    assert user.post(f"/notes/{ids['#topic hidden']}/pin", {}, "/").status_code == 404
    exported = json.loads(client.get("/export/notes.json").data)["notes"]
    assert [(n["body"], n["trashed_at"] is not None) for n in exported] == [
        ("#topic visible", False),
        ("#topic hidden", True),
    ]


def test_only_the_owner_restores_or_deletes_forever(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    note_id = add_notes(user, app, "ann's")["ann's"]
    trash(user, note_id)
    user.logout()
    user.signup(email="bob@example.com", first_name="Bob")
    for action in ("restore", "delete"):
        assert user.post(f"/trash/{note_id}/{action}", {}, "/").status_code == 404
    assert user.post("/trash/empty", {}, "/").status_code == 302
    assert "ann" not in client.get("/trash/").get_data(as_text=True).split("</header>")[1]
    assert in_database(app) == {"ann's": True}


@pytest.mark.parametrize("path", ["/trash/1/restore", "/trash/1/delete", "/trash/empty"])
def test_trash_actions_need_a_valid_token(
    user: AuthActions, client: FlaskClient, app: Flask, path: str
) -> None:
    add_notes(user, app, "in the trash")
    trash(user, 1)
    for form in ({}, {"csrf_token": "forged"}):
        response = client.post(path, data=form)
        assert response.status_code == 400
        assert "did not come from this site" in response.get_data(as_text=True)
    assert client.get(path).status_code == 405
    assert in_database(app) == {"in the trash": True}


def test_restoring_a_note_not_in_the_trash_is_not_found(user: AuthActions, app: Flask) -> None:
    add_notes(user, app, "live")
    assert user.post("/trash/1/restore", {}, "/").status_code == 404
    assert user.post("/trash/1/delete", {}, "/").status_code == 404
    assert in_database(app) == {"live": False}
