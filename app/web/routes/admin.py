"""The administrator's console ``/ui/admin``: the instance's health first, then the registry.

Organisations, locations and units are listed, created, edited and deactivated through the
registry service functions the API calls. An edit form carries the version it was read at and
saves with it as ``If-Match``: when someone else saved in between, the 412 is shown next to the
form with the current values, never a silent overwrite.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from app.db import Database, utcnow
from app.enums import CareType, Feature, OrganisationKind, SexPolicy, TargetGroup
from app.errors import DomainError, NotFound, PreconditionFailed
from app.etag import etag
from app.flows import units as units_flow
from app.ops import service as ops_service
from app.principal import Principal
from app.registry import service as registry_service
from app.registry.schemas import (
    LocationCreate,
    LocationUpdate,
    OrganisationCreate,
    OrganisationUpdate,
    UnitCreate,
    UnitUpdate,
)
from app.web.deps import AdminUser
from app.web.i18n import CARE_TYPE_LABELS, N_
from app.web.routes.admin_common import (
    Field,
    FormState,
    parse_form,
    problem_errors,
    raw_values,
    status_for,
    tr_of,
)
from app.web.templating import render

router = APIRouter(include_in_schema=False)

ALL = registry_service.Listing(limit=500)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


# --- health ------------------------------------------------------------------------------------


@router.get("/ui/admin")
async def health_page(request: Request, person: AdminUser) -> Response:
    hub = getattr(request.app.state, "hub", None)
    health = await ops_service.instance_health(
        _db(request), open_streams=hub.subscriber_count if hub is not None else 0, now=utcnow()
    )
    settings = request.app.state.settings
    return render(
        request,
        "admin/health.html",
        {
            "health": health,
            "loop_labels": {
                "placement-sweeper": N_("Placement sweeper (expires holds)"),
                "juisteplek-webhooks": N_("Webhook dispatcher"),
                "juisteplek-realtime-hub": N_("Real-time hub (starts with the first stream)"),
            },
            "loop_enabled": {
                "placement-sweeper": bool(settings.run_placement_sweeper),
                "juisteplek-webhooks": bool(settings.dispatch_webhooks),
                "juisteplek-realtime-hub": True,
            },
        },
    )


# --- registry forms ------------------------------------------------------------------------------


def _enum(values: Sequence[Any]) -> list[tuple[str, str]]:
    return [(v.value, v.value) for v in values]


ORG_KINDS = _enum(list(OrganisationKind))
CARE_TYPES = [(c.value, CARE_TYPE_LABELS[c.value]) for c in CareType]
TARGET_GROUPS = _enum(list(TargetGroup))
FEATURES = _enum(list(Feature))
SEX_POLICIES = _enum(list(SexPolicy))

LOCATION_DETAIL_FIELDS = (
    Field("name", N_("Name"), required=True),
    Field("address", N_("Address"), required=True),
    Field("postcode", N_("Postcode"), required=True),
    Field("municipality", N_("Municipality"), required=True),
    Field("latitude", N_("Latitude"), "number", step="any", required=True),
    Field("longitude", N_("Longitude"), "number", step="any", required=True),
    Field("phone", N_("Phone")),
)
UNIT_DETAIL_FIELDS = (
    Field("target_groups", N_("Target groups"), "multi", TARGET_GROUPS, translate_options=False),
    Field("sex_policy", N_("Sex policy"), "select", SEX_POLICIES, translate_options=False),
    Field("features", N_("Features"), "multi", FEATURES, translate_options=False),
    Field("staffed_capacity", N_("Staffed capacity"), "number", required=True),
    Field("label", N_("Label (required for other, local)")),
)


@dataclass(frozen=True)
class Kind:
    """One registry resource as the console handles it."""

    path: str  # organisations | locations | units
    title: str  # msgid, singular
    create_model: type[BaseModel]
    update_model: type[BaseModel]
    update_fields: tuple[Field, ...]
    get: Callable[[AsyncSession, uuid.UUID], Awaitable[Any]]
    create: Callable[[AsyncSession, Principal, Any], Awaitable[Any]]
    update: Callable[[AsyncSession, Principal, uuid.UUID, Any, str | None], Awaitable[Any]]


KINDS = {
    "organisations": Kind(
        "organisations",
        N_("Organisation"),
        OrganisationCreate,
        OrganisationUpdate,
        (
            Field("name", N_("Name"), required=True),
            Field("agb_code", N_("AGB code")),
            Field("active", N_("Active"), "checkbox"),
        ),
        registry_service.get_organisation,
        registry_service.create_organisation,
        registry_service.update_organisation,
    ),
    "locations": Kind(
        "locations",
        N_("Location"),
        LocationCreate,
        LocationUpdate,
        (*LOCATION_DETAIL_FIELDS, Field("active", N_("Active"), "checkbox")),
        registry_service.get_location,
        registry_service.create_location,
        registry_service.update_location,
    ),
    "units": Kind(
        "units",
        N_("Unit"),
        UnitCreate,
        UnitUpdate,
        (
            Field("name", N_("Name"), required=True),
            *UNIT_DETAIL_FIELDS,
            Field("active", N_("Active"), "checkbox"),
        ),
        registry_service.get_unit,
        units_flow.create_unit,
        registry_service.update_unit,
    ),
}


async def _registry(session: AsyncSession) -> dict[str, Any]:
    organisations, _ = await registry_service.list_organisations(session, ALL)
    locations, _ = await registry_service.list_locations(session, ALL)
    units, _ = await registry_service.list_units(session, ALL)
    regions = await registry_service.list_regions(session)
    return {
        "organisations": organisations,
        "locations": locations,
        "units": units,
        "regions": regions,
        "org_names": {o.id: o.name for o in organisations},
        "location_names": {loc.id: loc.name for loc in locations},
    }


def create_fields(data: dict[str, Any]) -> dict[str, tuple[Field, ...]]:
    """The create forms; their selects list the registry's current organisations and locations."""
    org_options = [(str(o.id), o.name) for o in data["organisations"] if o.active]
    loc_options = [
        (str(loc.id), f"{loc.name} ({data['org_names'].get(loc.organisation_id, '')})")
        for loc in data["locations"]
        if loc.active
    ]
    region_options = [(str(r.id), r.name) for r in data["regions"]]
    return {
        "organisations": (
            Field("name", N_("Name"), required=True),
            Field("kind", N_("Kind"), "select", ORG_KINDS, translate_options=False, required=True),
            Field(
                "region_id",
                N_("Region"),
                "select",
                region_options,
                translate_options=False,
                required=True,
            ),
            Field("agb_code", N_("AGB code")),
        ),
        "locations": (
            Field(
                "organisation_id",
                N_("Organisation"),
                "select",
                org_options,
                translate_options=False,
                required=True,
            ),
            *LOCATION_DETAIL_FIELDS,
        ),
        "units": (
            Field(
                "location_id",
                N_("Location"),
                "select",
                loc_options,
                translate_options=False,
                required=True,
            ),
            Field("name", N_("Name"), required=True),
            Field("care_type", N_("Care type"), "select", CARE_TYPES, required=True),
            *UNIT_DETAIL_FIELDS,
        ),
    }


