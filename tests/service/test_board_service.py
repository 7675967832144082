"""The triagist's board: summary per care type x subregion and the unit list, on both backends."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from app.auth.service import KeyResolver
from app.capacity import board
from app.capacity import service as capacity_service
from app.capacity import status as unit_status
from app.capacity.board import BoardQuery
from app.capacity.freshness import Freshness
from app.capacity.schemas import CapacityReportIn, UnitStatusIn
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Feature, NotAcceptingReason, Sex
from app.errors import Forbidden, InvalidInput
from app.principal import Principal
from tests.factories import ADMIN, Seed, add_unit


async def principal(db: Database, seed: Seed, role: str) -> Principal:
    return await KeyResolver(db, ttl=0).resolve(f"Bearer {seed.keys[role]}")


async def report(db: Database, settings: Settings, unit_id: uuid.UUID, free: int) -> None:
    async with db.sessionmaker() as session:
        now = utcnow()
        await capacity_service.report_capacity(
            session, ADMIN, unit_id, CapacityReportIn(free=free), now=now, settings=settings
        )
        await session.commit()


async def test_summary_counts_known_places_and_stale_ones_as_unknown(
    db: Database, settings: Settings, seed: Seed
) -> None:
    stale = await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="ELV HC oud",
        care_type=CareType.ELV_HIGH,
        free=7,
        reported_at=utcnow() - timedelta(minutes=settings.stale_after_bed_minutes + 5),
    )
    triagist = await principal(db, seed, "triagist")
    view = await board.board_summary(db, triagist, now=utcnow(), settings=settings)
    s = view.summary
    assert s.care_types == ["elv_high", "grz"]
    assert {view.subregions[x].code for x in s.subregion_ids} == {"leiden", "den-haag", "gouda"}
    leiden = s.cell("elv_high", seed.subregions["leiden"])
    assert leiden is not None
    # 2 free in the fresh report; the stale unit's 7 is unknown, not added
    assert (leiden.available, leiden.units, leiden.unknown_units) == (2, 2, 1)
    assert s.total("elv_high").available == 2 + 3 + 1
    grz = s.cell("grz", seed.subregions["leiden"])
    assert grz is not None
    assert grz.available == 4

    await report(db, settings, seed.units["leiden-elv-high"], 0)
    later = await board.board_summary(db, triagist, now=utcnow(), settings=settings)
    cell = later.summary.cell("elv_high", seed.subregions["leiden"])
    assert cell is not None
    assert (cell.available, cell.status) == (0, "full")
    assert stale  # the unit exists and is counted as unknown above


async def test_units_list_places_then_full_then_unknown_with_their_figures(
    db: Database, settings: Settings, seed: Seed
) -> None:
    stale = await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="ELV HC oud",
        care_type=CareType.ELV_HIGH,
        free=7,
        reported_at=utcnow() - timedelta(minutes=settings.stale_after_bed_minutes + 5),
    )
    await report(db, settings, seed.units["den-haag-elv-high"], 0)
    triagist = await principal(db, seed, "triagist")
    result = await board.board_units(
        db, triagist, BoardQuery(care_types=(CareType.ELV_HIGH,)), now=utcnow(), settings=settings
    )
    ids = [u.unit_id for u in result.items]
    assert ids[-2:] == [seed.units["den-haag-elv-high"], stale]
    assert set(ids[:2]) == {seed.units["leiden-elv-high"], seed.units["gouda-elv-high"]}
    by_id = {u.unit_id: u for u in result.items}
    old = by_id[stale]
    assert (old.freshness, old.free, old.available, old.bookable) == (
        Freshness.STALE,
        None,
        None,
        0,
    )
    assert old.age_minutes is not None
    assert old.age_minutes >= settings.stale_after_bed_minutes
    full = by_id[seed.units["den-haag-elv-high"]]
    assert (full.available, full.free, full.known) == (0, 0, True)
    leiden = by_id[seed.units["leiden-elv-high"]]
    assert (leiden.available, leiden.held, leiden.freshness) == (2, 0, Freshness.FRESH)
    assert leiden.organisation_name == "Topaz"
    assert leiden.subregion_code == "leiden"
    assert result.total == 4


async def test_unit_filters_scope_and_distance(
    db: Database, settings: Settings, seed: Seed
) -> None:
    triagist = await principal(db, seed, "triagist")

    async def ids(**kw: Any) -> list[uuid.UUID]:
        found = await board.board_units(
            db, triagist, BoardQuery(**kw), now=utcnow(), settings=settings
        )
        return [u.unit_id for u in found.items]

    u = seed.units
    assert set(await ids()) == set(u.values())
    assert u["gouda-elv-high"] not in await ids(sex=Sex.MALE)
    assert u["gouda-elv-high"] in await ids(sex=Sex.FEMALE)
    assert await ids(features=(Feature.ISOLATION,)) == [u["den-haag-elv-high"]]
    assert set(await ids(subregion="leiden")) == {u["leiden-elv-high"], u["leiden-grz"]}
    escalated = await ids(care_types=(CareType.ELV_HIGH,), subregion="leiden", escalate=True)
    assert escalated == [u["leiden-elv-high"], u["den-haag-elv-high"], u["gouda-elv-high"]]
    near_gouda = await board.board_units(
        db,
        triagist,
        BoardQuery(care_types=(CareType.ELV_HIGH,), near="gouda"),
        now=utcnow(),
        settings=settings,
    )
    assert near_gouda.near is not None
    assert near_gouda.near.label == "Gouda"
    assert next(x.unit_id for x in near_gouda.items) == u["gouda-elv-high"]
    assert near_gouda.items[0].distance_km == 0.0
    assert near_gouda.items[-1].distance_km is not None
    assert near_gouda.items[-1].distance_km > 20
    by_postcode = await board.board_units(
        db, triagist, BoardQuery(near="2300 AB"), now=utcnow(), settings=settings
    )
    assert by_postcode.near is not None
    one = await board.board_units(
        db, triagist, BoardQuery(), now=utcnow(), settings=settings, unit_id=u["leiden-grz"]
    )
    assert [x.unit_id for x in one.items] == [u["leiden-grz"]]


async def test_board_refusals(db: Database, settings: Settings, seed: Seed) -> None:
    provider = await principal(db, seed, "provider")
    with pytest.raises(Forbidden):
        await board.board_summary(db, provider, now=utcnow(), settings=settings)
    with pytest.raises(Forbidden):
        await board.board_units(db, provider, BoardQuery(), now=utcnow(), settings=settings)
    triagist = await principal(db, seed, "triagist")
    with pytest.raises(InvalidInput) as exc:
        await board.board_units(
            db, triagist, BoardQuery(near="Atlantis"), now=utcnow(), settings=settings
        )
    assert exc.value.errors is not None
    assert exc.value.errors[0]["pointer"] == "query:near"


async def test_summary_does_not_count_the_places_of_a_unit_closed_to_admissions(
    db: Database, settings: Settings, seed: Seed
) -> None:
    triagist = await principal(db, seed, "triagist")
    before = await board.board_summary(db, triagist, now=utcnow(), settings=settings)
    cell = before.summary.cell("grz", seed.subregions["leiden"])
    assert cell is not None
    assert cell.available == 4
    async with db.sessionmaker() as session:
        await unit_status.set_status(
            session,
            ADMIN,
            seed.units["leiden-grz"],
            UnitStatusIn(accepting=False, reason=NotAcceptingReason.OUTBREAK),
            now=utcnow(),
        )
        await session.commit()
    after = await board.board_summary(db, triagist, now=utcnow(), settings=settings)
    cell = after.summary.cell("grz", seed.subregions["leiden"])
    assert cell is not None
    assert cell.available == 0
