"""Property: random interleavings of hold/decline/expire/admit/report never over-commit a unit,
and ``unit_capacity.held`` always equals its recount (docs/domain.md §3.1, docs/domain.md §12.6)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.audit.service import AuditContext
from app.capacity import service as capacity_service
from app.capacity.schemas import CapacityReportIn
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType
from app.errors import DomainError
from app.placement import service as placement_service
from app.placement import sweeper
from app.placement.errors import NoCapacity
from app.placement.schemas import DeclineIn, HoldCreate, OccurredIn
from tests.factories import ADMIN, Seed, add_unit, create_placements

N = 5
CTX = AuditContext(principal=ADMIN, access_point="127.0.0.1")

op = st.one_of(
    st.tuples(st.just("hold"), st.integers(0, N - 1)),
    st.tuples(st.just("decline"), st.integers(0, N - 1)),
    st.tuples(st.just("expire"), st.integers(0, N - 1)),
    st.tuples(st.just("admit"), st.integers(0, N - 1)),
    st.tuples(st.just("report"), st.integers(0, 5)),
)


async def unit_state(db: Database, unit: uuid.UUID) -> tuple[int, int, int, datetime]:
    """(free, held, recount, reported_at) of the unit."""
    u = unit.hex if db.dialect == "sqlite" else unit
    async with db.sessionmaker() as session:
        row = (
            await session.execute(
                text("SELECT free, held FROM unit_capacity WHERE unit_id = :u"), {"u": u}
            )
        ).one()
        reported_at = await session.scalar(
            text("SELECT max(reported_at) FROM capacity_report WHERE unit_id = :u"), {"u": u}
        )
        stamp = (
            datetime.fromisoformat(str(reported_at))
            if not isinstance(reported_at, datetime)
            else reported_at
        )
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=utcnow().tzinfo)
        recount = await placement_service.recount_held(session, unit, stamp)
    return int(row.free), int(row.held), recount, stamp


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    initial_free=st.integers(0, 3),
    ops=st.lists(st.tuples(op, st.integers(1, 600)), min_size=1, max_size=18),
)
async def test_random_interleavings_keep_the_invariant(
    db: Database,
    settings: Settings,
    seed: Seed,
    initial_free: int,
    ops: list[tuple[tuple[str, int], int]],
) -> None:
    unit = await add_unit(
        db,
        settings,
        seed.locations["gouda"],
        name="Property unit",
        care_type=CareType.ELV_HIGH,
        free=initial_free,
    )
    placements = await create_placements(db, settings, seed, N)
    state = dict.fromkeys(range(N), "triaged")
    hold_of: dict[int, uuid.UUID] = {}
    clock = utcnow() + timedelta(seconds=1)
    for (name, arg), advance in ops:
        clock += timedelta(seconds=advance)
        free, held, _, reported_at = await unit_state(db, unit)
        async with db.sessionmaker() as session:
            try:
                if name == "hold" and state[arg] == "triaged":
                    pid = placements[arg]
                    try:
                        hold = await placement_service.place_hold(
                            session,
                            CTX,
                            pid,
                            HoldCreate(unit_id=unit),
                            now=clock,
                            settings=settings,
                        )
                    except NoCapacity:
                        assert free - held <= 0, "refused although a place was free"
                        continue
                    # Never over-committed: a hold only succeeds on a free place.
                    assert free - held > 0, "hold succeeded on a full unit"
                    await session.commit()
                    hold_of[arg] = hold.id
                    state[arg] = "offered"
                elif name == "decline" and state[arg] == "offered":
                    await placement_service.decline(
                        session,
                        CTX,
                        placements[arg],
                        DeclineIn(reason="staff_shortage"),
                        now=clock,
                        settings=settings,
                    )
                    await session.commit()
                    state[arg] = "triaged"
                elif name == "expire" and state[arg] == "offered":
                    clock += timedelta(hours=2)
                    assert await sweeper.expire_hold(db, hold_of[arg], now=clock)
                    state[arg] = "triaged"
                elif name == "admit" and state[arg] == "offered":
                    pid = placements[arg]
                    await placement_service.accept(
                        session, CTX, pid, OccurredIn(), now=clock, settings=settings
                    )
                    await placement_service.admit(
                        session, CTX, pid, OccurredIn(), now=clock, settings=settings
                    )
                    await session.commit()
                    state[arg] = "transferred"
                elif name == "report":
                    # Sometimes back-dated (but never before the latest report), so admitted
                    # holds newer than the report stay counted.
                    at = max(reported_at, clock - timedelta(seconds=advance // 2))
                    await capacity_service.report_capacity(
                        session,
                        ADMIN,
                        unit,
                        CapacityReportIn(free=arg, reported_at=at),
                        now=clock,
                        settings=settings,
                    )
                    await session.commit()
            except DomainError as exc:  # pragma: no cover - would be a bug
                raise AssertionError(f"{name}({arg}) failed: {exc.detail}") from exc
        _, held_after, recount, _ = await unit_state(db, unit)
        assert held_after == recount, f"after {name}({arg}): held {held_after} != {recount}"
        active = sum(1 for s in state.values() if s == "offered")
        assert held_after >= active
