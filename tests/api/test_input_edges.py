"""Inputs at the edge of what the service can hold get a 422 problem naming the field, never a 5xx.

The date-time and query-parameter walks read the live OpenAPI document, so an input added later
is covered without editing this file.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import auth
from tests.factories import Seed, placement_body
from tests.helpers import assert_problem, pointers

EDGE_DATETIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
EDGE_DATES = ["0001-01-01", "9999-12-31"]
NUL = "lei\x00den"


def _walk(spec: dict[str, Any], schema: dict[str, Any], pointer: str) -> Iterator[tuple[str, str]]:
    """(pointer, format) of every date-time or date property reachable from ``schema``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        yield from _walk(spec, spec["components"]["schemas"][name], pointer)
        return
    if schema.get("format") in {"date-time", "date"}:
        yield pointer, schema["format"]
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from _walk(spec, option, pointer)
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(spec, sub, f"{pointer}/{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(spec, schema["items"], f"{pointer}/0")


def time_inputs(app: FastAPI) -> list[tuple[str, str, str, str]]:
    """(method, path template, pointer, format) of every date/date-time parameter and body field."""
    spec = app.openapi()
    found = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                for _, fmt in _walk(spec, param.get("schema", {}), ""):
                    found.append((method.upper(), path, f"{param['in']}:{param['name']}", fmt))
            content = op.get("requestBody", {}).get("content", {})
            for media in content.values():
                for pointer, fmt in _walk(spec, media["schema"], "#"):
                    found.append((method.upper(), path, pointer, fmt))
    return sorted(set(found))


def body_at(pointer: str, value: str) -> Any:
    """The smallest JSON document with ``value`` at ``pointer`` ('#/0/reported_at')."""
    document: Any = value
    for part in reversed(pointer.split("/")[1:]):
        document = [document] if part == "0" else {part: document}
    return document


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def _placement(client: httpx.AsyncClient, seed: Seed) -> str:
    r = await client.post("/v1/placements", json=placement_body(), headers=auth(seed.keys["admin"]))
    if r.status_code != 201:  # the admin key needs a referring organisation
        r = await client.post(
            "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
        )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _ids(client: httpx.AsyncClient, seed: Seed) -> dict[str, str]:
    return {
        "unit_id": str(seed.units["leiden-elv-high"]),
        "placement_id": await _placement(client, seed),
    }


async def test_every_date_time_input_refuses_both_edges_of_the_range(
    app: FastAPI, client: httpx.AsyncClient, seed: Seed
) -> None:
    inputs = [i for i in time_inputs(app) if i[3] == "date-time"]
    walked = {(method, path, pointer) for method, path, pointer, _ in inputs}
    # The walk finds the inputs the range errors were reported on (and whatever came since).
    assert {
        ("PUT", "/v1/units/{unit_id}/capacity", "#/reported_at"),
        ("POST", "/v1/capacity-reports", "#/0/reported_at"),
        ("POST", "/v1/placements", "#/occurred_at"),
        ("POST", "/v1/placements", "#/consent_given_at"),
        ("POST", "/v1/placements", "#/medically_ready_at"),
        ("POST", "/v1/placements/{placement_id}/events", "#/occurred_at"),
        ("POST", "/v1/triage", "#/occurred_at"),
        ("GET", "/v1/placements", "query:created_from"),
        ("GET", "/v1/audit", "query:from"),
        ("GET", "/v1/units/{unit_id}/capacity-history", "query:from"),
    } <= walked
    assert len(inputs) >= 18
    ids = await _ids(client, seed)
    key = auth(seed.keys["admin"])
    wrong = []
    for method, template, pointer, _ in inputs:
        for edge in EDGE_DATETIMES:
            path = concrete(template, ids)
            if pointer.startswith("query:"):
                r = await client.request(method, path, params={pointer[6:]: edge}, headers=key)
            else:
                r = await client.request(method, path, json=body_at(pointer, edge), headers=key)
            errors = r.json().get("errors") or [] if r.status_code == 422 else []
            named = [e for e in errors if e["pointer"] == pointer]
            if r.status_code != 422 or not named or "between" not in named[0]["detail"]:
                wrong.append((method, template, pointer, edge, r.status_code, r.text[:300]))
            else:
                assert_problem(r, 422, type_slug="validation")
    assert wrong == []


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2026-11-23T09:00:00+14:00", 200),
        ("1900-01-01T00:00:00Z", 200),
        ("1899-12-31T23:59:59Z", 422),
        ("9000-01-01T00:00:00Z", 200),
        ("9000-01-01T00:00:01Z", 422),
    ],
)
async def test_date_time_range_is_bounded_in_utc(
    client: httpx.AsyncClient, seed: Seed, value: str, status: int
) -> None:
    r = await client.get(
        "/v1/placements", params={"created_from": value}, headers=auth(seed.keys["admin"])
    )
    assert r.status_code == status, r.text
    if status == 422:
        assert pointers(assert_problem(r, 422)) == ["query:created_from"]


