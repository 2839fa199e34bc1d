"""A user's whole journey in a real Chromium, against the app under gunicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import PASSWORD, add_note, log_in, shot, sign_up
from tests.support.server import Gunicorn

NEW_PASSWORD = "browser pass 456"


def delete_page(page: Page, base: str, text: str) -> str:
    note_id = page.locator("li.note", has_text=text).first.get_attribute("id") or ""
    return f"{base}/notes/{note_id.removeprefix('note-')}/delete"


def test_journey_from_signup_to_login_again(page: Page, server: Gunicorn, artifacts: Path) -> None:
    base = server.url
    page.goto(f"{base}/auth/signup")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Enter your email address.")).to_be_visible()
    shot(page, artifacts, "signup-errors")

    sign_up(page, base, "robin@example.com")
    expect(page.get_by_text("Welcome, Robin!")).to_be_visible()
    for number in range(7):
        add_note(page, f"Browser note {number}")
    notes = page.locator("li.note .body")
    expect(notes).to_have_count(5)
    expect(notes.first).to_have_text("Browser note 6")
    shot(page, artifacts, "home")

    page.get_by_role("link", name="Older →").click()
    expect(notes).to_have_text(["Browser note 1", "Browser note 0"])
    page.get_by_role("link", name="← Newer").click()
    expect(notes.first).to_have_text("Browser note 6")

    page.locator("li.note", has_text="Browser note 6").get_by_role("link", name="Edit").click()
    page.get_by_label("Note").fill("Edited in Chromium")
    shot(page, artifacts, "edit")
    page.get_by_role("button", name="Save").click()
    expect(notes.first).to_have_text("Edited in Chromium")

    page.get_by_placeholder("Search your notes").fill("chromium")
    page.get_by_role("button", name="Search").click()
    expect(notes).to_have_text(["Edited in Chromium"])
    shot(page, artifacts, "search")
    page.get_by_role("link", name="Clear").click()

    # The confirmation page (the list's own Delete may skip it for a trash with Undo).
    page.goto(delete_page(page, base, "Browser note 5"))
    expect(page.get_by_role("heading", name="Delete this note?")).to_be_visible()
    shot(page, artifacts, "delete-confirm")
    page.get_by_role("button", name="Delete note").click()
    expect(page.get_by_role("status")).to_contain_text("Note")
    expect(page.get_by_text("Browser note 5")).to_have_count(0)

    page.get_by_role("link", name="Account").click()
    shot(page, artifacts, "account")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.locator("#confirm").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Log in again with your new password")).to_be_visible()

    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Hello again, Robin.")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    shot(page, artifacts, "login")

    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(notes.first).to_have_text("Edited in Chromium")


def test_pin_and_unpin_without_javascript(
    browser: Browser, server: Gunicorn, artifacts: Path
) -> None:
    """The buttons submit the page's one hidden `pins` form (by `form` and `formaction`):
    plain HTML, so a browser with JavaScript off pins and unpins just the same."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1100, "height": 800}
    )
    try:
        page = context.new_page()
        sign_up(page, server.url, "pins@example.com")
        for number in range(3):
            add_note(page, f"Pin note {number}")
        pinned = page.get_by_role("region", name="Pinned").locator("li.note .body")
        listed = page.locator("main > ul.notes .body")
        page.locator("li.note", has_text="Pin note 1").get_by_role(
            "button", name="Pin", exact=True
        ).click()
        expect(page.get_by_role("status")).to_have_text("Note pinned.")
        expect(pinned).to_have_text(["Pin note 1"])
        expect(listed).to_have_text(["Pin note 2", "Pin note 0"])
        shot(page, artifacts, "pinned")
        page.get_by_role("button", name="Unpin").click()
        expect(page.get_by_role("status")).to_have_text("Note unpinned.")
        expect(pinned).to_have_count(0)
        expect(listed).to_have_text(["Pin note 2", "Pin note 1", "Pin note 0"])
    finally:
        context.close()


