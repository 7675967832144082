"""A multi-day inflow line counts wholly on its start date (docs/domain.md §6.2): a weekly line
that starts before a period is not in it, even when most of its days are, and counts whole in
the period (and week) of its first day; through the API, on both backends."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import httpx

from app.db import utcnow
from app.kpi import formulas as f
from tests.conftest import auth
from tests.factories import Seed

TODAY = f.local_date(utcnow())
A = TODAY - timedelta(days=20)


def line(start_offset: int, days: int, count: int) -> dict[str, object]:
    start = A + timedelta(days=start_offset)
    return {
        "period_start": start.isoformat(),
        "period_end": (start + timedelta(days=days)).isoformat(),
        "subregion": "leiden",
        "age_band": "85+",
        "urgency_native": "U3",
        "contact_type": "registration",
        "count": count,
    }


async def _count(client: httpx.AsyncClient, seed: Seed, start: int, end: int, **q: str) -> Any:
    r = await client.get(
        "/v1/kpis/inflow",
        params={
            "from": (A + timedelta(days=start)).isoformat(),
            "to": (A + timedelta(days=end)).isoformat(),
            **q,
        },
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_line_counts_on_its_start_date(client: httpx.AsyncClient, seed: Seed) -> None:
    report = {
        "source": "seh",
        "lines": [
            line(-3, 7, 70),  # a week from 3 days before A: 4 of its 7 days lie in [A, A+5)
            line(5, 7, 30),  # a week from A+5
            line(2, 1, 1),  # one day inside [A, A+5)
        ],
    }
    r = await client.post("/v1/inflow-reports", json=report, headers=auth(seed.keys["referrer"]))
    assert r.status_code == 200, r.text

    def totals(body: Any) -> list[tuple[str, int]]:
        return [(x["source"], x["count"]) for x in body["totals"]]

    assert totals(await _count(client, seed, 0, 5)) == [("seh", 1)]
    assert totals(await _count(client, seed, -3, -2)) == [("seh", 70)]  # its first day only
    assert totals(await _count(client, seed, -2, 5)) == [("seh", 1)]  # its other days: none
    assert totals(await _count(client, seed, 5, 6)) == [("seh", 30)]
    by_week = await _count(client, seed, -3, 12, group_by="week")
    expected: Counter[str] = Counter()
    for offset, count in ((-3, 70), (5, 30), (2, 1)):
        expected[f.week_label(A + timedelta(days=offset))] += count
    assert {x["group"]: x["count"] for x in by_week["rows"]} == dict(expected)
