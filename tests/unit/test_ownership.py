"""The pure case-ownership rules (docs/domain.md §12.3, §15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.enums import CareType
from app.placement.ownership import (
    UNOWNED_AFTER_MINUTES,
    DefaultOwner,
    default_owner,
    unowned_deadline,
    unowned_overdue,
)

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("care_type", list(CareType))
def test_default_owner(care_type: CareType) -> None:
    crisis = care_type in (CareType.WLZ_CRISIS, CareType.GGZ_CRISIS)
    assert default_owner(care_type) == (DefaultOwner.TRIAGIST if crisis else DefaultOwner.REFERRER)


def test_default_owner_is_data() -> None:
    table = {CareType.GRZ: DefaultOwner.TRIAGIST}
    assert default_owner(CareType.GRZ, table) == DefaultOwner.TRIAGIST
    assert default_owner(CareType.WLZ_CRISIS, table) == DefaultOwner.REFERRER


@pytest.mark.parametrize(("level", "minutes"), [(0, 15), (3, 15), (4, 60), (5, 240)])
def test_threshold_edges(level: int, minutes: int) -> None:
    assert UNOWNED_AFTER_MINUTES[level] == minutes
    deadline = T0 + timedelta(minutes=minutes)
    assert unowned_deadline(T0, level) == deadline

    def flag(now: datetime, *, has_owner: bool = False, is_open: bool = True) -> bool:
        return unowned_overdue(
            has_owner=has_owner, is_open=is_open, created_at=T0, urgency_level=level, now=now
        )

    assert not flag(deadline - timedelta(microseconds=1))
    assert flag(deadline)
    assert not flag(deadline, has_owner=True)
    assert not flag(deadline, is_open=False)


def test_levels_without_threshold_are_never_flagged() -> None:
    assert unowned_deadline(T0, 4, {3: 10}) is None
    far = T0 + timedelta(days=365)
    assert not unowned_overdue(
        has_owner=False, is_open=True, created_at=T0, urgency_level=4, now=far, thresholds={3: 10}
    )
