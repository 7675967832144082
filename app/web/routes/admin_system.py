"""Console pages for integrations and oversight: webhooks, triage rule sets, the access log.

The access log (NEN 7513) is read through the audit service, which writes every read of the
log to the log itself, as the API's ``GET /v1/audit`` does; its routes are audited page routes,
so a refused read is logged too.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from app.audit import service as audit_service
from app.auth import service as auth_service
from app.auth import users as user_service
from app.db import Database, utcnow
from app.errors import DomainError, InvalidInput
from app.registry import service as registry_service
from app.triage import service as triage_service
from app.triage.schemas import MAX_SOURCE_CHARS, RuleSetUpload
from app.web.deps import AdminUser, AuditedPageRoute, WebAudit
from app.web.i18n import N_
from app.web.routes.admin_common import status_for, tr_of
from app.web.templating import LOCAL_TZ, render
from app.webhooks import service as webhook_service
from app.webhooks.schemas import DeliveryStatus

router = APIRouter(include_in_schema=False)
audited = APIRouter(include_in_schema=False, route_class=AuditedPageRoute)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


# --- webhooks ------------------------------------------------------------------------------------


async def _org_names(request: Request) -> dict[uuid.UUID, str]:
    async with _db(request).sessionmaker() as session:
        items, _ = await registry_service.list_organisations(
            session, registry_service.Listing(limit=500)
        )
    return {o.id: o.name for o in items}


@router.get("/ui/admin/webhooks")
async def webhooks_page(request: Request, person: AdminUser) -> Response:
    async with _db(request).sessionmaker() as session:
        subs, _ = await webhook_service.list_subscriptions(
            session, person, organisation_id=None, cursor=None, limit=200
        )
    done = request.query_params.get("done")
    tr = tr_of(request)
    return render(
        request,
        "admin/webhooks.html",
        {
            "subscriptions": subs,
            "org_names": await _org_names(request),
            "notice": tr("Subscription stopped.") if done == "stopped" else None,
        },
    )


@router.get("/ui/admin/webhooks/{subscription_id}")
async def deliveries_page(
    request: Request, subscription_id: uuid.UUID, person: AdminUser
) -> Response:
    raw_status = request.query_params.get("status") or ""
    status = DeliveryStatus(raw_status) if raw_status in set(DeliveryStatus) else None
    cursor = request.query_params.get("cursor") or None
    async with _db(request).sessionmaker() as session:
        sub = await webhook_service.get_subscription(session, person, subscription_id)
        deliveries, nxt = await webhook_service.list_deliveries(
            session, person, subscription_id, status=status, cursor=cursor, limit=50
        )
    return render(
        request,
        "admin/deliveries.html",
        {
            "sub": sub,
            "deliveries": deliveries,
            "next_cursor": nxt,
            "status": status.value if status else "",
            "statuses": [s.value for s in DeliveryStatus],
            "org_names": await _org_names(request),
        },
    )


@router.post("/ui/admin/webhooks/{subscription_id}/stop")
async def stop_subscription(
    request: Request, subscription_id: uuid.UUID, person: AdminUser
) -> Response:
    async with _db(request).sessionmaker() as session:
        await webhook_service.delete_subscription(session, person, subscription_id, now=utcnow())
        await session.commit()
    return RedirectResponse("/ui/admin/webhooks?done=stopped", status_code=303)


# --- triage rule sets ----------------------------------------------------------------------------


async def _rules_page(
    request: Request,
    *,
    refused: InvalidInput | None = None,
    upload_error: str | None = None,
    status_code: int = 200,
) -> Response:
    async with _db(request).sessionmaker() as session:
        rule_sets = await triage_service.list_rule_sets(session, now=utcnow())
    return render(
        request,
        "admin/rules.html",
        {
            "rule_sets": rule_sets,
            "refused": refused,
            "upload_error": upload_error,
            "notice": None,
        },
        status_code=status_code,
    )


@router.get("/ui/admin/rules")
async def rules_page(request: Request, person: AdminUser) -> Response:
    return await _rules_page(request)


@router.post("/ui/admin/rules")
async def upload_rules(request: Request, person: AdminUser) -> Response:
    """Load a rule set from an uploaded YAML file; a refused one shows its problems by rule and
    line, a loaded one its static-check report."""
    tr = tr_of(request)
    source: str | None = None
    problem: str | None = None
    async with request.form() as form:  # closes the uploaded file's spool
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            problem = tr("Choose a YAML file.")
        else:
            data = await upload.read(MAX_SOURCE_CHARS * 4 + 1)
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError:
                problem = tr("The file is not UTF-8 text.")
    if source is not None and not source.strip():
        problem = tr("The file is empty.")
    elif source is not None and len(source) > MAX_SOURCE_CHARS:
        problem = tr("The file is longer than %(n)s characters.", n=MAX_SOURCE_CHARS)
    if problem is not None or source is None:
        return await _rules_page(
            request, upload_error=problem, status_code=status_for(request, 422)
        )
    try:
        body = RuleSetUpload(source=source)
    except ValidationError as exc:
        reasons = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        return await _rules_page(
            request, upload_error=reasons, status_code=status_for(request, 422)
        )
    async with _db(request).sessionmaker() as session:
        try:
            loaded = await triage_service.load_rule_set(session, person, body, now=utcnow())
            await session.commit()
        except InvalidInput as exc:
            await session.rollback()
            return await _rules_page(request, refused=exc, status_code=status_for(request, 422))
        except DomainError as exc:
            await session.rollback()
            return await _rules_page(
                request, upload_error=exc.detail, status_code=status_for(request, exc.status)
            )
    return RedirectResponse(f"/ui/admin/rules/{loaded.version}?done=loaded", status_code=303)


RULE_ID_LINE = re.compile(r"^\s*(?:-\s+)?id:\s*['\"]?([^'\"\s#]+)")


def rule_lines(source: str) -> dict[str, int]:
    """The line of each ``id:`` in the YAML text, so a finding names the line of its rule."""
    found: dict[str, int] = {}
    for number, line in enumerate(source.splitlines(), start=1):
        match = RULE_ID_LINE.match(line)
        if match:
            found.setdefault(match.group(1), number)
    return found


VERSION = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,59}$")


async def _rule_page(
    request: Request, version: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    if not VERSION.match(version):
        raise InvalidInput(f"{version[:60]!r} is not a rule-set version.")
    async with _db(request).sessionmaker() as session:
        rule_set = await triage_service.get_rule_set(session, version, now=utcnow())
    tr = tr_of(request)
    notices = {
        "loaded": tr("Rule set loaded. Check the report below, then activate it."),
        "activated": tr("Rule set activated: every triage uses it from now on."),
    }
    return render(
        request,
        "admin/rule.html",
        {
            "rule_set": rule_set,
            "rule_lines": rule_lines(rule_set.source),
            "error": error,
            "notice": notices.get(request.query_params.get("done") or ""),
        },
        status_code=status_code,
    )


@router.get("/ui/admin/rules/{version}")
async def rule_page(request: Request, version: str, person: AdminUser) -> Response:
    return await _rule_page(request, version)


@router.post("/ui/admin/rules/{version}/activate")
async def activate_rules(request: Request, version: str, person: AdminUser) -> Response:
    if not VERSION.match(version):
        raise InvalidInput(f"{version[:60]!r} is not a rule-set version.")
    async with _db(request).sessionmaker() as session:
        try:
            await triage_service.activate_rule_set(session, person, version, now=utcnow())
            await session.commit()
        except DomainError as exc:
            await session.rollback()
            if exc.status == 404:
                raise
            return await _rule_page(
                request, version, error=exc.detail, status_code=status_for(request, exc.status)
            )
    return RedirectResponse(f"/ui/admin/rules/{version}?done=activated", status_code=303)


# --- the access log (NEN 7513) -------------------------------------------------------------------

PATIENT_KEY = re.compile(r"^[0-9a-f]{64}$")
ACTIONS = [
    ("C", N_("C: create")),
    ("R", N_("R: read")),
    ("U", N_("U: update")),
    ("D", N_("D: delete")),
    ("E", N_("E: execute / search")),
]
OUTCOMES = [("success", N_("success")), ("failure", N_("failure"))]


def _local_time(text: str) -> datetime:
    """A ``datetime-local`` value (Dutch wall-clock time) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ)


