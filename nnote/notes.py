"""The home page (the list is `nnote.listing`'s), a note's own page, add and edit (with an
optional title), ticking a checklist, pin and unpin; delete is the trash's (`nnote.trash`).
Logged-out visitors get the landing page at the home page's address. A note form whose CSRF
token no longer matches comes back with the typed text."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import Length

from nnote import derived, errors, pages
from nnote.auth import safe_next
from nnote.forms import NoteForm, require_confirmation
from nnote.listing import (
    MAX_ID,
    NO_FILTERS,
    Cursor,
    Filters,
    NotePage,
    note_items,
    note_page,
    note_times,
    with_script_root,
)
from nnote.markdown import disable_tasks, normalise_newlines, render, tags_of, toggle_task
from nnote.models import Note, db
from nnote.security import csrf_token

bp = Blueprint("notes", __name__)

TITLE_MAX = 200
# How long a deleted note stays in the trash (nnote.trash).
TRASH_DAYS = 30
CSRF_KEPT = (
    "This form expired or did not come from this site, so nothing was saved yet. Your text "
    "is kept below: check it and save again."
)


class TitledNoteForm(NoteForm):
    title = StringField(
        "Title",
        filters=[lambda value: _one_line(value or "")],
        validators=[
            Length(max=TITLE_MAX, message=f"A title holds at most {TITLE_MAX} characters.")
        ],
    )


def _one_line(value: str) -> str:
    """A title is one line of printable text."""
    kept = (c if unicodedata.category(c) not in ("Cc", "Zl", "Zp") else " " for c in value)
    return " ".join("".join(kept).split())


def _own_note(note_id: int) -> Note | None:
    note = db.session.get(Note, note_id) if note_id <= MAX_ID else None
    return note if note is not None and note.user_id == current_user.id else None


def get_note(note_id: int, trashed: bool | None = False) -> Note:
    """Return the current user's note; another user's note is as absent as a missing one.
    `trashed`: False for notes out of the trash, True for notes in it, None for either."""
    note = _own_note(note_id)
    if note is None:
        abort(404)
    if trashed is not None and (note.trashed_at is not None) != trashed:
        abort(404)
    return note


def _note_form() -> TitledNoteForm:
    form = TitledNoteForm()
    form.limit_length(current_app.config["NOTE_MAX_LENGTH"])
    return form


def back_to(default: str, anchor: str = "") -> Response:
    """Back to the page the form was on (its `next`, on this site), else `default`."""
    target = request.form.get("next") or ""
    return redirect((safe_next(target) if target else default) + anchor)


@bp.get("/")
def index() -> str:
    if not current_user.is_authenticated:
        return render_template("landing.html")
    if not request.query_string:  # the usual visit: the top, nothing to read of the address
        return _render_home(note_page(NO_FILTERS, None, None), NO_FILTERS, None)
    filters = Filters.from_request()
    page = note_page(filters, Cursor.arg("before"), Cursor.arg("after"))
    # No form object on a plain GET: the template writes the empty form out itself.
    return _render_home(page, filters, None)


def _home_with(form: TitledNoteForm, **context: Any) -> str:
    return _render_home(note_page(NO_FILTERS, None, None), NO_FILTERS, form, **context)


def _render_home(page: NotePage, filters: Filters, form: TitledNoteForm | None, **more: Any) -> str:
    """The home page; what its template would look up through the request's proxies (and
    the hot page's every lookup counts) is worked out once here. `here` is where the note
    buttons' form comes back to: this page, or the top after a form sent to /notes."""
    root = request.script_root
    here = (root + request.full_path).rstrip("?") if request.method == "GET" else f"{root}/"
    context = {
        "page": page,
        "filters": filters,
        "form": form,
        "root": root,
        "here": here,
        "pinned_items": note_items(page.pinned, root, pinned=True),
        "listed_items": note_items(page.notes, root),
        "newer": page.newer_than and _page_link(root, filters, after=page.newer_than),
        "older": page.older_than and _page_link(root, filters, before=page.older_than),
        **more,
    }
    if request.method == "GET" and not (filters or form or more or "_flashes" in session):
        return _kept_home(context)
    return render_template("notes/index.html", token=csrf_token(), **context)


