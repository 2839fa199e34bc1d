"""CSRF, headers, cookies, body limits, error pages, password hashing, logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import select

from nnote import create_app
from nnote.models import User, db
from tests.app.conftest import PASSWORD, AuthActions


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (
            "/auth/signup",
            {
                "email": "eve@example.com",
                "first_name": "Eve",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
        ),
        ("/auth/login", {"email": "ann@example.com", "password": PASSWORD}),
        ("/auth/logout", {}),
        ("/notes", {"body": "forged"}),
        ("/notes/1/edit", {"body": "forged"}),
        ("/notes/1/delete", {}),
        ("/notes/1/pin", {}),
        ("/notes/1/unpin", {}),
        ("/account/password", {"current": PASSWORD, "password": "x" * 10, "confirm": "x" * 10}),
        ("/account/delete", {"account_password": PASSWORD}),
    ],
)
def test_state_change_without_csrf_token_is_refused(
    user: AuthActions, client: FlaskClient, app: Flask, path: str, data: dict[str, str]
) -> None:
    user.add_note("original")
    for token in (None, "forged-token"):
        form = dict(data, **({"csrf_token": token} if token else {}))
        response = client.post(path, data=form)
        assert response.status_code == 400
        assert "did not come from this site" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "ann@example.com"
    assert client.get("/account/").status_code == 200
    assert "original" in client.get("/").get_data(as_text=True)


def test_every_page_sends_security_headers(user: AuthActions, client: FlaskClient) -> None:
    for path in ("/", "/account/", "/auth/login", "/missing", "/healthz"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"


def test_security_headers_come_once_and_a_view_s_own_is_kept(app: Flask) -> None:
    @app.get("/framable")
    def framable() -> tuple[str, int, dict[str, str]]:
        return "ok", 200, {"X-Frame-Options": "SAMEORIGIN"}

    user = AuthActions(app.test_client())
    user.signup()
    own = user.client.get("/framable").headers
    assert own.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert own.getlist("X-Content-Type-Options") == ["nosniff"]
    home = user.client.get("/").headers
    for name in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert len(home.getlist(name)) == 1, name


def test_each_session_has_its_own_csrf_token(user: AuthActions, app: Flask) -> None:
    """The signed token is kept per session (pages building a form in Python sign it anew,
    as Flask-WTF does, and each signature is accepted); another session's token is refused."""
    bob = AuthActions(app.test_client())
    bob.signup(email="bob@example.com", first_name="Bob")
    ann_token, bob_token = user.token("/"), bob.token("/")
    assert ann_token == user.token("/") and bob_token == bob.token("/")
    assert ann_token != bob_token
    account_token = user.token("/account/")
    added = user.client.post("/notes", data={"csrf_token": account_token, "body": "from there"})
    assert added.status_code == 302
    forged = bob.client.post("/notes", data={"csrf_token": ann_token, "body": "forged"})
    assert forged.status_code == 400
    for actions, token in ((user, ann_token), (bob, bob_token)):
        added = actions.client.post("/notes", data={"csrf_token": token, "body": "mine"})
        assert added.status_code == 302


def test_a_new_secret_key_ends_sessions_unless_the_old_one_is_a_fallback(
    user: AuthActions, client: FlaskClient, app: Flask
) -> None:
    cookie = client.get_cookie("session")
    assert cookie is not None
    old_key = app.config["SECRET_KEY"]
    app.config.update(SECRET_KEY="rotated-secret-key", SECRET_KEY_FALLBACKS=[old_key])
    assert client.get("/account/").status_code == 200, "the old key is still trusted"
    app.config["SECRET_KEY_FALLBACKS"] = []
    client.set_cookie("session", cookie.value)
    assert client.get("/account/").status_code == 302, "signed with a key no longer trusted"


def test_pages_have_no_inline_script_or_style(user: AuthActions, client: FlaskClient) -> None:
    for path in ("/", "/account/", "/missing"):
        html = client.get(path).get_data(as_text=True)
        assert "style=" not in html and "<style" not in html
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert scripts, "the page loads its script"
        for attributes, body in scripts:
            assert re.search(r'src="/static/[\w.-]+\.js"', attributes) and not body.strip()
        assert not re.search(r"\son[a-z]+=", html), "no inline event handler"


def test_session_cookie_flags(auth: AuthActions, client: FlaskClient) -> None:
    response = auth.signup()
    for cookie in response.headers.getlist("Set-Cookie"):  # the session and known_device
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie


