"""The note app's features as a new user meets them in a real Chromium: the landing page, the
trash with its Undo, checklists ticked with or without JavaScript, drafts that keep the title
as well as the text, and pictures (light, dark, phone) of the features the others click through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.pages import add_note, draft_keys, send_sign_up, shots, sign_up
from tests.support.server import Gunicorn


def note(page: Page, text: str) -> Locator:
    return page.locator("li.note", has_text=text)


# --- the landing page --------------------------------------------------------------------


def test_landing_page_leads_a_visitor_to_their_notes(
    page: Page, server: Gunicorn, artifacts: Path
) -> None:
    """A logged-out visitor at the home page's address learns what nnote is and can log in
    or sign up from there, rather than being sent to a bare login form."""
    response = page.goto(server.url)
    assert response is not None and response.status == 200
    assert page.url == f"{server.url}/"
    main = page.get_by_role("main")
    expect(main.get_by_role("heading", level=1)).to_contain_text("nnote")
    expect(main.get_by_role("listitem").first).to_be_visible()  # what it does
    shots(page, artifacts, "landing")

    main.get_by_role("link", name="Log in").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.go_back()
    main.get_by_role("link", name=re.compile("Sign up")).click()
    expect(page).to_have_url(f"{server.url}/auth/signup")
    send_sign_up(page, "landing@example.com", first_name="Ada")
    expect(page.get_by_text("Welcome, Ada!")).to_be_visible()
    expect(page).to_have_url(f"{server.url}/")
    expect(page.get_by_label("New note")).to_be_visible()
    expect(page.get_by_text("No notes yet")).to_be_visible()


# --- the trash ---------------------------------------------------------------------------


def test_trash_undo_restore_and_delete_forever(
    page: Page, server: Gunicorn, artifacts: Path
) -> None:
    sign_up(page, server.url, "trash@example.com")
    add_note(page, "Keep: the boiler code is 4512")
    add_note(page, "Gone: the old parking ticket")
    gone = note(page, "Gone: the old parking ticket")
    status = page.get_by_role("status")

    gone.get_by_role("button", name="Delete").click()
    expect(status).to_contain_text("Note moved to the trash.")
    expect(gone).to_have_count(0)
    shots(page, artifacts, "deleted-with-undo")
    status.get_by_role("button", name="Undo").click()
    expect(status).to_have_text("Note restored.")
    expect(gone).to_have_count(1)

    gone.get_by_role("button", name="Delete").click()
    expect(gone).to_have_count(0)
    page.get_by_role("link", name="Trash").click()
    expect(page.get_by_role("heading", name="Trash", level=1)).to_be_visible()
    expect(page.locator("li.note")).to_have_count(1)
    shots(page, artifacts, "trash")
    gone.get_by_role("button", name="Restore").click()
    expect(status).to_have_text("Note restored.")
    expect(page.get_by_text("The trash is empty.")).to_be_visible()
    page.goto(server.url)
    expect(gone).to_have_count(1)
    note_url = gone.get_by_role("link", name="Edit").get_attribute("href") or ""

    gone.get_by_role("button", name="Delete").click()
    page.get_by_role("link", name="Trash").click()
    gone.get_by_role("button", name="Delete forever").click()
    expect(status).to_have_text("Note deleted forever.")
    expect(page.get_by_text("The trash is empty.")).to_be_visible()
    page.goto(server.url)
    expect(page.locator("li.note .body")).to_have_text(["Keep: the boiler code is 4512"])
    response = page.goto(server.url + note_url.removesuffix("/edit"))
    assert response is not None and response.status == 404


# --- checklists --------------------------------------------------------------------------


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
def test_checklist_item_ticks_and_stays_ticked(
    browser: Browser, server: Gunicorn, javascript: bool
) -> None:
    """The tick is a plain form button (the page's `note-actions` form): it works with
    JavaScript off, and what it ticks is saved in the note's text."""
    context = browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1100, "height": 800}
    )
    try:
        page = context.new_page()
        sign_up(page, server.url, f"ticks-{javascript}@example.com".lower())
        add_note(page, "Shopping\n- [ ] milk\n- [x] eggs")
        # Found as a screen reader names them: each box after its item.
        milk = page.get_by_role("button", name="Done: milk", exact=True)
        eggs = page.get_by_role("button", name="Done: eggs", exact=True)
        expect(milk).to_have_attribute("aria-pressed", "false")
        expect(eggs).to_have_attribute("aria-pressed", "true")

        milk.click()
        expect(milk).to_have_attribute("aria-pressed", "true")
        expect(milk).to_have_text("☑")
        page.reload()
        expect(milk).to_have_attribute("aria-pressed", "true")
        expect(eggs).to_have_attribute("aria-pressed", "true")
        page.locator("li.note").get_by_role("link", name="Edit").click()
        expect(page.get_by_label("Note")).to_have_value("Shopping\n- [x] milk\n- [x] eggs")

        page.goto(server.url)
        eggs.click()
        expect(eggs).to_have_attribute("aria-pressed", "false")
        page.reload()
        expect(eggs).to_have_attribute("aria-pressed", "false")
        expect(milk).to_have_attribute("aria-pressed", "true")
    finally:
        context.close()


