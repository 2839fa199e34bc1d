"""A database outage under load, on the real stack: gunicorn and MariaDB stopped mid-run.

/readyz goes 503 then 200 without restarting a worker; pages during the outage are the 503
page, never a 500; and every note whose add was answered with success is in the database.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import csrf_token_in
from tests.reporting import report
from tests.support.mariadb import MariaDB
from tests.support.server import Gunicorn

USERS = 4


def signed_up(url: str, n: int) -> requests.Session:
    session = requests.Session()
    token = csrf_token_in(session.get(f"{url}/auth/signup", timeout=10).text)
    answer = session.post(
        f"{url}/auth/signup",
        data={
            "csrf_token": token,
            "email": f"load{n}@example.com",
            "first_name": f"Load {n}",
            "password": "outage-password-1",
            "confirm": "outage-password-1",
        },
        timeout=10,
    )
    assert answer.ok and "Log out" in answer.text, answer.text[:500]
    return session


class Writer(threading.Thread):
    """Adds notes as fast as it can; remembers which adds were answered with success."""

    def __init__(self, url: str, session: requests.Session, n: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.session, self.n, self.stop = url, session, n, stop
        self.token = csrf_token_in(session.get(f"{url}/", timeout=10).text)
        self.confirmed: list[str] = []
        self.statuses: dict[int, int] = {}

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            body = f"outage note {self.n}-{i}"
            try:
                answer = self.session.post(
                    f"{self.url}/notes",
                    data={"csrf_token": self.token, "body": body},
                    allow_redirects=False,
                    timeout=10,
                )
            except requests.RequestException:
                self.statuses[0] = self.statuses.get(0, 0) + 1
                continue
            self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 302:
                self.confirmed.append(body)
            else:
                time.sleep(0.05)


def worker_pids(gunicorn: Gunicorn) -> set[int]:
    assert gunicorn.process is not None
    children = Path(f"/proc/{gunicorn.process.pid}/task/{gunicorn.process.pid}/children")
    return {int(pid) for pid in children.read_text().split()}


@pytest.mark.mariadb
def test_outage_under_load_loses_no_confirmed_note(mariadb: MariaDB, tmp_path: Path) -> None:
    mariadb.create_database("nnote_outage", "nnote", "nnote-test-pw")
    gunicorn = Gunicorn(mariadb.url("nnote_outage", "nnote", "nnote-test-pw"))
    gunicorn.start(tmp_path / "gunicorn.log")
    try:
        url = gunicorn.url
        pids = worker_pids(gunicorn)
        stop = threading.Event()
        writers = [Writer(url, signed_up(url, n), n, stop) for n in range(USERS)]
        ready: list[int] = []
        for writer in writers:
            writer.start()
        time.sleep(1.5)
        ready.append(requests.get(f"{url}/readyz", timeout=10).status_code)
        mariadb.pause()
        time.sleep(1.0)
        ready.append(requests.get(f"{url}/readyz", timeout=10).status_code)
        outage_page = writers[0].session.get(f"{url}/", timeout=10)
        time.sleep(1.5)
        mariadb.resume()
        deadline = time.monotonic() + 20
        while requests.get(f"{url}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "never ready again"
            time.sleep(0.2)
        ready.append(200)
        time.sleep(1.5)
        stop.set()
        for writer in writers:
            writer.join(timeout=30)
        statuses: dict[int, int] = {}
        for writer in writers:
            for code, count in writer.statuses.items():
                statuses[code] = statuses.get(code, 0) + count
        confirmed = [body for writer in writers for body in writer.confirmed]
        with mariadb.admin() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT body FROM nnote_outage.note")
            stored = {row[0] for row in cursor.fetchall()}
        assert ready == [200, 503, 200]
        assert worker_pids(gunicorn) == pids, "no worker was restarted"
        assert set(confirmed) <= stored, f"lost: {sorted(set(confirmed) - stored)[:5]}"
        assert 500 not in statuses, statuses
        assert statuses.get(503, 0) > 0 and statuses.get(302, 0) > 0, statuses
        assert outage_page.status_code == 503 and "Temporarily unavailable" in outage_page.text
        report(
            "database outage under load (MariaDB stopped ~3 s, 4 writers, 2 workers)",
            f"answers by status: {dict(sorted(statuses.items()))}; "
            f"confirmed adds {len(confirmed)}, all {len(set(confirmed) & stored)} in the "
            f"database; /readyz {ready}; workers restarted: 0",
        )
    finally:
        gunicorn.stop()
        mariadb.drop_database("nnote_outage")
