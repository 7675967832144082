"""Operations endpoints: liveness, readiness, Prometheus metrics (no auth, no patient data)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from app.db import utcnow
from app.http.deps import DbDep, public
from app.metrics import REGISTRY
from app.ops import service as ops_service

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health, dependencies=[public()])
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Health, responses={503: {"model": Health}}, dependencies=[public()]
)
async def readyz(db: DbDep, response: Response) -> Health:
    """The database answers and its schema is at the migrations' head."""
    ready, checks = await ops_service.readiness(db)
    if not ready:
        response.status_code = 503
    return Health(status="ok" if ready else "unavailable", checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    dependencies=[public()],
)
async def metrics(db: DbDep) -> Response:
    await ops_service.refresh_metrics(db, utcnow())
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
