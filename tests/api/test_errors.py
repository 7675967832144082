"""Malformed requests of every kind get a 4xx RFC 9457 problem naming the cause; never a 5xx."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from app.db import utcnow
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers


async def test_bad_json_is_400(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        content=b'{"free": 2,',
        headers={**auth(seed.keys["provider"]), "content-type": "application/json"},
    )
    body = assert_problem(r, 400, type_slug="malformed-request")
    assert "not valid JSON" in body["detail"]


async def test_wrong_type_names_the_field(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": "many"},
        headers=auth(seed.keys["provider"]),
    )
    assert pointers(assert_problem(r, 422, type_slug="validation")) == ["#/free"]


async def test_boolean_is_not_a_number(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": True},
        headers=auth(seed.keys["provider"]),
    )
    assert pointers(assert_problem(r, 422)) == ["#/free"]


async def test_unknown_enum_value(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get(
        "/v1/availability", params={"care_type": "elv_extreme"}, headers=auth(seed.keys["triagist"])
    )
    body = assert_problem(r, 422)
    assert pointers(body) == ["query:care_type/0"]


async def test_negative_free(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": -1},
        headers=auth(seed.keys["provider"]),
    )
    assert pointers(assert_problem(r, 422)) == ["#/free"]


async def test_free_above_staffed_capacity(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": 11},
        headers=auth(seed.keys["provider"]),
    )
    body = assert_problem(r, 422)
    assert pointers(body) == ["#/free"]
    assert "staffed capacity 10" in body["detail"]


async def test_future_reported_at(client: httpx.AsyncClient, seed: Seed) -> None:
    future = (utcnow() + timedelta(hours=1)).isoformat()
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": 1, "reported_at": future},
        headers=auth(seed.keys["provider"]),
    )
    assert pointers(assert_problem(r, 422)) == ["#/reported_at"]


async def test_naive_timestamp_is_refused(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": 1, "reported_at": "2026-01-01T10:00:00"},
        headers=auth(seed.keys["provider"]),
    )
    assert pointers(assert_problem(r, 422)) == ["#/reported_at"]


async def test_unknown_unit(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{uuid.uuid4()}/capacity", json={"free": 1}, headers=auth(seed.keys["provider"])
    )
    assert_problem(r, 404, type_slug="not-found")


async def test_malformed_path_id(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get("/v1/units/not-a-uuid", headers=auth(seed.keys["triagist"]))
    assert pointers(assert_problem(r, 422)) == ["path:unit_id"]


async def test_huge_body(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.post(
        "/v1/capacity-reports",
        content=b"[" + b" " * 2_000_000 + b"]",
        headers={**auth(seed.keys["provider"]), "content-type": "application/json"},
    )
    assert_problem(r, 413, type_slug="payload-too-large")


async def test_wrong_content_type(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        content=b"free=1",
        headers={**auth(seed.keys["provider"]), "content-type": "text/plain"},
    )
    body = assert_problem(r, 415, type_slug="unsupported-media-type")
    assert "text/plain" in body["detail"]


async def test_bad_pagination_cursor(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get(
        "/v1/units", params={"cursor": "%%%not-a-cursor"}, headers=auth(seed.keys["triagist"])
    )
    assert pointers(assert_problem(r, 422)) == ["query:cursor"]


@pytest.mark.parametrize("limit", ["0", "501", "ten"])
async def test_out_of_range_page_size(client: httpx.AsyncClient, seed: Seed, limit: str) -> None:
    r = await client.get("/v1/units", params={"limit": limit}, headers=auth(seed.keys["triagist"]))
    assert pointers(assert_problem(r, 422)) == ["query:limit"]


async def test_unknown_field(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": 1, "beds": 3},
        headers=auth(seed.keys["provider"]),
    )
    assert pointers(assert_problem(r, 422)) == ["#/beds"]


async def test_nul_character(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.patch(
        f"/v1/units/{seed.units['leiden-elv-high']}",
        json={"name": "bad\u0000name"},
        headers=auth(seed.keys["provider"]),
    )
    assert pointers(assert_problem(r, 422)) == ["#/name"]


async def test_unknown_route_and_method(client: httpx.AsyncClient, seed: Seed) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404)
    r = await client.delete("/v1/units", headers=auth(seed.keys["admin"]))
    assert_problem(r, 405)
    assert r.headers["allow"] == "GET, POST"


async def test_bad_near(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", "near": "north"},
        headers=auth(seed.keys["triagist"]),
    )
    assert pointers(assert_problem(r, 422)) == ["query:near"]


async def test_unknown_subregion(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", "subregion": "atlantis"},
        headers=auth(seed.keys["triagist"]),
    )
    assert pointers(assert_problem(r, 422)) == ["query:subregion"]
