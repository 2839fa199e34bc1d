"""Load benchmark: gunicorn (2 workers) on SQLite, driven by wrk.

It measures GET / (home: its first page shows 20 notes) for a logged-in user with 200 notes
and for one with 5,000, POST /notes (add a note; the redirect is not followed) for a third
user, GET /auth/login and /auth/signup anonymously (no cookie: every request is a new
visitor), and the home page at 32 connections for its tail latency. The baseline, measured
in the same run, is a bare Flask "hello" (bench/hello.py) on a second gunicorn with the same
settings: the stack's ceiling (the ratio column is steadier than req/s on a shared machine).
It samples the resident memory of nnote's gunicorn master and workers. Runs are interleaved
across the cases; each figure is the median of --runs runs.

    uv run python bench/app_load.py [--runs 5] [--seconds 6]

Targets (2 cores): anonymous login and sign-up pages >= 0.75x hello; home (20 notes)
>= 0.5x hello; home at 32 connections p99 <= 3x its p50; home with 5,000 notes within 15% of
home with 200; add note >= 600 req/s; peak RSS of master + 2 workers < 150 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import csrf_token_in
from tests.support.net import free_port, wait_until
from tests.support.server import Gunicorn

WRK_THREADS = 2
WRK_CONNECTIONS = 16
TAIL_CONNECTIONS = 32
PSS_EVERY = 10  # of RssSampler's samples, every 50 ms
ROOT = Path(__file__).resolve().parent.parent
# One browser identity for sign-up and load, as a browser sends.
BROWSER = {"User-Agent": "nnote-bench/1 (wrk)"}


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


def wrk(
    url: str,
    seconds: int,
    headers: dict[str, str],
    script: Path | None = None,
    connections: int = WRK_CONNECTIONS,
) -> Result:
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
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
    """Peak resident memory of a process tree, sampled every 50 ms: RSS, which counts the
    pages the processes share (libraries, the interpreter) once per process, and PSS, which
    shares them out (what the tree costs the machine)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.peak_pss = 0
        self.samples = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
                self.samples += 1
                if self.samples % PSS_EVERY == 0:  # reading PSS costs ~40x RSS's
                    self.peak_pss = max(self.peak_pss, sum(p.memory_full_info().pss for p in tree))
            except psutil.Error:
                pass

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.join()


@dataclass
class BenchUser:
    """A signed-up user: the session cookie wrk sends and a CSRF token for its forms."""

    email: str
    cookie: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {**BROWSER, "Cookie": f"session={self.cookie}"}


def sign_up(url: str, email: str) -> BenchUser:
    session = requests.Session()
    session.headers.update(BROWSER)
    token = csrf_token_in(session.get(f"{url}/auth/signup").text)
    page = session.post(
        f"{url}/auth/signup",
        data={
            "csrf_token": token,
            "email": email,
            "first_name": "Bench",
            "password": "bench password",
            "confirm": "bench password",
        },
    )
    page.raise_for_status()
    cookie = session.cookies.get("session")
    if not cookie:
        raise RuntimeError(f"sign-up of {email} gave no session cookie")
    return BenchUser(email, cookie, csrf_token_in(page.text))


def fill_notes(database: Path, email: str, total: int) -> None:
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        user_id = connection.execute(
            text("SELECT id FROM user WHERE email = :e"), {"e": email}
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO note (user_id, body, created_at, updated_at) "
                "VALUES (:u, :b, datetime('now'), datetime('now'))"
            ),
            [
                {"u": user_id, "b": f"Benchmark note number {n} with some text to render."}
                for n in range(total)
            ],
        )
    engine.dispose()


def warm_up(url: str, user: BenchUser) -> None:
    """Rows inserted as above are what code from before migration 0004 writes: the home page
    renders and stores them (up to 200 a visit) before its first page can be kept. Done
    before measuring, so that every run measures the steady state a user's later visits see."""
    for _ in range(40):
        requests.get(f"{url}/", headers=user.headers, timeout=30).raise_for_status()


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


BASELINE = "Flask hello (baseline)"
HOME_200 = "GET / (20 shown of 200)"
HOME_5000 = "GET / (20 shown of 5,000)"
HOME_TAIL = f"GET / (200), {TAIL_CONNECTIONS} conns"
LOGIN = "GET /auth/login (anonymous)"
SIGNUP = "GET /auth/signup (anonymous)"


