"""Operations endpoints and request correlation."""

from __future__ import annotations

import httpx

from tests.conftest import auth
from tests.factories import Seed


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_metrics_count_requests_and_report_age(client: httpx.AsyncClient, seed: Seed) -> None:
    await client.get(
        "/v1/availability", params={"care_type": "elv_high"}, headers=auth(seed.keys["triagist"])
    )
    text = (await client.get("/metrics")).text
    assert (
        'juisteplek_http_requests_total{method="GET",route="/v1/availability",status="200"}' in text
    )
    age_line = next(
        line
        for line in text.splitlines()
        if line.startswith('juisteplek_capacity_oldest_report_age_seconds{care_type="elv_high"}')
    )
    assert 590 <= float(age_line.split()[-1]) <= 700  # the seed reported 10 minutes ago


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    generated = (await client.get("/healthz", headers={"X-Request-ID": "bad id!"})).headers
    assert len(generated["x-request-id"]) == 32
