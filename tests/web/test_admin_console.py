"""The administrator's console over HTTP: every page, forms with errors next to their fields,
ETags on registry edits, users, keys, rule sets and the access log (reading it is logged)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth.models import User
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.webhooks.dispatcher import DispatchConfig, dispatch_once
from app.webhooks.transport import WebhookClient
from tests.api.test_webhooks import LOCAL, Receiver
from tests.api.test_webhooks import serve as serve_receiver
from tests.conftest import auth
from tests.factories import Seed, add_person, create_placements
from tests.web.helpers import csrf_of, web_login

WEST = (
    __import__("pathlib").Path(__file__).parents[2] / "app/triage/rulesets/west-2026.1.yaml"
).read_text(encoding="utf-8")

PAGES = [
    "/ui/admin",
    "/ui/admin/registry",
    "/ui/admin/users",
    "/ui/admin/keys",
    "/ui/admin/webhooks",
    "/ui/admin/rules",
    "/ui/admin/rules/west-2026.1",
    "/ui/admin/audit",
]


async def _admin(client: httpx.AsyncClient, db: Database) -> str:
    person = await add_person(db, Role.ADMIN, None, name="Ada Admin")
    return await web_login(client, person)


async def test_every_console_page_answers_an_admin_and_refuses_anyone_else(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    analyst = await add_person(db, Role.ANALYST, seed.organisations["vvt-leiden"])
    await web_login(client, analyst)
    for path in PAGES:
        r = await client.get(path)
        assert r.status_code == 403, path
        assert "Geen toegang" in r.text
    # a refused read of the access log is itself in the access log
    async with db.sessionmaker() as session:
        refused = (
            await session.scalars(select(AuditLog).where(AuditLog.event_code == "web.audit_page"))
        ).all()
    assert [(row.outcome, row.user_id) for row in refused] == [("failure", analyst.id)]
    await client.post("/ui/logout", data={"csrf_token": csrf_of(r.text)})
    await _admin(client, db)
    for path in PAGES:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text[:2000])
        assert 'name="csrf_token"' in r.text or path in ("/ui/admin", "/ui/admin/audit"), path
    health = (await client.get("/ui/admin?lang=en")).text
    assert "Database reachable" in health
    assert "Migrations at head" in health
    assert re.search(r'data-testid="outbox-backlog">\d+<', health)


async def test_a_unit_edit_with_a_stale_version_shows_the_conflict_and_saves_nothing(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    csrf = await _admin(client, db)
    unit = seed.units["leiden-grz"]
    page = (await client.get(f"/ui/admin/registry/units/{unit}")).text
    version = int(re.findall(r'name="version" value="(\d+)"', page)[0])
    form = {
        "csrf_token": csrf,
        "version": str(version),
        "name": "GRZ Leiden (renamed)",
        "target_groups": "somatic",
        "sex_policy": "any",
        "staffed_capacity": "12",
        "active": "1",
    }
    r = await client.post(f"/ui/admin/registry/units/{unit}", data=form)
    assert r.status_code == 303
    api = await client.get(f"/v1/units/{unit}", headers=auth(seed.keys["admin"]))
    assert api.json()["name"] == "GRZ Leiden (renamed)"
    assert api.headers["etag"] == f'"{version + 1}"'
    # the same form again: its version is stale now
    r = await client.post(
        f"/ui/admin/registry/units/{unit}?lang=en", data={**form, "name": "Overwritten"}
    )
    assert r.status_code == 412
    assert 'data-testid="conflict"' in r.text
    assert "Nothing was saved" in r.text
    api = await client.get(f"/v1/units/{unit}", headers=auth(seed.keys["admin"]))
    assert api.json()["name"] == "GRZ Leiden (renamed)"
    # a value the service refuses is shown next to its field
    r = await client.post(
        f"/ui/admin/registry/units/{unit}",
        data={**form, "version": str(version + 1), "staffed_capacity": "-3"},
    )
    assert r.status_code == 422
    assert 'id="edit-staffed_capacity" name="staffed_capacity"' in r.text
    assert 'aria-describedby="edit-staffed_capacity-error"' in r.text
    # deactivate from the list
    r = await client.post(
        f"/ui/admin/registry/units/{unit}",
        data={"csrf_token": csrf, "version": str(version + 1), "deactivate": "1"},
    )
    assert r.status_code == 303
    api = await client.get(f"/v1/units/{unit}", headers=auth(seed.keys["admin"]))
    assert api.json()["active"] is False


async def test_an_organisation_location_and_unit_are_created_with_errors_next_to_fields(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    csrf = await _admin(client, db)
    regions = (await client.get("/v1/regions", headers=auth(seed.keys["admin"]))).json()
    r = await client.post(
        "/ui/admin/registry/organisations",
        data={"csrf_token": csrf, "name": "Zorg Noord", "kind": "vvt", "agb_code": "12"},
    )
    assert r.status_code == 422
    assert 'aria-describedby="new-organisations-region_id-error"' in r.text
    assert 'aria-describedby="new-organisations-agb_code-error"' in r.text
    r = await client.post(
        "/ui/admin/registry/organisations",
        data={
            "csrf_token": csrf,
            "name": "Zorg Noord",
            "kind": "vvt",
            "region_id": regions[0]["id"],
        },
    )
    assert r.status_code == 303
    orgs = (
        await client.get("/v1/organisations?limit=200", headers=auth(seed.keys["admin"]))
    ).json()["items"]
    org = next(o for o in orgs if o["name"] == "Zorg Noord")
    r = await client.post(
        "/ui/admin/registry/locations",
        data={
            "csrf_token": csrf,
            "organisation_id": org["id"],
            "name": "Huis Noord",
            "address": "Dorpsstraat 1",
            "postcode": "2311AA",
            "municipality": "Nowhere-at-all",
            "latitude": "52.16",
            "longitude": "4.49",
        },
    )
    assert r.status_code == 422  # the municipality decides the subregion: unknown here
    assert 'aria-describedby="new-locations-municipality-error"' in r.text


async def test_an_admin_creates_a_user_with_a_generated_password_that_logs_in(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    csrf = await _admin(client, db)
    org = seed.organisations["vvt-leiden"]
    r = await client.post(
        "/ui/admin/users",
        data={
            "csrf_token": csrf,
            "name": "Pien Planner",
            "email": "Pien@Example.nl",
            "organisation_id": str(org),
            "roles": "provider",
        },
    )
    assert r.status_code == 201
    found = re.search(r'data-testid="new-password">([^<]+)<', r.text)
    assert found is not None
    password = found.group(1)
    # the password is shown once: the list does not show it again
    assert password not in (await client.get("/ui/admin/users")).text
    r = await client.post(
        "/ui/admin/users",
        data={
            "csrf_token": csrf,
            "name": "Twee",
            "email": "pien@example.nl",
            "roles": "provider",
            "organisation_id": str(org),
        },
    )
    assert r.status_code == 422
    assert 'aria-describedby="new-user-email-error"' in r.text
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as other:
        page = await other.get("/ui/login")
        r = await other.post(
            "/ui/login",
            data={
                "email": "pien@example.nl",
                "password": password,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/units"


async def test_an_issued_key_works_until_it_is_revoked(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    csrf = await _admin(client, db)
    r = await client.post(
        "/ui/admin/keys",
        data={
            "csrf_token": csrf,
            "name": "EPD Leiden",
            "organisation_id": str(seed.organisations["vvt-leiden"]),
            "roles": "provider",
        },
    )
    assert r.status_code == 201
    key = re.search(r'data-testid="new-key">([^<]+)<', r.text)
    assert key is not None
    me = await client.get("/v1/me", headers=auth(key.group(1)))
    assert me.status_code == 200
    key_id = me.json()["id"]
    assert "EPD Leiden" in (await client.get("/ui/admin/keys")).text
    assert key.group(1) not in (await client.get("/ui/admin/keys")).text
    r = await client.post(f"/ui/admin/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert (await client.get("/v1/me", headers=auth(key.group(1)))).status_code == 401
    r = await client.post(
        "/ui/admin/keys", data={"csrf_token": csrf, "name": "x", "roles": "provider"}
    )
    assert r.status_code == 422
    assert 'aria-describedby="key-organisation_id-error"' in r.text


async def test_a_broken_rule_set_is_refused_naming_rule_and_line_and_a_good_one_activates(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    csrf = await _admin(client, db)
    broken = WEST.replace("version: west-2026.1", "version: west-broken", 1).replace(
        "    outcome: district_nursing\n", "    outcome: district_nurse\n", 1
    )
    line = broken[: broken.index("    outcome: district_nurse\n")].count("\n") + 1
    r = await client.post(
        "/ui/admin/rules?lang=en",
        data={"csrf_token": csrf},
        files={"file": ("west.yaml", broken.encode(), "application/yaml")},
    )
    assert r.status_code == 422
    report = r.text.split('data-testid="refused"')[1].split("</table>")[0]
    assert f"<td>{line}</td><td>R11</td>" in report
    assert "district_nurse" in report
    good = WEST.replace("version: west-2026.1", "version: west-good", 1)
    r = await client.post(
        "/ui/admin/rules",
        data={"csrf_token": csrf},
        files={"file": ("west.yaml", good.encode(), "application/yaml")},
    )
    assert r.status_code == 303
    r = await client.post("/ui/admin/rules/west-good/activate", data={"csrf_token": csrf})
    assert r.status_code == 303
    rules = (await client.get("/v1/triage/rules", headers=auth(seed.keys["admin"]))).json()
    assert rules["active_version"] == "west-good"


async def test_reading_the_access_log_is_logged_and_a_patient_view_lists_their_accesses(
    client: httpx.AsyncClient, db: Database, seed: Seed, settings: Settings
) -> None:
    (placement,) = await create_placements(db, settings, seed, 1)
    csrf = await _admin(client, db)
    assert csrf
    r = await client.get(f"/v1/placements/{placement}", headers=auth(seed.keys["referrer"]))
    patient_key = r.json()["patient_key"]
    before = await _count(db, "audit.search")
    r = await client.get(f"/ui/admin/audit/patient/{patient_key}")
    assert r.status_code == 200
    rows = re.findall(r'data-entry-id="(\d+)"', r.text)
    assert len(rows) >= 2  # created, then read
    assert [int(x) for x in rows] == sorted(int(x) for x in rows)
    assert await _count(db, "audit.search") == before + 1
    r = await client.get("/ui/admin/audit?outcome=success&action=C")
    assert r.status_code == 200
    assert 'data-entry-id="' in r.text
    assert "audit.search" not in r.text.split('data-testid="audit-entries"')[1]
    r = await client.get("/ui/admin/audit?patient_key=xyz&from=gisteren")
    assert r.status_code == 422
    assert 'aria-describedby="f-patient_key-error"' in r.text
    assert 'aria-describedby="f-from-error"' in r.text
    r = await client.get(f"/ui/admin/audit?actor={uuid.uuid4()}")
    assert "0 regels" in r.text or "0 entries" in r.text


async def _count(db: Database, event_code: str) -> int:
    async with db.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.event_code == event_code)
            )
            or 0
        )


async def test_webhook_subscriptions_are_listed_with_their_log_and_can_be_stopped(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    r = await client.post(
        "/v1/webhook-subscriptions",
        json={"url": "https://hooks.example.nl/jp", "event_types": ["capacity.reported"]},
        headers=auth(seed.keys["provider"]),
    )
    assert r.status_code == 201, r.text
    sub = r.json()["id"]
    csrf = await _admin(client, db)
    page = (await client.get("/ui/admin/webhooks")).text
    assert f'id="sub-{sub}"' in page
    assert "https://hooks.example.nl/jp" in page
    log = await client.get(f"/ui/admin/webhooks/{sub}?status=failed&lang=en")
    assert log.status_code == 200
    assert "No deliveries." in log.text
    r = await client.post(f"/ui/admin/webhooks/{sub}/stop", data={"csrf_token": csrf})
    assert r.status_code == 303
    listed = await client.get("/v1/webhook-subscriptions", headers=auth(seed.keys["provider"]))
    assert listed.json()["items"] == []


async def test_an_admin_changes_roles_resets_the_second_factor_and_deactivates_a_person(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"], name="Piet")
    async with db.sessionmaker() as session:
        user = await session.get(User, person.id)
        assert user is not None
        user.totp_secret = "JBSWY3DPEHPK3PXP"
        user.totp_enabled_at = user.created_at
        await session.commit()
    csrf = await _admin(client, db)
    page = (await client.get(f"/ui/admin/users/{person.id}")).text
    version = re.findall(r'name="version" value="(\d+)"', page)[0]
    form = {
        "csrf_token": csrf,
        "version": version,
        "action": "save",
        "name": "Piet",
        "organisation_id": str(seed.organisations["vvt-leiden"]),
        "roles": ["provider", "analyst"],
        "active": "1",
    }
    r = await client.post(f"/ui/admin/users/{person.id}", data=form)
    assert r.status_code == 303, r.text
    api = (await client.get(f"/v1/users/{person.id}", headers=auth(seed.keys["admin"]))).json()
    assert api["roles"] == ["analyst", "provider"]
    # the same version again is stale: a conflict, nothing saved
    r = await client.post(f"/ui/admin/users/{person.id}", data={**form, "roles": ["admin"]})
    assert r.status_code == 412
    assert 'data-testid="conflict"' in r.text
    api = (await client.get(f"/v1/users/{person.id}", headers=auth(seed.keys["admin"]))).json()
    assert api["roles"] == ["analyst", "provider"]
    # no role at all: the error is next to the roles
    r = await client.post(
        f"/ui/admin/users/{person.id}", data={**form, "version": str(api["version"]), "roles": []}
    )
    assert r.status_code == 422
    assert 'aria-describedby="user-roles-error"' in r.text
    r = await client.post(
        f"/ui/admin/users/{person.id}",
        data={"csrf_token": csrf, "version": str(api["version"]), "action": "reset_totp"},
    )
    assert r.status_code == 303
    api = (await client.get(f"/v1/users/{person.id}", headers=auth(seed.keys["admin"]))).json()
    assert api["totp_enrolled"] is False
    r = await client.post(
        f"/ui/admin/users/{person.id}",
        data={"csrf_token": csrf, "version": str(api["version"]), "action": "deactivate"},
    )
    assert r.status_code == 303
    api = (await client.get(f"/v1/users/{person.id}", headers=auth(seed.keys["admin"]))).json()
    assert api["active"] is False


async def test_an_emptied_field_is_cleared_or_refused_next_to_it_by_the_service(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    csrf = await _admin(client, db)
    unit = seed.units["leiden-grz"]
    page = (await client.get(f"/ui/admin/registry/units/{unit}")).text
    version = re.findall(r'name="version" value="(\d+)"', page)[0]
    form = {
        "csrf_token": csrf,
        "version": version,
        "name": "",
        "target_groups": "somatic",
        "sex_policy": "any",
        "staffed_capacity": "12",
        "label": "",
        "active": "1",
    }
    r = await client.post(f"/ui/admin/registry/units/{unit}", data=form)
    assert r.status_code == 422
    assert 'aria-describedby="edit-name-error"' in r.text
    r = await client.post(
        f"/ui/admin/registry/units/{unit}", data={**form, "name": "GRZ", "label": ""}
    )
    assert r.status_code == 303
    api = (await client.get(f"/v1/units/{unit}", headers=auth(seed.keys["admin"]))).json()
    assert (api["name"], api["label"], api["staffed_capacity"]) == ("GRZ", None, 12)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The tests' webhook receiver listens on loopback, which only an allow-list admits."""
    return settings.model_copy(update={"webhook_allow_hosts": LOCAL})


