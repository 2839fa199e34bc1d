"""Load benchmark: gunicorn (2 workers) on SQLite, driven by wrk.

For one logged-in user with 200 and with 5,000 notes it measures GET / (home), POST /notes
(add a note; the redirect is not followed) and GET /auth/login anonymously, and samples the
resident memory of the gunicorn master and workers. Each figure is the median of --runs runs.

    uv run python bench/app_load.py [--runs 3] [--seconds 8]

Targets (2 cores): home with 5,000 notes within 15% of home with 200; home >= 1,500 req/s;
add note >= 600 req/s; peak RSS of master + 2 workers < 150 MB.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import csrf_token_in
from tests.support.server import Gunicorn

WRK_THREADS = 2
WRK_CONNECTIONS = 16


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise RuntimeError(f"unexpected wrk latency {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, seconds: int, headers: dict[str, str], script: Path | None = None) -> Result:
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx or 3xx responses" in output:
        raise RuntimeError(f"wrk saw error responses:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99)


class RssSampler(threading.Thread):
    """Peak resident memory of a process tree, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass

    def stop(self) -> int:
        self.stopping.set()
        self.join()
        return self.peak


def log_in(url: str) -> tuple[str, str]:
    """Sign up the bench user; return the session cookie and a CSRF token."""
    session = requests.Session()
    token = csrf_token_in(session.get(f"{url}/auth/signup").text)
    page = session.post(
        f"{url}/auth/signup",
        data={
            "csrf_token": token,
            "email": "bench@example.com",
            "first_name": "Bench",
            "password": "bench password",
            "confirm": "bench password",
        },
    )
    return session.cookies["session"], csrf_token_in(page.text)


def fill_notes(database: Path, total: int) -> None:
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        user_id = connection.execute(text("SELECT id FROM user")).scalar_one()
        have = connection.execute(text("SELECT count(*) FROM note")).scalar_one()
        connection.execute(
            text(
                "INSERT INTO note (user_id, body, created_at, updated_at) "
                "VALUES (:u, :b, datetime('now'), datetime('now'))"
            ),
            [
                {"u": user_id, "b": f"Benchmark note number {n} with some text to render."}
                for n in range(have, total)
            ],
        )
    engine.dispose()


def post_script(folder: Path, token: str) -> Path:
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "csrf_token={token}&body=a+note+from+wrk"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
    )
    return script


def median_result(results: list[Result]) -> Result:
    return Result(
        statistics.median(r.requests_per_second for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="nnote-bench-"))
    database = folder / "bench.sqlite"
    server = Gunicorn(f"sqlite:///{database}", workers=2)
    server.start(folder / "gunicorn.log")
    setup_sampler = RssSampler(server.process.pid)  # type: ignore[union-attr]
    setup_sampler.start()
    cookie, token = log_in(server.url)
    # Sign-up hashes a password with scrypt (32 MB for ~70 ms, by design): reported apart.
    signup_peak = setup_sampler.stop()
    figures: dict[str, Result] = {}
    peaks: dict[str, int] = {}
    headers = {"Cookie": f"session={cookie}"}
    try:
        for notes in (200, 5000):
            fill_notes(database, notes)
            name = f"GET / ({notes:,} notes)"
            figures[name], peaks[name] = measured(
                server, lambda: wrk(f"{server.url}/", args.seconds, headers), args.runs
            )
        name = "POST /notes"
        script = post_script(folder, token)
        figures[name], peaks[name] = measured(
            server, lambda: wrk(f"{server.url}/notes", args.seconds, headers, script), args.runs
        )
        name = "GET /auth/login (anonymous)"
        figures[name], peaks[name] = measured(
            server, lambda: wrk(f"{server.url}/auth/login", args.seconds, {}), args.runs
        )
    finally:
        server.stop()
    report(figures, peaks, signup_peak, args)


def measured(server: Gunicorn, load: Callable[[], Result], runs: int) -> tuple[Result, int]:
    """The median of `runs` loads, and the peak RSS of the server's processes during them."""
    sampler = RssSampler(server.process.pid)  # type: ignore[union-attr]
    sampler.start()
    try:
        return median_result([load() for _ in range(runs)]), sampler.stop()
    except BaseException:
        sampler.stop()
        raise


def report(
    figures: dict[str, Result], peaks: dict[str, int], signup_rss: int, args: argparse.Namespace
) -> None:
    print(
        f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.seconds}s, median of {args.runs} runs,"
        " gunicorn 2 workers, SQLite"
    )
    print(f"{'endpoint':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>12}")
    for name, r in figures.items():
        print(
            f"{name:32} {r.requests_per_second:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f}"
            f" {peaks[name] / 1e6:12.0f}"
        )
    small = figures["GET / (200 notes)"].requests_per_second
    large = figures["GET / (5,000 notes)"].requests_per_second
    print(f"home 5,000 / 200 notes throughput ratio: {large / small:.2f} (target >= 0.85)")
    print(
        f"peak RSS master + workers under load: {max(peaks.values()) / 1e6:.0f} MB "
        "(target < 150 MB)"
    )
    print(f"peak RSS during sign-up (one scrypt hash): {signup_rss / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
