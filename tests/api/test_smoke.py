from __future__ import annotations

import httpx

from tests.conftest import auth
from tests.factories import Seed


async def test_search_returns_seeded_units(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get(
        "/v1/availability", params={"care_type": "elv_high"}, headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 3