async def _registry_page(
    request: Request,
    *,
    forms: dict[str, FormState] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    async with _db(request).sessionmaker() as session:
        data = await _registry(session)
    return render(
        request,
        "admin/registry.html",
        {
            **data,
            "create_fields": create_fields(data),
            "forms": forms or {},
            "notice": notice,
        },
        status_code=status_code,
    )


NOTICES = {
    "created": N_("Created."),
    "saved": N_("Saved."),
    "deactivated": N_("Deactivated."),
}


@router.get("/ui/admin/registry")
async def registry_page(request: Request, person: AdminUser) -> Response:
    done = request.query_params.get("done") or ""
    notice = tr_of(request)(NOTICES[done]) if done in NOTICES else None
    return await _registry_page(request, notice=notice)


def _kind(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        raise NotFound(f"No registry resource {name!r}.")
    return kind


@router.post("/ui/admin/registry/{kind_name}")
async def create_resource(request: Request, kind_name: str, person: AdminUser) -> Response:
    kind = _kind(kind_name)
    tr = tr_of(request)
    async with _db(request).sessionmaker() as session:
        data = await _registry(session)
    specs = create_fields(data)[kind.path]
    values = raw_values(await request.form(), specs)
    body, errors = parse_form(tr, kind.create_model, values, specs)
    if body is not None:
        async with _db(request).sessionmaker() as session:
            try:
                created = await kind.create(session, person, body)
                await session.commit()
            except DomainError as exc:
                await session.rollback()
                errors = problem_errors(tr, exc, [f.name for f in specs])
            else:
                return RedirectResponse(
                    f"/ui/admin/registry?done=created#{kind.path}-{created.id}", status_code=303
                )
    return await _registry_page(
        request,
        forms={kind.path: FormState(values=values, errors=errors)},
        status_code=status_for(request, 422),
    )


def _form_values(item: Any, specs: Sequence[Field]) -> dict[str, Any]:
    dumped = item.model_dump(mode="json")
    values: dict[str, Any] = {}
    for f in specs:
        value = dumped.get(f.name)
        if f.kind in ("multi", "checkbox"):
            values[f.name] = value
        else:
            values[f.name] = "" if value is None else str(value)
    return values


async def _edit_page(
    request: Request,
    kind: Kind,
    item: Any,
    *,
    form: FormState | None = None,
    version: int | None = None,
    conflict: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/edit.html",
        {
            "kind": kind,
            "item": item,
            "specs": kind.update_fields,
            "form": form or FormState(values=_form_values(item, kind.update_fields)),
            "version": item.version if version is None else version,
            "conflict": conflict,
            "current": item,
        },
        status_code=status_code,
    )


@router.get("/ui/admin/registry/{kind_name}/{item_id}")
async def edit_page(
    request: Request, kind_name: str, item_id: uuid.UUID, person: AdminUser
) -> Response:
    kind = _kind(kind_name)
    async with _db(request).sessionmaker() as session:
        item = await kind.get(session, item_id)
    return await _edit_page(request, kind, item)


def _version(raw: object) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


@router.post("/ui/admin/registry/{kind_name}/{item_id}")
async def save_resource(
    request: Request, kind_name: str, item_id: uuid.UUID, person: AdminUser
) -> Response:
    """Save an edit with the version the form was read at (If-Match): a stale one is a 412."""
    kind = _kind(kind_name)
    tr = tr_of(request)
    form = await request.form()
    version = _version(form.get("version"))
    only_active = form.get("deactivate") is not None
    specs = (
        tuple(f for f in kind.update_fields if f.name == "active")
        if only_active
        else kind.update_fields
    )
    values = {"active": False} if only_active else raw_values(form, specs)
    body, errors = parse_form(tr, kind.update_model, values, specs, clear_empty=True)
    if body is not None:
        async with _db(request).sessionmaker() as session:
            try:
                await kind.update(
                    session, person, item_id, body, None if version is None else etag(version)
                )
                await session.commit()
            except PreconditionFailed:
                await session.rollback()
                current = await kind.get(session, item_id)
                message = tr(
                    "Someone else changed this %(what)s after you opened it (your version "
                    "%(yours)s, now %(current)s). Nothing was saved. The current values are "
                    "shown below the form; reload to edit them.",
                    what=tr(kind.title).lower(),
                    yours=version,
                    current=current.version,
                )
                return await _edit_page(
                    request,
                    kind,
                    current,
                    form=FormState(values=_form_values(current, specs) if only_active else values),
                    version=version,
                    conflict=message,
                    status_code=status_for(request, 412),
                )
            except DomainError as exc:
                await session.rollback()
                errors = problem_errors(tr, exc, [f.name for f in specs])
            else:
                done = "deactivated" if only_active else "saved"
                return RedirectResponse(
                    f"/ui/admin/registry?done={done}#{kind.path}-{item_id}", status_code=303
                )
    async with _db(request).sessionmaker() as session:
        item = await kind.get(session, item_id)
    return await _edit_page(
        request,
        kind,
        item,
        form=FormState(values=values, errors=errors),
        version=version,
        status_code=status_for(request, 422),
    )
