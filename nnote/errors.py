"""Error pages in the site's layout, for every status a user can meet."""

from __future__ import annotations

import math
from contextlib import suppress

from flask import Flask, current_app, g, render_template
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from nnote.models import db

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Forbidden", "You are not allowed to do that."),
    404: ("Not found", "There is nothing here. It may have been deleted."),
    405: ("Method not allowed", "That page cannot be used this way."),
    413: ("Too large", "What you sent is too large. Shorten it and try again."),
    429: ("Too many attempts", "Too many attempts. Wait a few minutes and try again."),
    500: ("Something went wrong", "The error is logged. Try again in a moment."),
    503: (
        "Temporarily unavailable",
        "The database cannot be reached right now. Nothing you sent was lost or half-saved: "
        "try again in a moment.",
    ),
}


def render_error(code: int, detail: str | None = None) -> tuple[str, int]:
    title, message = MESSAGES.get(code, (f"Error {code}", "The request failed."))
    return render_template(
        "errors/error.html", code=code, title=title, message=detail or message
    ), code


def _http_error(error: HTTPException) -> tuple[str, int]:
    return render_error(error.code or 500)


def csrf_error(_error: CSRFError) -> tuple[str, int]:
    return render_error(
        400, "The form expired or did not come from this site. Reload the page and try again."
    )


def _throttled(error: HTTPException) -> tuple[str, int, dict[str, str]]:
    wait = getattr(error, "retry_after", None)
    if not isinstance(wait, int) or wait <= 0:
        body, code = render_error(429)
        return body, code, {}
    body, code = render_error(429, f"{error.description} Try again in {wait_in_words(wait)}.")
    return body, code, {"Retry-After": str(wait)}


def wait_in_words(seconds: int) -> str:
    """A wait as a person reads it, rounded up so that it is never too early to retry."""
    if seconds < 60:
        count, unit = seconds, "second"
    elif seconds < 3600:
        count, unit = math.ceil(seconds / 60), "minute"
    else:
        count, unit = math.ceil(seconds / 3600), "hour"
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _server_error(_error: InternalServerError) -> tuple[str, int]:
    db.session.rollback()
    return render_error(500)


def _database_down(error: Exception) -> tuple[str, int, dict[str, str]]:
    # The transaction never committed, so nothing is half-saved; the pool's pre-ping
    # replaces the dead connections on the next request, with no worker restart.
    current_app.logger.warning("database unreachable: %s", type(error).__name__)
    with suppress(OperationalError, InterfaceError):
        db.session.rollback()
    # The layout asks who is logged in; with no database that would fail again, so the
    # page is drawn for an anonymous visitor (flask-login keeps the user in g._login_user).
    g._login_user = current_app.login_manager.anonymous_user()  # type: ignore[attr-defined]
    body, code = render_error(503)
    return body, code, {"Retry-After": "5"}


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(429, _throttled)
    app.register_error_handler(500, _server_error)
    app.register_error_handler(OperationalError, _database_down)
    app.register_error_handler(InterfaceError, _database_down)
    app.register_error_handler(HTTPException, _http_error)
