"""Database models and engine settings."""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    event,
    false,
    text,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine import make_url as _make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

MIGRATIONS_DIR = __file__.rsplit("/", 1)[0] + "/migrations"


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_session_token() -> str:
    return secrets.token_hex(16)


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Part of the login id: replacing it ends every session and remember-me cookie.
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Counted up with every change to the user's listed notes (nnote.listing): the key of the
    # kept first page of the list.
    notes_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


# On MySQL, times to the microsecond: two saves of a note never share an `updated_at`, which
# is how a stored rendering knows it is stale (Note.stale). SQLite keeps microseconds anyway.
PRECISE_TIME = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# MySQL's TEXT holds 64 KB: too little for the rendering or the folded copy of a long note.
LONG_TEXT = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
# Compared byte for byte on MySQL, as on SQLite: the app folds case itself (nnote.markdown.fold),
# so the database's own case and accent rules must not add matches only one backend makes.
FOLDED_TEXT = Text().with_variant(
    mysql.MEDIUMTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)
FOLDED_TAG = String(64).with_variant(
    mysql.VARCHAR(64, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)


class Note(db.Model):  # type: ignore[name-defined]
    __tablename__ = "note"
    # ix_note_listed serves the home page: one user's notes out of the trash, pinned or not,
    # last edited first, paged by (updated_at, id) without a sort; and the trash (trashed_at
    # set) and its 30-day purge. The two older indexes are those of the code before 0004
    # (kept so that a rollback to it stays fast). ix_note_user_id_stale finds the notes whose
    # stored rendering is out of date, which only the code before 0004 leaves behind.
    # ix_note_trashed_at finds anyone's trash past its 30 days (nnote.trash.purge).
    __table_args__ = (
        Index("ix_note_user_id_id", "user_id", "id"),
        Index("ix_note_user_id_pinned_id", "user_id", "pinned", "id"),
        Index("ix_note_listed", "user_id", "trashed_at", "pinned", "updated_at", "id"),
        Index("ix_note_user_id_stale", "user_id", "stale"),
        Index("ix_note_trashed_at", "trashed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    # Optional; "" for none (the server default fills the rows older code inserts).
    title: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When the text last changed (set by `nnote.derived.save`; pinning or trashing is no edit).
    updated_at: Mapped[datetime] = mapped_column(PRECISE_TIME, default=utcnow)
    # The server default is migration 0002's, which fills the rows written by older code.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set while the note is in the trash; emptied after 30 days (nnote.trash).
    trashed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Derived from title and body when saved (nnote.derived): the list item's HTML, the
    # folded text search compares, and the `updated_at` they were made for.
    html: Mapped[str | None] = mapped_column(LONG_TEXT)
    search_text: Mapped[str | None] = mapped_column(FOLDED_TEXT)
    rendered_at: Mapped[datetime | None] = mapped_column(PRECISE_TIME)
    # True when the derived columns are missing or older than the text: for rows that code
    # from before 0004 inserted or edited (it knows none of them). Computed by the database,
    # so that an index finds such rows whoever wrote them.
    stale: Mapped[bool] = mapped_column(
        Boolean, Computed("rendered_at IS NULL OR rendered_at <> updated_at")
    )


class NoteTag(db.Model):  # type: ignore[name-defined]
    """One #tag of a note, folded: a tag filter is an index lookup, not a text search."""

    __tablename__ = "note_tag"
    __table_args__ = (Index("ix_note_tag_user_id_tag", "user_id", "tag", "note_id"),)

    note_id: Mapped[int] = mapped_column(
        ForeignKey("note.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(FOLDED_TAG, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))


class LoginSession(db.Model):  # type: ignore[name-defined]
    """One logged-in device: the login id in its cookies names this row, so ending the row
    (logout, "end session", a password change) ends that login wherever its cookies went."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the secret in the cookie: the table alone cannot be used to log in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class LoginFailure(db.Model):  # type: ignore[name-defined]
    """One failed login, kept in the database so every worker and task sees the same count."""

    __tablename__ = "login_failure"
    # ix_login_failure_key_at counts a key's recent rows; ix_login_failure_at finds the rows
    # too old to count, which every write of nnote.throttle deletes.
    __table_args__ = (
        Index("ix_login_failure_key_at", "key", "at"),
        Index("ix_login_failure_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def engine_options(database_uri: Any) -> dict[str, Any]:
    """Pool settings fit for RDS: survive restarts and idle timeouts, fail fast when down."""
    if _make_url(database_uri).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 15}}
    return {
        "pool_pre_ping": True,
        "pool_recycle": 280,
        "connect_args": {"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30},
    }


def reads() -> Connection:
    """The request's connection for the plain (Core) reads every page makes: the logged-in
    user and the first page of notes. Going through the ORM session cost each of them its
    transaction bookkeeping, about a tenth of the home page. One connection per request, so
    one pool checkout (and on MySQL one pre-ping); returned when the request ends. A request
    that also writes holds the ORM session's connection beside it."""
    if "_reads" not in g:
        g._reads = db.engine.connect()
    connection: Connection = g._reads
    return connection


def _return_reads(_error: BaseException | None) -> None:
    connection = g.pop("_reads", None)
    if connection is None:
        return
    # The database can go away during the request: the rollback on close then fails, after
    # SQLAlchemy has handed the dead connection back to its pool to be replaced. The answer
    # already made (a page, or the 503 of `errors`) stands; a teardown error would make it 500.
    with contextlib.suppress(DBAPIError):
        connection.close()


def init_app(app: Flask, migrations: bool = True) -> None:
    options = engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)
    db.init_app(app)
    app.teardown_appcontext(_return_reads)
    if migrations:
        # Alembic costs each gunicorn worker ~7 MB; only the CLI and the boot step need it.
        from flask_migrate import Migrate

        Migrate(app, db, directory=MIGRATIONS_DIR)


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets gunicorn workers read while one writes; foreign keys make deletes cascade."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_users = User.__table__.c
# Built once (building and compiling it per note added cost the add 15%).
_COUNT_NOTES_CHANGE = (
    update(User.__table__)
    .where(_users.id == bindparam("changed_user"))
    .values(notes_version=_users.notes_version + 1)
)


def count_notes_change(connection: Connection, user_ids: set[int]) -> None:
    """Say that these users' notes changed (`User.notes_version`), in the transaction that
    changes them. Core writes of notes call it; the ORM's are counted at flush."""
    if user_ids:
        connection.execute(_COUNT_NOTES_CHANGE, [{"changed_user": uid} for uid in user_ids])


@event.listens_for(Session, "before_flush")
def _count_note_changes(session: Session, _context: Any, _instances: Any) -> None:
    """Every note the ORM adds, changes or deletes counts its owner's notes_version up, so
    no view that edits, pins, trashes or restores a note can forget to."""
    changed = (*session.new, *session.dirty, *session.deleted)
    count_notes_change(
        session.connection(), {note.user_id for note in changed if isinstance(note, Note)}
    )
