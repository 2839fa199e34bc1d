"""Configuration from the environment.

The container gets its database either as `DATABASE_URL` or as the `DB_*` variables that
nnote-deploy passes to the ECS task (`DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USERNAME`,
`DB_PASSWORD`). Nothing here logs a value: several of them are secrets.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy.engine import URL, make_url

PRODUCTION = "production"
SECRET_KEY_FILE = "secret_key"
MYSQL_DB_VARS = ("DB_HOST", "DB_NAME", "DB_USERNAME", "DB_PASSWORD")
INTEGER_SETTINGS = (
    "PROXY_FIX_X_FOR",
    "NOTES_PER_PAGE",
    "LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_CLIENT",
    "LOGIN_FREE_FAILURES_PER_CLIENT",
    "LOGIN_FREE_FAILURES_PER_ACCOUNT",
    "LOGIN_MAX_DELAY_SECONDS",
    "LOGIN_FAILURE_WINDOW_SECONDS",
    "SIGNUPS_PER_CLIENT_PER_HOUR",
)


class ConfigurationError(RuntimeError):
    """The environment cannot run the app; the message says which variable to set."""


def defaults(instance_path: str) -> dict[str, Any]:
    return {
        "NNOTE_ENV": "development",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{os.path.join(instance_path, 'nnote.sqlite')}",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": False,
        # Bodies larger than this get a 413 page before any view runs.
        "MAX_CONTENT_LENGTH": 256 * 1024,
        "MAX_FORM_MEMORY_SIZE": 256 * 1024,
        "NOTES_PER_PAGE": 20,
        "NOTE_MAX_LENGTH": 10_000,
        # Password guesses (nnote.throttle): failures allowed before growing delays, per
        # account and client address together, per address, and per account for browsers
        # that never logged in to it; the longest delay; how long a failure counts.
        "LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_CLIENT": 5,
        "LOGIN_FREE_FAILURES_PER_CLIENT": 20,
        "LOGIN_FREE_FAILURES_PER_ACCOUNT": 50,
        "LOGIN_MAX_DELAY_SECONDS": 15 * 60,
        "LOGIN_FAILURE_WINDOW_SECONDS": 24 * 3600,
        # Sign-ups (created or refused as taken) one address may try in an hour.
        "SIGNUPS_PER_CLIENT_PER_HOUR": 10,
        "PROXY_FIX_X_FOR": 0,
        "SEND_FILE_MAX_AGE_DEFAULT": 3600,
        "WTF_CSRF_TIME_LIMIT": None,
    }


def from_environment(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Read every setting the environment may override."""
    config: dict[str, Any] = {"NNOTE_ENV": env.get("NNOTE_ENV", "development")}
    if env.get("SECRET_KEY"):
        config["SECRET_KEY"] = env["SECRET_KEY"]
    database_url = database_url_from(env)
    if database_url is not None:
        config["SQLALCHEMY_DATABASE_URI"] = database_url
    secure = env.get("SESSION_COOKIE_SECURE", "").lower() in ("1", "true", "yes")
    config["SESSION_COOKIE_SECURE"] = config["REMEMBER_COOKIE_SECURE"] = secure
    for name in INTEGER_SETTINGS:
        if env.get(name):
            config[name] = int(env[name])
    return config


def database_url_from(env: Mapping[str, str]) -> str | URL | None:
    """`DATABASE_URL` wins; else a MySQL URL from the `DB_*` variables, if all are set."""
    if env.get("DATABASE_URL"):
        return make_url(env["DATABASE_URL"])
    present = [name for name in MYSQL_DB_VARS if env.get(name)]
    if not present:
        return None
    if len(present) != len(MYSQL_DB_VARS):
        missing = ", ".join(name for name in MYSQL_DB_VARS if name not in present)
        raise ConfigurationError(f"incomplete database settings: set {missing} as well")
    # URL.create quotes the password, which may hold any character RDS generates.
    return URL.create(
        "mysql+pymysql",
        username=env["DB_USERNAME"],
        password=env["DB_PASSWORD"],
        host=env["DB_HOST"],
        port=int(env.get("DB_PORT") or 3306),
        database=env["DB_NAME"],
        query={"charset": "utf8mb4"},
    )


def ensure_secret_key(app: Flask) -> None:
    """Refuse to run production without SECRET_KEY; in development make one and keep it.

    The development key is kept in the instance folder so every gunicorn worker (and the
    next start) signs sessions with the same key.
    """
    if app.config.get("SECRET_KEY"):
        return
    if app.config["NNOTE_ENV"] == PRODUCTION:
        raise ConfigurationError(
            "SECRET_KEY is not set; production mode refuses to start without it"
        )
    app.config["SECRET_KEY"] = _instance_secret_key(app.instance_path)
    app.logger.warning(
        "SECRET_KEY is not set: using a generated development key kept in the instance folder"
    )


def _instance_secret_key(instance_path: str) -> str:
    path = os.path.join(instance_path, SECRET_KEY_FILE)
    if not os.path.exists(path):
        # Written aside then linked into place: workers starting together all read one key.
        temporary = f"{path}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as new:
            new.write(secrets.token_hex(32))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    with open(path, encoding="ascii") as existing:
        return existing.read().strip()
