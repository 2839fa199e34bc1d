"""Configuration from the environment: secret key rules and database settings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from nnote import create_app, settings


def test_production_refuses_to_start_without_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNOTE_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(settings.ConfigurationError, match="SECRET_KEY is not set"):
        create_app()


def test_production_takes_secret_key_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NNOTE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite")
    assert create_app().config["SECRET_KEY"] == "from-the-environment"


def test_development_makes_a_key_keeps_it_and_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("NNOTE_ENV", raising=False)
    with caplog.at_level(logging.WARNING):
        first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert len(first) >= 32 and first == second, "every worker and restart shares the key"
    assert "SECRET_KEY is not set" in caplog.text
    assert first not in caplog.text
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0, "only the owner reads it"


def test_db_variables_make_a_mysql_url() -> None:
    url = settings.database_url_from(
        {
            "DB_HOST": "db.internal",
            "DB_PORT": "3307",
            "DB_NAME": "nnote",
            "DB_USERNAME": "admin",
            "DB_PASSWORD": "p@ss:w/rd%?",
        }
    )
    assert url is not None
    parsed = make_url(url)
    assert (parsed.drivername, parsed.host, parsed.port, parsed.database) == (
        "mysql+pymysql",
        "db.internal",
        3307,
        "nnote",
    )
    assert parsed.password == "p@ss:w/rd%?", "any character RDS generates survives"
    assert "p@ss" not in repr(parsed), "the password is masked when shown"


def test_db_port_defaults_to_3306() -> None:
    url = settings.database_url_from(
        {"DB_HOST": "h", "DB_NAME": "n", "DB_USERNAME": "u", "DB_PASSWORD": "p"}
    )
    assert make_url(url).port == 3306  # type: ignore[arg-type]


def test_incomplete_db_variables_name_what_is_missing() -> None:
    with pytest.raises(settings.ConfigurationError, match="set DB_USERNAME, DB_PASSWORD"):
        settings.database_url_from({"DB_HOST": "h", "DB_NAME": "n"})


def test_database_url_wins_and_sqlite_is_the_default(tmp_path: Path) -> None:
    assert settings.database_url_from({}) is None
    assert str(settings.database_url_from({"DATABASE_URL": "sqlite:///x.db"})) == "sqlite:///x.db"
    assert settings.defaults(str(tmp_path))["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")


def test_mysql_engine_is_tuned_for_rds() -> None:
    from nnote.models import engine_options

    options = engine_options("mysql+pymysql://u:p@h/n")
    assert options["pool_pre_ping"] is True
    assert options["pool_recycle"] < 3600
    assert options["connect_args"]["connect_timeout"] <= 10


def test_throttle_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_CLIENT": "3",
        "LOGIN_FREE_FAILURES_PER_CLIENT": "30",
        "LOGIN_FREE_FAILURES_PER_ACCOUNT": "60",
        "LOGIN_MAX_DELAY_SECONDS": "600",
        "LOGIN_FAILURE_WINDOW_SECONDS": "7200",
        "SIGNUPS_PER_CLIENT_PER_HOUR": "5",
    }
    config = settings.from_environment(env, str(tmp_path))
    assert {name: config[name] for name in env} == {name: int(env[name]) for name in env}
    assert set(env) <= set(settings.defaults(str(tmp_path))), "each has a default"
