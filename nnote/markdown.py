"""Markdown as nnote shows it, and the text derived from a note.

Rendered on the server by markdown-it-py (CommonMark, tables, strikethrough, GitHub task
lists), then sanitized by nh3 (ammonia): raw HTML in a note is never HTML (markdown-it escapes
it, and the sanitizer keeps only the tags below), links may only be http, https or mailto and
get rel="nofollow noopener", images become links (the CSP would block outside images, and
they would tell their host who reads the note). A bare http, https or mailto address typed in
the text (not in code) becomes a link too (linkify-it). Headings start at h4, under the page's
own.

A task-list checkbox becomes a button that submits the page's one hidden `note-actions` form
to `/notes/<id>/check/<n>`: n counts the task items in the order `toggle_task` counts them.
Its accessible name says which item it ticks ("Done: buy milk").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nh3
from linkify_it import LinkifyIt
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin

# Markdown's h1 renders as this level: the page has its h1, and lists their h2 and h3.
FIRST_HEADING = 4
# A note longer than this (in lines, or in characters) shows a preview and "Show more".
PREVIEW_LINES = 10
PREVIEW_CHARS = 500
TITLE_CHARS = 120
TAG_CHARS = 50
# A checkbox's accessible name holds at most this much of its item's text.
TASK_LABEL_CHARS = 80

ALLOWED_TAGS = {
    "p", "br", "hr", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "input",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href"},
    "ol": {"start"},
    "input": {"checked", "disabled"},  # and type, restricted to "checkbox" in _clean
}
# Classes go through their own list (ammonia refuses `class` in ALLOWED_ATTRIBUTES too).
ALLOWED_CLASSES = {
    "ul": {"contains-task-list"},
    "ol": {"contains-task-list"},
    "li": {"task-list-item"},
}
LINK_REL = "nofollow noopener"
URL_SCHEMES = {"http", "https", "mailto"}

# A tag: "#" and a letter, then letters, digits, "_" or "-"; not inside a word, an entity
# or a URL ("C#", "&#38;", "page#part" are no tags).
TAG = re.compile(r"(?<![\w&#/])#([^\W\d_][\w-]*)")
CHECKBOX = re.compile(r"<input[^>]*>")
# The marker of a task item's line: blockquote and list prefixes, then [ ], [x] or [X].
TASK_MARKER = re.compile(r"^((?:[ \t]*>[ \t]?)*[ \t]*(?:[-+*]|\d{1,9}[.)])[ \t]+)\[([ xX])\]")
# What every link linkify-it may find here starts with (a superset: its pretest).
SCHEME_LINK = re.compile(r"https?://|mailto:", re.IGNORECASE)
# Markdown's own line ends (and no others: str.splitlines knows more).
LINE_END = re.compile(r"\r\n?|\n")


def _image_as_link(_self: Any, tokens: Sequence[Token], idx: int, _options: Any, _env: Any) -> str:
    token = tokens[idx]
    src = escapeHtml(str(token.attrGet("src") or ""))
    text = escapeHtml(_plain(token.children or []) or str(token.attrGet("src") or ""))
    return f'<a href="{src}">{text}</a>'


class _SchemeLinks(LinkifyIt):
    """linkify-it finding only links that name their scheme (see MD.linkify), with a quick
    pretest to match: markdown-it asks it of every paragraph, and its own regular expression,
    made for fuzzy links too, cost a paragraph without a link as much as rendering it."""

    def pretest(self, text: str) -> bool:
        return SCHEME_LINK.search(text) is not None


MD = (
    MarkdownIt("commonmark", {"html": False, "typographer": False, "linkify": True})
    .enable(["table", "strikethrough", "linkify"])
    .use(tasklists_plugin)
)
MD.add_render_rule("image", _image_as_link)
# Bare addresses become links only when they name their scheme, and only the schemes the
# sanitizer keeps (ftp: would lose its href; "//host" would be a link to a host the text never
# named as one). No "fuzzy" links, emails or IPs: guessing that "notes.md", "setup.py" or
# "v1.2.io" is a web site (.md, .py and .io are real top-level domains) would send readers to
# hosts the writer never meant, and the reader could not tell a guessed link from a typed one.
MD.linkify = _SchemeLinks(
    schemas={"ftp:": None, "//": None},
    options={"fuzzy_link": False, "fuzzy_email": False, "fuzzy_ip": False},
)


def normalise_newlines(text: str) -> str:
    """Browsers send a textarea's lines with CRLF; notes are stored with LF."""
    return LINE_END.sub("\n", text)


