"""Export: all of the user's notes as a zip of Markdown files (front matter, then the text;
the trash in a folder of its own) or as one JSON document with every field. Downloads, so
plain GETs of the logged-in owner's own notes: nothing changes, nothing of anyone else's."""

from __future__ import annotations

import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response
from flask_login import current_user, login_required
from sqlalchemy import select

from nnote import derived
from nnote.markdown import render
from nnote.models import Note, NoteTag, db, utcnow
from nnote.trash import purge

bp = Blueprint("export", __name__, url_prefix="/export")

NAME_CHARS = 60
# Characters no file name may hold on Windows, macOS or Linux, and control characters.
UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
# Names Windows keeps for devices, with or without an extension.
RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


def _notes() -> list[Note]:
    """The user's notes, oldest first (expired trash purged, stale derived columns renewed:
    the tags come from them)."""
    purge(current_user.id)
    derived.sweep(current_user.id)
    query = select(Note).where(Note.user_id == current_user.id).order_by(Note.id)
    return list(db.session.scalars(query))


def _tags() -> dict[int, list[str]]:
    query = select(NoteTag.note_id, NoteTag.tag).where(NoteTag.user_id == current_user.id)
    tags: dict[int, list[str]] = {}
    for note_id, tag in db.session.execute(query.order_by(NoteTag.note_id, NoteTag.tag)):
        tags.setdefault(note_id, []).append(tag)
    return tags


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def _download(content: bytes, mimetype: str, extension: str) -> Response:
    name = f"nnote-export-{utcnow():%Y-%m-%d}.{extension}"
    return Response(
        content,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/notes.json")
@login_required
def as_json() -> Response:
    notes = _notes()
    tags = _tags()
    document = {
        "exported_at": _stamp(utcnow()),
        "notes": [_fields(note, tags.get(note.id, [])) for note in notes],
    }
    body = json.dumps(document, ensure_ascii=False, indent=2).encode()
    return _download(body, "application/json", "json")


def _fields(note: Note, tags: list[str]) -> dict[str, Any]:
    return {
        "id": note.id,
        "title": note.title,
        "body": note.body,
        "tags": tags,
        "pinned": note.pinned,
        "created_at": _stamp(note.created_at),
        "updated_at": _stamp(note.updated_at),
        "trashed_at": _stamp(note.trashed_at),
    }


@bp.get("/notes.zip")
@login_required
def as_zip() -> Response:
    notes = _notes()
    tags = _tags()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, note in _paths(notes):
            archive.writestr(path, _markdown_file(note, tags.get(note.id, [])))
    return _download(buffer.getvalue(), "application/zip", "zip")


def _paths(notes: list[Note]) -> Iterator[tuple[str, Note]]:
    """A unique, safe path for each note: its title (or first line) as a file name, in
    `nnote/` or `nnote/Trash/`; a second note of the same name gets " (2)", and so on
    (compared without case, as Windows and macOS compare names)."""
    taken: set[str] = set()
    for note in notes:
        folder = "nnote/Trash/" if note.trashed_at else "nnote/"
        stem = file_stem(_title(note))
        name, number = stem, 1
        while (folder + name).casefold() in taken:
            number += 1
            name = f"{stem} ({number})"
        taken.add((folder + name).casefold())
        yield f"{folder}{name}.md", note


def _title(note: Note) -> str:
    if note.title:
        return note.title
    return render(note.id, "", note.body, derived.version(note.updated_at), preview=True).title


def file_stem(title: str) -> str:
    """A file name made of the title: no path separator, reserved or control character,
    no leading dot or trailing dot or space, not a Windows device name; "Note" if nothing
    is left."""
    name = unicodedata.normalize("NFC", UNSAFE.sub(" ", title))
    name = " ".join(name.split())[:NAME_CHARS].strip(" .")
    if not name or RESERVED.match(name):
        name = f"Note {name}".strip()
    return name


def _markdown_file(note: Note, tags: list[str]) -> str:
    """YAML front matter (values written as JSON, which YAML reads), then the note's text."""
    front = {
        "title": note.title,
        "created": _stamp(note.created_at),
        "updated": _stamp(note.updated_at),
        "tags": tags,
        "pinned": note.pinned,
    }
    if note.trashed_at:
        front["trashed"] = _stamp(note.trashed_at)
    lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in front.items()]
    return "---\n" + "\n".join(lines) + "\n---\n\n" + note.body + "\n"
