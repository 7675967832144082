"""The uniform urgency language (docs/domain.md §7): the map and conversions in both directions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.http.deps import authenticated
from app.routers.common import READ_PROBLEMS
from app.triage import service as triage_service
from app.triage.schemas import UrgencyConversion, UrgencyMapRead

router = APIRouter(prefix="/v1/urgency", tags=["urgency"])


@router.get(
    "/map", response_model=UrgencyMapRead, responses=READ_PROBLEMS, dependencies=[authenticated()]
)
async def urgency_map() -> UrgencyMapRead:
    """Unified levels 0-5 with their meaning, and every native system's codes with the level
    they convert to and the levels they span."""
    return triage_service.urgency_map_read()


@router.get(
    "/convert",
    response_model=UrgencyConversion,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def convert_urgency(
    system: Annotated[str, Query(min_length=1, max_length=30, examples=["nts"])],
    code: Annotated[str | None, Query(min_length=1, max_length=20, examples=["U3"])] = None,
    level: Annotated[int | None, Query(ge=0, le=5)] = None,
) -> UrgencyConversion:
    """``system`` + ``code``: the unified level of a native code. ``system`` + ``level``: the
    native codes of that system spanning the level (empty where the system has none)."""
    return triage_service.convert_urgency(system, code=code, level=level)
