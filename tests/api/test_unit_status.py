"""A unit closed to admissions (PUT /v1/units/{id}/status): search, holds, history, the
capacity KPI's closed unit-days, the stream and webhooks, on both databases."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.capacity import status as status_service
from app.capacity.schemas import UnitStatusIn
from app.config import Settings
from app.db import Database, utcnow
from app.enums import NotAcceptingReason
from app.kpi import formulas as f
from app.webhooks.transport import WebhookClient
from tests.api.test_stream import open_stream, serve
from tests.api.test_webhooks import LOCAL, Receiver, drain, subscribe
from tests.api.test_webhooks import serve as serve_receiver
from tests.conftest import auth
from tests.factories import ADMIN, Seed, create_placements
from tests.helpers import assert_problem, pointers

UNIT = "leiden-elv-high"  # Topaz (the provider key's organisation), 2 free


def status_path(seed: Seed, unit: str = UNIT) -> str:
    return f"/v1/units/{seed.units[unit]}/status"


async def close(
    client: httpx.AsyncClient, seed: Seed, body: dict[str, Any], unit: str = UNIT
) -> httpx.Response:
    return await client.put(status_path(seed, unit), json=body, headers=auth(seed.keys["provider"]))


async def search(client: httpx.AsyncClient, seed: Seed, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", **params},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def held(db: Database, unit: uuid.UUID) -> int:
    u = unit.hex if db.dialect == "sqlite" else unit
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT held FROM unit_capacity WHERE unit_id = :u"), {"u": u}
        )
        return int(result.scalar_one())


async def set_status_at(db: Database, unit: uuid.UUID, body: UnitStatusIn, at: datetime) -> None:
    """A status change written as if at ``at`` (the API always uses the current time)."""
    async with db.sessionmaker() as session:
        await status_service.set_status(session, ADMIN, unit, body, now=at)
        await session.commit()


async def test_close_refuses_holds_and_marks_search_until_reopened_by_hand(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    unit = seed.units[UNIT]
    until = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    r = await close(
        client,
        seed,
        {
            "accepting": False,
            "reason": "outbreak",
            "detail": "norovirus",
            "until": until.isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() | {"changed_at": None} == {
        "unit_id": str(unit),
        "accepting": False,
        "not_accepting_reason": "outbreak",
        "not_accepting_detail": "norovirus",
        "not_accepting_until": until.isoformat().replace("+00:00", "Z"),
        "changed_at": None,
    }

    # Search: left out by default; with include_not_accepting listed after the open units.
    default = await search(client, seed)
    assert str(unit) not in [h["unit_id"] for h in default]
    assert default
    assert all(h["accepting"] for h in default)
    everything = await search(client, seed, include_not_accepting="true")
    assert [h["unit_id"] for h in everything[:-1]] == [h["unit_id"] for h in default]
    last = everything[-1]
    assert (last["unit_id"], last["accepting"], last["not_accepting_reason"]) == (
        str(unit),
        False,
        "outbreak",
    )
    assert last["not_accepting_detail"] == "norovirus"
    assert datetime.fromisoformat(last["not_accepting_until"]) == until
    assert last["available"] == 2

    # A hold is refused with 409 naming the reason; nothing is held.
    pid, other = await create_placements(db, settings, seed, 2)
    r = await client.post(
        f"/v1/placements/{pid}/holds",
        json={"unit_id": str(unit)},
        headers=auth(seed.keys["triagist"]),
    )
    body = assert_problem(r, 409, type_slug="unit-not-accepting")
    assert "outbreak: norovirus" in body["detail"]
    assert (body["reason"], body["reason_detail"], body["unit_id"]) == (
        "outbreak",
        "norovirus",
        str(unit),
    )
    assert datetime.fromisoformat(body["until"]) == until
    assert await held(db, unit) == 0
    placement = await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["triagist"]))
    assert placement.json()["state"] == "triaged"
    # The search for this placement's patient marks it the same way.
    path = f"/v1/placements/{pid}/availability"
    for include, want in (("false", []), ("true", [(False, "outbreak")])):
        r = await client.get(
            path, params={"include_not_accepting": include}, headers=auth(seed.keys["triagist"])
        )
        assert r.status_code == 200, r.text
        marked = [h for h in r.json()["items"] if h["unit_id"] == str(unit)]
        assert [(h["accepting"], h["not_accepting_reason"]) for h in marked] == want

    # Reopened by hand: the hold goes through.
    r = await close(client, seed, {"accepting": True})
    assert r.status_code == 200, r.text
    assert (r.json()["accepting"], r.json()["not_accepting_reason"]) == (True, None)
    assert str(unit) in [h["unit_id"] for h in await search(client, seed)]
    r = await client.post(
        f"/v1/placements/{other}/holds",
        json={"unit_id": str(unit)},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 201, r.text
    assert await held(db, unit) == 1

    # The history keeps both changes, newest first.
    r = await client.get(f"/v1/units/{unit}/status-history", headers=auth(seed.keys["triagist"]))
    assert r.status_code == 200, r.text
    changes = r.json()["items"]
    assert [(c["accepting"], c["reason"], c["detail"]) for c in changes] == [
        (True, None, None),
        (False, "outbreak", "norovirus"),
    ]
    r = await client.get(f"/v1/units/{unit}/status", headers=auth(seed.keys["triagist"]))
    assert r.json()["accepting"] is True


async def test_a_closed_unit_reopens_by_itself_at_until(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    unit = seed.units[UNIT]
    now = utcnow()
    # Closed two hours ago until one hour ago: open again now, without any write since.
    await set_status_at(
        db,
        unit,
        UnitStatusIn(
            accepting=False, reason=NotAcceptingReason.RENOVATION, until=now - timedelta(hours=1)
        ),
        now - timedelta(hours=2),
    )
    # Another unit closed an hour ago until an hour from now: still closed.
    grz = seed.units["leiden-grz"]
    await set_status_at(
        db,
        grz,
        UnitStatusIn(
            accepting=False, reason=NotAcceptingReason.FULL, until=now + timedelta(hours=1)
        ),
        now - timedelta(hours=1),
    )
    r = await client.get(f"/v1/units/{unit}/status", headers=auth(seed.keys["triagist"]))
    assert (r.json()["accepting"], r.json()["not_accepting_until"]) == (True, None)
    r = await client.get(f"/v1/units/{grz}/status", headers=auth(seed.keys["triagist"]))
    assert (r.json()["accepting"], r.json()["not_accepting_reason"]) == (False, "full")
    hit = [h for h in await search(client, seed) if h["unit_id"] == str(unit)]
    assert [(h["accepting"], h["not_accepting_reason"]) for h in hit] == [(True, None)]
    assert await search(client, seed, care_type="grz") == []

    (pid,) = await create_placements(db, settings, seed, 1)
    r = await client.post(
        f"/v1/placements/{pid}/holds",
        json={"unit_id": str(unit)},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 201, r.text
    (grz_pid,) = await create_placements(
        db,
        settings,
        seed,
        1,
        care_type="grz",
        triage={"care_type": "grz", "rule_set": "west-2026.1"},
    )
    r = await client.post(
        f"/v1/placements/{grz_pid}/holds",
        json={"unit_id": str(grz)},
        headers=auth(seed.keys["triagist"]),
    )
    assert_problem(r, 409, type_slug="unit-not-accepting")


async def test_refused_status_changes(client: httpx.AsyncClient, seed: Seed) -> None:
    soon = (utcnow() + timedelta(hours=4)).isoformat()
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"accepting": False}, ["#/reason"]),
        ({"accepting": False, "reason": "other"}, ["#/detail"]),
        ({"accepting": False, "reason": "other", "detail": "  "}, ["#/detail"]),
        ({"accepting": False, "reason": "full", "until": "2020-01-01T00:00:00Z"}, ["#/until"]),
        ({"accepting": True, "reason": "full", "until": soon}, ["#/reason", "#/until"]),
        ({"accepting": False, "reason": "holiday"}, ["#/reason"]),
    ]
    for body, wanted in cases:
        r = await close(client, seed, body)
        assert pointers(assert_problem(r, 422)) == wanted, body
    # Another organisation's unit: 403; a referrer: 403; an unknown unit: 404.
    r = await close(client, seed, {"accepting": False, "reason": "full"}, unit="den-haag-elv-high")
    assert_problem(r, 403)
    r = await client.put(
        status_path(seed),
        json={"accepting": False, "reason": "full"},
        headers=auth(seed.keys["referrer"]),
    )
    assert_problem(r, 403)
    r = await client.put(
        f"/v1/units/{uuid.uuid4()}/status",
        json={"accepting": False, "reason": "full"},
        headers=auth(seed.keys["admin"]),
    )
    assert_problem(r, 404)
    # An admin may close any unit; no reason needs an until.
    r = await client.put(
        status_path(seed, "den-haag-elv-high"),
        json={"accepting": False, "reason": "staff_shortage"},
        headers=auth(seed.keys["admin"]),
    )
    assert (r.status_code, r.json()["not_accepting_until"]) == (200, None), r.text
    r = await client.get(
        f"/v1/units/{seed.units[UNIT]}/status-history",
        params={"cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5"},
        headers=auth(seed.keys["admin"]),
    )
    assert pointers(assert_problem(r, 422)) == ["query:cursor"]


async def test_capacity_kpi_counts_closed_unit_days_per_reason(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    day = date.today() - timedelta(days=10)  # noqa: DTZ011 - a local date is what the KPI takes
    midnight = f.local_midnight(day)
    # Outbreak from an hour before the midnight starting ``day`` to an hour after the one two
    # days later: closed at three census midnights (day, day + 1, day + 2).
    await set_status_at(
        db,
        seed.units[UNIT],
        UnitStatusIn(
            accepting=False,
            reason=NotAcceptingReason.OUTBREAK,
            until=midnight + timedelta(days=2, hours=1),
        ),
        midnight - timedelta(hours=1),
    )
    # Staff shortage from just after a midnight, reopened by hand just after the next one: one
    # census midnight (day + 1).
    await set_status_at(
        db,
        seed.units["leiden-grz"],
        UnitStatusIn(accepting=False, reason=NotAcceptingReason.STAFF_SHORTAGE),
        midnight + timedelta(minutes=1),
    )
    await set_status_at(
        db,
        seed.units["leiden-grz"],
        UnitStatusIn(accepting=True),
        f.local_midnight(day + timedelta(days=1)) + timedelta(minutes=1),
    )
    params = {
        "from": (day - timedelta(days=1)).isoformat(),
        "to": (day + timedelta(days=5)).isoformat(),
    }
    r = await client.get(
        "/v1/kpis/capacity",
        params={**params, "group_by": "care_type"},
        headers=auth(seed.keys["analyst"]),
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    total = answer["total"]
    assert (total["closed_outbreak"], total["closed_staff_shortage"]) == (3, 1)
    assert (total["closed_unit_days"], total["closed_full"], total["closed_other"]) == (4, 0, 0)
    rows = {row["group"]: row for row in answer["rows"]}
    assert (rows["elv_high"]["closed_outbreak"], rows["grz"]["closed_staff_shortage"]) == (3, 1)
    # A period that ends before the closure counts none.
    r = await client.get(
        "/v1/kpis/capacity",
        params={"from": (day - timedelta(days=3)).isoformat(), "to": day.isoformat()},
        headers=auth(seed.keys["analyst"]),
    )
    assert r.json()["total"]["closed_unit_days"] == 0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The tests' webhook receivers listen on loopback, which only an allow-list admits."""
    return settings.model_copy(update={"webhook_allow_hosts": LOCAL})