def _audit_query(
    request: Request, *, patient_key: str | None = None
) -> tuple[audit_service.AuditQuery | None, dict[str, str], dict[str, str]]:
    """The filters of the query string; errors by field when one is not valid."""
    tr = tr_of(request)
    q = request.query_params
    names = ("from", "to", "actor", "action", "outcome", "patient_key")
    values = {name: (q.get(name) or "").strip() for name in names}
    errors: dict[str, str] = {}
    since = until = None
    for name in ("from", "to"):
        if values[name]:
            try:
                moment = _local_time(values[name])
            except ValueError:
                errors[name] = tr("Enter a date and time (YYYY-MM-DDTHH:MM).")
                continue
            if name == "from":
                since = moment
            else:
                until = moment
    actor = None
    if values["actor"]:
        try:
            actor = uuid.UUID(values["actor"])
        except ValueError:
            errors["actor"] = tr("Choose a user or key from the list, or enter its id.")
    if values["action"] and values["action"] not in {a for a, _ in ACTIONS}:
        errors["action"] = tr("Choose an action from the list.")
    if values["outcome"] and values["outcome"] not in {o for o, _ in OUTCOMES}:
        errors["outcome"] = tr("Choose an outcome from the list.")
    key = patient_key if patient_key is not None else values["patient_key"]
    if key and not PATIENT_KEY.match(key):
        errors["patient_key"] = tr("A patient key is 64 characters 0-9 and a-f.")
    if errors:
        return None, values, errors
    query = audit_service.AuditQuery(
        patient_key=key or None,
        key_id=actor,
        since=since,
        until=until,
        outcome=values["outcome"] or None,
        action=values["action"] or None,
        cursor=q.get("cursor") or None,
        limit=100,
    )
    return query, values, errors


