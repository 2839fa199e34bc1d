"""What a note's text is turned into, stored beside it so that showing a page costs no
rendering: the list item's HTML (`card`), the folded search text and the #tags.

Written in the same transaction as the text (`save`). Rows that code from before migration
0004 inserted or edited have none, or stale ones (`Note.stale`, computed by the database);
they are brought up to date when this code meets them: the notes a page shows (`refresh`),
and before a search, a tag filter or an export, every stale note of the user (`sweep`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from markupsafe import escape
from sqlalchemy import bindparam, delete, insert, select, true, update

from nnote.markdown import Rendered, preview_and_tags, search_text
from nnote.models import Note, NoteTag, count_notes_change, db, utcnow

# A sweep refreshes at most this many notes a request (rows of older code are few; more are
# done by the next request that sweeps).
SWEEP_MAX = 200

_notes = Note.__table__.c
_tags = NoteTag.__table__.c


@dataclass(frozen=True)
class Derived:
    html: str
    search_text: str
    tags: Sequence[str]


def derive(note_id: int, title: str, body: str, updated_at: datetime) -> Derived:
    """`updated_at` is the version the page's checkboxes name (see `nnote.markdown`)."""
    shown, tags = preview_and_tags(note_id, title, body, version(updated_at))
    return Derived(card(note_id, shown, tags), search_text(title, body), tags)


def version(updated_at: datetime) -> str:
    """The text's version as a URL carries it: its `updated_at`, to the microsecond."""
    t = updated_at  # (strftime takes five times as long)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}" + (
        f"{t.microsecond:06d}"
    )


def card(note_id: int, shown: Rendered, tags: Sequence[str]) -> str:
    """The list item's content: title (or first line) linking to the note, a preview of the
    rest, "Show more" when it is longer, and the tags as filter links. Links are from the
    site's root (`nnote.listing.note_items` adds a script root when there is one)."""
    link = f"/notes/{note_id:d}"
    parts = ['<div class="body">']
    if shown.title:
        parts.append(f'<h3 class="note-title"><a href="{link}">{escape(shown.title)}</a></h3>')
    if shown.html:
        parts.append(f'<div class="md">{shown.html}</div>')
    parts.append("</div>")
    if shown.truncated:
        parts.append(f'<a class="more" href="{link}">Show more</a>')
    if tags:
        parts.append(f'<p class="tags">{tag_links(tags)}</p>')
    return "".join(parts)


def tag_links(tags: Iterable[str]) -> str:
    return " ".join(
        f'<a class="tag" rel="tag" href="/?tag={quote(tag, safe="")}">#{escape(tag)}</a>'
        for tag in tags
    )


_INSERT = insert(Note.__table__)
_STORE_NEW = (
    update(Note.__table__)
    .where(_notes.id == bindparam("note_id"))
    .values(html=bindparam("html"), search_text=bindparam("search_text"))
    .values(rendered_at=_notes.updated_at)
)


def add(user_id: int, title: str, body: str) -> int:
    """A new note, with everything derived from it; its id. Plain statements on the
    session's connection, not the ORM's unit of work: adding a note is the app's most
    frequent write. In the session's transaction (the caller commits); inserted first, for
    the id its rendering links to."""
    now = utcnow()
    connection = db.session.connection()
    values = {"user_id": user_id, "title": title, "body": body, "pinned": False}
    added = connection.execute(_INSERT, {**values, "created_at": now, "updated_at": now})
    note_id = int(added.inserted_primary_key[0])  # type: ignore[index]
    derived = derive(note_id, title, body, now)
    connection.execute(
        _STORE_NEW,
        {"note_id": note_id, "html": derived.html, "search_text": derived.search_text},
    )
    _insert_tags(note_id, user_id, derived.tags)
    count_notes_change(connection, {user_id})
    return note_id


def save(note: Note, title: str, body: str) -> None:
    """Give the note its new text and everything derived from it (in the session's
    transaction: the caller commits)."""
    now = utcnow()
    derived = derive(note.id, title, body, now)
    note.title, note.body, note.updated_at = title, body, now
    note.html, note.search_text, note.rendered_at = derived.html, derived.search_text, now
    _replace_tags(note.id, note.user_id, derived.tags)


def _replace_tags(note_id: int, user_id: int, tags: Sequence[str]) -> None:
    db.session.execute(delete(NoteTag).where(NoteTag.note_id == note_id))
    _insert_tags(note_id, user_id, tags)


def _insert_tags(note_id: int, user_id: int, tags: Sequence[str]) -> None:
    if tags:
        db.session.execute(
            insert(NoteTag), [{"note_id": note_id, "tag": t, "user_id": user_id} for t in tags]
        )


# Only if the text is still the one rendered: an edit by another process in between leaves
# the row stale, for the next reader. `updated_at` is written back as it was read: the same
# time, but always in the form this code writes (SQLite compares the text of times, and rows
# inserted by hand may lack the microseconds), so that `rendered_at` equals it.
_STORE = (
    update(Note.__table__)
    .where(
        _notes.id == bindparam("note_id"),
        _notes.title == bindparam("old_title"),
        _notes.body == bindparam("old_body"),
    )
    .values(
        html=bindparam("html"),
        search_text=bindparam("search_text"),
        rendered_at=bindparam("at"),
        updated_at=bindparam("at"),
    )
)
_SOURCES = select(_notes.id, _notes.user_id, _notes.title, _notes.body, _notes.updated_at)


def refresh(note_ids: Iterable[int]) -> dict[int, str]:
    """Derive and store again the given notes' columns; their new HTML by id."""
    ids = list(note_ids)
    if not ids:
        return {}
    rows = db.session.execute(_SOURCES.where(_notes.id.in_(ids))).all()
    return _store(rows)


def sweep(user_id: int) -> int:
    """Bring the user's stale notes up to date (an index lookup that finds none, normally);
    how many were."""
    query = _SOURCES.where(_notes.user_id == user_id, _notes.stale == true()).limit(SWEEP_MAX)
    rows = db.session.execute(query).all()
    _store(rows)
    return len(rows)


def _store(rows: Sequence[Any]) -> dict[int, str]:
    fresh: dict[int, str] = {}
    for note_id, user_id, title, body, updated_at in rows:
        derived = derive(note_id, title, body, updated_at)
        stored = db.session.execute(
            _STORE,
            {
                "note_id": note_id,
                "old_title": title,
                "old_body": body,
                "html": derived.html,
                "search_text": derived.search_text,
                "at": updated_at,
            },
        )
        if stored.rowcount:  # type: ignore[attr-defined]
            _replace_tags(note_id, user_id, derived.tags)
        fresh[note_id] = derived.html
    db.session.commit()
    return fresh
