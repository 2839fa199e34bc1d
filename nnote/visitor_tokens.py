"""CSRF tokens for logged-out visitors without a server session: a signed double-submit
cookie (OWASP's CSRF cheat sheet).

Flask-WTF keeps a form's token in the session, so every new visitor to the log-in or sign-up
page cost a session cookie and two itsdangerous signatures: most of that page's time. A
visitor instead gets a random `visitor` cookie (HttpOnly, SameSite=Lax), and the page's token
is its HMAC under the app's secret key. A post is genuine when its token is the HMAC of the
cookie it came with: another site can neither read the cookie nor compute the HMAC. Only
the log-in and sign-up forms accept these tokens; once logged in, Flask-WTF's session tokens
take over.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from flask import Response, current_app, g, request

COOKIE = "visitor"
# The views whose forms a logged-out visitor sends with a visitor token.
ENDPOINTS = frozenset({"auth.login", "auth.signup"})
# Marks the token apart from Flask-WTF's (which never contains "~").
PREFIX = "v~"
_NONCE_BYTES = 18  # 24 characters of URL-safe base64
_PURPOSE = b"nnote visitor csrf token"


def token() -> str:
    """This visitor's token; a new visitor gets its cookie with the response."""
    nonce = _cookie_nonce()
    if nonce is None:
        nonce = g._visitor_nonce = secrets.token_urlsafe(_NONCE_BYTES)
    return PREFIX + _sign(_keys()[0], nonce)


def valid(sent: str | None) -> bool:
    """Whether `sent` is this visitor's token, for a form that accepts one."""
    nonce = _cookie_nonce()
    if nonce is None or not sent or not sent.startswith(PREFIX):
        return False
    if request.endpoint not in ENDPOINTS:
        return False
    mac = sent.removeprefix(PREFIX)
    # A key taken out of use (SECRET_KEY_FALLBACKS) still counts, as for sessions.
    return any(hmac.compare_digest(_sign(key, nonce), mac) for key in _keys())


def set_cookie(response: Response) -> Response:
    """Give a new visitor the cookie its token was made from."""
    nonce = g.pop("_visitor_nonce", None)
    if nonce is not None:
        config = current_app.config
        response.set_cookie(
            COOKIE,
            nonce,
            httponly=True,
            samesite="Lax",
            secure=config["SESSION_COOKIE_SECURE"],
            path=config["APPLICATION_ROOT"],
        )
    return response


def _cookie_nonce() -> str | None:
    if COOKIE not in request.cookies:  # a new visitor; .get raised and caught a KeyError
        return None
    nonce = request.cookies[COOKIE]
    if len(nonce) != 4 * _NONCE_BYTES // 3 or not nonce.isascii():
        return None
    return nonce


def _keys() -> tuple[bytes, ...]:
    config = current_app.config
    return _derived_keys(config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or ()))


@lru_cache(maxsize=8)
def _derived_keys(*secrets_in_use: str | bytes) -> tuple[bytes, ...]:
    """One key per secret, for this purpose only (the secret also signs the sessions)."""
    return tuple(
        hmac.new(_bytes(secret), _PURPOSE, hashlib.sha256).digest() for secret in secrets_in_use
    )


def _sign(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
