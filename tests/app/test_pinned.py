"""Pinned notes: the Pin and Unpin buttons, the Pinned section above the list, a list that
pages as before without them, and migration 0002 that adds the column (SQLite and MariaDB)."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, text, update

from nnote.listing import PINNED_MAX
from nnote.models import Note, User, db
from tests.app.conftest import AuthActions
from tests.app.test_notes import note_bodies

VERSIONS = Path(__file__).parents[2] / "nnote/migrations/versions"
BOTH_DATABASES = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True
)
PINNED_SECTION = re.compile(r'<section class="pinned".*?</section>', re.S)


def home(html_page: str) -> tuple[list[str], list[str]]:
    """A home page's (pinned, listed) note bodies, each section in its order."""
    section = PINNED_SECTION.search(html_page)
    if section is None:
        return [], note_bodies(html_page)
    listed = html_page[: section.start()] + html_page[section.end() :]
    return note_bodies(section.group(0)), note_bodies(listed)


def add_notes(user: AuthActions, app: Flask, *bodies: str) -> dict[str, int]:
    """Add the notes as the user does; their ids by body."""
    for body in bodies:
        assert user.add_note(body).status_code == 302
    with app.app_context():
        return {body: note_id for note_id, body in db.session.execute(select(Note.id, Note.body))}


def pin(user: AuthActions, note_id: int, action: str = "pin") -> int:
    return user.post(f"/notes/{note_id}/{action}", {}, token_from="/").status_code


def pinned_in_database(app: Flask) -> dict[str, bool]:
    with app.app_context():
        return {body: pinned for body, pinned in db.session.execute(select(Note.body, Note.pinned))}


def test_pin_moves_a_note_into_the_pinned_section_and_out_of_the_list(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "first", "second", "third")
    response = user.post(f"/notes/{ids['second']}/pin", {}, token_from="/")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Note pinned." in page
    assert home(page) == (["second"], ["third", "first"])
    section = PINNED_SECTION.search(page)
    assert section and f'formaction="/notes/{ids["second"]}/unpin"' in section.group(0)
    assert ">Unpin</button>" in section.group(0) and ">Pin</button>" not in section.group(0)
    assert f'formaction="/notes/{ids["third"]}/pin"' in page


def test_unpin_moves_it_back_into_the_list(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "first", "second", "third")
    assert pin(user, ids["second"]) == 302
    assert pin(user, ids["second"], "unpin") == 302
    page = client.get("/").get_data(as_text=True)
    assert "Note unpinned." in page
    assert home(page) == ([], ["third", "second", "first"])
    assert 'class="pinned"' not in page


