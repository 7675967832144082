"""Registry: create, read, list with cursors and filters, PATCH with ETag/If-Match, deactivate."""

from __future__ import annotations

import httpx

from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers


def location_body(seed: Seed, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "organisation_id": str(seed.organisations["vvt-leiden"]),
        "name": "Topaz Revalidatie",
        "address": "Haagweg 2",
        "postcode": "2321 AA",
        "municipality": "Leiden",
        "latitude": 52.15,
        "longitude": 4.47,
    }
    body.update(overrides)
    return body


async def test_regions_list_subregions_with_escalation_order(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.get("/v1/regions", headers=auth(seed.keys["triagist"]))
    assert r.status_code == 200
    [region] = r.json()
    leiden = next(s for s in region["subregions"] if s["code"] == "leiden")
    assert [(n["code"], n["rank"]) for n in leiden["neighbours"]] == [("den-haag", 1), ("gouda", 2)]
    assert leiden["municipalities"] == ["Leiden"]


async def test_provider_creates_location_in_its_subregion(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.post(
        "/v1/locations", json=location_body(seed), headers=auth(seed.keys["provider"])
    )
    assert r.status_code == 201, r.text
    loc = r.json()
    assert loc["subregion_id"] == str(seed.subregions["leiden"])
    assert r.headers["etag"] == '"1"'


async def test_location_validation(client: httpx.AsyncClient, seed: Seed) -> None:
    key = auth(seed.keys["provider"])
    cases = {
        "#/postcode": location_body(seed, postcode="2321 SA"),
        "#/latitude": location_body(seed, latitude=123.0),
        "#/municipality": location_body(seed, municipality="Atlantis"),
    }
    for pointer, body in cases.items():
        r = await client.post("/v1/locations", json=body, headers=key)
        assert pointers(assert_problem(r, 422)) == [pointer]
    other_org = location_body(seed, organisation_id=str(seed.organisations["vvt-gouda"]))
    assert_problem(await client.post("/v1/locations", json=other_org, headers=key), 403)


async def test_postcode_is_normalised(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.post(
        "/v1/locations",
        json=location_body(seed, postcode="2321AB"),
        headers=auth(seed.keys["provider"]),
    )
    assert r.json()["postcode"] == "2321 AB"


async def test_unit_create_read_and_label_rule(client: httpx.AsyncClient, seed: Seed) -> None:
    key = auth(seed.keys["provider"])
    body = {
        "location_id": str(seed.locations["leiden"]),
        "name": "Crisisbedden PG",
        "care_type": "wlz_crisis",
        "target_groups": ["psychogeriatric"],
        "features": ["closed_ward", "single_room"],
        "sex_policy": "female",
        "staffed_capacity": 4,
    }
    r = await client.post("/v1/units", json=body, headers=key)
    assert r.status_code == 201, r.text
    unit = r.json()
    assert unit["features"] == ["closed_ward", "single_room"]
    assert unit["organisation_id"] == str(seed.organisations["vvt-leiden"])
    got = await client.get(f"/v1/units/{unit['id']}", headers=auth(seed.keys["triagist"]))
    assert got.json() == unit
    local = {**body, "care_type": "local_other"}
    assert_problem(await client.post("/v1/units", json=local, headers=key), 422)
    # The label fits its column: 200 characters are kept whole, 201 are refused by name.
    full = await client.post("/v1/units", json={**local, "label": "x" * 200}, headers=key)
    assert full.status_code == 201, full.text
    assert full.json()["label"] == "x" * 200
    long = await client.post("/v1/units", json={**local, "label": "x" * 201}, headers=key)
    assert "label" in assert_problem(long, 422)["detail"]
    patched = await client.patch(
        f"/v1/units/{unit['id']}",
        json={"label": "y" * 201},
        headers={**key, "If-Match": got.headers["etag"]},
    )
    assert "label" in assert_problem(patched, 422)["detail"]


async def test_list_pagination_is_stable_and_complete(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    key = auth(seed.keys["triagist"])
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/organisations", params=params, headers=key)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(seen)
    everything = (await client.get("/v1/organisations", headers=key)).json()
    assert [o["id"] for o in everything["items"]] == seen


async def test_list_filters(client: httpx.AsyncClient, seed: Seed) -> None:
    key = auth(seed.keys["triagist"])
    r = await client.get("/v1/units", params={"care_type": "grz"}, headers=key)
    assert [u["name"] for u in r.json()["items"]] == ["GRZ Leiden"]
    r = await client.get("/v1/organisations", params={"kind": "hospital"}, headers=key)
    assert [o["name"] for o in r.json()["items"]] == ["LUMC"]
    r = await client.get(
        "/v1/units", params={"subregion_id": str(seed.subregions["gouda"])}, headers=key
    )
    assert [u["name"] for u in r.json()["items"]] == ["ELV HC Gouda"]


async def test_patch_with_if_match(client: httpx.AsyncClient, seed: Seed) -> None:
    key = auth(seed.keys["provider"])
    url = f"/v1/units/{seed.units['leiden-elv-high']}"
    etag = (await client.get(url, headers=key)).headers["etag"]
    r = await client.patch(url, json={"staffed_capacity": 12}, headers={**key, "If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["staffed_capacity"] == 12
    assert r.headers["etag"] != etag
    stale = await client.patch(url, json={"name": "x"}, headers={**key, "If-Match": etag})
    body = assert_problem(stale, 412, type_slug="precondition-failed")
    assert body["current_etag"] == r.headers["etag"]
    assert_problem(await client.patch(url, json={"name": None}, headers=key), 422)


async def test_deactivated_unit_leaves_the_search(client: httpx.AsyncClient, seed: Seed) -> None:
    key = auth(seed.keys["provider"])
    url = f"/v1/units/{seed.units['leiden-elv-high']}"
    assert (await client.patch(url, json={"active": False}, headers=key)).json()["active"] is False
    r = await client.get(
        "/v1/availability", params={"care_type": "elv_high"}, headers=auth(seed.keys["triagist"])
    )
    assert str(seed.units["leiden-elv-high"]) not in {h["unit_id"] for h in r.json()["items"]}
    refused = await client.put(f"{url}/capacity", json={"free": 1}, headers=key)
    assert_problem(refused, 409)


async def test_only_admin_manages_organisations(client: httpx.AsyncClient, seed: Seed) -> None:
    body = {"name": "Nieuw Huis", "kind": "vvt", "region_id": str(seed.region_id)}
    assert_problem(
        await client.post("/v1/organisations", json=body, headers=auth(seed.keys["provider"])), 403
    )
    r = await client.post("/v1/organisations", json=body, headers=auth(seed.keys["admin"]))
    assert r.status_code == 201
    assert r.json()["kind"] == "vvt"
