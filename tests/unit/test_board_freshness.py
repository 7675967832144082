"""Freshness levels, the board summary and the board order (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.capacity.board import postcode_point
from app.capacity.freshness import (
    Freshness,
    UnitFigures,
    board_order,
    freshness,
    is_known,
    summarise,
)

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=240)
A, B = uuid.UUID(int=1), uuid.UUID(int=2)


def test_freshness_levels_at_their_edges() -> None:
    assert freshness(None, NOW, TTL) is Freshness.NONE
    assert freshness(NOW, NOW, TTL) is Freshness.FRESH
    assert freshness(NOW - TTL / 2, NOW, TTL) is Freshness.FRESH
    assert freshness(NOW - TTL / 2 - timedelta(seconds=1), NOW, TTL) is Freshness.AGEING
    assert freshness(NOW - TTL, NOW, TTL) is Freshness.AGEING
    assert freshness(NOW - TTL - timedelta(seconds=1), NOW, TTL) is Freshness.STALE
    assert [is_known(f) for f in Freshness] == [True, True, False, False]


def _fig(
    care: str, sub: uuid.UUID, free: int | None, held: int, age_min: int | None
) -> UnitFigures:
    at = None if age_min is None else NOW - timedelta(minutes=age_min)
    return UnitFigures(care_type=care, subregion_id=sub, free=free, held=held, reported_at=at)


def test_summary_counts_known_figures_only_and_stale_as_unknown() -> None:
    units = [
        _fig("elv_high", A, 3, 1, 10),  # 2 available
        _fig("elv_high", A, 1, 3, 150),  # ageing, over-held: 0 available, never negative
        _fig("elv_high", A, 9, 0, 300),  # stale: unknown, its 9 is not added
        _fig("elv_high", B, None, 0, None),  # never reported
        _fig("grz", B, 0, 0, 5),  # known full
        _fig("district_nursing", B, 2, 0, 1000),  # within its own (longer) limit
    ]
    ttl = {"elv_high": TTL, "grz": TTL, "district_nursing": timedelta(minutes=1440)}
    s = summarise(
        units,
        now=NOW,
        ttl_of=ttl,
        care_type_order=["elv_low", "elv_high", "grz", "district_nursing"],
        subregion_order=[B, A],
    )
    assert s.care_types == ["elv_high", "grz", "district_nursing"]
    assert s.subregion_ids == [B, A]
    a = s.cell("elv_high", A)
    assert a is not None
    assert (a.units, a.known_units, a.ageing_units, a.unknown_units) == (3, 2, 1, 1)
    assert (a.free, a.held, a.available, a.status) == (4, 4, 2, "available")
    b = s.cell("elv_high", B)
    assert b is not None
    assert b.status == "unknown"
    assert b.available == 0
    grz = s.cell("grz", B)
    assert grz is not None
    assert grz.status == "full"
    dn = s.cell("district_nursing", B)
    assert dn is not None
    assert dn.available == 2
    total = s.total("elv_high")
    assert (total.units, total.unknown_units, total.available) == (4, 2, 2)
    assert s.cell("grz", A) is None


def test_board_order_places_first_then_full_then_unknown() -> None:
    def key(
        level: Freshness, available: int, rank: int, d2: float | None, age: int, n: int
    ) -> tuple[int, int, float, float, str]:
        return board_order(
            level=level,
            available=available,
            escalation_rank=rank,
            distance2=d2,
            reported_at=NOW - timedelta(minutes=age),
            unit_id=uuid.UUID(int=n),
        )

    ordered = sorted(
        [
            key(Freshness.STALE, 5, 0, 0.0, 1, 1),
            key(Freshness.FRESH, 0, 0, 0.0, 1, 2),
            key(Freshness.AGEING, 1, 1, 0.0, 1, 3),
            key(Freshness.FRESH, 1, 0, 0.5, 1, 4),
            key(Freshness.FRESH, 1, 0, 0.1, 9, 5),
            key(Freshness.FRESH, 1, 0, 0.1, 2, 6),
        ]
    )
    assert [k[-1] for k in ordered] == [str(uuid.UUID(int=n)) for n in (6, 5, 4, 3, 2, 1)]


def test_postcode_point_takes_the_nearest_postcode_area() -> None:
    points = [("2333 ZA", 52.0, 4.0), ("2333 AB", 52.2, 4.2), ("2600 AA", 51.0, 3.0), ("bad", 0, 0)]
    assert postcode_point(2333, points) == (52.1, 4.1)
    assert postcode_point(2340, points) == (52.1, 4.1)
    assert postcode_point(2590, points) == (51.0, 3.0)
    assert postcode_point(2333, []) is None
