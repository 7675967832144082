"""Pure search helpers: distance, freshness, escalation scope, ranking and match reasons.

No I/O and no clock: ``now`` is passed in. The SQL in ``capacity.queries`` orders by the same key
as ``rank_key``; a test keeps the two in agreement.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def lon_scale(lat: float) -> float:
    """Squared cosine of the latitude: makes (dlat² + dlon²·scale) rank like true distance."""
    return math.cos(math.radians(lat)) ** 2


def planar_distance2(lat0: float, lon0: float, lat: float, lon: float) -> float:
    """The portable distance surrogate used in SQL (no trigonometry needed in SQLite)."""
    return (lat - lat0) ** 2 + (lon - lon0) ** 2 * lon_scale(lat0)


@dataclass(frozen=True)
class Scope:
    """Which subregions a search covers, in escalation order (docs/domain.md §8)."""

    subregion_ids: tuple[uuid.UUID, ...]
    escalated: bool

    def rank_of(self, subregion_id: uuid.UUID) -> int:
        return self.subregion_ids.index(subregion_id)


def search_scope(
    own: uuid.UUID | None,
    neighbours_in_order: Sequence[uuid.UUID],
    region_subregions: Sequence[uuid.UUID],
    *,
    escalate: bool,
) -> Scope | None:
    """Own subregion only, or (escalated) own first, then neighbours, then the rest of the region.

    ``None`` means no subregion filter: the whole registry is searched.
    """
    if own is None:
        return None
    if not escalate:
        return Scope((own,), escalated=False)
    ordered = [own, *[n for n in neighbours_in_order if n != own]]
    ordered += sorted((s for s in region_subregions if s not in ordered), key=str)
    return Scope(tuple(ordered), escalated=True)


def age_minutes(reported_at: datetime, now: datetime) -> int:
    return max(0, int((now - reported_at).total_seconds() // 60))


def is_stale(reported_at: datetime, now: datetime, ttl: timedelta) -> bool:
    return now - reported_at > ttl


def rank_key(
    escalation_rank: int,
    distance2: float | None,
    reported_at: datetime,
    unit_id: uuid.UUID,
) -> tuple[int, float, float, str]:
    """Own subregion first, then neighbours in order, then nearest, then freshest."""
    return (escalation_rank, distance2 or 0.0, -reported_at.timestamp(), str(unit_id))


def match_reasons(
    *,
    care_type: str,
    wanted_target_groups: Sequence[str],
    sex: str | None,
    sex_policy: str,
    wanted_features: Sequence[str],
    subregion_code: str,
    escalation_rank: int | None,
    stale: bool,
) -> list[str]:
    """Why a unit matched, in the order of the query; ``escalation_rank`` None = no subregion."""
    reasons = [f"care_type {care_type}"]
    reasons += [f"target_group {g}" for g in wanted_target_groups]
    if sex is not None:
        reasons.append(f"sex {sex}: unit takes {sex_policy}")
    reasons += [f"feature {f}" for f in wanted_features]
    if escalation_rank is None:
        reasons.append(f"subregion {subregion_code}")
    elif escalation_rank == 0:
        reasons.append(f"subregion {subregion_code} (own)")
    else:
        reasons.append(f"subregion {subregion_code} (escalation step {escalation_rank})")
    if stale:
        reasons.append("stale report included on request")
    return reasons
