"""FHIR R4 endpoints: every resource returned validates with fhir.resources (R4B); searches
page with next links; MeasureReports write capacity under the REST rules; every error is an
OperationOutcome (4xx, never a problem document, never 5xx)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, insert, select

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.capacity.models import CapacityReport, UnitCapacity
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.main import create_app
from app.registry.models import (
    Location,
    Municipality,
    Organisation,
    Region,
    Subregion,
    SubregionNeighbour,
    Unit,
)
from tests.conftest import auth, fresh_database_url
from tests.factories import GRZ, Seed, create_placements

FHIR_JSON = "application/fhir+json"
CARE_TYPE = "https://juisteplek.nl/fhir/CodeSystem/care-type"
POPULATION = "https://juisteplek.nl/fhir/CodeSystem/capacity-population"


def valid(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a returned resource (and each resource in a Bundle) with the R4B models."""
    model = get_fhir_model_class(body["resourceType"])
    model.model_validate(body)
    for entry in body.get("entry", []):
        if "resource" in entry:
            valid(entry["resource"])
    return body


async def fhir_get(
    client: httpx.AsyncClient, key: str | None, path: str, **params: Any
) -> dict[str, Any]:
    r = await client.get(path, params=params, headers={} if key is None else auth(key))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == FHIR_JSON
    return valid(r.json())


