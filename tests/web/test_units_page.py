"""The provider's capacity page over HTTP: reports, validation next to fields, offers, 403s."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import select

from app.audit.models import AuditLog
from app.config import Settings
from app.db import Database
from app.enums import Role
from tests.conftest import auth
from tests.factories import GRZ, Seed, add_person, create_placements
from tests.web.helpers import web_login


async def _hold(client: httpx.AsyncClient, seed: Seed, placement_id: uuid.UUID) -> None:
    r = await client.post(
        f"/v1/placements/{placement_id}/holds",
        json={"unit_id": str(seed.units["leiden-grz"])},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 201, r.text


async def test_a_plain_form_post_reports_capacity_that_the_api_shows(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"], name="Pien")
    csrf = await web_login(client, person)
    r = await client.get("/ui/units")
    assert r.status_code == 200
    forms = re.findall(r'data-unit-id="([0-9a-f-]+)"', r.text)
    assert sorted(forms) == sorted(
        [str(seed.units["leiden-elv-high"]), str(seed.units["leiden-grz"])]
    )
    unit = seed.units["leiden-grz"]
    r = await client.post(
        f"/ui/units/{unit}/capacity",
        data={"free": "1", "expected_free_24h": "3", "csrf_token": csrf},
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/ui/units?saved={unit}#unit-{unit}"
    history = await client.get(
        f"/v1/units/{unit}/capacity-history", headers=auth(seed.keys["triagist"])
    )
    latest = history.json()["items"][0]  # newest first
    assert latest["free"] == 1
    assert latest["expected_free_24h"] == 3
    assert latest["source"] == "web"
    page = (await client.get(r.headers["location"])).text
    card = page.split(f'id="unit-{unit}"')[1].split("</article>")[0]
    assert 'data-available="1"' in card
    assert "door Pien" in card
    assert "Topaz" in page  # the organisation in the header
    assert "Opgeslagen om" in card


async def test_service_errors_are_shown_next_to_their_fields(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    csrf = await web_login(client, person)
    unit = seed.units["leiden-elv-high"]  # staffed capacity 10
    r = await client.post(
        f"/ui/units/{unit}/capacity?lang=en",
        data={"free": "11", "expected_free_24h": "x", "csrf_token": csrf},
    )
    assert r.status_code == 422
    assert f'id="expected-{unit}-error"' in r.text
    assert "Enter a whole number of 0 or more." in r.text
    r = await client.post(
        f"/ui/units/{unit}/capacity?lang=en",
        data={"free": "11", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert r.text.lstrip().startswith("{#") is False
    assert "<html" not in r.text  # the card alone, swapped in place
    assert f'id="free-{unit}-error"' in r.text
    assert "More than the staffed capacity (10)." in r.text
    assert 'aria-invalid="true"' in r.text
    history = await client.get(
        f"/v1/units/{unit}/capacity-history", headers=auth(seed.keys["triagist"])
    )
    assert [i["free"] for i in history.json()["items"]] == [2]  # only the seed's report


async def test_another_organisations_unit_and_offer_get_403_pages_and_log_rows(
    client: httpx.AsyncClient, db: Database, seed: Seed, settings: Settings
) -> None:
    [pid] = await create_placements(db, settings, seed, 1, **GRZ)
    await _hold(client, seed, pid)
    other = await add_person(db, Role.PROVIDER, seed.organisations["vvt-den-haag"])
    csrf = await web_login(client, other)
    page = await client.get("/ui/units")
    assert str(pid) not in page.text  # the offer is not on its units
    r = await client.post(
        f"/ui/units/{seed.units['leiden-grz']}/capacity",
        data={"free": "0", "csrf_token": csrf},
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "Geen toegang" in r.text
    r = await client.post(f"/ui/units/offers/{pid}/accept", data={"csrf_token": csrf})
    assert r.status_code == 403
    async with db.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(AuditLog).where(
                    AuditLog.object_id == str(pid), AuditLog.outcome == "failure"
                )
            )
        ).all()
    assert [(r.event_code, r.user_id, r.user_display) for r in rows] == [
        ("web.accept_offer", other.id, f"{other.name} <{other.email}>")
    ]
    assert rows[0].patient_key is not None


async def test_the_provider_declines_one_offer_and_accepts_another(
    client: httpx.AsyncClient, db: Database, seed: Seed, settings: Settings
) -> None:
    first, second = await create_placements(db, settings, seed, 2, **GRZ)
    await _hold(client, seed, first)
    await _hold(client, seed, second)
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    csrf = await web_login(client, person)
    page = (await client.get("/ui/units?lang=en")).text
    assert page.count('class="offer-card"') == 2
    assert re.search(
        r"Offer expires\s*<time datetime=\"[^\"]+\" data-countdown>in \d+ minutes", page
    )
    r = await client.post(
        f"/ui/units/offers/{first}/decline", data={"reason": "other", "csrf_token": csrf}
    )
    assert r.status_code == 422  # 'other' needs an explanation
    r = await client.post(
        f"/ui/units/offers/{first}/decline",
        data={"reason": "staff_shortage", "csrf_token": csrf},
    )
    assert r.status_code == 303
    r = await client.post(f"/ui/units/offers/{second}/accept", data={"csrf_token": csrf})
    assert r.status_code == 303
    page = (await client.get(r.headers["location"] + "&lang=en")).text
    assert "Offer accepted." in page
    assert "Accepted; awaiting admission" in page
    states = {
        pid: (
            await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["triagist"]))
        ).json()["state"]
        for pid in (first, second)
    }
    assert states == {first: "triaged", second: "accepted"}
    events = (
        await client.get(f"/v1/placements/{first}/events", headers=auth(seed.keys["triagist"]))
    ).json()
    items = events["items"] if isinstance(events, dict) else events
    decline = [e for e in items if e["type"] == "offer_declined"]
    assert [(e["reason"], e["actor_key_id"]) for e in decline] == [
        ("staff_shortage", str(person.id))
    ]
    async with db.sessionmaker() as session:
        logged = (
            await session.scalars(
                select(AuditLog.event_code).where(
                    AuditLog.user_id == person.id, AuditLog.object_id == str(second)
                )
            )
        ).all()
    assert "placement.accept" in logged
    assert "placement.search" in logged
