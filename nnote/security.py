"""Sessions, CSRF, security headers and the proxy set-up, wired once into the app."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect, generate_csrf, same_origin
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import bindparam, exists, select, true
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as Redirect

from nnote import sessions, visitor_tokens
from nnote.models import LoginSession, Note, User, reads
from nnote.plain_reads import PlainRead


class Csrf(CSRFProtect):
    """Flask-WTF's CSRF check, which also takes a logged-out visitor's token on the forms
    that accept one (`nnote.visitor_tokens`). It asks the method first: Flask-WTF looked up
    the view's exemptions on every GET."""

    def protect(self, apply_exemptions: bool = False) -> None:
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return
        if not visitor_tokens.valid(self._get_csrf_token()):
            super().protect(apply_exemptions)
            return
        # The rest of Flask-WTF's check: over HTTPS, the form came from one of our pages.
        strict = request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]
        if strict and not same_origin(request.referrer or "", f"https://{request.host}/"):
            self._error_response("The referrer does not match the host.")
        g.csrf_valid = True


csrf = Csrf()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"
# Flask-Login's default ("basic") only marks a session not fresh when the browser's address
# or agent changes, and nothing here asks for a fresh login: it cost every page a SHA-512
# and 130 bytes of cookie. Sessions end on the server instead (`nnote.sessions`).
login_manager.session_protection = None
# Nor is the client identifier it compares ever read then, yet Flask-Login computed it (a
# SHA-512 of address and agent) on every request and kept it in every session cookie.
login_manager._session_identifier_generator = str  # str() is ""

# No inline script or style anywhere: every asset comes from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HTTPS_ONLY = ("Strict-Transport-Security", "max-age=31536000")
NO_STORE = ("Cache-Control", "no-store")


def init_app(app: Flask) -> None:
    app.session_interface = SessionCookies()
    csrf.init_app(app)
    # Flask-WTF hands templates its `csrf_token` from a context processor; this one runs later.
    app.context_processor(lambda: {"csrf_token": csrf_token})
    login_manager.init_app(app)
    app.after_request(_no_store_when_logged_in)
    app.after_request(visitor_tokens.set_cookie)
    every_answer: tuple[tuple[str, str], ...] = SECURITY_HEADERS
    if app.config["SESSION_COOKIE_SECURE"]:
        every_answer = (*every_answer, HTTPS_ONLY)
    app.wsgi_app = _with_headers(app.wsgi_app, every_answer)  # type: ignore[method-assign]
    if app.config["SESSION_COOKIE_SECURE"]:
        # Served over HTTPS only (the front door redirects plain HTTP), though the last hop
        # may be HTTP (CloudFront to the load balancer, whose X-Forwarded-Proto then says
        # http): every request is an HTTPS request, for CSRF's referrer check and links. It
        # wraps the app inside ProxyFix, so the forwarded scheme cannot undo it.
        app.wsgi_app = _always_https(app.wsgi_app)  # type: ignore[method-assign]
    if app.config["PROXY_FIX_X_FOR"]:
        # Behind the load balancer the client address is the last X-Forwarded-For hop
        # (behind CloudFront, the one before it: the deployer sets how many).
        hops = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


@dataclass(frozen=True)
class SessionUser(UserMixin):
    """Who is logged in, and through which login session: a plain snapshot, loaded on every
    request without the ORM.

    Views that change the account load the `User` model themselves.
    """

    id: int
    email: str
    first_name: str
    session_token: str
    session_id: int = 0
    secret: str = ""
    # What keys the kept first page of the list (nnote.listing): -1 when it must not be kept.
    notes_version: int = 0

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}:{self.secret}"


# Built once from table columns and run on the driver's cursor of the request's connection
# (`reads`, `PlainRead`): this query runs on every logged-in page.
_users = User.__table__.c
_sessions = LoginSession.__table__.c
_notes = Note.__table__.c
SESSION_USER = PlainRead(
    select(
        _users.id,
        _users.email,
        _users.first_name,
        _users.session_token,
        _sessions.id.label("session_id"),
        _users.notes_version,
        # Notes that code from before 0004 wrote (during a rollout) have a stale rendering
        # and no counted version: the list is then read anew (ix_note_user_id_stale).
        exists().where(_notes.user_id == _users.id, _notes.stale == true()).label("notes_stale"),
    )
    .join_from(User.__table__, LoginSession.__table__, _sessions.user_id == _users.id)
    .where(_users.id == bindparam("user_id"), _sessions.token_hash == bindparam("token_hash"))
)


def logged_in(user: User, secret: str) -> SessionUser:
    """The user as a new login session (`sessions.start`) logs them in."""
    return SessionUser(
        user.id, user.email, user.first_name, user.session_token, 0, secret, user.notes_version
    )


