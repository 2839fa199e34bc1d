"""Fixtures shared by every test package: the real MariaDB server and page helpers."""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mariadb import MariaDB

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CSRF_FIELD = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


def pytest_configure() -> None:
    """Give Ctrl-C its default meaning even when the suite was started with SIGINT ignored.

    A shell without job control starts `cmd &` with SIGINT ignored, and Python then installs
    no KeyboardInterrupt handler; the ignore is also inherited by every CLI process the tests
    start. The interruption tests send SIGINT and would see it do nothing. The CLI itself
    rightly keeps an ignore it inherits (that is what the user asked for)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def csrf_token_in(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """One real MariaDB server for the whole run; each test gets its own database."""
    # Not under pytest's tmp dir: that is private to root and the server runs as mysql.
    folder = Path(tempfile.mkdtemp(prefix="nnote-mariadb-"))
    folder.chmod(0o755)
    server = MariaDB(folder / "data")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.reporting import REPORTS

    for title, text in REPORTS:
        terminalreporter.section(title)
        terminalreporter.write_line(text)
