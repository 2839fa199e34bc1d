"""Image benchmark: the app image's size as a registry stores it, and its start time.

    uv run --frozen python bench/image_start.py [--runs 5] [--image TAG] [--layers 6]

The image is the checkout's Dockerfile built offline as tests/container builds it (the local
Debian base of scripts/build-base-image, wheels served on 127.0.0.1), or --image, an image
already built (kept). Nothing leaves 127.0.0.1.

Size: the image is pushed to a local registry on 127.0.0.1 (docker-registry, as the deployer's
tests run it); its compressed size is the sum of the manifest's layer sizes (the gzip blobs
ECR would store and a Fargate task pulls), beside the uncompressed size, the layer count, and
the largest layers with the Dockerfile line that made each (the image config's history).

Start: `docker start` of a created container until the first HTTP 200 on /readyz, polled every
20 ms on 127.0.0.1, on SQLite (no DB_HOST: a new, empty database, so the migrations run in
full), split by the container's log timestamps into the engine's part, boot (`nnote.boot`:
imports, settings, the database check), migrations (Alembic's first line to gunicorn's) and
gunicorn to the first 200. The baseline, measured in the same runs (interleaved, every other
run in reverse order): a container of the same base image running `python3 -m http.server`,
until its first 200, the floor a Python container start costs on this machine. Each figure
is the median of --runs runs. The engine here runs containers on the host network (no bridge,
see scripts/start-docker), so each container listens on a free port of 127.0.0.1 instead of a
published one.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError
from docker.models.images import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The image as the container tests build it, and the registry the deployer's tests push to.
from tests.support.images import build_offline_image, ensure_base_image  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.registry import LocalRegistry  # noqa: E402

TAG = "nnote:bench-image-start"
SECRET_KEY = "bench-image-start-secret-4b9e"
POLL_SECONDS = 0.02
START_TIMEOUT = 90.0
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)
# Log lines that open each phase: Alembic's first line (nnote.boot's migrate), then gunicorn's
# master after the entry point's exec.
MIGRATIONS = "[alembic.runtime.migration] Context impl"
GUNICORN = "Starting gunicorn"
WORKER = "Booting worker"
MB = 1e6


# ---- size ---------------------------------------------------------------------------------


@dataclass
class Layer:
    step: str  # the Dockerfile line (the image config's history) that made the layer
    size: int  # uncompressed (the engine's history)
    compressed: int  # the registry's gzip blob
    base: bool  # one of the base image's layers


@dataclass
class Sizes:
    uncompressed: int
    compressed: int
    base_compressed: int
    layers: list[Layer]


def dockerfile_line(created_by: str) -> str:
    """`/bin/sh -c #(nop) COPY dir:<sha> in /venv` as `COPY dir in /venv`, a RUN as `RUN ...`."""
    if not created_by:
        return "(imported root file system)"
    line = created_by.removeprefix("/bin/sh -c #(nop) ").strip()
    if created_by.startswith("/bin/sh -c ") and not created_by.startswith("/bin/sh -c #(nop)"):
        line = "RUN " + created_by.removeprefix("/bin/sh -c ").strip()
    line = re.sub(r"\b(dir|file):[0-9a-f]{64}", r"\1", line)
    return " ".join(line.split())


def registry_sizes(client: docker.DockerClient, image: Image, base: Image) -> Sizes:
    """Push `image` to a registry on 127.0.0.1 and read its manifest and config back."""
    folder = Path(tempfile.mkdtemp(prefix="nnote-bench-registry-"))
    registry = LocalRegistry(folder)
    repository = f"{registry.host}/nnote-bench"
    try:
        registry.start()
        image.tag(repository, "measure")
        for event in client.images.push(repository, tag="measure", stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(f"push to the local registry failed: {event['error']}")
        url = f"http://{registry.host}/v2/nnote-bench"
        manifest = requests.get(
            f"{url}/manifests/measure", headers={"Accept": MANIFEST_TYPES}, timeout=30
        ).json()
        config = requests.get(f"{url}/blobs/{manifest['config']['digest']}", timeout=30).json()
    finally:
        with suppress(APIError):  # not found, or still in use
            client.images.remove(f"{repository}:measure")
        registry.stop()
        shutil.rmtree(folder, ignore_errors=True)
    blobs = [int(layer["size"]) for layer in manifest["layers"]]
    # The engine's history (newest first) has one entry per config history entry, with sizes.
    engine_history = list(reversed(image.history()))
    steps = [
        (entry.get("created_by", ""), engine.get("Size", 0))
        for entry, engine in zip(config["history"], engine_history, strict=True)
        if not entry.get("empty_layer")
    ]
    if len(steps) != len(blobs):
        raise RuntimeError(f"{len(steps)} history layers for {len(blobs)} manifest layers")
    base_ids = base.attrs["RootFS"]["Layers"]
    base_count = (
        len(base_ids) if image.attrs["RootFS"]["Layers"][: len(base_ids)] == base_ids else 0
    )
    layers = [
        Layer(dockerfile_line(created_by), size, blob, index < base_count)
        for index, ((created_by, size), blob) in enumerate(zip(steps, blobs, strict=True))
    ]
    return Sizes(
        uncompressed=int(image.attrs["Size"]),
        compressed=sum(blobs),
        base_compressed=sum(layer.compressed for layer in layers if layer.base),
        layers=layers,
    )


# ---- start time ---------------------------------------------------------------------------


@dataclass
class Start:
    """One start, in seconds from the `docker start` call; None where no log line says."""

    total: float
    engine: float
    boot: float | None = None
    migrations: float | None = None
    gunicorn: float | None = None
    workers: int = 0


def epoch(stamp: str) -> float:
    """Docker's RFC 3339 time with nanoseconds (which datetime cannot hold) as epoch seconds."""
    found = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", stamp)
    if found is None:
        raise ValueError(f"unexpected Docker time {stamp!r}")
    whole = datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return whole.timestamp() + float(f"0.{found.group(2) or '0'}")


