"""scripts/smoke-check against a real gunicorn: it passes on a working app, over HTTP and HTTPS,
and fails in one line naming the step against a broken one or a port where nothing listens."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.server import ROOT, Gunicorn

SCRIPT = ROOT / "scripts" / "smoke-check"
STEPS = ["healthz", "readyz", "signup", "login", "add-note", "list-notes", "logout"]
STEP_LINE = re.compile(r"(?P<step>[a-z-]+) +\d+ ms(?:  (?P<detail>.*))?")


def smoke_check(
    *args: str, stdlib_only: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the script as CI does, through its shebang; `stdlib_only` hides site-packages."""
    command = [sys.executable, "-I", "-S", str(SCRIPT)] if stdlib_only else [str(SCRIPT)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )


def step_details(output: str) -> dict[str, str]:
    """{step: detail} from the step lines of a run (all but the closing `passed` line)."""
    lines = [line for line in output.splitlines() if not line.startswith("smoke-check passed")]
    matches = [STEP_LINE.fullmatch(line) for line in lines]
    assert all(matches), output
    return {m["step"]: m["detail"] or "" for m in matches if m}


def assert_failed_in_one_line(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [f"smoke-check: {message}"]
    assert "Traceback" not in done.stdout + done.stderr


def notes_of(database: Path, email: str) -> list[str]:
    query = 'SELECT body FROM note JOIN "user" ON "user".id = note.user_id WHERE email = ?'
    with closing(sqlite3.connect(database)) as db:
        return [body for (body,) in db.execute(query, (email,))]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    folder = tmp_path_factory.mktemp("smoke-server")
    gunicorn = Gunicorn(f"sqlite:///{folder / 'nnote.sqlite'}")
    gunicorn.start(folder / "gunicorn.log")
    yield gunicorn
    gunicorn.stop()


def test_smoke_check_passes_and_the_note_is_in_the_database(server: Gunicorn) -> None:
    done = smoke_check(server.url, stdlib_only=True)
    assert done.returncode == 0, done.stdout + done.stderr
    details = step_details(done.stdout)
    assert list(details) == STEPS
    assert done.stdout.splitlines()[-1].startswith("smoke-check passed: 7 steps in ")
    email, marker = details["signup"], details["add-note"]
    database = Path(server.database_url.removeprefix("sqlite:///"))
    assert notes_of(database, email) == [marker], "the note the page listed is really stored"


def test_smoke_check_passes_again_on_the_same_site(server: Gunicorn) -> None:
    """As after a redeploy: a fresh user and marker each run, so nothing collides."""
    first, second = smoke_check(server.url), smoke_check(server.url)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    before, after = step_details(first.stdout), step_details(second.stdout)
    assert before["signup"] != after["signup"] and before["add-note"] != after["add-note"]


@dataclass
class HttpsGunicorn(Gunicorn):
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    new_key = ["-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(["openssl", "req", *new_key, *subject, *files], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def https_server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[Gunicorn]:
    """gunicorn serving TLS itself, with session cookies marked Secure as behind HTTPS."""
    folder, (cert, key) = tmp_path_factory.mktemp("smoke-https"), certificate
    tls = {"GUNICORN_CMD_ARGS": f"--certfile={cert} --keyfile={key}", "SESSION_COOKIE_SECURE": "1"}
    gunicorn = HttpsGunicorn(f"sqlite:///{folder / 'nnote.sqlite'}", workers=1, env=tls)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # the fixture's own readiness probe
        gunicorn.start(folder / "gunicorn.log")
    yield gunicorn
    gunicorn.stop()


def test_smoke_check_passes_over_https_with_secure_cookies(
    https_server: Gunicorn, certificate: tuple[Path, Path]
) -> None:
    done = smoke_check(https_server.url, env={**os.environ, "SSL_CERT_FILE": str(certificate[0])})
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(step_details(done.stdout)) == STEPS


def test_smoke_check_checks_certificates_unless_insecure(https_server: Gunicorn) -> None:
    untrusting = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    done = smoke_check(https_server.url, env=untrusting)
    assert done.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in done.stderr, done.stderr
    assert done.stderr.startswith("smoke-check: healthz failed: ")
    assert smoke_check("--insecure", https_server.url, env=untrusting).returncode == 0


def test_smoke_check_names_the_step_when_adding_a_note_fails(tmp_path: Path) -> None:
    database = tmp_path / "nnote.sqlite"
    gunicorn = Gunicorn(f"sqlite:///{database}", workers=1)
    gunicorn.start(tmp_path / "gunicorn.log")
    try:
        with closing(sqlite3.connect(database)) as db:
            db.execute(
                "CREATE TRIGGER broken BEFORE INSERT ON note BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
            db.commit()
        done = smoke_check(gunicorn.url)
    finally:
        gunicorn.stop()
    assert_failed_in_one_line(done, f"add-note failed: HTTP 500 from {gunicorn.url}/notes")
    assert list(step_details(done.stdout)) == ["healthz", "readyz", "signup", "login"]


class HealthOnly(BaseHTTPRequestHandler):
    """Health checks answer 200, every other page the server's `status`: no nnote behind."""

    def do_GET(self) -> None:
        healthy = self.path in ("/healthz", "/readyz")
        self.send_response(200 if healthy else self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def health_only_site(status: int, port: int = 0) -> Iterator[str]:
    site = ThreadingHTTPServer(("127.0.0.1", port), HealthOnly)
    site.status = status  # type: ignore[attr-defined]
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{site.server_port}"
    finally:
        site.shutdown()
        site.server_close()


@pytest.mark.parametrize("status", [404, 500])
def test_smoke_check_fails_where_health_answers_but_pages_do_not(status: int) -> None:
    with health_only_site(status) as url:
        done = smoke_check(url)
    assert_failed_in_one_line(done, f"signup failed: HTTP {status} from {url}/auth/signup")


def test_smoke_check_retries_then_fails_where_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = smoke_check("--retries", "2", "--retry-seconds", "0.1", url)
    assert_failed_in_one_line(
        done,
        f"healthz failed: {url}/healthz: [Errno 111] Connection refused"
        " (and 2 times before, 0.1 s apart)",
    )
    assert done.stdout == ""


def test_smoke_check_waits_for_a_site_that_comes_up_late() -> None:
    """As a fresh load balancer does: connections refused at first, then health answers."""
    port = free_port()
    check = subprocess.Popen(
        [SCRIPT, "--retries", "50", "--retry-seconds", "0.1", f"http://127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    with health_only_site(404, port):
        out, err = check.communicate(timeout=30)
    assert re.fullmatch(r"healthz +\d+ ms  answered on retry \d+", out.splitlines()[0]), out
    assert err.startswith("smoke-check: signup failed: HTTP 404"), err


def test_smoke_check_times_out_a_request_that_never_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        done = smoke_check("--timeout", "0.5", url)
    assert_failed_in_one_line(done, f"healthz failed: {url}/healthz: timed out")
