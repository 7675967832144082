"""Case owner, case notes and the patient's earlier placements (docs/domain.md §15)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from app.db import Database, utcnow
from app.enums import Role
from app.placement import sweeper
from app.placement.models import Placement
from tests.conftest import auth
from tests.factories import Seed, add_person, placement_body
from tests.helpers import assert_problem, pointers

CRISIS: dict[str, object] = {
    "care_type": "wlz_crisis",
    "triage": {"care_type": "wlz_crisis", "rule_set": "west-2026.1"},
}


async def create(client: httpx.AsyncClient, key: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post("/v1/placements", json=placement_body(**overrides), headers=auth(key))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def put_owner(
    client: httpx.AsyncClient, key: str, pid: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.put(f"/v1/placements/{pid}/owner", json=body, headers=auth(key))


async def events(client: httpx.AsyncClient, key: str, pid: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/placements/{pid}/events", headers=auth(key))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def audit_rows(db: Database, event_code: str) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT event_code, action, outcome, object_id, patient_key FROM audit_log "
                "WHERE event_code = :c ORDER BY id"
            ),
            {"c": event_code},
        )
        return [dict(r) for r in rows.mappings().all()]


async def backdate(db: Database, pid: str, minutes: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            update(Placement)
            .where(Placement.id == uuid.UUID(pid))
            .values(created_at=utcnow() - timedelta(minutes=minutes))
        )


# --- owner ---------------------------------------------------------------------------------------


async def test_default_owner_by_care_type(client: httpx.AsyncClient, seed: Seed) -> None:
    referrer, triagist = seed.keys["referrer"], seed.keys["triagist"]
    elv = await create(client, referrer)
    assert elv["owner"]["name"] == "test referrer"
    assert elv["owner"]["organisation_id"] == str(seed.organisations["hospital"])
    assert elv["owner"]["id"] == (await events(client, referrer, elv["id"]))[0]["actor_key_id"]
    crisis = await create(client, referrer, **CRISIS)
    assert crisis["owner"] is None  # a triagist owns a Wlz-crisis case; none has taken it yet
    assert crisis["unowned_overdue"] is False
    by_triagist = await create(
        client,
        triagist,
        referrer_organisation_id=str(seed.organisations["hospital"]),
        care_type="ggz_crisis",
        target_group="psychiatric",
        triage={"care_type": "ggz_crisis", "rule_set": "west-2026.1"},
    )
    assert by_triagist["owner"]["name"] == "test triagist"
    assert by_triagist["owner"]["organisation_id"] == str(seed.organisations["rap"])
    # A triagist referring an ELV case for the hospital: the hospital as a whole owns it.
    for_hospital = await create(
        client, triagist, referrer_organisation_id=str(seed.organisations["hospital"])
    )
    assert for_hospital["owner"]["id"] is None
    assert for_hospital["owner"]["name"] == "LUMC"


async def test_take_and_hand_over_are_events(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    referrer, triagist = seed.keys["referrer"], seed.keys["triagist"]
    p = await create(client, referrer, **CRISIS)
    pid = p["id"]
    r = await put_owner(client, triagist, pid, {"action": "take"})
    assert r.status_code == 200, r.text
    taken = r.json()
    assert taken["owner"]["name"] == "test triagist"
    assert taken["state"] == "triaged"
    log = await events(client, triagist, pid)
    assert [e["type"] for e in log][-1] == "owner_taken"
    assert log[-1]["actor_key_id"] == taken["owner"]["id"]
    assert log[-1]["from_state"] == log[-1]["to_state"] == "triaged"
    assert log[-1]["payload"]["previous_owner"] == {"id": None, "organisation_id": None}
    # Taking it again changes nothing and logs no event.
    again = await put_owner(client, triagist, pid, {"action": "take"})
    assert again.status_code == 200
    assert len(await events(client, triagist, pid)) == len(log)

    nurse = await add_person(db, Role.TRIAGIST, seed.organisations["rap"], name="Nurse Jansen")
    r = await put_owner(client, triagist, pid, {"action": "hand_over", "to": str(nurse.id)})
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == {
        "id": str(nurse.id),
        "name": "Nurse Jansen",
        "organisation_id": str(seed.organisations["rap"]),
        "since": r.json()["owner"]["since"],
    }
    r = await put_owner(client, triagist, pid, {"action": "hand_over", "to": "referrer"})
    assert r.status_code == 200, r.text
    assert r.json()["owner"]["id"] is None
    assert r.json()["owner"]["name"] == "LUMC"
    log = await events(client, triagist, pid)
    assert [e["type"] for e in log][-2:] == ["owner_handed_over", "owner_handed_over"]
    assert log[-1]["payload"]["previous_owner"]["id"] == str(nurse.id)
    assert {r["action"] for r in await audit_rows(db, "placement.owner")} == {"U"}
    assert len(await audit_rows(db, "placement.owner")) == 4


async def test_owner_rules(client: httpx.AsyncClient, seed: Seed, db: Database) -> None:
    referrer, triagist = seed.keys["referrer"], seed.keys["triagist"]
    pid = (await create(client, referrer, **CRISIS))["id"]
    # A provider of the region may not take the case: 403, logged as refused.
    r = await put_owner(client, seed.keys["provider"], pid, {"action": "take"})
    assert_problem(r, 403)
    assert [x["outcome"] for x in await audit_rows(db, "placement.change_owner")] == ["failure"]
    # Only people who may manage the placement can receive it.
    provider_person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    for to in (str(provider_person.id), str(uuid.uuid4())):
        r = await put_owner(client, triagist, pid, {"action": "hand_over", "to": to})
        assert pointers(assert_problem(r, 422)) == ["#/to"]
    for body in ({"action": "hand_over"}, {"action": "take", "to": "referrer"}, {"action": "x"}):
        assert_problem(await put_owner(client, triagist, pid, body), 422)
    # A closed case keeps its last owner.
    await client.post(
        f"/v1/placements/{pid}/cancel", json={"reason": "recovered"}, headers=auth(referrer)
    )
    r = await put_owner(client, triagist, pid, {"action": "take"})
    assert assert_problem(r, 409, type_slug="invalid-transition")["current_state"] == "cancelled"
    assert_problem(await put_owner(client, triagist, str(uuid.uuid4()), {"action": "take"}), 404)


async def test_unowned_overdue_flag_and_filters(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    referrer, triagist = seed.keys["referrer"], seed.keys["triagist"]
    urgent = (await create(client, referrer, **CRISIS))["id"]  # U3: flagged after 15 min
    calm = (await create(client, referrer, **CRISIS, urgency={"system": "nts", "code": "U4"}))[
        "id"
    ]  # U4: after 60 min
    owned = (await create(client, referrer))["id"]
    for pid in (urgent, calm, owned):
        await backdate(db, pid, 20)
    got = (await client.get(f"/v1/placements/{urgent}", headers=auth(triagist))).json()
    assert got["unowned_overdue"] is True
    got = (await client.get(f"/v1/placements/{calm}", headers=auth(triagist))).json()
    assert got["unowned_overdue"] is False

    async def ids(query: str) -> set[str]:
        r = await client.get(f"/v1/placements?{query}", headers=auth(triagist))
        assert r.status_code == 200, r.text
        return {p["id"] for p in r.json()["items"]}

    assert await ids("unowned_overdue=true") == {urgent}
    assert await ids("unowned_overdue=false") == {calm, owned}
    assert await ids("owner=none") == {urgent, calm}
    assert await ids("owner=me") == set()
    await put_owner(client, triagist, urgent, {"action": "take"})
    assert await ids("owner=me") == {urgent}
    assert await ids("unowned_overdue=true") == set()
    got = (await client.get(f"/v1/placements/{urgent}", headers=auth(triagist))).json()
    assert got["unowned_overdue"] is False
    r = await client.get("/v1/placements?owner=someone", headers=auth(triagist))
    assert pointers(assert_problem(r, 422)) == ["query:owner"]


async def test_the_sweeper_announces_an_unowned_overdue_case_once(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    referrer, triagist = seed.keys["referrer"], seed.keys["triagist"]
    waiting = (await create(client, referrer, **CRISIS))["id"]
    taken = (await create(client, referrer, **CRISIS))["id"]
    await create(client, referrer, **CRISIS)  # due 15 minutes from now
    await put_owner(client, triagist, taken, {"action": "take"})
    for pid in (waiting, taken):
        await backdate(db, pid, 20)
    assert (await sweeper.sweep(db, now=utcnow())).unowned_overdue == 1
    assert (await sweeper.sweep(db, now=utcnow())).unowned_overdue == 0  # once
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT payload FROM outbox_event "
                    "WHERE event_type = 'placement.unowned_overdue' ORDER BY id"
                )
            )
        ).all()
    payloads = [orjson.loads(r[0]) for r in rows]
    assert [(x["placement_id"], x["urgency_level"]) for x in payloads] == [(waiting, 3)]
    assert "patient_key" not in payloads[0]
    # Sixteen minutes on, the fresh one (created now, U3) is due too.
    later = utcnow() + timedelta(minutes=16)
    assert (await sweeper.sweep(db, now=later)).unowned_overdue == 1


# --- notes ----------------------------------------------------------------------------------------


async def test_notes_append_and_read(client: httpx.AsyncClient, seed: Seed, db: Database) -> None:
    referrer, triagist = seed.keys["referrer"], seed.keys["triagist"]
    p = await create(client, referrer, **CRISIS)
    pid = p["id"]
    path = f"/v1/placements/{pid}/notes"
    r = await client.post(
        path, json={"text": "Daughter reachable after 18:00."}, headers=auth(triagist)
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["author_name"] == "test triagist"
    assert first["author_organisation_id"] == str(seed.organisations["rap"])
    r = await client.post(path, json={"text": "x" * 4000}, headers=auth(triagist))
    assert r.status_code == 201, r.text
    for body in ({"text": "x" * 4001}, {"text": "   "}, {"text": ""}, {}):
        assert_problem(await client.post(path, json=body, headers=auth(triagist)), 422)
    # The referrer does not own this crisis case: it may read the notes but not write them.
    assert_problem(await client.post(path, json={"text": "n"}, headers=auth(referrer)), 403)
    assert_problem(
        await client.post(path, json={"text": "n"}, headers=auth(seed.keys["provider"])), 403
    )
    r = await client.get(path, headers=auth(referrer))
    assert r.status_code == 200, r.text
    assert [n["id"] for n in r.json()["items"]] == [first["id"], first["id"] + 1]
    assert r.json()["items"][0]["text"] == "Daughter reachable after 18:00."
    assert_problem(await client.get(path, headers=auth(seed.other_provider_key)), 403)
    reads = await audit_rows(db, "placement.notes.read")
    assert [(x["action"], x["object_id"], x["patient_key"]) for x in reads] == [
        ("R", pid, p["patient_key"])
    ]
    assert len(await audit_rows(db, "placement.note.create")) == 2
    # Append-only: no route changes or deletes a note.
    assert (await client.delete(path, headers=auth(triagist))).status_code == 405
    assert (await client.put(path, json={"text": "n"}, headers=auth(triagist))).status_code == 405


async def test_the_owner_writes_notes(client: httpx.AsyncClient, seed: Seed) -> None:
    referrer = seed.keys["referrer"]
    pid = (await create(client, referrer))["id"]  # ELV: the referring key owns it
    r = await client.post(f"/v1/placements/{pid}/notes", json={"text": "n"}, headers=auth(referrer))
    assert r.status_code == 201, r.text


@pytest.mark.postgres_only
async def test_notes_are_append_only_on_postgresql(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    pid = (await create(client, seed.keys["referrer"]))["id"]
    await client.post(
        f"/v1/placements/{pid}/notes", json={"text": "n"}, headers=auth(seed.keys["triagist"])
    )
    for statement in ("UPDATE placement_note SET text = 'x'", "DELETE FROM placement_note"):
        async with db.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(statement))


# --- history --------------------------------------------------------------------------------------


async def test_history_shows_earlier_placements_to_triagists_only(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    referrer, triagist = seed.keys["referrer"], seed.keys["triagist"]
    first = await create(client, referrer, patient_identifier="999999990")
    await client.post(
        f"/v1/placements/{first['id']}/notes",
        json={"text": "Lives alone; carer burnt out."},
        headers=auth(triagist),
    )
    await client.post(
        f"/v1/placements/{first['id']}/cancel", json={"reason": "recovered"}, headers=auth(referrer)
    )
    other_patient = await create(client, referrer, patient_identifier="999999991")
    second = await create(client, referrer, patient_identifier="999999990")
    r = await client.get(f"/v1/placements/{second['id']}/history", headers=auth(triagist))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["placement_id"] == second["id"]
    assert [h["id"] for h in body["previous_placements"]] == [first["id"]]
    earlier = body["previous_placements"][0]
    assert earlier["state"] == "cancelled"
    assert [n["text"] for n in earlier["notes"]] == ["Lives alone; carer burnt out."]
    # The first placement has no earlier one; the other patient's is never shown.
    r = await client.get(f"/v1/placements/{first['id']}/history", headers=auth(triagist))
    assert r.json()["previous_placements"] == []
    assert other_patient["id"] not in str(body)
    rows = await audit_rows(db, "placement.history.read")
    # One read row per placement shown (the access log orders a request's rows by chain).
    assert sorted((x["object_id"], x["action"]) for x in rows[:2]) == sorted(
        [(first["id"], "R"), (second["id"], "R")]
    )
    for key in (referrer, seed.keys["provider"], seed.keys["analyst"]):
        assert_problem(
            await client.get(f"/v1/placements/{second['id']}/history", headers=auth(key)), 403
        )
    denied = await audit_rows(db, "placement.placement_history")
    assert [x["outcome"] for x in denied] == ["failure"] * 3
