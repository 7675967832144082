"""Case ownership rules (docs/domain.md §12.3, §15): pure data and functions, no I/O, no clock.

Who owns a new placement is data per care type: the referrer, except for the crisis care types,
where the region's RAP triagist owns the case until it is handed over. An open placement without
an owner is flagged ``unowned_overdue`` once it has waited longer than its urgency allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from app.enums import CareType


class DefaultOwner(StrEnum):
    REFERRER = "referrer"  # the person or key that referred the patient
    TRIAGIST = "triagist"  # a triagist of the region takes the case


# Care types whose new placements are owned by a triagist; every other care type: the referrer.
DEFAULT_OWNER: Mapping[CareType, DefaultOwner] = {
    CareType.WLZ_CRISIS: DefaultOwner.TRIAGIST,
    CareType.GGZ_CRISIS: DefaultOwner.TRIAGIST,
}

# Unified urgency level (0 most urgent .. 5) -> minutes an open placement may stay unowned.
# A level absent here is never flagged.
UNOWNED_AFTER_MINUTES: Mapping[int, int] = {0: 15, 1: 15, 2: 15, 3: 15, 4: 60, 5: 240}


def default_owner(
    care_type: CareType, table: Mapping[CareType, DefaultOwner] = DEFAULT_OWNER
) -> DefaultOwner:
    """Who owns a new placement of ``care_type`` (docs/domain.md §12.3)."""
    return table.get(care_type, DefaultOwner.REFERRER)


def unowned_deadline(
    created_at: datetime,
    urgency_level: int,
    thresholds: Mapping[int, int] = UNOWNED_AFTER_MINUTES,
) -> datetime | None:
    """When an unowned placement becomes overdue; None when its urgency is never flagged."""
    minutes = thresholds.get(urgency_level)
    return None if minutes is None else created_at + timedelta(minutes=minutes)


def unowned_overdue(
    *,
    has_owner: bool,
    is_open: bool,
    created_at: datetime,
    urgency_level: int,
    now: datetime,
    thresholds: Mapping[int, int] = UNOWNED_AFTER_MINUTES,
) -> bool:
    """True when an open placement has had no owner for longer than its urgency allows."""
    if has_owner or not is_open:
        return False
    deadline = unowned_deadline(created_at, urgency_level, thresholds)
    return deadline is not None and now >= deadline
