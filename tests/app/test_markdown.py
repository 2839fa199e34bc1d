"""Markdown in notes: rendered on the server, sanitized, shown in the list and on the note's
own page; hostile input never becomes markup."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from nnote.markdown import fold, render, tags_of, toggle_task
from tests.app.conftest import AuthActions

AT = "20261201100000000000"


def html_of(body: str, title: str = "A title") -> str:
    """The body's HTML (with a title given, so the first line stays in the body)."""
    return render(7, title, body, AT).html


def test_markdown_renders_headings_lists_code_links_and_tables() -> None:
    html = html_of(
        "# Heading\n\n- one\n- two\n\n1. first\n\n`code` and **bold** *em* ~~gone~~"
        "\n\n```\nblock <b>\n```\n\n[site](https://example.com)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h4>Heading</h4>" in html, "a note's # is under the page's own headings"
    assert "<ul>\n<li>one</li>" in html and "<ol>\n<li>first</li>" in html
    assert "<code>code</code>" in html and "<strong>bold</strong>" in html
    assert "<em>em</em>" in html and "<s>gone</s>" in html
    assert "<pre><code>block &lt;b&gt;\n</code></pre>" in html
    assert '<a href="https://example.com" rel="nofollow noopener">site</a>' in html
    assert "<table>" in html and "<td>2</td>" in html


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<https://x.example/?q=<script>>",
    "![x](javascript:alert(1))",
    '<style>body{display:none}</style><div style="color:red">x</div>',
    "<iframe src=https://evil.example></iframe>",
    '<svg onload="alert(1)"></svg>',
    "<!-- comment --><form action=https://evil.example><input name=p></form>",
    '[x](https://ok.example "title" onclick="alert(1)")',
    'https://x.example/"onmouseover="alert(1)',
    "https://x.example/<script>alert(1)</script>",
    "javascript://x.example/%0aalert(1)",
    "jAvAsCrIpT:alert(1)//https://x.example",
    "data://text/html,<script>alert(1)</script> vbscript://x.example file:///etc/passwd",
    '- [ ] "><script>alert(1)</script>',
    "- [ ] ' onfocus='alert(1)' x='",
]


