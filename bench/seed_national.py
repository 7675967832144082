"""Seed a national-size registry for the benchmarks, fast: Core bulk inserts via the app's tables.

11 ROAZ regions x 4-6 subregions, organisations, locations with coordinates, ``--units`` units
with one (mostly fresh) report each, plus one triagist API key. The database must be migrated
first (``juisteplek migrate``). Deterministic for a given ``--seed`` (ids, data; not the key).

    python -m bench.seed_national --url postgresql+asyncpg://... --units 10000 --out seed.json

Writes ``--out`` as JSON: {"key": <triagist key plaintext>, "subregions": [...], ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select, text

from app.auth.schemas import ApiKeyCreate
from app.auth.service import issue_key
from app.capacity.models import CapacityReport, UnitCapacity
from app.db import Database
from app.enums import CareType, Feature, OrganisationKind, Role, TargetGroup, mask_of
from app.registry.models import (
    Location,
    Municipality,
    Organisation,
    Region,
    Subregion,
    SubregionNeighbour,
    Unit,
)

# (code, name, latitude, longitude) of the 11 ROAZ regions, roughly at their centres.
REGIONS = [
    ("noord", "Acute Zorgnetwerk Noord-Nederland", 53.10, 6.40),
    ("zwolle", "Netwerk Acute Zorg Zwolle", 52.50, 6.10),
    ("euregio", "Netwerk Acute Zorg Euregio", 52.25, 6.75),
    ("oost", "Acute Zorgregio Oost", 51.90, 5.90),
    ("midden", "Netwerk Acute Zorg Midden-Nederland", 52.10, 5.20),
    ("nhf", "Netwerk Acute Zorg Noordwest", 52.55, 4.85),
    ("west", "ROAZ regio West", 52.10, 4.50),
    ("zwn", "Netwerk Acute Zorg Zuidwest-Nederland", 51.85, 4.45),
    ("brabant", "Netwerk Acute Zorg Brabant", 51.55, 5.20),
    ("limburg", "Netwerk Acute Zorg Limburg", 51.10, 5.90),
    ("zeeland", "ROAZ Zeeland", 51.45, 3.80),
]
# How often each care type occurs among units (relative weights).
CARE_TYPE_WEIGHTS = {
    CareType.ELV_LOW: 18,
    CareType.ELV_HIGH: 22,
    CareType.ELV_PALLIATIVE: 8,
    CareType.GRZ: 16,
    CareType.WLZ_CRISIS: 8,
    CareType.GGZ_CRISIS: 6,
    CareType.DISTRICT_NURSING_ACUTE: 10,
    CareType.DISTRICT_NURSING: 8,
    CareType.LOCAL_OTHER: 4,
}
STALE_SHARE = 0.08  # share of units whose latest report is older than the staleness TTL


def _id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def build(units: int, seed: int, now: datetime) -> dict[str, Any]:
    """All rows, per table, plus the subregion list the load script needs."""
    rng = random.Random(seed)
    stamp = {"created_at": now, "updated_at": now, "version": 1}
    regions: list[dict[str, Any]] = []
    subregions: list[dict[str, Any]] = []
    neighbours: list[dict[str, Any]] = []
    municipalities: list[dict[str, Any]] = []
    subs_of: dict[int, list[dict[str, Any]]] = {}
    for r, (code, name, lat, lon) in enumerate(REGIONS):
        regions.append({"id": _id(rng), "code": code, "name": name})
        subs_of[r] = []
        for j in range(1, rng.randint(4, 6) + 1):
            sub = {
                "id": _id(rng),
                "region_id": regions[-1]["id"],
                "code": f"{code}-{j}",
                "name": f"{name.split()[-1]} {j}",
                "lat": round(lat + rng.uniform(-0.25, 0.25), 4),
                "lon": round(lon + rng.uniform(-0.35, 0.35), 4),
            }
            subs_of[r].append(sub)
            subregions.append(sub)
            municipalities.append({"name": f"Gemeente {sub['code']}", "subregion_id": sub["id"]})
        for sub in subs_of[r]:
            others = sorted(
                (o for o in subs_of[r] if o is not sub),
                key=lambda o: (o["lat"] - sub["lat"]) ** 2 + (o["lon"] - sub["lon"]) ** 2,
            )
            neighbours += [
                {"subregion_id": sub["id"], "neighbour_id": o["id"], "rank": rank}
                for rank, o in enumerate(others[:3], start=1)
            ]
    kinds = [OrganisationKind.VVT] * 6 + [OrganisationKind.GRZ, OrganisationKind.GGZ]
    organisations = [
        {
            "id": _id(rng),
            "region_id": regions[i % len(regions)]["id"],
            "name": f"Zorggroep {i:04d}",
            "kind": kinds[i % len(kinds)].value,
            "agb_code": f"{73000000 + i}",
            "active": True,
            **stamp,
        }
        for i in range(max(len(regions), units // 16))
    ]
    rap = {
        "id": _id(rng),
        "region_id": regions[0]["id"],
        "name": "RAP bench",
        "kind": OrganisationKind.RAP.value,
        "agb_code": None,
        "active": True,
        **stamp,
    }
    locations = []
    for i in range(max(len(regions), units // 3)):
        r = i % len(regions)
        sub = rng.choice(subs_of[r])
        org = organisations[r + len(regions) * rng.randrange(len(organisations) // len(regions))]
        locations.append(
            {
                "id": _id(rng),
                "organisation_id": org["id"],
                "subregion_id": sub["id"],
                "name": f"Locatie {i:05d}",
                "address": f"Zorgstraat {i % 200 + 1}",
                "postcode": f"{1000 + i % 8999} AB",
                "municipality": f"Gemeente {sub['code']}",
                "latitude": round(sub["lat"] + rng.gauss(0, 0.06), 5),
                "longitude": round(sub["lon"] + rng.gauss(0, 0.09), 5),
                "phone": None if i % 4 == 0 else f"+31 10 {i:07d}",
                "active": i % 97 != 0,
                **stamp,
            }
        )
    care_types, weights = list(CARE_TYPE_WEIGHTS), list(CARE_TYPE_WEIGHTS.values())
    unit_rows, reports, states = [], [], []
    for i in range(units):
        care = rng.choices(care_types, weights)[0]
        groups = [TargetGroup.SOMATIC] if rng.random() < 0.85 else []
        if care == CareType.GGZ_CRISIS:
            groups = [TargetGroup.PSYCHIATRIC]
        elif rng.random() < 0.3:
            groups.append(TargetGroup.PSYCHOGERIATRIC)
        capacity = rng.randint(2, 40)
        unit = {
            "id": _id(rng),
            "location_id": rng.choice(locations)["id"],
            "name": f"{care.value} unit {i:05d}",
            "care_type": care.value,
            "target_group_mask": mask_of(groups or [TargetGroup.SOMATIC], TargetGroup),
            "feature_mask": mask_of([f for f in Feature if rng.random() < 0.2], Feature),
            "sex_policy": rng.choices(["any", "male", "female"], [85, 7, 8])[0],
            "staffed_capacity": capacity,
            "label": None if i % 3 else f"Afdeling {i % 40}",
            "active": i % 53 != 0,
            **stamp,
        }
        stale_minutes = 60 * (30 if care.value.startswith("district_nursing") else 6)
        age = (
            rng.uniform(stale_minutes, stale_minutes * 3)
            if rng.random() < STALE_SHARE
            else rng.uniform(1, 200)
        )
        free = 0 if rng.random() < 0.3 else rng.randint(1, capacity)
        report = {
            "id": i + 1,
            "unit_id": unit["id"],
            "free": free,
            "expected_free_24h": None if rng.random() < 0.5 else rng.randint(0, capacity),
            "reported_at": now - timedelta(minutes=age),
            "recorded_at": now - timedelta(minutes=age),
            "reported_by_key_id": None,
            "source": "bulk",
        }
        held = rng.randint(0, min(2, free)) if rng.random() < 0.1 else 0
        unit_rows.append(unit)
        reports.append(report)
        states.append(
            {
                "unit_id": unit["id"],
                "report_id": report["id"],
                "free": free,
                "expected_free_24h": report["expected_free_24h"],
                "reported_at": report["reported_at"],
                "held": held,
            }
        )
    sub_cols = ("id", "region_id", "code", "name")
    return {
        "tables": [
            (Region.__table__, regions),
            (Subregion.__table__, [{k: s[k] for k in sub_cols} for s in subregions]),
            (SubregionNeighbour.__table__, neighbours),
            (Municipality.__table__, municipalities),
            (Organisation.__table__, [*organisations, rap]),
            (Location.__table__, locations),
            (Unit.__table__, unit_rows),
            (CapacityReport.__table__, reports),
            (UnitCapacity.__table__, states),
        ],
        "rap_id": rap["id"],
        "subregions": [
            {"code": s["code"], "lat": s["lat"], "lon": s["lon"], "id": str(s["id"])}
            for s in subregions
        ],
    }


async def seed(url: str, units: int, seed_value: int) -> dict[str, Any]:
    started = time.perf_counter()
    data = build(units, seed_value, datetime.now(UTC))
    db = Database.from_url(url, pool_size=2, max_overflow=0)
    try:
        async with db.engine.begin() as conn:
            if await conn.scalar(select(func.count()).select_from(Region.__table__)):
                raise SystemExit("database already holds regions; seed a fresh database")
            tables: Sequence[tuple[Table, list[dict[str, Any]]]] = data["tables"]
            for table, rows in tables:
                await conn.execute(table.insert(), rows)
            await conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('capacity_report', 'id'), "
                    "(SELECT max(id) FROM capacity_report))"
                )
            )
        async with db.sessionmaker() as session:
            issued = await issue_key(
                session,
                ApiKeyCreate(
                    name="bench triagist", organisation_id=data["rap_id"], roles=[Role.TRIAGIST]
                ),
            )
            await session.commit()
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await db.dispose()
    counts = {table.name: len(rows) for table, rows in data["tables"]}
    return {
        "key": issued.key,
        "units": units,
        "seed": seed_value,
        "counts": counts,
        "subregions": data["subregions"],
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="postgresql+asyncpg:// URL (migrated)")
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="write the key and subregions here as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(seed(args.url, args.units, args.seed))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))
    print(f"seeded {result['counts']} in {result['seconds']} s")
    print(f"triagist key: {result['key']}")


if __name__ == "__main__":
    main()
