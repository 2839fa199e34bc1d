"""Throttling (nnote.throttle): growing delays per account and address, per address and per
account for new browsers; the account page's password checks; sign-ups per address; the
client's address behind the load balancer. The throttle's clock is moved by hand: no sleeps.

Every test runs on SQLite and on MariaDB (the counts are SQL over `login_failure`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from nnote import create_app, passwords, throttle
from nnote.models import LoginFailure, Note, User, db
from tests.app.conftest import PASSWORD, AuthActions, base_config
from tests.app.test_account import change_password

pytestmark = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True
)

WRONG = "not the password!"
ANNS_ADDRESS = "192.0.2.10"
ATTACKERS_ADDRESS = "203.0.113.66"
LOAD_BALANCER = "10.0.1.23"


class Clock:
    """The throttle's clock, in whole seconds as MariaDB's DATETIME keeps them."""

    def __init__(self) -> None:
        self.time = datetime(2030, 1, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.time

    def advance(self, seconds: int) -> None:
        self.time += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle, "now", clock)
    return clock


def browser(app: Flask, address: str, forwarded_for: str | None = None) -> AuthActions:
    """A new browser (no cookies) whose requests come from `address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return AuthActions(client)


@pytest.fixture
def ann(app: Flask, clock: Clock) -> AuthActions:
    """Ann's own browser at her own address: she signed up there, then logged out."""
    actions = browser(app, ANNS_ADDRESS)
    assert actions.signup().status_code == 302
    actions.logout()
    return actions


def free_failures(app: Flask) -> int:
    return int(app.config["LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_CLIENT"])


def use_free_failures(app: Flask, actions: AuthActions) -> None:
    for _ in range(free_failures(app)):
        assert actions.login(password=WRONG).status_code == 200


def waits(answer: TestResponse) -> int:
    assert answer.status_code == 429, answer.status_code
    return int(answer.headers["Retry-After"])


def rows(app: Flask, model: type[Any]) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_owner_logs_in_while_an_attacker_elsewhere_is_throttled(
    app: Flask, ann: AuthActions
) -> None:
    attacker = browser(app, ATTACKERS_ADDRESS)
    use_free_failures(app, attacker)
    assert waits(attacker.login(password=WRONG)) == 1
    assert waits(attacker.login()) == 1, "the attacker waits even with the right password"
    assert ann.login().status_code == 302, "Ann's browser at her address is not slowed"
    assert browser(app, ANNS_ADDRESS).login().status_code == 302, "nor a new one there"


def test_throttle_window_expiry_delays_grow_then_the_right_password_works(
    app: Flask, ann: AuthActions, clock: Clock
) -> None:
    use_free_failures(app, ann)
    seen = []
    for _ in range(3):
        seen.append(waits(ann.login()))
        clock.advance(seen[-1])
        assert ann.login(password=WRONG).status_code == 200
    assert seen == [1, 2, 4], "each failure doubles the wait"
    refused = ann.login()
    assert waits(refused) == 8
    assert "Too many failed attempts. Try again in 8 seconds." in refused.get_data(as_text=True)
    clock.advance(7)
    assert waits(ann.login()) == 1, "the wait runs from the latest failure"
    clock.advance(1)
    assert ann.login().status_code == 302


def test_delays_stop_growing_at_the_longest_delay(
    app: Flask, ann: AuthActions, clock: Clock
) -> None:
    app.config["LOGIN_MAX_DELAY_SECONDS"] = 240
    use_free_failures(app, ann)
    for expected in (1, 2, 4, 8, 16, 32, 64, 128, 240, 240):
        assert waits(ann.login(password=WRONG)) == expected
        clock.advance(expected)
        assert ann.login(password=WRONG).status_code == 200
    refused = ann.login()
    assert waits(refused) == 240
    assert "Try again in 4 minutes." in refused.get_data(as_text=True)


def test_failures_stop_counting_and_are_deleted_after_the_window(
    app: Flask, ann: AuthActions, clock: Clock
) -> None:
    use_free_failures(app, ann)
    clock.advance(app.config["LOGIN_FAILURE_WINDOW_SECONDS"] + 1)
    assert ann.login(password=WRONG).status_code == 200, "old failures no longer count"
    assert ann.login(password=WRONG).status_code == 200
    assert rows(app, LoginFailure) == 6, "only the two new failures' rows are left"


def test_distributed_attack_slows_new_browsers_but_not_the_owners(
    app: Flask, ann: AuthActions
) -> None:
    app.config["LOGIN_FREE_FAILURES_PER_ACCOUNT"] = 3
    for number in range(3):
        assert browser(app, f"203.0.113.{number}").login(password=WRONG).status_code == 200
    newcomer = browser(app, "203.0.113.99")
    assert waits(newcomer.login()) == 1, "a browser never logged in to Ann's account waits"
    newcomer.client.set_cookie(throttle.DEVICE_COOKIE, "forged")
    assert waits(newcomer.login()) == 1, "a forged device cookie changes nothing"
    mallory = browser(app, "203.0.113.50")
    assert mallory.signup("mallory@example.com", first_name="Mallory").status_code == 302
    mallory.logout()
    assert waits(mallory.login()) == 1, "a device cookie of another account changes nothing"
    assert ann.login().status_code == 302, "Ann's own browser is never slowed by others"


def test_change_password_is_throttled_without_checking_the_password(
    app: Flask, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = browser(app, ANNS_ADDRESS)
    ann.signup()
    for _ in range(free_failures(app)):
        answer = change_password(ann, current=WRONG)
        assert "That is not your current password." in answer.get_data(as_text=True)
    checked: list[str] = []
    real_check = passwords.check_password_hash
    monkeypatch.setattr(
        passwords,
        "check_password_hash",
        lambda stored, given: checked.append(given) or real_check(stored, given),
    )
    assert waits(change_password(ann)) == 1
    assert checked == [], "a throttled attempt never checks the password"
    ann.logout()
    clock.advance(1)
    assert ann.login(password=PASSWORD).status_code == 302, "the password is unchanged"


def test_delete_account_is_throttled_and_a_throttled_delete_deletes_nothing(
    app: Flask, clock: Clock
) -> None:
    ann = browser(app, ANNS_ADDRESS)
    ann.signup()
    ann.add_note("keep me")
    for _ in range(free_failures(app)):
        answer = ann.post("/account/delete", {"account_password": WRONG}, token_from="/account/")
        assert "That is not your password." in answer.get_data(as_text=True)
    refused = ann.post("/account/delete", {"account_password": PASSWORD}, token_from="/account/")
    assert waits(refused) == 1
    assert (rows(app, User), rows(app, Note)) == (1, 1), "nothing deleted"
    clock.advance(1)
    done = ann.post("/account/delete", {"account_password": PASSWORD}, token_from="/account/")
    assert done.headers["Location"] == "/auth/signup"
    assert rows(app, User) == 0


def test_signups_are_limited_per_client_address(app: Flask, clock: Clock) -> None:
    app.config["SIGNUPS_PER_CLIENT_PER_HOUR"] = 3
    here = "198.51.100.20"
    assert browser(app, here).signup("a@example.com").status_code == 302
    taken = browser(app, here).signup("a@example.com")
    assert "already exists" in taken.get_data(as_text=True), "a refused sign-up counts too"
    assert browser(app, here).signup("b@example.com").status_code == 302
    refused = browser(app, here).signup("c@example.com")
    assert waits(refused) == 3600
    page = refused.get_data(as_text=True)
    assert "Too many sign-ups from this address. Try again in 1 hour." in page
    assert browser(app, "198.51.100.21").signup("c@example.com").status_code == 302
    clock.advance(600)
    assert waits(browser(app, here).signup("d@example.com")) == 3000
    clock.advance(3000)
    assert browser(app, here).signup("d@example.com").status_code == 302
    assert rows(app, User) == 4


@pytest.fixture
def behind_load_balancer(app: Flask) -> Iterator[Flask]:
    """The app on the same database as the deployer runs it behind the load balancer
    (PROXY_FIX_X_FOR=1): the client's address is the last X-Forwarded-For hop."""
    config = {**base_config(app.config["SQLALCHEMY_DATABASE_URI"]), "PROXY_FIX_X_FOR": 1}
    proxied = create_app(config)
    yield proxied
    with proxied.app_context():
        db.engine.dispose()


@pytest.mark.usefixtures("ann")
def test_clients_behind_the_load_balancer_are_throttled_apart(
    behind_load_balancer: Flask,
) -> None:
    first = browser(behind_load_balancer, LOAD_BALANCER, forwarded_for="198.51.100.1")
    second = browser(behind_load_balancer, LOAD_BALANCER, forwarded_for="198.51.100.2")
    use_free_failures(behind_load_balancer, first)
    assert waits(first.login()) == 1
    assert second.login(password=WRONG).status_code == 200, "another client is not throttled"
    assert second.login().status_code == 302


@pytest.mark.usefixtures("ann")
def test_a_forged_forwarded_hop_does_not_escape_the_throttle(behind_load_balancer: Flask) -> None:
    attacker = browser(behind_load_balancer, LOAD_BALANCER, forwarded_for="forged, 203.0.113.5")
    use_free_failures(behind_load_balancer, attacker)
    for forged in ("forged-again", "198.51.100.1", "203.0.113.6"):
        attacker.client.environ_base["HTTP_X_FORWARDED_FOR"] = f"{forged}, 203.0.113.5"
        assert waits(attacker.login()) == 1, forged
