"""POST /v1/triage and GET /v1/triage/questions through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.flows.demo import demo_organisation_ids, load_demo
from app.principal import Principal
from app.triage.models import TriageRecord
from app.triage.rules import load_builtin_ruleset
from tests.conftest import auth
from tests.factories import Seed, placement_body
from tests.helpers import assert_problem, pointers

pytestmark = pytest.mark.usefixtures("app")

# west-2026.1 rule R8: ELV high complexity, somatic, complete.
ELV_HIGH = {
    "physician_assessed": True,
    "needs_specialist_care": False,
    "acute_psychiatry": False,
    "wlz_status": "none",
    "permanent_24h_need": False,
    "life_expectancy_lt_3m": False,
    "rehab_goals": False,
    "medical_instability": True,
    "needs_multidisciplinary_so_treatment": True,
    "dementia_or_behaviour": False,
}
# R11: district nursing; acute or regular depends on the urgency.
DISTRICT_NURSING = {
    "physician_assessed": True,
    "needs_specialist_care": False,
    "acute_psychiatry": False,
    "wlz_status": "none",
    "permanent_24h_need": False,
    "life_expectancy_lt_3m": False,
    "rehab_goals": False,
    "medical_instability": False,
    "unplannable_nursing": False,
    "adl_takeover": False,
    "carer_unavailable": False,
    "home_safe_with_nursing": True,
    "dementia_or_behaviour": False,
}


async def _triage(
    client: httpx.AsyncClient, key: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post("/v1/triage", json=body, headers={**auth(key), **headers})


async def test_complete_answers_give_advice_with_explanation(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    body = {"answers": ELV_HIGH, "urgency": {"system": "nts", "code": "U3"}}
    r = await _triage(client, seed.keys["triagist"], body)
    assert r.status_code == 200, r.text
    advice = r.json()
    assert advice["rule_set"]["version"] == "west-2026.1"
    assert advice["complete"] is True
    assert advice["outcome"]["code"] == "elv_high"
    assert advice["outcome"]["label_en"] == "Short stay, high complexity"
    assert advice["rule_id"] == "R8"
    assert advice["care_types"] == ["elv_high"]
    assert advice["care_type"] == "elv_high"
    assert advice["target_group"] == "somatic"
    assert advice["required_features"] == []
    assert advice["urgency"] == {
        "system": "nts",
        "code": "U3",
        "level": 3,
        "meaning_nl": "reële kans op schade, binnen enkele uren",
        "meaning_en": "real chance of harm, within hours",
    }
    assert advice["rationale_nl"].startswith("Er is een ELV-indicatie")
    assert advice["rationale_en"].startswith("There is a short-stay indication")
    assert advice["open_questions"] == []
    assert advice["override"] is None
    assert advice["placement"] is None
    assert advice["availability"] is None
    # The deciding inputs, replayed alone, give the same outcome (the engine's promise, via HTTP).
    replay = await _triage(client, seed.keys["triagist"], {"answers": advice["deciding_inputs"]})
    assert replay.json()["outcome"]["code"] == "elv_high"
    assert replay.json()["rule_id"] == "R8"
    async with db.sessionmaker() as session:
        record = await session.get(TriageRecord, uuid.UUID(advice["id"]))
    assert record is not None
    assert record.rule_set_version == "west-2026.1"
    assert record.outcome == "elv_high"
    assert record.rule_id == "R8"
    assert record.urgency_system == "nts"
    assert record.urgency_code == "U3"
    assert record.urgency_level == 3
    assert record.placement_id is None
    assert record.complete is True


async def test_partial_answers_list_open_questions_in_asking_order(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(
        client,
        seed.keys["referrer"],
        {"answers": {"physician_assessed": True, "acute_psychiatry": False}},
    )
    assert r.status_code == 200, r.text
    advice = r.json()
    assert advice["complete"] is False
    assert advice["outcome"] is None
    assert advice["care_type"] is None
    ids = [q["id"] for q in advice["open_questions"]]
    asking_order = [q.id for q in load_builtin_ruleset().questions]
    assert ids == [q for q in asking_order if q in ids]
    assert ids[0] == "needs_specialist_care"
    assert "physician_assessed" not in ids
    first = advice["open_questions"][0]
    assert first["type"] == "boolean"
    assert first["text_en"].startswith("Does the patient need diagnostics")
    assert first["text_nl"]


async def test_null_answer_counts_as_not_answered(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await _triage(
        client, seed.keys["triagist"], {"answers": {**ELV_HIGH, "medical_instability": None}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] is None
    assert "medical_instability" in [q["id"] for q in r.json()["open_questions"]]


async def test_urgency_picks_the_care_type_and_a_unified_level_is_accepted(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    key = seed.keys["triagist"]
    without = (await _triage(client, key, {"answers": DISTRICT_NURSING})).json()
    assert without["outcome"]["code"] == "district_nursing"
    assert without["needs_urgency"] is True
    assert without["complete"] is False
    assert without["care_types"] == ["district_nursing_acute", "district_nursing"]
    assert without["care_type"] is None
    urgent = (
        await _triage(
            client, key, {"answers": DISTRICT_NURSING, "urgency": {"system": "mts", "code": "red"}}
        )
    ).json()
    assert urgent["care_types"] == ["district_nursing_acute"]
    assert urgent["urgency"]["level"] == 0
    assert urgent["urgency"]["code"] == "red"
    regular = (
        await _triage(client, key, {"answers": DISTRICT_NURSING, "urgency": {"level": 5}})
    ).json()
    assert regular["care_types"] == ["district_nursing"]
    assert regular["complete"] is True
    assert regular["urgency"]["system"] is None
    assert regular["urgency"]["meaning_en"] == "next working day"


async def test_psychogeriatric_target_group_and_needed_features(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(
        client,
        seed.keys["triagist"],
        {
            "answers": {**ELV_HIGH, "dementia_or_behaviour": True},
            "features": ["isolation", "closed_ward"],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["target_group"] == "psychogeriatric"
    assert r.json()["required_features"] == ["isolation", "closed_ward"]
    assert r.json()["outcome"]["code"] == "elv_high"


async def test_override_needs_a_reason_and_is_recorded(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    key = seed.keys["triagist"]
    body = {"answers": ELV_HIGH, "override_care_type": "elv_low"}
    problem = assert_problem(await _triage(client, key, body), 422, type_slug="validation")
    assert pointers(problem) == ["#/override_reason"]
    r = await _triage(
        client, key, {**body, "override_reason": "SO judges the care low-complex after all"}
    )
    assert r.status_code == 200, r.text
    advice = r.json()
    assert advice["care_types"] == ["elv_high"]
    assert advice["care_type"] == "elv_low"
    assert advice["override"] == {
        "care_type": "elv_low",
        "reason": "SO judges the care low-complex after all",
        "advised_care_types": ["elv_high"],
    }
    async with db.sessionmaker() as session:
        record = await session.get(TriageRecord, uuid.UUID(advice["id"]))
    assert record is not None
    assert record.override_care_type == "elv_low"
    assert record.override_reason == "SO judges the care low-complex after all"
    # Choosing one of the advised care types is no override: no reason needed.
    choice = await _triage(
        client,
        key,
        {"answers": DISTRICT_NURSING, "override_care_type": "district_nursing"},
    )
    assert choice.status_code == 200, choice.text
    assert choice.json()["care_type"] == "district_nursing"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"answers": {"physician_asessed": True}}, "#/answers/physician_asessed"),
        ({"answers": {"physician_assessed": "yes"}}, "#/answers/physician_assessed"),
        ({"answers": {"physician_assessed": 1}}, "#/answers/physician_assessed"),
        ({"answers": {"wlz_status": "pending"}}, "#/answers/wlz_status"),
        ({"answers": {"wlz_status": True}}, "#/answers/wlz_status"),
        ({"answers": {"wlz_status": ["none"]}}, "#/answers/wlz_status"),
        ({"answers": {"a/b~c": True}}, "#/answers/a~1b~0c"),
        ({"answers": [1, 2]}, "#/answers"),
        ({"answers": {}, "urgency": {"system": "nts", "code": "U9"}}, "#/urgency/code"),
        ({"answers": {}, "urgency": {"system": "esi", "code": "1"}}, "#/urgency/system"),
        ({"answers": {}, "urgency": {"level": 6}}, "#/urgency/level"),
        ({"answers": {}, "urgency": {"level": True}}, "#/urgency/level"),
        ({"answers": {}, "urgency": {"level": 2, "system": "nts", "code": "U2"}}, "#/urgency"),
        ({"answers": {}, "urgency": {"system": "nts"}}, "#/urgency"),
        ({"answers": {}, "override_reason": "why"}, "#/override_reason"),
        ({"answers": {}, "override_care_type": "elv_medium"}, "#/override_care_type"),
        ({"answers": {}, "search": "yes"}, "#/search"),
        ({"answers": {}, "unknown": 1}, "#/unknown"),
        ({"answers": {}, "placement_id": "not-a-uuid"}, "#/placement_id"),
        ({"answers": {}, "near": "north"}, "#/near"),
        ({"answers": {}, "limit": 0}, "#/limit"),
    ],
)
async def test_malformed_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, seed: Seed, body: dict[str, Any], pointer: str
) -> None:
    problem = assert_problem(
        await _triage(client, seed.keys["triagist"], body), 422, type_slug="validation"
    )
    assert pointer in pointers(problem), problem


async def test_unknown_urgency_code_names_system_and_valid_codes(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(
        client, seed.keys["triagist"], {"urgency": {"system": "ambulance", "code": "A3"}}
    )
    problem = assert_problem(r, 422, type_slug="validation")
    assert problem["system"] == "ambulance"
    assert problem["valid_codes"] == ["A0", "A1", "A2", "B1", "B2", "C1", "C2"]
    assert "ambulance" in problem["detail"]
    assert "A3" in problem["detail"]


async def test_unknown_question_suggests_the_close_one(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(client, seed.keys["triagist"], {"answers": {"physician_asessed": True}})
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["detail"].endswith("did you mean 'physician_assessed'?")
    assert problem["rule_set_version"] == "west-2026.1"


async def test_roles_and_authentication(client: httpx.AsyncClient, seed: Seed) -> None:
    for role in ("triagist", "referrer", "admin"):
        r = await _triage(client, seed.keys[role], {"answers": ELV_HIGH})
        assert r.status_code == 200, (role, r.text)
    for role in ("provider", "analyst"):
        assert_problem(await _triage(client, seed.keys[role], {"answers": ELV_HIGH}), 403)
    r = await client.post("/v1/triage", json={"answers": ELV_HIGH})
    assert_problem(r, 401)


async def test_malformed_json_is_a_400(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.post(
        "/v1/triage",
        content=b'{"answers": {',
        headers={**auth(seed.keys["triagist"]), "content-type": "application/json"},
    )
    assert_problem(r, 400, type_slug="malformed-request")


async def test_idempotent_retry_with_search_writes_once(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    body = {"answers": ELV_HIGH, "search": True, "subregion": "leiden", "escalate": True}
    headers = {"Idempotency-Key": "triage-1"}
    first = await _triage(client, seed.keys["triagist"], body, **headers)
    assert first.status_code == 200, first.text
    again = await _triage(client, seed.keys["triagist"], body, **headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    async with db.sessionmaker() as session:
        ids = (await session.scalars(select(TriageRecord.id))).all()
    assert ids == [uuid.UUID(first.json()["id"])]


# --- search=true -------------------------------------------------------------------------------


async def test_search_returns_free_places_of_the_advised_care_type(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(
        client,
        seed.keys["triagist"],
        {"answers": ELV_HIGH, "search": True, "subregion": "leiden", "escalate": True},
    )
    assert r.status_code == 200, r.text
    found = r.json()["availability"]
    assert found["escalated"] is True
    assert found["count"] == len(found["items"]) > 0
    assert {hit["care_type"] for hit in found["items"]} == {"elv_high"}
    assert found["items"][0]["subregion"]["code"] == "leiden"


async def test_search_uses_the_override_and_needed_features(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(
        client,
        seed.keys["triagist"],
        {
            "answers": ELV_HIGH,
            "search": True,
            "features": ["isolation"],
            "override_care_type": "elv_high",
        },
    )
    assert r.status_code == 200, r.text
    items = r.json()["availability"]["items"]
    assert [hit["unit_name"] for hit in items] == ["ELV HC Den Haag"]
    assert items[0]["features"] == ["isolation"]


async def test_search_for_an_outcome_without_places_is_empty(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(
        client,
        seed.keys["triagist"],
        {"answers": {"physician_assessed": False}, "search": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"]["code"] == "stop_assess_first"
    assert r.json()["availability"]["items"] == []


async def test_search_with_unknown_subregion_names_the_body_field(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _triage(
        client,
        seed.keys["triagist"],
        {"answers": ELV_HIGH, "search": True, "subregion": "atlantis"},
    )
    problem = assert_problem(r, 422, type_slug="validation")
    assert pointers(problem) == ["#/subregion"]


async def test_demo_search_returns_ranked_free_places_of_the_advised_care_type(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """Acceptance (issue 4): triage with search=true on the demo data."""
    loader = Principal(
        key_id=uuid.uuid4(),
        name="demo",
        roles=frozenset({Role.ADMIN}),
        organisation_id=None,
        region_id=None,
    )
    async with db.sessionmaker() as session:
        await load_demo(session, loader, now=utcnow(), settings=settings)
        await session.commit()
        rap = (await demo_organisation_ids(session))["rap"]
        key = await auth_service.issue_key(
            session, ApiKeyCreate(name="t", organisation_id=rap, roles=[Role.TRIAGIST])
        )
        await session.commit()
    for answers, care_type in [(ELV_HIGH, "elv_high"), (DISTRICT_NURSING, "district_nursing")]:
        r = await _triage(
            client,
            key.key,
            {
                "answers": answers,
                "urgency": {"system": "nts", "code": "U4"},
                "search": True,
                "subregion": "leiden",
                "escalate": True,
                "near": "52.1658,4.4776",
            },
        )
        assert r.status_code == 200, r.text
        advice = r.json()
        assert advice["care_type"] == care_type
        items = advice["availability"]["items"]
        assert len(items) >= 2, f"region West has free {care_type} places"
        assert {hit["care_type"] for hit in items} == {care_type}
        assert all(hit["available"] > 0 and hit["stale"] is False for hit in items)
        assert items[0]["subregion"]["code"] == "leiden"
        ranked = [(hit["escalation_rank"], hit["distance_km"]) for hit in items]
        assert [rank for rank, _ in ranked] == sorted(rank for rank, _ in ranked)
        for (rank, km), (next_rank, next_km) in itertools.pairwise(ranked):
            if rank == next_rank:  # nearest first within a subregion (planar order, 50 m slack)
                assert km <= next_km + 0.05


# --- placement_id ------------------------------------------------------------------------------


async def _requested_placement(client: httpx.AsyncClient, key: str, **overrides: object) -> str:
    body = placement_body(triage=None, **overrides)
    r = await client.post("/v1/placements", json=body, headers=auth(key))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "requested"
    return str(r.json()["id"])


async def test_triage_on_a_placement_moves_it_to_triaged_with_an_event(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    pid = await _requested_placement(client, seed.keys["referrer"])
    r = await _triage(
        client,
        seed.keys["triagist"],
        {
            "answers": ELV_HIGH,
            "placement_id": pid,
            "override_care_type": "elv_low",
            "override_reason": "family nearby, GP stays in charge",
        },
    )
    assert r.status_code == 200, r.text
    advice = r.json()
    assert advice["placement"] == {"id": pid, "state": "triaged"}
    # No urgency in the request: the placement's own (nts U3) is used and kept.
    assert advice["urgency"]["system"] == "nts"
    assert advice["urgency"]["code"] == "U3"
    assert advice["urgency"]["level"] == 3
    placement = await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["referrer"]))
    assert placement.json()["state"] == "triaged"
    assert placement.json()["care_type"] == "elv_low"
    assert placement.json()["triage_rule_set"] == "west-2026.1"
    assert placement.json()["triage_outcome"] == "elv_high"
    events = (
        await client.get(f"/v1/placements/{pid}/events", headers=auth(seed.keys["referrer"]))
    ).json()["items"]
    triaged = [e for e in events if e["type"] == "triaged"]
    assert len(triaged) == 1
    payload = triaged[0]["payload"]
    assert payload["triage_id"] == advice["id"]
    assert payload["rule_id"] == "R8"
    assert payload["advised_care_types"] == ["elv_high"]
    assert payload["override_care_type"] == "elv_low"
    assert payload["override_reason"] == "family nearby, GP stays in charge"
    async with db.sessionmaker() as session:
        record = await session.get(TriageRecord, uuid.UUID(advice["id"]))
    assert record is not None
    assert record.placement_id == uuid.UUID(pid)
    # The read and the write of one request are logged in time order.
    async with db.sessionmaker() as session:
        logged = (
            await session.execute(
                select(AuditLog.action, AuditLog.occurred_at)
                .where(AuditLog.object_id == pid)
                .order_by(AuditLog.id)
            )
        ).all()
    assert [action for action, _ in logged][:3] == ["C", "R", "U"]
    times = [at for _, at in logged]
    assert times == sorted(times)
    # Triaging again is not a legal transition from triaged.
    again = await _triage(client, seed.keys["triagist"], {"answers": ELV_HIGH, "placement_id": pid})
    body = assert_problem(again, 409, type_slug="invalid-transition")
    assert body["current_state"] == "triaged"


async def test_placement_triage_needs_a_complete_advice_with_a_place(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    pid = await _requested_placement(client, seed.keys["referrer"])
    key = seed.keys["triagist"]
    partial = await _triage(
        client, key, {"answers": {"physician_assessed": True}, "placement_id": pid}
    )
    assert pointers(assert_problem(partial, 422)) == ["#/answers"]
    hospital = await _triage(
        client,
        key,
        {
            "answers": {"physician_assessed": True, "needs_specialist_care": True},
            "placement_id": pid,
        },
    )
    assert pointers(assert_problem(hospital, 422)) == ["#/placement_id"]
    placement = await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["referrer"]))
    assert placement.json()["state"] == "requested"


async def test_placement_triage_checks_access_and_existence(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    pid = await _requested_placement(client, seed.keys["referrer"])
    missing = await _triage(
        client, seed.keys["triagist"], {"answers": ELV_HIGH, "placement_id": str(uuid.uuid4())}
    )
    assert_problem(missing, 404)
    async with db.sessionmaker() as session:
        other = await auth_service.issue_key(
            session,
            ApiKeyCreate(
                name="other referrer",
                organisation_id=seed.organisations["vvt-gouda"],
                roles=[Role.REFERRER],
            ),
        )
        await session.commit()
    denied = await _triage(client, other.key, {"answers": ELV_HIGH, "placement_id": pid})
    assert_problem(denied, 403)
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(TriageRecord.id))).all() == []


async def test_placement_search_is_for_its_patient_subregion_sex_and_features(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    """A triage on a placement searches for that patient: its subregion, sex and needed
    features, unless the request names others."""
    triagist = seed.keys["triagist"]

    async def search(placement: Mapping[str, object], **request: object) -> list[str]:
        pid = await _requested_placement(client, seed.keys["referrer"], **placement)
        body = {"answers": ELV_HIGH, "placement_id": pid, "search": True, **request}
        r = await _triage(client, triagist, body)
        assert r.status_code == 200, r.text
        return [hit["unit_name"] for hit in r.json()["availability"]["items"]]

    gouda_man = {"subregion": "gouda", "sex": "male"}
    # Gouda's only ELV unit is for women: nothing in the man's own subregion.
    assert await search(gouda_man) == []
    assert sorted(await search(gouda_man, escalate=True)) == ["ELV HC Den Haag", "ELV HC Leiden"]
    assert await search({"subregion": "gouda", "sex": "female"}) == ["ELV HC Gouda"]
    # Isolation needed: only the Den Haag unit has it, found when escalating from Leiden.
    isolated = {"subregion": "leiden", "features": ["isolation"]}
    assert await search(isolated) == []
    assert await search(isolated, escalate=True) == ["ELV HC Den Haag"]
    # The request's own subregion and extra features win over the placement's.
    assert await search(gouda_man, subregion="leiden") == ["ELV HC Leiden"]
    assert await search(gouda_man, subregion="den-haag", features=["isolation"]) == [
        "ELV HC Den Haag"
    ]


# --- questionnaire -----------------------------------------------------------------------------


async def test_questions_of_the_active_rule_set_in_asking_order(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    for role in ("provider", "analyst", "referrer", "triagist", "admin"):
        r = await client.get("/v1/triage/questions", headers=auth(seed.keys[role]))
        assert r.status_code == 200, r.text
    body = r.json()
    ruleset = load_builtin_ruleset()
    assert body["rule_set_version"] == "west-2026.1"
    assert body["title"] == ruleset.title
    assert [q["id"] for q in body["questions"]] == [q.id for q in ruleset.questions]
    wlz = next(q for q in body["questions"] if q["id"] == "wlz_status")
    assert wlz["type"] == "enum"
    assert wlz["values"] == ["none", "expected", "granted"]
    assert wlz["help_en"].startswith("none: no Wlz entitlement")
    first = body["questions"][0]
    assert first == {
        "id": "physician_assessed",
        "type": "boolean",
        "values": [],
        "text_nl": ruleset.questions[0].text_nl,
        "text_en": ruleset.questions[0].text_en,
        "help_nl": ruleset.questions[0].help_nl,
        "help_en": ruleset.questions[0].help_en,
        "informational": False,
    }
    assert_problem(await client.get("/v1/triage/questions"), 401)
