"""Password change ends every session; account deletion removes the user and every note."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from nnote.models import Note, User, db
from tests.app.conftest import PASSWORD, AuthActions

NEW_PASSWORD = "a brand new passphrase"


def change_password(
    user: AuthActions, current: str = PASSWORD, new: str = NEW_PASSWORD, confirm: str | None = None
):  # type: ignore[no-untyped-def]
    return user.post(
        "/account/password",
        {"current": current, "password": new, "confirm": confirm or new},
        token_from="/account/",
    )


def test_change_password_rejects_wrong_current(user: AuthActions, client: FlaskClient) -> None:
    response = change_password(user, current="not my password")
    assert "That is not your current password." in response.get_data(as_text=True)
    assert client.get("/account/").status_code == 200, "still logged in"


def test_change_password_rejects_mismatch(user: AuthActions) -> None:
    response = change_password(user, confirm="something different")
    assert "The two passwords differ." in response.get_data(as_text=True)


def test_change_password_logs_out_and_new_password_works(
    user: AuthActions, client: FlaskClient
) -> None:
    response = change_password(user)
    assert response.headers["Location"] == "/auth/login"
    assert "Log in again with your new password" in client.get("/auth/login").get_data(as_text=True)
    assert client.get("/account/").status_code == 302
    assert user.login(password=PASSWORD).status_code == 200, "old password refused"
    assert user.login(password=NEW_PASSWORD).status_code == 302


def test_change_password_ends_other_sessions_and_remember_cookies(app: Flask) -> None:
    laptop = AuthActions(app.test_client())
    laptop.signup()
    phone = AuthActions(app.test_client())
    phone.login(remember=True)
    remembered = phone.client.get_cookie("remember_token")
    assert remembered is not None
    assert phone.client.get("/account/").status_code == 200

    change_password(laptop)

    assert phone.client.get("/account/").status_code == 302, "the other session ended"
    stolen = app.test_client()
    stolen.set_cookie("remember_token", remembered.value)
    assert stolen.get("/account/").status_code == 302, "the remember-me cookie is dead"


def test_delete_account_needs_the_password(user: AuthActions, client: FlaskClient) -> None:
    response = user.post(
        "/account/delete", {"account_password": "nope nope"}, token_from="/account/"
    )
    assert "That is not your password." in response.get_data(as_text=True)
    assert client.get("/account/").status_code == 200


def test_delete_account_removes_user_notes_and_session(
    user: AuthActions, app: Flask, client: FlaskClient
) -> None:
    user.add_note("one")
    user.add_note("two")
    old_session = client.get_cookie("session")
    assert old_session is not None
    response = user.post("/account/delete", {"account_password": PASSWORD}, token_from="/account/")
    assert response.headers["Location"] == "/auth/signup"
    with app.app_context():
        assert db.session.query(User).count() == 0
        assert db.session.query(Note).count() == 0
    replay = app.test_client()
    replay.set_cookie("session", old_session.value)
    assert replay.get("/account/").status_code == 302, "a deleted account's cookie is dead"
    assert user.login().status_code == 200
