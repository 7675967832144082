"""Webhook subscriptions and their delivery log (docs/webhooks.md).

Rules: a key with any role but analyst manages its own organisation's subscriptions, admin keys
all of them; the signing secret is generated here, returned once and stored encrypted; the URL
must pass ``policy.target_problem`` (the addresses it resolves to are checked again at every
delivery); a subscription receives
events created after it whose ``organisation_ids`` contain its organisation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database
from app.enums import Role
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.pagination import Keyset
from app.principal import Principal
from app.realtime.models import OutboxEvent
from app.registry.models import Organisation
from app.secretbox import SecretBox, SecretUnreadable
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.webhooks.policy import target_problem
from app.webhooks.schemas import (
    DeliveryStatus,
    WebhookAttemptRead,
    WebhookDeliveryRead,
    WebhookSubscriptionCreate,
    WebhookSubscriptionCreated,
    WebhookSubscriptionRead,
)
from app.webhooks.signing import generate_secret

MANAGER_ROLES = (Role.PROVIDER, Role.REFERRER, Role.TRIAGIST)
MAX_SUBSCRIPTIONS_PER_ORGANISATION = 25


def subscription_read(sub: WebhookSubscription) -> WebhookSubscriptionRead:
    return WebhookSubscriptionRead(
        id=sub.id,
        organisation_id=sub.organisation_id,
        url=sub.url,
        event_types=[p for p in sub.event_types.split(",") if p],
        description=sub.description,
        created_at=sub.created_at,
        deleted_at=sub.deleted_at,
    )


def _require_manager(principal: Principal) -> None:
    principal.require(*MANAGER_ROLES)


async def _load(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> WebhookSubscription:
    _require_manager(principal)
    sub = await session.get(WebhookSubscription, subscription_id)
    if sub is None or sub.deleted_at is not None:
        raise NotFound(f"No webhook subscription {subscription_id}.")
    if not principal.is_admin and principal.organisation_id != sub.organisation_id:
        raise Forbidden("This webhook subscription belongs to another organisation.")
    return sub


async def create_subscription(
    session: AsyncSession,
    principal: Principal,
    body: WebhookSubscriptionCreate,
    *,
    settings: Settings,
    now: datetime,
) -> WebhookSubscriptionCreated:
    """Register an endpoint; the response carries the signing secret, shown this once only."""
    _require_manager(principal)
    organisation_id = body.organisation_id or principal.organisation_id
    if organisation_id is None:
        raise InvalidInput(
            "An admin key without an organisation must name organisation_id.",
            errors=[{"pointer": "#/organisation_id", "detail": "required for this key"}],
        )
    principal.require_organisation(organisation_id, "webhook subscriptions")
    if await session.get(Organisation, organisation_id) is None:
        raise InvalidInput(
            "Unknown organisation.",
            errors=[{"pointer": "#/organisation_id", "detail": "no such organisation"}],
        )
    problem = target_problem(
        body.url,
        allow_hosts=settings.webhook_allow_hosts,
        require_https=settings.webhook_require_https,
    )
    if problem is not None:
        raise InvalidInput(
            f"The webhook URL {problem}.", errors=[{"pointer": "#/url", "detail": problem}]
        )
    active = await session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(
            WebhookSubscription.organisation_id == organisation_id,
            WebhookSubscription.deleted_at.is_(None),
        )
    )
    if (active or 0) >= MAX_SUBSCRIPTIONS_PER_ORGANISATION:
        raise Conflict(
            f"An organisation may have at most {MAX_SUBSCRIPTIONS_PER_ORGANISATION} webhook "
            "subscriptions; delete one first."
        )
    # Events committed before now are not this subscription's business.
    after = await session.scalar(select(func.max(OutboxEvent.id)))
    secret = generate_secret()
    sub = WebhookSubscription(
        organisation_id=organisation_id,
        url=body.url,
        event_types=",".join(dict.fromkeys(body.event_types)),
        description=body.description,
        secret=settings.secret_box().seal(secret),
        after_outbox_id=int(after or 0),
        created_at=now,
        created_by_key_id=principal.key_id,
    )
    session.add(sub)
    await session.flush()
    return WebhookSubscriptionCreated(**subscription_read(sub).model_dump(), secret=secret)


async def list_subscriptions(
    session: AsyncSession,
    principal: Principal,
    *,
    organisation_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WebhookSubscriptionRead], str | None]:
    """Active subscriptions, oldest first; non-admin keys see their own organisation's only."""
    _require_manager(principal)
    stmt = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))
    if not principal.is_admin:
        if organisation_id is not None and organisation_id != principal.organisation_id:
            raise Forbidden("This key may only list its own organisation's subscriptions.")
        organisation_id = principal.organisation_id
    if organisation_id is not None:
        stmt = stmt.where(WebhookSubscription.organisation_id == organisation_id)
    order = Keyset(WebhookSubscription.created_at, WebhookSubscription.id)
    subs, nxt = await order.scalars(session, stmt, cursor, limit)
    return [subscription_read(s) for s in subs], nxt


