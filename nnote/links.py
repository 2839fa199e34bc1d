"""`url_for` for templates, memoized: a page's links are the same on every request.

The layout and the home page build about eight links per request with Werkzeug's URL
builder: ~4% of the home page's time. A relative URL depends only on the app's URL map, the
script root (a proxy's prefix) and the arguments, so those are the cache key; external URLs
(which also depend on host and scheme) are built every time.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Flask, current_app, request, url_for

# A tuple: `str | int | ...` in the call builds a new union each time (isinstance 8x slower).
_PLAIN = (str, int, float, bool, type(None))


def cached_url_for(endpoint: str, **values: Any) -> str:
    if values and (
        values.get("_external") or not all(isinstance(v, _PLAIN) for v in values.values())
    ):
        return url_for(endpoint, **values)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _build(id(app), request.script_root, endpoint, tuple(sorted(values.items())))


@lru_cache(maxsize=2048)
def _build(_app: int, _script_root: str, endpoint: str, values: tuple[Any, ...]) -> str:
    return url_for(endpoint, **dict(values))


def init_app(app: Flask) -> None:
    app.jinja_env.globals["url_for"] = cached_url_for
