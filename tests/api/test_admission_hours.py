"""Unit admission hours through HTTP, and the search's ``admitting_at`` (docs/domain.md §15)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.capacity.schemas import AvailabilityResult
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Role
from app.flows.demo import DEMO_ADMISSION_HOURS, load_demo
from app.principal import Principal
from tests.conftest import auth
from tests.factories import Seed, add_unit, placement_body
from tests.helpers import assert_problem, pointers

AMS = ZoneInfo("Europe/Amsterdam")
OFFICE = {
    "always_open": False,
    "weekly": {
        d: [{"opens": "08:00", "closes": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")
    },
    "exceptions": [{"date": "2026-12-25", "hours": []}],
}


def path(unit: uuid.UUID) -> str:
    return f"/v1/units/{unit}/admission-hours"


async def search(
    client: httpx.AsyncClient, seed: Seed, at: datetime, care_type: str = "elv_high"
) -> list[dict[str, Any]]:
    r = await client.get(
        "/v1/availability",
        params={"care_type": care_type, "admitting_at": at.isoformat()},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 200, r.text
    AvailabilityResult.model_validate(r.json())
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_read_and_replace(client: httpx.AsyncClient, seed: Seed) -> None:
    unit = seed.units["leiden-elv-high"]
    r = await client.get(path(unit), headers=auth(seed.keys["referrer"]))
    assert r.status_code == 200, r.text
    assert r.json()["always_open"] is True
    assert r.json()["admits_now"] is True
    r = await client.put(path(unit), json=OFFICE, headers=auth(seed.keys["provider"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["weekly"]["mon"] == [{"opens": "08:00", "closes": "17:00"}]
    assert body["weekly"]["sat"] == []
    assert body["exceptions"] == OFFICE["exceptions"]
    got = (await client.get(path(unit), headers=auth(seed.keys["triagist"]))).json()
    assert got["weekly"] == body["weekly"]
    if not got["admits_now"]:
        assert got["next_admission_at"] is not None
    # Back to 24/7 by an admin.
    r = await client.put(path(unit), json={"always_open": True}, headers=auth(seed.keys["admin"]))
    assert r.status_code == 200, r.text
    assert r.json() | {"next_admission_at": None} == {
        "unit_id": str(unit),
        "always_open": True,
        "weekly": {},
        "exceptions": [],
        "admits_now": True,
        "next_admission_at": None,
    }


async def test_who_may_change_and_what_is_refused(client: httpx.AsyncClient, seed: Seed) -> None:
    unit = seed.units["leiden-elv-high"]
    for key in (seed.other_provider_key, seed.keys["referrer"], seed.keys["triagist"]):
        assert_problem(await client.put(path(unit), json=OFFICE, headers=auth(key)), 403)
    provider = auth(seed.keys["provider"])
    bad: list[tuple[dict[str, Any], list[str]]] = [
        (
            {"always_open": False, "weekly": {"mon": [{"opens": "17:00", "closes": "08:00"}]}},
            ["#/weekly/mon"],
        ),
        (
            {
                "always_open": False,
                "weekly": {
                    "tue": [
                        {"opens": "08:00", "closes": "12:00"},
                        {"opens": "11:00", "closes": "13:00"},
                    ]
                },
            },
            ["#/weekly/tue"],
        ),
        (
            {"always_open": False, "weekly": {"wed": [{"opens": "25:00", "closes": "26:00"}]}},
            ["#/weekly/wed/0"],
        ),
        (
            {
                "always_open": True,
                "exceptions": [
                    {"date": "2026-12-25", "hours": [{"opens": "08:00", "closes": "07:00"}]}
                ],
            },
            ["#/exceptions/0/hours"],
        ),
    ]
    for body, expected in bad:
        r = await client.put(path(unit), json=body, headers=provider)
        assert pointers(assert_problem(r, 422)) == expected, body
    for body in (
        {"always_open": True, "weekly": {"mon": [{"opens": "08:00", "closes": "17:00"}]}},
        {"always_open": True, "exceptions": [{"date": "2026-12-25", "hours": []}] * 2},
        {"always_open": False, "weekly": {"someday": []}},
        {"weekly": {}},
        {"always_open": False, "weekly": {"mon": [{"opens": "8:00", "closes": "17:00"}]}},
    ):
        assert_problem(await client.put(path(unit), json=body, headers=provider), 422)
    assert_problem(await client.put(path(uuid.uuid4()), json=OFFICE, headers=provider), 404)
    assert_problem(await client.get(path(uuid.uuid4()), headers=provider), 404)


async def test_search_lists_units_not_admitting_after_the_others(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    leiden = str(seed.units["leiden-elv-high"])
    r = await client.put(
        path(seed.units["leiden-elv-high"]), json=OFFICE, headers=auth(seed.keys["provider"])
    )
    assert r.status_code == 200, r.text
    saturday = datetime(2026, 12, 12, 12, 0, tzinfo=AMS)
    items = await search(client, seed, saturday)
    assert len(items) == 3
    assert items[-1]["unit_id"] == leiden  # listed, not hidden
    assert items[-1]["admits_now"] is False
    monday_8 = datetime(2026, 12, 14, 8, 0, tzinfo=AMS)
    assert datetime.fromisoformat(items[-1]["next_admission_at"]) == monday_8
    assert all(i["admits_now"] and i["next_admission_at"] is None for i in items[:-1])
    monday = datetime(2026, 12, 14, 10, 0, tzinfo=AMS)
    items = await search(client, seed, monday)
    assert all(i["admits_now"] for i in items)
    assert leiden in {i["unit_id"] for i in items}
    # Christmas Day is an exception: closed, next admission on the 28th (a Monday).
    items = await search(client, seed, datetime(2026, 12, 25, 10, 0, tzinfo=AMS))
    assert items[-1]["unit_id"] == leiden
    assert datetime.fromisoformat(items[-1]["next_admission_at"]) == datetime(
        2026, 12, 28, 8, 0, tzinfo=AMS
    )
    # The search for one placement's patient takes the same parameter.
    r = await client.post(
        "/v1/placements",
        json=placement_body(subregion="leiden"),
        headers=auth(seed.keys["referrer"]),
    )
    pid = r.json()["id"]
    r = await client.get(
        f"/v1/placements/{pid}/availability",
        params={"admitting_at": saturday.isoformat(), "escalate": "true"},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 200, r.text
    hits = r.json()["items"]
    assert [h["unit_id"] for h in hits if not h["admits_now"]] == [leiden]
    assert hits[-1]["unit_id"] == leiden
    r = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", "admitting_at": "tomorrow"},
        headers=auth(seed.keys["triagist"]),
    )
    assert pointers(assert_problem(r, 422)) == ["query:admitting_at"]


@pytest.mark.parametrize(("hour", "first"), [(3, "night"), (12, "day"), (23, "night")])
async def test_acute_district_nursing_night_capacity_is_its_own_unit(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings, hour: int, first: str
) -> None:
    units = {}
    for name in ("day", "night"):
        units[name] = await add_unit(
            db,
            settings,
            seed.locations["leiden"],
            name=name,
            care_type=CareType.DISTRICT_NURSING_ACUTE,
            free=2,
        )
    every = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    hours = {
        "day": {d: [{"opens": "07:00", "closes": "23:00"}] for d in every},
        "night": {
            d: [{"opens": "00:00", "closes": "07:00"}, {"opens": "23:00", "closes": "24:00"}]
            for d in every
        },
    }
    for name, weekly in hours.items():
        r = await client.put(
            path(units[name]),
            json={"always_open": False, "weekly": weekly},
            headers=auth(seed.keys["provider"]),
        )
        assert r.status_code == 200, r.text
    at = datetime(2026, 12, 9, hour, 0, tzinfo=AMS)
    items = await search(client, seed, at, care_type="district_nursing_acute")
    assert [i["unit_name"] for i in items] == [first, "day" if first == "night" else "night"]
    assert [i["admits_now"] for i in items] == [True, False]


async def test_the_demo_has_day_only_acute_district_nursing_teams(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    loader = Principal(
        key_id=uuid.uuid4(),
        name="demo",
        roles=frozenset({Role.ADMIN}),
        organisation_id=None,
        region_id=None,
    )
    async with db.sessionmaker() as session:
        await load_demo(session, loader, now=utcnow(), settings=settings)
        await session.commit()
    async with db.sessionmaker() as session:
        key = await auth_service.issue_key(session, ApiKeyCreate(name="t", roles=[Role.ADMIN]))
        await session.commit()
    night = datetime(2026, 12, 9, 2, 0, tzinfo=AMS)
    r = await client.get(
        "/v1/availability",
        params={
            "care_type": "district_nursing_acute",
            "admitting_at": night.isoformat(),
            "include_stale": "true",
        },
        headers=auth(key.key),
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    day_only = [i for i in items if not i["admits_now"]]
    assert 0 < len(day_only) <= len(DEMO_ADMISSION_HOURS)
    assert items[-len(day_only) :] == day_only  # listed after the 24/7 teams
    assert {datetime.fromisoformat(i["next_admission_at"]) for i in day_only} == {
        datetime(2026, 12, 9, 7, 0, tzinfo=AMS)
    }
