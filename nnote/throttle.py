"""Throttling of password guesses and sign-ups: growing delays, never a lockout.

Every password check (logging in, and the account page's change password and delete account)
is counted under three keys. Each key allows some free failures; after them a client waits
1 s after the key's latest failure, then 2 s, 4 s ... at most LOGIN_MAX_DELAY_SECONDS:

- the account and the client address together (LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_CLIENT):
  the owner's typing errors, or one attacker at one account. An attacker at another address
  has a count of their own, so never slows the owner. A right password clears it.
- the client address, whatever the account (LOGIN_FREE_FAILURES_PER_CLIENT): one address
  trying many accounts. A right password does not clear it, or an attacker could log in to
  an account of their own between guesses.
- the account, whatever the address (LOGIN_FREE_FAILURES_PER_ACCOUNT): a distributed attack,
  many addresses at one account (ASVS V2.2.1 wants at most 100 guesses an hour at an account).
  It slows only the browsers that have never logged in to the account: a signed cookie
  (OWASP's "device cookie") marks those that have, so the owner's own browsers pass.

A throttled request is refused before its password is checked and is not counted: it
learns nothing, costs one query and writes nothing. Sign-ups are counted per address and
allowed SIGNUPS_PER_CLIENT_PER_HOUR. Counts live in the database (`login_failure`) so every
gunicorn worker and every ECS task counts together; each write deletes the rows too old to
count, so the table holds at most a window's worth.

The check and the count are not one transaction: requests arriving together (at most as many
as there are workers) may all pass one wait.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, select
from werkzeug.exceptions import TooManyRequests

from nnote.models import LoginFailure, db, utcnow

DEVICE_COOKIE = "known_device"
DEVICE_COOKIE_SECONDS = 365 * 24 * 3600  # as long as a remember-me cookie
DEVICES_REMEMBERED = 5  # accounts one browser is known for; the oldest login is dropped
SIGNUP_WINDOW = timedelta(hours=1)
MAX_DOUBLINGS = 40  # beyond any cap: the delay never becomes a huge integer


def now() -> datetime:
    """The throttle's clock, naive UTC as the table stores it (tests replace it)."""
    return utcnow()


def _address(address: str | None) -> str:
    return (address or "unknown")[:64]


def _digest(text: str) -> str:
    # A digest, so the table never holds an address someone merely typed.
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _pair_key(email: str, address: str | None) -> str:
    return "pair:" + _digest(f"{email}\n{_address(address)}")


def _client_key(address: str | None) -> str:
    return "client:" + _address(address)


def _account_key(email: str) -> str:
    return "account:" + _digest(email)


def _signup_key(address: str | None) -> str:
    return "signup:" + _address(address)


def check_password_guess(email: str, address: str | None, device_cookie: str | None) -> None:
    """Refuse (429, saying how long to wait) a password check this client must wait for."""
    wait = max(_waits(_free_failures(email, address, device_cookie)), default=0)
    if wait:
        raise TooManyRequests("Too many failed attempts.", retry_after=wait)


def record_password_failure(email: str, address: str | None) -> None:
    at = now()
    for key in (_pair_key(email, address), _client_key(address), _account_key(email)):
        db.session.add(LoginFailure(key=key, at=at))
    _forget_old_rows()
    db.session.commit()


def clear_password_failures(email: str, address: str | None) -> None:
    """A right password: this client's earlier failures at this account no longer count."""
    db.session.execute(delete(LoginFailure).where(LoginFailure.key == _pair_key(email, address)))
    db.session.commit()


def _free_failures(email: str, address: str | None, device_cookie: str | None) -> dict[str, int]:
    """Each key a guess is counted under, with the failures it allows before delays."""
    config = current_app.config
    free = {
        _pair_key(email, address): config["LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_CLIENT"],
        _client_key(address): config["LOGIN_FREE_FAILURES_PER_CLIENT"],
    }
    if not is_known_device(email, device_cookie):
        free[_account_key(email)] = config["LOGIN_FREE_FAILURES_PER_ACCOUNT"]
    return free


def _waits(free: dict[str, int]) -> list[int]:
    """Seconds still to wait under each key, from one query over the window."""
    window_start = now() - timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"])
    query = (
        select(LoginFailure.key, func.count(), func.max(LoginFailure.at))
        .where(LoginFailure.key.in_(free), LoginFailure.at >= window_start)
        .group_by(LoginFailure.key)
    )
    rows = db.session.execute(query).all()
    return [
        _seconds_until(latest + timedelta(seconds=delay(n, free[key]))) for key, n, latest in rows
    ]


def delay(failures: int, free: int) -> int:
    """Seconds to wait after the latest of `failures`: none while they are `free`, then
    1, 2, 4 ... up to LOGIN_MAX_DELAY_SECONDS."""
    if failures < free:
        return 0
    doubling = 2 ** min(failures - free, MAX_DOUBLINGS)
    return min(doubling, current_app.config["LOGIN_MAX_DELAY_SECONDS"])


def _seconds_until(moment: datetime) -> int:
    return max(0, math.ceil((moment - now()).total_seconds()))


def admit_signup(address: str | None) -> None:
    """Count a sign-up from `address`, or refuse it (429) when the last hour's are used up."""
    recent = now() - SIGNUP_WINDOW
    query = select(func.count(), func.min(LoginFailure.at)).where(
        LoginFailure.key == _signup_key(address), LoginFailure.at > recent
    )
    count, oldest = db.session.execute(query).one()
    if count >= current_app.config["SIGNUPS_PER_CLIENT_PER_HOUR"]:
        wait = _seconds_until((oldest or now()) + SIGNUP_WINDOW)
        raise TooManyRequests("Too many sign-ups from this address.", retry_after=max(wait, 1))
    db.session.add(LoginFailure(key=_signup_key(address), at=now()))
    _forget_old_rows()
    db.session.commit()


def _forget_old_rows() -> None:
    kept = max(timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"]), SIGNUP_WINDOW)
    db.session.execute(delete(LoginFailure).where(LoginFailure.at < now() - kept))


def is_known_device(email: str, device_cookie: str | None) -> bool:
    """Whether this browser has logged in to `email`'s account before (its signed cookie)."""
    return _device_id(email) in _known_accounts(device_cookie)


def device_cookie_after_login(email: str, device_cookie: str | None) -> str:
    """The browser's cookie value once it has logged in to `email`'s account."""
    others = [known for known in _known_accounts(device_cookie) if known != _device_id(email)]
    return _devices().dumps([_device_id(email), *others][:DEVICES_REMEMBERED])


def _device_id(email: str) -> str:
    return _digest(email)[:16]  # signed, and told apart among a few: short keeps the cookie small


def _known_accounts(device_cookie: str | None) -> list[str]:
    if not device_cookie:
        return []
    try:
        known = _devices().loads(device_cookie)
    except BadSignature:
        return []
    return [item for item in known if isinstance(item, str)] if isinstance(known, list) else []


def _devices() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="nnote.known-device")
