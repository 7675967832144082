"""Placements through HTTP as a hospital transfer desk would use them (docs/domain.md §13)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import Database, utcnow
from app.placement import sweeper
from tests.conftest import auth
from tests.factories import GRZ, Seed, placement_body
from tests.helpers import assert_problem, pointers


async def held(db: Database, unit_id: uuid.UUID) -> int:
    async with db.engine.connect() as conn:
        value = (
            await conn.execute(
                text("SELECT held FROM unit_capacity WHERE unit_id = :u"),
                {"u": unit_id.hex if db.dialect == "sqlite" else unit_id},
            )
        ).scalar()
    return int(value or 0)


async def create(client: httpx.AsyncClient, seed: Seed, **overrides: Any) -> dict[str, Any]:
    r = await client.post(
        "/v1/placements", json=placement_body(**overrides), headers=auth(seed.keys["referrer"])
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def post(
    client: httpx.AsyncClient, key: str, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(path, json=body, headers=auth(key))


def assert_illegal(r: httpx.Response, state: str, allowed: list[str]) -> None:
    assert r.status_code == 409, r.text
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["type"] == "/problems/invalid-transition"
    assert problem["current_state"] == state
    assert problem["allowed_actions"] == allowed


async def test_happy_path_transfer_desk(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    unit = seed.units["leiden-elv-high"]
    ready = (utcnow() - timedelta(hours=20)).isoformat()
    t0 = utcnow() - timedelta(hours=1)  # the desk records afterwards: back-dated clinical times
    p = await create(
        client,
        seed,
        medically_ready_at=ready,
        patient_identifier="999999990",
        occurred_at=t0.isoformat(),
    )
    pid = p["id"]
    assert p["state"] == "triaged"
    assert p["allowed_actions"] == ["hold", "cancel", "escalate", "record_clinical", "give_consent"]
    expected_key = hmac.new(
        settings.patient_key_secret.get_secret_value().encode(), b"999999990", hashlib.sha256
    ).hexdigest()
    assert p["patient_key"] == expected_key
    assert "999999990" not in str(p)
    assert p["urgency"] == {"system": "nts", "code": "U3", "level": 3}

    r = await post(
        client,
        seed.keys["triagist"],
        f"/v1/placements/{pid}/holds",
        {"unit_id": str(unit), "occurred_at": (t0 + timedelta(minutes=20)).isoformat()},
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["status"] == "active"
    assert await held(db, unit) == 1

    # Another provider, or the referrer, may not accept.
    r = await post(client, seed.other_provider_key, f"/v1/placements/{pid}/accept")
    assert r.status_code == 403
    r = await post(client, seed.keys["referrer"], f"/v1/placements/{pid}/accept")
    assert r.status_code == 403
    r = await post(
        client,
        seed.keys["provider"],
        f"/v1/placements/{pid}/accept",
        {"occurred_at": (t0 + timedelta(minutes=40)).isoformat()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "accepted"
    assert r.json()["escalation_due_at"] is None

    # The provider sees the placement it holds a place for.
    r = await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["provider"]))
    assert r.status_code == 200
    assert r.headers["etag"] == f'W/"{r.json()["version"]}"'

    arrived = utcnow() - timedelta(minutes=1)
    r = await post(
        client,
        seed.keys["provider"],
        f"/v1/placements/{pid}/admit",
        {"occurred_at": arrived.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "transferred"
    assert r.json()["current_hold"]["status"] == "admitted"
    assert r.json()["allowed_actions"] == []
    assert await held(db, unit) == 1  # counted until a report taken after the arrival

    r = await client.put(
        f"/v1/units/{unit}/capacity", json={"free": 1}, headers=auth(seed.keys["provider"])
    )
    assert r.status_code == 200, r.text
    assert await held(db, unit) == 0
    assert r.json()["available"] == 1

    r = await client.get(f"/v1/placements/{pid}/events", headers=auth(seed.keys["referrer"]))
    assert r.status_code == 200
    log = r.json()["items"]
    assert [e["type"] for e in log] == [
        "request_created",
        "medically_ready",
        "triaged",
        "offer_sent",
        "offer_accepted",
        "transferred",
    ]
    assert [e["seq"] for e in log] == [1, 2, 3, 4, 5, 6]
    assert log[1]["occurred_at"] == ready.replace("+00:00", "Z")
    assert [(e["from_state"], e["to_state"]) for e in log] == [
        (None, "requested"),
        ("requested", "requested"),
        ("requested", "triaged"),
        ("triaged", "offered"),
        ("offered", "accepted"),
        ("accepted", "transferred"),
    ]
    assert log[4]["actor_organisation_id"] == str(seed.organisations["vvt-leiden"])
    assert log[5]["occurred_at"].startswith(arrived.strftime("%Y-%m-%dT%H:%M:%S"))

    # Final: every action is illegal now.
    for path, body in [
        ("accept", None),
        ("admit", None),
        ("decline", {"reason": "staff_shortage"}),
        ("cancel", {"reason": "died"}),
        ("holds", {"unit_id": str(unit)}),
    ]:
        r = await post(client, seed.keys["admin"], f"/v1/placements/{pid}/{path}", body)
        assert_illegal(r, "transferred", [])
    r = await post(
        client, seed.keys["admin"], f"/v1/placements/{pid}/events", {"type": "medically_ready"}
    )
    assert_illegal(r, "transferred", [])


async def test_illegal_transitions_name_state_and_allowed(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    unit = str(seed.units["leiden-grz"])
    ref = seed.keys["referrer"]
    requested = await create(client, seed, triage=None)
    pid = requested["id"]
    assert requested["state"] == "requested"
    requested_allowed = ["triage", "cancel", "record_clinical", "give_consent"]
    r = await post(client, ref, f"/v1/placements/{pid}/holds", {"unit_id": unit})
    assert_illegal(r, "requested", requested_allowed)
    r = await post(client, seed.keys["admin"], f"/v1/placements/{pid}/accept")
    assert_illegal(r, "requested", requested_allowed)
    r = await post(client, ref, f"/v1/placements/{pid}/decline", {"reason": "patient_refused"})
    assert_illegal(r, "requested", requested_allowed)
    r = await post(client, ref, f"/v1/placements/{pid}/admit")
    assert_illegal(r, "requested", requested_allowed)
    r = await post(
        client,
        ref,
        f"/v1/placements/{pid}/events",
        {"type": "escalated", "level": "region", "reason": "x"},
    )
    assert_illegal(r, "requested", requested_allowed)

    triaged = (await create(client, seed, **GRZ))["id"]
    triaged_allowed = ["hold", "cancel", "escalate", "record_clinical", "give_consent"]
    for path, body in [
        ("accept", None),
        ("admit", None),
        ("decline", {"reason": "staff_shortage"}),
    ]:
        r = await post(client, seed.keys["admin"], f"/v1/placements/{triaged}/{path}", body)
        assert_illegal(r, "triaged", triaged_allowed)

    r = await post(client, ref, f"/v1/placements/{triaged}/holds", {"unit_id": unit})
    assert r.status_code == 201
    offered_allowed = [
        "accept",
        "decline",
        "expire",
        "cancel",
        "escalate",
        "record_clinical",
        "give_consent",
    ]
    r = await post(client, ref, f"/v1/placements/{triaged}/holds", {"unit_id": unit})
    assert_illegal(r, "offered", offered_allowed)
    r = await post(client, seed.keys["provider"], f"/v1/placements/{triaged}/admit")
    assert_illegal(r, "offered", offered_allowed)

    r = await post(client, seed.keys["provider"], f"/v1/placements/{triaged}/accept")
    assert r.status_code == 200
    accepted_allowed = ["admit", "cancel", "record_clinical", "give_consent"]
    for path, body in [
        ("accept", None),
        ("decline", {"reason": "staff_shortage"}),
        ("holds", {"unit_id": unit}),
        ("events", {"type": "escalated", "level": "region", "reason": "late"}),
    ]:
        r = await post(client, seed.keys["admin"], f"/v1/placements/{triaged}/{path}", body)
        assert_illegal(r, "accepted", accepted_allowed)

    r = await post(client, ref, f"/v1/placements/{triaged}/cancel", {"reason": "died"})
    assert r.status_code == 200
    assert r.json()["state"] == "cancelled"
    r = await post(client, ref, f"/v1/placements/{triaged}/cancel", {"reason": "died"})
    assert_illegal(r, "cancelled", [])


async def test_decline_releases_hold_and_returns_to_triaged(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    unit = seed.units["gouda-elv-high"]  # one free place
    a = (await create(client, seed))["id"]
    b = (await create(client, seed))["id"]
    tri = seed.keys["triagist"]
    assert (
        await post(client, tri, f"/v1/placements/{a}/holds", {"unit_id": str(unit)})
    ).status_code == 201
    r = await post(client, tri, f"/v1/placements/{b}/holds", {"unit_id": str(unit)})
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/no-capacity"
    assert "full" in r.json()["detail"]

    r = await post(client, tri, f"/v1/placements/{a}/decline", {"reason": "other"})
    assert r.status_code == 422
    r = await post(client, tri, f"/v1/placements/{a}/decline", {"reason": "bogus"})
    assert r.status_code == 422
    r = await post(
        client, tri, f"/v1/placements/{a}/decline", {"reason": "other", "reason_text": "no SO"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "triaged"
    assert r.json()["current_hold"] is None
    assert await held(db, unit) == 0
    assert (
        await post(client, tri, f"/v1/placements/{b}/holds", {"unit_id": str(unit)})
    ).status_code == 201
    # Cancel releases the hold too.
    r = await post(
        client, seed.keys["referrer"], f"/v1/placements/{b}/cancel", {"reason": "recovered"}
    )
    assert r.status_code == 200
    assert await held(db, unit) == 0
    events = (await client.get(f"/v1/placements/{a}/events", headers=auth(tri))).json()["items"]
    declined = events[-1]
    assert declined["type"] == "offer_declined"
    assert declined["reason"] == "other"
    assert declined["payload"] == {"reason_text": "no SO"}


async def test_consent_required_before_hold(client: httpx.AsyncClient, seed: Seed) -> None:
    pid = (await create(client, seed, consent_given_at=None, **GRZ))["id"]
    unit = str(seed.units["leiden-grz"])
    r = await post(client, seed.keys["triagist"], f"/v1/placements/{pid}/holds", {"unit_id": unit})
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/consent-required"
    r = await post(
        client, seed.keys["referrer"], f"/v1/placements/{pid}/events", {"type": "consent_given"}
    )
    assert r.status_code == 201
    r = await post(client, seed.keys["triagist"], f"/v1/placements/{pid}/holds", {"unit_id": unit})
    assert r.status_code == 201


async def test_clinical_events_and_times(client: httpx.AsyncClient, seed: Seed) -> None:
    pid = (await create(client, seed, origin_setting="seh"))["id"]
    ref = seed.keys["referrer"]
    path = f"/v1/placements/{pid}/events"
    future = (utcnow() + timedelta(hours=1)).isoformat()
    r = await post(client, ref, path, {"type": "medically_ready", "occurred_at": future})
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "#/occurred_at"
    past = (utcnow() - timedelta(days=3)).isoformat()
    r = await post(client, ref, path, {"type": "medically_ready", "occurred_at": past})
    assert r.status_code == 422  # before the placement's previous event
    r = await post(client, ref, path, {"type": "medically_ready"})
    assert r.status_code == 201, r.text
    ev = r.json()
    assert ev["type"] == "medically_ready"
    assert ev["from_state"] == ev["to_state"] == "triaged"
    r = await post(client, ref, path, {"type": "medically_ready"})
    assert r.status_code == 409
    r = await post(client, ref, path, {"type": "ready_revoked"})
    assert r.status_code == 201
    r = await post(client, ref, path, {"type": "hospital_admitted"})
    assert r.status_code == 201
    # A hospital-to-hospital transfer ends readiness: the receiving hospital declares it anew.
    r = await post(client, ref, path, {"type": "medically_ready"})
    assert r.status_code == 201, r.text
    r = await post(client, ref, path, {"type": "hospital_admitted"})
    assert r.status_code == 201
    got = (await client.get(f"/v1/placements/{pid}", headers=auth(ref))).json()
    assert got["medically_ready_at"] is None
    r = await post(client, ref, path, {"type": "ready_revoked"})
    assert r.status_code == 409  # nothing left to revoke
    r = await post(client, ref, path, {"type": "medically_ready"})
    assert r.status_code == 201, r.text
    r = await post(client, ref, path, {"type": "ready_revoked"})
    assert r.status_code == 201
    r = await post(client, ref, path, {"type": "escalated", "level": "region"})
    assert r.status_code == 422  # needs a reason
    r = await post(client, ref, path, {"type": "medically_ready", "level": "region"})
    assert r.status_code == 422
    r = await post(
        client, ref, path, {"type": "escalated", "level": "region", "reason": "none free"}
    )
    assert r.status_code == 201
    assert r.json()["level"] == "region"
    r = await post(client, ref, path, {"type": "escalated", "level": "region", "reason": "again"})
    assert r.status_code == 409
    r = await post(client, ref, path, {"type": "escalated", "level": "national", "reason": "none"})
    assert r.status_code == 201
    got = (await client.get(f"/v1/placements/{pid}", headers=auth(ref))).json()
    assert got["escalation_level"] == "national"
    assert got["medically_ready_at"] is None


@pytest.mark.parametrize(
    ("override", "pointer"),
    [
        ({"urgency": {"system": "nts", "code": "U9"}}, "#/urgency/code"),
        ({"urgency": {"system": "xyz", "code": "U1"}}, "#/urgency/system"),
        (
            {"origin_setting": "gp", "medically_ready_at": "2026-01-01T00:00:00Z"},
            "#/medically_ready_at",
        ),
        ({"birth_year": 2999}, "#/birth_year"),
        ({"birth_year": "1940"}, "#/birth_year"),
        ({"patient_identifier": ""}, "#/patient_identifier"),
        ({"sex": "x"}, "#/sex"),
        ({"subregion": "atlantis"}, "#/subregion"),
        ({"unknown": 1}, "#/unknown"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, seed: Seed, override: dict[str, Any], pointer: str
) -> None:
    r = await client.post(
        "/v1/placements", json=placement_body(**override), headers=auth(seed.keys["referrer"])
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert pointer in [e["pointer"] for e in r.json()["errors"]]


async def test_roles_and_visibility(client: httpx.AsyncClient, seed: Seed) -> None:
    own = (await create(client, seed, **GRZ))["id"]
    r = await client.post(
        "/v1/placements", json=placement_body(), headers=auth(seed.keys["provider"])
    )
    assert r.status_code == 403
    r = await client.get("/v1/placements", headers=auth(seed.keys["analyst"]))
    assert r.status_code == 403
    r = await client.get(f"/v1/placements/{own}", headers=auth(seed.keys["provider"]))
    assert r.status_code == 403  # no hold on its units (yet)
    r = await client.get("/v1/placements", headers=auth(seed.keys["provider"]))
    assert r.json()["items"] == []
    await post(
        client,
        seed.keys["triagist"],
        f"/v1/placements/{own}/holds",
        {"unit_id": str(seed.units["leiden-grz"])},
    )
    r = await client.get("/v1/placements", headers=auth(seed.keys["provider"]))
    assert [p["id"] for p in r.json()["items"]] == [own]
    r = await client.get("/v1/placements", headers=auth(seed.other_provider_key))
    assert r.json()["items"] == []
    r = await client.get(f"/v1/placements/{uuid.uuid4()}", headers=auth(seed.keys["admin"]))
    assert r.status_code == 404
    r = await client.get("/v1/placements/not-a-uuid", headers=auth(seed.keys["admin"]))
    assert r.status_code == 422


async def test_list_filters_and_cursor(client: httpx.AsyncClient, seed: Seed) -> None:
    ids = [(await create(client, seed))["id"] for _ in range(5)]
    grz = (await create(client, seed, care_type="grz", triage=None, subregion="gouda"))["id"]
    tri = auth(seed.keys["triagist"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/placements", params=params, headers=tri)
        assert r.status_code == 200
        seen += [p["id"] for p in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([*ids, grz])
    assert len(seen) == len(set(seen))
    r = await client.get("/v1/placements", params={"state": "requested"}, headers=tri)
    assert [p["id"] for p in r.json()["items"]] == [grz]
    r = await client.get("/v1/placements", params={"care_type": "grz"}, headers=tri)
    assert [p["id"] for p in r.json()["items"]] == [grz]
    r = await client.get("/v1/placements", params={"subregion": "gouda"}, headers=tri)
    assert [p["id"] for p in r.json()["items"]] == [grz]
    r = await client.get(
        "/v1/placements",
        params={
            "referrer": str(seed.organisations["hospital"]),
            "created_to": "2000-01-01T00:00:00Z",
        },
        headers=tri,
    )
    assert r.json()["items"] == []
    r = await client.get("/v1/placements", params={"cursor": "!!"}, headers=tri)
    assert r.status_code == 422
    r = await client.get("/v1/placements", params={"state": "nope"}, headers=tri)
    assert r.status_code == 422


async def test_list_one_patients_placements_by_patient_key(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    """A triagist sees whether a patient was referred twice (by the pseudonymous key)."""
    first = await create(client, seed, patient_identifier="mrn-77")
    again = await create(client, seed, patient_identifier="mrn-77", care_type="grz", triage=None)
    await create(client, seed, patient_identifier="mrn-78")
    assert first["patient_key"] == again["patient_key"]
    tri = auth(seed.keys["triagist"])
    same = {"patient_key": first["patient_key"]}
    r = await client.get("/v1/placements", params=same, headers=tri)
    assert sorted(p["id"] for p in r.json()["items"]) == sorted([again["id"], first["id"]])
    r = await client.get("/v1/placements", params={"patient_key": "ABC"}, headers=tri)
    assert pointers(assert_problem(r, 422)) == ["query:patient_key"]


async def test_placement_availability_searches_for_the_patient_and_marks_earlier_holds(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    """After a decline the triagist searches again for the same patient: the placement's care
    type, subregion and sex apply, and the unit that declined is marked."""
    pid = (await create(client, seed, subregion="gouda", sex="male"))["id"]
    tri = auth(seed.keys["triagist"])
    path = f"/v1/placements/{pid}/availability"

    async def search(**params: Any) -> list[tuple[str, str | None]]:
        r = await client.get(path, params=params, headers=tri)
        assert r.status_code == 200, r.text
        return sorted((hit["unit_name"], hit["earlier_hold"]) for hit in r.json()["items"])

    # Gouda's only ELV unit has rooms for women: nothing for him in his own subregion.
    assert await search() == []
    assert await search(escalate="true") == [("ELV HC Den Haag", None), ("ELV HC Leiden", None)]
    leiden = str(seed.units["leiden-elv-high"])
    r = await post(
        client, seed.keys["triagist"], f"/v1/placements/{pid}/holds", {"unit_id": leiden}
    )
    assert r.status_code == 201, r.text
    r = await post(
        client, seed.keys["provider"], f"/v1/placements/{pid}/decline", {"reason": "staff_shortage"}
    )
    assert r.status_code == 200, r.text
    assert await search(escalate="true") == [
        ("ELV HC Den Haag", None),
        ("ELV HC Leiden", "declined"),
    ]
    # The request's own values win; GRZ is not the placement's care type but may be asked for.
    assert await search(care_type="grz", subregion="leiden") == [("GRZ Leiden", None)]
    async with db.engine.connect() as conn:
        reads: int = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM audit_log WHERE event_code = 'placement.read'"
                    " AND object_id = :pid"
                ),
                {"pid": pid},
            )
        ).scalar_one()
    assert reads == 4  # every search for the placement is a logged read
    r = await client.get(f"/v1/placements/{uuid.uuid4()}/availability", headers=tri)
    assert_problem(r, 404)
    r = await client.get(path, headers=auth(seed.other_provider_key))
    assert_problem(r, 403)
    r = await client.get(path, params={"near": "north"}, headers=tri)
    assert pointers(assert_problem(r, 422)) == ["query:near"]


async def test_sweeper_expires_holds_and_escalates(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    unit = seed.units["den-haag-elv-high"]
    urgent = (await create(client, seed))["id"]  # NTS U3 -> UUL 3: hold 30 min, escalate 30 min
    calm = (await create(client, seed, urgency={"system": "nts", "code": "U5"}))["id"]  # UUL 5
    tri = seed.keys["triagist"]
    for pid in (urgent, calm):
        r = await post(client, tri, f"/v1/placements/{pid}/holds", {"unit_id": str(unit)})
        assert r.status_code == 201
    assert await held(db, unit) == 2
    now = utcnow()
    assert (await sweeper.sweep(db, now=now)).model_dump() == {
        "expired_holds": 0,
        "escalated": 0,
        "unowned_overdue": 0,
    }
    result = await sweeper.sweep(db, now=now + timedelta(minutes=31))
    assert result.model_dump() == {"expired_holds": 1, "escalated": 1, "unowned_overdue": 0}
    assert await held(db, unit) == 1
    got = (await client.get(f"/v1/placements/{urgent}", headers=auth(tri))).json()
    assert got["state"] == "triaged"
    assert got["escalation_level"] == "region"
    log = (await client.get(f"/v1/placements/{urgent}/events", headers=auth(tri))).json()["items"]
    assert [e["type"] for e in log[-2:]] == ["hold_expired", "escalated"]
    assert log[-1]["reason"] == "no_acceptance_within_window"
    assert log[-1]["payload"]["window_minutes"] == 30
    assert log[-2]["actor_key_id"] is None
    # UUL 5: hold 2 h, escalation after 24 h; the sweep is idempotent.
    result = await sweeper.sweep(db, now=now + timedelta(hours=3))
    assert result.model_dump() == {"expired_holds": 1, "escalated": 0, "unowned_overdue": 0}
    result = await sweeper.sweep(db, now=now + timedelta(hours=25))
    assert result.model_dump() == {"expired_holds": 0, "escalated": 1, "unowned_overdue": 0}
    assert await held(db, unit) == 0


async def test_idempotent_hold(client: httpx.AsyncClient, seed: Seed, db: Database) -> None:
    pid = (await create(client, seed, **GRZ))["id"]
    unit = seed.units["leiden-grz"]
    headers = auth(seed.keys["triagist"]) | {"Idempotency-Key": "hold-1"}
    first = await client.post(
        f"/v1/placements/{pid}/holds", json={"unit_id": str(unit)}, headers=headers
    )
    again = await client.post(
        f"/v1/placements/{pid}/holds", json={"unit_id": str(unit)}, headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await held(db, unit) == 1


async def test_a_retry_must_name_the_same_responsible_user_and_purpose(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    """The access-log headers are part of the request: a retry that changes them is not a
    retry (422), and an invalid one is refused, never answered with the first response."""
    pid = (await create(client, seed, **GRZ))["id"]
    unit = seed.units["leiden-grz"]
    headers = auth(seed.keys["triagist"]) | {
        "Idempotency-Key": "hold-2",
        "X-On-Behalf-Of": "nurse J. de Vries",
        "X-Purpose-Of-Use": "treatment",
    }
    path, body = f"/v1/placements/{pid}/holds", {"unit_id": str(unit)}
    first = await client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.text
    for name, value in [
        ("X-Purpose-Of-Use", "AAA"),
        ("X-Purpose-Of-Use", ""),
        ("X-Purpose-Of-Use", "research"),
        ("X-On-Behalf-Of", "nurse P. Jansen"),
    ]:
        again = await client.post(path, json=body, headers=headers | {name: value})
        assert_problem(again, 422)
        assert "idempotent-replayed" not in again.headers
    retry = await client.post(path, json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert await held(db, unit) == 1
    # Absent is not empty: a retry adding an empty header is refused, not replayed.
    plain = auth(seed.keys["referrer"]) | {"Idempotency-Key": "create-2"}
    referral = placement_body()
    created = await client.post("/v1/placements", json=referral, headers=plain)
    assert created.status_code == 201, created.text
    empty = plain | {"X-Purpose-Of-Use": ""}
    assert_problem(await client.post("/v1/placements", json=referral, headers=empty), 422)
    replayed = await client.post("/v1/placements", json=referral, headers=plain)
    assert replayed.headers["idempotent-replayed"] == "true"


async def test_no_patient_identifier_stored(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    secret_id = "123456782"
    pid = (await create(client, seed, patient_identifier=secret_id, **GRZ))["id"]
    await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["referrer"]))
    await post(
        client,
        seed.keys["triagist"],
        f"/v1/placements/{pid}/holds",
        {"unit_id": str(seed.units["leiden-grz"])},
    )
    from app.models import Base

    async with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(table.select())).all()
            for row in rows:
                assert secret_id not in repr(tuple(row)), table.name


async def test_list_dates_must_be_iso(client: httpx.AsyncClient, seed: Seed) -> None:
    tri = auth(seed.keys["triagist"])
    for value in ("-2.220446049250313e-16", "1700000000", "yesterday"):
        r = await client.get("/v1/placements", params={"created_to": value}, headers=tri)
        assert r.status_code == 422, value
    r = await client.get(
        "/v1/placements", params={"created_to": "2030-01-01T00:00:00Z"}, headers=tri
    )
    assert r.status_code == 200
    r = await client.get(
        "/v1/placements", params={"created_to": "2030-01-01T00:00:00"}, headers=tri
    )
    assert r.status_code == 422  # no offset
