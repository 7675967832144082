"""How current a unit's figures are, and the board's care type x subregion summary (pure).

No I/O and no clock: ``now`` and the care type's limit (``ttl``) are passed in. A count older than
its care type's limit is *unknown*: it is never added to a total nor shown as a number.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Freshness(StrEnum):
    FRESH = "fresh"  # younger than half the limit
    AGEING = "ageing"  # past half the limit: amber, still counted
    STALE = "stale"  # past the limit: red, the count is unknown
    NONE = "none"  # never reported: unknown


AGEING_SHARE = 0.5


def freshness(reported_at: datetime | None, now: datetime, ttl: timedelta) -> Freshness:
    if reported_at is None:
        return Freshness.NONE
    age = now - reported_at
    if age > ttl:
        return Freshness.STALE
    if age > ttl * AGEING_SHARE:
        return Freshness.AGEING
    return Freshness.FRESH


def is_known(level: Freshness) -> bool:
    """Whether a count of this freshness may be shown and added up."""
    return level in (Freshness.FRESH, Freshness.AGEING)


@dataclass(frozen=True, slots=True)
class UnitFigures:
    """One unit's latest figures as the summary needs them."""

    care_type: str
    subregion_id: uuid.UUID
    free: int | None
    held: int
    reported_at: datetime | None


@dataclass
class Cell:
    """Available places of one care type in one subregion; ``unknown`` units are not counted."""

    care_type: str
    subregion_id: uuid.UUID
    units: int = 0
    known_units: int = 0
    ageing_units: int = 0
    unknown_units: int = 0
    free: int = 0
    held: int = 0
    available: int = 0

    @property
    def status(self) -> str:
        """``available``, ``full`` (known, none available), ``unknown`` (no current count)."""
        if self.available > 0:
            return "available"
        if self.known_units > 0:
            return "full"
        return "unknown"


@dataclass
class Summary:
    care_types: list[str]
    subregion_ids: list[uuid.UUID]
    cells: dict[tuple[str, uuid.UUID], Cell] = field(default_factory=dict)

    def cell(self, care_type: str, subregion_id: uuid.UUID) -> Cell | None:
        return self.cells.get((care_type, subregion_id))

    def total(self, care_type: str) -> Cell:
        """The row total over the subregions (a cell without a subregion of its own)."""
        out = Cell(care_type=care_type, subregion_id=uuid.UUID(int=0))
        for sub in self.subregion_ids:
            c = self.cells.get((care_type, sub))
            if c is None:
                continue
            out.units += c.units
            out.known_units += c.known_units
            out.ageing_units += c.ageing_units
            out.unknown_units += c.unknown_units
            out.free += c.free
            out.held += c.held
            out.available += c.available
        return out


def summarise(
    units: Iterable[UnitFigures],
    *,
    now: datetime,
    ttl_of: dict[str, timedelta],
    care_type_order: Sequence[str],
    subregion_order: Sequence[uuid.UUID],
) -> Summary:
    """Add up the known figures per care type x subregion; rows and columns in the given order
    (only those with a unit); a stale or missing count makes its unit unknown, not zero."""
    cells: dict[tuple[str, uuid.UUID], Cell] = {}
    for u in units:
        key = (u.care_type, u.subregion_id)
        c = cells.get(key)
        if c is None:
            c = cells[key] = Cell(care_type=u.care_type, subregion_id=u.subregion_id)
        c.units += 1
        level = freshness(u.reported_at, now, ttl_of[u.care_type])
        if not is_known(level) or u.free is None:
            c.unknown_units += 1
            continue
        c.known_units += 1
        if level is Freshness.AGEING:
            c.ageing_units += 1
        c.free += u.free
        c.held += u.held
        c.available += max(0, u.free - u.held)
    care_types = [ct for ct in care_type_order if any(k[0] == ct for k in cells)]
    subs = [s for s in subregion_order if any(k[1] == s for k in cells)]
    return Summary(care_types=care_types, subregion_ids=subs, cells=cells)


def board_order(
    *,
    level: Freshness,
    available: int,
    escalation_rank: int,
    distance2: float | None,
    reported_at: datetime | None,
    unit_id: uuid.UUID,
) -> tuple[int, int, float, float, str]:
    """Units with places first, then known full ones, then unknown ones; within each group own
    subregion first, then neighbours in order, then nearest, then freshest (the SQL's order)."""
    if not is_known(level):
        group = 2
    elif available > 0:
        group = 0
    else:
        group = 1
    return (
        group,
        escalation_rank,
        distance2 or 0.0,
        0.0 if reported_at is None else -reported_at.timestamp(),
        str(unit_id),
    )
