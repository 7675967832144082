"""External identifiers in the exchange formats: a unit's region-file code in the CSV, an
organisation's URA / AGB / KvK and a location's code in FHIR. Runs where the registry holds
these columns (the region file import adds them); skipped before that."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.db import Database
from app.registry.models import Location, Organisation, Unit
from tests.conftest import auth
from tests.factories import Seed

pytestmark = pytest.mark.skipif(
    not all(
        hasattr(model, name)
        for model, name in (
            (Unit, "external_id"),
            (Location, "external_id"),
            (Organisation, "ura_number"),
            (Organisation, "kvk_number"),
        )
    ),
    reason="the registry has no external identifier columns yet",
)


async def set_codes(db: Database, seed: Seed) -> None:
    org: Any = Organisation
    async with db.sessionmaker() as session:
        await session.execute(
            update(Unit)
            .where(Unit.id == seed.units["leiden-grz"])
            .values({"external_id": "topaz-leiden-grz"})
        )
        await session.execute(
            update(Location)
            .where(Location.id == seed.locations["leiden"])
            .values({"external_id": "topaz-leiden"})
        )
        await session.execute(
            update(org)
            .where(org.id == seed.organisations["vvt-leiden"])
            .values({"ura_number": "00012345", "kvk_number": "41150000", "agb_code": "73730001"})
        )
        await session.commit()


async def test_csv_by_external_id_and_snapshot_identifiers(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    await set_codes(db, seed)
    r = await client.post(
        "/v1/capacity-reports",
        content="external_id,free\ntopaz-leiden-grz,2\nno-such-code,1\n",
        headers={**auth(seed.keys["provider"]), "Content-Type": "text/csv"},
    )
    assert r.status_code == 422, r.text
    assert [e["pointer"] for e in r.json()["errors"]] == ["/lines/3/external_id"]
    r = await client.post(
        "/v1/capacity-reports",
        content="external_id,free\ntopaz-leiden-grz,2\n",
        headers={**auth(seed.keys["provider"]), "Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    rows = (await client.get("/v1/capacity-snapshot", headers=auth(seed.keys["triagist"]))).json()[
        "items"
    ]
    row = next(x for x in rows if x["unit_id"] == str(seed.units["leiden-grz"]))
    assert (row["external_id"], row["free"], row["organisation_ura"]) == (
        "topaz-leiden-grz",
        2,
        "00012345",
    )
    assert (row["organisation_agb"], row["organisation_kvk"]) == ("73730001", "41150000")


async def test_fhir_identifiers(client: httpx.AsyncClient, seed: Seed, db: Database) -> None:
    await set_codes(db, seed)
    key = auth(seed.keys["triagist"])
    r = await client.get(
        "/fhir/Organization",
        params={"identifier": "http://fhir.nl/fhir/NamingSystem/ura|00012345"},
        headers=key,
    )
    (entry,) = r.json()["entry"]
    assert [i["system"] for i in entry["resource"]["identifier"]] == [
        "http://fhir.nl/fhir/NamingSystem/ura",
        "http://fhir.nl/fhir/NamingSystem/agb-z",
        "http://fhir.nl/fhir/NamingSystem/kvk",
        "urn:ietf:rfc:3986",
    ]
    system = "https://juisteplek.nl/fhir/NamingSystem/external-id"
    r = await client.get("/fhir/Location", params={"identifier": "topaz-leiden"}, headers=key)
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [str(seed.locations["leiden"])]
    # A partner names the location and unit by their codes only.
    report = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": "https://juisteplek.nl/fhir/Measure/juisteplek-capacity",
        "subject": {"identifier": {"system": system, "value": "topaz-leiden"}},
        "date": r.json()["meta"]["lastUpdated"],
        "period": {"start": r.json()["meta"]["lastUpdated"]},
        "group": [
            {
                "code": {
                    "coding": [
                        {"system": "https://juisteplek.nl/fhir/CodeSystem/care-type", "code": "grz"}
                    ]
                },
                "stratifier": [
                    {
                        "stratum": [
                            {
                                "value": {
                                    "coding": [{"system": system, "code": "topaz-leiden-grz"}]
                                },
                                "population": [
                                    {
                                        "code": {"coding": [{"code": "available"}]},
                                        "count": 1,
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ],
    }
    r = await client.post("/fhir/MeasureReport", json=report, headers=auth(seed.keys["provider"]))
    assert r.status_code == 201, r.text