async def test_a_failed_webhook_delivery_shows_in_the_health_and_the_delivery_log(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    # A real receiver on loopback that answers 500; one attempt is all this configuration allows.
    receiver = Receiver(always_fail=True)
    async with serve_receiver(receiver) as url, WebhookClient(allow_hosts=LOCAL) as http:
        r = await client.post(
            "/v1/webhook-subscriptions",
            json={"url": url + "/jp", "event_types": ["capacity.reported"]},
            headers=auth(seed.keys["provider"]),
        )
        assert r.status_code == 201, r.text
        sub = r.json()["id"]
        r = await client.put(
            f"/v1/units/{seed.units['leiden-grz']}/capacity",
            json={"free": 1},
            headers=auth(seed.keys["provider"]),
        )
        assert r.status_code == 200, r.text
        summary = await dispatch_once(
            db, now=utcnow(), client=http, config=DispatchConfig(max_attempts=1)
        )
    assert summary.failed == 1
    await _admin(client, db)
    health = (await client.get("/ui/admin?lang=en")).text
    assert re.search(
        r'data-testid="failed-deliveries"><span class="status bad">.*?1</span>', health
    )
    log = (await client.get(f"/ui/admin/webhooks/{sub}?status=failed&lang=en")).text
    assert "capacity.reported" in log
    assert "failed" in log