def first_ok(port: int, path: str, running: Callable[[], bool]) -> float:
    """Poll GET `path` on 127.0.0.1:`port` every 20 ms; the time of the first 200."""
    deadline = time.monotonic() + START_TIMEOUT
    next_poll = time.monotonic()
    attempt = 0
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return time.time()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        attempt += 1
        if attempt % 25 == 0 and not running():  # every 0.5 s: an exited container fails fast
            raise RuntimeError("the container exited before answering")
        next_poll += POLL_SECONDS
        time.sleep(max(0.0, next_poll - time.monotonic()))
    raise TimeoutError(f"no 200 on {path} after {START_TIMEOUT:.0f} s")


def start_once(
    client: docker.DockerClient, image: str, path: str, port: int, **options: Any
) -> tuple[float, float, list[tuple[float, str]]]:
    """Create a container, time `docker start` to the first 200; (start call, first 200,
    container process start) as epoch seconds and the log lines with their times."""
    container = client.containers.create(image, detach=True, network_mode="host", **options)
    try:
        called = time.time()
        container.start()

        def running() -> bool:
            container.reload()
            return bool(container.status == "running")

        try:
            answered = first_ok(port, path, running)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{image}: {error}\n{container.logs().decode()}") from error
        container.reload()
        started = epoch(container.attrs["State"]["StartedAt"])
        lines = []
        for line in container.logs(timestamps=True).decode().splitlines():
            stamp, _, text = line.partition(" ")
            lines.append((epoch(stamp), text))
        return answered - called, started - called, [(t - called, s) for t, s in lines]
    finally:
        container.remove(force=True)


def first_line(lines: list[tuple[float, str]], marker: str) -> float | None:
    return next((at for at, text in lines if marker in text), None)


def app_start(client: docker.DockerClient, image: str) -> Start:
    port = free_port()
    environment = {"HOST": "127.0.0.1", "PORT": str(port), "SECRET_KEY": SECRET_KEY}
    total, engine, lines = start_once(client, image, "/readyz", port, environment=environment)
    migrations = first_line(lines, MIGRATIONS)
    gunicorn = first_line(lines, GUNICORN)
    return Start(
        total=total,
        engine=engine,
        boot=None if migrations is None else migrations - engine,
        migrations=None if migrations is None or gunicorn is None else gunicorn - migrations,
        gunicorn=None if gunicorn is None else total - gunicorn,
        workers=sum(WORKER in text for _at, text in lines),
    )


