"""The logged-out visitor's log-in and sign-up pages, rendered once per process (nnote.pages):
each visitor still gets a token of its own, and nothing of another visitor's."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.app.conftest import PASSWORD, AuthActions
from tests.conftest import csrf_token_in


def _without_token(html: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "TOKEN", html)


@pytest.mark.parametrize("path", ["/auth/login", "/auth/signup"])
def test_each_new_visitor_gets_the_page_with_a_token_of_its_own(app: Flask, path: str) -> None:
    visits = [app.test_client().get(path) for _ in range(3)]
    pages = [visit.get_data(as_text=True) for visit in visits]
    tokens = [csrf_token_in(page) for page in pages]
    assert len(set(tokens)) == 3, "every visitor its own token"
    assert len({_without_token(page) for page in pages}) == 1, "the same page otherwise"
    assert all(visit.status_code == 200 for visit in visits)


def test_a_token_from_the_kept_page_works_for_its_visitor_only(app: Flask) -> None:
    AuthActions(app.test_client()).signup()
    first, second = app.test_client(), app.test_client()
    first.get("/auth/login")  # the page is kept from here on
    token = csrf_token_in(second.get("/auth/login").get_data(as_text=True))
    data = {"email": "ann@example.com", "password": PASSWORD}
    refused = first.post("/auth/login", data={**data, "csrf_token": token})
    assert refused.status_code == 400, "another visitor's token"
    assert second.post("/auth/login", data={**data, "csrf_token": token}).status_code == 302


def test_a_visitor_never_sees_what_another_typed(app: Flask) -> None:
    typist = AuthActions(app.test_client())
    wrong = typist.post("/auth/login", {"email": "typed@example.com", "password": "wrong one"})
    assert "typed@example.com" in wrong.get_data(as_text=True)
    after = app.test_client().get("/auth/login").get_data(as_text=True)
    assert "typed@example.com" not in after and "Wrong email or password" not in after


def test_a_message_for_the_visitor_is_shown_after_the_page_was_kept(app: Flask) -> None:
    app.test_client().get("/auth/login")
    auth = AuthActions(app.test_client())
    auth.signup()
    logged_out = auth.logout()
    page = auth.client.get(logged_out.headers["Location"]).get_data(as_text=True)
    assert "You are logged out." in page
    assert "You are logged out." not in auth.client.get("/auth/login").get_data(as_text=True)


def test_the_page_follows_where_the_app_is_mounted(app: Flask) -> None:
    app.test_client().get("/auth/login")
    mounted = app.test_client().get("/auth/login", base_url="http://localhost/notes-app/")
    assert 'href="/notes-app/static/style.css"' in mounted.get_data(as_text=True)


def _kept_visitor_page(app: Flask, path: str = "/auth/login") -> tuple[FlaskClient, str]:
    """A new visitor served the kept page (another visitor saw it first)."""
    app.test_client().get(path)
    visitor = app.test_client()
    return visitor, csrf_token_in(visitor.get(path).get_data(as_text=True))


def test_a_new_visitor_gets_no_session_and_its_token_logs_it_in(app: Flask) -> None:
    AuthActions(app.test_client()).signup()
    visitor, token = _kept_visitor_page(app)
    assert visitor.get_cookie("session") is None, "no session cookie for a mere visit"
    assert visitor.get_cookie("visitor") is not None
    data = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": token}
    assert visitor.post("/auth/login", data=data).status_code == 302
    assert visitor.get("/account/").status_code == 200


def test_a_visitor_token_needs_its_own_cookie(app: Flask) -> None:
    AuthActions(app.test_client()).signup()
    visitor, token = _kept_visitor_page(app)
    data = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": token}
    other, _ = _kept_visitor_page(app)
    assert other.post("/auth/login", data=data).status_code == 400, "another visitor's cookie"
    visitor.delete_cookie("visitor")
    assert visitor.post("/auth/login", data=data).status_code == 400, "no cookie"
    forged = app.test_client()
    forged.set_cookie("visitor", "A" * 24)
    assert forged.post("/auth/login", data=data).status_code == 400, "a cookie of its choosing"


def test_a_visitor_token_signs_up_but_sends_no_other_form(app: Flask) -> None:
    visitor, token = _kept_visitor_page(app, "/auth/signup")
    form = {"email": "bo@example.com", "first_name": "Bo", "password": PASSWORD}
    signed_up = visitor.post(
        "/auth/signup", data={**form, "confirm": PASSWORD, "csrf_token": token}
    )
    assert signed_up.status_code == 302
    # Logged in now: the visitor token is no CSRF token for the account's forms.
    visitor.post("/notes", data={"body": "from a visitor token", "csrf_token": token})
    assert "from a visitor token" not in visitor.get("/").get_data(as_text=True)


def test_a_visitor_token_made_before_a_key_rotation_still_works(app: Flask) -> None:
    AuthActions(app.test_client()).signup()
    visitor, token = _kept_visitor_page(app)
    app.config["SECRET_KEY_FALLBACKS"] = [app.config["SECRET_KEY"]]
    app.config["SECRET_KEY"] = "a new secret key after rotation"
    data = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": token}
    assert visitor.post("/auth/login", data=data).status_code == 302


def test_over_https_a_visitor_token_also_needs_a_referrer_of_this_site(app: Flask) -> None:
    AuthActions(app.test_client()).signup()
    base = "https://localhost/"
    app.test_client().get("/auth/login", base_url=base)
    visitor = app.test_client()
    token = csrf_token_in(visitor.get("/auth/login", base_url=base).get_data(as_text=True))
    data = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": token}
    foreign = {"Referer": "https://evil.example/login"}
    assert visitor.post("/auth/login", data=data, base_url=base, headers=foreign).status_code == 400
    own = {"Referer": "https://localhost/auth/login"}
    assert visitor.post("/auth/login", data=data, base_url=base, headers=own).status_code == 302
