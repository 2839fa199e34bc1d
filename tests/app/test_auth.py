"""Sign up, log in, log out: validation, no account enumeration, throttling, safe redirects.

Throttling in depth (addresses, growing delays, the account page, sign-ups) is in
test_throttle.py."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nnote import passwords, throttle
from tests.app.conftest import PASSWORD, AuthActions


def test_signup_logs_the_new_user_in(auth: AuthActions, client: FlaskClient) -> None:
    response = auth.signup(email="Ann@Example.COM")
    assert response.headers["Location"] == "/"
    home = client.get("/").get_data(as_text=True)
    assert "Welcome, Ann!" in home
    assert "No notes yet" in home


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "", "Enter your email address."),
        ("email", "not-an-email", "Enter a valid email address"),
        ("email", "a" * 250 + "@x.com", "That email address is too long."),
        ("first_name", "   ", "Enter your first name."),
        ("first_name", "x" * 81, "Use at most 80 characters."),
        ("password", "short", "Use 8 to 128 characters."),
        ("confirm", "something else", "The two passwords differ."),
    ],
)
def test_signup_rejects_bad_field_with_message(
    auth: AuthActions, field: str, value: str, message: str
) -> None:
    data = {
        "email": "bob@example.com",
        "first_name": "Bob",
        "password": PASSWORD,
        "confirm": PASSWORD,
        field: value,
    }
    response = auth.post("/auth/signup", data, token_from="/auth/signup")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in page
    if field != "email":
        assert 'value="bob@example.com"' in page, "the form must be refilled"
    assert PASSWORD not in page, "a password is never sent back"


def test_signup_email_is_unique_whatever_its_case(auth: AuthActions, client: FlaskClient) -> None:
    auth.signup(email="ann@example.com")
    auth.logout()
    response = auth.signup(email="ANN@example.com")
    assert "An account with this email already exists" in response.get_data(as_text=True)


def test_login_with_any_case_of_the_email(user: AuthActions, client: FlaskClient) -> None:
    user.logout()
    response = user.login(email="  ANN@EXAMPLE.com ")
    assert response.status_code == 302
    assert "Hello again, Ann." in client.get("/").get_data(as_text=True)


def test_login_unknown_email_and_wrong_password_look_the_same(
    user: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    user.logout()
    hash_checks: list[str] = []
    real_check = passwords.check_password_hash
    monkeypatch.setattr(
        passwords,
        "check_password_hash",
        lambda stored, given: hash_checks.append(stored.split("$")[0]) or real_check(stored, given),
    )
    wrong_password = user.login(password="not the password")
    unknown_email = user.login(email="nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 200
    strip = lambda r: r.get_data(as_text=True).replace("nobody@example.com", "ann@example.com")  # noqa: E731
    assert _without_token(strip(wrong_password)) == _without_token(strip(unknown_email))
    # One full hash check each way, with the same algorithm: the timing is alike too.
    assert len(hash_checks) == 2 and hash_checks[0] == hash_checks[1]


def _without_token(html: str) -> str:
    import re

    return re.sub(r'value="[^"]{40,}"', "", html)


def test_login_remember_me_sets_a_lasting_cookie(user: AuthActions, client: FlaskClient) -> None:
    user.logout()
    user.login(remember=False)
    assert client.get_cookie("remember_token") is None
    user.logout()
    user.login(remember=True)
    cookie = client.get_cookie("remember_token")
    assert cookie is not None and cookie.http_only and cookie.expires is not None


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throttle's clock stands still: every wait is still to come, however slow the run."""
    stopped = throttle.now()
    monkeypatch.setattr(throttle, "now", lambda: stopped)


@pytest.mark.usefixtures("stopped_clock")
def test_login_throttled_after_repeated_failures(user: AuthActions, app: Flask) -> None:
    user.logout()
    for _ in range(app.config["LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_CLIENT"]):
        assert user.login(password="wrong password!").status_code == 200
    throttled = user.login()  # even the right password waits now
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert "Too many failed attempts. Try again in 1 second." in throttled.get_data(as_text=True)


@pytest.mark.usefixtures("stopped_clock")
def test_login_throttled_per_client_across_accounts(auth: AuthActions, app: Flask) -> None:
    app.config["LOGIN_FREE_FAILURES_PER_CLIENT"] = 3
    for number in range(3):
        auth.login(email=f"guess{number}@example.com", password="whatever1")
    assert auth.login(email="another@example.com", password="whatever1").status_code == 429


@pytest.mark.usefixtures("stopped_clock")
def test_login_success_clears_this_clients_failures(user: AuthActions) -> None:
    user.logout()
    for _ in range(4):
        user.login(password="wrong password!")
    assert user.login().status_code == 302
    user.logout()
    for _ in range(4):
        user.login(password="wrong password!")
    assert user.login().status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "\t//evil.example",
        "evil.example",
    ],
)
def test_login_next_never_leaves_the_site(user: AuthActions, target: str) -> None:
    user.logout()
    response = user.post(
        f"/auth/login?next={target}", {"email": "ann@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_login_next_keeps_a_local_path(user: AuthActions) -> None:
    user.logout()
    response = user.post(
        "/auth/login?next=/account/", {"email": "ann@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/account/"


def test_pages_require_login(client: FlaskClient) -> None:
    landing = client.get("/")  # the logged-out home is the landing page, with no notes
    assert landing.status_code == 200 and 'href="/auth/signup"' in landing.get_data(as_text=True)
    for path in ("/account/", "/notes/1/edit", "/notes/1/delete"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/auth/login?next=")


def test_logout_needs_post_with_token(user: AuthActions, client: FlaskClient) -> None:
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 400
    assert client.get("/account/").status_code == 200, "still logged in"
    user.logout()
    assert client.get("/account/").status_code == 302


def test_logout_after_remember_me_ends_the_session_and_clears_the_cookie(
    user: AuthActions, client: FlaskClient
) -> None:
    user.logout()
    user.login(remember=True)
    assert client.get_cookie("remember_token") is not None
    response = user.logout()
    cleared = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token=")]
    assert cleared and "Expires=Thu, 01 Jan 1970" in cleared[0], "the cookie is deleted"
    assert client.get_cookie("remember_token") is None
    assert client.get("/account/").status_code == 302, "logged out, even with remember-me"


def test_private_pages_are_never_stored_public_ones_may_be(
    user: AuthActions, client: FlaskClient
) -> None:
    for path in ("/", "/account/"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    user.logout()
    assert "no-store" not in client.get("/auth/login").headers.get("Cache-Control", "")
