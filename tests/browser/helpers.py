"""What browser tests do again and again: log in, check accessibility."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

from tests.factories import Person

AXE = Path(__file__).with_name("axe.min.js")
_AXE_SOURCE: str | None = None


async def login(page: Page, person: Person, *, next_path: str | None = None) -> None:
    """Log in through the login form as a person would, and wait for the page after it."""
    target = "/ui/login" + (f"?next={next_path}" if next_path else "")
    await page.goto(target)
    await page.fill("#email", person.email)
    await page.fill("#password", person.password)
    async with page.expect_navigation():
        await page.click("form[action='/ui/login'] button[type=submit]")


async def axe_violations(
    page: Page, *, impacts: tuple[str, ...] = ("serious", "critical")
) -> list[dict[str, Any]]:
    """Run the vendored axe-core on the current page; the violations of ``impacts``."""
    global _AXE_SOURCE
    if _AXE_SOURCE is None:
        _AXE_SOURCE = AXE.read_text(encoding="utf-8")
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # evaluate is not subject to the page's Content-Security-Policy, a <script> tag would be
        await page.evaluate(_AXE_SOURCE)
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in impacts]


async def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the current page."""
    found = await axe_violations(page)
    summary = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
    ]
    assert summary == [], f"{page.url}: " + "; ".join(summary)