def baseline_start(client: docker.DockerClient, base: str) -> Start:
    port = free_port()
    command = ["python3", "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    total, engine, _lines = start_once(client, base, "/", port, command=command, user="nobody")
    return Start(total=total, engine=engine)


def median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def medians(starts: list[Start]) -> Start:
    return Start(
        total=statistics.median(s.total for s in starts),
        engine=statistics.median(s.engine for s in starts),
        boot=median([s.boot for s in starts]),
        migrations=median([s.migrations for s in starts]),
        gunicorn=median([s.gunicorn for s in starts]),
        workers=max(s.workers for s in starts),
    )


# ---- images the run makes -----------------------------------------------------------------


def remove_new_images(client: docker.DockerClient, before: set[str]) -> None:
    """Remove the untagged images made since `before` (the build's stages and steps), children
    first; the engine refuses any that another image still builds on, and the run keeps it."""
    for _round in range(10):
        removed = False
        for image in client.images.list(all=True):
            if image.id in before or any(tag != "<none>:<none>" for tag in image.tags):
                continue
            with suppress(APIError):  # not found, or still in use
                client.images.remove(image.id, noprune=False)
                removed = True
        if not removed:
            return


# ---- report -------------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_sizes(tag: str, base: str, sizes: Sizes, shown: int) -> None:
    app_compressed = sizes.compressed - sizes.base_compressed
    print(f"image {tag} (base {base})")
    print(f"{'':34} {'compressed MB':>14} {'uncompressed MB':>16} {'layers':>7}")
    print(
        f"{'whole image (what a task pulls)':34} {sizes.compressed / MB:14.1f}"
        f" {sizes.uncompressed / MB:16.1f} {len(sizes.layers):7}"
    )
    own = [layer for layer in sizes.layers if not layer.base]
    print(
        f"{'  of which above the base':34} {app_compressed / MB:14.1f}"
        f" {sum(layer.size for layer in own) / MB:16.1f} {len(own):7}"
    )
    print(f"largest layers ({shown}), by compressed size:")
    print(f"  {'gz MB':>7} {'raw MB':>7}  Dockerfile line")
    for layer in sorted(sizes.layers, key=lambda layer: -layer.compressed)[:shown]:
        step = ("[base] " if layer.base else "") + layer.step
        step = step if len(step) <= 76 else step[:75] + "…"
        print(f"  {layer.compressed / MB:7.1f} {layer.size / MB:7.1f}  {step}")


def report_starts(app: Start, baseline: Start, runs: int) -> None:
    print(
        f"start: `docker start` to the first 200, seconds, median of {runs} interleaved runs;"
        f"\nSQLite, {app.workers} gunicorn workers (WEB_CONCURRENCY unset)"
    )
    print(
        f"{'container':30} {'total':>6} {'x base':>7} {'engine':>7} {'boot':>6}"
        f" {'migrate':>8} {'gunicorn→200':>13}"
    )
    print(
        f"{'nnote, GET /readyz':30} {app.total:6.2f} {app.total / baseline.total:7.1f}"
        f" {app.engine:7.2f} {seconds(app.boot):>6} {seconds(app.migrations):>8}"
        f" {seconds(app.gunicorn):>13}"
    )
    print(
        f"{'baseline: http.server, GET /':30} {baseline.total:6.2f} {1:7.1f}"
        f" {baseline.engine:7.2f} {'-':>6} {'-':>8} {'-':>13}"
    )
    print(
        "engine: start call to the container's process (State.StartedAt); boot: to Alembic's"
        " first log line\n(imports, create_app, database check); migrate: to gunicorn's first"
        " line (upgrade, exec,\ngunicorn's import); gunicorn→200: workers load the app, first"
        " answer. Each column is its own\nmedian, so the parts need not add up to the total."
    )
    print(
        f"nnote start / baseline start: {app.total / baseline.total:.1f}x"
        f" ({app.total:.2f} s vs {baseline.total:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", help="measure this image instead of building the checkout")
    parser.add_argument("--base", help="the baseline's image (default: the tests' local base)")
    parser.add_argument("--layers", type=int, default=6, help="largest layers to list")
    args = parser.parse_args()

    client = docker.from_env()
    base_tag = args.base or ensure_base_image()
    before = {image.id for image in client.images.list(all=True)}
    tag = args.image or TAG
    folder = Path(tempfile.mkdtemp(prefix="nnote-bench-image-"))
    try:
        if args.image:
            image = client.images.get(args.image)
        else:
            built = time.monotonic()
            image = build_offline_image(folder / "context", TAG)
            print(f"built {TAG} from the checkout in {time.monotonic() - built:.0f} s")
        sizes = registry_sizes(client, image, client.images.get(base_tag))
        starts: dict[str, list[Start]] = {"app": [], "baseline": []}
        for run in range(args.runs):
            order = ["app", "baseline"] if run % 2 == 0 else ["baseline", "app"]
            for name in order:
                starts[name].append(
                    app_start(client, image.id)
                    if name == "app"
                    else baseline_start(client, base_tag)
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if not args.image:
            with suppress(APIError):  # not found, or still in use
                client.images.remove(TAG, noprune=False)
        remove_new_images(client, before)
    report_sizes(tag, base_tag, sizes, args.layers)
    print()
    report_starts(medians(starts["app"]), medians(starts["baseline"]), args.runs)


if __name__ == "__main__":
    main()
