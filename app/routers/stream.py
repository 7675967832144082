"""``GET /v1/stream``: server-sent events of capacity and placement changes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request

from app.http.audit import context_of
from app.http.deps import DbDep, PrincipalDep, authenticated
from app.placement import views as placement_views
from app.realtime.hub import Hub
from app.realtime.limits import StreamSlots
from app.realtime.stream import EventStream, EventStreamResponse
from app.routers.common import READ_PROBLEMS

router = APIRouter(prefix="/v1", tags=["realtime"])


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

One server keeps a limited number of streams open per key and in all (settings
`STREAM_MAX_PER_KEY`, `STREAM_MAX_PER_INSTANCE`); beyond them the answer is a 429 problem with
`Retry-After`.
"""


@router.get(
    "/stream",
    response_class=EventStreamResponse,
    description=STREAM_DOC,
    responses={
        200: {
            "description": "An endless stream of server-sent events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **READ_PROBLEMS,
    },
    dependencies=[authenticated()],
)
async def stream(
    request: Request,
    db: DbDep,
    principal: PrincipalDep,
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
) -> EventStreamResponse:
    hub: Hub = request.app.state.hub
    resume = int(last_event_id) if last_event_id is not None else after
    slots: StreamSlots = request.app.state.stream_slots
    release = slots.acquire(principal.key_id)
    # A revoked key's stream ends at once on this instance and within a few seconds on others
    # (the hub checks the keys of its open streams periodically, not before every event).
    return EventStreamResponse(
        EventStream(
            db,
            hub,
            principal,
            last_event_id=resume,
            topics=frozenset(topic) if topic else None,
            audit=context_of(request, principal),
            patient_keys=placement_views.patient_keys,
        ),
        on_close=release,
    )
