"""The anonymous visitor's empty forms (log in, sign up), rendered once per process.

Every new visitor gets the same page but for its CSRF token, and rendering it (the layout
and the WTForms fields) was about two thirds of its time: the page is kept as the text
around the token and the visitor's own token is put in. Only a plain GET of a logged-out
visitor with nothing to show (no flashed message, no form data or error) is served this way;
anything else is rendered as usual.
"""

from __future__ import annotations

from flask import render_template, request, session
from flask_login import current_user
from flask_wtf import FlaskForm

from nnote.security import csrf_token

_pages: dict[tuple[str, str], tuple[str, ...]] = {}


def _key(template: str) -> tuple[str, str]:
    # The layout's links depend on where the app is mounted, nothing else of the request.
    return template, request.script_root


def _plain_visit() -> bool:
    return (
        request.method == "GET" and "_flashes" not in session and not current_user.is_authenticated
    )


def cached(template: str) -> str | None:
    """The page for a plain visit, if it was rendered before; None otherwise."""
    parts = _pages.get(_key(template))
    if parts is None or not _plain_visit():
        return None
    return csrf_token().join(parts)


def render(template: str, form: FlaskForm) -> str:
    """Render `template` with `form`; keep the page for later plain visits if this is one."""
    plain = _plain_visit()  # before rendering, which takes the flashed messages out
    page = render_template(template, form=form)
    token = csrf_token()
    if plain and token in page:
        _pages[_key(template)] = tuple(page.split(token))
    return page
