"""The client side in a real Chromium: drafts kept until saved, keyboard shortcuts, relative
times, dark mode and contrast, the phone layout, the page's weight."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from tests.browser.pages import add_note, draft_keys, log_in, shot, sign_up
from tests.reporting import report
from tests.support.server import Gunicorn

PAGE_WEIGHT_BUDGET = 20 * 1024
STATIC = ("app.js", "style.css", "favicon.svg")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """The app with its default page size (20 notes), the home page users see; every test
    here signs up from the same address."""
    folder = tmp_path_factory.mktemp("ui-server")
    env = {"SIGNUPS_PER_CLIENT_PER_HOUR": "1000"}
    gunicorn = Gunicorn(f"sqlite:///{folder / 'nnote.sqlite'}", env=env)
    gunicorn.start(folder / "gunicorn.log")
    yield gunicorn
    gunicorn.stop()


def new_page(browser: Browser, **options: Any) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 800}, **options)
    return context, context.new_page()


def luminance(css_colour: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", css_colour)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def style(page: Page, selector: str, prop: str) -> str:
    return page.locator(selector).first.evaluate(f"e => getComputedStyle(e)[{prop!r}]")


# --- drafts ------------------------------------------------------------------------------


def test_draft_comes_back_after_reload_and_goes_once_saved(page: Page, server: Gunicorn) -> None:
    sign_up(page, server.url, "drafts@example.com")
    body = page.locator("textarea#body")
    body.fill("Half a thought")
    page.reload()
    expect(body).to_have_value("Half a thought")
    page.goto(server.url)
    expect(body).to_have_value("Half a thought")
    expect(page.get_by_text("Draft restored.")).to_be_visible()

    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_have_text("Note added.")
    expect(body).to_have_value("")
    assert draft_keys(page) == []
    page.reload()
    expect(body).to_have_value("")
    expect(page.get_by_text("Draft restored.")).to_have_count(0)


def test_draft_survives_a_session_ended_elsewhere(browser: Browser, server: Gunicorn) -> None:
    """The session ends on the server (logged out in another browser) while a note is being
    written: sending it leads to the login page, and after logging in the note is still there."""
    context, page = new_page(browser)
    other_context, other = new_page(browser)
    try:
        sign_up(page, server.url, "elsewhere@example.com")
        page.locator("textarea#body").fill("Written while the session ended")
        cookies: list[Any] = context.cookies()
        other_context.add_cookies(cookies)
        other.goto(server.url)
        other.get_by_role("button", name="Log out").click()
        expect(other.get_by_text("You are logged out.")).to_be_visible()

        page.get_by_role("button", name="Add note").click()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        assert len(draft_keys(page)) == 1, "a failed submit keeps the draft"
        log_in(page, "elsewhere@example.com")
        expect(page.locator("textarea#body")).to_have_value("Written while the session ended")
        expect(page.get_by_text("Draft restored.")).to_be_visible()
        page.get_by_role("button", name="Add note").click()
        expect(page.get_by_role("status")).to_have_text("Note added.")
        expect(page.locator("li.note .body")).to_have_text(["Written while the session ended"])
        assert draft_keys(page) == []
    finally:
        other_context.close()
        context.close()


def test_draft_survives_lost_cookies(page: Page, server: Gunicorn) -> None:
    """The browser's cookies are gone (a browser session ended): the form is refused as
    expired, and the note waits in the form until the user is back on the home page."""
    sign_up(page, server.url, "cookies@example.com")
    page.locator("textarea#body").fill("Written before the cookies went")
    page.context.clear_cookies()
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_text("The form expired")).to_be_visible()
    page.get_by_role("link", name="Back to your notes").click()
    page.get_by_role("banner").get_by_role("link", name="Log in").click()
    log_in(page, "cookies@example.com")
    expect(page.locator("textarea#body")).to_have_value("Written before the cookies went")


def test_draft_stays_with_its_account_and_goes_on_logout(page: Page, server: Gunicorn) -> None:
    sign_up(page, server.url, "first@example.com")
    page.locator("textarea#body").fill("First's private draft")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    assert draft_keys(page) == [], "logging out leaves no note text in this browser"

    page.goto(server.url)
    expect(page.locator("textarea#body")).to_have_count(0)
    sign_up(page, server.url, "second@example.com")
    page.locator("textarea#body").fill("Second's draft")
    page.context.clear_cookies()
    sign_up(page, server.url, "third@example.com")
    expect(page.locator("textarea#body")).to_have_value("")


def test_edit_draft_comes_back_and_escape_discards_it(page: Page, server: Gunicorn) -> None:
    sign_up(page, server.url, "edits@example.com")
    add_note(page, "Original text")
    page.locator("li.note").get_by_role("link", name="Edit").click()
    edit_url = page.url
    page.locator("input#title").fill("A title, not saved yet")
    page.locator("textarea#body").fill("Better text, not saved yet")
    page.goto(server.url)
    page.goto(edit_url)
    expect(page.locator("input#title")).to_have_value("A title, not saved yet")
    expect(page.locator("textarea#body")).to_have_value("Better text, not saved yet")
    expect(page.get_by_text("Draft restored.")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("textarea#body").press("Escape")
    expect(page.locator("li.note .body")).to_have_text(["Original text"])
    page.goto(edit_url)
    expect(page.locator("input#title")).to_have_value("")
    expect(page.locator("textarea#body")).to_have_value("Original text")
    assert draft_keys(page) == []


def test_edit_draft_goes_once_saved(page: Page, server: Gunicorn) -> None:
    sign_up(page, server.url, "saved-edit@example.com")
    add_note(page, "Before")
    page.locator("li.note").get_by_role("link", name="Edit").click()
    page.locator("textarea#body").fill("After")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Note saved.")
    assert draft_keys(page) == []


# --- keyboard ----------------------------------------------------------------------------


def test_keyboard_shortcuts(page: Page, server: Gunicorn) -> None:
    sign_up(page, server.url, "keys@example.com")
    body = page.locator("textarea#body")
    body.fill("Sent with the keyboard")
    body.press("Control+Enter")
    expect(page.get_by_role("status")).to_have_text("Note added.")
    expect(page.locator("li.note .body")).to_have_text(["Sent with the keyboard"])

    page.locator("body").press("/")
    expect(page.locator("input#q")).to_be_focused()
    expect(page.locator("input#q")).to_have_value("")
    body.focus()
    page.keyboard.type("a/b")
    expect(body).to_have_value("a/b")  # a slash typed in a field stays a slash

    page.locator("li.note").get_by_role("link", name="Edit").click()
    page.locator("textarea#body").press("Escape")
    expect(page.get_by_role("heading", name="Edit note")).to_have_count(0)
    expect(page.locator("li.note .body")).to_have_text(["Sent with the keyboard"])


def test_skip_link_leads_to_the_content(page: Page, server: Gunicorn) -> None:
    page.goto(f"{server.url}/no-such-page")  # a page with no field focused on load
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0, "the focused skip link is on screen"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")


def test_pages_have_a_main_heading(page: Page, server: Gunicorn) -> None:
    for url in ("/auth/login", "/auth/signup", "/no-such-page"):
        page.goto(f"{server.url}{url}")
        expect(page.get_by_role("heading", level=1)).to_have_count(1)


# --- times -------------------------------------------------------------------------------


def test_times_are_relative_with_the_full_date_on_hover(page: Page, server: Gunicorn) -> None:
    page.clock.install()
    sign_up(page, server.url, "times@example.com")
    add_note(page, "A note with a time")
    time = page.locator("li.note time")
    expect(time).to_have_text("just now")
    year = page.evaluate("new Date().getFullYear()")
    expect(time).to_have_attribute("title", re.compile(rf"\b{year}\b.*\d:\d\d"))
    page.clock.run_for("05:00")
    expect(time).to_have_text("5 min ago")
    page.clock.run_for("03:00:00")
    expect(time).to_have_text(re.compile(r"^(3 h ago|yesterday)$"))
    page.clock.run_for("48:00:00")
    expect(time).to_have_text(re.compile(r"^(\w{3} \d{1,2}|\d{1,2} \w{3})(,? \d{4})?$"))


# --- looks: schemes, contrast, focus, phone ----------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_colours_meet_wcag_aa(
    page: Page, server: Gunicorn, scheme: Literal["light", "dark"]
) -> None:
    """Computed colours, in both schemes: text 4.5:1, field borders and focus rings 3:1."""
    page.emulate_media(color_scheme=scheme)
    sign_up(page, server.url, f"{scheme}@example.com")
    add_note(page, "A note to look at")
    paper = style(page, "body", "backgroundColor")
    card = style(page, ".card", "backgroundColor")
    field = style(page, "input#q", "backgroundColor")
    if scheme == "dark":
        assert luminance(paper) < 0.05 and luminance(style(page, "body", "color")) > 0.6
    else:
        assert luminance(paper) > 0.8
    texts = {
        "text": (style(page, "main", "color"), card),
        "muted": (style(page, "li.note footer", "color"), card),
        "link": (style(page, "li.note footer a", "color"), card),
        "button": (
            style(page, ".search button", "color"),
            style(page, ".search button", "backgroundColor"),
        ),
        "typed": (style(page, "input#q", "color"), field),
    }
    for name, (fg, bg) in texts.items():
        assert contrast(fg, bg) >= 4.5, f"{name}: {fg} on {bg}"
    border = style(page, "input#q", "borderTopColor")
    for bg in (field, paper, card):
        assert contrast(border, bg) >= 3, f"field border {border} on {bg}"
    page.locator("input#q").focus()
    assert style(page, "input#q", "outlineStyle") == "solid"
    ring = style(page, "input#q", "outlineColor")
    for bg in (paper, card, field):
        assert contrast(ring, bg) >= 3, f"focus ring {ring} on {bg}"
    page.keyboard.press("Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"


def test_screenshots_light_dark_and_phone(
    browser: Browser, server: Gunicorn, artifacts: Path
) -> None:
    context, page = new_page(browser)
    try:
        sign_up(page, server.url, "shots@example.com")
        notes = (
            "Buy oat milk",
            "Call the plumber about the tap\nHe said after 5, any day but Friday",
            "Shopping\n- [ ] milk\n- [x] eggs\n\nRun `git status` first. #home #errands",
        )
        for text in notes:
            add_note(page, text)
        page.goto(server.url)
        shot(page, artifacts, "home-light")
        page.emulate_media(color_scheme="dark")
        shot(page, artifacts, "home-dark")
        page.set_viewport_size({"width": 360, "height": 740})
        page.emulate_media(color_scheme="light")
        shot(page, artifacts, "home-mobile")
        page.emulate_media(color_scheme="dark")
        shot(page, artifacts, "home-mobile-dark")
        page.set_viewport_size({"width": 1100, "height": 800})
        page.goto(f"{server.url}/account/")
        shot(page, artifacts, "account-dark")
    finally:
        context.close()


def test_phone_header_is_one_row(browser: Browser, server: Gunicorn) -> None:
    context, page = new_page(browser)
    page.set_viewport_size({"width": 360, "height": 740})
    try:
        sign_up(page, server.url, "phone@example.com", first_name="Maximiliane-Alexandra")
        brand = page.locator(".topbar .brand").bounding_box()
        logout = page.get_by_role("button", name="Log out").bounding_box()
        header = page.locator("header.topbar").bounding_box()
        assert brand and logout and header
        assert abs(brand["y"] + brand["height"] / 2 - (logout["y"] + logout["height"] / 2)) < 4
        assert header["height"] < 64
        assert logout["x"] + logout["width"] <= 360
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.get_by_role("button", name="Log out").click()
        brand = page.locator(".topbar .brand").bounding_box()
        sign_up_link = page.locator(".topbar nav a").last.bounding_box()
        assert brand and sign_up_link
        assert (
            abs(brand["y"] + brand["height"] / 2 - (sign_up_link["y"] + sign_up_link["height"] / 2))
            < 4
        )
    finally:
        context.close()


def test_new_note_form_is_one_line_until_used(page: Page, server: Gunicorn) -> None:
    sign_up(page, server.url, "collapse@example.com")
    body = page.locator("textarea#body")
    collapsed = body.bounding_box()
    assert collapsed and collapsed["height"] < 50
    expect(page.get_by_role("button", name="Add note")).to_be_hidden()
    body.focus()
    opened = body.bounding_box()
    assert opened and opened["height"] > 70
    expect(page.get_by_role("button", name="Add note")).to_be_visible()
    body.fill("Kept open while it holds text")
    page.locator("input#q").focus()
    expect(page.get_by_role("button", name="Add note")).to_be_visible()


# --- fields ------------------------------------------------------------------------------


def test_field_errors_describe_their_field(page: Page, server: Gunicorn) -> None:
    page.goto(f"{server.url}/auth/login")
    email = page.get_by_label("Email")
    expect(email).to_have_attribute("type", "email")
    page.get_by_role("button", name="Log in").click()
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description("Enter your email address.")
    expect(page.get_by_label("Password")).to_have_accessible_description("Enter your password.")


# --- weight ------------------------------------------------------------------------------


def test_home_page_with_20_notes_weighs_under_20_kb(browser: Browser, server: Gunicorn) -> None:
    context, page = new_page(browser)
    try:
        sign_up(page, server.url, "weight@example.com")
        token = page.locator("input[name=csrf_token]").first.input_value()
        for number in range(20):
            body = f"Note {number:02d}: pick up the parcel, then call Sam about Saturday."
            page.request.post(f"{server.url}/notes", form={"csrf_token": token, "body": body})
        state = context.storage_state()
    finally:
        context.close()
    # A new browser context: nothing cached, as on a first visit.
    context, page = new_page(browser, storage_state=state)
    try:
        responses: list[Response] = []
        page.on("response", lambda response: responses.append(response))
        page.goto(server.url, wait_until="networkidle")
        expect(page.locator("li.note")).to_have_count(20)
        if not any(r.url.endswith("favicon.svg") for r in responses):
            # Headless Chromium may not ask for it; the page does, as a browser would.
            page.evaluate("fetch('/static/favicon.svg').then(r => r.text())")
            page.wait_for_load_state("networkidle")
        bodies = {re.sub(r".*/", "", r.url) or "/": r for r in responses}
        kinds = {name: len(r.body()) for name, r in bodies.items()}
        total = sum(kinds.values())
        # What crossed the network: the stylesheet, script and icon gzipped by the app (no
        # front compresses them: CloudFront's caching-disabled policy compresses nothing).
        sent = {name: r.request.sizes()["responseBodySize"] for name, r in bodies.items()}
        figure = f"{sum(sent.values())} bytes sent ({total} bytes unpacked): {sent}"
        report("Home page weight (20 notes, first load)", figure)
        print(f"home page with 20 notes: {figure}")
        assert set(STATIC) <= set(kinds), kinds
        assert all(bodies[name].headers.get("content-encoding") == "gzip" for name in STATIC)
        assert sum(sent.values()) < PAGE_WEIGHT_BUDGET, sent
    finally:
        context.close()
