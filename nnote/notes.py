"""The home page: one user's notes, newest first, paginated by id, with search. Pinned notes
stand apart above the list, on its first page, and the paginated list leaves them out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup, escape
from sqlalchemy import Select, bindparam, false, select, true
from werkzeug.wrappers import Response

from nnote.forms import ConfirmForm, NoteForm
from nnote.models import Note, db, reads

bp = Blueprint("notes", __name__)

# Ids beyond this cannot exist and would overflow the database's integer type.
MAX_ID = 2**31 - 1
SEARCH_MAX = 200
# The pinned section is not paginated: a user who pins more sees the newest this many.
PINNED_MAX = 50


class NoteRow(Protocol):
    """A row of NOTE_ROWS: (id, body, created_at), by name or unpacked."""

    id: int
    body: str
    created_at: datetime

    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True)
class NotePage:
    """One page of notes and the cursors of its neighbours (None where there is none), and on
    the list's first page the pinned notes that go above it."""

    notes: Sequence[NoteRow]
    newer_than: int | None
    older_than: int | None
    pinned: Sequence[NoteRow] = ()


@bp.app_template_filter("note_items")
def note_items(notes: Sequence[NoteRow], root: str, pinned: bool = False) -> Markup:
    """The note list's <li> items, built in one pass: with 20 notes this markup was 40% of the
    home page's time as Jinja nodes. The note body is the only user text, and is escaped;
    ids are integers and times are formatted datetimes. The Pin (or Unpin) buttons submit the
    page's one `pins` form, which carries the CSRF token once rather than once a note."""
    root = escape(root)
    action, label = ("unpin", "Unpin") if pinned else ("pin", "Pin")
    items = []
    # Unpacked once: a result row's attribute lookups cost as much as building the markup.
    for note_id, body, created_at in notes:
        created = str(created_at)
        link = f"{root}{note_id:d}"
        items.append(
            f'<li class="note" id="note-{note_id:d}">\n'
            f'    <p class="body">{escape(body)}</p>\n'
            f'    <footer><time datetime="{created[:19]}Z">{created[:16]} UTC</time>\n'
            f'      <button form="pins" formaction="{link}/{action}" class="link">'
            f"{label}</button>\n"
            f'      <a href="{link}/edit">Edit</a>\n'
            f'      <a href="{link}/delete" class="danger">Delete</a>\n'
            "    </footer>\n  </li>\n"
        )
    return Markup("".join(items))


def _id_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    if not value.isdigit() or len(value) > 10 or int(value) > MAX_ID:
        return None
    return int(value)


# Plain rows from table columns, built once and run on the request's Core connection
# (`reads`): the first page is the hottest query. `pinned = false` rather than `NOT pinned`:
# an equality, so that ix_note_user_id_pinned_id serves it on MySQL too.
_notes = Note.__table__.c
NOTE_ROWS = select(_notes.id, _notes.body, _notes.created_at).where(
    _notes.user_id == bindparam("user_id")
)
LISTED_ROWS = NOTE_ROWS.where(_notes.pinned == false())
FIRST_PAGE = LISTED_ROWS.order_by(_notes.id.desc()).limit(bindparam("limit"))
PINNED_ROWS = NOTE_ROWS.where(_notes.pinned == true()).order_by(_notes.id.desc()).limit(PINNED_MAX)


def _matching(query: Select[int, str, datetime], search: str) -> Select[int, str, datetime]:
    if search:
        return query.where(_notes.body.contains(search, autoescape=True))
    return query


def pinned_notes(search: str) -> Sequence[NoteRow]:
    """The pinned notes, newest first, filtered by the same search as the list below them."""
    return list(reads().execute(_matching(PINNED_ROWS, search), {"user_id": current_user.id}))


def note_page(search: str, before: int | None, after: int | None) -> NotePage:
    """The page of the list, and the pinned notes when it is the list's first page (the top:
    no newer page, including one reached by paging back with `after`). The list holds only
    unpinned notes, so its cursors and page sizes are those of a list without pinning."""
    page = _listed_page(search, before, after)
    if before is None and page.newer_than is None:
        return replace(page, pinned=pinned_notes(search))
    return page


