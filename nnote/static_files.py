"""The stylesheet, script and icon, gzipped for the browsers that accept it.

They are half of a first visit's bytes. Behind CloudFront (the default front door) they
would arrive compressed anyway, but with a domain of its own the load balancer serves the
app directly, and it compresses nothing. Each worker compresses a file once, on its first
request, and again only when the file changes; WhiteNoise would need a build step to write
`.gz` files beside the sources, and Flask-Compress compresses every response again.
"""

from __future__ import annotations

import gzip
import os
import stat
from dataclasses import dataclass
from io import BytesIO

from flask import Flask, Response, current_app, request, send_file
from werkzeug.security import safe_join

# Text is worth compressing; what the folder may hold besides is not (images are compressed).
COMPRESSED_TYPES = {".css", ".js", ".svg", ".txt", ".json", ".html"}


@dataclass(frozen=True)
class _Gzipped:
    body: bytes
    modified: float
    size: int

    @property
    def etag(self) -> str:
        """Its own ETag: the gzipped file is another representation than the file."""
        return f"{self.modified}-{self.size}-gzip"


_kept: dict[str, _Gzipped] = {}


def init_app(app: Flask) -> None:
    if app.has_static_folder:
        app.view_functions["static"] = send_static_file


def send_static_file(filename: str) -> Response:
    """Flask's static view, with the gzipped file for a browser that accepts gzip (each
    representation its own ETag, so that revalidation still answers 304)."""
    gzipped = _gzipped(filename) if request.accept_encodings["gzip"] else None
    if gzipped is None:
        response = current_app.send_static_file(filename)
    else:
        response = send_file(
            BytesIO(gzipped.body),
            mimetype=None,
            download_name=filename.rsplit("/", 1)[-1],
            etag=gzipped.etag,
            last_modified=gzipped.modified,
            max_age=current_app.get_send_file_max_age(filename),
            conditional=True,
        )
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response


def _gzipped(filename: str) -> _Gzipped | None:
    """The file compressed, if it is text and there; made again when the file changed."""
    path = safe_join(str(current_app.static_folder), filename)
    if path is None or os.path.splitext(path)[1] not in COMPRESSED_TYPES:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):  # a folder named like a file: Flask's view says 404
        return None
    kept = _kept.get(path)
    if kept is None or (kept.modified, kept.size) != (found.st_mtime, found.st_size):
        with open(path, "rb") as file:
            body = gzip.compress(file.read(), compresslevel=9, mtime=0)
        kept = _kept[path] = _Gzipped(body, found.st_mtime, found.st_size)
    return kept
