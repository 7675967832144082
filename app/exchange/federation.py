"""Federation with partner regions (docs/federation.md): partners, the cache of their units, the
partner hits of an escalated search, holds forwarded to a partner and their state coming back.

A partner is another JuistePlek instance. Its units are read-only copies taken from its capacity
snapshot (``GET /v1/capacity-snapshot``), which carries only the partner's own units: this
instance's exports never carry the copies either (they live in ``partner_unit``), so no unit
travels further than one hop and two partners cannot loop. Nothing of a partner is invented: a
partner that does not answer keeps its last figures, marked unreachable and stale, with the time
they were fetched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.audit import service as audit_service
from app.audit.service import AuditContext, AuditEntry
from app.capacity import ranking
from app.config import Settings
from app.db import Database
from app.enums import Feature, codes_of
from app.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from app.exchange.models import Partner, PartnerHold, PartnerUnit
from app.exchange.partner_schemas import PartnerCreate, PartnerRead
from app.placement import access
from app.placement.errors import (
    ConcurrentChange,
    ConsentRequired,
    InvalidTransition,
    NoCapacity,
    UnitNotAccepting,
)
from app.placement.models import Placement
from app.placement.schemas import HoldCreate, HoldRead
from app.placement.service import _transition
from app.placement.states import Action, EventType, IllegalTransition, State, next_state
from app.placement.suitability import ROOM_POLICIES
from app.secretbox import SecretBox

log = structlog.get_logger("juisteplek.federation")

# A partner's answer larger than this is refused (a national snapshot is ~10k rows, ~10 MB).
MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
MAX_PARTNERS = 100


class PartnerUnavailable(ServiceUnavailable):
    type_slug = "partner-unavailable"
    title = "The partner region does not answer"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "30"})


def secret_box(settings: Settings) -> SecretBox:
    """The box that encrypts partner keys at rest: the one of webhook secrets
    (``JUISTEPLEK_SECRETS_KEY``, old keys during a rotation)."""
    return settings.secret_box()


# --- partners (admin) ---------------------------------------------------------------------------


def _read(p: Partner, units: int) -> PartnerRead:
    return PartnerRead(
        id=p.id,
        label=p.label,
        base_url=p.base_url,
        created_at=p.created_at,
        reachable=p.reachable,
        last_fetch_at=p.last_fetch_at,
        last_attempt_at=p.last_attempt_at,
        last_error=p.last_error,
        unit_count=units,
    )


async def _unit_counts(session: AsyncSession) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(PartnerUnit.partner_id, func.count()).group_by(PartnerUnit.partner_id)
    )
    return {pid: int(n) for pid, n in rows.all()}


async def create_partner(
    session: AsyncSession, body: PartnerCreate, *, settings: Settings
) -> PartnerRead:
    """Follow a partner region (the route admits admins only)."""
    base = str(body.base_url).rstrip("/")
    taken = await session.scalar(
        select(Partner.id).where(Partner.base_url == base, Partner.deleted_at.is_(None))
    )
    if taken is not None:
        raise Conflict(f"Partner {taken} already has the base URL {base}.")
    count = await session.scalar(
        select(func.count()).select_from(Partner).where(Partner.deleted_at.is_(None))
    )
    if (count or 0) >= MAX_PARTNERS:
        raise Conflict(f"An instance follows at most {MAX_PARTNERS} partner regions.")
    partner = Partner(
        label=body.label,
        base_url=base,
        key_sealed=secret_box(settings).seal(body.key.get_secret_value()),
        active=True,
        reachable=False,
    )
    session.add(partner)
    await session.flush()
    return _read(partner, 0)


async def list_partners(session: AsyncSession) -> list[PartnerRead]:
    counts = await _unit_counts(session)
    partners = await session.scalars(
        select(Partner).where(Partner.deleted_at.is_(None)).order_by(Partner.created_at, Partner.id)
    )
    return [_read(p, counts.get(p.id, 0)) for p in partners]


async def delete_partner(
    session: AsyncSession, partner_id: uuid.UUID, *, now: datetime
) -> PartnerRead:
    """Stop following the partner and forget its units (its forwarded holds stay recorded)."""
    partner = await session.get(Partner, partner_id)
    if partner is None or partner.deleted_at is not None:
        raise NotFound(f"No partner {partner_id}.")
    partner.active = False
    partner.deleted_at = now
    await session.execute(delete(PartnerUnit).where(PartnerUnit.partner_id == partner_id))
    await session.flush()
    return _read(partner, 0)


async def active_partners(db: Database) -> list[Partner]:
    async with db.sessionmaker() as session:
        return list(
            await session.scalars(
                select(Partner).where(Partner.active, Partner.deleted_at.is_(None))
            )
        )


# --- the cache ----------------------------------------------------------------------------------


def _unit_row(partner_id: uuid.UUID, item: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """One snapshot row of the partner as a ``partner_unit`` row (raises on a malformed row)."""

    def when(value: Any) -> datetime | None:
        return None if value in (None, "") else datetime.fromisoformat(str(value))

    return {
        "id": uuid.uuid4(),
        "partner_id": partner_id,
        "remote_unit_id": uuid.UUID(str(item["unit_id"])),
        "unit_name": str(item["unit_name"])[:200],
        "care_type": str(item["care_type"]),
        "target_groups": [str(g) for g in item.get("target_groups") or []],
        "features": [str(f) for f in item.get("features") or []],
        "sex_policy": str(item.get("sex_policy") or "any"),
        "organisation_id": uuid.UUID(str(item["organisation_id"])),
        "organisation_name": str(item["organisation_name"])[:200],
        "location_id": uuid.UUID(str(item["location_id"])),
        "location_name": str(item["location_name"])[:200],
        "address": str(item.get("address") or "")[:300],
        "postcode": str(item.get("postcode") or "")[:10],
        "municipality": str(item.get("municipality") or "")[:100],
        "phone": None if item.get("phone") is None else str(item["phone"])[:50],
        "latitude": float(item.get("latitude") or 0.0),
        "longitude": float(item.get("longitude") or 0.0),
        "subregion_code": str(item.get("subregion") or "")[:64],
        "staffed": int(item["staffed"]),
        "free": int(item["free"]),
        "held": int(item["held"]),
        "available": int(item["available"]),
        "expected_free_24h": (
            None if item.get("expected_free_24h") is None else int(item["expected_free_24h"])
        ),
        "accepting": bool(item["accepting"]),
        "not_accepting_reason": item.get("not_accepting_reason"),
        "not_accepting_detail": (
            None
            if item.get("not_accepting_detail") is None
            else str(item["not_accepting_detail"])[:500]
        ),
        "not_accepting_until": when(item.get("not_accepting_until")),
        "reported_at": when(item.get("reported_at")),
        "stale": bool(item["stale"]),
        "fetched_at": now,
    }


async def store_snapshot(
    db: Database, partner_id: uuid.UUID, items: Sequence[Mapping[str, Any]], *, now: datetime
) -> int:
    """Replace the partner's cached units with its snapshot, in one transaction."""
    rows = [_unit_row(partner_id, item, now) for item in items]
    async with db.sessionmaker() as session:
        partner = await session.get(Partner, partner_id)
        if partner is None or not partner.active:
            return 0
        await session.execute(delete(PartnerUnit).where(PartnerUnit.partner_id == partner_id))
        if rows:
            await session.execute(insert(PartnerUnit), rows)
        partner.reachable = True
        partner.last_fetch_at = now
        partner.last_attempt_at = now
        partner.last_error = None
        await session.commit()
    return len(rows)