async def get_subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> WebhookSubscriptionRead:
    return subscription_read(await _load(session, principal, subscription_id))


async def delete_subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, *, now: datetime
) -> WebhookSubscriptionRead:
    """Stop deliveries: the subscription is marked deleted and its pending deliveries fail."""
    sub = await _load(session, principal, subscription_id)
    sub.deleted_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == sub.id,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
        )
        .values(
            status=DeliveryStatus.FAILED.value,
            next_attempt_at=None,
            claim_token=None,
            last_error="subscription deleted",
            updated_at=now,
        )
    )
    await session.flush()
    return subscription_read(sub)


async def _delivery_reads(
    session: AsyncSession, deliveries: Sequence[WebhookDelivery]
) -> list[WebhookDeliveryRead]:
    attempts: dict[uuid.UUID, list[WebhookAttemptRead]] = {d.id: [] for d in deliveries}
    if deliveries:
        rows = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.id)
        )
        for a in rows:
            attempts[a.delivery_id].append(
                WebhookAttemptRead(
                    attempt=a.attempt,
                    attempted_at=a.attempted_at,
                    duration_ms=a.duration_ms,
                    status_code=a.status_code,
                    error=a.error,
                    outcome=a.outcome,
                )
            )
    return [
        WebhookDeliveryRead(
            id=d.id,
            subscription_id=d.subscription_id,
            event_id=d.event_id,
            event_type=d.event_type,
            sequence=d.outbox_event_id,
            status=DeliveryStatus(d.status),
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
            attempt_log=attempts[d.id],
        )
        for d in deliveries
    ]


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WebhookDeliveryRead], str | None]:
    """The subscription's deliveries, newest event first, each with its attempt log."""
    await _load(session, principal, subscription_id)
    stmt: Select[WebhookDelivery] = select(WebhookDelivery).where(
        WebhookDelivery.subscription_id == subscription_id
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status.value)
    order = Keyset(WebhookDelivery.outbox_event_id, descending=True)
    deliveries, nxt = await order.scalars(session, stmt, cursor, limit)
    return await _delivery_reads(session, deliveries), nxt


async def redeliver(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    now: datetime,
) -> WebhookDeliveryRead:
    """Queue a delivery again now, with a fresh attempt budget (same event id: receivers dedupe)."""
    await _load(session, principal, subscription_id)
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.subscription_id == subscription_id,
        )
        .with_for_update()
    )
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id} for webhook subscription {subscription_id}.")
    delivery.status = DeliveryStatus.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.claim_token = None
    delivery.updated_at = now
    await session.flush()
    return (await _delivery_reads(session, [delivery]))[0]


@dataclass(frozen=True, slots=True)
class ReencryptResult:
    subscriptions: int
    reencrypted: int
    unreadable: list[uuid.UUID]


async def reencrypt_secrets(db: Database, box: SecretBox, *, batch: int = 500) -> ReencryptResult:
    """Encrypt every stored webhook secret under ``box``'s current key (key rotation).

    Plaintext secrets from before encryption are encrypted; secrets under an old key are
    re-encrypted; a secret no configured key decrypts is left alone and reported. Each batch is
    its own transaction, so the command can be run again after an interruption.
    """
    total = changed = 0
    unreadable: list[uuid.UUID] = []
    after = uuid.UUID(int=0)
    while True:
        async with db.sessionmaker() as session:
            subs = (
                await session.scalars(
                    select(WebhookSubscription)
                    .where(WebhookSubscription.id > after)
                    .order_by(WebhookSubscription.id)
                    .limit(batch)
                    .with_for_update()
                )
            ).all()
            if not subs:
                return ReencryptResult(total, changed, unreadable)
            for sub in subs:
                total += 1
                if box.is_current(sub.secret):
                    continue
                try:
                    sub.secret = box.reseal(sub.secret)
                except SecretUnreadable:
                    unreadable.append(sub.id)
                    continue
                changed += 1
            after = subs[-1].id
            await session.commit()