def assert_outcome(r: httpx.Response, status: int, *expressions: str) -> dict[str, Any]:
    """An OperationOutcome with ``status`` whose issues name ``expressions`` (in order)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = valid(r.json())
    assert body["resourceType"] == "OperationOutcome"
    assert all(i["severity"] == "error" for i in body["issue"])
    if expressions:
        assert [i["expression"][0] for i in body["issue"]] == list(expressions)
    return body


def measure_report(
    location_id: uuid.UUID | str, available: int, *, care_type: str = "elv_high", **extra: Any
) -> dict[str, Any]:
    at = (utcnow() - timedelta(minutes=1)).isoformat()
    body: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": "https://juisteplek.nl/fhir/Measure/juisteplek-capacity",
        "subject": {"reference": f"Location/{location_id}"},
        "date": at,
        "period": {"start": at, "end": at},
        "group": [
            {
                "code": {"coding": [{"system": CARE_TYPE, "code": care_type}]},
                "population": [
                    {
                        "code": {"coding": [{"system": POPULATION, "code": "available"}]},
                        "count": available,
                    }
                ],
            }
        ],
    }
    body.update(extra)
    return body


def population(report: dict[str, Any], name: str) -> int:
    for p in report["group"][0]["population"]:
        if p["code"]["coding"][0]["code"] == name:
            return int(p["count"])
    raise AssertionError(name)


async def available(client: httpx.AsyncClient, key: str) -> dict[str, int]:
    r = await client.get("/v1/capacity-snapshot", headers=auth(key))
    return {row["unit_id"]: row["available"] for row in r.json()["items"]}


# --- reads and searches -----------------------------------------------------------------------


async def test_metadata_is_a_capability_statement(client: httpx.AsyncClient) -> None:
    body = await fhir_get(client, None, "/fhir/metadata")
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(resources) == {
        "Organization",
        "Location",
        "HealthcareService",
        "Measure",
        "MeasureReport",
    }
    assert {"code": "create"} in resources["MeasureReport"]["interaction"]


async def test_organization_location_and_healthcare_service_read(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    key = seed.keys["triagist"]
    org_id = seed.organisations["vvt-leiden"]
    org = await fhir_get(client, key, f"/fhir/Organization/{org_id}")
    assert org["name"] == "Topaz"
    assert org["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{org_id}"}]
    loc = await fhir_get(client, key, f"/fhir/Location/{seed.locations['leiden']}")
    assert loc["address"]["city"] == "Leiden"
    assert loc["managingOrganization"]["reference"] == f"Organization/{org_id}"
    assert {c["coding"][0]["code"] for c in loc["type"]} == {"elv_high", "grz"}
    unit = seed.units["den-haag-elv-high"]
    service = await fhir_get(client, key, f"/fhir/HealthcareService/{unit}")
    assert service["type"][0]["coding"][0] == {"system": CARE_TYPE, "code": "elv_high"}
    assert {c["coding"][0]["code"] for c in service["characteristic"]} == {
        "somatic",
        "isolation",
        "any",
    }
    assert service["location"][0]["reference"] == f"Location/{seed.locations['den-haag']}"
    assert "notAvailable" not in service


async def test_not_accepting_is_not_available_during_until(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    unit = seed.units["leiden-grz"]
    until = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    r = await client.put(
        f"/v1/units/{unit}/status",
        json={
            "accepting": False,
            "reason": "outbreak",
            "detail": "norovirus",
            "until": until.isoformat(),
        },
        headers=auth(seed.keys["provider"]),
    )
    assert r.status_code == 200, r.text
    service = await fhir_get(client, seed.keys["triagist"], f"/fhir/HealthcareService/{unit}")
    (closed,) = service["notAvailable"]
    assert closed["description"] == "outbreak: norovirus"
    assert closed["during"]["end"] == until.isoformat().replace("+00:00", "Z")
    rows = (await client.get("/v1/capacity-snapshot", headers=auth(seed.keys["triagist"]))).json()[
        "items"
    ]
    row = next(row for row in rows if row["unit_id"] == str(unit))
    assert (row["accepting"], row["not_accepting_reason"]) == (False, "outbreak")
    assert row["not_accepting_until"].startswith(until.isoformat()[:19])
    r = await client.put(
        f"/v1/units/{unit}/status", json={"accepting": True}, headers=auth(seed.keys["provider"])
    )
    assert r.status_code == 200, r.text
    service = await fhir_get(client, seed.keys["triagist"], f"/fhir/HealthcareService/{unit}")
    assert "notAvailable" not in service


async def test_searches_filter_count_and_page(client: httpx.AsyncClient, seed: Seed) -> None:
    key = seed.keys["analyst"]
    everything = await fhir_get(client, key, "/fhir/HealthcareService")
    assert everything["type"] == "searchset"
    assert everything["total"] == len(seed.units) == len(everything["entry"])
    elv = await fhir_get(client, key, "/fhir/HealthcareService", type=f"{CARE_TYPE}|elv_high")
    assert elv["total"] == 3
    leiden = await fhir_get(client, key, "/fhir/HealthcareService", **{"address-city": "leid"})
    assert {e["resource"]["id"] for e in leiden["entry"]} == {
        str(seed.units["leiden-elv-high"]),
        str(seed.units["leiden-grz"]),
    }
    unit = seed.units["gouda-elv-high"]
    by_id = await fhir_get(
        client, key, "/fhir/HealthcareService", identifier=f"urn:ietf:rfc:3986|urn:uuid:{unit}"
    )
    assert [e["resource"]["id"] for e in by_id["entry"]] == [str(unit)]
    orgs = await fhir_get(client, key, "/fhir/Organization", type="vvt")
    assert orgs["total"] == 3
    locs = await fhir_get(client, key, "/fhir/Location", **{"address-city": "Gouda"})
    assert [e["resource"]["id"] for e in locs["entry"]] == [str(seed.locations["gouda"])]
    future = (utcnow() + timedelta(days=1)).date().isoformat()
    none = await fhir_get(client, key, "/fhir/Organization", _lastUpdated=f"gt{future}")
    assert (none["total"], none.get("entry")) == (0, None)
    recent = await fhir_get(client, key, "/fhir/Organization", _lastUpdated="ge2020-01-01")
    assert recent["total"] == len(seed.organisations)

    # _count pages through the matches with next links; the pages together are the whole list.
    seen: list[str] = []
    page = await fhir_get(client, key, "/fhir/Organization", _count=2)
    while True:
        assert page["total"] == len(seed.organisations)
        seen += [e["resource"]["id"] for e in page["entry"]]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        r = await client.get(nxt[0], headers=auth(key))
        page = valid(r.json())
    assert sorted(seen) == sorted(str(o) for o in seed.organisations.values())
    assert len(seen) == len(set(seen))


async def test_measure_and_measure_reports(client: httpx.AsyncClient, seed: Seed) -> None:
    key = seed.keys["triagist"]
    measure = await fhir_get(client, key, "/fhir/Measure/juisteplek-capacity")
    assert len(measure["group"]) == 9
    assert [p["code"]["coding"][0]["code"] for p in measure["group"][0]["population"]] == [
        "capacity",
        "occupied",
        "available",
        "held",
    ]
    reports = await fhir_get(client, key, "/fhir/MeasureReport")
    assert reports["total"] == 4  # one per location and care type (Leiden has two)
    location = seed.locations["leiden"]
    own = await fhir_get(client, key, "/fhir/MeasureReport", subject=f"Location/{location}")
    assert own["total"] == 2
    grz = next(
        e["resource"]
        for e in own["entry"]
        if e["resource"]["group"][0]["code"]["coding"][0]["code"] == "grz"
    )
    assert grz["type"] == "summary"
    assert grz["subject"]["reference"] == f"Location/{location}"
    assert (population(grz, "capacity"), population(grz, "available")) == (10, 4)
    assert (population(grz, "occupied"), population(grz, "held")) == (6, 0)
    read = await fhir_get(client, key, f"/fhir/MeasureReport/{grz['id']}")
    assert read["group"] == grz["group"]
    past = await fhir_get(client, key, "/fhir/MeasureReport", period="lt2020-01-01")
    assert past["total"] == 0
    today = await fhir_get(
        client, key, "/fhir/MeasureReport", period=f"ge{(utcnow() - timedelta(days=1)).date()}"
    )
    assert today["total"] == 4


# --- writes -----------------------------------------------------------------------------------


async def test_post_measure_report_is_a_capacity_report(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    location = seed.locations["den-haag"]
    r = await client.post(
        "/fhir/MeasureReport",
        json=measure_report(location, 2),
        headers={**auth(seed.other_provider_key), "Content-Type": FHIR_JSON},
    )
    assert r.status_code == 201, r.text
    body = valid(r.json())
    assert population(body, "available") == 2
    assert r.headers["location"].endswith(f"/fhir/MeasureReport/{body['id']}")
    unit = str(seed.units["den-haag-elv-high"])
    assert (await available(client, seed.keys["triagist"]))[unit] == 2


async def test_transaction_is_all_or_nothing(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    key = auth(seed.keys["provider"])
    leiden = seed.locations["leiden"]

    def bundle(*reports: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": rep, "request": {"method": "POST", "url": "MeasureReport"}}
                for rep in reports
            ],
        }

    before = await available(client, seed.keys["triagist"])
    async with db.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(CapacityReport))
    r = await client.post(
        "/fhir",
        json=bundle(
            measure_report(leiden, 5),
            measure_report(leiden, 99, care_type="grz"),
            measure_report(seed.locations["den-haag"], 1),
        ),
        headers=key,
    )
    assert_outcome(
        r,
        403,
        "Bundle.entry[1].resource.group[0].population[0].count",
        "Bundle.entry[2].resource.subject",
    )
    assert await available(client, seed.keys["triagist"]) == before
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CapacityReport)) == count
    r = await client.post(
        "/fhir",
        json=bundle(measure_report(leiden, 5), measure_report(leiden, 3, care_type="grz")),
        headers=key,
    )
    assert r.status_code == 200, r.text
    answer = valid(r.json())
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 2
    after = await available(client, seed.keys["triagist"])
    assert after[str(seed.units["leiden-elv-high"])] == 5
    assert after[str(seed.units["leiden-grz"])] == 3


@pytest.mark.parametrize(
    ("change", "status", "expression"),
    [
        ({"resourceType": "Patient"}, 422, "MeasureReport.resourceType"),
        ({"subject": None}, 422, "MeasureReport.subject"),
        ({"subject": {"reference": "Patient/1"}}, 422, "MeasureReport.subject.reference"),
        ({"status": "pending"}, 422, "MeasureReport.status"),
        ({"date": None, "period": {"start": "2026-12-05"}}, 422, "MeasureReport.date"),
        ({"date": (utcnow() + timedelta(days=1)).isoformat()}, 422, "MeasureReport.date"),
        ({"group": []}, 422, "MeasureReport.group"),
        ({"unknownField": 1}, 422, "MeasureReport.unknownField"),
    ],
)
async def test_malformed_measure_reports(
    client: httpx.AsyncClient,
    seed: Seed,
    change: dict[str, Any],
    status: int,
    expression: str,
) -> None:
    report = measure_report(seed.locations["leiden"], 1)
    for name, value in change.items():
        if value is None:
            report.pop(name)
        else:
            report[name] = value
    r = await client.post("/fhir/MeasureReport", json=report, headers=auth(seed.keys["provider"]))
    assert_outcome(r, status, expression)


async def test_refusals_are_operation_outcomes(client: httpx.AsyncClient, seed: Seed) -> None:
    key = auth(seed.keys["provider"])
    leiden = seed.locations["leiden"]
    r = await client.post("/fhir/MeasureReport", json=measure_report(leiden, -1), headers=key)
    assert_outcome(r, 422, "MeasureReport.group[0].population[0].count")
    r = await client.post("/fhir/MeasureReport", json=measure_report(leiden, 11), headers=key)
    assert_outcome(r, 422, "MeasureReport.group[0].population[0].count")
    r = await client.post("/fhir/MeasureReport", json=measure_report(uuid.uuid4(), 1), headers=key)
    body = assert_outcome(r, 422, "MeasureReport.subject")
    assert body["issue"][0]["code"] == "not-found"
    r = await client.post(
        "/fhir/MeasureReport", content=b"{not json", headers={**key, "Content-Type": FHIR_JSON}
    )
    assert_outcome(r, 400)
    r = await client.post(
        "/fhir/MeasureReport", content=b"a,b", headers={**key, "Content-Type": "text/csv"}
    )
    assert_outcome(r, 415)
    r = await client.post(
        "/fhir/MeasureReport",
        json=measure_report(leiden, 1),
        headers=auth(seed.keys["analyst"]),
    )
    assert_outcome(r, 403)
    r = await client.post(
        "/fhir/MeasureReport",
        json=measure_report(seed.locations["gouda"], 1),
        headers=key,
    )
    assert_outcome(r, 403)
    r = await client.post("/fhir/MeasureReport", json=measure_report(leiden, 1))
    assert_outcome(r, 401)
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "batch"}, headers=key)
    assert_outcome(r, 422, "Bundle.type")
    r = await client.post("/fhir", json=[1, 2], headers=key)
    assert_outcome(r, 422, "Bundle")
    r = await client.get("/fhir/Organization", params={"_count": "-1"}, headers=key)
    assert_outcome(r, 422, "_count")
    r = await client.get("/fhir/Organization", params={"_lastUpdated": "soon"}, headers=key)
    assert_outcome(r, 422, "_lastUpdated")
    r = await client.get(f"/fhir/Location/{uuid.uuid4()}", headers=key)
    assert_outcome(r, 404)
    r = await client.get("/fhir/Patient", headers=key)
    assert_outcome(r, 404)
    r = await client.get("/fhir/Location/not%20an%20id", headers=key)
    assert_outcome(r, 422)
    r = await client.delete("/fhir/Location", headers=key)
    assert_outcome(r, 405)
    r = await client.post(
        "/fhir", content=b"[" + b" " * 2_000_000 + b"]", headers={**key, "Content-Type": FHIR_JSON}
    )
    assert_outcome(r, 413)


# --- round trip to a second instance ----------------------------------------------------------


REGISTRY = [Region, Subregion, Municipality, SubregionNeighbour, Organisation, Location, Unit]


@pytest.fixture
async def second_instance(
    backend: str, tmp_path: Path, db: Database, seed: Seed
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An empty second instance with the same region data (same ids), and its admin key."""
    url = await fresh_database_url(backend, tmp_path, f"jp_second_{uuid.uuid4().hex[:8]}")
    other = Database.from_url(url)
    async with db.sessionmaker() as source, other.sessionmaker() as target:
        for model in REGISTRY:
            rows = (await source.execute(select(model.__table__))).mappings().all()
            await target.execute(insert(model), [dict(r) for r in rows])
        units = (await source.scalars(select(Unit.id))).all()
        await target.execute(
            insert(UnitCapacity), [{"unit_id": u, "free": 0, "held": 0} for u in units]
        )
        issued = await auth_service.issue_key(
            target, ApiKeyCreate(name="partner admin", roles=[Role.ADMIN])
        )
        await target.commit()
    app = create_app(
        Settings(env="test", database_url=url, access_log=False, api_key_cache_seconds=0),
        database=other,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://second") as c:
            yield c, issued.key
    await other.dispose()


async def test_round_trip_to_a_second_instance_gives_equal_availability(
    client: httpx.AsyncClient,
    seed: Seed,
    db: Database,
    settings: Settings,
    second_instance: tuple[httpx.AsyncClient, str],
) -> None:
    # A place held for a placement is not available here, so it must not be there either.
    (placement,) = await create_placements(db, settings, seed, 1, **GRZ)
    r = await client.post(
        f"/v1/placements/{placement}/holds",
        json={"unit_id": str(seed.units["leiden-grz"])},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 201, r.text
    here = await available(client, seed.keys["triagist"])
    assert here[str(seed.units["leiden-grz"])] == 3
    exported = await fhir_get(client, seed.keys["analyst"], "/fhir/MeasureReport")
    other, admin = second_instance
    assert set((await available(other, admin)).values()) == {0}
    r = await other.post(
        "/fhir",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": e["resource"], "request": {"method": "POST", "url": "MeasureReport"}}
                for e in exported["entry"]
            ],
        },
        headers={**auth(admin), "Content-Type": FHIR_JSON},
    )
    assert r.status_code == 200, r.text
    assert len(valid(r.json())["entry"]) == exported["total"]
    assert await available(other, admin) == here
    again = await fhir_get(other, admin, "/fhir/MeasureReport")
    assert [population(e["resource"], "available") for e in again["entry"]] == [
        population(e["resource"], "available") for e in exported["entry"]
    ]


async def test_subject_identifier_is_used_when_the_reference_is_not_ours(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    """A partner's export names its own Location id; the identifier finds ours."""
    location = seed.locations["den-haag"]
    report = measure_report(
        uuid.uuid4(),
        2,
        subject={
            "reference": f"Location/{uuid.uuid4()}",
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{location}"},
        },
    )
    r = await client.post("/fhir/MeasureReport", json=report, headers=auth(seed.other_provider_key))
    assert r.status_code == 201, r.text
    assert valid(r.json())["subject"]["reference"] == f"Location/{location}"
    report["subject"] = {"identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1"}}
    r = await client.post("/fhir/MeasureReport", json=report, headers=auth(seed.other_provider_key))
    assert_outcome(r, 422, "MeasureReport.subject")
