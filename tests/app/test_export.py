"""Export from the account page: a zip of Markdown files (front matter, safe unique names,
the trash in a folder of its own) and a JSON document with every field; the owner's only."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nnote.export import file_stem
from tests.app.conftest import AuthActions
from tests.app.test_pinned import add_notes, pin


def archive(client: FlaskClient) -> dict[str, str]:
    response = client.get("/export/notes.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="nnote-')
    with zipfile.ZipFile(io.BytesIO(response.data)) as zipped:
        return {name: zipped.read(name).decode() for name in zipped.namelist()}


def test_the_account_page_offers_both_exports(user: AuthActions, client: FlaskClient) -> None:
    page = client.get("/account/").get_data(as_text=True)
    assert 'href="/export/notes.zip"' in page and 'href="/export/notes.json"' in page


def test_the_zip_holds_one_markdown_file_a_note(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    user.post("/notes", {"title": "Trip", "body": "- [ ] tent #travel"}, token_from="/")
    user.add_note("Buy milk\nand eggs")
    user.add_note("Buy milk")
    ids = add_notes(user, app, "old idea")
    assert pin(user, 1) == 302
    user.post(f"/notes/{ids['old idea']}/delete", {}, token_from="/")
    files = archive(client)
    assert sorted(files) == [
        "nnote/Buy milk (2).md",
        "nnote/Buy milk.md",
        "nnote/Trash/old idea.md",
        "nnote/Trip.md",
    ]
    trip = files["nnote/Trip.md"]
    front, text = trip.split("\n---\n\n")
    assert front.splitlines() == [
        "---",
        'title: "Trip"',
        *[line for line in front.splitlines() if line.startswith(("created:", "updated:"))],
        'tags: ["travel"]',
        "pinned: true",
    ]
    assert text == "- [ ] tent #travel\n"
    assert "trashed: " in files["nnote/Trash/old idea.md"]


def test_the_json_has_every_field(user: AuthActions, client: FlaskClient) -> None:
    user.post("/notes", {"title": "Café", "body": "über #Tag"}, token_from="/")
    response = client.get("/export/notes.json")
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].endswith('.json"')
    document = json.loads(response.data)
    (note,) = document["notes"]
    assert set(note) == {
        "id",
        "title",
        "body",
        "tags",
        "pinned",
        "created_at",
        "updated_at",
        "trashed_at",
    }
    assert (note["title"], note["body"], note["tags"]) == ("Café", "über #Tag", ["tag"])
    assert note["created_at"].endswith("Z") and note["trashed_at"] is None


def test_an_export_holds_only_the_owners_notes(user: AuthActions, client: FlaskClient) -> None:
    user.add_note("Ann's secret")
    user.logout()
    user.signup(email="bob@example.com", first_name="Bob")
    user.add_note("Bob's")
    assert [n["body"] for n in json.loads(client.get("/export/notes.json").data)["notes"]] == [
        "Bob's"
    ]
    assert "Ann" not in " ".join(archive(client).values())
    user.logout()
    assert client.get("/export/notes.json").status_code == 302


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("../../etc/passwd", "etc passwd"),
        ('a<b>c:d"e/f\\g|h?i*j', "a b c d e f g h i j"),
        ("CON", "Note CON"),
        ("nul.txt", "Note nul.txt"),
        ("...", "Note"),
        ("", "Note"),
        (" .hidden. ", "hidden"),
        ("tab\there\x00nul", "tab here nul"),
        ("x" * 100, "x" * 60),
        ("Grüße 🎉", "Grüße 🎉"),
    ],
)
def test_file_names_are_safe(title: str, stem: str) -> None:
    assert file_stem(title) == stem


def test_names_differing_only_in_case_are_made_unique(
    user: AuthActions, client: FlaskClient
) -> None:
    for title in ("Plan", "plan", "PLAN"):
        user.post("/notes", {"title": title, "body": "x"}, token_from="/")
    assert sorted(archive(client)) == ["nnote/PLAN (3).md", "nnote/Plan.md", "nnote/plan (2).md"]
