"""Sessions, CSRF, security headers and the proxy set-up, wired once into the app."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import Flask, Response
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import bindparam, select
from werkzeug.middleware.proxy_fix import ProxyFix

from nnote.models import User, db

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"

# No inline script or style anywhere: every asset comes from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)
    app.after_request(_add_security_headers)
    if app.config["PROXY_FIX_X_FOR"]:
        # Behind the load balancer the client address is the last X-Forwarded-For hop.
        hops = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


@dataclass(frozen=True)
class SessionUser(UserMixin):
    """Who is logged in: a plain snapshot, loaded on every request without the ORM.

    Views that change the account load the `User` model themselves.
    """

    id: int
    email: str
    first_name: str
    session_token: str

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


# Built once: this query runs on every logged-in request.
# Table columns, not ORM attributes: the session then runs it as plain Core, skipping the
# ORM's statement compilation on every request (this runs on every logged-in page).
_users = User.__table__.c
SESSION_USER = select(_users.id, _users.email, _users.first_name, _users.session_token).where(
    _users.id == bindparam("user_id")
)


@login_manager.user_loader
def load_user(login_id: str) -> SessionUser | None:
    """Find the user of a session; a stale session token (password changed) finds nobody."""
    user_id, _, token = login_id.partition(":")
    if not user_id.isdigit() or len(user_id) > 18:
        return None
    row = db.session.execute(SESSION_USER, {"user_id": int(user_id)}).first()
    if row is None or not hmac.compare_digest(row.session_token, token):
        return None
    return SessionUser(*row)


def _add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    from flask import current_app

    if current_app.config["SESSION_COOKIE_SECURE"]:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
