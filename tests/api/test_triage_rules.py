"""Rule sets as versioned data through HTTP: list, show, upload, check report, activation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.triage.service import _builtin_source
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers

pytestmark = pytest.mark.usefixtures("app")

WEST = _builtin_source()
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
}


def variant(version: str, *replacements: tuple[str, str]) -> str:
    """The built-in rule set under another version, with textual edits (each must apply once)."""
    text = WEST.replace("version: west-2026.1", f"version: {version}", 1)
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


SHADOWED = (
    "  - id: R10\n",
    "  - id: R9b\n"
    "    when: medical_instability\n"
    "    outcome: elv_low\n"
    "    basis: test\n"
    "    rationale_nl: nooit\n"
    "    rationale_en: never\n\n"
    "  - id: R10\n",
)


async def _upload(client: httpx.AsyncClient, key: str, source: str, **extra: Any) -> httpx.Response:
    return await client.post(
        "/v1/triage/rules", json={"source": source, **extra}, headers=auth(key)
    )


async def test_fresh_database_lists_the_builtin_as_active(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.get("/v1/triage/rules", headers=auth(seed.keys["analyst"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active_version"] == "west-2026.1"
    assert len(body["items"]) == 1
    (item,) = body["items"]
    assert item["version"] == "west-2026.1"
    assert item["title"] == "ROAZ regio West triage 2026.1"
    assert item["active"] is True
    assert item["builtin"] is True
    assert item["activatable"] is True
    assert item["check_report"]["activatable"] is True
    assert item["check_report"]["errors"] == 0
    assert "source" not in item
    one = await client.get("/v1/triage/rules/west-2026.1", headers=auth(seed.keys["provider"]))
    assert one.status_code == 200, one.text
    assert one.json()["source"] == WEST
    assert one.json()["rules"] == 13
    assert one.json()["questions"] == 19
    assert one.json()["active"] is True
    assert_problem(await client.get("/v1/triage/rules"), 401)


async def test_unknown_version_is_a_404_and_a_bad_one_a_422(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    key = auth(seed.keys["admin"])
    assert_problem(await client.get("/v1/triage/rules/west-1999.1", headers=key), 404)
    assert_problem(await client.get("/v1/triage/rules/WEST%20X", headers=key), 422)
    r = await client.post("/v1/triage/rules/west-1999.1/activate", headers=key)
    assert_problem(r, 404)


async def test_upload_and_activation_switch_the_rule_set_used_by_triage(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    admin = seed.keys["admin"]
    source = variant(
        "west-2026.2",
        (
            "rationale_en: There is a short-stay indication and multidisciplinary",
            "rationale_en: Region 2026.2, short-stay indication and multidisciplinary",
        ),
    )
    r = await _upload(client, admin, source)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/triage/rules/west-2026.2"
    loaded = r.json()
    assert loaded["version"] == "west-2026.2"
    assert loaded["active"] is False
    assert loaded["builtin"] is False
    assert loaded["activatable"] is True
    assert loaded["source"] == source
    assert loaded["loaded_by_key_id"] is not None
    triagist = seed.keys["triagist"]
    before = await client.post("/v1/triage", json={"answers": ELV_HIGH}, headers=auth(triagist))
    assert before.json()["rule_set"]["version"] == "west-2026.1"
    r = await client.post("/v1/triage/rules/west-2026.2/activate", headers=auth(admin))
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True
    assert r.json()["activated_at"] is not None
    after = await client.post("/v1/triage", json={"answers": ELV_HIGH}, headers=auth(triagist))
    assert after.json()["rule_set"]["version"] == "west-2026.2"
    assert after.json()["rationale_en"].startswith("Region 2026.2,")
    questions = await client.get("/v1/triage/questions", headers=auth(triagist))
    assert questions.json()["rule_set_version"] == "west-2026.2"
    listing = (await client.get("/v1/triage/rules", headers=auth(triagist))).json()
    assert listing["active_version"] == "west-2026.2"
    assert {i["version"]: i["active"] for i in listing["items"]} == {
        "west-2026.1": False,
        "west-2026.2": True,
    }
    # Activating again is a no-op; switching back works: old versions stay for audit.
    again = await client.post("/v1/triage/rules/west-2026.2/activate", headers=auth(admin))
    assert again.status_code == 200
    back = await client.post("/v1/triage/rules/west-2026.1/activate", headers=auth(admin))
    assert back.json()["active"] is True
    final = await client.post("/v1/triage", json={"answers": ELV_HIGH}, headers=auth(triagist))
    assert final.json()["rule_set"]["version"] == "west-2026.1"


async def test_upload_with_activate_goes_live_at_once(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await _upload(client, seed.keys["admin"], variant("west-2026.3"), activate=True)
    assert r.status_code == 201, r.text
    assert r.json()["active"] is True
    listing = (await client.get("/v1/triage/rules", headers=auth(seed.keys["admin"]))).json()
    assert listing["active_version"] == "west-2026.3"
    assert [i["active"] for i in listing["items"]].count(True) == 1


async def test_shadowed_rule_is_stored_but_not_activatable(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    admin = seed.keys["admin"]
    r = await _upload(client, admin, variant("west-shadow", SHADOWED))
    assert r.status_code == 201, r.text
    report = r.json()["check_report"]
    assert r.json()["activatable"] is False
    assert report["activatable"] is False
    assert report["errors"] == 1
    (finding,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert finding["code"] == "shadowed_rule"
    assert finding["rule_id"] == "R9b"
    assert "R9" in finding["message"]
    refused = await client.post("/v1/triage/rules/west-shadow/activate", headers=auth(admin))
    problem = assert_problem(refused, 409, type_slug="rule-set-not-activatable")
    assert problem["version"] == "west-shadow"
    assert problem["check_report"]["findings"][0]["rule_id"] == "R9b"
    assert "R9b" in problem["detail"]
    # With activate=true the whole upload is refused and nothing is stored.
    refused = await _upload(client, admin, variant("west-shadow-2", SHADOWED), activate=True)
    assert_problem(refused, 409, type_slug="rule-set-not-activatable")
    missing = await client.get("/v1/triage/rules/west-shadow-2", headers=auth(admin))
    assert_problem(missing, 404)
    listing = (await client.get("/v1/triage/rules", headers=auth(admin))).json()
    assert listing["active_version"] == "west-2026.1"


@pytest.mark.parametrize(
    ("edit", "rule_id", "needle", "message"),
    [
        (
            ("    when: home_safe_with_nursing\n", "    when: home_safe_with_nurse\n"),
            "R11",
            "    when: home_safe_with_nurse\n",
            "unknown input 'home_safe_with_nurse'; did you mean 'home_safe_with_nursing'?",
        ),
        (
            ("    outcome: district_nursing\n", "    outcome: district_nurse\n"),
            "R11",
            "    outcome: district_nurse\n",
            "unknown outcome 'district_nurse'",
        ),
        (
            ("    when: life_expectancy_lt_3m\n", "    when: {input: wlz_status, equals: soon}\n"),
            "R6",
            "    when: {input: wlz_status, equals: soon}\n",
            "input 'wlz_status' takes one of none, expected, granted, not 'soon'",
        ),
    ],
)
async def test_unknown_input_or_outcome_is_refused_naming_rule_and_line(
    client: httpx.AsyncClient,
    seed: Seed,
    edit: tuple[str, str],
    rule_id: str,
    needle: str,
    message: str,
) -> None:
    source = variant("west-bad", edit)
    problem = assert_problem(
        await _upload(client, seed.keys["admin"], source), 422, type_slug="validation"
    )
    (error,) = problem["errors"]
    assert error["pointer"] == "#/source"
    assert error["rule_id"] == rule_id
    assert error["line"] == line_of(source, needle)
    assert message in error["detail"]
    assert f"rule {rule_id}" in problem["detail"]
    assert_problem(
        await client.get("/v1/triage/rules/west-bad", headers=auth(seed.keys["admin"])), 404
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("version: [unclosed", "not valid YAML"),
        ("just text", "a rule set is a mapping"),
        ("a: &x [1, 2]\nb: *x\n", "YAML aliases"),
        ("a: 1\nb: \u0081", "unacceptable character #x0081"),
        ("{" * 5000 + "}" * 5000, ""),
        (WEST.replace("version: west-2026.1", "version: " + "v" * 61), "version longer than 60"),
    ],
)
async def test_malformed_rule_set_text_is_a_422_never_a_500(
    client: httpx.AsyncClient, seed: Seed, source: str, message: str
) -> None:
    problem = assert_problem(
        await _upload(client, seed.keys["admin"], source), 422, type_slug="validation"
    )
    assert message in problem["errors"][0]["detail"]


async def test_same_version_twice_is_a_conflict(client: httpx.AsyncClient, seed: Seed) -> None:
    admin = seed.keys["admin"]
    assert (await _upload(client, admin, variant("west-2026.4"))).status_code == 201
    again = await _upload(client, admin, variant("west-2026.4"))
    assert_problem(again, 409, type_slug="rule-set-exists")
    builtin = await _upload(client, admin, WEST)
    assert_problem(builtin, 409, type_slug="rule-set-exists")


@pytest.mark.parametrize(
    "body",
    [{}, {"source": ""}, {"source": 5}, {"source": "x", "activate": "yes"}, {"src": "x"}],
)
async def test_upload_body_is_validated(
    client: httpx.AsyncClient, seed: Seed, body: dict[str, Any]
) -> None:
    r = await client.post("/v1/triage/rules", json=body, headers=auth(seed.keys["admin"]))
    assert_problem(r, 422, type_slug="validation")


async def test_only_admins_load_and_activate(client: httpx.AsyncClient, seed: Seed) -> None:
    for role in ("triagist", "referrer", "provider", "analyst"):
        assert_problem(await _upload(client, seed.keys[role], variant("west-x")), 403)
        r = await client.post(
            "/v1/triage/rules/west-2026.1/activate", headers=auth(seed.keys[role])
        )
        assert_problem(r, 403)
    refused = assert_problem(await _upload(client, seed.keys["admin"], "x: 1"), 422)
    assert set(pointers(refused)) == {"#/source"}
