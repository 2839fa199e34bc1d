"""The plain home page is kept per shape and filled in on each visit (nnote.notes._kept_home):
what each user sees must be exactly what rendering the page for them would show."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask import Flask, render_template
from sqlalchemy import select, text

from nnote import create_app, listing, notes
from nnote.models import User, db
from nnote.security import csrf_token
from tests.app.conftest import PASSWORD, AuthActions


def _rendered_afresh(monkeypatch: pytest.MonkeyPatch, user: AuthActions) -> str:
    """The home page as the template renders it, not kept."""

    def render(context: dict[str, Any]) -> str:
        return render_template("notes/index.html", token=csrf_token(), **context)

    with monkeypatch.context() as patched:
        patched.setattr(notes, "_kept_home", render)
        return user.client.get("/").get_data(as_text=True)


def _note_ids(page: str) -> list[str]:
    return re.findall(r'<li class="note" id="note-(\d+)"', page)


def _pin(user: AuthActions, page: str) -> None:
    first = _note_ids(page)[0]
    assert user.post(f"/notes/{first}/pin", {}, token_from="/").status_code == 302


@pytest.mark.parametrize("notes_written", [0, 3, 7], ids=["empty", "one-page", "two-pages"])
@pytest.mark.parametrize("pinned", [False, True], ids=["none-pinned", "one-pinned"])
def test_the_kept_home_page_is_the_page_rendered_afresh(
    app: Flask, monkeypatch: pytest.MonkeyPatch, notes_written: int, pinned: bool
) -> None:
    ann = AuthActions(app.test_client())
    ann.signup(first_name="Ann <b>& Co</b>")
    for number in range(notes_written):
        ann.add_note(f"note {number} of Ann, <i>with markup</i> #tag")
    ann.client.get("/")  # the welcome message and "Note added." shown and gone
    if pinned and notes_written:
        _pin(ann, ann.client.get("/").get_data(as_text=True))
        ann.client.get("/")
    kept = [ann.client.get("/").get_data(as_text=True) for _ in range(2)]
    assert kept[0] == kept[1] == _rendered_afresh(monkeypatch, ann)
    assert "Ann &lt;b&gt;&amp; Co&lt;/b&gt;" in kept[0]
    if notes_written > 5:
        assert 'rel="next"' in kept[0], "a link to the older page"


def test_each_user_sees_only_their_own_name_notes_and_token(app: Flask) -> None:
    ann, bo = AuthActions(app.test_client()), AuthActions(app.test_client())
    ann.signup()
    ann.add_note("secret note of Ann")
    bo.signup(email="bo@example.com", first_name="Bo")
    bo.add_note("own note of Bo")
    ann_page = ann.client.get("/").get_data(as_text=True)
    bo_page = bo.client.get("/").get_data(as_text=True)
    assert "secret note of Ann" in ann_page and "secret note of Ann" not in bo_page
    assert "own note of Bo" in bo_page and "own note of Bo" not in ann_page
    assert '<span class="who">Bo</span>' in bo_page and '<span class="who">Ann</span>' in ann_page
    bo_tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', bo_page))
    ann_tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', ann_page))
    assert len(bo_tokens) == 1 and len(ann_tokens) == 1 and bo_tokens != ann_tokens
    # Bo's token works for Bo: the note-actions form and the new-note form carry it.
    added = bo.client.post(
        "/notes", data={"body": "with Bo's token", "csrf_token": bo_tokens.pop()}
    )
    assert added.status_code == 302


def test_a_message_or_a_search_is_rendered_not_kept(app: Flask, user: AuthActions) -> None:
    user.add_note("first")
    shown = user.client.get("/").get_data(as_text=True)
    assert "Note added." in shown
    assert "Note added." not in user.client.get("/").get_data(as_text=True)
    searched = user.client.get("/?q=first").get_data(as_text=True)
    assert 'value="first"' in searched and "Clear</a>" in searched


# --- the kept first page of the list (nnote.listing._kept_top_page) ----------------------


def _second_worker(app: Flask) -> Flask:
    """Another gunicorn worker: its own app (and its own kept pages) on the same database."""
    return create_app(dict(app.config))


def test_a_change_made_by_another_worker_shows_at_once(app: Flask) -> None:
    ann = AuthActions(app.test_client())
    ann.signup()
    ann.add_note("first note")
    cookie = ann.client.get_cookie("session")
    assert cookie is not None
    other = AuthActions(_second_worker(app).test_client())
    other.client.set_cookie("session", cookie.value)
    # Each change is made on the other worker, after this one kept the page.
    changes: list[tuple[str, dict[str, str]]] = [
        ("/notes", {"body": "second note"}),
        ("/notes/1/pin", {}),
        ("/notes/1/edit", {"body": "first note, edited"}),
        ("/notes/2/delete", {}),
        ("/trash/2/restore", {}),
    ]
    for path, form in changes:
        before = ann.client.get("/").get_data(as_text=True)
        assert other.post(path, form, token_from="/").status_code == 302, path
        after = ann.client.get("/").get_data(as_text=True)
        assert after != before, f"{path}: the page kept before it changed"
    page = ann.client.get("/").get_data(as_text=True)
    assert "first note, edited" in page and "second note" in page
    assert page.index("Pinned") < page.index("first note, edited") < page.index("second note")


def test_a_new_account_with_a_deleted_accounts_id_sees_none_of_its_notes(app: Flask) -> None:
    gone = AuthActions(app.test_client())
    gone.signup(email="gone@example.com")
    gone.add_note("a note of the deleted account")
    assert "a note of the deleted account" in gone.client.get("/").get_data(as_text=True)
    deleted = gone.post("/account/delete", {"account_password": PASSWORD}, token_from="/account/")
    assert deleted.status_code == 302
    new = AuthActions(app.test_client())
    new.signup(email="new@example.com")
    new.add_note("a note of the new account")  # the same count of changes as the other's
    with app.app_context():
        assert db.session.scalars(select(User.id)).all() == [1], "SQLite gave the id again"
    page = new.client.get("/").get_data(as_text=True)
    assert "a note of the deleted account" not in page
    assert "a note of the new account" in page


def test_notes_older_code_wrote_are_brought_up_to_date_by_the_home_page(app: Flask) -> None:
    """Stale notes keep the first page from being kept: the home page sweeps them."""
    ann = AuthActions(app.test_client())
    ann.signup()
    with app.app_context():  # as code from before migration 0004 inserts them
        db.session.execute(
            text(
                "INSERT INTO note (user_id, body, created_at, updated_at, pinned)"
                " VALUES (1, :body, :at, :at, 0)"
            ),
            [{"body": f"old note {n}", "at": f"2026-01-01 00:00:{n:02d}"} for n in range(30)],
        )
        db.session.commit()
    ann.client.get("/")
    with app.app_context():
        assert not db.session.scalar(text("SELECT count(*) FROM note WHERE stale")), "all swept"


def test_a_change_that_was_not_counted_shows_within_a_minute(
    app: Flask, user: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code from before migration 0005 pins and deletes without counting (while a release
    rolls out): the kept page is read anew after KEPT_SECONDS."""
    user.add_note("pinned by older code")
    assert "Pinned" not in user.client.get("/").get_data(as_text=True)
    with app.app_context():
        db.session.execute(text("UPDATE note SET pinned = 1"))
        db.session.commit()
    assert "Pinned" not in user.client.get("/").get_data(as_text=True), "kept"
    clock = time.monotonic() + listing.KEPT_SECONDS + 1
    monkeypatch.setattr(listing.time, "monotonic", lambda: clock)
    assert "Pinned" in user.client.get("/").get_data(as_text=True)
