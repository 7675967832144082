"""Secrets at rest: no plaintext API key anywhere (also not in idempotency records), idempotency
records purged after their retention, webhook secrets encrypted with a rotatable key."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.auth.idempotency import purge_idempotency_records
from app.auth.models import ApiKey, IdempotencyRecord
from app.cli import cli
from app.config import Settings, get_settings
from app.db import Database, utcnow
from app.flows.background import sweeper_running
from app.main import create_app
from app.models import Base
from app.secretbox import SecretBox, SecretUnreadable, is_sealed
from app.webhooks.models import WebhookSubscription
from tests.conftest import auth
from tests.factories import Seed


async def _every_stored_text(db: Database) -> list[str]:
    """Every value of every column of every table, as text."""
    out: list[str] = []
    async with db.read() as conn:
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                for value in row:
                    if isinstance(value, bytes):
                        out.append(value.decode("utf-8", "replace"))
                    elif value is not None:
                        out.append(str(value))
    return out


async def test_an_issued_key_is_stored_nowhere_and_a_replay_returns_its_id(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    headers = {**auth(seed.keys["admin"]), "Idempotency-Key": "issue-planner-key-1"}
    body = {
        "name": "planner",
        "roles": ["provider"],
        "organisation_id": str(seed.organisations["vvt-leiden"]),
    }
    first = await client.post("/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 201, first.text
    key = first.json()["key"]
    assert key.startswith("jp_")
    works = await client.get("/v1/webhook-subscriptions", headers=auth(key))
    assert works.status_code == 200

    stored = await _every_stored_text(db)
    assert not [text for text in stored if key in text]
    secret_part = key.rsplit("_", 1)[-1]
    assert not [text for text in stored if secret_part in text]

    replay = await client.post("/v1/api-keys", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    again = replay.json()
    assert again["id"] == first.json()["id"]
    assert again["key"] is None
    assert "shown once" in again["key_note"]
    assert key not in replay.text


async def test_idempotency_records_are_purged_after_the_retention(
    client: httpx.AsyncClient, db: Database, seed: Seed, settings: Settings
) -> None:
    assert settings.idempotency_retention_hours == 24
    retention = timedelta(hours=settings.idempotency_retention_hours)
    headers = {**auth(seed.keys["provider"]), "Idempotency-Key": "report-1"}
    path = f"/v1/units/{seed.units['leiden-elv-high']}/capacity"
    first = await client.put(path, json={"free": 1}, headers=headers)
    assert first.status_code == 200, first.text
    other = await client.put(
        path, json={"free": 2}, headers={**headers, "Idempotency-Key": "report-2"}
    )
    assert other.status_code == 200

    now = utcnow()

    async def purge(hours: int) -> int:
        return await purge_idempotency_records(
            db, now=now + timedelta(hours=hours), retention=retention
        )

    assert await purge(23) == 0
    replay = await client.put(path, json={"free": 1}, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"

    assert await purge(25) == 2
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    # After the purge the key starts a new request: written again, not replayed.
    fresh = await client.put(path, json={"free": 1}, headers=headers)
    assert fresh.status_code == 200
    assert "idempotent-replayed" not in fresh.headers


async def test_the_background_sweep_purges_old_idempotency_records(
    db: Database, seed: Seed, settings: Settings
) -> None:
    async with db.sessionmaker() as session:
        key_id = await session.scalar(select(ApiKey.id).limit(1))
        assert key_id is not None
        for age_hours, name in ((25, "old"), (1, "recent")):
            session.add(
                IdempotencyRecord(
                    api_key_id=key_id,
                    idempotency_key=name,
                    request_hash="0" * 64,
                    status_code=200,
                    content_type="application/json",
                    body=b"{}",
                    created_at=utcnow() - timedelta(hours=age_hours),
                )
            )
        await session.commit()
    live = settings.model_copy(
        update={"placement_sweeper_enabled": True, "placement_sweep_seconds": 0.05}
    )
    async with sweeper_running(db, live), asyncio.timeout(10):
        while True:
            async with db.read() as conn:
                left = (await conn.scalars(select(IdempotencyRecord.idempotency_key))).all()
            if left == ["recent"]:
                break
            await asyncio.sleep(0.05)


async def _cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    def run() -> tuple[int, str]:
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(cli, args, env=env)
        finally:
            get_settings.cache_clear()
        return result.exit_code, result.output

    return await asyncio.to_thread(run)


async def test_webhook_secrets_are_encrypted_and_the_key_rotates(
    db: Database, settings: Settings, seed: Seed, database_url: str
) -> None:
    old_key, new_key, stray_key = (Fernet.generate_key().decode() for _ in range(3))
    keyed = settings.model_copy(update={"secrets_key": SecretStr(old_key)})
    application = create_app(keyed, database=db)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        r = await c.post(
            "/v1/webhook-subscriptions",
            json={"url": "https://hooks.example.nl/h", "event_types": ["*"]},
            headers=auth(seed.keys["provider"]),
        )
        assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    async with db.sessionmaker() as session:
        sealed = await session.scalar(select(WebhookSubscription.secret))
        assert sealed is not None
        # A subscription stored in plain text by an earlier version.
        session.add(
            WebhookSubscription(
                organisation_id=seed.organisations["vvt-leiden"],
                url="https://legacy.example.nl/h",
                event_types="*",
                secret="whsec_legacy-plain-text-secret",
                after_outbox_id=0,
            )
        )
        await session.commit()
    assert is_sealed(sealed)
    assert secret not in sealed
    assert secret not in "".join(await _every_stored_text(db))
    assert SecretBox([old_key]).open(sealed) == secret
    with pytest.raises(SecretUnreadable):
        SecretBox([new_key]).open(sealed)

    env = {
        "JUISTEPLEK_DATABASE_URL": database_url,
        "JUISTEPLEK_SECRETS_KEY": new_key,
        "JUISTEPLEK_SECRETS_OLD_KEYS": f"{stray_key},{old_key}",
    }
    code, out = await _cli(["webhooks", "reencrypt"], env)
    assert code == 0, out
    assert "2 subscriptions, 2 re-encrypted" in out
    code, out = await _cli(["webhooks", "reencrypt"], env)
    assert "0 re-encrypted" in out

    only_new = SecretBox([new_key])
    async with db.read() as conn:
        stored = dict(
            (await conn.execute(select(WebhookSubscription.url, WebhookSubscription.secret))).all()
        )
    assert all(is_sealed(v) for v in stored.values())
    assert only_new.open(stored["https://hooks.example.nl/h"]) == secret
    assert only_new.open(stored["https://legacy.example.nl/h"]) == "whsec_legacy-plain-text-secret"

    # A key that never encrypted them: the command names what it cannot read and exits 1.
    code, out = await _cli(
        ["webhooks", "reencrypt"],
        {"JUISTEPLEK_DATABASE_URL": database_url, "JUISTEPLEK_SECRETS_KEY": stray_key},
    )
    assert code == 1
    assert "2 secrets decrypt with no configured key" in out
