"""The provider's capacity page in Chromium: a phone, two taps, the keyboard alone, a11y."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from app.config import Settings
from app.db import Database
from app.enums import Role
from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.browser.helpers import assert_accessible, login
from tests.factories import GRZ, Seed, add_person, create_placements

PHONE: ViewportSize = {"width": 375, "height": 812}


@pytest.fixture
async def phone(browser: Browser, live_server: LiveServer) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(
        base_url=live_server.url,
        locale="nl-NL",
        viewport=PHONE,
        device_scale_factor=2,
        has_touch=True,
        is_mobile=True,
    )
    ctx.set_default_timeout(10_000)
    yield ctx
    await ctx.close()


async def _latest_report(live_server: LiveServer, seed: Seed, unit: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        r = await api.get(
            f"/v1/units/{unit}/capacity-history",
            headers={"Authorization": f"Bearer {seed.keys['triagist']}"},
        )
    assert r.status_code == 200, r.text
    latest: dict[str, object] = r.json()["items"][0]
    return latest


async def test_a_provider_lowers_free_places_on_a_phone_in_two_taps(
    phone: BrowserContext, live_server: LiveServer, db: Database, seed: Seed, settings: Settings
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"], name="Pien")
    [offered] = await create_placements(db, settings, seed, 1, **GRZ)
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        r = await api.post(
            f"/v1/placements/{offered}/holds",
            json={"unit_id": str(seed.units["leiden-grz"])},
            headers={"Authorization": f"Bearer {seed.keys['triagist']}"},
        )
        assert r.status_code == 201, r.text
    page = await phone.new_page()
    await login(page, person)
    await expect(page).to_have_url(re.compile(r"/ui/units$"))
    unit = str(seed.units["leiden-elv-high"])
    card = page.locator(f"#unit-{unit}")
    await expect(card.locator("[data-available]")).to_have_attribute("data-available", "2")
    # Built for the phone: nothing wider than the screen, every control a 44 px tap target.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for control in await page.locator(".unit-card button, .site-header button").all():
        box = await control.bounding_box()
        assert box is not None
        assert box["height"] >= 44, await control.inner_text()
        assert box["width"] >= 44, await control.inner_text()

    await card.get_by_role("button", name="Eén vrije plaats minder").tap()
    await card.get_by_role("button", name="Opslaan").tap()
    card = page.locator(f"#unit-{unit}")  # swapped in place by htmx
    await expect(card.get_by_role("status")).to_contain_text("Opgeslagen om")
    await expect(card.locator("[data-available]")).to_have_attribute("data-available", "1")
    await expect(card).to_contain_text("door Pien")
    latest = await _latest_report(live_server, seed, unit)
    assert (latest["free"], latest["source"]) == (1, "web")
    await assert_accessible(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "provider-units-phone.png"), full_page=True)

    # The offer on its GRZ unit: accepted with one tap.
    offer = page.locator(f"#offer-{offered}")
    await expect(offer.locator("time[data-countdown]")).to_have_text(re.compile(r"^over \d+ min"))
    async with page.expect_navigation():
        await offer.get_by_role("button", name="Accepteren").tap()
    await expect(page.get_by_role("status").first).to_have_text(re.compile("Aanbod geaccepteerd"))
    await expect(page.locator(f"#offer-{offered}")).to_contain_text("wacht op opname")

    await page.goto("/ui/units?lang=en")
    await expect(page.get_by_role("heading", level=2, name="Free places")).to_be_visible()
    await expect(page.locator(f"#unit-{unit}")).to_contain_text(
        "Reported less than a minute ago by Pien"
    )
    await assert_accessible(page)


async def _tab_to(page: Page, selector: str, *, limit: int = 40) -> int:
    """Press Tab until the focused element matches ``selector``; the number of presses."""
    for presses in range(1, limit + 1):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"{selector} not reached with {limit} Tab presses")


async def test_the_keyboard_alone_logs_in_and_updates_a_unit(
    page: Page, live_server: LiveServer, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await page.goto("/ui/login")
    await _tab_to(page, "#email")
    await page.keyboard.type(person.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(person.password)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/ui/units$"))
    unit = str(seed.units["leiden-grz"])  # 4 free
    # The skip link comes first and leads into the main landmark.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.classList.contains('skip-link')")
    await page.keyboard.press("Enter")
    await _tab_to(page, f"button[data-step='1'][data-for='free-{unit}']")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Enter")
    await expect(page.locator(f"#free-{unit}")).to_have_value("6")
    await page.keyboard.press("Shift+Tab")
    assert await page.evaluate("document.activeElement.id") == f"free-{unit}"
    await page.keyboard.press("ArrowDown")
    await _tab_to(page, f"#unit-{unit} button[type=submit]", limit=5)
    await page.keyboard.press("Enter")
    await expect(page.locator(f"#unit-{unit} [role=status]")).to_contain_text("Opgeslagen")
    await expect(page.locator(f"#unit-{unit} [data-available]")).to_have_attribute(
        "data-available", "5"
    )
    latest = await _latest_report(live_server, seed, unit)
    assert latest["free"] == 5
    # Focus outline is visible on the focused control (WCAG 2.4.7).
    await page.keyboard.press("Shift+Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
