"""Ticking a checklist: each box is a button that POSTs (with the page's CSRF token) to flip
that `[ ]` in the note's Markdown; owner only; a page older than the note ticks nothing."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from nnote.models import Note, db
from tests.app.conftest import AuthActions

SHOPPING = "Shopping\n- [ ] milk\n- [x] eggs\n- [ ] bread"
BOX = re.compile(r'formaction="(/notes/\d+/check/\d+\?at=\d+)"[^>]*aria-pressed="(\w+)"')


def boxes(client: FlaskClient, path: str = "/") -> list[tuple[str, str]]:
    return [(html.unescape(url), state) for url, state in BOX.findall(client.get(path).text)]


def body(app: Flask) -> str:
    with app.app_context():
        return db.session.scalars(select(Note.body)).one()


def test_ticking_a_box_flips_it_in_the_text_and_comes_back(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    user.add_note(SHOPPING)
    found = boxes(client)
    assert [state for _, state in found] == ["false", "true", "false"]
    response = user.post(found[2][0], {"next": "/?q=milk"}, token_from="/")
    assert response.status_code == 302 and response.headers["Location"] == "/?q=milk#note-1"
    assert body(app) == "Shopping\n- [ ] milk\n- [x] eggs\n- [x] bread"
    assert [state for _, state in boxes(client)] == ["false", "true", "true"]
    untick = boxes(client, "/notes/1")[1][0]  # the note's own page has the same boxes
    assert user.post(untick, {}, token_from="/").headers["Location"] == "/#note-1"
    assert body(app) == "Shopping\n- [ ] milk\n- [ ] eggs\n- [x] bread"


def test_a_page_older_than_the_note_ticks_nothing(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    user.add_note(SHOPPING)
    old_page = boxes(client)
    user.post("/notes/1/edit", {"body": "Shopping\n- [ ] cheese\n- [ ] milk"}, token_from="/")
    response = user.post(old_page[0][0], {}, token_from="/")
    assert response.status_code == 302
    assert "nothing was ticked" in client.get("/").text
    assert body(app) == "Shopping\n- [ ] cheese\n- [ ] milk", "not the box that moved there"


def test_a_box_that_is_not_there_ticks_nothing(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    user.add_note(SHOPPING)
    url = boxes(client)[0][0].replace("/check/0", "/check/9")
    assert user.post(url, {}, token_from="/").status_code == 302
    assert body(app) == SHOPPING


def test_only_the_owner_ticks_with_a_valid_token(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    user.add_note(SHOPPING)
    url = boxes(client)[0][0]
    for form in ({}, {"csrf_token": "forged"}):
        assert client.post(url, data=form).status_code == 400
    assert client.get(url).status_code == 405
    user.logout()
    assert user.post(url, {}).status_code == 302  # to the login page
    user.signup(email="bob@example.com", first_name="Bob")
    assert user.post(url, {}, token_from="/").status_code == 404
    assert body(app) == SHOPPING


def test_a_trashed_note_ticks_nothing(user: AuthActions, client: FlaskClient, app: Flask) -> None:
    user.add_note(SHOPPING)
    url = boxes(client)[0][0]
    assert user.post("/notes/1/delete", {}, token_from="/").status_code == 302
    assert 'class="task-box" disabled' in client.get("/trash/").text
    assert user.post(url, {}, token_from="/").status_code == 404
    assert body(app) == SHOPPING


def test_the_next_address_stays_on_this_site(user: AuthActions, client: FlaskClient) -> None:
    user.add_note(SHOPPING)
    url = boxes(client)[0][0]
    response = user.post(url, {"next": "https://evil.example/"}, token_from="/")
    assert response.headers["Location"] == "/#note-1"


NAMED_BOX = re.compile(r'<button [^>]*aria-pressed="(\w+)" aria-label="([^"]*)"')


def test_each_box_tells_a_screen_reader_which_item_it_ticks(
    user: AuthActions, client: FlaskClient
) -> None:
    """A screen reader hears "Done: milk, toggle button, not pressed", not "Done" for every
    item: the name comes from the item's text, on the list and on the note's own page."""
    user.add_note(SHOPPING + '\n- [ ] *two* `cheeses` & "wine"')
    expected = [
        ("Done: milk", "false"),
        ("Done: eggs", "true"),
        ("Done: bread", "false"),
        ('Done: two cheeses & "wine"', "false"),
    ]
    for path in ("/", "/notes/1"):
        page = client.get(path).text
        named = [(html.unescape(name), state) for state, name in NAMED_BOX.findall(page)]
        assert named == expected, path
    user.post(boxes(client)[0][0], {}, token_from="/")
    page = client.get("/").text
    named = [(html.unescape(name), state) for state, name in NAMED_BOX.findall(page)]
    assert named[0] == ("Done: milk", "true"), "the name stays, the state changes"