def _kept_home(context: dict[str, Any]) -> str:
    """The plain visit (no filter, form or message): the page is kept per shape (`pages.filled`),
    and only the user's name, the token and the notes are put in. Rendering the layout and
    the form was a third of the home page."""
    page = context["page"]
    user = current_user._get_current_object()
    values = {
        "user_id": str(user.id),
        "first_name": escape(user.first_name),
        "token": csrf_token(),
        "pinned_items": context["pinned_items"],
        "listed_items": context["listed_items"],
        "newer": escape(context["newer"] or ""),
        "older": escape(context["older"] or ""),
    }
    shape = (bool(page.pinned), bool(page.notes), bool(context["newer"]), bool(context["older"]))

    def render(slots: Mapping[str, Markup]) -> str:
        links = {name: slots[name] if context[name] else None for name in ("newer", "older")}
        items = {name: slots[name] for name in ("pinned_items", "listed_items")}
        return render_template(
            "notes/index.html",
            **{**context, **links, **items},
            current_user=_Viewer(slots["user_id"], slots["first_name"]),
            csrf_token=lambda: slots["token"],
            token=slots["token"],
        )

    return pages.filled(("notes/index.html", context["here"], *shape), render, values)


@dataclass(frozen=True)
class _Viewer:
    """The logged-in user as the kept home page's layout sees it: slots for its values."""

    id: Markup
    first_name: Markup
    is_authenticated: bool = True


def _page_link(root: str, filters: Filters, **cursor: Cursor) -> str:
    """The home page's address at another page (built here: url_for took 10 µs a link)."""
    ((name, at),) = cursor.items()
    return f"{root}/?" + urlencode({name: str(at), **filters.args()})


@bp.post("/notes")
@login_required
def create() -> str | Response:
    form = _note_form()
    if form.validate_on_submit():
        derived.add(
            current_user.id, form.title.data or "", normalise_newlines(form.body.data or "")
        )
        db.session.commit()
        flash("Note added.", "success")
        return redirect(url_for("notes.index"))
    return _home_with(form)


@bp.get("/notes/<int:note_id>")
@login_required
def show(note_id: int) -> str:
    """The whole note (the list shows a preview of a long one), rendered on each view: one
    note, not the home page. A note in the trash is shown with its Restore button."""
    note = get_note(note_id, trashed=None)
    shown = render(note.id, note.title, note.body, derived.version(note.updated_at))
    body = with_script_root(shown.html, request.script_root)
    if note.trashed_at is not None:
        body = disable_tasks(body)
    tags = derived.tag_links(tags_of(note.title, note.body))
    return render_template(
        "notes/note.html",
        note=note,
        shown=shown,
        body=Markup(body),
        tags=Markup(with_script_root(tags, request.script_root)),
        times=Markup(note_times(note.created_at, note.updated_at)),
        keep=timedelta(days=TRASH_DAYS),
    )


@bp.route("/notes/<int:note_id>/edit", methods=("GET", "POST"))
@login_required
def edit(note_id: int) -> str | Response:
    note = get_note(note_id)
    form = _note_form()
    if request.method == "GET":
        form.title.data, form.body.data = note.title, note.body
    elif form.validate_on_submit():
        derived.save(note, form.title.data or "", normalise_newlines(form.body.data or ""))
        db.session.commit()
        flash("Note saved.", "success")
        return redirect(url_for("notes.index"))
    return render_template("notes/edit.html", note=note, form=form)


@bp.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> tuple[str, int]:
    """A note form whose token no longer matches (the session was rotated or ended on
    another tab) comes back with the typed text, a fresh token and a clear message, instead
    of losing the text. Logged out, there is no page to put it on: the error page says so
    (the browser's draft keeps the text)."""
    if not current_user.is_authenticated or request.endpoint not in ("notes.create", "notes.edit"):
        return errors.csrf_error(error)  # the app's own page for every other form
    form = _note_form()
    form.validate()  # fills the errors of the typed text itself (too long, empty)
    if request.endpoint == "notes.create":
        return _home_with(form, form_expired=CSRF_KEPT), 400
    note = _own_note(int((request.view_args or {}).get("note_id", 0)))
    if note is None or note.trashed_at is not None:  # (a handler cannot abort)
        return errors.render_error(404)
    return render_template("notes/edit.html", note=note, form=form, form_expired=CSRF_KEPT), 400


@bp.post("/notes/<int:note_id>/check/<int:index>")
@login_required
def check(note_id: int, index: int) -> Response:
    """Tick or untick a checklist item: the `index`-th task item of the text of version
    `at` (a page older than the text ticks nothing, rather than the wrong item)."""
    require_confirmation()
    note = get_note(note_id)
    body = toggle_task(note.body, index)
    if request.args.get("at") != derived.version(note.updated_at) or body is None:
        flash("This note changed since the page was shown: nothing was ticked. Try again.", "error")
    else:
        derived.save(note, note.title, body)
        db.session.commit()
    return back_to(url_for("notes.index"), f"#note-{note_id:d}")


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
    undoes itself. Back to the page the button was on, where the note now sits in its other
    section. Pinning is no edit: the note keeps its place in time."""
    require_confirmation()
    note = get_note(note_id)
    note.pinned = pinned
    db.session.commit()
    flash("Note pinned." if pinned else "Note unpinned.", "success")
    return back_to(url_for("notes.index"))
