"""Host-downloaded wheels served over plain HTTP on 127.0.0.1, for offline image builds.

Containers cannot reach the package index here and the Dockerfile copies no wheels in: a
build run on the host network (`network_mode="host"`) installs from this server instead,
given `pip_install_args(url)` as its PIP_INSTALL_ARGS.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Silent: every wheel pip fetches would otherwise be a line on the test's stderr."""


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Serve `folder` (its listing is a find-links page) while the block runs; yield its URL."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def pip_install_args(url: str) -> str:
    """pip refuses plain HTTP from a host it does not trust, even with --find-links."""
    return f"--no-index --find-links {url} --trusted-host 127.0.0.1"