async def mark_unreachable(
    db: Database, partner_id: uuid.UUID, error: str, *, now: datetime
) -> bool:
    """Record a failed pull; True when the partner was reachable until now."""
    async with db.sessionmaker() as session:
        partner = await session.get(Partner, partner_id)
        if partner is None:
            return False
        was = partner.reachable
        partner.reachable = False
        partner.last_attempt_at = now
        partner.last_error = error[:500]
        await session.commit()
    return was


# --- search -------------------------------------------------------------------------------------


def _fits(
    u: PartnerUnit,
    *,
    care_types: Sequence[str],
    target_groups: Sequence[str],
    sex: str | None,
    features: Sequence[str],
) -> bool:
    if u.care_type not in care_types:
        return False
    if any(g not in u.target_groups for g in target_groups):
        return False
    if any(f not in u.features for f in features):
        return False
    return sex is None or u.sex_policy in ROOM_POLICIES.get(sex, ("any",))


async def partner_hits(
    db: Database,
    *,
    care_types: Sequence[str],
    target_groups: Sequence[str],
    sex: str | None,
    features: Sequence[str],
    near: tuple[float, float] | None,
    include_stale: bool,
    include_not_accepting: bool,
    limit: int,
    rank: int,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Partner units matching the query as availability hits (after the own ones: ``rank``), and
    every active partner's state. A unit of an unreachable partner is stale (its figures are as
    last fetched) and listed only with ``include_stale``."""
    async with db.sessionmaker() as session:
        partners = {
            p.id: p
            for p in await session.scalars(
                select(Partner).where(Partner.active, Partner.deleted_at.is_(None))
            )
        }
        units = list(
            await session.scalars(
                select(PartnerUnit).where(
                    PartnerUnit.partner_id.in_(list(partners)),
                    PartnerUnit.care_type.in_(list(care_types)),
                )
            )
        )
    states = [
        {
            "id": p.id,
            "label": p.label,
            "reachable": p.reachable,
            "last_fetch_at": p.last_fetch_at,
            "last_error": p.last_error,
        }
        for p in sorted(partners.values(), key=lambda p: (p.label, str(p.id)))
    ]
    hits: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for u in units:
        partner = partners[u.partner_id]
        if u.reported_at is None:
            continue  # never reported at the partner: nothing to show
        if not _fits(
            u, care_types=care_types, target_groups=target_groups, sex=sex, features=features
        ):
            continue
        stale = u.stale or not partner.reachable
        if stale and not include_stale:
            continue
        if not u.accepting and not include_not_accepting:
            continue
        if u.accepting and u.available <= 0 and not include_not_accepting:
            continue
        distance = (
            None
            if near is None
            else round(ranking.haversine_km(near[0], near[1], u.latitude, u.longitude), 2)
        )
        hit = _hit(
            u,
            partner,
            rank=rank,
            stale=stale,
            distance=distance,
            now=now,
            wanted=(target_groups, sex, features),
        )
        key = (not u.accepting, distance or 0.0, -u.reported_at.timestamp(), str(u.remote_unit_id))
        hits.append((key, hit))
    hits.sort(key=lambda pair: pair[0])
    return [h for _, h in hits[:limit]], states


def _hit(
    u: PartnerUnit,
    partner: Partner,
    *,
    rank: int,
    stale: bool,
    distance: float | None,
    now: datetime,
    wanted: tuple[Sequence[str], str | None, Sequence[str]],
) -> dict[str, Any]:
    assert u.reported_at is not None
    target_groups, sex, features = wanted
    reasons = ranking.match_reasons(
        care_type=u.care_type,
        wanted_target_groups=list(target_groups),
        sex=sex,
        sex_policy=u.sex_policy,
        wanted_features=list(features),
        subregion_code=u.subregion_code,
        escalation_rank=None,
        stale=stale,
    )
    reasons[-1 if not stale else -2] = f"partner region {partner.label}"
    if not partner.reachable:
        reasons.append(
            f"partner region {partner.label} does not answer; figures as fetched at "
            f"{u.fetched_at.isoformat()}"
        )
    return {
        "unit_id": u.remote_unit_id,
        "unit_name": u.unit_name,
        "care_type": u.care_type,
        "label": None,
        "target_groups": u.target_groups,
        "sex_policy": u.sex_policy,
        "features": u.features,
        "staffed_capacity": u.staffed,
        "available": u.available,
        "reported_free": u.free,
        "held": u.held,
        "expected_free_24h": u.expected_free_24h,
        "organisation": {"id": u.organisation_id, "name": u.organisation_name},
        "location": {
            "id": u.location_id,
            "name": u.location_name,
            "address": u.address,
            "postcode": u.postcode,
            "municipality": u.municipality,
            "latitude": u.latitude,
            "longitude": u.longitude,
            "phone": u.phone,
        },
        "subregion": {"id": None, "code": u.subregion_code, "name": u.subregion_code},
        "escalation_level": "national",
        "escalation_rank": rank,
        "distance_km": distance,
        "reported_at": u.reported_at,
        "age_minutes": ranking.age_minutes(u.reported_at, now),
        "stale": stale,
        "accepting": u.accepting,
        "not_accepting_reason": None if u.accepting else u.not_accepting_reason,
        "not_accepting_detail": None if u.accepting else u.not_accepting_detail,
        "not_accepting_until": None if u.accepting else u.not_accepting_until,
        "matched_because": reasons,
        "source": {
            "partner_id": partner.id,
            "region": partner.label,
            "reported_at": u.reported_at,
            "fetched_at": u.fetched_at,
            "reachable": partner.reachable,
            "read_only": True,
        },
    }


# --- forwarded holds ----------------------------------------------------------------------------


def client(partner: Partner, settings: Settings) -> httpx.AsyncClient:
    key = secret_box(settings).open(partner.key_sealed)
    return httpx.AsyncClient(
        base_url=partner.base_url,
        headers={"Authorization": f"Bearer {key}", "User-Agent": "juisteplek-federation"},
        timeout=settings.partner_timeout_seconds,
    )


async def partner_unit(session: AsyncSession, unit_id: uuid.UUID) -> PartnerUnit | None:
    return (
        await session.scalars(
            select(PartnerUnit)
            .join(Partner, Partner.id == PartnerUnit.partner_id)
            .where(PartnerUnit.remote_unit_id == unit_id, Partner.active)
            .limit(1)
        )
    ).first()


def _remote_problem(r: httpx.Response, label: str) -> Exception:
    """The partner's refusal as this instance's problem (its type and detail kept)."""
    try:
        body = r.json()
    except ValueError:
        body = {}
    detail = f"Partner region {label} refused the hold: {body.get('detail') or r.text[:200]}"
    extra = {"partner_status": r.status_code, "partner_type": body.get("type")}
    if r.status_code == 409:
        slug = str(body.get("type") or "").rsplit("/", 1)[-1]
        kind = {"no-capacity": NoCapacity, "unit-not-accepting": UnitNotAccepting}.get(
            slug, Conflict
        )
        return kind(detail, extra=extra)
    if r.status_code in (400, 403, 404, 422):
        return InvalidInput(
            detail, errors=[{"pointer": "#/unit_id", "detail": detail}], extra=extra
        )
    return PartnerUnavailable(detail)


async def forward_hold(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: HoldCreate,
    unit: PartnerUnit,
    *,
    now: datetime,
    settings: Settings,
) -> HoldRead:
    """Hold a place on a partner's unit: a placement at the partner (minimal pseudonymous data,
    triaged with this placement's care type) and a hold there under the partner's own rules;
    here the placement moves to ``offered`` with an ``offer_sent`` event naming the partner."""
    p = await session.get(Placement, placement_id)
    if p is None:
        raise NotFound(f"No placement {placement_id}.")
    access.require_manage(ctx.principal, p.referrer_organisation_id, p.region_id)
    try:
        next_state(State(p.state), Action.HOLD)
    except IllegalTransition as exc:
        raise InvalidTransition.of(exc) from None
    if p.consent_given_at is None:
        raise ConsentRequired(
            "The patient's consent to share with follow-up care is not recorded; post a "
            "consent_given event first (docs/domain.md §10)."
        )
    partner = await session.get(Partner, unit.partner_id)
    assert partner is not None
    remote = {
        "origin_setting": p.origin_setting,
        "patient_identifier": p.patient_key[:64],
        "birth_year": p.birth_year,
        "sex": p.sex,
        "target_group": p.target_group,
        "care_type": p.care_type,
        "features": [f.value for f in codes_of(p.feature_mask, Feature)],
        "care_needs": p.care_needs,
        "urgency": {"system": p.urgency_system, "code": p.urgency_code},
        "consent_given_at": p.consent_given_at.isoformat(),
        "triage": {"care_type": p.care_type, "rule_set": "partner", "outcome": "forwarded"},
    }
    try:
        async with client(partner, settings) as http:
            made = await http.post("/v1/placements", json=remote)
            if made.status_code != 201:
                raise _remote_problem(made, partner.label)
            remote_id = uuid.UUID(made.json()["id"])
            held = await http.post(
                f"/v1/placements/{remote_id}/holds", json={"unit_id": str(unit.remote_unit_id)}
            )
            if held.status_code != 201:
                # The partner's placement without a hold is cancelled, best effort.
                await http.post(
                    f"/v1/placements/{remote_id}/cancel", json={"reason": "placed_elsewhere"}
                )
                raise _remote_problem(held, partner.label)
    except httpx.HTTPError as exc:
        log.warning("partner_hold_failed", partner=partner.label, error=str(exc))
        raise PartnerUnavailable(
            f"Partner region {partner.label} does not answer ({type(exc).__name__}); "
            "nothing was held there."
        ) from None
    remote_hold = held.json()
    expires_at = datetime.fromisoformat(remote_hold["expires_at"])
    link = PartnerHold(
        id=uuid.uuid4(),
        placement_id=placement_id,
        partner_id=partner.id,
        remote_unit_id=unit.remote_unit_id,
        remote_placement_id=remote_id,
        remote_hold_id=uuid.UUID(remote_hold["id"]),
        remote_state="offered",
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )
    session.add(link)
    p.current_hold_id = link.id
    payload = {
        "partner_id": str(partner.id),
        "partner": partner.label,
        "unit_id": str(unit.remote_unit_id),
        "remote_placement_id": str(remote_id),
        "remote_hold_id": remote_hold["id"],
        "expires_at": expires_at,
    }
    try:
        await _transition(session, ctx, p, Action.HOLD, at=now, now=now, payload=payload)
    except ConcurrentChange:
        raise
    await audit_service.append(
        session,
        ctx,
        [
            AuditEntry(
                event_code="placement.hold",
                action="U",
                object_id=str(placement_id),
                patient_key=p.patient_key,
                detail={"partner": partner.label, "unit_id": unit.remote_unit_id},
            )
        ],
        now=now,
    )
    return HoldRead(
        id=link.id,
        placement_id=placement_id,
        unit_id=unit.remote_unit_id,
        organisation_id=unit.organisation_id,
        status="active",
        created_at=now,
        expires_at=expires_at,
    )


# The partner's placement state -> the local action and event (accept, decline, expiry, cancel).
_REMOTE_END = {"hold_expired": Action.EXPIRE, "offer_declined": Action.DECLINE}


async def open_links(db: Database, partner_id: uuid.UUID) -> list[tuple[PartnerHold, str]]:
    """Forwarded holds still open at the partner, each with the local placement's state."""
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(PartnerHold, Placement.state)
            .join(Placement, Placement.id == PartnerHold.placement_id)
            .where(
                PartnerHold.partner_id == partner_id,
                PartnerHold.remote_state.in_(("offered", "accepted")),
            )
        )
        return [(row[0], str(row[1])) for row in rows.all()]