class Elements(HTMLParser):
    """Every element and attribute the browser would build from the HTML."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


SAFE_TAGS = {"p", "a", "code", "pre", "em", "strong", "ul", "li", "h4", "button"}
BUTTON_ATTRIBUTES = {"form", "formaction", "class", "aria-pressed", "aria-label", "title"}


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_markdown_never_becomes_markup(body: str) -> None:
    for tag, attrs in Elements(html_of(body)).found:
        assert tag in SAFE_TAGS, tag
        assert not any(name.startswith("on") or name == "style" for name in attrs), attrs
        href = (attrs.get("href") or "https:").strip().lower()
        assert href.split(":")[0] in ("https", "http", "mailto") or href.startswith("/"), href
        if tag == "button":
            assert set(attrs) == BUTTON_ATTRIBUTES, attrs


def test_links_get_nofollow_noopener_and_images_become_links() -> None:
    html = html_of("[a](https://a.example) <https://b.example> ![a cat](https://c.example/c.png)")
    assert html.count('rel="nofollow noopener"') == 3
    assert '<a href="https://c.example/c.png" rel="nofollow noopener">a cat</a>' in html
    assert "<img" not in html


def shown(user: AuthActions, client: FlaskClient, title: str, body: str) -> dict[str, str]:
    """The user's first note, added with this text: the list and the note's own page."""
    user.post("/notes", {"title": title, "body": body}, token_from="/")
    return {path: client.get(path).text for path in ("/", "/notes/1")}


def test_hostile_note_is_shown_as_text_in_the_list_and_on_its_page(
    user: AuthActions, client: FlaskClient
) -> None:
    body = "<script>alert(1)</script>\n\n[x](javascript:alert(1))"
    for page in shown(user, client, "<b>bold?</b>", body).values():
        assert "<script>alert(1)" not in page and "<b>bold?</b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "&lt;b&gt;bold?&lt;/b&gt;" in page
        assert 'href="javascript:' not in page


def test_checklists_become_buttons_numbered_in_order() -> None:
    html = html_of("- [ ] milk\n- [x] eggs\n  - [ ] nested\n\n```\n- [ ] not a task\n```")
    buttons = re.findall(
        r'<button form="note-actions" formaction="([^"]+)"[^>]*>(.)</button>', html
    )
    assert buttons == [
        (f"/notes/7/check/0?at={AT}", "☐"),
        (f"/notes/7/check/1?at={AT}", "☑"),
        (f"/notes/7/check/2?at={AT}", "☐"),
    ]
    assert 'aria-pressed="true"' in html and "<input" not in html


@pytest.mark.parametrize(
    ("body", "index", "expected"),
    [
        ("- [ ] milk\n- [x] eggs", 0, "- [x] milk\n- [x] eggs"),
        ("- [ ] milk\n- [x] eggs", 1, "- [ ] milk\n- [ ] eggs"),
        ("intro\r\n\r\n* [X] a\r\n  1. [ ] b", 1, "intro\n\n* [X] a\n  1. [x] b"),
        ("> - [ ] quoted", 0, "> - [x] quoted"),
        ("```\n- [ ] code\n```\n- [ ] real", 0, "```\n- [ ] code\n```\n- [x] real"),
    ],
)
def test_toggle_task_flips_exactly_the_numbered_box(body: str, index: int, expected: str) -> None:
    assert toggle_task(body, index) == expected


@pytest.mark.parametrize("index", [-1, 2, 99])
def test_toggle_task_of_a_missing_box_is_none(index: int) -> None:
    assert toggle_task("- [ ] milk\n- [x] eggs", index) is None


@pytest.mark.parametrize(
    ("title", "body", "shown_title", "rest"),
    [
        ("", "Buy milk", "Buy milk", ""),
        ("", "# Groceries\n\n- eggs", "Groceries", "<ul>"),
        ("", "first line\nsecond *line*", "first line", "<p>second <em>line</em></p>"),
        ("", "**Bold** start\nmore", "Bold start", "<p>more</p>"),
        ("", "- [ ] a list first", "", "task-box"),
        ("Given", "# Heading\ntext", "Given", "<h4>Heading</h4>"),
    ],
)
def test_the_title_is_given_or_the_first_line(
    title: str, body: str, shown_title: str, rest: str
) -> None:
    shown = render(1, title, body, AT)
    assert shown.title == shown_title
    assert rest in shown.html if rest else shown.html == ""


def test_a_long_note_is_previewed_and_flagged() -> None:
    body = "\n".join(f"line {n}" for n in range(40))
    preview = render(1, "", body, AT, preview=True)
    assert preview.truncated and "line 8" in preview.html and "line 30" not in preview.html
    assert not render(1, "", "short\nnote", AT, preview=True).truncated
    one_long_line = render(1, "t", "word " * 400, AT, preview=True)
    assert one_long_line.truncated and one_long_line.html.count("word") < 120


def test_tags_come_from_the_text_not_from_code_urls_or_entities() -> None:
    assert tags_of(
        "Plan #Work",
        "Buy #milk and #Café-au-lait, not `#code` or C# or a#b or https://x.example/#frag,"
        " &#35; nor #123, twice #milk\n\n```\n#fenced\n```",
    ) == ["work", "milk", "café-au-lait"]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("CAFÉ", "café"), ("Straße", "STRASSE"), ("ΣΊΣΥΦΟΣ", "σίσυφος"), ("ﬁle", "FILE")],
)
def test_fold_matches_case_for_all_of_unicode(typed: str, stored: str) -> None:
    assert fold(typed) in fold(stored) or fold(stored) in fold(typed)
    assert fold("Cafe\u0301") == fold("CAFÉ"), "a decomposed é is the same é"
    assert fold("cafe") != fold("café"), "accents count, on both databases"


# --- checklist boxes: named after their item ---------------------------------------------


class Buttons(HTMLParser):
    """Each button as a screen reader meets it: its accessible name (aria-label, entities
    decoded as the browser decodes them), whether it is pressed, and its visible mark."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str | None, str | None, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "button":
            named = dict(attrs)
            self.found.append((named.get("aria-label"), named.get("aria-pressed"), ""))

    def handle_data(self, data: str) -> None:
        if self.found and not self.found[-1][2]:
            name, pressed, _ = self.found[-1]
            self.found[-1] = (name, pressed, data)


def test_each_checkbox_is_named_after_its_item() -> None:
    html = html_of(
        "- [ ] buy *milk*\n- [x] eggs\n  - [ ] nested `code` and [a link](https://a.example)"
        "\n\n```\n- [ ] not a task\n```\n\n> 1. [ ] quoted\n>    over two lines"
    )
    assert Buttons(html).found == [
        ("Done: buy milk", "false", "☐"),
        ("Done: eggs", "true", "☑"),
        ("Done: nested code and a link", "false", "☐"),
        ("Done: quoted over two lines", "false", "☐"),
    ]


def test_a_checkbox_in_a_preview_is_named_too() -> None:
    body = "Shopping\n- [ ] milk\n" + "\n".join(f"- [ ] item {n}" for n in range(20))
    preview = render(1, "", body, AT, preview=True)
    names = [name for name, _, _ in Buttons(preview.html).found]
    assert preview.truncated and names[:2] == ["Done: milk", "Done: item 0"]


