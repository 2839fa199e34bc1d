"""#tags (stored, so `?tag=x` is an index lookup) and search that folds case for all of
Unicode the same way on SQLite and MariaDB."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from nnote.models import db
from tests.app.conftest import AuthActions
from tests.app.test_notes import note_bodies
from tests.app.test_pinned import BOTH_DATABASES, add_notes, home, pin


def bodies(client: FlaskClient, query: str) -> list[str]:
    return note_bodies(client.get(f"/?{query}").get_data(as_text=True))


@BOTH_DATABASES
def test_a_tag_filter_lists_the_notes_tagged_so_in_any_case(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    add_notes(user, app, "plan the #Work trip", "#work: report", "#workshop notes", "no tag")
    assert bodies(client, "tag=work") == ["#work: report", "plan the #Work trip"]
    assert bodies(client, "tag=WORK") == bodies(client, "tag=%23work")
    assert bodies(client, "tag=workshop") == ["#workshop notes"]
    assert "No note is tagged #nothing." in client.get("/?tag=nothing").get_data(as_text=True)


def test_tags_are_shown_as_filter_links(user: AuthActions, client: FlaskClient) -> None:
    user.post("/notes", {"title": "Trip #Travel", "body": "see #café-crème"}, token_from="/")
    page = client.get("/").get_data(as_text=True)
    links = re.findall(r'<a class="tag" rel="tag" href="([^"]+)">([^<]+)</a>', page)
    assert links == [("/?tag=travel", "#travel"), ("/?tag=caf%C3%A9-cr%C3%A8me", "#café-crème")]
    assert bodies(client, "tag=caf%C3%A9-cr%C3%A8me") == ["Trip #Travel see #café-crème"]


def test_editing_a_note_changes_its_tags(user: AuthActions, client: FlaskClient) -> None:
    user.add_note("#old topic")
    user.post("/notes/1/edit", {"body": "#new topic"}, token_from="/")
    assert bodies(client, "tag=old") == []
    assert bodies(client, "tag=new") == ["#new topic"]


def test_a_tag_filter_shows_only_my_notes_out_of_the_trash(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "mine #shared", "trashed #shared", "pinned #shared")
    assert pin(user, ids["pinned #shared"]) == 302
    assert user.post(f"/notes/{ids['trashed #shared']}/delete", {}, "/").status_code == 302
    user.logout()
    user.signup(email="bob@example.com", first_name="Bob")
    user.add_note("bob's #shared")
    assert bodies(client, "tag=shared") == ["bob's #shared"]
    user.logout()
    user.login()
    page = client.get("/?tag=shared").get_data(as_text=True)
    assert home(page) == (["pinned #shared"], ["mine #shared"])


@BOTH_DATABASES
def test_a_tag_filter_pages_like_the_list(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    add_notes(user, app, *(f"#even note {n}" if n % 2 == 0 else f"note {n}" for n in range(16)))
    first = client.get("/?tag=even").get_data(as_text=True)
    assert note_bodies(first) == [f"#even note {n}" for n in (14, 12, 10, 8, 6)]
    older = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert older and "tag=even" in older.group(1)
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert note_bodies(second) == ["#even note 4", "#even note 2", "#even note 0"]


def test_the_tag_filter_is_an_index_lookup(app: Flask, user: AuthActions) -> None:
    with app.app_context():
        plan = db.session.execute(
            text("EXPLAIN QUERY PLAN SELECT note_id FROM note_tag WHERE user_id = 1 AND tag = 'x'")
        ).all()
    assert "USING COVERING INDEX ix_note_tag_user_id_tag" in " ".join(str(row) for row in plan)


@pytest.mark.parametrize("query", ["tag=", "tag=%00", "tag=" + "%23" * 300, "tag=a%22%3Cb%3Ex"])
def test_odd_tag_arguments_show_a_page(user: AuthActions, client: FlaskClient, query: str) -> None:
    user.add_note("#a note")
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    assert '"<b>x' not in response.get_data(as_text=True)


# Search: folded by the app (nnote.markdown.fold), compared byte for byte by the database.

NOTES = ["Café au lait", "CAFE noir", "Straße 5", "ΣΊΣΥΦΟΣ rolls", "ﬁne print", "İstanbul trip"]
SEARCHES = {
    "café": ["Café au lait"],
    "CAFÉ": ["Café au lait"],
    "cafe\u0301": ["Café au lait"],  # the é typed as e + combining accent
    "cafe": ["CAFE noir"],  # accents count, on both databases (MariaDB's own collation
    "CAFE": ["CAFE noir"],  # would have matched "Café" too; SQLite's would not)
    "strasse": ["Straße 5"],
    "STRASSE": ["Straße 5"],
    "σίσυφος": ["ΣΊΣΥΦΟΣ rolls"],
    "fine": ["ﬁne print"],
    "i̇stanbul": ["İstanbul trip"],
    "%": [],
    "_": [],
}


@BOTH_DATABASES
def test_search_ignores_case_for_all_of_unicode_the_same_on_both_databases(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    add_notes(user, app, *NOTES)
    found = {search: bodies(client, f"q={search}") for search in SEARCHES}
    assert found == SEARCHES


@BOTH_DATABASES
def test_search_covers_title_body_and_tags(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    user.post("/notes", {"title": "Äpfel kaufen", "body": "beim Markt"}, token_from="/")
    user.post("/notes", {"title": "", "body": "Liste #Einkauf"}, token_from="/")
    assert bodies(client, "q=ÄPFEL") == ["Äpfel kaufen beim Markt"]
    assert bodies(client, "q=markt") == ["Äpfel kaufen beim Markt"]
    assert bodies(client, "q=%23einkauf") == bodies(client, "q=EINKAUF") == ["Liste #Einkauf"]
    assert bodies(client, "q=markt&tag=einkauf") == []
