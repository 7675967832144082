"""The administrator's console in Chromium: users, keys (a revoked key gets 401), a broken rule
set's report, a stale unit edit's conflict; every page in Dutch and English passes axe-core."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import FilePayload, Page, expect

from app.db import Database
from app.enums import Role
from app.triage.service import _builtin_source
from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.browser.helpers import assert_accessible, login
from tests.factories import Seed, add_person

PAGES = (
    "/ui/admin",
    "/ui/admin/registry",
    "/ui/admin/users",
    "/ui/admin/keys",
    "/ui/admin/webhooks",
    "/ui/admin/rules",
    "/ui/admin/rules/west-2026.1",
    "/ui/admin/audit",
)


async def _api(
    live_server: LiveServer, method: str, path: str, key: str, **kw: object
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        return await api.request(
            method,
            path,
            headers={"Authorization": f"Bearer {key}"},
            **kw,  # type: ignore[arg-type]
        )


async def test_an_admin_creates_a_user_and_a_key_revokes_it_and_sees_rule_and_edit_problems(
    page: Page, live_server: LiveServer, db: Database, seed: Seed
) -> None:
    admin = await add_person(db, Role.ADMIN, None, name="Ada Beheer")
    await login(page, admin)
    await expect(page).to_have_url(re.compile(r"/ui/admin$"))
    await expect(
        page.get_by_role("heading", name="Gezondheid van deze installatie")
    ).to_be_visible()
    await expect(page.get_by_text("Database bereikbaar")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "admin-console.png"), full_page=True)

    # A user with a generated password, shown once.
    await page.get_by_role("link", name="Gebruikers").click()
    await page.get_by_text("Nieuwe gebruiker").click()
    await page.fill("#new-user-name", "Pien Planner")
    await page.fill("#new-user-email", "pien.planner@example.nl")
    await page.select_option("#new-user-organisation_id", str(seed.organisations["vvt-leiden"]))
    await page.check("#new-user-roles-provider")
    await page.get_by_role("button", name="Gebruiker aanmaken", exact=True).click()
    await expect(page.get_by_test_id("new-password")).to_be_visible()
    await expect(page.locator("table")).to_contain_text("pien.planner@example.nl")

    # A key, shown once with a copy button; it works until it is revoked.
    await page.get_by_role("link", name="API-sleutels").click()
    await page.get_by_text("Een sleutel uitgeven").click()
    await page.fill("#key-name", "EPD Leiden")
    await page.select_option("#key-organisation_id", str(seed.organisations["vvt-leiden"]))
    await page.check("#key-roles-provider")
    await page.get_by_role("button", name="Sleutel uitgeven", exact=True).click()
    shown = page.get_by_test_id("new-key")
    await expect(shown).to_be_visible()
    key = (await shown.inner_text()).strip()
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.get_by_role("button", name="Kopiëren").click()
    await expect(page.get_by_role("button", name="Gekopieerd")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    me = await _api(live_server, "GET", "/v1/me", key)
    assert me.status_code == 200, me.text
    row = page.locator(f"tr[data-key-id='{me.json()['id']}']")
    await row.get_by_role("button", name="Intrekken").click()
    await expect(page.get_by_role("status").first).to_contain_text("ingetrokken")
    await expect(page.get_by_test_id("new-key")).to_have_count(0)
    assert (await _api(live_server, "GET", "/v1/me", key)).status_code == 401

    # A broken rule set: refused, the report names rule and line.
    source = _builtin_source().replace("version: west-2026.1", "version: west-broken", 1)
    source = source.replace("    outcome: district_nursing\n", "    outcome: district_nurse\n", 1)
    line = source[: source.index("    outcome: district_nurse\n")].count("\n") + 1
    await page.get_by_role("link", name="Triageregelsets").click()
    upload: FilePayload = {
        "name": "west.yaml",
        "mimeType": "application/yaml",
        "buffer": source.encode(),
    }
    await page.set_input_files("#rules-file", files=[upload])
    await page.get_by_role("button", name="Laden en controleren").click()
    report = page.get_by_test_id("refused")
    await expect(report).to_be_visible()
    await expect(report.locator("tbody tr").first).to_contain_text(str(line))
    await expect(report.locator("tbody tr").first).to_contain_text("R11")
    await expect(report).to_contain_text("district_nurse")

    # A unit edited with a stale version: the conflict shows next to the form, nothing is saved.
    unit = seed.units["leiden-grz"]
    await page.goto(f"/ui/admin/registry/units/{unit}")
    changed = await _api(
        live_server, "PATCH", f"/v1/units/{unit}", seed.keys["admin"], json={"name": "GRZ API"}
    )
    assert changed.status_code == 200, changed.text
    await page.fill("#edit-name", "GRZ console")
    await page.get_by_role("button", name="Opslaan").click()
    conflict = page.get_by_test_id("conflict")
    await expect(conflict).to_be_visible()
    await expect(conflict).to_contain_text("Er is niets opgeslagen")
    current = await _api(live_server, "GET", f"/v1/units/{unit}", seed.keys["admin"])
    assert current.json()["name"] == "GRZ API"
    await assert_accessible(page)


async def test_every_console_page_in_dutch_and_english_passes_axe_and_others_get_403(
    page: Page, db: Database, seed: Seed
) -> None:
    admin = await add_person(db, Role.ADMIN, None)
    await login(page, admin)
    headings: dict[str, dict[str, str]] = {}
    for lang in ("nl", "en"):
        for path in PAGES:
            response = await page.goto(f"{path}?lang={lang}")
            assert response is not None
            assert response.status == 200, path
            await expect(page.locator("html")).to_have_attribute("lang", lang)
            headings.setdefault(path, {})[lang] = await page.locator("h1").inner_text()
            await assert_accessible(page)
    # the create forms open (their fields are checked too)
    await page.goto("/ui/admin/registry?lang=en")
    for summary in await page.locator("details > summary").all():
        await summary.click()
    await assert_accessible(page)
    for path, by_lang in headings.items():
        if path != "/ui/admin/rules/west-2026.1":  # "Regelset" vs "Rule set" with the version
            assert by_lang["nl"] != by_lang["en"], (path, by_lang)

    await page.context.clear_cookies()
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["vvt-leiden"])
    await login(page, triagist)
    for path in ("/ui/admin", "/ui/admin/audit"):
        response = await page.goto(path)
        assert response is not None
        assert response.status == 403
        await expect(page.locator("h1")).to_contain_text("Geen toegang")
        await assert_accessible(page)
