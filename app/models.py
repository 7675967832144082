"""Every table, imported in one place so Alembic and the tests see the whole metadata."""

from app.auth.models import ApiKey, IdempotencyRecord
from app.capacity.models import CapacityReport, UnitCapacity
from app.db import Base
from app.realtime.models import OutboxEvent
from app.registry.models import (
    Location,
    Municipality,
    Organisation,
    Region,
    Subregion,
    SubregionNeighbour,
    Unit,
)

__all__ = [
    "ApiKey",
    "Base",
    "CapacityReport",
    "IdempotencyRecord",
    "Location",
    "Municipality",
    "Organisation",
    "OutboxEvent",
    "Region",
    "Subregion",
    "SubregionNeighbour",
    "Unit",
    "UnitCapacity",
]
