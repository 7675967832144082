"""``/docs`` (Swagger UI) and ``/redoc`` with their assets served by the app: no CDN needed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse

from app.http.deps import public
from app.web.templating import static

router = APIRouter(include_in_schema=False)


def _openapi_url(request: Request) -> str:
    return str(request.app.openapi_url or "/openapi.json")


@router.get("/docs", dependencies=[public()])
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} – API",
        swagger_js_url=static("vendor/swagger-ui-bundle.js"),
        swagger_css_url=static("vendor/swagger-ui.css"),
        swagger_favicon_url=static("favicon.svg"),
    )


@router.get("/redoc", dependencies=[public()])
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} – API",
        redoc_js_url=static("vendor/redoc.standalone.js"),
        redoc_favicon_url=static("favicon.svg"),
        with_google_fonts=False,
    )