async def test_every_date_input_at_the_edges_gets_no_server_error(
    app: FastAPI, client: httpx.AsyncClient, seed: Seed
) -> None:
    inputs = [i for i in time_inputs(app) if i[3] == "date"]
    assert inputs  # the KPI periods
    key = auth(seed.keys["admin"])
    for method, template, pointer, _ in inputs:
        for edge in EDGE_DATES:
            params = {"from": EDGE_DATES[0], "to": EDGE_DATES[1], pointer[6:]: edge}
            r = await client.request(method, concrete(template, {}), params=params, headers=key)
            assert r.status_code < 500, (template, pointer, edge, r.text)


FORGED_CURSORS = [
    cursor("9" * 40),  # a number no BIGINT holds
    cursor("-" + "9" * 40),
    cursor("1e400"),
    cursor(f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}"),
    cursor(f"9999-12-31T23:59:59-14:00|{uuid.uuid4()}"),
    cursor(f"2026-01-01T00:00:00|{uuid.uuid4()}"),  # no offset
    cursor("\x00"),
    "not base64 at all!",
]


async def test_forged_cursors_are_a_422_naming_the_cursor(
    app: FastAPI, client: httpx.AsyncClient, seed: Seed
) -> None:
    spec = app.openapi()
    lists = [
        path
        for path, ops in spec["paths"].items()
        if any(p["name"] == "cursor" for p in ops.get("get", {}).get("parameters", []))
    ]
    assert {
        "/v1/audit",
        "/v1/units/{unit_id}/capacity-history",
        "/v1/placements/{placement_id}/events",
        "/v1/placements",
    } <= set(lists)
    ids = await _ids(client, seed)
    r = await client.post(
        "/v1/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["capacity.reported"]},
        headers=auth(seed.keys["provider"]),
    )
    if r.status_code == 201:
        ids["subscription_id"] = r.json()["id"]
    key = auth(seed.keys["admin"])
    wrong = []
    for template in lists:
        if "{" in template and not set(re.findall(r"{(\w+)}", template)) <= set(ids):
            continue
        for forged in FORGED_CURSORS:
            r = await client.get(concrete(template, ids), params={"cursor": forged}, headers=key)
            if r.status_code != 422 or pointers(r.json()) != ["query:cursor"]:
                wrong.append((template, base64_text(forged), r.status_code, r.text[:200]))
    assert wrong == []


def base64_text(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except ValueError:
        return value


async def test_nul_in_any_string_query_parameter_is_a_422_naming_it(
    app: FastAPI, client: httpx.AsyncClient, seed: Seed
) -> None:
    spec = app.openapi()
    ids = await _ids(client, seed)
    key = auth(seed.keys["admin"])
    checked = 0
    for template, ops in spec["paths"].items():
        for method, op in ops.items():
            for param in op.get("parameters", []):
                if param["in"] != "query" or "string" not in str(param["schema"]):
                    continue
                r = await client.request(
                    method.upper(),
                    concrete(template, ids),
                    params={param["name"]: NUL},
                    headers=key,
                )
                assert r.status_code == 422, (method, template, param["name"], r.text)
                assert f"query:{param['name']}" in pointers(assert_problem(r, 422))
                checked += 1
    assert checked >= 20


@pytest.mark.parametrize(
    "path",
    [
        "/v1/availability?care_type=elv_high&subregion=lei%00den",
        "/v1/placements?subregion=lei%00den",
        "/v1/placements/{placement_id}/availability?subregion=lei%00den",
    ],
)
async def test_nul_in_subregion_filters(client: httpx.AsyncClient, seed: Seed, path: str) -> None:
    url = concrete(path, await _ids(client, seed))
    r = await client.get(url, headers=auth(seed.keys["triagist"]))
    body = assert_problem(r, 422, type_slug="validation")
    assert pointers(body) == ["query:subregion"]
    assert "NUL" in body["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"subregion": NUL}, "#/subregion"),
        ({"triage": {"care_type": "elv_high", "rule_set": "west\x00-2026.1"}}, "#/triage/rule_set"),
        ({"care_needs": "ok", "urgency": {"system": "nts", "code": "U\x003"}}, "#/urgency/code"),
    ],
)
async def test_nul_in_placement_body_strings(
    client: httpx.AsyncClient, seed: Seed, overrides: dict[str, Any], pointer: str
) -> None:
    r = await client.post(
        "/v1/placements", json=placement_body(**overrides), headers=auth(seed.keys["referrer"])
    )
    assert pointers(assert_problem(r, 422, type_slug="validation")) == [pointer]


async def test_nul_in_a_batch_item_and_an_object_key_are_named(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.post(
        "/v1/triage",
        json={"answers": {"physician\x00assessed": True}, "subregion": NUL},
        headers=auth(seed.keys["triagist"]),
    )
    body = assert_problem(r, 422)
    assert pointers(body) == ["#/answers/physician\\u0000assessed", "#/subregion"]
    # An escaped backslash followed by "u0000" is plain text, not a NUL.
    r = await client.post(
        "/v1/placements",
        json=placement_body(care_needs="\\u0000 is not a NUL"),
        headers=auth(seed.keys["referrer"]),
    )
    assert r.status_code == 201, r.text