def fold(text: str) -> str:
    """The form search compares: case folded for all of Unicode (not only A-Z), then NFKC,
    so that "CAFÉ", "café" and a decomposed "café" are one. Accents stay: "cafe" is not
    "café". Done here, not by the database, so SQLite and MySQL find exactly the same."""
    return unicodedata.normalize("NFKC", text.casefold())


def search_text(title: str, body: str) -> str:
    return fold(f"{title}\n{body}")


@dataclass(frozen=True)
class Rendered:
    """A note as shown: its title (given, or its first line), the rest as sanitized HTML,
    and whether that HTML is a preview of a longer note."""

    title: str
    html: str
    truncated: bool = False


def render(note_id: int, title: str, body: str, at: str, preview: bool = False) -> Rendered:
    """The note's display title and sanitized body HTML; with `preview`, of its first lines
    only. Without a title, a first line that is a heading or a paragraph's line is the title,
    and the HTML is the rest. `at` is the text's version, which the checkboxes send back."""
    source = normalise_newlines(body)
    shown, truncated = _preview(source) if preview else (source, False)
    return _rendered(MD.parse(shown), note_id, title, at, truncated)


def preview_and_tags(note_id: int, title: str, body: str, at: str) -> tuple[Rendered, list[str]]:
    """`render(..., preview=True)` and `tags_of`, parsing a short note once (saving a note
    does both)."""
    source = normalise_newlines(body)
    shown, truncated = _preview(source)
    tokens = MD.parse(source)
    tags = _tags(title, tokens)
    if truncated:
        tokens = MD.parse(shown)
    return _rendered(tokens, note_id, title, at, truncated), tags


def _rendered(tokens: list[Token], note_id: int, title: str, at: str, truncated: bool) -> Rendered:
    if not title.strip():
        title = _take_first_line(tokens)
    items = [_task_text(token) for token in tokens if _is_task(token)]
    html = MD.renderer.render(_demote_headings(tokens), MD.options, {}) if tokens else ""
    shown = _clean(html, note_id, at, items)
    return Rendered(_shorten(title.strip(), TITLE_CHARS), shown, truncated)


def tags_of(title: str, body: str) -> list[str]:
    """The note's #tags, folded, in order of first appearance: from the title and from the
    body's text (not its code)."""
    return _tags(title, MD.parse(normalise_newlines(body)))


def _tags(title: str, tokens: list[Token]) -> list[str]:
    texts = [title]
    for token in tokens:
        if token.type == "inline":
            texts += [child.content for child in token.children or () if child.type == "text"]
    tags: dict[str, None] = {}
    for text in texts:
        for name in TAG.findall(text):
            tag = fold(name.rstrip("-"))[:TAG_CHARS]
            tags.setdefault(tag, None)
    return list(tags)


def toggle_task(body: str, index: int) -> str | None:
    """The body with its `index`-th task item ticked or unticked; None if it has no such
    item (it was edited since the page was shown)."""
    source = normalise_newlines(body)
    lines = [token.map[0] for token in MD.parse(source) if _is_task(token) and token.map]
    if not 0 <= index < len(lines):
        return None
    text = source.split("\n")
    line = text[lines[index]]
    flipped = TASK_MARKER.sub(
        lambda m: f"{m.group(1)}[{' ' if m.group(2) in 'xX' else 'x'}]", line, count=1
    )
    if flipped == line:
        return None
    text[lines[index]] = flipped
    return "\n".join(text)


