"""Login throttling: too many recent failures for one account or one client give a 429.

Failures live in the database so every gunicorn worker and every ECS task counts together.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from nnote.models import LoginFailure, db, utcnow


def _account_key(email: str) -> str:
    # A digest, so the table never holds an address someone merely typed.
    return "account:" + hashlib.sha256(email.encode()).hexdigest()[:40]


def _client_key(address: str | None) -> str:
    return "client:" + (address or "unknown")[:64]


def _window_start() -> datetime:
    return utcnow() - timedelta(seconds=current_app.config["LOGIN_THROTTLE_SECONDS"])


def _recent_failures(key: str) -> int:
    query = select(func.count()).where(LoginFailure.key == key, LoginFailure.at >= _window_start())
    return int(db.session.scalar(query) or 0)


def is_throttled(email: str, address: str | None) -> bool:
    config = current_app.config
    return (
        _recent_failures(_account_key(email)) >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
        or _recent_failures(_client_key(address)) >= config["LOGIN_MAX_FAILURES_PER_CLIENT"]
    )


def record_failure(email: str, address: str | None) -> None:
    db.session.add(LoginFailure(key=_account_key(email)))
    db.session.add(LoginFailure(key=_client_key(address)))
    db.session.execute(delete(LoginFailure).where(LoginFailure.at < _window_start()))
    db.session.commit()


def clear_account(email: str) -> None:
    db.session.execute(delete(LoginFailure).where(LoginFailure.key == _account_key(email)))
    db.session.commit()


def retry_after_seconds() -> int:
    return int(current_app.config["LOGIN_THROTTLE_SECONDS"])
