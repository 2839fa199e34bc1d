"""The trash: deleting a note moves it here (with an Undo in the message that says so);
the Trash page restores a note or deletes it forever; after 30 days a note in the trash is
deleted for good.

When that happens (`purge`): the Trash page purges its user's expired notes before listing,
so nobody sees a note past its 30 days, and every move to the trash also purges up to
PURGE_MAX expired notes of anyone (an index range on `trashed_at`), so expired notes do not
linger in the database while their owner stays away. Never on the home page: it is the hot
read path, and a delete there would make every view a write (SQLite takes one writer at a
time). Trashed notes are nowhere else: not in the list, search, tags, counts or the export's
files (the JSON export marks them).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import bindparam, delete, select
from werkzeug.wrappers import Response

from nnote import derived
from nnote.forms import ConfirmForm, require_confirmation
from nnote.listing import note_times, with_script_root
from nnote.markdown import disable_tasks, render
from nnote.models import Note, db, utcnow
from nnote.notes import TRASH_DAYS, back_to, get_note

bp = Blueprint("trash", __name__)

KEEP_DAYS = TRASH_DAYS
PURGE_MAX = 200
# The Trash page lists at most this many, the most recently deleted first.
SHOWN_MAX = 200
# Before any time a note can have been trashed: a lower bound that keeps NULLs (notes out of
# the trash) outside the index range of a purge.
EPOCH = datetime(2000, 1, 1)

_notes = Note.__table__.c
TRASHED = (
    select(_notes.id, _notes.html, _notes.trashed_at, _notes.stale)
    .where(_notes.user_id == bindparam("user_id"), _notes.trashed_at.is_not(None))
    .order_by(_notes.trashed_at.desc(), _notes.id.desc())
    .limit(SHOWN_MAX)
)


def purge(user_id: int | None = None) -> int:
    """Delete up to PURGE_MAX notes that have been in the trash longer than KEEP_DAYS (the
    user's, or anyone's); how many."""
    cutoff = utcnow() - timedelta(days=KEEP_DAYS)
    query = select(Note.id).where(Note.trashed_at > EPOCH, Note.trashed_at < cutoff)
    if user_id is not None:
        query = query.where(Note.user_id == user_id)
    expired = list(db.session.scalars(query.limit(PURGE_MAX)))
    if expired:
        db.session.execute(delete(Note).where(Note.id.in_(expired)))
    db.session.commit()
    return len(expired)


def undo_message(note_id: int) -> Markup:
    """The flash after a delete, with its Undo: a button of the page's `note-actions` form
    (a POST with the CSRF token). Markup survives the session cookie (Flask tags it), and
    the layout prints messages as they are, so the button sits right in the message."""
    return Markup(
        'Note moved to the trash. <button form="note-actions" formaction="{}"'
        ' class="link undo">Undo</button>'
    ).format(url_for("trash.restore", note_id=note_id))


@bp.route("/notes/<int:note_id>/delete", methods=("GET", "POST"))
@login_required
def delete_note(note_id: int) -> str | Response:
    """Move the note to the trash; the page (GET) asks first, the list's button does not:
    the message it leaves has an Undo, and the trash keeps the note for 30 days."""
    note = get_note(note_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        note.trashed_at = utcnow()
        db.session.commit()
        purge()
        flash(undo_message(note_id), "undo")
        if request.form.get("next", "").split("?")[0] == url_for("notes.show", note_id=note_id):
            return redirect(url_for("notes.index"))  # not to the page of a trashed note
        return back_to(url_for("notes.index"))
    shown = render(note.id, note.title, note.body, derived.version(note.updated_at), True)
    return render_template("notes/delete.html", note=note, shown=shown, form=form)


@bp.get("/trash/")
@login_required
def index() -> str:
    purge(current_user.id)
    rows = list(db.session.execute(TRASHED, {"user_id": current_user.id}))
    stale = [row.id for row in rows if row.stale]
    html = derived.refresh(stale) if stale else {}
    notes = [(row.id, _inert(html.get(row.id, row.html or "")), row.trashed_at) for row in rows]
    return render_template(
        "notes/trash.html", notes=notes, keep=timedelta(days=KEEP_DAYS), times=note_times
    )


def _inert(html: str) -> Markup:
    """A trashed note's rendering, its checkboxes disabled (restore it to tick them)."""
    return Markup(with_script_root(disable_tasks(html), request.script_root))


@bp.post("/trash/<int:note_id>/restore")
@login_required
def restore(note_id: int) -> Response:
    require_confirmation()
    note = get_note(note_id, trashed=True)
    note.trashed_at = None
    db.session.commit()
    flash("Note restored.", "success")
    return back_to(url_for("notes.index"))


@bp.post("/trash/<int:note_id>/delete")
@login_required
def delete_forever(note_id: int) -> Response:
    require_confirmation()
    db.session.delete(get_note(note_id, trashed=True))
    db.session.commit()
    flash("Note deleted forever.", "info")
    return back_to(url_for("trash.index"))


@bp.post("/trash/empty")
@login_required
def empty() -> Response:
    require_confirmation()
    done = db.session.execute(
        delete(Note).where(Note.user_id == current_user.id, Note.trashed_at.is_not(None))
    )
    db.session.commit()
    count = int(done.rowcount)  # type: ignore[attr-defined]
    flash(f"Trash emptied: {count} note{'s' if count != 1 else ''} deleted forever.", "info")
    return back_to(url_for("trash.index"))
