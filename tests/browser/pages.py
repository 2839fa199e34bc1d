"""What a user does on nnote's pages, shared by the browser tests."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

PASSWORD = "browser pass 123"


def shot(page: Page, artifacts: Path, name: str) -> None:
    folder = artifacts / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def shots(page: Page, artifacts: Path, name: str) -> None:
    """The page as it is, in light, dark and on a phone (light and dark); back to light on
    the desktop viewport afterwards."""
    viewport = page.viewport_size
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        shot(page, artifacts, f"{name}-{scheme}")
    page.set_viewport_size({"width": 360, "height": 740})
    shot(page, artifacts, f"{name}-mobile-dark")
    page.emulate_media(color_scheme="light")
    shot(page, artifacts, f"{name}-mobile")
    if viewport is not None:
        page.set_viewport_size(viewport)


def draft_keys(page: Page) -> list[str]:
    """The note drafts this browser keeps (static/app.js), of any account."""
    return page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('nnote:draft:'))")


def sign_up(page: Page, base: str, email: str, first_name: str = "Robin") -> None:
    page.goto(f"{base}/auth/signup")
    send_sign_up(page, email, first_name)


def send_sign_up(page: Page, email: str, first_name: str = "Robin") -> None:
    """Fill in the sign-up page the browser is on, and send it."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("First name").fill(first_name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()


def log_in(page: Page, email: str, password: str = PASSWORD, remember: bool = False) -> None:
    """Fill in the login page the browser is on, and send it."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    if remember:
        page.get_by_label("Remember me").check()
    page.get_by_role("button", name="Log in").click()


def add_note(page: Page, text: str, title: str = "") -> None:
    if title:
        page.get_by_label("New note").click()  # the form opens: its title field shows
        page.locator("input#title").fill(title)
    page.get_by_label("New note").fill(text)
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_have_text("Note added.")
