"""What the session cookie says to the browser and to caches (nnote.security.SessionCookies
sets no cookie on the requests that change nothing, and Flask-Login's client fingerprint is
not kept)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.app.conftest import AuthActions


@pytest.mark.parametrize("path", ["/", "/auth/login", "/auth/signup"])
def test_a_visitors_page_tells_caches_it_depends_on_cookies(client: FlaskClient, path: str) -> None:
    """The landing page and the forms answer differently once logged in: a shared cache
    that ignored the cookie would show one visitor's answer to another."""
    response = client.get(path)
    assert response.status_code == 200
    assert "Cookie" in response.vary


def test_the_logged_in_page_depends_on_cookies_and_sets_none(user: AuthActions) -> None:
    user.client.get("/")
    response = user.client.get("/")
    assert "Cookie" in response.vary
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]


def test_the_session_cookie_is_deleted_once_logged_out_and_told(user: AuthActions) -> None:
    """Logging out leaves only its message in the session; the page that shows it empties
    the session, and the browser is told to drop the cookie."""
    user.logout()
    with user.client.session_transaction() as session:
        assert set(session) == {"_flashes"}
    response = user.client.get("/")
    assert "You are logged out." in response.get_data(as_text=True)
    cleared = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert cleared and "Expires=Thu, 01 Jan 1970" in cleared[0]
    assert user.client.get_cookie("session") is None


def test_the_session_carries_no_fingerprint_of_the_browser(app: Flask, auth: AuthActions) -> None:
    """Flask-Login's session protection is off (sessions end on the server), so the SHA-512
    of address and User-Agent it would compare is not computed nor sent in every cookie."""
    auth.signup()
    with auth.client.session_transaction() as session:
        assert not session.get("_id")
    other_browser = {"User-Agent": "Another/1.0"}
    assert auth.client.get("/account/", headers=other_browser).status_code == 200
    cookie = auth.client.get_cookie("session")
    assert cookie is not None and len(cookie.value) < 300


def test_a_logged_in_session_survives_only_while_its_cookie_is_sent(
    app: Flask, user: AuthActions, client: FlaskClient
) -> None:
    assert client.get("/account/").status_code == 200
    client.delete_cookie("session")
    assert client.get("/account/").status_code == 302
