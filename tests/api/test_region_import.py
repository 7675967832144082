"""Region onboarding: the example second region into an empty database through the API and the
command line (dry run first), searched, re-imported without changes, changed, and an
inconsistent file refused with every problem named and nothing written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from typer.testing import CliRunner

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.cli import cli
from app.config import Settings, get_settings
from app.db import Database, utcnow
from app.enums import Role
from app.flows.demo import demo_data, load_demo
from app.principal import Principal
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers

EXAMPLE = Path(__file__).parents[2] / "examples" / "region-zeeland.yaml"
CREATED = {
    "regions": 1,
    "subregions": 3,
    "municipalities": 13,
    "organisations": 6,
    "locations": 9,
    "units": 10,
}
TABLES = ["region", "subregion", "municipality", "organisation", "location", "unit"]


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


async def table_counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            t: int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
            for t in TABLES
        }


async def admin_key(db: Database) -> str:
    async with db.sessionmaker() as session:
        issued = await auth_service.issue_key(
            session, ApiKeyCreate(name="admin", roles=[Role.ADMIN])
        )
        await session.commit()
    return issued.key


def counts(diff: dict[str, Any], what: str) -> dict[str, int]:
    return {kind: diff[kind]["counts"][what] for kind in CREATED}


async def test_import_through_the_api(client: httpx.AsyncClient, db: Database) -> None:
    admin = auth(await admin_key(db))
    empty = await table_counts(db)
    assert empty == dict.fromkeys(TABLES, 0)

    # Dry run: the diff lists what would be created, nothing is written.
    r = await client.post("/v1/regions/import?dry_run=true", json=example(), headers=admin)
    assert r.status_code == 200, r.text
    dry = r.json()
    assert (dry["dry_run"], dry["region"], dry["changes"]) == (True, "zeeland-example", 42)
    assert counts(dry, "created") == CREATED
    assert "zl-zz-hulst-wijkverpleging" in dry["units"]["created"]
    assert dry["municipalities"]["created"][:3] == ["GM0687", "GM0718", "GM0717"]
    assert await table_counts(db) == empty

    r = await client.post("/v1/regions/import", json=example(), headers=admin)
    assert r.status_code == 200, r.text
    done = r.json()
    assert {k: v for k, v in done.items() if k != "dry_run"} == {
        k: v for k, v in dry.items() if k != "dry_run"
    }
    assert await table_counts(db) == {
        "region": 1,
        "subregion": 3,
        "municipality": 13,
        "organisation": 6,
        "location": 9,
        "unit": 10,
    }

    # Searched: the region's units, with the first reports the file gave them.
    r = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", "subregion": "zl-walcheren", "escalate": "true"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    hits = [(h["unit_name"], h["location"]["name"], h["available"]) for h in r.json()["items"]]
    assert hits == [
        ("ELV hoog complex", "Zorgcentrum Middelburg (voorbeeld)", 2),
        ("ELV hoog complex", "Zorgcentrum Terneuzen (voorbeeld)", 1),
    ]
    units = (await client.get("/v1/units", params={"limit": 100}, headers=admin)).json()["items"]
    assert sorted(u["external_id"] for u in units) == sorted(
        [
            u["code"]
            for o in example()["organisations"]
            for loc in o["locations"]
            for u in loc.get("units", [])
        ]
        + ["zl-zz-hulst-wijkverpleging"]
    )

    # Again: nothing changes.
    r = await client.post("/v1/regions/import", json=example(), headers=admin)
    again = r.json()
    assert again["changes"] == 0
    assert counts(again, "unchanged") == CREATED

    # Changed: a unit left out, a location renamed, the escalation order of a subregion.
    data = example()
    data["units"] = []
    data["organisations"][2]["locations"][0]["name"] = "Zorgcentrum Middelburg-Noord (voorbeeld)"
    data["subregions"][0]["neighbours"].reverse()
    data["subregions"][0]["municipalities"].pop()  # Veere (GM0717), where no location is
    r = await client.post("/v1/regions/import?dry_run=true", json=data, headers=admin)
    changed = r.json()
    assert changed["changes"] == 4
    assert changed["municipalities"]["deactivated"] == ["GM0717"]
    assert changed["units"]["deactivated"] == ["zl-zz-hulst-wijkverpleging"]
    assert changed["locations"]["updated"] == [{"code": "zl-zw-middelburg", "fields": ["name"]}]
    assert changed["subregions"]["updated"] == [{"code": "zl-walcheren", "fields": ["neighbours"]}]
    r = await client.post("/v1/regions/import", json=data, headers=admin)
    assert r.json()["changes"] == 4
    gone = await client.get("/v1/units", params={"active": "false", "limit": 100}, headers=admin)
    assert [u["external_id"] for u in gone.json()["items"]] == ["zl-zz-hulst-wijkverpleging"]
    assert (await table_counts(db))["unit"] == 10  # deactivated, not deleted
    regions = (await client.get("/v1/regions", headers=admin)).json()
    walcheren = next(s for s in regions[0]["subregions"] if s["code"] == "zl-walcheren")
    assert [n["code"] for n in walcheren["neighbours"]] == [
        "zl-zeeuws-vlaanderen",
        "zl-bevelanden",
    ]
    assert walcheren["municipalities"] == ["Middelburg", "Vlissingen"]
    # Back to the example: the unit is active again.
    r = await client.post("/v1/regions/import", json=example(), headers=admin)
    back = r.json()
    assert back["units"]["updated"] == [
        {"code": "zl-zz-hulst-wijkverpleging", "fields": ["active"]}
    ]
    assert back["municipalities"]["updated"] == [{"code": "GM0717", "fields": ["active"]}]


def five_problems() -> dict[str, Any]:
    """The example with five different inconsistencies."""
    data = example()
    data["subregions"][0]["neighbours"].append("zl-atlantis")  # unknown neighbour
    data["subregions"][2]["municipalities"].append(  # municipality in two subregions
        {"cbs_code": "GM0664", "name": "Goes"}
    )
    units = data["organisations"][2]["locations"][0]["units"]
    units[1]["code"] = units[0]["code"]  # duplicate identifier
    data["units"][0]["location"] = "zl-nowhere"  # unit of an unknown location
    data["organisations"][3]["locations"][1]["municipality"] = "Utrecht"  # unknown municipality
    return data


FIVE = [
    "#/subregions/0/neighbours/2",
    "#/subregions/2/municipalities/3",
    "#/organisations/2/locations/0/units/1/code",
    "#/organisations/3/locations/1/municipality",
    "#/units/0/location",
]


async def test_an_inconsistent_file_is_refused_with_every_problem_named(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    admin = auth(seed.keys["admin"])
    before = await table_counts(db)
    for dry in ("true", "false"):
        r = await client.post(
            f"/v1/regions/import?dry_run={dry}", json=five_problems(), headers=admin
        )
        body = assert_problem(r, 422, type_slug="validation")
        assert sorted(pointers(body)) == sorted(FIVE)
        details = " | ".join(e["detail"] for e in body["errors"])
        for words in (
            "unknown neighbour 'zl-atlantis'",
            "municipality GM0664 (Goes) is in two subregions",
            "duplicate unit code 'zl-zw-middelburg-elv-high'",
            "unknown location 'zl-nowhere'",
            "unknown municipality 'Utrecht'",
        ):
            assert words in details
    assert await table_counts(db) == before
    # A file of the wrong shape: the request validation names the fields.
    data = example()
    data["organisations"][0]["kind"] = "spa"
    del data["subregions"][1]["name"]
    r = await client.post("/v1/regions/import", json=data, headers=admin)
    assert sorted(pointers(assert_problem(r, 422))) == [
        "#/organisations/0/kind",
        "#/subregions/1/name",
    ]
    # Admin only.
    for role in ("triagist", "provider"):
        r = await client.post("/v1/regions/import", json=example(), headers=auth(seed.keys[role]))
        assert_problem(r, 403)
    assert await table_counts(db) == before


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def cli_database(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """The command line on the test database (emptied by ``db``)."""
    monkeypatch.setenv("JUISTEPLEK_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


async def test_import_through_the_command_line(
    cli_database: Database, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    db = cli_database
    code, out = await asyncio.to_thread(_invoke, "import-region", str(EXAMPLE), "--dry-run")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "region zeeland-example: 42 would change (dry run)"
    assert lines[6].split() == [
        "units",
        "created",
        "10",
        "updated",
        "0",
        "deactivated",
        "0",
        "unchanged",
        "0",
    ]
    assert "  + unit zl-zz-hulst-wijkverpleging" in lines
    assert await table_counts(db) == dict.fromkeys(TABLES, 0)

    code, out = await asyncio.to_thread(_invoke, "import-region", str(EXAMPLE))
    assert code == 0, out
    assert out.splitlines()[0] == "region zeeland-example: 42 changed"
    assert (await table_counts(db))["unit"] == 10
    admin = auth(await admin_key(db))
    r = await client.get("/v1/availability", params={"care_type": "ggz_crisis"}, headers=admin)
    assert [h["unit_name"] for h in r.json()["items"]] == ["GGZ-crisisbedden"]

    code, out = await asyncio.to_thread(_invoke, "import-region", str(EXAMPLE))
    assert (code, out.splitlines()[0]) == (0, "region zeeland-example: 0 changed")

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(five_problems()), encoding="utf-8")
    before = await table_counts(db)
    code, out = await asyncio.to_thread(_invoke, "import-region", str(bad))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "refused: the region file has 5 problems; nothing was imported"
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == sorted(FIVE)
    assert await table_counts(db) == before
    broken = tmp_path / "broken.yaml"
    broken.write_text("region: [unclosed", encoding="utf-8")
    code, out = await asyncio.to_thread(_invoke, "import-region", str(broken))
    assert code == 1
    assert "cannot be read as YAML or JSON" in out


async def test_the_demo_is_a_region_file_and_another_region_fits_beside_it(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
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
    admin = auth(await admin_key(db))
    r = await client.post("/v1/regions/import?dry_run=true", json=demo_data(), headers=admin)
    west = r.json()
    assert west["changes"] == 0, west
    assert counts(west, "unchanged") == {
        "regions": 1,
        "subregions": 5,
        "municipalities": 27,
        "organisations": 38,
        "locations": 55,
        "units": 94,
    }
    r = await client.post("/v1/regions/import", json=example(), headers=admin)
    assert counts(r.json(), "created") == CREATED
    # A region file may not take over another region's subregion, municipality or unit.
    data = example()
    for sub in data["subregions"]:
        sub["code"] = "leiden" if sub["code"] == "zl-walcheren" else sub["code"]
        sub["neighbours"] = ["leiden" if n == "zl-walcheren" else n for n in sub["neighbours"]]
    data["subregions"][0]["municipalities"].append({"cbs_code": "GM0546", "name": "Leiden"})
    data["units"][0]["code"] = "florence-mariahoeve-elv-high"
    r = await client.post("/v1/regions/import", json=data, headers=admin)
    body = assert_problem(r, 422)
    found = {e["pointer"]: e["detail"] for e in body["errors"]}
    assert found["#/subregions/0/code"] == "subregion 'leiden' belongs to region 'west'"
    assert "belongs to a subregion of region 'west'" in found["#/subregions/0/municipalities/3"]
    assert found["#/units/0/code"] == "unit 'florence-mariahoeve-elv-high' belongs to region 'west'"
    assert len(found) == 3
