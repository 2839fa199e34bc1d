"""Login sessions that really end (OWASP ASVS V3): one row per logged-in device, checked on
every request; logging out, ending a session on the account page or changing the password
ends it on the server, so cookies copied before (the session's, remember-me's) open nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from nnote import sessions
from nnote.models import LoginSession, db, utcnow
from tests.app.conftest import PASSWORD, AuthActions

NEW_PASSWORD = "a brand new passphrase"


def copy_of(app: Flask, client: FlaskClient, *names: str) -> FlaskClient:
    """Another browser holding copies of `client`'s cookies (a stolen cookie, replayed)."""
    thief = app.test_client()
    for name in names:
        cookie = client.get_cookie(name)
        assert cookie is not None, name
        thief.set_cookie(name, cookie.value)
    return thief


def second_device(app: Flask) -> tuple[FlaskClient, AuthActions]:
    phone = app.test_client()
    actions = AuthActions(phone)
    assert actions.login().status_code == 302
    return phone, actions


def rows(app: Flask) -> list[LoginSession]:
    with app.app_context():
        return list(db.session.scalars(select(LoginSession).order_by(LoginSession.id)))


def test_a_session_cookie_copied_before_logout_opens_nothing_after(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    thief = copy_of(app, client, "session")
    assert thief.get("/account/").status_code == 200, "the copy works while the session lives"
    user.logout()
    assert thief.get("/account/").status_code == 302
    assert rows(app) == []


def test_a_remember_me_cookie_copied_before_logout_opens_nothing_after(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    user.logout()
    user.login(remember=True)
    thief = copy_of(app, client, "remember_token")
    assert thief.get("/account/").status_code == 200, "remember-me alone logs in while it lives"
    user.logout()
    assert thief.get("/account/").status_code == 302


def test_the_account_page_lists_each_device_and_ends_any_of_them(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    phone, _ = second_device(app)
    page = client.get("/account/").get_data(as_text=True)
    assert page.count("End this session") == 1 and "(this device)" in page
    assert "Log out everywhere else" in page
    phone_session = rows(app)[-1].id
    ended = user.post(f"/account/sessions/{phone_session}/end", {}, token_from="/account/")
    assert ended.status_code == 302
    assert phone.get("/account/").status_code == 302, "the phone is logged out"
    assert client.get("/account/").status_code == 200, "this device is not"
    again = user.post(f"/account/sessions/{phone_session}/end", {}, token_from="/account/")
    assert again.status_code == 404


def test_log_out_everywhere_else_keeps_only_this_device(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    phone, _ = second_device(app)
    tablet, _ = second_device(app)
    response = user.post("/account/sessions/end-others", {}, token_from="/account/")
    assert response.status_code == 302
    assert phone.get("/account/").status_code == 302 and tablet.get("/account/").status_code == 302
    assert client.get("/account/").status_code == 200
    assert len(rows(app)) == 1


def test_ending_this_devices_session_logs_it_out(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    mine = rows(app)[0].id
    response = user.post(f"/account/sessions/{mine}/end", {}, token_from="/account/")
    assert response.headers["Location"] == "/auth/login"
    assert client.get("/account/").status_code == 302


def test_no_one_ends_another_users_session_and_no_form_without_its_token(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    other = AuthActions(app.test_client())
    assert other.signup(email="bob@example.com", first_name="Bob").status_code == 302
    bobs = rows(app)[-1].id
    refused = user.post(f"/account/sessions/{bobs}/end", {}, token_from="/account/")
    assert refused.status_code == 404
    assert other.client.get("/account/").status_code == 200, "Bob is still logged in"
    assert client.post("/account/sessions/end-others").status_code == 400


def test_changing_the_password_ends_every_session(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    phone, _ = second_device(app)
    changed = user.post(
        "/account/password",
        {
            "current": PASSWORD,
            "password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
        token_from="/account/",
    )
    assert changed.status_code == 302
    assert phone.get("/account/").status_code == 302 and client.get("/account/").status_code == 302
    assert rows(app) == []


def test_each_session_remembers_when_it_was_last_seen(
    app: Flask, user: AuthActions, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_ago = utcnow() - timedelta(hours=2)

    def seen_long_ago() -> None:
        with app.app_context():
            db.session.execute(update(LoginSession).values(last_seen_at=long_ago))
            db.session.commit()

    seen_long_ago()
    client.get("/")
    assert rows(app)[0].last_seen_at == long_ago, "the login itself was a sighting"
    later = sessions._minute() + sessions.SEEN_EVERY_MINUTES
    monkeypatch.setattr(sessions, "_minute", lambda: later)
    client.get("/")
    [session] = rows(app)
    assert session.last_seen_at > long_ago + timedelta(hours=1)
    assert session.user_agent.startswith("Werkzeug")
    # Written at most every few minutes, not on every page (a transaction each).
    seen_long_ago()
    client.get("/")
    assert rows(app)[0].last_seen_at == long_ago


@pytest.mark.parametrize(
    ("agent", "shown"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML,"
            " like Gecko) Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        ("curl/8.5.0", "curl/8.5.0"),
        ("", "Unknown browser"),
    ],
)
def test_the_account_page_names_each_device_as_a_person_would(agent: str, shown: str) -> None:
    assert sessions.device(agent) == shown


def test_the_account_page_shows_the_device_and_when_in_local_times(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    laptop = app.test_client()
    laptop.environ_base["HTTP_USER_AGENT"] = firefox
    assert AuthActions(laptop).login().status_code == 302
    page = client.get("/account/").get_data(as_text=True)
    assert f'<span title="{firefox}">Firefox on Linux</span>' in page
    # <time datetime> elements, which the page's script shows as "3 min ago".
    assert len(re.findall(r'<time datetime="[\d-]+T[\d:]+Z">', page)) == 4
