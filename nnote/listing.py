"""The home page's list: one user's notes out of the trash, last edited first, in pages cut
by (updated_at, id) (keyset pagination: a page costs the same with 20 notes or 5,000), with a
search and a tag filter, and the pinned notes above the first page. Plain rows from the
request's Core connection (`reads`), and their markup built in one pass (`note_items`)."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from flask import current_app, request
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import Integer, Select, and_, bindparam, false, or_, select, true, type_coerce

from nnote import derived
from nnote.markdown import fold
from nnote.models import Note, NoteTag, reads

# Ids beyond this cannot exist and would overflow the database's integer type.
MAX_ID = 2**31 - 1
SEARCH_MAX = 200
# The pinned section is not paginated: a user who pins more sees the last edited this many.
PINNED_MAX = 50
# A note saved again within this of its creation is not shown as "edited" (rows of older
# code got two clock readings for the two times).
EDITED_AFTER = timedelta(seconds=1)
CURSOR = re.compile(r"(\d{20})-(\d{1,10})")
# First pages of the list a process keeps (_KeptPages), and for how long at most.
KEPT_PAGES = 256
KEPT_SECONDS = 60.0


class NoteRow(NamedTuple):
    """A row of NOTE_ROWS (the database's rows have these fields by name and in order; a
    row whose stale rendering was made again is one of these)."""

    id: int
    html: str | None
    created_at: datetime
    updated_at: datetime
    stale: int
    pinned: int


@dataclass(frozen=True)
class Cursor:
    """A place in the list, last edited first: the (updated_at, id) of a note."""

    updated_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{derived.version(self.updated_at)}-{self.id:d}"

    @classmethod
    def of(cls, row: NoteRow) -> Cursor:
        return cls(row.updated_at, row.id)

    @classmethod
    def arg(cls, name: str) -> Cursor | None:
        """The cursor in the request's query argument `name`, if it holds a good one."""
        return cls.parse(request.args.get(name, ""))

    @classmethod
    def parse(cls, value: str) -> Cursor | None:
        match = CURSOR.fullmatch(value)
        if match is None or int(match[2]) > MAX_ID:
            return None
        try:
            return cls(datetime.strptime(match[1], "%Y%m%d%H%M%S%f"), int(match[2]))
        except ValueError:
            return None


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to: a search (matched folded) and a tag."""

    search: str = ""
    tag: str = ""

    def __bool__(self) -> bool:
        return bool(self.search or self.tag)

    @classmethod
    def from_request(cls) -> Filters:
        search = request.args.get("q", "").strip()[:SEARCH_MAX]
        tag = fold(request.args.get("tag", "").strip().lstrip("#"))[:64]
        return cls(search, tag)

    def args(self) -> dict[str, str]:
        """The query arguments that keep these filters (for the pager's links)."""
        return {name: value for name, value in (("q", self.search), ("tag", self.tag)) if value}


NO_FILTERS = Filters()


@dataclass(frozen=True)
class NotePage:
    """One page of notes and the cursors of its neighbours (None where there is none), and on
    the list's first page the pinned notes that go above it."""

    notes: Sequence[NoteRow]
    newer_than: Cursor | None
    older_than: Cursor | None
    pinned: Sequence[NoteRow] = ()


def note_items(notes: Sequence[NoteRow], script_root: str, pinned: bool = False) -> Markup:
    """The note list's <li> items, built in one pass: with 20 notes this markup was 40% of the
    home page's time as Jinja nodes. Each note's content is its stored, sanitized rendering
    (`nnote.derived.card`); ids are integers and times come from `note_times`. The buttons
    submit the page's one `note-actions` form, which carries the CSRF token once rather than
    once a note."""
    action, label = ("unpin", "Unpin") if pinned else ("pin", "Pin")
    items = []
    # Unpacked once: a result row's attribute lookups cost as much as building the markup.
    for note_id, html, created_at, updated_at, _stale, _pinned in notes:
        link = f"/notes/{note_id:d}"
        items.append(
            f'<li class="note" id="note-{note_id:d}">{html}<footer>'
            f"{note_times(created_at, updated_at)}"
            f' <button form="note-actions" formaction="{link}/{action}">{label}</button>'
            f' <a href="{link}/edit">Edit</a> <button form="note-actions"'
            f' formaction="{link}/delete">Delete</button></footer></li>\n'
        )
    return Markup(with_script_root("".join(items), script_root))


# The site-relative links of the stored renderings and of `note_items`.
_ROOT_LINK = re.compile(r'(href|formaction)="/(?!/)')


def with_script_root(html: str, script_root: str) -> str:
    """Links from the site's root, moved under the app's mount point (a proxy's prefix)."""
    if not script_root:
        return html
    prefix = escape(script_root)
    return _ROOT_LINK.sub(lambda m: f'{m[1]}="{prefix}/', html)


@lru_cache(maxsize=8192)
def note_times(created_at: datetime, updated_at: datetime) -> str:
    """When the note was written and, if since, last edited: <time> elements in UTC, which
    the page's script shows as relative times. Cached: a list shows the same notes often."""
    shown = str(time_html(created_at))
    if updated_at - created_at > EDITED_AFTER:
        shown += f' <span class="edited">· edited {time_html(updated_at)}</span>'
    return shown


def time_html(moment: datetime) -> Markup:
    # The date in full is the text; the script makes it "3 min ago" and puts the full local
    # date in a title (a title from here cost a home page of 20 notes 1 KB).
    return Markup(
        f'<time datetime="{moment:%Y-%m-%dT%H:%M:%S}Z">{moment:%Y-%m-%d %H:%M} UTC</time>'
    )


# Plain rows from table columns, built once and run on the request's Core connection
# (`reads`): the first page is the hottest query. `pinned = false` rather than `NOT pinned`
# and `trashed_at IS NULL`: conditions ix_note_listed serves on MySQL too.
_notes = Note.__table__.c
_tags = NoteTag.__table__.c
# `stale` and `pinned` as the database's 0 or 1: converting them to bools cost more than
# using them.
NOTE_ROWS = select(
    _notes.id,
    _notes.html,
    _notes.created_at,
    _notes.updated_at,
    type_coerce(_notes.stale, Integer).label("stale"),
    type_coerce(_notes.pinned, Integer).label("pinned"),
).where(_notes.user_id == bindparam("user_id"), _notes.trashed_at.is_(None))
LISTED_ROWS = NOTE_ROWS.where(_notes.pinned == false())
NEWEST_FIRST = (_notes.updated_at.desc(), _notes.id.desc())
PINNED_ROWS = NOTE_ROWS.where(_notes.pinned == true()).order_by(*NEWEST_FIRST).limit(PINNED_MAX)
# The top of the list, pinned notes first: ix_note_listed read backwards, nothing to sort.
# For a user who pins nothing, the whole first page in one query.
TOP_ROWS = NOTE_ROWS.order_by(_notes.pinned.desc(), *NEWEST_FIRST).limit(bindparam("limit"))
TAGGED = select(_tags.note_id).where(
    _tags.user_id == bindparam("user_id"), _tags.tag == bindparam("tag")
)


def _matching(query: Select[Any], filters: Filters) -> Select[Any]:
    if not filters:
        return query
    if filters.search:
        query = query.where(_notes.search_text.contains(fold(filters.search), autoescape=True))
    if filters.tag:
        query = query.where(_notes.id.in_(TAGGED))
    return query


def _rows(query: Select[Any], filters: Filters, **params: Any) -> list[Any]:
    params["user_id"] = current_user.id
    if filters.tag:
        params["tag"] = filters.tag
    return list(reads().execute(_matching(query, filters), params))


def _before(cursor: Cursor) -> Any:
    # `updated_at <=` bounds the index range; the rest only sorts out notes saved at once.
    return and_(
        _notes.updated_at <= cursor.updated_at,
        or_(_notes.updated_at < cursor.updated_at, _notes.id < cursor.id),
    )


def _after(cursor: Cursor) -> Any:
    return and_(
        _notes.updated_at >= cursor.updated_at,
        or_(_notes.updated_at > cursor.updated_at, _notes.id > cursor.id),
    )


def note_page(filters: Filters, before: Cursor | None, after: Cursor | None) -> NotePage:
    """The page of the list, and the pinned notes when it is the list's first page (the top:
    no newer page, including one reached by paging back with `after`). The list holds only
    unpinned notes, so its cursors and page sizes are those of a list without pinning."""
    # A search or a tag reads the derived columns of notes not shown: none may be stale. Nor
    # may any be for the first page to be kept (`_kept_top_page`). What a sweep stored is read
    # in a new transaction (MySQL's reads see the snapshot they began).
    user = current_user._get_current_object()  # once: each proxy lookup costs the hot page
    stale = user.notes_version < 0
    if (filters or stale) and derived.sweep(user.id):
        reads().rollback()
    if before is None and after is None:
        return _fresh(_top_page(filters)) if filters or stale else _kept_top_page(user)
    page = _listed_page(filters, before, after)
    if page.newer_than is None:
        page = replace(page, pinned=_rows(PINNED_ROWS, filters))
    return _fresh(page)


class _KeptPages:
    """The first pages of the list lately shown by this process, the least recently used
    dropped first. A page is kept under its user's `notes_version`, which every change to
    their listed notes counts up (nnote.models) and which is read with the user on every
    request: a changed list is read anew, by every worker. The user's session token is in
    the key too (a user id SQLite gives again after a deletion must not find the page), and
    a page is kept a minute at most: older code, which changes notes without counting, may
    serve beside this code while a release rolls out."""

    def __init__(self, size: int = KEPT_PAGES) -> None:
        self.size = size
        self.pages: OrderedDict[tuple[int, str, int], tuple[float, NotePage]] = OrderedDict()
        self.lock = threading.Lock()  # the development server serves in threads

    def get(self, key: tuple[int, str, int]) -> NotePage | None:
        with self.lock:
            kept = self.pages.get(key)
            if kept is None or time.monotonic() - kept[0] > KEPT_SECONDS:
                return None
            self.pages.move_to_end(key)
            return kept[1]

    def put(self, key: tuple[int, str, int], page: NotePage) -> None:
        with self.lock:
            self.pages[key] = (time.monotonic(), page)
            self.pages.move_to_end(key)
            while len(self.pages) > self.size:
                self.pages.popitem(last=False)


def _kept_top_page(user: Any) -> NotePage:
    """The list's first page without a filter, the home page's usual visit: its query and
    rows were a quarter of the page's time."""
    key = (user.id, user.session_token, user.notes_version)
    kept: _KeptPages = current_app.extensions.setdefault("nnote.kept_pages", _KeptPages())
    page = kept.get(key)
    if page is None:
        page = _fresh(_top_page(NO_FILTERS))
        kept.put(key, page)
    return page


def _top_page(filters: Filters) -> NotePage:
    """The first page and the pinned notes above it. One query reads the top of the list,
    pinned notes first: without pinned notes that is the page; with fewer than a page of
    them, a second reads the rest of the page; with more, the two halves apart."""
    limit = current_app.config["NOTES_PER_PAGE"] + 1
    rows = _rows(TOP_ROWS, filters, limit=limit)
    count = sum(row.pinned for row in rows)
    if count == limit:
        page = _listed_page(filters, None, None)
        return replace(page, pinned=_rows(PINNED_ROWS, filters))
    listed = rows[count:]
    if count and len(rows) == limit:
        more = LISTED_ROWS.where(_before(Cursor.of(listed[-1])))
        listed += _rows(more.order_by(*NEWEST_FIRST).limit(count), filters)
    return _page(listed, None, rows[:count])


def _page(rows: list[Any], newer: Cursor | None, pinned: Sequence[NoteRow] = ()) -> NotePage:
    """A page of the list from its rows, read one beyond the page to know of an older one."""
    size = current_app.config["NOTES_PER_PAGE"]
    older = Cursor.of(rows[size - 1]) if len(rows) > size else None
    return NotePage(rows[:size], newer, older, pinned)


def _fresh(page: NotePage) -> NotePage:
    """The page with the rendering of each stale note (one written or edited by code from
    before migration 0004) made again, and stored."""
    stale = [row.id for row in (*page.pinned, *page.notes) if row.stale]
    if not stale:
        return page
    html = derived.refresh(stale)

    def renewed(rows: Sequence[NoteRow]) -> list[Any]:
        return [
            NoteRow(r.id, html.get(r.id, r.html), r.created_at, r.updated_at, 0, r.pinned)
            for r in rows
        ]

    return replace(page, notes=renewed(page.notes), pinned=renewed(page.pinned))


def _listed_page(filters: Filters, before: Cursor | None, after: Cursor | None) -> NotePage:
    """Keyset pagination: the cost of a page does not grow with the number of notes."""
    size = current_app.config["NOTES_PER_PAGE"]
    if after is not None:
        ascending = (_notes.updated_at, _notes.id)
        query = LISTED_ROWS.where(_after(after)).order_by(*ascending).limit(size + 1)
        rows = _rows(query, filters)
        notes: list[Any] = rows[:size][::-1]
        newer = Cursor.of(notes[0]) if len(rows) > size and notes else None
        return NotePage(notes, newer, Cursor.of(notes[-1]) if notes else None)
    query = LISTED_ROWS.where(_before(before)) if before is not None else LISTED_ROWS
    rows = _rows(query.order_by(*NEWEST_FIRST).limit(size + 1), filters)
    return _page(rows, Cursor.of(rows[0]) if before is not None and rows else None)
