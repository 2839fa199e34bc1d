"""What a visitor and a user see: the landing page, a real <h1> on every page, titles (given
or the first line), previews with "Show more", the note's own page, last edited first,
"edited" and <time> elements, and a form whose token expired keeping the typed text."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from nnote.models import Note, db
from tests.app.conftest import AuthActions
from tests.app.test_notes import note_bodies
from tests.app.test_pinned import BOTH_DATABASES, add_notes, walk

H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S)


def test_logged_out_visitors_get_the_landing_page(client: FlaskClient) -> None:
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert H1.findall(page) == ["nnote: notes that keep up with you"]
    assert 'href="/auth/signup"' in page and 'href="/auth/login"' in page
    assert 'class="new-note"' not in page and 'id="note-actions"' not in page


def test_logged_out_note_pages_still_ask_for_a_login(client: FlaskClient) -> None:
    for path in ("/notes/1", "/notes/1/edit", "/trash/", "/export/notes.zip"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/auth/login?next=")


def test_every_notes_page_has_one_real_h1(user: AuthActions, client: FlaskClient) -> None:
    user.add_note("# Shopping\n\n- [ ] milk")
    pages = {
        "/": "Your notes",
        "/?q=milk": "Your notes",
        "/notes/1": "Shopping",
        "/notes/1/edit": "Edit note",
        "/notes/1/delete": "Delete this note?",
        "/trash/": "Trash",
    }
    for path, heading in pages.items():
        assert H1.findall(client.get(path).get_data(as_text=True)) == [heading], path


def test_a_title_is_optional_and_the_first_line_stands_in(
    user: AuthActions, client: FlaskClient
) -> None:
    user.post("/notes", {"title": "Trip", "body": "pack the tent"}, token_from="/")
    user.add_note("Call mum\nabout Sunday")
    page = client.get("/").get_data(as_text=True)
    titles = re.findall(r'<h3 class="note-title"><a href="/notes/\d+">(.*?)</a></h3>', page)
    assert titles == ["Call mum", "Trip"]
    assert note_bodies(page) == ["Call mum about Sunday", "Trip pack the tent"]


def test_a_title_is_one_line_of_at_most_200_characters(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    response = user.post("/notes", {"title": "x" * 201, "body": "text"}, token_from="/")
    assert response.status_code == 200
    assert "A title holds at most 200 characters." in response.get_data(as_text=True)
    assert 'value="' + "x" * 201 in response.get_data(as_text=True), "the typed title is kept"
    user.post("/notes", {"title": " two\r\nlines\x00 ", "body": "text"}, token_from="/")
    with app.app_context():
        assert db.session.scalars(select(Note.title)).all() == ["two lines"]


def test_a_long_note_shows_a_preview_and_its_page_shows_all(
    user: AuthActions, client: FlaskClient
) -> None:
    user.add_note("Diary\n" + "\n".join(f"entry number {n}" for n in range(30)))
    user.add_note("short one")
    page = client.get("/").get_data(as_text=True)
    assert page.count('class="more"') == 1
    assert '<a class="more" href="/notes/1">Show more</a>' in page
    assert "entry number 5" in page and "entry number 29" not in page
    full = client.get("/notes/1").get_data(as_text=True)
    assert "entry number 29" in full and "Show more" not in full


def test_the_list_is_last_edited_first_and_says_edited(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "oldest", "middle", "newest")
    with app.app_context():  # written a while ago, so that an edit now shows as one
        for note in db.session.scalars(select(Note)):
            note.created_at -= timedelta(hours=2)
            note.updated_at = note.rendered_at = note.updated_at - timedelta(hours=2)
        db.session.commit()
    assert user.post(f"/notes/{ids['oldest']}/edit", {"body": "oldest, edited"}, "/").status_code
    page = client.get("/").get_data(as_text=True)
    assert note_bodies(page) == ["oldest, edited", "newest", "middle"]
    item = page[page.index(f'id="note-{ids["oldest"]}"') :].split("</li>")[0]
    created, edited = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', item)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created[0])
    assert created[1].endswith(" UTC") and created[1][:10] == created[0][:10]
    assert '<span class="edited">· edited <time' in item and edited[0] > created[0]
    other = page[page.index(f'id="note-{ids["newest"]}"') :].split("</li>")[0]
    assert "edited" not in other, "a note never edited does not say so"


def test_pinning_is_no_edit(user: AuthActions, client: FlaskClient, app: Flask) -> None:
    ids = add_notes(user, app, "first", "second")
    assert user.post(f"/notes/{ids['first']}/pin", {}, token_from="/").status_code == 302
    assert user.post(f"/notes/{ids['first']}/unpin", {}, token_from="/").status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert note_bodies(page) == ["second", "first"] and "edited" not in page


def test_another_users_note_page_is_not_found(user: AuthActions, client: FlaskClient) -> None:
    user.add_note("Ann's diary")
    user.logout()
    user.signup(email="bob@example.com", first_name="Bob")
    assert client.get("/notes/1").status_code == 404
    assert client.get("/notes/2147483648").status_code == 404


# Item 4: a note form whose CSRF token no longer matches keeps what was typed.


def _expire_token(client: FlaskClient) -> None:
    """What a session rotated in another tab leaves behind: a different CSRF secret."""
    with client.session_transaction() as session:
        session["csrf_token"] = "a-newer-secret"


def test_an_expired_new_note_form_comes_back_with_the_text(
    user: AuthActions, client: FlaskClient
) -> None:
    token = user.token("/")
    _expire_token(client)
    typed = {"csrf_token": token, "title": "Poem", "body": "Roses are red,\n<violets> are blue"}
    response = client.post("/notes", data=typed)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "so nothing was saved yet" in page and "did not come from this site" in page
    assert 'value="Poem"' in page and "Roses are red,\n&lt;violets&gt; are blue</textarea>" in page
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert fresh and fresh.group(1) != token
    again = client.post("/notes", data={**typed, "csrf_token": fresh.group(1)})
    assert again.status_code == 302
    assert note_bodies(client.get("/").get_data(as_text=True)) == [
        "Poem Roses are red, <violets> are blue"
    ]


def test_an_expired_edit_form_comes_back_with_the_text(
    user: AuthActions, client: FlaskClient
) -> None:
    user.add_note("draft")
    token = user.token("/notes/1/edit")
    _expire_token(client)
    response = client.post("/notes/1/edit", data={"csrf_token": token, "body": "my long rewrite"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "so nothing was saved yet" in page
    assert "my long rewrite</textarea>" in page
    assert note_bodies(client.get("/").get_data(as_text=True)) == ["draft"]


def test_an_expired_form_of_someone_elses_note_shows_nothing_of_it(
    user: AuthActions, client: FlaskClient
) -> None:
    user.add_note("Ann's secret")
    user.logout()
    user.signup(email="bob@example.com", first_name="Bob")
    token = user.token("/")
    _expire_token(client)
    response = client.post("/notes/1/edit", data={"csrf_token": token, "body": "x"})
    assert response.status_code == 404
    assert "Ann" not in response.get_data(as_text=True).split("</header>")[1]


@pytest.mark.parametrize("path", ["/notes", "/notes/1/edit"])
def test_a_logged_out_post_gets_the_plain_error_page(
    user: AuthActions, client: FlaskClient, path: str
) -> None:
    user.add_note("mine")
    token = user.token("/")
    user.logout()
    response = client.post(path, data={"csrf_token": token, "body": "typed while away"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "did not come from this site" in page and "typed while away" not in page


@BOTH_DATABASES
def test_pages_follow_the_last_edited_order_with_every_note_once(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    """Edits reorder the list, so the pages are cut by (updated_at, id), not by id."""
    ids = add_notes(user, app, *(f"note {n}" for n in range(12)))  # five a page in the tests
    for n in (0, 7, 2):  # edited in this order: the last edited comes first
        user.post(f"/notes/{ids[f'note {n}']}/edit", {"body": f"note {n} edited"}, "/")
    pages, last = walk(client, "/", "next")
    assert [listed for _, listed in pages] == [
        ["note 2 edited", "note 7 edited", "note 0 edited", "note 11", "note 10"],
        ["note 9", "note 8", "note 6", "note 5", "note 4"],
        ["note 3", "note 1"],
    ]
    back, top = walk(client, last, "prev")
    assert "after=" in top and back == pages[::-1]
