"""The demo region West loads through the services and answers the acceptance search."""

from __future__ import annotations

import uuid

import httpx

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.flows.demo import demo_organisation_ids, is_loaded, load_demo
from app.principal import Principal
from tests.conftest import auth


async def test_demo_loads_and_search_ranks_with_distance_and_freshness(
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
        counts = await load_demo(session, loader, now=utcnow(), settings=settings)
        await session.commit()
        assert await is_loaded(session)
        rap = (await demo_organisation_ids(session))["rap"]
        key = await auth_service.issue_key(
            session, ApiKeyCreate(name="t", organisation_id=rap, roles=[Role.TRIAGIST])
        )
        await session.commit()
    assert counts == {"organisations": 38, "locations": 55, "units": 94}
    r = await client.get(
        "/v1/availability",
        params={
            "care_type": "elv_high",
            "subregion": "leiden",
            "escalate": "true",
            "near": "52.1658,4.4776",
        },
        headers=auth(key.key),
    )
    assert r.status_code == 200
    items = r.json()["items"]
    assert items, "region West has free elv_high places"
    assert items[0]["subregion"]["code"] == "leiden"
    ranks = [h["escalation_rank"] for h in items]
    assert ranks == sorted(ranks)
    assert {h["subregion"]["code"] for h in items} > {"leiden"}
    assert all(h["distance_km"] is not None and h["age_minutes"] >= 0 for h in items)
    assert all(h["available"] > 0 and h["stale"] is False for h in items)
