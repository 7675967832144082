"""The one cursor codec of every paged list: round trips, and forged cursors refused as a 422."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from app.audit.models import AuditLog
from app.errors import InvalidInput
from app.pagination import Keyset
from app.placement.models import Placement, TransferEvent

BY_TIME = Keyset(Placement.created_at, Placement.id, descending=True)
BY_ID = Keyset(AuditLog.id)  # BIGINT
BY_SEQ = Keyset(TransferEvent.seq)  # INTEGER
SOME_ID = uuid.UUID(int=42)


def forged(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_round_trips_keep_type_and_value() -> None:
    at = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)
    key = uuid.uuid4()
    assert BY_TIME.decode(BY_TIME.encode([at, key])) == (at, key)
    assert BY_ID.decode(BY_ID.encode([2**63 - 1])) == (2**63 - 1,)
    assert BY_SEQ.decode(BY_SEQ.encode([2**31 - 1])) == (2**31 - 1,)


@pytest.mark.parametrize(
    ("keyset", "cursor"),
    [
        (BY_ID, "%%%"),
        (BY_ID, "\u00ff\u00fe"),
        (BY_ID, forged("")),
        (BY_ID, forged("9" * 40)),  # no BIGINT holds it
        (BY_ID, forged(str(2**63))),
        (BY_ID, forged("-1")),
        (BY_ID, forged("1e400")),
        (BY_ID, forged("١٢")),  # digits, but not ASCII ones
        (BY_ID, forged("1|2")),  # two values for one column
        (BY_SEQ, forged(str(2**31))),  # a BIGINT, but no INTEGER
        (BY_TIME, forged("12")),
        (BY_TIME, forged(f"2026-01-01T00:00:00|{SOME_ID}")),  # no offset
        (BY_TIME, forged(f"0001-01-01T00:00:00+14:00|{SOME_ID}")),
        (BY_TIME, forged(f"9999-12-31T23:59:59-14:00|{SOME_ID}")),
        (BY_TIME, forged("2026-01-01T00:00:00Z|not-a-uuid")),
        (BY_TIME, forged("\x00")),
        (BY_TIME, BY_ID.encode([5])),  # a cursor of another list
    ],
)
def test_forged_cursors_are_refused_naming_the_parameter(keyset: Keyset, cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        keyset.decode(cursor)
    assert refused.value.status == 422
    assert [e["pointer"] for e in refused.value.errors or []] == ["query:cursor"]


def test_the_condition_follows_the_order() -> None:
    at = datetime(2026, 11, 23, tzinfo=UTC)
    sql = str(
        BY_TIME.select(select(Placement), BY_TIME.encode([at, uuid.UUID(int=7)]), 10).compile(
            dialect=postgresql.dialect()  # type: ignore[no-untyped-call]
        )
    )
    assert "placement.created_at < " in sql
    assert "placement.created_at = " in sql
    assert "placement.id < " in sql
    assert "ORDER BY placement.created_at DESC, placement.id DESC" in sql
    ascending = str(BY_ID.select(select(AuditLog), BY_ID.encode([3]), 5))
    assert "audit_log.id > " in ascending
    assert "ORDER BY audit_log.id" in ascending


@dataclass
class _Row:
    id: int


def test_a_page_has_a_next_cursor_only_when_more_rows_follow() -> None:
    rows = [_Row(i) for i in range(1, 5)]
    assert BY_ID.page(rows, 4) == (rows, None)
    shown, nxt = BY_ID.page(rows, 3)
    assert shown == rows[:3]
    assert nxt is not None
    assert BY_ID.decode(nxt) == (3,)