@pytest.mark.parametrize(
    ("item", "name"),
    [
        ('"><script>alert(1)</script>', 'Done: "><script>alert(1)</script>'),
        ("&quot; and &amp;quot;", 'Done: " and &quot;'),  # as the text shows them
        ("' onfocus='alert(1)' x='", "Done: ' onfocus='alert(1)' x='"),
        ("<b>bold</b> &lt;i&gt;", "Done: <b>bold</b> <i>"),
    ],
)
def test_hostile_item_text_stays_text_in_the_name(item: str, name: str) -> None:
    html = html_of(f"- [ ] {item}")
    assert [found[0] for found in Buttons(html).found] == [name]
    tags = [tag for tag, _ in Elements(html).found]
    assert tags == ["ul", "li", "button"], "nothing in the item became an element"


def test_a_long_item_gives_a_short_name() -> None:
    (found,) = Buttons(html_of("- [ ] " + "word " * 60)).found
    name = found[0] or ""
    assert name.startswith("Done: word word") and name.endswith("…")
    assert len(name) <= len("Done: ") + 81


def test_an_item_without_text_is_still_named() -> None:
    assert [found[0] for found in Buttons(html_of("- [ ] ![](https://c.example/)")).found] == [
        "Done"
    ]


# --- bare addresses become links ---------------------------------------------------------


class Links(HTMLParser):
    """Each link: its address, rel and text (what a reader sees and clicks)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str | None, str | None, str]] = []
        self.open = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            named = dict(attrs)
            self.found.append((named.get("href"), named.get("rel"), ""))
            self.open = True

    def handle_endtag(self, tag: str) -> None:
        self.open = self.open and tag != "a"

    def handle_data(self, data: str) -> None:
        if self.open:
            href, rel, text = self.found[-1]
            self.found[-1] = (href, rel, text + data)


def links(body: str) -> list[tuple[str | None, str | None, str]]:
    return Links(html_of(body)).found


@pytest.mark.parametrize(
    ("typed", "href"),
    [
        ("see https://a.example/x.", "https://a.example/x"),
        ("(https://a.example/x)", "https://a.example/x"),
        ("https://a.example/x, and more", "https://a.example/x"),
        ("is it https://a.example/x?", "https://a.example/x"),
        ("http://localhost:5000/notes!", "http://localhost:5000/notes"),
        ("https://a.example/a_(b)_c;", "https://a.example/a_(b)_c"),
        ("https://a.example/x?q=1&r=2.", "https://a.example/x?q=1&r=2"),
        ("write to mailto:ann@example.com.", "mailto:ann@example.com"),
        ("HTTPS://A.EXAMPLE/X", "HTTPS://A.EXAMPLE/X"),
        ("or MAILTO:ann@example.com", "MAILTO:ann@example.com"),
    ],
)
def test_a_bare_address_is_a_link_without_the_punctuation_after_it(typed: str, href: str) -> None:
    (found,) = links(typed)
    assert found[0] == href and found[1] == "nofollow noopener"
    assert found[2] == href, "the link's text is the address typed"
    paragraph = re.sub(r"<[^>]+>", "", html_of(typed))
    assert html.unescape(paragraph).strip() == typed, "no character lost or added around it"


@pytest.mark.parametrize(
    "typed",
    [
        "`https://code.example/x`",
        "```\nhttps://fenced.example/x\n```",
        "    https://indented.example/x",
        "example.com and www.example.com and a.example/x",
        "ann@example.com",
        "notes.md and setup.py",
        "ftp://files.example/x and //host.example/x",
        "javascript://x.example/%0aalert(1) data://x.example file:///etc/passwd",
        r"https\://escaped.example/x",
    ],
)
def test_what_is_not_typed_as_an_address_with_its_scheme_stays_text(typed: str) -> None:
    assert links(typed) == []


def test_beside_a_real_address_nothing_is_guessed() -> None:
    assert links("https://a.example/x and example.com, ann@example.com, notes.md") == [
        ("https://a.example/x", "nofollow noopener", "https://a.example/x")
    ]


def test_a_written_link_is_not_linked_twice() -> None:
    assert links("[https://a.example](https://b.example) <https://c.example>") == [
        ("https://b.example", "nofollow noopener", "https://a.example"),
        ("https://c.example", "nofollow noopener", "https://c.example"),
    ]


def test_a_bare_address_opens_from_the_list_and_the_note(
    user: AuthActions, client: FlaskClient
) -> None:
    body = "Read https://example.com/docs?a=1&b=2.\n\n- [ ] buy milk"
    for path, page in shown(user, client, "Reading", body).items():
        assert ("https://example.com/docs?a=1&b=2", "nofollow noopener") in [
            (href, rel) for href, rel, _ in Links(page).found
        ], path
        assert ("Done: buy milk", "false", "☐") in Buttons(page).found, path
