"""Error pages in the site's layout, for every status a user can meet."""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from nnote.models import db

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Forbidden", "You are not allowed to do that."),
    404: ("Not found", "There is nothing here. It may have been deleted."),
    405: ("Method not allowed", "That page cannot be used this way."),
    413: ("Too large", "What you sent is too large. Shorten it and try again."),
    429: ("Too many attempts", "Too many failed attempts. Wait a few minutes and try again."),
    500: ("Something went wrong", "The error is logged. Try again in a moment."),
}


def render_error(code: int, detail: str | None = None) -> tuple[str, int]:
    title, message = MESSAGES.get(code, (f"Error {code}", "The request failed."))
    return render_template(
        "errors/error.html", code=code, title=title, message=detail or message
    ), code


def _http_error(error: HTTPException) -> tuple[str, int]:
    return render_error(error.code or 500)


def _csrf_error(_error: CSRFError) -> tuple[str, int]:
    return render_error(
        400, "The form expired or did not come from this site. Reload the page and try again."
    )


def _throttled(error: HTTPException) -> tuple[str, int, dict[str, str]]:
    from nnote.throttle import retry_after_seconds

    body, code = render_error(429)
    return body, code, {"Retry-After": str(retry_after_seconds())}


def _server_error(_error: InternalServerError) -> tuple[str, int]:
    db.session.rollback()
    return render_error(500)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(429, _throttled)
    app.register_error_handler(500, _server_error)
    app.register_error_handler(HTTPException, _http_error)
