"""The memoised search scope: one graph read per subregion and TTL, unknown refs never kept."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from app.capacity.service import ScopeResolver
from app.db import Database
from app.errors import InvalidInput
from app.registry.models import SubregionNeighbour
from tests.factories import Seed


async def _gouda_first(db: Database, seed: Seed) -> None:
    """Leiden escalates to Gouda before Den Haag from now on."""
    leiden = SubregionNeighbour.subregion_id == seed.subregions["leiden"]
    async with db.sessionmaker() as session:
        await session.execute(delete(SubregionNeighbour).where(leiden))
        for rank, code in enumerate(["gouda", "den-haag"], start=1):
            session.add(
                SubregionNeighbour(
                    subregion_id=seed.subregions["leiden"],
                    neighbour_id=seed.subregions[code],
                    rank=rank,
                )
            )
        await session.commit()


def _order(seed: Seed, *codes: str) -> tuple[object, ...]:
    return tuple(seed.subregions[c] for c in codes)


async def test_scope_is_kept_for_its_ttl(db: Database, seed: Seed) -> None:
    scopes = ScopeResolver(db, ttl=60.0)
    first = await scopes.resolve("leiden", True)
    assert first is not None
    assert first.subregion_ids[:3] == _order(seed, "leiden", "den-haag", "gouda")
    await _gouda_first(db, seed)
    assert await scopes.resolve("leiden", True) == first  # served from memory, no query


async def test_expired_scope_is_read_again(db: Database, seed: Seed) -> None:
    scopes = ScopeResolver(db, ttl=0.0)
    before = await scopes.resolve("leiden", True)
    await _gouda_first(db, seed)
    after = await scopes.resolve("leiden", True)
    assert before is not None
    assert after is not None
    assert before.subregion_ids[:3] == _order(seed, "leiden", "den-haag", "gouda")
    assert after.subregion_ids[:3] == _order(seed, "leiden", "gouda", "den-haag")


async def test_unknown_subregion_raises_every_time(db: Database, seed: Seed) -> None:
    scopes = ScopeResolver(db)
    for _ in range(2):
        with pytest.raises(InvalidInput):
            await scopes.resolve("atlantis", False)
    assert await scopes.resolve(None, True) is None
