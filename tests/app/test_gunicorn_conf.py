"""The committed gunicorn settings follow the environment the container gets."""

from __future__ import annotations

import re
import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from gunicorn.config import Config
from gunicorn.glogging import Logger

from deployer.config import RolloutSettings
from tests.support.server import Gunicorn

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
    stop_timeout = RolloutSettings().stop_timeout_seconds  # type: ignore[call-arg]
    assert int(conf["graceful_timeout"]) < stop_timeout, "finishes before ECS's SIGKILL"  # type: ignore[call-overload]
    assert conf["wsgi_app"] == "nnote.wsgi:app"


def _request(status: str = "404 NOT FOUND", sent: int | None = 207) -> tuple[Any, ...]:
    response = SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "text/html")])
    request = SimpleNamespace(headers=[("USER-AGENT", "curl/8"), ("HOST", "example")])
    environ = {
        "REMOTE_ADDR": "10.0.0.7",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/notes/7/edit?x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/notes/7/edit",
        "HTTP_USER_AGENT": "curl/8",
    }
    return response, request, environ, timedelta(seconds=1, microseconds=234_567)


def _access_line(
    logger_class: type[Logger], access_log_format: str, request: tuple[Any, ...]
) -> str:
    config = Config()
    config.set("access_log_format", access_log_format)
    logger = logger_class(config)
    return access_log_format % logger.atoms_wrapper_class(logger.atoms(*request))


@pytest.mark.parametrize("sent", [207, 0, None])
def test_access_line_is_gunicorns_own(monkeypatch: pytest.MonkeyPatch, sent: int | None) -> None:
    """The lighter access logger prints exactly the line gunicorn's logger prints."""
    conf = load(monkeypatch)
    request = _request(sent=sent)
    ours = _access_line(conf["logger_class"], conf["access_log_format"], request)  # type: ignore[arg-type]
    assert ours == _access_line(Logger, conf["access_log_format"], request)  # type: ignore[arg-type]
    assert ours.startswith('10.0.0.7 "GET /notes/7/edit?x=1 HTTP/1.1" 404 ')
    assert ours.endswith(" 1234ms")


def test_another_access_log_format_gets_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch)
    line = _access_line(conf["logger_class"], "%(a)s %({host}i)s %(U)s", _request())  # type: ignore[arg-type]
    assert line == "curl/8 example /notes/7/edit"


def test_served_requests_are_logged_to_stdout(tmp_path: Path) -> None:
    server = Gunicorn(f"sqlite:///{tmp_path / 'nnote.sqlite'}", workers=1)
    log = tmp_path / "gunicorn.log"
    server.start(log)
    try:
        assert requests.get(f"{server.url}/healthz?probe=1", timeout=5).status_code == 200
        assert requests.get(f"{server.url}/no-such-page", timeout=5).status_code == 404
    finally:
        assert server.stop() == 0, "SIGTERM ends gunicorn cleanly"
    lines = log.read_text().splitlines()
    assert any(
        re.fullmatch(r'127\.0\.0\.1 "GET /healthz\?probe=1 HTTP/1\.1" 200 \d+ \d+ms', line)
        for line in lines
    )
    assert any(
        re.fullmatch(r'127\.0\.0\.1 "GET /no-such-page HTTP/1\.1" 404 \d+ \d+ms', line)
        for line in lines
    )
