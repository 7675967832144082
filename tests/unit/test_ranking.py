"""Pure search helpers: distance, scope, freshness, ranking key and reasons."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.capacity import ranking

A, B, C, D = (uuid.UUID(int=i) for i in range(1, 5))


def test_haversine_leiden_den_haag() -> None:
    assert ranking.haversine_km(52.1601, 4.4970, 52.0705, 4.3007) == pytest.approx(16.6, abs=0.2)
    assert ranking.haversine_km(52.0, 4.0, 52.0, 4.0) == 0.0


def test_planar_surrogate_orders_like_haversine() -> None:
    origin = (52.1, 4.4)
    points = [(52.2, 4.5), (52.0, 4.3), (52.1, 4.6), (51.95, 4.4), (52.3, 4.1)]
    by_planar = sorted(points, key=lambda p: ranking.planar_distance2(*origin, *p))
    by_true = sorted(points, key=lambda p: ranking.haversine_km(*origin, *p))
    assert by_planar == by_true


def test_scope_without_escalation_is_own_subregion() -> None:
    scope = ranking.search_scope(A, [B, C], [A, B, C, D], escalate=False)
    assert scope == ranking.Scope((A,), escalated=False)


def test_scope_with_escalation_orders_neighbours_then_rest() -> None:
    scope = ranking.search_scope(A, [C, B], [D, C, B, A], escalate=True)
    assert scope is not None
    assert scope.subregion_ids == (A, C, B, D)
    assert scope.rank_of(B) == 2


def test_no_subregion_means_no_scope() -> None:
    assert ranking.search_scope(None, [], [], escalate=True) is None


def test_freshness() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert ranking.age_minutes(now - timedelta(minutes=90, seconds=59), now) == 90
    assert ranking.age_minutes(now + timedelta(minutes=1), now) == 0
    assert ranking.is_stale(now - timedelta(hours=4, seconds=1), now, timedelta(hours=4))
    assert not ranking.is_stale(now - timedelta(hours=4), now, timedelta(hours=4))


def test_rank_key_order() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    older = now - timedelta(hours=1)
    keys = [
        ranking.rank_key(1, 0.0, now, A),
        ranking.rank_key(0, 5.0, now, A),
        ranking.rank_key(0, 1.0, older, A),
        ranking.rank_key(0, 1.0, now, B),
    ]
    assert sorted(keys) == [keys[3], keys[2], keys[1], keys[0]]


def test_match_reasons() -> None:
    reasons = ranking.match_reasons(
        care_type="elv_high",
        wanted_target_groups=["somatic"],
        sex="female",
        sex_policy="any",
        wanted_features=["isolation"],
        subregion_code="leiden",
        escalation_rank=2,
        stale=True,
    )
    assert reasons == [
        "care_type elv_high",
        "target_group somatic",
        "sex female: unit takes any",
        "feature isolation",
        "subregion leiden (escalation step 2)",
        "stale report included on request",
    ]


@pytest.mark.parametrize(
    ("rank", "expected"),
    [
        (None, "subregion leiden"),
        (0, "subregion leiden (own)"),
        (3, "subregion leiden (escalation step 3)"),
    ],
)
def test_match_reasons_minimal_query(rank: int | None, expected: str) -> None:
    reasons = ranking.match_reasons(
        care_type="grz",
        wanted_target_groups=[],
        sex=None,
        sex_policy="any",
        wanted_features=[],
        subregion_code="leiden",
        escalation_rank=rank,
        stale=False,
    )
    assert reasons == ["care_type grz", expected]
