"""Login sessions kept in the database, one row per logged-in device (OWASP ASVS V3: a
session ends on the server, not only in the browser).

Flask's session cookie and Flask-Login's remember-me cookie both carry the login id
`user:token:secret`; the secret's SHA-256 names a `login_session` row. Logging out, ending a
session from the account page or changing the password deletes rows, and a cookie whose row
is gone, copied or not, logs nobody in. The row is read with the user on every request, in
the same query; `last_seen_at` is written at most every few minutes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from flask import request, session
from sqlalchemy import delete, select, update

from nnote.models import LoginSession, User, db, utcnow

# How stale `last_seen_at` may get before a request writes it: a write per page would cost
# every logged-in page a transaction. The browser's session cookie keeps when it last wrote.
SEEN_EVERY_MINUTES = 5
SEEN_KEY = "_seen"
# What the account page calls a device: the first browser and system its User-Agent names
# (order matters: Edge and Chrome also say Safari, Chrome on iOS says CriOS).
BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
SYSTEMS = (
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_TOKEN = re.compile(r"[\w./-]+")


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(user: User) -> str:
    """A new login session of `user` on this device; the secret its cookies carry."""
    secret = secrets.token_urlsafe(32)
    agent = (request.user_agent.string or "")[:200]
    db.session.add(LoginSession(user_id=user.id, token_hash=token_hash(secret), user_agent=agent))
    db.session.commit()
    session[SEEN_KEY] = _minute()  # the row was seen just now: the next pages need not say so
    return secret


def end(user_id: int, session_id: int) -> bool:
    """End one of the user's sessions; False if it was not there."""
    done = db.session.execute(
        delete(LoginSession).where(LoginSession.id == session_id, LoginSession.user_id == user_id)
    )
    db.session.commit()
    return bool(done.rowcount)  # type: ignore[attr-defined]


def end_all(user_id: int, keep: int | None = None) -> int:
    """End every session of the user (but `keep`); how many ended."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    done = db.session.execute(query)
    db.session.commit()
    return int(done.rowcount)  # type: ignore[attr-defined]


def listed(user_id: int) -> list[LoginSession]:
    """The user's sessions, the most recently seen first."""
    query = (
        select(LoginSession)
        .where(LoginSession.user_id == user_id)
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    )
    return list(db.session.scalars(query))


def seen(session_id: int) -> None:
    """Note that the session was used now, at most every SEEN_EVERY: when this browser's
    cookie says its last note is older (no read of the row's time on every page)."""
    minute = _minute()
    if session.get(SEEN_KEY, 0) + SEEN_EVERY_MINUTES > minute:
        return
    session[SEEN_KEY] = minute
    with db.engine.begin() as connection:
        connection.execute(
            update(LoginSession).where(LoginSession.id == session_id).values(last_seen_at=utcnow())
        )


def _minute() -> int:
    return int(time.time() // 60)


def device(user_agent: str | None) -> str:
    """A User-Agent as a person would name the device ("Firefox on Linux"); the string
    itself when it names no browser it knows (a script's, a test client's)."""
    agent = user_agent or ""
    browser = next((name for mark, name in BROWSERS if mark in agent), None)
    system = next((name for mark, name in SYSTEMS if mark in agent), None)
    if browser is None:
        first = _TOKEN.match(agent)
        return first[0] if first else "Unknown browser"
    return f"{browser} on {system}" if system else browser
