"""The Flask class nnote runs on: Flask, with one question it asked on every request
answered once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


class NnoteFlask(Flask):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's, remembered per function: Flask asks whether each view, hook and
        teardown is a coroutine function on every call (seven times a request), and the
        answer never changes. Flask's documentation invites overriding this method."""
        try:
            return self._sync[func]
        except KeyError:
            made = self._sync[func] = super().ensure_sync(func)
            return made
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)