@contextmanager
def hello_server(folder: Path) -> Iterator[str]:
    """bench/hello.py under gunicorn with nnote's own settings file and worker count."""
    port = free_port()
    environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with (folder / "hello.log").open("wb") as log:
        process = subprocess.Popen(
            [gunicorn, "--config", "gunicorn.conf.py", "bench.hello:app"],
            env=environment,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(url, timeout=1).ok, 30, "hello gunicorn")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="nnote-bench-"))
    database = folder / "bench.sqlite"
    server = Gunicorn(f"sqlite:///{database}", workers=2)
    server.start(folder / "gunicorn.log")
    pid = server.process.pid  # type: ignore[union-attr]
    try:
        # Sign-up hashes a password with scrypt (32 MB for ~70 ms, by design): reported apart.
        with RssSampler(pid) as signup:
            # Three users, so the writer's new notes never change what the readers' pages hold.
            light, heavy, writer = (sign_up(server.url, f"{n}@example.com") for n in "lhw")
        fill_notes(database, light.email, 200)
        fill_notes(database, heavy.email, 5000)
        for reader in (light, heavy):
            warm_up(server.url, reader)
        with hello_server(folder) as hello:
            loads = cases(server.url, hello, args.seconds, folder, light, heavy, writer)
            samples, peaks, pss = interleaved(pid, loads, args.runs)
    finally:
        server.stop()
    medians = {name: median_result(runs) for name, runs in samples.items()}
    report(medians, peaks, pss, signup.peak, args)


def cases(
    url: str,
    hello: str,
    seconds: int,
    folder: Path,
    light: BenchUser,
    heavy: BenchUser,
    writer: BenchUser,
) -> dict[str, Callable[[], Result]]:
    post = post_script(folder, writer.token)
    return {
        BASELINE: lambda: wrk(f"{hello}/", seconds, BROWSER),
        # The app's cheapest answer (no database, no template).
        "GET /healthz": lambda: wrk(f"{url}/healthz", seconds, BROWSER),
        HOME_200: lambda: wrk(f"{url}/", seconds, light.headers),
        HOME_5000: lambda: wrk(f"{url}/", seconds, heavy.headers),
        HOME_TAIL: lambda: wrk(f"{url}/", seconds, light.headers, connections=TAIL_CONNECTIONS),
        "POST /notes": lambda: wrk(f"{url}/notes", seconds, writer.headers, post),
        LOGIN: lambda: wrk(f"{url}/auth/login", seconds, BROWSER),
        SIGNUP: lambda: wrk(f"{url}/auth/signup", seconds, BROWSER),
    }


def interleaved(
    pid: int, loads: dict[str, Callable[[], Result]], runs: int
) -> tuple[dict[str, list[Result]], dict[str, int], int]:
    """Each run loads every case once, every other run in reverse order, so a slow spell of
    a shared machine hits all cases alike instead of all runs of one case; returns each
    case's results, the peak RSS of the server's process tree (`pid`) in each, and the peak
    PSS of all."""
    samples: dict[str, list[Result]] = {name: [] for name in loads}
    peaks = dict.fromkeys(loads, 0)  # the hello server's figure is nnote's idle memory
    pss = 0
    for run in range(runs):
        order = list(loads.items())
        for name, load in order if run % 2 == 0 else reversed(order):
            with RssSampler(pid) as sampler:
                samples[name].append(load())
            peaks[name] = max(peaks[name], sampler.peak)
            pss = max(pss, sampler.peak_pss)
    return samples, peaks, pss


def report(
    figures: dict[str, Result],
    peaks: dict[str, int],
    pss: int,
    signup_rss: int,
    args: argparse.Namespace,
) -> None:
    print(
        f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.seconds}s, median of {args.runs}"
        " interleaved runs, gunicorn 2 workers, SQLite"
    )
    baseline = figures[BASELINE].requests_per_second
    print(
        f"{'endpoint':32} {'req/s':>9} {'of base':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'peak RSS MB':>12}"
    )
    for name, r in figures.items():
        print(
            f"{name:32} {r.requests_per_second:9.0f} {r.requests_per_second / baseline:8.2f}"
            f" {r.p50_ms:8.2f} {r.p99_ms:8.2f} {peaks[name] / 1e6:12.0f}"
        )
    small = figures[HOME_200].requests_per_second
    large = figures[HOME_5000].requests_per_second
    for name, target in ((LOGIN, 0.75), (SIGNUP, 0.75), (HOME_200, 0.5)):
        ratio = figures[name].requests_per_second / baseline
        print(f"{name}: {ratio:.2f}x hello (target >= {target})")
    tail = figures[HOME_TAIL]
    print(f"{HOME_TAIL}: p99 {tail.p99_ms / tail.p50_ms:.1f}x p50 (target <= 3)")
    print(f"home 5,000 / 200 notes throughput ratio: {large / small:.2f} (target >= 0.85)")
    print(f"home (200 notes): {small:.0f} req/s (target >= 1,500)")
    print(f"add note: {figures['POST /notes'].requests_per_second:.0f} req/s (target >= 600)")
    print(
        f"peak RSS master + workers under load: {max(peaks.values()) / 1e6:.0f} MB "
        "(target < 150 MB)"
    )
    print(f"peak PSS master + workers under load: {pss / 1e6:.0f} MB (shared pages shared out)")
    print(f"peak RSS during sign-up (one scrypt hash): {signup_rss / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