async def test_status_change_reaches_stream_and_webhooks(
    app: FastAPI, client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    receiver = Receiver()
    async with serve_receiver(receiver) as url, WebhookClient(allow_hosts=LOCAL) as http:
        await subscribe(client, seed.keys["provider"], url + "/status", ["unit.status_changed"])
        async with serve(app) as base, open_stream(base, seed.keys["triagist"]) as stream:
            r = await close(client, seed, {"accepting": False, "reason": "full"})
            assert r.status_code == 200, r.text
            frame = await stream.until("unit.status_changed")
        await drain(db, http)
    data = orjson.loads(frame[-1]["data"])["data"]
    assert (data["unit_id"], data["accepting"], data["not_accepting_reason"]) == (
        str(seed.units[UNIT]),
        False,
        "full",
    )
    assert data["subregion_id"] == str(seed.subregions["leiden"])
    assert [h["juisteplek-event-type"] for h, _ in receiver.requests] == ["unit.status_changed"]
    delivered = orjson.loads(receiver.requests[0][1])
    assert delivered["data"]["not_accepting_reason"] == "full"


async def test_the_sweep_records_and_announces_a_reopening_at_until(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    unit = seed.units[UNIT]
    now = utcnow()
    until = now - timedelta(minutes=30)
    await set_status_at(
        db,
        unit,
        UnitStatusIn(accepting=False, reason=NotAcceptingReason.FULL, until=until),
        now - timedelta(hours=2),
    )
    # Another unit closed until later: not due.
    await set_status_at(
        db,
        seed.units["leiden-grz"],
        UnitStatusIn(
            accepting=False, reason=NotAcceptingReason.OUTBREAK, until=now + timedelta(hours=1)
        ),
        now - timedelta(hours=1),
    )
    assert await status_service.reopen_due(db, now=now) == 1
    assert await status_service.reopen_due(db, now=now) == 0  # recorded once
    r = await client.get(f"/v1/units/{unit}/status-history", headers=auth(seed.keys["triagist"]))
    changes = r.json()["items"]
    assert [(c["accepting"], c["reason"]) for c in changes] == [(True, None), (False, "full")]
    assert datetime.fromisoformat(changes[0]["changed_at"]) == until
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT payload FROM outbox_event WHERE event_type = 'unit.status_changed'"
                    " ORDER BY id"
                )
            )
        ).all()
    last = orjson.loads(rows[-1][0])
    assert (last["unit_id"], last["accepting"], last["automatic"]) == (str(unit), True, True)
    r = await client.get(
        f"/v1/units/{seed.units['leiden-grz']}/status", headers=auth(seed.keys["triagist"])
    )
    assert r.json()["accepting"] is False


@pytest.mark.parametrize("accepting", [0, 1, "false", "true", "yes"])
async def test_accepting_is_a_json_boolean_not_a_number_or_word(
    client: httpx.AsyncClient, seed: Seed, accepting: Any
) -> None:
    """The schema says boolean: 0 or "false" would otherwise be read as a yes or a no."""
    r = await close(client, seed, {"accepting": accepting, "reason": "other"})
    body = assert_problem(r, 422)
    assert any("accepting" in p for p in pointers(body)), body
    still = await client.get(status_path(seed), headers=auth(seed.keys["triagist"]))
    assert still.json()["accepting"] is True
