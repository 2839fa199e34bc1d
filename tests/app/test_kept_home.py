"""The plain home page is kept per shape and filled in on each visit (nnote.notes._kept_home):
what each user sees must be exactly what rendering the page for them would show."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, render_template

from nnote import notes
from nnote.security import csrf_token
from tests.app.conftest import AuthActions


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
