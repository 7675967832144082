"""Query parameter aliases shared by list endpoints, and the problem responses they declare."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Header, Query, Response

from app.registry.service import Listing
from app.schemas import problem_responses

CursorQ = Annotated[
    str | None,
    Query(max_length=200, description="next_cursor of the previous page"),
]
LimitQ = Annotated[int, Query(ge=1, le=500, description="Page size")]
NearQ = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^-?[0-9]{1,2}(\.[0-9]+)?,-?[0-9]{1,3}(\.[0-9]+)?$",
        description="latitude,longitude in degrees, e.g. 52.1601,4.4970",
    ),
]
IncludePartnersQ = Annotated[
    bool,
    Query(
        description=(
            "Escalate beyond the own region: also list the units of partner regions "
            "(read-only copies, after the own units, each with its `source`: region, the "
            "partner's report time, when it was fetched and whether the partner answers); "
            "docs/federation.md"
        )
    ),
]
IfMatchH = Annotated[
    str | None,
    Header(alias="If-Match", max_length=200, description="ETag from a previous read"),
]

# 429: too many failed authentications from the caller's address (AUTH_FAILURE_LIMIT).
READ_PROBLEMS = problem_responses(400, 401, 403, 404, 422, 429)
WRITE_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 412, 413, 415, 422, 429)


def listing(cursor: str | None, limit: int) -> Listing:
    return Listing(cursor=cursor, limit=limit)


def json_response(document: Any) -> Response:
    """Plain data as a JSON response: the search answers skip building their response models."""
    # default=str: asyncpg returns its own UUID subclass, which orjson does not know.
    return Response(
        orjson.dumps(document, default=str, option=orjson.OPT_UTC_Z), media_type="application/json"
    )