async def _actors(request: Request, person: Any) -> list[tuple[str, str]]:
    async with _db(request).sessionmaker() as session:
        users, _ = await user_service.list_users(session, person, cursor=None, limit=500)
        keys = await auth_service.list_keys(session, person)
    return [
        *((str(u.id), f"{u.name} <{u.email}>") for u in sorted(users, key=lambda u: u.name)),
        *((str(k.id), f"🔑 {k.name} ({k.prefix})") for k in keys),
    ]


async def _audit_page(
    request: Request, person: Any, ctx: Any, *, patient_key: str | None = None
) -> Response:
    query, values, errors = _audit_query(request, patient_key=patient_key)
    entries: list[Any] = []
    nxt = None
    if query is not None:
        async with _db(request).sessionmaker() as session:
            entries, nxt = await audit_service.list_entries(session, ctx, query)
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "lang")]
    return render(
        request,
        "admin/audit.html",
        {
            "entries": entries,
            "next_cursor": nxt,
            "params": params,
            "values": values,
            "errors": errors,
            "actions": ACTIONS,
            "outcomes": OUTCOMES,
            "actors": await _actors(request, person),
            "patient_key": patient_key,
            "local_tz": LOCAL_TZ,
            "notice": None,
        },
        status_code=status_for(request, 422) if errors else 200,
    )


@audited.get("/ui/admin/audit")
async def audit_page(request: Request, person: AdminUser, ctx: WebAudit) -> Response:
    """The access log with filters, oldest first (reading it is logged)."""
    return await _audit_page(request, person, ctx)


@audited.get("/ui/admin/audit/patient/{patient_key}")
async def patient_audit_page(
    request: Request, patient_key: str, person: AdminUser, ctx: WebAudit
) -> Response:
    """Every access to one pseudonymous patient key, in order (reading it is logged)."""
    return await _audit_page(request, person, ctx, patient_key=patient_key)