@login_manager.user_loader
def load_user(login_id: str) -> SessionUser | None:
    """Find the user of a login id; one whose session ended (logout, ended from the account
    page) or whose token is stale (password changed) finds nobody."""
    user_id, token, secret = [*login_id.split(":"), "", ""][:3]
    if not user_id.isdigit() or len(user_id) > 18 or not secret:
        return None
    found = {"user_id": int(user_id), "token_hash": sessions.token_hash(secret)}
    row = SESSION_USER.first(reads(), found)
    if row is None or not hmac.compare_digest(row.session_token, token):
        return None
    sessions.seen(row.session_id)
    version = -1 if row.notes_stale else row.notes_version
    return SessionUser(
        row.id, row.email, row.first_name, row.session_token, row.session_id, secret, version
    )


@login_manager.unauthorized_handler
def log_in_first() -> Redirect:
    """To the login page, and back after it. A form sent after its session ended (logged out
    elsewhere) comes back to the page it was sent from, where its draft waits: the form's
    own URL may answer POST only (405 after logging in)."""
    flash(login_manager.login_message, login_manager.login_message_category)
    back: str | None = (request.script_root + request.full_path).removesuffix("?")
    if request.method != "GET":
        referrer = urlsplit(request.referrer or "")
        back = referrer.path if referrer.netloc == request.host else None
    return redirect(url_for("auth.login", next=back))


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per set of
    keys instead of on every request: building it was half the cost of reading the cookie.
    A visitor without a cookie costs no exception either: Werkzeug's `get` of a missing
    cookie or header raises and catches a KeyError (2 us each, a visitor's page had three)."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if keys not in self._serializers:
            self._serializers[keys] = super().get_signing_serializer(app)
        return self._serializers[keys]

    def open_session(self, app: Flask, request: Any) -> Any:
        if self.get_signing_serializer(app) is None or self.get_cookie_name(app) in request.cookies:
            return super().open_session(app, request)
        return self.session_class()

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        """Flask's, without reading the seven cookie settings when no cookie is set: a
        session neither changed nor due a refresh (most requests: every visitor's form)."""
        if session.modified or (session and self.should_set_cookie(app, session)):
            super().save_session(app, session, response)
        elif session.accessed:
            if response.headers.getlist("Vary"):
                response.vary.add("Cookie")
            else:
                response.headers["Vary"] = "Cookie"


def csrf_token() -> str:
    """The page's CSRF token as Flask-WTF makes it, signed once per session rather than on
    every page (signing was ~3% of the home page).

    Flask-WTF signs the session's random token with a timestamp that only a time limit reads;
    nnote sets none (a form stays valid as long as its session), so a session's signed token
    is the same on every page. With a time limit set, every page signs anew."""
    config = current_app.config
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    token: str | None = g.get(field)
    if token is not None:
        return token
    if config.get("WTF_CSRF_TIME_LIMIT") is not None:
        return str(generate_csrf())
    secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    token = _signed_tokens.get((secret, session.get(field)))
    if token is None:
        # The session's first page also makes its random token: what is kept is that
        # signing, so every later page of the session shows the very same token.
        token = str(generate_csrf())
        if len(_signed_tokens) >= SIGNED_TOKENS_KEPT:
            _signed_tokens.clear()
        _signed_tokens[(secret, session[field])] = token
    setattr(g, field, token)
    return token


# Flask-WTF's signed token of each recent session, by (signing key, the session's raw token).
SIGNED_TOKENS_KEPT = 4096
_signed_tokens: dict[tuple[Any, Any], str] = {}


def _with_headers(wsgi_app: Any, headers: tuple[tuple[str, str], ...]) -> Any:
    """Every answer's security headers, unless the view set one itself. Added to the WSGI
    header list (plain tuples, checked once here) rather than to Werkzeug's Headers, which
    checks each value on every response: that was a tenth of a visitor's log-in page."""
    for name, value in headers:
        assert "\n" not in name + value and "\r" not in name + value, name

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, response_headers: list[tuple[str, str]], *info: Any) -> Any:
            present = {name.lower() for name, _value in response_headers}
            response_headers += [h for h in headers if h[0].lower() not in present]
            return start_response(status, response_headers, *info)

        return wsgi_app(environ, start)

    return app


def _no_store_when_logged_in(response: Response) -> Response:
    """A private page is never stored: not by a shared cache, nor by the browser's
    back/forward cache, which would show it again after logging out."""
    if _logged_in() and not response.headers.getlist(NO_STORE[0]):
        response.headers[NO_STORE[0]] = NO_STORE[1]
    return response


def _logged_in() -> bool:
    """Whether this request had a logged-in user (without loading one just to ask)."""
    user = g.get("_login_user")
    return bool(user is not None and user.is_authenticated)


def _always_https(wsgi_app: Any) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.url_scheme"] = "https"
        return wsgi_app(environ, start_response)

    return app
