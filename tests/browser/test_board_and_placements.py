"""The triagist's board and the placement workflow in real headless Chromium, both backends.

Each test runs its own live server: the real-time hub of a server remembers the outbox ids it has
sent, and the per-test truncation starts those ids again from 1, which a server kept from an
earlier test would take for events it already sent.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select, update

from app.audit.models import AuditLog
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.placement.models import Placement
from tests.api.test_triage import ELV_HIGH
from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.browser.helpers import assert_accessible, login
from tests.conftest import auth
from tests.factories import Seed, add_person

# The board updates without a reload; how fast (the 2-second bar, 200 open boards) is measured
# by bench/run_board.py. Here a generous bound keeps a loaded test machine from failing the run.
LIVE_WITHIN_MS = 10_000


@pytest.fixture
def server(database_url: str, db: Database) -> Iterator[LiveServer]:
    settings = Settings(
        env="test",
        database_url=database_url,
        access_log=False,
        api_key_cache_seconds=0,
        db_pool_size=5,
        db_max_overflow=5,
    )
    live = LiveServer(settings)
    live.start()
    yield live
    live.stop()


async def new_page(browser: Browser, server: LiveServer, *, phone: bool = False) -> Page:
    context: BrowserContext = await browser.new_context(
        base_url=server.url,
        locale="nl-NL",
        timezone_id="Europe/Amsterdam",
        viewport={"width": 375, "height": 812} if phone else {"width": 1280, "height": 900},
        is_mobile=phone,
        has_touch=phone,
    )
    context.set_default_timeout(10_000)
    return await context.new_page()


async def connected(page: Page) -> None:
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")


async def test_an_open_board_shows_capacity_changes_and_holds_live(
    browser: Browser, server: LiveServer, db: Database, seed: Seed
) -> None:
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"], name="Tim Triage")
    page = await new_page(browser, server)
    await login(page, triagist)
    await expect(page).to_have_url(re.compile(r"/ui/board$"))
    await expect(page.locator("html")).to_have_attribute("lang", "nl")
    await expect(page.locator("h1")).to_have_text("Capaciteitsoverzicht")
    await connected(page)
    unit = seed.units["leiden-elv-high"]
    row = page.locator(f'tr[data-unit-id="{unit}"]')
    cell = page.locator('td.cell[data-care-type="elv_high"][data-subregion="leiden"]')
    await expect(row).to_have_attribute("data-available", "2")
    await expect(cell).to_have_attribute("data-available", "2")
    await assert_accessible(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "board.png"), full_page=True)
    await page.evaluate("() => { window.__sameDocument = true; }")

    # A provider lowers its free places on its phone-sized page, in a second browser context.
    planner = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"], name="Pien")
    phone = await new_page(browser, server, phone=True)
    await login(phone, planner)
    await expect(phone).to_have_url(re.compile(r"/ui/units$"))
    card = phone.locator(f"#unit-{unit}")
    await card.get_by_role("button", name="Eén vrije plaats minder").tap()
    started = time.monotonic()
    await card.get_by_role("button", name="Opslaan").tap()
    await expect(row).to_have_attribute("data-available", "1", timeout=LIVE_WITHIN_MS)
    assert time.monotonic() - started < LIVE_WITHIN_MS / 1000
    await expect(phone.locator(f"#unit-{unit} [data-available]")).to_have_attribute(
        "data-available", "1"
    )
    await phone.context.close()
    await expect(cell).to_have_attribute("data-available", "1", timeout=LIVE_WITHIN_MS)
    # no reload: the document is the same one
    assert await page.evaluate("() => window.__sameDocument === true")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", await page.locator("#live-last").inner_text())

    async with httpx.AsyncClient(base_url=server.url) as client:
        # A hold on that unit (a placement of the region) takes the last place, live too.
        body = {
            "origin_setting": "hospital_ward",
            "patient_identifier": "mrn-board-1",
            "birth_year": 1940,
            "sex": "female",
            "target_group": "somatic",
            "care_type": "elv_high",
            "urgency": {"system": "nts", "code": "U3"},
            "consent_given_at": "2026-01-01T00:00:00Z",
            "triage": {"care_type": "elv_high", "rule_set": "west-2026.1"},
        }
        created = await client.post(
            "/v1/placements", json=body, headers=auth(seed.keys["referrer"])
        )
        assert created.status_code == 201, created.text
        # the new referral in the region alerts the open board
        await expect(page.locator("#referral-alert")).to_be_visible()
        await expect(page.locator("#referral-alert")).to_contain_text("Nieuwe aanmelding")
        held = await client.post(
            f"/v1/placements/{created.json()['id']}/holds",
            json={"unit_id": str(unit)},
            headers=auth(seed.keys["triagist"]),
        )
        assert held.status_code == 201, held.text
        await expect(row).to_have_attribute("data-available", "0", timeout=LIVE_WITHIN_MS)
        await expect(row).to_contain_text("vastgehouden 1")

    # The same board in English, accessible too.
    await page.goto("/ui/board?lang=en&care_type=elv_high")
    await expect(page.locator("h1")).to_have_text("Board")
    await expect(page.locator("tr[data-unit-id]")).to_have_count(3)
    await assert_accessible(page)
    await page.context.close()


async def _answer(page: Page, answers: dict[str, object]) -> None:
    for question, value in answers.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        await page.check(f'input[name="q_{question}"][value="{text}"]')


async def test_a_referral_walks_from_the_desk_through_triage_and_hold_to_acceptance(
    browser: Browser, server: LiveServer, db: Database, seed: Seed
) -> None:
    desk = await add_person(db, Role.REFERRER, seed.organisations["hospital"], name="Dirk Desk")
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"], name="Tim Triage")
    planner = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    outsider = await add_person(db, Role.PROVIDER, seed.organisations["vvt-den-haag"])

    # The triagist's board is open when the referral comes in.
    board = await new_page(browser, server)
    await login(board, triagist)
    await connected(board)

    # The transfer desk sends a referral.
    referrer = await new_page(browser, server)
    await login(referrer, desk)
    await expect(referrer).to_have_url(re.compile(r"/ui/placements$"))
    await assert_accessible(referrer)
    await referrer.get_by_role("link", name="Nieuwe aanmelding").click()
    await expect(referrer.locator("h1")).to_have_text("Nieuwe aanmelding")
    await assert_accessible(referrer)
    await referrer.fill("#patient_identifier", "999990123")
    await referrer.fill("#birth_year", "1938")
    await referrer.select_option("#sex", "female")
    await referrer.select_option("#origin_setting", "hospital_ward")
    await referrer.fill("#medically_ready_at", "2026-12-04T08:30")
    await referrer.select_option("#care_type", "elv_high")
    await referrer.select_option("#target_group", "somatic")
    await referrer.select_option("#urgency_code", "U3")
    await referrer.check('input[name="consent"]')
    async with referrer.expect_navigation():
        await referrer.get_by_role("button", name="Aanmelding versturen").click()
    await expect(referrer.get_by_test_id("state")).to_have_text("aangemeld")
    placement_id = referrer.url.split("/ui/placements/")[1].split("?")[0]
    await expect(board.locator("#referral-alert")).to_be_visible()
    await board.context.close()

    # ...and follows its placements live on its list.
    await referrer.goto("/ui/placements?view=list")
    await connected(referrer)
    mine = referrer.locator(f'tr[data-placement-id="{placement_id}"]')
    await expect(mine).to_have_attribute("data-state", "requested")

    # The triagist takes it from the queue.
    page = await new_page(browser, server)
    await login(page, triagist, next_path="/ui/placements")
    card = page.locator(f'[data-column="requested"] [data-placement-id="{placement_id}"]')
    await expect(card).to_be_visible()
    await assert_accessible(page)
    await card.get_by_role("link").click()
    await expect(page.get_by_test_id("state")).to_have_text("aangemeld")
    # partial answers first: the advice lists what is still open
    await _answer(page, {"physician_assessed": True, "acute_psychiatry": False})
    advice = page.locator("#advice")
    await expect(advice.locator('[data-question="needs_specialist_care"]')).to_be_visible()
    await expect(advice).to_contain_text("Nog geen advies")
    await assert_accessible(page)
    await _answer(page, ELV_HIGH)
    await expect(advice.locator("[data-open-questions]")).to_have_attribute(
        "data-open-questions", "0"
    )
    await expect(advice).to_contain_text("ELV hoogcomplex")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Triage opslaan").click()
    await expect(page.get_by_test_id("state")).to_have_text("getrieerd")
    await expect(mine).to_have_attribute("data-state", "triaged")
    # the search for this patient, one click to hold
    hit = page.locator(f'tr[data-unit-id="{seed.units["leiden-elv-high"]}"]')
    await expect(hit).to_be_visible()
    await assert_accessible(page)
    async with page.expect_navigation():
        await hit.get_by_role("button").click()
    await expect(page.get_by_test_id("state")).to_have_text("aangeboden")
    await expect(page.locator("#panel [data-expires]")).to_have_text(re.compile(r"^\d+:\d\d$"))
    await expect(mine).to_have_attribute("data-state", "offered")

    # Another organisation's planner gets a 403 page, logged with its name.
    stranger = await new_page(browser, server)
    await login(stranger, outsider)
    response = await stranger.goto(f"/ui/placements/{placement_id}")
    assert response is not None
    assert response.status == 403
    await stranger.context.close()
    async with db.sessionmaker() as session:
        refused = (
            await session.scalars(
                select(AuditLog).where(
                    AuditLog.object_id == placement_id, AuditLog.outcome == "failure"
                )
            )
        ).all()
    assert [r.user_id for r in refused] == [outsider.id]

    # The receiving provider accepts the offer on its own page (/ui/units, its home).
    provider = await new_page(browser, server)
    await login(provider, planner)
    await expect(provider).to_have_url(re.compile(r"/ui/units$"))
    offer = provider.locator(f"#offer-{placement_id}")
    await offer.get_by_role("button", name="Accepteren").click()
    await expect(provider.locator(f"#offer-{placement_id}")).to_contain_text("Geaccepteerd")
    await provider.context.close()

    # The referrer's list and the triagist's open page show it without a reload.
    await expect(mine).to_have_attribute("data-state", "accepted")
    await expect(page.get_by_test_id("state")).to_have_text("geaccepteerd")
    events = page.locator("ol.timeline li")
    await expect(events).to_have_count(5)
    assert [await e.get_attribute("data-event") for e in await events.all()] == [
        "request_created",
        "medically_ready",
        "triaged",
        "offer_sent",
        "offer_accepted",
    ]
    await assert_accessible(page)
    await page.screenshot(path=str(SCREENSHOTS / "placement.png"), full_page=True)
    await page.goto(f"/ui/placements/{placement_id}?lang=en")
    await expect(page.get_by_test_id("state")).to_have_text("accepted")
    await assert_accessible(page)
    await page.goto("/ui/placements?tab=archive&lang=en")
    await assert_accessible(page)
    await page.context.close()
    await referrer.context.close()


async def test_a_board_that_lost_its_stream_says_so_and_catches_up_when_back(
    browser: Browser, server: LiveServer, db: Database, seed: Seed
) -> None:
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    page = await new_page(browser, server)
    await login(page, triagist)
    await connected(page)
    unit = seed.units["den-haag-elv-high"]
    row = page.locator(f'tr[data-unit-id="{unit}"]')
    await expect(row).to_have_attribute("data-available", "3")
    await page.evaluate(
        """() => {
          window.__states = [];
          const el = document.getElementById('live-status');
          new MutationObserver(() => window.__states.push(el.dataset.state))
            .observe(el, {attributes: true, attributeFilter: ['data-state']});
        }"""
    )
    # The connection is cut (as a network drop does) and a change is made meanwhile.
    await page.evaluate(
        "() => document.querySelector('[sse-connect]')['htmx-internal-data'].sseEventSource.close()"
    )
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.put(
            f"/v1/units/{unit}/capacity", json={"free": 1}, headers=auth(seed.other_provider_key)
        )
    assert r.status_code == 200, r.text
    await page.wait_for_timeout(500)
    await expect(row).to_have_attribute("data-available", "3")  # nothing arrives while cut
    await page.evaluate(
        "() => { const s = document.querySelector('[sse-connect]')['htmx-internal-data']"
        ".sseEventSource; s.onerror(new Event('error')); }"
    )
    # The page says it is reconnecting, reconnects by itself and catches up without a reload.
    await connected(page)
    await expect(row).to_have_attribute("data-available", "1")
    states = await page.evaluate("() => window.__states")
    assert states[:1] == ["reconnecting"]
    assert states[-1] == "connected"
    await page.context.close()


async def test_the_board_shows_open_cases_with_their_owner_live(
    browser: Browser, server: LiveServer, db: Database, seed: Seed
) -> None:
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"], name="Tim Triage")
    page = await new_page(browser, server)
    await login(page, triagist)
    await expect(page).to_have_url(re.compile(r"/ui/board$"))
    await connected(page)
    panel = page.locator("#open-cases")
    await expect(panel).to_contain_text("Geen open plaatsingen.")

    def referral(care_type: str, number: str) -> dict[str, object]:
        return {
            "origin_setting": "home",
            "patient_identifier": number,
            "birth_year": 1940,
            "sex": "female",
            "target_group": "somatic",
            "care_type": care_type,
            "urgency": {"system": "nts", "code": "U3"},
            "consent_given_at": "2026-01-01T00:00:00Z",
        }

    async with httpx.AsyncClient(base_url=server.url) as client:
        referrer = auth(seed.keys["referrer"])
        owned = await client.post(
            "/v1/placements", json=referral("elv_high", "mrn-cases-1"), headers=referrer
        )
        crisis = await client.post(
            "/v1/placements", json=referral("wlz_crisis", "mrn-cases-2"), headers=referrer
        )
        assert owned.status_code == crisis.status_code == 201, crisis.text
        crisis_id = crisis.json()["id"]
        owner_name = owned.json()["owner"]["name"]
        # Both appear without a reload: the Wlz-crisis case has no owner (the RAP takes it).
        crisis_row = panel.locator(f'tr[data-placement-id="{crisis_id}"]')
        await expect(crisis_row).to_have_attribute("data-owner", "", timeout=LIVE_WITHIN_MS)
        await expect(crisis_row).to_contain_text("Geen casushouder")
        owned_row = panel.locator(f'tr[data-placement-id="{owned.json()["id"]}"]')
        await expect(owned_row).to_have_attribute("data-owner", owner_name)
        await expect(panel).to_have_attribute("data-unowned", "1")
        await expect(panel).to_have_attribute("data-unowned-overdue", "0")

        # Nobody has taken it for an hour: the next refresh flags it, first in the panel.
        async with db.engine.begin() as conn:
            await conn.execute(
                update(Placement)
                .where(Placement.id == uuid.UUID(crisis_id))
                .values(created_at=utcnow() - timedelta(hours=1))
            )
        await page.evaluate("() => htmx.trigger(document.body, 'jp:resync')")
        await expect(crisis_row).to_have_attribute("data-unowned-overdue", "true")
        await expect(panel.locator("tbody tr").first).to_have_attribute(
            "data-placement-id", crisis_id
        )
        await expect(crisis_row).to_contain_text("te lang zonder casushouder")
        await assert_accessible(page)

        # A triagist takes the case: the panel follows live.
        taken = await client.put(
            f"/v1/placements/{crisis_id}/owner",
            json={"action": "take"},
            headers=auth(seed.keys["triagist"]),
        )
        assert taken.status_code == 200, taken.text
        await expect(crisis_row).to_have_attribute(
            "data-owner", taken.json()["owner"]["name"], timeout=LIVE_WITHIN_MS
        )
        await expect(crisis_row).to_have_attribute("data-unowned-overdue", "false")
        await expect(panel).to_have_attribute("data-unowned", "0")
    await page.context.close()
