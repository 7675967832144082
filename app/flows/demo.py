"""Loads the demo region West (``demo_west.yaml``, docs/domain.md §11) through the region import.

The file is a region file like any other, so the demo obeys every rule an import does.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import orjson
import yaml
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.enums import Role
from app.flows import region_import as importer
from app.principal import Principal
from app.registry import regionfile
from app.registry.models import Organisation, Region, Unit

DEMO_FILE = "demo_west.yaml"
# Acute district nursing teams of the demo that do not cover the night (their names do not say
# "incl. ANW"): admission hours 07:00-23:00 every day (docs/domain.md §15.3).
_DAY_TEAM = {
    "always_open": False,
    "weekly": {
        d: [{"opens": "07:00", "closes": "23:00"}]
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    },
    "exceptions": [],
}
DEMO_ADMISSION_HOURS = {
    "fundis-seghwaert-district-nursing-acute": _DAY_TEAM,
    "marente-katwijk-district-nursing-acute": _DAY_TEAM,
    "activite-alphen-district-nursing-acute": _DAY_TEAM,
}


def demo_data() -> dict[str, Any]:
    text = resources.files("app.registry").joinpath(DEMO_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _minutes_ago(code: str) -> int:
    """A stable pseudo-random report age: mostly fresh, every 13th unit stale (about 6 h)."""
    n = int(hashlib.sha256(code.encode()).hexdigest()[:8], 16)
    return 360 + n % 60 if n % 13 == 0 else 5 + n % 170


async def is_loaded(session: AsyncSession) -> bool:
    code = demo_data()["region"]["code"]
    return await session.scalar(select(Region.id).where(Region.code == code)) is not None


async def load_demo(
    session: AsyncSession, principal: Principal, *, now: datetime, settings: Settings
) -> dict[str, int]:
    """Load the region file through the region import (as ``juisteplek import-region`` does);
    each unit's ``free`` becomes its first report, aged a little per unit."""
    principal.require(Role.ADMIN)
    file = regionfile.parse(demo_data())
    diff = await importer.import_region(
        session,
        principal,
        file,
        now=now,
        settings=settings,
        report_at=lambda code: now - timedelta(minutes=_minutes_ago(code)),
        report_source="demo",
    )
    for code, hours in DEMO_ADMISSION_HOURS.items():
        await session.execute(
            update(Unit)
            .where(Unit.external_id == code, Unit.admission_hours.is_(None))
            .values(admission_hours=orjson.dumps(hours).decode())
        )
    return {
        "organisations": diff.organisations.counts["created"],
        "locations": diff.locations.counts["created"],
        "units": diff.units.counts["created"],
    }


async def demo_organisation_ids(session: AsyncSession) -> dict[str, Any]:
    """Organisations the demo keys belong to: first VVT, first hospital, first RAP desk."""
    picks: dict[str, Any] = {}
    for kind in ("vvt", "hospital", "rap"):
        picks[kind] = await session.scalar(
            select(Organisation.id).where(Organisation.kind == kind).order_by(Organisation.name)
        )
    return picks
