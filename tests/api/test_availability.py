"""Availability search: filters, escalation order, distance, freshness and the reasons for a hit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.capacity import ranking
from app.capacity.schemas import AvailabilityResult
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Feature, SexPolicy
from tests.conftest import auth
from tests.factories import Seed, add_unit

LEIDEN = (52.1601, 4.4970)


async def search(client: httpx.AsyncClient, seed: Seed, **params: Any) -> dict[str, Any]:
    r = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", **params},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 200, r.text
    AvailabilityResult.model_validate(r.json())  # the hot path skips models; the schema holds
    body: dict[str, Any] = r.json()
    return body


def names(body: dict[str, Any]) -> list[str]:
    return [h["unit_name"] for h in body["items"]]


async def test_own_subregion_only_without_escalation(client: httpx.AsyncClient, seed: Seed) -> None:
    body = await search(client, seed, subregion="leiden")
    assert names(body) == ["ELV HC Leiden"]
    [hit] = body["items"]
    assert hit["escalation_level"] == "subregion"
    assert hit["escalation_rank"] == 0
    assert hit["subregion"]["code"] == "leiden"
    assert body["escalated"] is False


async def test_escalation_follows_neighbour_order(client: httpx.AsyncClient, seed: Seed) -> None:
    body = await search(client, seed, subregion="leiden", escalate="true")
    assert names(body) == ["ELV HC Leiden", "ELV HC Den Haag", "ELV HC Gouda"]
    assert [h["escalation_rank"] for h in body["items"]] == [0, 1, 2]
    assert [h["escalation_level"] for h in body["items"]] == ["subregion", "region", "region"]
    gouda_first = await search(client, seed, subregion="gouda", escalate="true")
    assert names(gouda_first) == ["ELV HC Gouda", "ELV HC Leiden", "ELV HC Den Haag"]


async def test_subregion_by_id(client: httpx.AsyncClient, seed: Seed) -> None:
    body = await search(client, seed, subregion=str(seed.subregions["gouda"]))
    assert names(body) == ["ELV HC Gouda"]


async def test_distance_ranking_and_value(client: httpx.AsyncClient, seed: Seed) -> None:
    body = await search(client, seed, near="52.0115,4.7105")  # Gouda
    assert names(body) == ["ELV HC Gouda", "ELV HC Leiden", "ELV HC Den Haag"]
    assert body["items"][0]["distance_km"] == 0.0
    expected = round(ranking.haversine_km(52.0115, 4.7105, *LEIDEN), 2)
    assert body["items"][1]["distance_km"] == expected


async def test_filters_sex_features_target_group(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    males = names(await search(client, seed, sex="male"))
    assert sorted(males) == ["ELV HC Den Haag", "ELV HC Leiden"]
    assert "ELV HC Gouda" in names(await search(client, seed, sex="female"))
    assert names(await search(client, seed, features="isolation")) == ["ELV HC Den Haag"]
    await add_unit(
        db,
        settings,
        seed.locations["gouda"],
        name="PG Gouda",
        care_type=CareType.ELV_HIGH,
        free=1,
        target_groups=("psychogeriatric",),  # type: ignore[arg-type]
        features=(Feature.CLOSED_WARD,),
        sex_policy=SexPolicy.ANY,
    )
    pg = await search(client, seed, target_group="psychogeriatric")
    assert names(pg) == ["PG Gouda"]
    assert pg["items"][0]["matched_because"] == [
        "care_type elv_high",
        "target_group psychogeriatric",
        "subregion gouda",
    ]


async def test_several_care_types(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get(
        "/v1/availability",
        params=[("care_type", "elv_high"), ("care_type", "grz"), ("subregion", "leiden")],
        headers=auth(seed.keys["triagist"]),
    )
    assert sorted(h["care_type"] for h in r.json()["items"]) == ["elv_high", "grz"]


async def test_full_units_are_not_offered(client: httpx.AsyncClient, seed: Seed) -> None:
    await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": 0},
        headers=auth(seed.keys["provider"]),
    )
    assert names(await search(client, seed, subregion="leiden")) == []


async def test_stale_reports_are_excluded_unless_asked_and_flagged(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="Old news",
        care_type=CareType.ELV_HIGH,
        free=2,
        reported_at=utcnow() - timedelta(hours=5),
    )
    assert names(await search(client, seed, subregion="leiden")) == ["ELV HC Leiden"]
    body = await search(client, seed, subregion="leiden", include_stale="true")
    assert names(body) == ["ELV HC Leiden", "Old news"]
    old = body["items"][1]
    assert old["stale"] is True
    assert 299 <= old["age_minutes"] <= 301
    assert old["matched_because"][-1] == "stale report included on request"
    assert body["items"][0]["stale"] is False


async def test_district_nursing_has_a_longer_ttl(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="Wijkteam",
        care_type=CareType.DISTRICT_NURSING_ACUTE,
        free=2,
        reported_at=utcnow() - timedelta(hours=5),
    )
    body = await search(client, seed, care_type="district_nursing_acute")
    assert names(body) == ["Wijkteam"]
    assert body["items"][0]["stale"] is False


async def test_freshness_breaks_ties(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="Fresher",
        care_type=CareType.ELV_HIGH,
        free=1,
        reported_at=utcnow() - timedelta(minutes=1),
    )
    assert names(await search(client, seed, subregion="leiden")) == ["Fresher", "ELV HC Leiden"]


@pytest.mark.parametrize("limit", [1, 2])
async def test_limit(client: httpx.AsyncClient, seed: Seed, limit: int) -> None:
    assert len((await search(client, seed, limit=limit))["items"]) == limit


async def test_sql_order_agrees_with_rank_key(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    for i, (lat, lon) in enumerate([(52.2, 4.5), (52.0, 4.3), (52.1, 4.6), (51.95, 4.4)]):
        async with db.sessionmaker() as session:
            from app.registry import service as registry_service
            from app.registry.schemas import LocationCreate
            from tests.factories import ADMIN

            loc = await registry_service.create_location(
                session,
                ADMIN,
                LocationCreate(
                    organisation_id=seed.organisations["vvt-leiden"],
                    name=f"L{i}",
                    address="Weg 1",
                    postcode="2300 AB",
                    municipality=["Leiden", "Den Haag", "Gouda", "Leiden"][i],
                    latitude=lat,
                    longitude=lon,
                ),
            )
            await session.commit()
        await add_unit(
            db,
            settings,
            loc.id,
            name=f"U{i}",
            care_type=CareType.ELV_HIGH,
            free=1,
            reported_at=utcnow() - timedelta(minutes=5 * i),
        )
    body = await search(client, seed, subregion="den-haag", escalate="true", near="52.1,4.4")
    scope = {"den-haag": 0, "leiden": 1, "gouda": 2}
    keys = [
        ranking.rank_key(
            scope[h["subregion"]["code"]],
            ranking.planar_distance2(
                52.1, 4.4, h["location"]["latitude"], h["location"]["longitude"]
            ),
            AvailabilityResult.model_validate(body).items[i].reported_at,
            h["unit_id"],
        )
        for i, h in enumerate(body["items"])
    ]
    assert keys == sorted(keys)
    assert len(keys) == 7