# --- drafts ------------------------------------------------------------------------------


def test_draft_keeps_the_title_until_saved(page: Page, server: Gunicorn) -> None:
    """Leaving the page unsaved (a link, then back; a reload) keeps title and text."""
    sign_up(page, server.url, "titled-draft@example.com")
    title, body = page.locator("input#title"), page.locator("textarea#body")
    body.click()  # the form opens: the title field shows
    title.fill("Groceries")
    body.fill("Oat milk and bread")
    page.get_by_role("link", name="Account").click()
    page.get_by_role("link", name="nnote", exact=True).click()
    expect(title).to_have_value("Groceries")
    expect(body).to_have_value("Oat milk and bread")
    expect(page.get_by_text("Draft restored.")).to_be_visible()
    page.reload()
    expect(title).to_have_value("Groceries")

    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_have_text("Note added.")
    expect(page.locator("li.note .note-title")).to_have_text(["Groceries"])
    page.reload()
    expect(title).to_have_value("")
    expect(body).to_have_value("")
    expect(page.get_by_text("Draft restored.")).to_have_count(0)
    assert draft_keys(page) == []


# --- screenshots -------------------------------------------------------------------------

LONG_NOTE = "\n".join(
    [
        "Packing list:",
        *(f"- [ ] {thing}" for thing in ("passport", "charger", "sun cream", "tram card")),
        "",
        "Ride [tram 28](https://example.com/tram-28) early, before the queues.",
        *(f"Day {day}: a walk, a museum, a long lunch." for day in range(1, 7)),
        "",
        "Last line: water the plants before leaving. #travel",
    ]
)


def test_screenshots_of_titles_pins_a_note_its_tags_and_sessions(
    page: Page, server: Gunicorn, artifacts: Path
) -> None:
    """Light, dark and phone pictures of what the other tests only click through: a pinned
    note, a title, a long note's preview and its own page, a tag's notes, the sessions."""
    sign_up(page, server.url, "pictures@example.com")
    add_note(page, "Call the plumber about the tap #home")
    add_note(page, LONG_NOTE, title="Trip to Lisbon")
    add_note(page, "Buy oat milk")
    note(page, "Buy oat milk").get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_role("region", name="Pinned")).to_contain_text("Buy oat milk")
    expect(page.get_by_text("Last line")).to_have_count(0)  # a preview of the long note
    shots(page, artifacts, "home-titles-pins")

    note(page, "Trip to Lisbon").get_by_role("link", name="Show more").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Trip to Lisbon")
    expect(page.get_by_text("Last line")).to_be_visible()
    shots(page, artifacts, "note-page")

    page.get_by_role("link", name="#travel").click()
    expect(page.locator("li.note .note-title")).to_have_text(["Trip to Lisbon"])
    shots(page, artifacts, "tag-filter")

    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Where you are logged in")).to_be_visible()
    shots(page, artifacts, "account-sessions")