def _is_task(token: Token) -> bool:
    children = token.children or []
    return (
        token.type == "inline"
        and bool(children)
        and children[0].type == "html_inline"
        and "task-list-item-checkbox" in children[0].content
    )


def _task_text(token: Token) -> str:
    """A task item's own text (its first paragraph, without the checkbox or markup, on one
    line, shortened): what its button's accessible name says."""
    text = " ".join(_plain((token.children or [])[1:]).split())
    return _shorten(text, TASK_LABEL_CHARS)


def _preview(source: str) -> tuple[str, bool]:
    """The note's first lines within the preview's size, cut at a line end (one very long
    line is cut at a space), and whether anything was left out."""
    lines = source.split("\n")
    kept: list[str] = []
    size = 0
    for line in lines[:PREVIEW_LINES]:
        if kept and size + len(line) > PREVIEW_CHARS:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept[0]) > PREVIEW_CHARS:
        kept[0] = _shorten(kept[0], PREVIEW_CHARS)
        kept = kept[:1]
    shown = "\n".join(kept)
    return shown, shown.rstrip() != source.rstrip()


def _shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters: cut at a space if one is near the end, with "…"."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def _take_first_line(tokens: list[Token]) -> str:
    """Remove the first line from the tokens when it is a heading or a paragraph's line,
    and return its plain text; "" (and the tokens as they were) otherwise."""
    if len(tokens) < 3 or tokens[0].type not in ("heading_open", "paragraph_open"):
        return ""
    children = tokens[1].children or []
    breaks = [i for i, child in enumerate(children) if child.type in ("softbreak", "hardbreak")]
    if tokens[0].type == "heading_open" or not breaks:
        del tokens[:3]
        return _plain(children)
    first = breaks[0]
    tokens[1].children = children[first + 1 :]
    return _plain(children[:first])


def _plain(children: Sequence[Token]) -> str:
    """The text of inline tokens, without their markup."""
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.children:
            parts.append(_plain(child.children))
    return "".join(parts)


def _demote_headings(tokens: list[Token]) -> list[Token]:
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = int(token.tag[1]) + FIRST_HEADING - 1
            token.tag = f"h{min(level, 6)}"
    return tokens


def _clean(html: str, note_id: int, at: str, items: Sequence[str]) -> str:
    """Sanitize, then make each task checkbox (the only <input> left: markdown-it escapes
    the note's own HTML) the button that ticks it. `items` are the task items' texts, in the
    order of their checkboxes (the tokens' order is the HTML's); the buttons are made after
    sanitizing, so the item's text reaches them escaped by `task_button` alone."""
    safe = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        tag_attribute_values={"input": {"type": {"checkbox"}}},
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
    )
    numbers = iter(range(len(safe)))

    def button(match: re.Match[str]) -> str:
        index = next(numbers)
        item = items[index] if index < len(items) else ""
        return task_button(note_id, index, at, "checked" in match[0], item)

    return CHECKBOX.sub(button, safe)


def task_button(note_id: int, index: int, at: str, done: bool, item: str = "") -> str:
    """A checkbox as a toggle button; `at` (digits) tells the server which text it ticks.
    Its name says which item ("Done: buy milk"), aria-pressed whether it is done: a screen
    reader says "Done: buy milk, toggle button, not pressed"."""
    pressed, mark, hint = ("true", "☑", "Mark as not done") if done else ("false", "☐", "Mark done")
    name = escapeHtml(f"Done: {item}" if item else "Done")
    return (
        f'<button form="note-actions" formaction="/notes/{note_id:d}/check/{index:d}?at={at}"'
        f' class="task-box" aria-pressed="{pressed}" aria-label="{name}" title="{hint}">'
        f"{mark}</button>"
    )


def disable_tasks(html: str) -> str:
    """The rendering with its checkboxes disabled (a note in the trash ticks nothing)."""
    return html.replace('class="task-box"', 'class="task-box" disabled')
