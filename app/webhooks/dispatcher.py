"""Webhook delivery from the transactional outbox: fan out, claim, send signed, record, retry.

Delivery is **at-least-once**: an event is retried until the receiver answers 2xx or the attempts
run out, and a crash between sending and recording means it is sent again. Receivers dedupe on
``JuistePlek-Event-Id``. Order is not guaranteed (retries overtake); ``sequence`` in the body is the
outbox id and orders events that need it.

Several app instances may run this at once. Every step is a short transaction that claims its
rows first (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the single writer of ``BEGIN
IMMEDIATE``), and no lock is held while a request is in flight: a claimed delivery is leased by
moving ``next_attempt_at`` past the request timeout, so a dispatcher that dies mid-send only
delays its deliveries until the lease runs out.

Failures are isolated per delivery: every send ends in an outcome (``transport.WebhookClient``
never raises), a pass claims at most ``per_subscription`` deliveries of one subscription, and a
target that can never work (a URL refused by today's rules) fails at once instead of being
retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database, new_id, utcnow
from app.realtime.bus import local_bus
from app.realtime.models import OutboxEvent
from app.realtime.service import StreamEvent, to_event
from app.secretbox import DEVELOPMENT_SECRETS_KEY, SecretBox, SecretUnreadable
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.webhooks.policy import matches, retry_delay
from app.webhooks.schemas import DeliveryStatus
from app.webhooks.signing import (
    DELIVERY_ID_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    signature_header,
    standard_headers,
)
from app.webhooks.transport import SendResult, WebhookClient

log = structlog.get_logger("juisteplek.webhooks")

USER_AGENT = "JuistePlek-Webhooks/1"
MAX_PARALLEL_SENDS = 16


def _development_box() -> SecretBox:
    return SecretBox([DEVELOPMENT_SECRETS_KEY])


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    max_attempts: int = 20
    backoff_base_seconds: float = 10.0
    backoff_cap_seconds: float = 3_600.0
    timeout_seconds: float = 10.0
    batch_size: int = 50
    # At most this many deliveries of one subscription per pass, so a subscription with a large
    # backlog (or a slow receiver) cannot take the whole batch.
    per_subscription: int = 4
    secret_box: SecretBox = field(default_factory=_development_box)

    @property
    def fan_out_batch(self) -> int:
        return self.batch_size * 4

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout_seconds + 30)

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            backoff_base_seconds=settings.webhook_backoff_base_seconds,
            backoff_cap_seconds=settings.webhook_backoff_cap_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            batch_size=settings.webhook_batch_size,
            secret_box=settings.secret_box(),
        )


@dataclass
class DispatchSummary:
    events_fanned_out: int = 0
    deliveries_created: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.events_fanned_out or self.attempted)

    def full(self, config: DispatchConfig) -> bool:
        """The pass hit a batch limit, so more work is likely waiting."""
        return self.events_fanned_out >= config.fan_out_batch or self.attempted >= config.batch_size


@dataclass(frozen=True, slots=True)
class _Job:
    delivery_id: uuid.UUID
    token: uuid.UUID
    attempt: int
    subscription_id: uuid.UUID
    url: str
    secret: str | None  # None: it does not decrypt with the configured keys
    event: StreamEvent


async def _has_work(db: Database, now: datetime) -> bool:
    """Cheap read-only probe, so an idle dispatcher never opens a write transaction."""
    async with db.read() as conn:
        unfanned = exists().where(OutboxEvent.webhooks_fanned_out_at.is_(None))
        due = exists().where(
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookDelivery.next_attempt_at <= now,
        )
        row = (await conn.execute(select(unfanned.label("a"), due.label("b")))).one()
    return bool(row.a or row.b)


async def fan_out(db: Database, *, now: datetime, limit: int) -> tuple[int, int]:
    """Turn outbox events not yet fanned out into pending deliveries: (events, deliveries)."""
    async with db.sessionmaker() as session:
        events = (
            await session.execute(
                select(
                    OutboxEvent.id,
                    OutboxEvent.event_id,
                    OutboxEvent.event_type,
                    OutboxEvent.organisation_ids,
                )
                .where(OutboxEvent.webhooks_fanned_out_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not events:
            return 0, 0
        subs = (
            await session.execute(
                select(
                    WebhookSubscription.id,
                    WebhookSubscription.organisation_id,
                    WebhookSubscription.event_types,
                    WebhookSubscription.after_outbox_id,
                ).where(WebhookSubscription.deleted_at.is_(None))
            )
        ).all()
        rows = []
        for event in events:
            concerned = set(event.organisation_ids.split(","))
            for sub in subs:
                if (
                    event.id > sub.after_outbox_id
                    and str(sub.organisation_id) in concerned
                    and matches(sub.event_types.split(","), event.event_type)
                ):
                    rows.append(
                        {
                            "id": new_id(),
                            "subscription_id": sub.id,
                            "outbox_event_id": event.id,
                            "event_id": event.event_id,
                            "event_type": event.event_type,
                            "status": DeliveryStatus.PENDING.value,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
        if rows:
            await session.execute(insert(WebhookDelivery), rows)
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([e.id for e in events]))
            .values(webhooks_fanned_out_at=now)
        )
        await session.commit()
        return len(events), len(rows)


async def _claim(
    session: AsyncSession,
    *,
    now: datetime,
    config: DispatchConfig,
    limit: int | None = None,
    exclude: Collection[uuid.UUID] = (),
) -> list[_Job]:
    """Lease up to ``limit`` due deliveries, at most ``per_subscription`` of one subscription and
    none of the subscriptions in ``exclude`` (those with requests still in flight here)."""
    is_due: tuple[ColumnElement[bool], ...] = (
        WebhookDelivery.status == DeliveryStatus.PENDING.value,
        WebhookDelivery.next_attempt_at <= now,
    )
    if exclude:
        is_due = (*is_due, WebhookDelivery.subscription_id.not_in(list(exclude)))
    ranked = (
        select(
            WebhookDelivery.id,
            func.row_number()
            .over(
                partition_by=WebhookDelivery.subscription_id,
                order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
            )
            .label("rank"),
        )
        .where(*is_due)
        .subquery()
    )
    due = (
        await session.scalars(
            select(WebhookDelivery.id)
            .where(
                *is_due,
                WebhookDelivery.id.in_(
                    select(ranked.c.id).where(ranked.c.rank <= config.per_subscription)
                ),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(config.batch_size if limit is None else limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not due:
        return []
    token = uuid.uuid4()
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(due))
        .values(
            claim_token=token,
            attempts=WebhookDelivery.attempts + 1,
            next_attempt_at=now + config.lease,
            updated_at=now,
        )
    )
    rows = (
        await session.execute(
            select(
                WebhookDelivery.id.label("delivery_id"),
                WebhookDelivery.attempts,
                WebhookDelivery.subscription_id,
                WebhookSubscription.url,
                WebhookSubscription.secret,
                OutboxEvent.id,
                OutboxEvent.event_id,
                OutboxEvent.topic,
                OutboxEvent.event_type,
                OutboxEvent.region_id,
                OutboxEvent.organisation_ids,
                OutboxEvent.created_at,
                OutboxEvent.payload,
            )
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_event_id)
            .where(WebhookDelivery.id.in_(due))
        )
    ).all()
    jobs = []
    for r in rows:
        try:
            secret: str | None = config.secret_box.open(r.secret)
        except SecretUnreadable:
            log.error("webhook_secret_unreadable", delivery_id=str(r.delivery_id))
            secret = None
        jobs.append(
            _Job(
                delivery_id=r.delivery_id,
                token=token,
                attempt=r.attempts,
                subscription_id=r.subscription_id,
                url=r.url,
                secret=secret,
                event=to_event(r),
            )
        )
    return jobs


async def _send(
    client: WebhookClient, job: _Job, *, timestamp: int, timeout_seconds: float
) -> SendResult:
    """Sign and send one delivery; any failure, also an unexpected one, is an outcome."""
    started = time.perf_counter()
    try:
        if job.secret is None:
            raise SecretUnreadable(str(job.delivery_id))
        body = job.event.body()
        message_id = str(job.event.event_id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **standard_headers(job.secret, message_id, timestamp, body),
            # Deprecated (docs/webhooks.md): kept for receivers written before the Standard
            # Webhooks headers.
            SIGNATURE_HEADER: signature_header(job.secret, timestamp, body),
            EVENT_ID_HEADER: message_id,
            EVENT_TYPE_HEADER: job.event.event_type,
            DELIVERY_ID_HEADER: str(job.delivery_id),
        }
        return await client.send(job.url, body=body, headers=headers, timeout=timeout_seconds)
    except Exception:
        log.exception("webhook_send_failed", delivery_id=str(job.delivery_id))
        return SendResult(None, "send_failed", int((time.perf_counter() - started) * 1000))


async def _record(
    db: Database,
    results: list[tuple[_Job, SendResult]],
    *,
    now: datetime,
    config: DispatchConfig,
    rand: Callable[[], float],
    summary: DispatchSummary,
) -> None:
    async with db.sessionmaker() as session:
        for job, outcome in results:
            values: dict[str, object] = {
                "claim_token": None,
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
                "updated_at": now,
            }
            if outcome.ok:
                label = "delivered"
                values |= {
                    "status": DeliveryStatus.DELIVERED.value,
                    "delivered_at": now,
                    "next_attempt_at": None,
                }
            elif outcome.permanent or job.attempt >= config.max_attempts:
                label = "failed"
                values |= {"status": DeliveryStatus.FAILED.value, "next_attempt_at": None}
            else:
                label = "retry"
                delay = retry_delay(
                    job.attempt,
                    base_seconds=config.backoff_base_seconds,
                    cap_seconds=config.backoff_cap_seconds,
                    rand=rand,
                )
                values["next_attempt_at"] = now + timedelta(seconds=delay)
            result = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == job.delivery_id,
                    WebhookDelivery.claim_token == job.token,
                )
                .values(**values)
            )
            session.add(
                WebhookAttempt(
                    delivery_id=job.delivery_id,
                    attempt=job.attempt,
                    attempted_at=now,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    outcome=label,
                )
            )
            if getattr(result, "rowcount", 1) == 0:
                # Our lease ran out or the delivery was redelivered/deleted meanwhile: the
                # attempt is logged, the state belongs to whoever holds the delivery now.
                continue
            if label == "delivered":
                summary.delivered += 1
            elif label == "failed":
                summary.failed += 1
            else:
                summary.retrying += 1
        await session.commit()


async def dispatch_once(
    db: Database,
    *,
    now: datetime,
    client: WebhookClient,
    config: DispatchConfig | None = None,
    rand: Callable[[], float] = random.random,
) -> DispatchSummary:
    """One pass: fan new outbox events out, send the deliveries due at ``now``, record outcomes."""
    config = config or DispatchConfig()
    summary = DispatchSummary()
    if not await _has_work(db, now):
        return summary
    summary.events_fanned_out, summary.deliveries_created = await fan_out(
        db, now=now, limit=config.fan_out_batch
    )
    async with db.sessionmaker() as session:
        jobs = await _claim(session, now=now, config=config)
        await session.commit()
    if not jobs:
        return summary
    summary.attempted = len(jobs)
    gate = asyncio.Semaphore(MAX_PARALLEL_SENDS)
    timestamp = int(now.timestamp())

    async def send(job: _Job) -> tuple[_Job, SendResult]:
        async with gate:
            return job, await _send(
                client, job, timestamp=timestamp, timeout_seconds=config.timeout_seconds
            )

    results = list(await asyncio.gather(*(send(job) for job in jobs)))
    await _record(db, results, now=now, config=config, rand=rand, summary=summary)
    return summary


class _Runner:
    """The background dispatcher of one app instance.

    Unlike ``dispatch_once`` it does not wait for a pass's requests before the next pass: each
    request runs as its own task, finished results are recorded together at the start of the
    next pass, and new deliveries are claimed while slow receivers are still answering (their
    subscriptions are left out of the claim until their requests finish). So a receiver that
    takes the whole timeout delays only its own subscription's events.
    """

    def __init__(self, db: Database, settings: Settings, client: WebhookClient) -> None:
        self.db = db
        self.client = client
        self.config = DispatchConfig.from_settings(settings)
        self.wake = asyncio.Event()
        self.in_flight: dict[asyncio.Task[SendResult], _Job] = {}
        self.finished: list[tuple[_Job, SendResult]] = []

    def _done(self, task: asyncio.Task[SendResult]) -> None:
        job = self.in_flight.pop(task)
        if not task.cancelled() and task.exception() is None:
            self.finished.append((job, task.result()))
        self.wake.set()

    async def step(self) -> bool:
        """Record finished requests, fan out, claim and start requests; True when more waits."""
        now = utcnow()
        if self.finished:
            results, self.finished = self.finished, []
            await _record(
                self.db,
                results,
                now=now,
                config=self.config,
                rand=random.random,
                summary=DispatchSummary(),
            )
        if not await _has_work(self.db, now):
            return False
        events, _ = await fan_out(self.db, now=now, limit=self.config.fan_out_batch)
        room = min(self.config.batch_size, MAX_PARALLEL_SENDS * 4 - len(self.in_flight))
        jobs: list[_Job] = []
        if room > 0:
            busy = {job.subscription_id for job in self.in_flight.values()}
            async with self.db.sessionmaker() as session:
                jobs = await _claim(session, now=now, config=self.config, limit=room, exclude=busy)
                await session.commit()
        timestamp, timeout = int(now.timestamp()), self.config.timeout_seconds
        for job in jobs:
            task = asyncio.create_task(
                _send(self.client, job, timestamp=timestamp, timeout_seconds=timeout)
            )
            self.in_flight[task] = job
            task.add_done_callback(self._done)
        return events >= self.config.fan_out_batch or (room > 0 and len(jobs) >= room)

    async def stop(self) -> None:
        tasks = list(self.in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_dispatcher(db: Database, settings: Settings) -> None:
    """Background loop of one app instance (cancel the task to stop it).

    Requests cut short by the stop are sent again once their lease runs out (at least once).
    """
    async with WebhookClient(
        allow_hosts=settings.webhook_allow_hosts,
        require_https=settings.webhook_require_https,
    ) as client:
        runner = _Runner(db, settings, client)
        unsubscribe = local_bus.subscribe(lambda _ids: runner.wake.set())
        try:
            while True:
                runner.wake.clear()
                try:
                    more = await runner.step()
                except Exception:
                    log.exception("webhook_dispatch_failed")
                    more = False
                if more:  # a full pass: go on at once
                    await asyncio.sleep(0)
                    continue
                # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for loses a
                # cancellation that arrives as the event is set, and the app's shutdown, which
                # cancels this task and waits for it, would hang.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.webhook_poll_seconds):
                        await runner.wake.wait()
                    await asyncio.sleep(settings.webhook_coalesce_seconds)
        finally:
            unsubscribe()
            await runner.stop()