async def apply_remote(
    db: Database,
    link_id: uuid.UUID,
    remote_state: str,
    remote_events: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
) -> str | None:
    """Bring the partner placement's new state into the local placement's transfer log; returns
    the local event written, or None when nothing changed."""
    async with db.sessionmaker() as session:
        link = await session.get(PartnerHold, link_id)
        if link is None or link.remote_state == remote_state:
            return None
        p = await session.get(Placement, link.placement_id)
        partner = await session.get(Partner, link.partner_id)
        if p is None or partner is None:
            return None
        last = {str(e.get("type")): e for e in remote_events}
        payload = {
            "partner": partner.label,
            "remote_placement_id": str(link.remote_placement_id),
            "unit_id": str(link.remote_unit_id),
        }
        wrote: str | None = None
        ours = p.current_hold_id == link.id
        if remote_state == "accepted" and ours and p.state == State.OFFERED:
            at = _occurred(last.get(EventType.OFFER_ACCEPTED), now)
            await _transition(
                session,
                None,
                p,
                Action.ACCEPT,
                at=max(at, p.last_event_at),
                now=now,
                payload=payload,
            )
            wrote = EventType.OFFER_ACCEPTED
        elif remote_state == "transferred" and ours and p.state == State.ACCEPTED:
            at = _occurred(last.get(EventType.TRANSFERRED), now)
            await _transition(
                session,
                None,
                p,
                Action.ADMIT,
                at=max(at, p.last_event_at),
                now=now,
                payload=payload,
            )
            wrote = EventType.TRANSFERRED
        elif remote_state in ("triaged", "cancelled") and ours and p.state == State.OFFERED:
            ended = last.get(EventType.OFFER_DECLINED) or last.get(EventType.HOLD_EXPIRED)
            kind = str(ended.get("type")) if ended is not None else "hold_expired"
            action = _REMOTE_END.get(kind, Action.EXPIRE)
            reason = None if ended is None else ended.get("reason")
            p.current_hold_id = None
            await _transition(
                session,
                None,
                p,
                action,
                at=max(_occurred(ended, now), p.last_event_at),
                now=now,
                reason=str(reason)
                if reason
                else ("expired" if action == Action.EXPIRE else "other"),
                payload=payload,
            )
            wrote = kind
        link.remote_state = remote_state
        link.updated_at = now
        await session.commit()
        return wrote


def _occurred(event: Mapping[str, Any] | None, now: datetime) -> datetime:
    if event is None or not event.get("occurred_at"):
        return now
    return datetime.fromisoformat(str(event["occurred_at"]))


def record_pull(label: str, ok: bool, fetched_at: datetime | None) -> None:
    metrics.PARTNER_PULLS.labels(partner=label, outcome="ok" if ok else "error").inc()
    metrics.PARTNER_REACHABLE.labels(partner=label).set(1 if ok else 0)
    if fetched_at is not None:
        metrics.PARTNER_LAST_FETCH.labels(partner=label).set(fetched_at.timestamp())