def _listed_page(search: str, before: int | None, after: int | None) -> NotePage:
    """Keyset pagination: the cost of a page does not grow with the number of notes."""
    size = current_app.config["NOTES_PER_PAGE"]
    params = {"user_id": current_user.id, "limit": size + 1}
    if not search and before is None and after is None:
        rows = list(reads().execute(FIRST_PAGE, params))
        return NotePage(rows[:size], None, rows[size - 1].id if len(rows) > size else None)
    query = _matching(LISTED_ROWS, search)
    if after is not None:
        rows = list(
            reads().execute(
                query.where(_notes.id > after).order_by(_notes.id).limit(size + 1), params
            )
        )
        more_newer = len(rows) > size
        notes: list[Any] = rows[:size][::-1]
        return NotePage(
            notes, notes[0].id if more_newer and notes else None, notes[-1].id if notes else None
        )
    if before is not None:
        query = query.where(_notes.id < before)
    rows = list(reads().execute(query.order_by(_notes.id.desc()).limit(size + 1), params))
    notes = list(rows[:size])
    newer = notes[0].id if before is not None and notes else None
    return NotePage(notes, newer, notes[-1].id if len(rows) > size else None)


def get_note(note_id: int) -> Note:
    """Return the current user's note; another user's note is as absent as a missing one."""
    note = db.session.get(Note, note_id) if note_id <= MAX_ID else None
    if note is None or note.user_id != current_user.id:
        abort(404)
    return note


def _note_form() -> NoteForm:
    form = NoteForm()
    form.limit_length(current_app.config["NOTE_MAX_LENGTH"])
    return form


@bp.get("/")
@login_required
def index() -> str:
    search = request.args.get("q", "").strip()[:SEARCH_MAX]
    page = note_page(search, _id_arg("before"), _id_arg("after"))
    # No form object on a plain GET: the template writes the empty form out itself.
    return render_template("notes/index.html", page=page, search=search, form=None)


@bp.post("/notes")
@login_required
def create() -> str | Response:
    form = _note_form()
    if form.validate_on_submit():
        db.session.add(Note(user_id=current_user.id, body=form.body.data))
        db.session.commit()
        flash("Note added.", "success")
        return redirect(url_for("notes.index"))
    page = note_page("", None, None)
    return render_template("notes/index.html", page=page, search="", form=form)


@bp.route("/notes/<int:note_id>/edit", methods=("GET", "POST"))
@login_required
def edit(note_id: int) -> str | Response:
    note = get_note(note_id)
    form = _note_form()
    if request.method == "GET":
        form.body.data = note.body
    elif form.validate_on_submit():
        note.body = form.body.data or ""
        db.session.commit()
        flash("Note saved.", "success")
        return redirect(url_for("notes.index"))
    return render_template("notes/edit.html", note=note, form=form)


@bp.route("/notes/<int:note_id>/delete", methods=("GET", "POST"))
@login_required
def delete(note_id: int) -> str | Response:
    note = get_note(note_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        db.session.delete(note)
        db.session.commit()
        flash("Note deleted.", "info")
        return redirect(url_for("notes.index"))
    return render_template("notes/delete.html", note=note, form=form)


@bp.post("/notes/<int:note_id>/pin")
@login_required
def pin(note_id: int) -> Response:
    return _set_pinned(note_id, True)


@bp.post("/notes/<int:note_id>/unpin")
@login_required
def unpin(note_id: int) -> Response:
    return _set_pinned(note_id, False)


def _set_pinned(note_id: int, pinned: bool) -> Response:
    """Two routes rather than a toggle: a double click or a resent form pins once, and never
    undoes itself. Back to the home page, where the note now sits in its other section."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    note = get_note(note_id)
    note.pinned = pinned
    db.session.commit()
    flash("Note pinned." if pinned else "Note unpinned.", "success")
    return redirect(url_for("notes.index"))
