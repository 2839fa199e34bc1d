"""Pages rendered once per process and filled in on each visit: the anonymous visitor's
empty forms (log in, sign up), and the plain home page (`filled`).

Every new visitor gets the same page but for its CSRF token, and rendering it (the layout
and the WTForms fields) was about two thirds of its time: the page is kept as the text
around the token and the visitor's own token is put in: a visitor token
(`nnote.visitor_tokens`), which needs no session cookie. Only a plain GET of a logged-out
visitor with nothing to show (no flashed message, no form data or error) is served this way;
anything else is rendered as usual.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping

from flask import current_app, render_template, request, session
from flask_wtf import FlaskForm
from markupsafe import Markup

from nnote import visitor_tokens
from nnote.security import csrf_token

# Where a visit's own value goes in a kept page: a character that no template or value holds.
_SLOT = "\x1e{}\x1e"
_SLOTS = re.compile("\x1e(\\w+)\x1e")
# Each kept page as (text, the slot after it) pairs, the last with no slot: the forms' under
# (template, script root), the home page's under its own key (`filled`).
_kept: dict[Hashable, tuple[tuple[str, str], ...]] = {}


def _key(template: str) -> tuple[str, str]:
    # The layout's links depend on where the app is mounted, nothing else of the request.
    return template, request.script_root


def _plain_visit() -> bool:
    """A GET with nothing to show and nobody logged in, asked of the cookies alone: loading
    the user (Flask-Login) to find nobody cost a tenth of the page."""
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    return (
        request.method == "GET"
        and "_flashes" not in session
        and "_user_id" not in session
        and remember not in request.cookies
    )


def cached(template: str) -> str | None:
    """The page for a plain visit, if it was rendered before; None otherwise."""
    parts = _kept.get(_key(template))
    if parts is None or not _plain_visit():
        return None
    return _fill(parts, {"token": visitor_tokens.token()})


def render(template: str, form: FlaskForm) -> str:
    """Render `template` with `form`; keep the page for later plain visits if this is one."""
    plain = _plain_visit()  # before rendering, which takes the flashed messages out
    page = render_template(template, form=form)
    token = csrf_token()
    if plain and token in page:
        pieces = page.split(token)
        slots = ["token"] * (len(pieces) - 1)
        _kept[_key(template)] = tuple(zip(pieces, [*slots, ""], strict=True))
    return page


def filled(
    key: Hashable, render: Callable[[Mapping[str, Markup]], str], values: Mapping[str, str]
) -> str:
    """The page kept under `key`, with this visit's `values` (markup, escaped) put in. The
    first visit renders it: `render` gets a slot for each value, to use where the value goes.
    `key` names everything else the page depends on."""
    parts = _kept.get(key)
    if parts is None or current_app.jinja_env.auto_reload:  # a template may have changed
        slots = {name: Markup(_SLOT.format(name)) for name in values}
        pieces = _SLOTS.split(render(slots))
        # (text, the slot after it), the last text with none
        parts = _kept[key] = tuple(zip(pieces[::2], [*pieces[1::2], ""], strict=True))
    return _fill(parts, values)


def _fill(parts: tuple[tuple[str, str], ...], values: Mapping[str, str]) -> str:
    page = []
    for text, slot in parts:
        page.append(text)
        if slot:
            page.append(values[slot])
    return "".join(page)  # str.join: no Markup escaping on the way
