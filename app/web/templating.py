"""Jinja2 environment and ``render``: every page and fragment goes through here.

``render`` adds what every template may use: ``_`` / ``ngettext`` (the request's language),
``person`` (the logged-in Principal or None), ``csrf_token``, ``nav`` (links by role),
``lang`` and ``lang_links`` (the language switch), and ``static(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.db import utcnow
from app.enums import Role
from app.principal import Principal
from app.web.i18n import (
    CARE_TYPE_LABELS,
    DECLINE_REASON_LABELS,
    LANG_COOKIE,
    LOCALES,
    N_,
    ROLE_LABELS,
    SEX_LABELS,
    Translator,
    negotiate,
    pick,
)

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/ui/static"
PRODUCT = "JuistePlek"
# Times on pages are Dutch wall-clock times; the data stays UTC.
LOCAL_TZ = ZoneInfo("Europe/Amsterdam")

env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["product"] = PRODUCT
env.globals["role_labels"] = ROLE_LABELS
env.globals["care_type_labels"] = CARE_TYPE_LABELS
env.globals["decline_reason_labels"] = DECLINE_REASON_LABELS
env.globals["sex_labels"] = SEX_LABELS


def static(path: str) -> str:
    return f"{STATIC_PREFIX}/{path}"


env.globals["static"] = static


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str  # msgid, translated in the template
    roles: frozenset[Role]


# The navigation, in order; a person sees the items of their roles (admins see all).
NAV: tuple[NavItem, ...] = (
    NavItem("/ui/board", N_("Board"), frozenset({Role.TRIAGIST})),
    NavItem("/ui/placements", N_("Placements"), frozenset({Role.TRIAGIST, Role.REFERRER})),
    NavItem("/ui/units", N_("My units"), frozenset({Role.PROVIDER})),
    NavItem("/ui/kpis", N_("KPIs"), frozenset({Role.ANALYST})),
    NavItem("/ui/admin", N_("Administration"), frozenset({Role.ADMIN})),
    NavItem("/ui/account", N_("My account"), frozenset(Role)),
)


def nav_for(person: Principal | None) -> list[NavItem]:
    if person is None:
        return []
    return [item for item in NAV if person.is_admin or item.roles & person.roles]


def _span(tr: Translator, seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return tr("less than a minute")
    if minutes < 120:
        return tr.ngettext("%(num)s minute", "%(num)s minutes", minutes)
    hours = minutes // 60
    if hours < 48:
        return tr.ngettext("%(num)s hour", "%(num)s hours", hours)
    return tr.ngettext("%(num)s day", "%(num)s days", hours // 24)


def ago(tr: Translator, moment: datetime | None, now: datetime) -> str:
    """How long ago ``moment`` was, in words ("12 minutes ago")."""
    if moment is None:
        return tr("never")
    return tr("%(span)s ago", span=_span(tr, max(0.0, (now - moment).total_seconds())))


def remaining(tr: Translator, moment: datetime, now: datetime) -> str:
    """How long until ``moment`` ("in 25 minutes"), or that it has passed."""
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return tr("expired")
    return tr("in %(span)s", span=_span(tr, seconds))


def request_locale(request: Request) -> str:
    cached = getattr(request.state, "locale", None)
    if isinstance(cached, str):
        return cached
    locale = negotiate(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )
    request.state.locale = locale
    return locale


def translator(request: Request) -> Translator:
    return Translator(request_locale(request))


def _lang_links(request: Request) -> list[tuple[str, str]]:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return [(loc, f"{request.url.path}?{urlencode([*params, ('lang', loc)])}") for loc in LOCALES]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a page or a fragment template as the response to ``request``."""
    locale = request_locale(request)
    tr = Translator(locale)
    person = getattr(request.state, "person", None)
    now = utcnow()
    values: dict[str, Any] = {
        "request": request,
        "now": now,
        "ago": lambda moment: ago(tr, moment, now),
        "remaining": lambda moment: remaining(tr, moment, now),
        "clock": lambda moment: moment.astimezone(LOCAL_TZ).strftime("%H:%M"),
        "_": tr.gettext,
        "ngettext": tr.ngettext,
        "lang": locale,
        "lang_links": _lang_links(request),
        "person": person,
        "organisation_name": getattr(
            getattr(request.state, "web_session", None), "organisation_name", None
        ),
        "nav": nav_for(person),
        "current_path": request.url.path,
        "csrf_token": getattr(request.state, "csrf_token", ""),
    }
    values.update(context or {})
    html = env.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    chosen = pick(request.query_params.get("lang"))
    if chosen is not None and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="lax", httponly=True
        )
    return response
