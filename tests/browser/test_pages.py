"""Every page of the web foundation in Dutch and in English, each checked with axe-core."""

from __future__ import annotations

from playwright.async_api import Page, expect

from app.db import Database
from app.enums import Role
from tests.browser.helpers import assert_accessible, login
from tests.factories import Seed, add_person

# path -> expected status; a 403 and a 404 page are pages too.
PAGES = {
    "/ui/units": 200,
    "/ui/account": 200,
    "/ui/account/totp": 200,
    "/ui/kpis": 200,
    "/ui/admin": 403,
    "/ui/no-such-page": 404,
}


async def test_every_page_speaks_dutch_and_english_and_passes_axe(
    page: Page, db: Database, seed: Seed
) -> None:
    person = await add_person(
        db, frozenset({Role.PROVIDER, Role.ANALYST}), seed.organisations["vvt-leiden"]
    )
    await login(page, person)
    headings: dict[str, dict[str, str]] = {}
    for lang in ("nl", "en"):
        for path, status in PAGES.items():
            response = await page.goto(f"{path}?lang={lang}")
            assert response is not None
            assert response.status == status, path
            await expect(page.locator("html")).to_have_attribute("lang", lang)
            headings.setdefault(path, {})[lang] = await page.locator("h1").inner_text()
            await assert_accessible(page)
    for path, by_lang in headings.items():
        assert by_lang["nl"] != by_lang["en"], (path, by_lang)
