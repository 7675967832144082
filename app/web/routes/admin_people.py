"""Console pages for people and machines: user accounts and API keys.

Users are created with a password the administrator sets or one generated here and shown once;
roles, organisation and the active flag are edited with the version the form was read at; a
lost second factor is reset. Keys are issued (the key is shown once, with a copy button) and
revoked; a revoked key stops working at once on this instance.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from app.auth import service as auth_service
from app.auth import users as user_service
from app.auth.schemas import ApiKeyCreate, UserCreate, UserRead, UserUpdate
from app.db import Database
from app.enums import Role
from app.errors import DomainError, PreconditionFailed
from app.etag import etag
from app.registry import service as registry_service
from app.web.deps import AdminUser
from app.web.i18n import N_, ROLE_LABELS
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

ROLES = [(r.value, ROLE_LABELS[r.value]) for r in Role]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _organisations(request: Request) -> list[Any]:
    async with _db(request).sessionmaker() as session:
        items, _ = await registry_service.list_organisations(
            session, registry_service.Listing(limit=500)
        )
    return sorted(items, key=lambda o: o.name)


def _org_field(organisations: list[Any]) -> Field:
    return Field(
        "organisation_id",
        N_("Organisation"),
        "select",
        [(str(o.id), o.name) for o in organisations if o.active],
        translate_options=False,
        help=N_("Leave empty only for an administrator."),
    )


def user_create_fields(organisations: list[Any]) -> tuple[Field, ...]:
    return (
        Field("name", N_("Name"), required=True),
        Field("email", N_("Email address"), "email", required=True),
        _org_field(organisations),
        Field("roles", N_("Roles"), "multi", ROLES),
        Field(
            "password",
            N_("Password"),
            "password",
            help=N_("Leave empty to generate one; it is shown once, after saving."),
        ),
    )


def user_edit_fields(organisations: list[Any]) -> tuple[Field, ...]:
    return (
        Field("name", N_("Name"), required=True),
        _org_field(organisations),
        Field("roles", N_("Roles"), "multi", ROLES),
        Field("active", N_("Active (may log in)"), "checkbox"),
    )


NOTICES = {
    "saved": N_("Saved."),
    "deactivated": N_("Deactivated; the person's sessions have ended."),
    "totp": N_("Second factor removed; the person sets up a new one at the next login."),
    "revoked": N_("Key revoked; it no longer works."),
}


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done") or ""
    return tr_of(request)(NOTICES[done]) if done in NOTICES else None


# --- users ---------------------------------------------------------------------------------------


async def _users_page(
    request: Request,
    person: Any,
    *,
    form: FormState | None = None,
    created: UserRead | None = None,
    password: str | None = None,
    status_code: int = 200,
) -> Response:
    organisations = await _organisations(request)
    async with _db(request).sessionmaker() as session:
        users, _ = await user_service.list_users(session, person, cursor=None, limit=500)
    return render(
        request,
        "admin/users.html",
        {
            "users": sorted(users, key=lambda u: (not u.active, u.name.lower())),
            "org_names": {o.id: o.name for o in organisations},
            "specs": user_create_fields(organisations),
            "form": form or FormState(values={"roles": []}),
            "created": created,
            "password": password,
            "notice": _notice(request),
        },
        status_code=status_code,
    )


@router.get("/ui/admin/users")
async def users_page(request: Request, person: AdminUser) -> Response:
    return await _users_page(request, person)


@router.post("/ui/admin/users")
async def create_user(request: Request, person: AdminUser) -> Response:
    """Create an account; without a password one is generated and shown once on the answer."""
    tr = tr_of(request)
    specs = user_create_fields(await _organisations(request))
    values = raw_values(await request.form(), specs)
    generated = None
    if not values.get("password"):
        generated = user_service.generate_password()
    data_values = {**values, "password": values.get("password") or generated}
    body, errors = parse_form(tr, UserCreate, data_values, specs)
    if body is not None:
        async with _db(request).sessionmaker() as session:
            try:
                created = await user_service.create_user(session, person, body)
                await session.commit()
            except DomainError as exc:
                await session.rollback()
                errors = problem_errors(tr, exc, [f.name for f in specs])
            else:
                return await _users_page(
                    request, person, created=created, password=generated, status_code=201
                )
    return await _users_page(
        request,
        person,
        form=FormState(values=values, errors=errors),
        status_code=status_for(request, 422),
    )


async def _user_page(
    request: Request,
    person: Any,
    user: UserRead,
    *,
    form: FormState | None = None,
    version: int | None = None,
    conflict: str | None = None,
    status_code: int = 200,
) -> Response:
    organisations = await _organisations(request)
    specs = user_edit_fields(organisations)
    values = {
        "name": user.name,
        "organisation_id": "" if user.organisation_id is None else str(user.organisation_id),
        "roles": [r.value for r in user.roles],
        "active": user.active,
    }
    return render(
        request,
        "admin/user.html",
        {
            "user": user,
            "org_names": {o.id: o.name for o in organisations},
            "specs": specs,
            "form": form or FormState(values=values),
            "version": user.version if version is None else version,
            "conflict": conflict,
        },
        status_code=status_code,
    )


@router.get("/ui/admin/users/{user_id}")
async def user_page(request: Request, user_id: uuid.UUID, person: AdminUser) -> Response:
    async with _db(request).sessionmaker() as session:
        user = await user_service.get_user(session, person, user_id)
    return await _user_page(request, person, user)


def _version(raw: object) -> str | None:
    text = str(raw or "").strip()
    return etag(int(text)) if text.isdigit() and len(text) < 12 else None


@router.post("/ui/admin/users/{user_id}")
async def save_user(request: Request, user_id: uuid.UUID, person: AdminUser) -> Response:
    """Save name, organisation, roles, active; or deactivate, or reset the second factor."""
    tr = tr_of(request)
    form = await request.form()
    if_match = _version(form.get("version"))
    action = str(form.get("action") or "save")
    specs = user_edit_fields(await _organisations(request))
    body: UserUpdate | None
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if action == "deactivate":
        body = UserUpdate(active=False)
    elif action == "reset_totp":
        body = UserUpdate(reset_totp=True)
    else:
        values = raw_values(form, specs)
        body, errors = parse_form(tr, UserUpdate, values, specs, clear_empty=True)
    stale = False
    if body is not None:
        async with _db(request).sessionmaker() as session:
            try:
                await user_service.update_user(session, person, user_id, body, if_match)
                await session.commit()
            except PreconditionFailed:
                await session.rollback()
                stale = True
            except DomainError as exc:
                await session.rollback()
                errors = problem_errors(tr, exc, [f.name for f in specs])
        if not stale and not errors:
            done = {"deactivate": "deactivated", "reset_totp": "totp"}.get(action, "saved")
            return RedirectResponse(f"/ui/admin/users/{user_id}?done={done}", status_code=303)
    if stale:
        async with _db(request).sessionmaker() as session:
            current = await user_service.get_user(session, person, user_id)
        conflict = tr(
            "Someone else changed this account after you opened it. Nothing was "
            "saved; reload the page to see the current values."
        )
        return await _user_page(
            request,
            person,
            current,
            form=FormState(values=values) if values else None,
            version=int(if_match.strip('"')) if if_match else None,
            conflict=conflict,
            status_code=status_for(request, 412),
        )
    async with _db(request).sessionmaker() as session:
        user = await user_service.get_user(session, person, user_id)
    return await _user_page(
        request,
        person,
        user,
        form=FormState(values=values, errors=errors),
        status_code=status_for(request, 422),
    )


# --- API keys ------------------------------------------------------------------------------------


def key_fields(organisations: list[Any]) -> tuple[Field, ...]:
    return (
        Field("name", N_("Name"), required=True, help=N_("What the key is for, e.g. the system")),
        _org_field(organisations),
        Field("roles", N_("Roles"), "multi", ROLES),
    )


async def _keys_page(
    request: Request,
    person: Any,
    *,
    form: FormState | None = None,
    issued: Any = None,
    status_code: int = 200,
) -> Response:
    organisations = await _organisations(request)
    async with _db(request).sessionmaker() as session:
        keys = await auth_service.list_keys(session, person)
    return render(
        request,
        "admin/keys.html",
        {
            "keys": keys,
            "org_names": {o.id: o.name for o in organisations},
            "specs": key_fields(organisations),
            "form": form or FormState(values={"roles": []}),
            "issued": issued,
            "notice": _notice(request),
        },
        status_code=status_code,
    )


@router.get("/ui/admin/keys")
async def keys_page(request: Request, person: AdminUser) -> Response:
    return await _keys_page(request, person)


@router.post("/ui/admin/keys")
async def issue_key(request: Request, person: AdminUser) -> Response:
    """Issue a key: the answer shows it once (only its hash is kept)."""
    tr = tr_of(request)
    specs = key_fields(await _organisations(request))
    values = raw_values(await request.form(), specs)
    body, errors = parse_form(tr, ApiKeyCreate, values, specs)
    if body is not None:
        async with _db(request).sessionmaker() as session:
            try:
                person.require(Role.ADMIN)
                # A person is no key: created_by names keys only (the table's foreign key).
                issued = await auth_service.issue_key(
                    session, body, created_by=None if person.is_person else person.key_id
                )
                await session.commit()
            except DomainError as exc:
                await session.rollback()
                errors = problem_errors(tr, exc, [f.name for f in specs])
            else:
                return await _keys_page(request, person, issued=issued, status_code=201)
    return await _keys_page(
        request,
        person,
        form=FormState(values=values, errors=errors),
        status_code=status_for(request, 422),
    )


@router.post("/ui/admin/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: uuid.UUID, person: AdminUser) -> Response:
    person.require(Role.ADMIN)
    async with _db(request).sessionmaker() as session:
        await auth_service.revoke_key(session, key_id)
        await session.commit()
    request.app.state.key_resolver.forget()
    return RedirectResponse("/ui/admin/keys?done=revoked", status_code=303)
