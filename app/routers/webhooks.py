"""Webhook subscription endpoints: manage subscriptions, read the delivery log, redeliver."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.db import utcnow
from app.enums import Role
from app.http.deps import PrincipalDep, SessionDep, SettingsDep, WriteDep, requires
from app.routers.common import READ_PROBLEMS, WRITE_PROBLEMS, CursorQ, LimitQ
from app.schemas import Page
from app.webhooks import service as webhook_service
from app.webhooks.schemas import (
    DeliveryStatus,
    WebhookDeliveryRead,
    WebhookSubscriptionCreate,
    WebhookSubscriptionCreated,
    WebhookSubscriptionRead,
)

router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["webhooks"])


@router.post(
    "",
    status_code=201,
    response_model=WebhookSubscriptionCreated,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER, Role.REFERRER, Role.TRIAGIST)],
)
async def create_subscription(
    body: WebhookSubscriptionCreate, write: WriteDep, settings: SettingsDep
) -> Response:
    """Subscribe an endpoint to events of the key's organisation. The secret is shown only here.

    Deliveries are signed POSTs, retried with backoff, **at least once**: dedupe on
    `JuistePlek-Event-Id` (see docs/webhooks.md).
    """
    created = await webhook_service.create_subscription(
        write.session, write.principal, body, settings=settings, now=utcnow()
    )
    write.headers["Location"] = f"/v1/webhook-subscriptions/{created.id}"
    return await write.commit(created, status_code=201)


@router.get(
    "",
    response_model=Page[WebhookSubscriptionRead],
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.PROVIDER, Role.REFERRER, Role.TRIAGIST)],
)
async def list_subscriptions(
    session: SessionDep,
    principal: PrincipalDep,
    organisation_id: uuid.UUID | None = None,
    cursor: CursorQ = None,
    limit: LimitQ = 50,
) -> Page[WebhookSubscriptionRead]:
    """Active subscriptions: the key's own organisation's (admin: all, or one organisation's)."""
    items, nxt = await webhook_service.list_subscriptions(
        session, principal, organisation_id=organisation_id, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=nxt)


@router.get(
    "/{subscription_id}",
    response_model=WebhookSubscriptionRead,
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.PROVIDER, Role.REFERRER, Role.TRIAGIST)],
)
async def get_subscription(
    subscription_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> WebhookSubscriptionRead:
    return await webhook_service.get_subscription(session, principal, subscription_id)


@router.delete(
    "/{subscription_id}",
    response_model=WebhookSubscriptionRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER, Role.REFERRER, Role.TRIAGIST)],
)
async def delete_subscription(subscription_id: uuid.UUID, write: WriteDep) -> Response:
    """Stop the subscription; its pending deliveries are marked failed."""
    deleted = await webhook_service.delete_subscription(
        write.session, write.principal, subscription_id, now=utcnow()
    )
    return await write.commit(deleted)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=Page[WebhookDeliveryRead],
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.PROVIDER, Role.REFERRER, Role.TRIAGIST)],
)
async def list_deliveries(
    subscription_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    cursor: CursorQ = None,
    limit: LimitQ = 50,
) -> Page[WebhookDeliveryRead]:
    """Deliveries of the subscription, newest event first, each with its attempt log."""
    items, nxt = await webhook_service.list_deliveries(
        session, principal, subscription_id, status=status, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=nxt)


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=WebhookDeliveryRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER, Role.REFERRER, Role.TRIAGIST)],
)
async def redeliver(
    subscription_id: uuid.UUID, delivery_id: uuid.UUID, write: WriteDep
) -> Response:
    """Send a delivery again (also a delivered or failed one) with a fresh attempt budget."""
    delivery = await webhook_service.redeliver(
        write.session, write.principal, subscription_id, delivery_id, now=utcnow()
    )
    return await write.commit(delivery, status_code=202)
