"""LPZ-style exchange: the capacity snapshot (JSON or CSV) and CSV capacity uploads."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from app.db import utcnow
from app.enums import CareType
from app.errors import MalformedRequest
from app.exchange import service as exchange_service
from app.exchange import snapshot as snapshot_csv
from app.exchange.schemas import CapacitySnapshot
from app.http.deps import PrincipalDep, SessionDep, SettingsDep, WriteDep, authenticated
from app.http.uow import ReplayedResponse
from app.routers.common import READ_PROBLEMS, json_response

router = APIRouter(prefix="/v1", tags=["exchange"])

CSV_MEDIA_TYPE = "text/csv"


@router.get(
    "/capacity-snapshot",
    response_model=CapacitySnapshot,
    responses={
        **READ_PROBLEMS,
        200: {
            "description": "The snapshot; `Accept: text/csv` gives the same rows as CSV",
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
    },
    dependencies=[authenticated()],
)
async def capacity_snapshot(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    care_type: Annotated[list[CareType], Query(max_length=len(CareType))] = [],  # noqa: B006
    organisation_id: uuid.UUID | None = None,
    subregion: Annotated[str | None, Query(max_length=64, description="id or code")] = None,
    accept: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    """Every active unit's availability, status and freshness in one document: the LPZ-style
    feed. One row per unit; CSV with `Accept: text/csv` (columns as the JSON fields)."""
    document = await exchange_service.capacity_snapshot(
        session,
        principal,
        care_types=care_type,
        organisation_id=organisation_id,
        subregion=subregion,
        now=utcnow(),
        settings=settings,
    )
    if accept is not None and CSV_MEDIA_TYPE in accept.lower():
        return Response(
            snapshot_csv.to_csv(document["items"]),
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers={"Content-Disposition": 'inline; filename="capacity-snapshot.csv"'},
        )
    return json_response(document)


class CsvAnswered(ReplayedResponse):
    """The CSV upload was handled before FastAPI read the body as JSON; this is its answer."""


CSV_REQUEST_BODY = {
    "requestBody": {
        "content": {
            CSV_MEDIA_TYPE: {
                "schema": {"type": "string"},
                "example": "unit_id,free,expected_free_24h,reported_at\n"
                "3f1c6a9e-8a53-4a4b-9d0e-0d6f6a1b2c3d,4,5,2026-12-05T08:55:00Z\n",
            }
        }
    }
}


async def csv_upload(request: Request, write: WriteDep, settings: SettingsDep) -> None:
    """Route dependency of ``POST /v1/capacity-reports``: a ``text/csv`` body is taken here
    (all-or-nothing, every bad line and column named); a JSON body passes on to the route."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != CSV_MEDIA_TYPE:
        return
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(
            f"The CSV is not UTF-8 text (byte {exc.start}).",
            errors=[{"pointer": "/lines", "detail": "not UTF-8"}],
        ) from exc
    reports = await exchange_service.upload_csv(
        write.session, write.principal, text, now=utcnow(), settings=settings
    )
    raise CsvAnswered(await write.commit(reports, status_code=201))
