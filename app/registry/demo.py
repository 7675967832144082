"""Loads the demo region West (``demo_west.yaml``, docs/domain.md §11) through the services.

The data goes through the same service functions as the API, so the demo obeys every rule.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.capacity import service as capacity_service
from app.capacity.schemas import CapacityReportIn
from app.config import Settings
from app.enums import Role
from app.registry import service as registry_service
from app.registry.models import Municipality, Organisation, Region, Subregion, SubregionNeighbour
from app.registry.schemas import LocationCreate, OrganisationCreate, UnitCreate

DEMO_FILE = "demo_west.yaml"


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
    """Create region, subregions, organisations, locations, units and a first report per unit."""
    principal.require(Role.ADMIN)
    data = demo_data()
    region = Region(code=data["region"]["code"], name=data["region"]["name"])
    session.add(region)
    await session.flush()
    subregions: dict[str, Subregion] = {}
    for sub in data["subregions"]:
        subregions[sub["code"]] = Subregion(region_id=region.id, code=sub["code"], name=sub["name"])
        session.add(subregions[sub["code"]])
    await session.flush()
    for sub in data["subregions"]:
        own = subregions[sub["code"]]
        for rank, code in enumerate(sub["neighbours"], start=1):
            session.add(
                SubregionNeighbour(subregion_id=own.id, neighbour_id=subregions[code].id, rank=rank)
            )
        for name in sub["municipalities"]:
            session.add(Municipality(name=name, subregion_id=own.id))
    await session.flush()
    counts = {"organisations": 0, "locations": 0, "units": 0}
    for org in data["organisations"]:
        created = await registry_service.create_organisation(
            session,
            principal,
            OrganisationCreate(
                name=org["name"],
                kind=org["kind"],
                region_id=region.id,
                agb_code=org.get("agb_code"),
            ),
        )
        counts["organisations"] += 1
        for loc in org.get("locations", []):
            location = await registry_service.create_location(
                session,
                principal,
                LocationCreate(
                    organisation_id=created.id,
                    **{
                        k: loc[k]
                        for k in (
                            "name",
                            "address",
                            "postcode",
                            "municipality",
                            "latitude",
                            "longitude",
                        )
                    },
                    phone=loc.get("phone"),
                ),
            )
            counts["locations"] += 1
            for unit in loc.get("units", []):
                made = await registry_service.create_unit(
                    session,
                    principal,
                    UnitCreate(
                        location_id=location.id,
                        **{
                            k: unit[k]
                            for k in ("name", "care_type", "target_groups", "staffed_capacity")
                        },
                        sex_policy=unit.get("sex_policy", "any"),
                        features=unit.get("features", []),
                        label=unit.get("label"),
                    ),
                )
                await capacity_service.report_capacity(
                    session,
                    principal,
                    made.id,
                    CapacityReportIn(
                        free=unit["free"],
                        expected_free_24h=unit.get("expected_free_24h"),
                        reported_at=now - timedelta(minutes=_minutes_ago(unit["code"])),
                    ),
                    now=now,
                    settings=settings,
                    source="demo",
                )
                counts["units"] += 1
    return counts


async def demo_organisation_ids(session: AsyncSession) -> dict[str, Any]:
    """Organisations the demo keys belong to: first VVT, first hospital, first RAP desk."""
    picks: dict[str, Any] = {}
    for kind in ("vvt", "hospital", "rap"):
        picks[kind] = await session.scalar(
            select(Organisation.id).where(Organisation.kind == kind).order_by(Organisation.name)
        )
    return picks
