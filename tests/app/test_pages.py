"""The logged-out visitor's log-in and sign-up pages, rendered once per process (nnote.pages):
each visitor still gets a token of its own, and nothing of another visitor's."""

from __future__ import annotations

import re

import pytest
from flask import Flask

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
