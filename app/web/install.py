"""Wire the web app into ``create_app``: static files, page routers, HTML errors, CSRF."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from app.config import Settings
from app.web.csrf import CsrfMiddleware
from app.web.errors import install_page_handlers
from app.web.routes import (
    account,
    admin,
    admin_people,
    admin_system,
    apidocs,
    board,
    kpis,
    placements,
    session,
    units,
)
from app.web.templating import STATIC_DIR, STATIC_PREFIX

# Page routers in order.
ROUTERS = [
    apidocs.router,
    session.router,
    account.router,
    units.router,
    units.offers,
    kpis.router,
    board.router,
    placements.router,
    placements.detail_router,
    admin.router,
    admin_people.router,
    admin_system.router,
    admin_system.audited,
]


def install_web(app: FastAPI, settings: Settings) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    install_page_handlers(app)
    app.add_middleware(CsrfMiddleware, secure=settings.secure_cookies)
