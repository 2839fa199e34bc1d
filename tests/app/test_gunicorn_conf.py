"""The committed gunicorn settings follow the environment the container gets."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, object]:
    for name in ("PORT", "HOST", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_gunicorn_binds_port_and_workers_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, PORT="6123", WEB_CONCURRENCY="3")
    assert conf["bind"] == "0.0.0.0:6123"
    assert conf["workers"] == 3


def test_gunicorn_defaults_are_sane(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    assert conf["bind"] == "0.0.0.0:5000"
    assert 2 <= int(conf["workers"]) <= 8  # type: ignore[call-overload]
    assert conf["accesslog"] == "-", "access log to stdout"
    assert int(conf["graceful_timeout"]) < 30, "finishes before ECS's SIGKILL"  # type: ignore[call-overload]
    assert conf["wsgi_app"] == "nnote.wsgi:app"
