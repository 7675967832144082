"""``GET /v1/stream``: server-sent events of capacity and placement changes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from sse_starlette.sse import EventSourceResponse

from app.audit.http import context_of
from app.auth.service import KeyResolver
from app.deps import DbDep, PrincipalDep, SettingsDep
from app.errors import Unauthenticated
from app.realtime.hub import Hub
from app.realtime.stream import event_stream
from app.routers.common import READ_PROBLEMS

router = APIRouter(prefix="/v1", tags=["realtime"])


class SSEResponse(EventSourceResponse):
    media_type = "text/event-stream"  # class-level, so OpenAPI documents the 200 content type


STREAM_DOC = """Server-sent events (`text/event-stream`), one per committed change:

```
id: 1234
event: capacity.reported
data: {"id": "<event uuid>", "sequence": 1234, "type": "capacity.reported",
       "topic": "capacity", "created_at": "...", "data": {...}}
```

Capacity events go to every key. Placement events go to admin keys, triagists of the event's
region, and provider/referrer/triagist keys of an organisation the placement concerns; analysts
get none. Reconnect with `Last-Event-ID` (browsers do this by themselves) to replay what was
missed; a comment line is sent every 15 s as a heartbeat.
"""


@router.get(
    "/stream",
    response_class=SSEResponse,
    description=STREAM_DOC,
    responses={
        200: {
            "description": "An endless stream of server-sent events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **READ_PROBLEMS,
    },
)
async def stream(
    request: Request,
    db: DbDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=r"^[0-9]{1,18}$",
            description="Replay events after this id (the id of the last event received)",
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=10**18 - 1, description="Same as Last-Event-ID, for header-less clients"),
    ] = None,
    topic: Annotated[
        list[Literal["capacity", "placement"]],
        Query(max_length=2, description="Only these topics (default: all the key may see)"),
    ] = [],  # noqa: B006
) -> SSEResponse:
    hub: Hub = request.app.state.hub
    resolver: KeyResolver = request.app.state.key_resolver
    authorization = request.headers.get("authorization")
    resume = int(last_event_id) if last_event_id is not None else after

    async def still_valid() -> bool:
        # A cached dict hit; a revocation clears this instance's cache at once (others: TTL).
        try:
            await resolver.resolve(authorization)
        except Unauthenticated:
            return False
        return True

    return SSEResponse(
        event_stream(
            db,
            hub,
            principal,
            last_event_id=resume,
            topics=frozenset(topic) if topic else None,
            still_valid=still_valid,
            audit=context_of(request, principal),
        ),
        ping=settings.stream_heartbeat_seconds,
    )
