"""The home page and note actions: add, edit, delete, paginate, search, and ownership."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from tests.app.conftest import AuthActions


class _NoteTexts(HTMLParser):
    """The text of each note's `.body` (its title or first line, then the rest), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.depth = 0  # inside a .body element: how many elements deep

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag not in VOID
        elif "body" in (dict(attrs).get("class") or "").split():
            self.depth = 1
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1
            self.texts[-1] += " "

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.texts[-1] += data


VOID = {"br", "hr", "input", "img"}


def note_bodies(html: str) -> list[str]:
    """Each listed note's text as a reader sees it, whitespace collapsed."""
    parser = _NoteTexts()
    parser.feed(html.split("</header>", 1)[-1])
    return [" ".join(text.split()) for text in parser.texts]


def test_add_note_redirects_then_shows_it(user: AuthActions, client: FlaskClient) -> None:
    response = user.add_note("Buy milk")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Note added." in page
    assert note_bodies(page) == ["Buy milk"]


@pytest.mark.parametrize(
    ("body", "message"),
    [("   ", "Write something first."), ("x" * 10_001, "A note holds at most 10,000 characters.")],
)
def test_add_note_rejects_bad_text(
    user: AuthActions, client: FlaskClient, body: str, message: str
) -> None:
    response = user.add_note(body)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert note_bodies(client.get("/").get_data(as_text=True)) == []


def test_note_text_is_escaped(user: AuthActions, client: FlaskClient) -> None:
    user.add_note('<script>alert("x")</script><img src=x onerror=alert(1)>')
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_home_lists_newest_first_and_paginates(user: AuthActions, client: FlaskClient) -> None:
    for number in range(12):  # five a page in the tests
        user.add_note(f"note {number}")
    first = client.get("/").get_data(as_text=True)
    assert note_bodies(first) == [f"note {n}" for n in (11, 10, 9, 8, 7)]
    assert "Newer" not in first
    older = re.search(r'href="(/\?before=\d{20}-\d+)"', first)
    assert older
    second = client.get(older.group(1)).get_data(as_text=True)
    assert note_bodies(second) == [f"note {n}" for n in (6, 5, 4, 3, 2)]
    third_link = re.search(r'href="(/\?before=\d{20}-\d+)"', second)
    assert third_link
    third = client.get(third_link.group(1)).get_data(as_text=True)
    assert note_bodies(third) == ["note 1", "note 0"]
    assert "Older" not in third
    back = re.search(r'href="(/\?after=\d{20}-\d+)"', third)
    assert back
    assert note_bodies(client.get(back.group(1)).get_data(as_text=True)) == note_bodies(second)


def test_search_finds_matching_notes_only(user: AuthActions, client: FlaskClient) -> None:
    for body in ("Buy milk", "call mum", "MILK the cow", "100% sure", "under_score"):
        user.add_note(body)
    assert note_bodies(client.get("/?q=milk").get_data(as_text=True)) == [
        "MILK the cow",
        "Buy milk",
    ]
    assert note_bodies(client.get("/?q=%25").get_data(as_text=True)) == ["100% sure"]
    assert note_bodies(client.get("/?q=_").get_data(as_text=True)) == ["under_score"]
    assert "No note contains" in client.get("/?q=zebra").get_data(as_text=True)


def test_edit_note_saves_the_new_text(user: AuthActions, client: FlaskClient) -> None:
    user.add_note("draft")
    note_id = _first_note_id(client)
    form = client.get(f"/notes/{note_id}/edit").get_data(as_text=True)
    assert re.search(r">\s*draft</textarea>", form)
    response = user.post(f"/notes/{note_id}/edit", {"body": "final"}, token_from="/")
    assert response.status_code == 302
    assert note_bodies(client.get("/").get_data(as_text=True)) == ["final"]


def test_delete_note_asks_then_deletes(user: AuthActions, client: FlaskClient) -> None:
    user.add_note("short-lived")
    note_id = _first_note_id(client)
    confirm = client.get(f"/notes/{note_id}/delete").get_data(as_text=True)
    assert "Delete this note?" in confirm and "short-lived" in confirm
    assert note_bodies(client.get("/").get_data(as_text=True)) == ["short-lived"]
    response = user.post(f"/notes/{note_id}/delete", {}, token_from="/")
    assert response.status_code == 302
    assert note_bodies(client.get("/").get_data(as_text=True)) == []


def test_other_users_note_is_not_found(user: AuthActions, client: FlaskClient) -> None:
    user.add_note("Ann's secret")
    note_id = _first_note_id(client)
    user.logout()
    user.signup(email="bob@example.com", first_name="Bob")
    assert "Ann&#39;s secret" not in client.get("/").get_data(as_text=True)
    assert "Ann's secret" not in client.get("/?q=secret").get_data(as_text=True)
    for path in (f"/notes/{note_id}/edit", f"/notes/{note_id}/delete"):
        assert client.get(path).status_code == 404
        assert user.post(path, {"body": "hijacked"}, token_from="/").status_code == 404
    user.logout()
    user.login()
    assert note_bodies(client.get("/").get_data(as_text=True)) == ["Ann's secret"]


@pytest.mark.parametrize(
    "path",
    [
        "/notes/0/edit",
        "/notes/abc/edit",
        "/notes/-1/delete",
        "/notes/99999999999999999999/edit",
        "/notes/2147483648/delete",
    ],
)
def test_bad_note_ids_are_not_found(user: AuthActions, client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "before=abc",
        "before=-5",
        "after=99999999999999999999999",
        "before=",
        "before=12",  # a cursor of the code before (updated_at, id) paging
        "before=99999999999999999999-1",  # not a time
        "after=20261301000000000000-1",  # month 13
        "before=20261201000000000000-99999999999",
        "tag=%00",
        "tag=" + "#" * 300,
        "q=" + "x" * 5000,
    ],
)
def test_bad_page_arguments_show_a_page(user: AuthActions, client: FlaskClient, query: str) -> None:
    user.add_note("still here")
    response = client.get(f"/?{query}")
    assert response.status_code == 200


def _first_note_id(client: FlaskClient) -> int:
    match = re.search(r'id="note-(\d+)"', client.get("/").get_data(as_text=True))
    assert match
    return int(match.group(1))
