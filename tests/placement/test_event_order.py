"""No transfer event is dated before the placement's previous event, also when the referral
carries a ``medically_ready_at`` later than its own clinical time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.db import utcnow
from tests.conftest import auth
from tests.factories import Seed, placement_body
from tests.helpers import assert_problem, pointers


def iso(t: datetime) -> str:
    return t.isoformat()


async def events(client: httpx.AsyncClient, key: str, pid: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/placements/{pid}/events", headers=auth(key))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def assert_in_time_order(log: list[dict[str, Any]]) -> None:
    times = [datetime.fromisoformat(e["occurred_at"]) for e in log]
    assert times == sorted(times), [(e["seq"], e["type"], e["occurred_at"]) for e in log]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("events", {"type": "ready_revoked"}),
        ("events", {"type": "escalated", "level": "region", "reason": "none free"}),
        ("holds", {"unit_id": "UNIT"}),
        ("cancel", {"reason": "recovered"}),
    ],
)
async def test_no_event_before_a_medically_ready_later_than_the_referral(
    client: httpx.AsyncClient, seed: Seed, path: str, body: dict[str, Any]
) -> None:
    ref, tri = seed.keys["referrer"], seed.keys["triagist"]
    t0 = utcnow() - timedelta(hours=3)
    ready = t0 + timedelta(hours=1)
    r = await client.post(
        "/v1/placements",
        json=placement_body(occurred_at=iso(t0), medically_ready_at=iso(ready)),
        headers=auth(ref),
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    log = await events(client, ref, pid)
    assert [e["type"] for e in log] == ["request_created", "triaged", "medically_ready"]
    assert_in_time_order(log)

    if "unit_id" in body:
        body = {"unit_id": str(seed.units["leiden-elv-high"])}
    key = tri if path == "holds" else ref
    between = {**body, "occurred_at": iso(t0 + timedelta(minutes=30))}
    r = await client.post(f"/v1/placements/{pid}/{path}", json=between, headers=auth(key))
    problem = assert_problem(r, 422)
    assert pointers(problem) == ["#/occurred_at"]
    assert "previous event" in problem["detail"]

    after = {**body, "occurred_at": iso(ready + timedelta(minutes=1))}
    r = await client.post(f"/v1/placements/{pid}/{path}", json=after, headers=auth(key))
    assert r.status_code in (200, 201), r.text
    assert_in_time_order(await events(client, ref, pid))


async def test_ready_before_the_referral_keeps_the_recorded_order(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    ref = seed.keys["referrer"]
    t0 = utcnow() - timedelta(hours=3)
    r = await client.post(
        "/v1/placements",
        json=placement_body(occurred_at=iso(t0), medically_ready_at=iso(t0 - timedelta(hours=5))),
        headers=auth(ref),
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    log = await events(client, ref, pid)
    assert [e["type"] for e in log] == ["request_created", "medically_ready", "triaged"]
    # The next event is bounded by the referral's time, the latest so far.
    r = await client.post(
        f"/v1/placements/{pid}/events",
        json={"type": "ready_revoked", "occurred_at": iso(t0 - timedelta(minutes=1))},
        headers=auth(ref),
    )
    assert pointers(assert_problem(r, 422)) == ["#/occurred_at"]
    r = await client.post(
        f"/v1/placements/{pid}/events",
        json={"type": "ready_revoked", "occurred_at": iso(t0)},
        headers=auth(ref),
    )
    assert r.status_code == 201, r.text