def test_cross_site_form_without_token_fails(page: Page, server: Gunicorn) -> None:
    sign_up(page, server.url, "target@example.com")
    expect(page.get_by_text("Welcome, Robin!")).to_be_visible()
    # Same host, other port: the browser sends the session cookie, so only the CSRF token
    # stands between this page and a forged note.
    attacker = "http://127.0.0.1:1/evil.html"
    evil_form = (
        f'<form id="f" method="post" action="{server.url}/notes">'
        '<input name="body" value="forged by another site"></form>'
        "<button onclick=\"document.getElementById('f').submit()\">win a prize</button>"
    )
    page.route(attacker, lambda route: route.fulfill(body=evil_form, content_type="text/html"))
    page.goto(attacker)
    with page.expect_navigation():
        page.get_by_role("button", name="win a prize").click()
    expect(page.get_by_text("did not come from this site")).to_be_visible()
    page.goto(server.url)
    expect(page.get_by_text("forged by another site")).to_have_count(0)


# Every violation of the page's policy, as the page itself sees it (before any of its scripts).
CSP_LISTENER = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(`${e.violatedDirective} ${e.sourceFile}:${e.lineNumber}`));
"""


def test_pages_load_no_outside_resource_and_break_no_csp(page: Page, server: Gunicorn) -> None:
    """Every page, its script running: nothing from elsewhere, and nothing the CSP refuses
    (no inline script or style, no style attribute, nothing the script adds)."""
    base = server.url
    outside: list[str] = []
    violations: list[str] = []
    page.add_init_script(CSP_LISTENER)
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )

    def visit(url: str | None = None) -> None:
        if url is not None:
            page.goto(f"{base}{url}")
        page.wait_for_load_state("load")  # the deferred script has run
        violations.extend(page.evaluate("window.cspViolations"))

    for url in ("/", "/missing", "/auth/login", "/auth/signup"):
        visit(url)
    page.get_by_role("button", name="Sign up").click()
    visit()
    sign_up(page, base, "csp@example.com")
    visit()
    page.locator("textarea#body").fill("A draft, restored below")
    visit("/")
    expect(page.get_by_text("Draft restored.")).to_be_visible()
    add_note(page, "Checked by the policy")
    expect(page.locator("li.note time").first).to_have_text("just now")  # the script ran
    visit()
    page.locator("textarea#body").focus()
    page.get_by_role("button", name="Add note").click()  # empty: the form's error
    visit()
    note_page = delete_page(page, "", "Checked by the policy").removesuffix("/delete")
    for url in ("/?q=policy", "/?q=nothing", "/account/", "/missing", "/trash/", note_page):
        visit(url)
    page.goto(base)
    page.locator("li.note").first.get_by_role("link", name="Edit").click()
    visit()
    page.goto(base)
    visit(delete_page(page, "", "Checked by the policy"))
    page.get_by_role("button", name="Log out").click()
    visit()
    assert outside == [] and violations == []
    background = page.evaluate(
        "getComputedStyle(document.querySelector('.topbar')).backgroundColor"
    )
    assert background == "rgb(47, 93, 80)", "the stylesheet is served and applied"


def test_remember_me_cookies_are_dead_after_logout(browser: Browser, server: Gunicorn) -> None:
    """Logging out ends the session on the server: cookies copied before, the remember-me
    cookie among them, open nothing afterwards, in this browser or in another."""
    base = server.url
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    thief = browser.new_context(viewport={"width": 1100, "height": 800})
    try:
        page = context.new_page()
        sign_up(page, base, "remember@example.com")
        add_note(page, "Private: the spare key is under the pot")
        page.get_by_role("button", name="Log out").click()
        log_in(page, "remember@example.com", remember=True)
        expect(page.get_by_text("Hello again, Robin.")).to_be_visible()
        copied: list[Any] = context.cookies()  # replayed as they are
        assert "remember_token" in {cookie["name"] for cookie in copied}

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_text("You are logged out.")).to_be_visible()
        assert "remember_token" not in {cookie["name"] for cookie in context.cookies()}
        page.goto(base)
        expect(page.get_by_role("button", name="Log out")).to_have_count(0)
        expect(page.get_by_text("spare key")).to_have_count(0)

        thief.add_cookies(copied)
        stolen = thief.new_page()
        stolen.goto(base)
        expect(stolen.get_by_role("link", name="Log in").first).to_be_visible()
        expect(stolen.get_by_role("button", name="Log out")).to_have_count(0)
        expect(stolen.get_by_text("spare key")).to_have_count(0)
        stolen.goto(f"{base}/account/")
        expect(stolen.get_by_text("remember@example.com")).to_have_count(0)
    finally:
        thief.close()
        context.close()