def test_cookies_secure_when_configured_for_https(tmp_path: Path) -> None:
    from flask_migrate import upgrade

    from tests.app.conftest import base_config

    https = {"SESSION_COOKIE_SECURE": True, "REMEMBER_COOKIE_SECURE": True}
    app = create_app({**base_config(f"sqlite:///{tmp_path / 'n.sqlite'}"), **https})
    with app.app_context():
        upgrade()
    client = app.test_client()
    # Over HTTPS a form needs a referrer of this site (CSRF's strict check), as a browser sends.
    client.environ_base["HTTP_REFERER"] = "https://localhost/auth/signup"
    auth = AuthActions(client)
    response = auth.signup()
    session = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert session and "Secure" in session[0]
    auth.logout()
    remembered = auth.login(remember=True)
    cookies = remembered.headers.getlist("Set-Cookie")
    assert any(c.startswith("remember_token=") and "Secure" in c for c in cookies)
    assert remembered.headers["Strict-Transport-Security"].startswith("max-age=")


def test_passwords_use_werkzeug_default_hash(user: AuthActions, app: Flask) -> None:
    from werkzeug.security import generate_password_hash

    default_method = generate_password_hash("x").split("$")[0]
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash))
    assert stored is not None
    assert stored.split("$")[0] == default_method
    assert PASSWORD not in stored


def test_oversized_body_gets_413_page(user: AuthActions, client: FlaskClient) -> None:
    response = user.add_note("x" * 400_000)
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path", "code", "text"),
    [
        ("get", "/no/such/page", 404, "Not found"),
        ("put", "/notes", 405, "Method not allowed"),
        ("get", "/boom/403", 403, "Forbidden"),
        ("get", "/boom/500", 500, "Something went wrong"),
    ],
)
def test_error_pages_use_the_site_layout(
    app: Flask, method: str, path: str, code: int, text: str
) -> None:
    @app.get("/boom/<int:code>")
    def boom(code: int) -> str:
        if code == 500:
            raise RuntimeError("unexpected")
        abort(code)

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = getattr(app.test_client(), method)(path)
    page = response.get_data(as_text=True)
    assert response.status_code == code
    assert text in page and 'class="topbar"' in page and "/static/style.css" in page


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"email": ["a@b.co", "c@d.co"]},
        {"email": "\x00@x.com", "password": "\u00e9" * 8},
        {"remember": "maybe"},
    ],
)
def test_malformed_login_form_never_errors(auth: AuthActions, data: dict[str, object]) -> None:
    response = auth.post("/auth/login", data)
    assert 200 <= response.status_code < 500


def test_no_password_or_key_in_logs(
    auth: AuthActions, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth.signup()
    auth.logout()
    auth.login(password="a wrong password")
    auth.login()
    assert PASSWORD not in caplog.text and "a wrong password" not in caplog.text
    assert app.config["SECRET_KEY"] not in caplog.text


def test_undecodable_form_bytes_never_error(auth: AuthActions, client: FlaskClient) -> None:
    token = auth.token()
    body = f"csrf_token={token}&email=%FF%FE%00@x.com&password=%ED%A0%80%ED%A0%80xxxxxx"
    response = client.post(
        "/auth/login", data=body.encode(), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert "Enter a valid email address" in response.get_data(as_text=True)


def test_behind_cloudfront_every_request_is_https_from_the_viewers_address(
    tmp_path: Path,
) -> None:
    """As the deployer runs it behind CloudFront: the last hop (CloudFront to the load
    balancer) is plain HTTP, and the load balancer appends CloudFront's address."""
    from flask import request

    from tests.app.conftest import base_config

    config = {
        **base_config(f"sqlite:///{tmp_path / 'n.sqlite'}"),
        "SESSION_COOKIE_SECURE": True,
        "PROXY_FIX_X_FOR": 2,
    }
    app = create_app(config)
    seen = {}

    @app.get("/probe")
    def probe() -> str:
        seen.update(secure=request.is_secure, address=request.remote_addr)
        return "ok"

    forwarded = {
        "X-Forwarded-For": "203.0.113.9, 198.51.100.4, 130.176.1.2",
        "X-Forwarded-Proto": "http, http",  # as many hops as it trusts: ProxyFix would use it
    }
    response = app.test_client().get("/probe", headers=forwarded)
    assert response.status_code == 200
    assert seen == {"secure": True, "address": "198.51.100.4"}  # not the spoofed first hop
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_sessions_token_stays_the_same_after_its_first_page(
    user: AuthActions, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flask-WTF's signature carries the time: the session's first home page (which also
    makes the session's random token) and the same page seconds later show the same token,
    signed once."""
    import time

    import itsdangerous.timed

    with user.client.session_transaction() as session:
        session.pop("csrf_token", None)  # as after logging in: the session has no token yet
    clock = [int(time.time())]
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda _: clock[0])
    first = user.token("/")
    clock[0] += 5
    assert user.token("/") == first
