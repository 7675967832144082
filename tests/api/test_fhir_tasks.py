"""Transfers as FHIR Task negotiation, as a provider system does it: a real webhook receiver on
loopback is told a Task's address, fetches it over HTTP with the provider's own key and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pydantic
import pytest
import uvicorn
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from sqlalchemy import select

from app.audit.models import AuditLog
from app.config import Settings
from app.db import Database, utcnow
from app.exchange.tasks import DECLINE_REASON_SYSTEM
from app.main import create_app
from app.placement import sweeper
from app.webhooks.dispatcher import DispatchConfig, dispatch_once
from app.webhooks.transport import WebhookClient
from tests.conftest import auth
from tests.factories import Seed, placement_body

LOCAL = ["127.0.0.1"]
FAST = DispatchConfig(max_attempts=3, backoff_base_seconds=1, backoff_cap_seconds=2)
FHIR = "application/fhir+json"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


class ProviderSystem:
    """A provider's transfer system: receives notifications, fetches each Task with its key."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.notifications.append((headers["juisteplek-event-type"], orjson.loads(body)))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def tasks(self, event_type: str) -> list[str]:
        return [b["data"]["task"] for t, b in self.notifications if t == event_type]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_hosts": LOCAL, "public_url": None})


async def _offer(client: httpx.AsyncClient, seed: Seed, unit: str = "leiden-elv-high") -> str:
    r = await client.post(
        "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
    )
    assert r.status_code == 201, r.text
    placement_id = r.json()["id"]
    r = await client.post(
        f"/v1/placements/{placement_id}/holds",
        json={"unit_id": str(seed.units[unit])},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 201, r.text
    hold_id: str = r.json()["id"]
    return hold_id


async def _deliver(db: Database) -> None:
    async with WebhookClient(allow_hosts=LOCAL) as http:
        now = utcnow()
        for _ in range(10):
            summary = await dispatch_once(db, now=now, client=http, config=FAST, rand=lambda: 0.5)
            if not summary.busy:
                break
            now += timedelta(seconds=2)


def _valid(r: httpx.Response, model: type[pydantic.BaseModel], status: int = 200) -> Any:
    """The response's resource, checked against its R4B model, as JSON (a dict)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR)
    model.model_validate(r.json())
    return r.json()


def _outcome(r: httpx.Response, status: int) -> Any:
    return _valid(r, OperationOutcome, status)


async def test_provider_system_fetches_on_notification_accepts_and_rejects(
    db: Database, settings: Settings, seed: Seed
) -> None:
    port = _port()
    app: FastAPI = create_app(
        settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"}), database=db
    )
    system = ProviderSystem()
    async with (
        app.router.lifespan_context(app),
        serve(app, port) as base,
        serve(system, _port()) as hook_url,
        httpx.AsyncClient(base_url=base) as api,
    ):
        r = await api.post(
            "/v1/webhook-subscriptions",
            json={"url": hook_url, "event_types": ["task.*"]},
            headers=auth(seed.keys["provider"]),
        )
        assert r.status_code == 201, r.text
        first = await _offer(api, seed)
        second = await _offer(api, seed)
        await _deliver(db)
        notified = system.tasks("task.requested")
        assert sorted(notified) == sorted(f"{base}/fhir/Task/{h}" for h in (first, second))
        # Only the reference travels: no patient data in the notification.
        assert all(set(b["data"]) == {"task"} for _, b in system.notifications)

        provider = auth(seed.keys["provider"])
        tasks: dict[str, Any] = {}
        for url in notified:
            task = _valid(await api.get(url, headers=provider), Task)
            assert task["status"] == "requested"
            assert task["owner"]["reference"] == f"Organization/{seed.organisations['vvt-leiden']}"
            assert datetime.fromisoformat(task["restriction"]["period"]["end"]) > utcnow()
            tasks[task["id"]] = task
            r = await api.get(f"/fhir/{task['focus']['reference']}", headers=provider)
            request = _valid(r, ServiceRequest)
            assert request["subject"]["identifier"] == task["for"]["identifier"]
            assert "mrn-" not in r.text

        # The worklist: the owner's requested Tasks, one per page, with a next link.
        owner = f"Organization/{seed.organisations['vvt-leiden']}"
        r = await api.get(
            "/fhir/Task",
            params={"owner": owner, "status": "requested", "_count": 1},
            headers=provider,
        )
        page = _valid(r, Bundle)
        assert (page["total"], len(page["entry"])) == (2, 1)
        nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
        page2 = _valid(await api.get(nxt, headers=provider), Bundle)
        assert {page["entry"][0]["resource"]["id"], page2["entry"][0]["resource"]["id"]} == {
            first,
            second,
        }

        accepted = {**tasks[first], "status": "accepted"}
        r = await api.put(f"/fhir/Task/{first}", json=accepted, headers=provider)
        assert _valid(r, Task)["status"] == "accepted"

        rejected = {
            **tasks[second],
            "status": "rejected",
            "statusReason": {
                "coding": [{"system": DECLINE_REASON_SYSTEM, "code": "staff_shortage"}]
            },
        }
        r = await api.put(f"/fhir/Task/{second}", json=rejected, headers=provider)
        answer = _valid(r, Task)
        assert answer["status"] == "rejected"
        assert answer["statusReason"]["coding"][0]["code"] == "staff_shortage"

        # The placements' transfer logs show the answers, as the REST actions write them.
        for task_id, event, reason in [
            (first, "offer_accepted", None),
            (second, "offer_declined", "staff_shortage"),
        ]:
            placement_id = tasks[task_id]["focus"]["reference"].split("/")[1]
            r = await api.get(
                f"/v1/placements/{placement_id}/events", headers=auth(seed.keys["referrer"])
            )
            last = r.json()["items"][-1]
            assert (last["type"], last["reason"], last["hold_id"]) == (event, reason, task_id)

        # Answering again is a conflict of the one state machine.
        r = await api.put(f"/fhir/Task/{first}", json=accepted, headers=provider)
        assert _outcome(r, 409)["issue"][0]["code"] == "conflict"

        await _deliver(db)
        assert sorted(system.tasks("task.updated")) == sorted(
            f"{base}/fhir/Task/{h}" for h in (first, second)
        )


async def test_malformed_answers_are_operation_outcomes(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    hold = await _offer(client, seed)
    provider = auth(seed.keys["provider"])
    url = f"/fhir/Task/{hold}"
    own = {"reference": f"Organization/{seed.organisations['vvt-leiden']}"}
    cases: list[tuple[object, int, str]] = [
        ({"resourceType": "Task", "status": "completed"}, 422, "status"),
        ({"resourceType": "Task", "status": "bogus"}, 422, "status"),
        ({"resourceType": "Task", "status": "rejected"}, 422, "statusReason"),
        (
            {
                "resourceType": "Task",
                "status": "accepted",
                "owner": {"reference": "Organization/x"},
            },
            422,
            "owner",
        ),
        ({"resourceType": "Task", "status": "accepted", "owner": own, "id": "x"}, 422, "id"),
        ("accepted", 422, "$this"),
    ]
    for body, status, expression in cases:
        r = await client.put(url, json=body, headers=provider)
        outcome = _outcome(r, status)
        assert expression in outcome["issue"][0].get("expression", ["$this"]), r.text
    r = await client.put(
        url, content=b"{not json", headers={**provider, "Content-Type": "application/fhir+json"}
    )
    _outcome(r, 400)
    # The wrong owner: another provider may neither read nor answer the Task.
    other = auth(seed.other_provider_key)
    _outcome(await client.get(url, headers=other), 403)
    _outcome(
        await client.put(url, json={"resourceType": "Task", "status": "accepted"}, headers=other),
        403,
    )
    _outcome(await client.get(f"/fhir/Task/{uuid.uuid4()}", headers=provider), 404)
    _outcome(await client.get("/fhir/Task/not-a-uuid", headers=provider), 404)
    _outcome(await client.get("/fhir/Task", params={"status": "nope"}, headers=provider), 422)
    _outcome(await client.get("/fhir/Task", params={"_count": "-1"}, headers=provider), 422)
    _outcome(
        await client.get("/fhir/Task", params={"focus": "ServiceRequest/x"}, headers=provider), 422
    )
    _outcome(
        await client.get("/fhir/Task", params={"owner": "Organization/x"}, headers=provider), 422
    )
    _outcome(await client.get("/fhir/Task", headers=auth(seed.keys["analyst"])), 403)
    # Nothing changed: the Task still waits for its answer.
    r = await client.get(url, headers=provider)
    assert r.json()["status"] == "requested"


async def test_expiry_cancel_and_admission_show_in_the_task(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    provider = auth(seed.keys["provider"])
    referrer = auth(seed.keys["referrer"])
    expiring = await _offer(client, seed)
    await sweeper.sweep(db, now=utcnow() + timedelta(days=2))
    r = await client.get(f"/fhir/Task/{expiring}", headers=provider)
    assert (r.json()["status"], r.json()["statusReason"]["text"]) == ("cancelled", "expired")

    cancelled = await _offer(client, seed)
    placement = (await client.get(f"/fhir/Task/{cancelled}", headers=provider)).json()["focus"]
    placement_id = placement["reference"].split("/")[1]
    r = await client.post(
        f"/v1/placements/{placement_id}/cancel", json={"reason": "recovered"}, headers=referrer
    )
    assert r.status_code == 200, r.text
    assert (await client.get(f"/fhir/Task/{cancelled}", headers=provider)).json()[
        "status"
    ] == "cancelled"
    # The provider's access to the placement ended with its cancelled offer; the referrer's not.
    r = await client.get(f"/fhir/ServiceRequest/{placement_id}", headers=provider)
    assert r.status_code == 403
    r = await client.get(f"/fhir/ServiceRequest/{placement_id}", headers=referrer)
    assert r.json()["status"] == "revoked"

    admitted = await _offer(client, seed)
    placement = (await client.get(f"/fhir/Task/{admitted}", headers=provider)).json()["focus"]
    placement_id = placement["reference"].split("/")[1]
    for action in ("accept", "admit"):
        r = await client.post(f"/v1/placements/{placement_id}/{action}", headers=provider)
        assert r.status_code == 200, r.text
    assert (await client.get(f"/fhir/Task/{admitted}", headers=provider)).json()[
        "status"
    ] == "completed"
    r = await client.get("/fhir/Task", params={"status": "completed,cancelled"}, headers=provider)
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {expiring, cancelled, admitted}


async def test_every_task_read_is_access_logged(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    hold = await _offer(client, seed)
    provider = auth(seed.keys["provider"])
    task = (await client.get(f"/fhir/Task/{hold}", headers=provider)).json()
    await client.get(f"/fhir/{task['focus']['reference']}", headers=provider)
    await client.get("/fhir/Task", headers=provider)
    # A refusal is logged too, in its own transaction.
    r = await client.get(f"/fhir/Task/{hold}", headers=auth(seed.other_provider_key))
    assert r.status_code == 403
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(AuditLog.event_code, AuditLog.outcome).where(
                    AuditLog.event_code.like("fhir.%")
                )
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        ("fhir.service_request.read", "success"),
        ("fhir.task.read", "failure"),
        ("fhir.task.read", "success"),
        ("fhir.task.search", "success"),
    ]
