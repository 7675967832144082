"""Logging in and out in a real browser: the session cookie, throttling, CSRF, languages, a11y."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.async_api import BrowserContext, Page, expect

from app.db import Database
from app.enums import Role
from tests.browser.conftest import LiveServer
from tests.browser.helpers import assert_accessible, login
from tests.factories import Seed, add_person


async def test_login_lands_on_role_home_and_logout_ends_the_session(
    page: Page, context: BrowserContext, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"], name="Ada Analist")
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    await expect(page.locator("html")).to_have_attribute("lang", "nl")
    await expect(page.locator("h1")).to_have_text("Inloggen")
    await assert_accessible(page)

    await login(page, person)
    await expect(page).to_have_url(re.compile(r"/ui/kpis$"))
    await expect(page.get_by_test_id("person-name")).to_have_text("Ada Analist")
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["jp_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    await assert_accessible(page)

    async with page.expect_navigation():
        await page.get_by_role("button", name="Uitloggen").click()
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    # The old cookie no longer opens anything: the session was revoked on the server.
    await context.add_cookies([{**session, "expires": -1}])  # type: ignore[typeddict-item]  # a Cookie read back has no url, which add_cookies needs only without domain+path
    await page.goto("/ui/kpis")
    await expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/kpis$"))


async def test_wrong_password_is_refused_and_then_throttled(
    page: Page, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await page.goto("/ui/login?lang=en")
    for _ in range(5):
        await page.fill("#email", person.email)
        await page.fill("#password", "not the password")
        async with page.expect_navigation():
            await page.click("form[action='/ui/login'] button[type=submit]")
        await expect(page.get_by_role("alert")).to_have_text(
            re.compile("email address or password is not correct")
        )
    # The sixth attempt, now with the right password, is still refused, saying why.
    await page.fill("#email", person.email)
    await page.fill("#password", person.password)
    async with page.expect_navigation() as nav:
        await page.click("form[action='/ui/login'] button[type=submit]")
    response = await nav.value
    assert response is not None
    assert response.status == 429
    await expect(page.get_by_role("alert")).to_have_text(re.compile("Too many failed attempts"))
    await expect(page).to_have_url(re.compile(r"/ui/login$"))


async def test_a_post_without_the_csrf_token_is_refused(
    page: Page, context: BrowserContext, live_server: LiveServer, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    await login(page, person)
    # The same browser (its cookies) posting the logout form without the token: refused.
    response = await context.request.post(
        f"{live_server.url}/ui/logout", form={"anything": "x"}, max_redirects=0
    )
    assert response.status == 403
    assert "Dit formulier kwam niet van een pagina van deze site" in await response.text()
    # A wrong token is refused too, and the session is still alive afterwards.
    response = await context.request.post(
        f"{live_server.url}/ui/logout", form={"csrf_token": "x" * 43}, max_redirects=0
    )
    assert response.status == 403
    await page.goto("/ui/kpis")
    await expect(page).to_have_url(re.compile(r"/ui/kpis$"))


async def test_pages_speak_dutch_and_english_and_403_for_the_wrong_role(
    page: Page, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await login(page, person)
    await expect(page).to_have_url(re.compile(r"/ui/units$"))
    await expect(page.get_by_role("navigation", name="Hoofdmenu")).to_contain_text(
        "Mijn afdelingen"
    )
    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("navigation", name="Main navigation")).to_contain_text("My units")
    # The choice sticks (cookie) on the next page.
    response = await page.goto("/ui/board")
    assert response is not None
    assert response.status == 403
    await expect(page.locator("h1")).to_have_text(re.compile("No access"))
    await assert_accessible(page)
    await page.goto("/ui/board?lang=nl")
    await expect(page.locator("h1")).to_have_text(re.compile("Geen toegang"))


async def test_a_person_enrols_a_second_factor_and_then_logs_in_with_a_code(
    page: Page, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    await login(page, person, next_path="/ui/account")
    await page.get_by_role("link", name="Tweede factor instellen").click()
    await expect(page.locator(".qr svg")).to_be_visible()
    await assert_accessible(page)
    secret = await page.get_by_test_id("totp-secret").inner_text()
    await page.fill("#code", pyotp.TOTP(secret).now())
    async with page.expect_navigation():
        await page.get_by_role("button", name="Inschakelen").click()
    await expect(page).to_have_url(re.compile(r"/ui/board$"))
    async with page.expect_navigation():
        await page.get_by_role("button", name="Uitloggen").click()

    await login(page, person)
    await expect(page).to_have_url(re.compile(r"/ui/login/totp$"))
    await expect(page.locator("h1")).to_have_text("Vul uw code in")
    await assert_accessible(page)
    # The enrolment used this step's code, and a code counts once: the phone's next one.
    await page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    async with page.expect_navigation():
        await page.get_by_role("button", name="Verder").click()
    await expect(page).to_have_url(re.compile(r"/ui/board$"))
