"""A subregion is named by id or by code, read one way everywhere; an unknown one is a 422."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import auth
from tests.factories import Seed, placement_body
from tests.helpers import assert_problem, pointers


def subregion_queries(app: FastAPI) -> list[str]:
    """The GET paths (without path parameters) that take a ``subregion`` query parameter; the
    KPI family reads it in its own service."""
    found = []
    for path, ops in app.openapi()["paths"].items():
        get = ops.get("get", {})
        names = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
        if "subregion" in names and "{" not in path and not path.startswith("/v1/kpis/"):
            found.append(path)
    return sorted(found)


async def test_every_subregion_query_takes_an_id_or_a_code(
    app: FastAPI, client: httpx.AsyncClient, seed: Seed
) -> None:
    paths = subregion_queries(app)
    assert {"/v1/availability", "/v1/capacity-snapshot", "/v1/placements"} <= set(paths)
    key = auth(seed.keys["admin"])
    wrong: list[tuple[object, ...]] = []
    required = {"/v1/availability": {"care_type": "elv_high"}}
    for path in paths:
        params = required.get(path, {})
        by_code = await client.get(path, params={**params, "subregion": "gouda"}, headers=key)
        by_id = await client.get(
            path, params={**params, "subregion": str(seed.subregions["gouda"])}, headers=key
        )
        unknown = await client.get(path, params={**params, "subregion": "atlantis"}, headers=key)
        if by_code.status_code != 200 or by_id.status_code != 200:
            wrong.append((path, by_code.status_code, by_id.status_code, by_id.text[:200]))
        elif unknown.status_code != 422 or pointers(unknown.json()) != ["query:subregion"]:
            wrong.append((path, "atlantis", unknown.status_code, unknown.text[:200]))
        else:
            assert_problem(unknown, 422, type_slug="validation")
    assert wrong == []


async def test_the_placement_list_reads_id_and_code_alike(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tri = auth(seed.keys["triagist"])
    ref = auth(seed.keys["referrer"])
    body = placement_body(subregion=str(seed.subregions["gouda"]))
    made = await client.post("/v1/placements", json=body, headers=ref)
    assert made.status_code == 201, made.text
    unknown = await client.post(
        "/v1/placements", json=placement_body(subregion="atlantis"), headers=ref
    )
    assert pointers(assert_problem(unknown, 422)) == ["#/subregion"]
    ids = []
    for value in ("gouda", str(seed.subregions["gouda"])):
        r = await client.get("/v1/placements", params={"subregion": value}, headers=tri)
        assert r.status_code == 200, r.text
        ids.append([p["id"] for p in r.json()["items"]])
    assert ids[0] == ids[1]
    assert made.json()["id"] in ids[0]