def test_pinning_twice_keeps_the_note_pinned(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    """Not a toggle: a double click or a resent form must not undo the pin."""
    ids = add_notes(user, app, "keep me up")
    assert [pin(user, ids["keep me up"]) for _ in range(2)] == [302, 302]
    assert home(client.get("/").get_data(as_text=True)) == (["keep me up"], [])
    assert [pin(user, ids["keep me up"], "unpin") for _ in range(2)] == [302, 302]
    assert home(client.get("/").get_data(as_text=True)) == ([], ["keep me up"])


def test_another_user_cannot_pin_or_unpin_my_note(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "Ann's pinned", "Ann's plain")
    assert pin(user, ids["Ann's pinned"]) == 302
    user.logout()
    user.signup(email="bob@example.com", first_name="Bob")
    assert pin(user, ids["Ann's plain"]) == 404
    assert pin(user, ids["Ann's pinned"], "unpin") == 404
    assert "Ann" not in client.get("/").get_data(as_text=True).split("</header>")[1]
    assert pinned_in_database(app) == {"Ann's pinned": True, "Ann's plain": False}


@pytest.mark.parametrize("path", ["/notes/0/pin", "/notes/2147483648/unpin", "/notes/9/pin"])
def test_pinning_a_missing_note_is_not_found(user: AuthActions, path: str) -> None:
    assert user.post(path, {}, token_from="/").status_code == 404


def test_pin_without_a_valid_csrf_token_is_refused(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "pinned", "plain")
    assert pin(user, ids["pinned"]) == 302
    for token in (None, "forged-token"):
        form = {"csrf_token": token} if token else {}
        for path in (f"/notes/{ids['plain']}/pin", f"/notes/{ids['pinned']}/unpin"):
            response = client.post(path, data=form)
            assert response.status_code == 400
            assert "did not come from this site" in response.get_data(as_text=True)
    assert pinned_in_database(app) == {"pinned": True, "plain": False}


def test_pin_needs_a_login(user: AuthActions, app: Flask) -> None:
    ids = add_notes(user, app, "mine")
    user.logout()
    response = user.post(f"/notes/{ids['mine']}/pin", {})
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert pinned_in_database(app) == {"mine": False}


def test_pin_is_post_only(user: AuthActions, client: FlaskClient, app: Flask) -> None:
    ids = add_notes(user, app, "mine")
    assert client.get(f"/notes/{ids['mine']}/pin").status_code == 405
    assert pinned_in_database(app) == {"mine": False}


def walk(
    client: FlaskClient, start: str, rel: str
) -> tuple[list[tuple[list[str], list[str]]], str]:
    """Every page from `start`, following the pager's `rel` link: (pinned, listed) of each,
    and the last page's address."""
    pages, url = [], start
    while True:
        page = client.get(url).get_data(as_text=True)
        pages.append(home(page))
        link = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
        if link is None:
            return pages, url
        url = html.unescape(link.group(1))


@pytest.mark.parametrize("search", ["", "note"])
def test_every_note_appears_once_across_the_pages_when_some_are_pinned(
    user: AuthActions, client: FlaskClient, app: Flask, search: str
) -> None:
    bodies = [f"note {n}" for n in range(13)]  # five a page in the tests
    ids = add_notes(user, app, *bodies)
    for body in ("note 12", "note 7", "note 5", "note 0"):  # the newest, the oldest, between
        assert pin(user, ids[body]) == 302
    start = f"/?q={search}" if search else "/"
    pages, last = walk(client, start, "next")
    assert [listed for _, listed in pages] == [
        ["note 11", "note 10", "note 9", "note 8", "note 6"],
        ["note 4", "note 3", "note 2", "note 1"],
    ]
    assert [pinned for pinned, _ in pages] == [["note 12", "note 7", "note 5", "note 0"], []]
    seen = [body for pinned, listed in pages for body in pinned + listed]
    assert sorted(seen) == sorted(bodies)
    # Paging back (by `after`) reaches the top again, and the pinned notes with it.
    back, top = walk(client, last, "prev")
    assert "after=" in top and back == pages[::-1]


def test_search_filters_the_pinned_notes_too(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "buy milk", "buy eggs", "milk the cow", "call mum")
    for body in ("buy milk", "buy eggs"):
        assert pin(user, ids[body]) == 302
    assert home(client.get("/?q=MILK").get_data(as_text=True)) == (["buy milk"], ["milk the cow"])
    assert home(client.get("/?q=buy").get_data(as_text=True)) == (["buy eggs", "buy milk"], [])
    assert "No note contains" not in client.get("/?q=buy").get_data(as_text=True)
    assert "No note contains" in client.get("/?q=zebra").get_data(as_text=True)


def test_with_every_note_pinned_the_page_says_nothing_is_missing(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    ids = add_notes(user, app, "only one")
    assert pin(user, ids["only one"]) == 302
    page = client.get("/").get_data(as_text=True)
    assert home(page) == (["only one"], [])
    assert "No notes yet" not in page and 'rel="next"' not in page


def test_the_pinned_section_shows_at_most_the_newest_fifty(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    with app.app_context():
        owner = db.session.scalar(select(User.id))
        db.session.add_all(
            Note(user_id=owner, body=f"pinned {n}", pinned=True) for n in range(PINNED_MAX + 1)
        )
        db.session.commit()
    pinned, listed = home(client.get("/").get_data(as_text=True))
    assert pinned == [f"pinned {n}" for n in range(PINNED_MAX, 0, -1)]
    assert PINNED_MAX == 50 and listed == []


def test_one_csrf_form_serves_every_note_button(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    """Page weight: the token is written once for all the buttons, not once a note."""
    ids = add_notes(user, app, *(f"note {n}" for n in range(5)))
    assert pin(user, ids["note 0"]) == 302
    page = client.get("/").get_data(as_text=True)
    assert page.count('<form id="note-actions" method="post" hidden>') == 1
    assert page.count('form="note-actions" formaction="/notes/') == 10  # Pin or Unpin, Delete
    assert page.count('name="csrf_token"') == 3  # new note, log out, and the note actions


# Migration 0002, on both databases.


def note_columns(app: Flask) -> tuple[set[str], set[str | None]]:
    with app.app_context():
        inspector = inspect(db.engine)
        columns = {column["name"] for column in inspector.get_columns("note")}
        return columns, {index["name"] for index in inspector.get_indexes("note")}


@BOTH_DATABASES
def test_migration_0002_upgrades_and_downgrades(app: Flask) -> None:
    columns, indexes = note_columns(app)
    assert "pinned" in columns and "ix_note_user_id_pinned_id" in indexes
    with app.app_context():
        downgrade(revision="0001_initial")
    columns, indexes = note_columns(app)
    assert "pinned" not in columns and "ix_note_user_id_pinned_id" not in indexes
    assert "ix_note_user_id_id" in indexes, "0001's own index stays"
    with app.app_context():
        upgrade()
    columns, indexes = note_columns(app)
    assert "pinned" in columns and "ix_note_user_id_pinned_id" in indexes


@BOTH_DATABASES
def test_notes_written_before_0002_come_through_it_unpinned(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    ids = add_notes(user, app, "older", "newer")
    with app.app_context():
        db.session.execute(update(Note).where(Note.id == ids["older"]).values(pinned=True))
        db.session.commit()
        downgrade(revision="0001_initial")
        # As the code from before 0002 wrote it: a row without the column.
        owner = db.session.scalar(select(User.id))
        db.session.execute(
            text(
                "INSERT INTO note (user_id, body, created_at, updated_at)"
                " VALUES (:owner, 'from 0001', '2026-11-01 10:00:00', '2026-11-01 10:00:00')"
            ),
            {"owner": owner},
        )
        db.session.commit()
        db.session.close()
        upgrade()
    assert pinned_in_database(app) == {"older": False, "newer": False, "from 0001": False}
    user.login()  # the login sessions went with 0003's table on the way down
    # Last edited first: the row of older code was written on 2026-11-01.
    assert home(client.get("/").get_data(as_text=True)) == ([], ["newer", "older", "from 0001"])


@BOTH_DATABASES
def test_code_from_before_0002_can_still_write_after_it(app: Flask, user: AuthActions) -> None:
    """What `backward_compatible = True` promises: a rollback to the old code, whose inserts
    leave out `pinned`, keeps working on the migrated database."""
    with app.app_context():
        owner = db.session.scalar(select(User.id))
        db.session.execute(
            text(
                "INSERT INTO note (user_id, body, created_at, updated_at)"
                " VALUES (:owner, 'old code', '2026-11-01 10:00:00', '2026-11-01 10:00:00')"
            ),
            {"owner": owner},
        )
        db.session.commit()
    assert pinned_in_database(app) == {"old code": False}


@BOTH_DATABASES
def test_models_match_the_migrations(app: Flask) -> None:
    """What `flask db check` asks: autogenerate finds nothing to add after `upgrade`. Server
    defaults too, on SQLite: Alembic's MySQL comparison reads the reflected `0` of a Boolean
    as differing from `false()` (a false alarm), so there it compares what `flask db check`
    compares by default, without them."""
    with app.app_context(), db.engine.connect() as connection:
        defaults = connection.dialect.name == "sqlite"
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": defaults}
        )
        assert compare_metadata(context, db.metadata) == []


def declared(path: Path) -> object:
    """A migration's `backward_compatible`, read the way the deployer reads it: with `ast`."""
    module = ast.parse(path.read_text())
    values = [
        ast.literal_eval(node.value)
        for node in module.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["backward_compatible"]
    ]
    assert len(values) == 1, f"{path.name}: one plain `backward_compatible = ...` at module level"
    return values[0]


def test_every_migration_declares_whether_it_is_backward_compatible() -> None:
    found = {path.name: declared(path) for path in sorted(VERSIONS.glob("0*.py"))}
    assert found == {
        "0001_initial.py": False,
        "0002_note_pinned.py": True,
        "0003_login_sessions.py": True,
        "0004_note_titles_markdown_tags_trash.py": True,
        "0005_user_notes_version.py": True,
        "0006_rerender_notes_login_failure_at.py": True,
    }


@pytest.mark.parametrize("pinned", [0, 1, 5, 6, 7, 13])
def test_the_top_page_is_right_whatever_the_number_of_pinned_notes(
    user: AuthActions, client: FlaskClient, app: Flask, pinned: int
) -> None:
    """The first page reads the top of the list in one query, pinned notes first; with more
    pinned notes than a page (five in the tests, six read) it reads the two halves apart."""
    bodies = [f"note {n}" for n in range(13)]
    ids = add_notes(user, app, *bodies)
    for n in range(pinned):
        assert pin(user, ids[f"note {n}"]) == 302
    pages, _ = walk(client, "/", "next")
    listed = [f"note {n}" for n in range(12, pinned - 1, -1)]
    assert pages[0][0] == [f"note {n}" for n in range(pinned - 1, -1, -1)]
    assert [body for _, page in pages for body in page] == listed
    assert [len(page) for _, page in pages[:-1]] == [5] * (len(pages) - 1)
