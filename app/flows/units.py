"""A new unit: its registry entry and its current-capacity row, in one transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.capacity.models import UnitCapacity
from app.principal import Principal
from app.registry import service as registry_service
from app.registry.schemas import UnitCreate, UnitRead


async def create_unit(session: AsyncSession, principal: Principal, body: UnitCreate) -> UnitRead:
    """Add a unit (``registry.service.create_unit``). Every unit has a current-capacity row from
    birth: nothing free until its first report."""
    unit = await registry_service.create_unit(session, principal, body)
    session.add(UnitCapacity(unit_id=unit.id, free=0, held=0))
    await session.flush()
    return unit
