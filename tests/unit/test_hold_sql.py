"""The hold's SQL is generated from the placement state table: it lists exactly the states the
table allows a hold in and moves the placement to the state the table names."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from app.placement import holds
from app.placement.states import TRANSITIONS, Action, State, move

SQLITE = sqlite.dialect()
PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def _sql(stmt: ClauseElement, dialect: Dialect) -> str:
    return str(stmt.compile(dialect=dialect))


def _in_lists(sql: str) -> list[set[str]]:
    """Every ``state IN (...)`` of ``sql``, as the set of quoted names it lists."""
    found = re.findall(r"\bstate IN \(([^)]*)\)", sql)
    return [set(re.findall(r"'([a-z_]+)'", body)) for body in found]


def _targets(sql: str) -> list[str]:
    return re.findall(r"SET state = '([a-z_]+)'", sql)


def test_the_service_statements_follow_the_table() -> None:
    allowed = {s.value for s in State if (s, Action.HOLD) in TRANSITIONS}
    target = TRANSITIONS[(State.TRIAGED, Action.HOLD)].value
    sqlite_sql = _sql(holds._OFFER, SQLITE)
    pg_sql = _sql(holds._LOAD_OFFER, PG)
    assert _in_lists(sqlite_sql) == [allowed]
    assert _in_lists(pg_sql) == [allowed, allowed]  # the locked row and the snapshot read
    assert _targets(sqlite_sql) == [target]
    assert _targets(pg_sql) == [target]
    # no second copy: no other state name is written as a literal
    for sql in (sqlite_sql, pg_sql):
        named = set(re.findall(r"'([a-z_]+)'", sql))
        assert named == allowed | {target}


def test_changing_the_table_changes_the_sql() -> None:
    table = dict(TRANSITIONS)
    table[(State.REQUESTED, Action.HOLD)] = State.OFFERED
    offer, load_offer = holds.offer_statements(move(Action.HOLD, table))
    assert _in_lists(_sql(offer, SQLITE)) == [{"requested", "triaged"}]
    assert _in_lists(_sql(load_offer, PG)) == [{"requested", "triaged"}] * 2

    table = {k: v for k, v in TRANSITIONS.items() if k[1] is not Action.HOLD}
    table[(State.OFFERED, Action.HOLD)] = State.ACCEPTED
    offer, load_offer = holds.offer_statements(move(Action.HOLD, table))
    for sql in (_sql(offer, SQLITE), _sql(load_offer, PG)):
        assert _targets(sql) == ["accepted"]
        assert all(names == {"offered"} for names in _in_lists(sql))


def test_state_literals_are_state_names_only() -> None:
    assert holds._sql_states([State.TRIAGED, State.OFFERED]) == "'triaged', 'offered'"
    with pytest.raises(ValueError, match="not state names"):
        holds._sql_states([])
    with pytest.raises(ValueError, match="is not a valid State"):
        holds._sql_states(["triaged'; DROP TABLE placement; --"])  # type: ignore[list-item]
