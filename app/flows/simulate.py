"""A simulated stretch of days for the demo region, written through the service layer.

Every change goes through the same service functions the API uses (placement create with
embedded triage, holds, accept/decline, admit, cancel, clinical events, escalation, the hold
sweeper, bulk capacity reports, inflow reports), with the simulated clock passed as ``now``, so
the transfer log, the audit log and the KPIs see exactly what real clients would produce.
Deterministic for a seed (placement ids are random UUIDs, but every count and time is fixed).

Shape [A, plausible for ROAZ West, docs/domain.md §11]: ~16 referrals a day with a winter peak
(+30 % in January), a weekly rhythm (busiest Monday, a quiet weekend) and 5 % growth a year,
respite and observation requests for Zoetermeer's multifunctional beds, 55 % from hospital wards
and 4 % from GGZ clinics (medically ready 0-2 days before the request),
70 % aged 75+, declines with coded reasons, escalation when the own subregion has no place,
admissions hours to days after acceptance, stays of 1-5 weeks that free the place again,
3 capacity rounds a day for every unit, and one inflow report a day per SEH, HAP and RAV and
per acute-VVT organisation (one per subregion).

Shortage [A]: now and then a care type runs full in one subregion (Wlz-crisis, respite and
observation beds in the whole region) for one to two and a half days, because patients admitted
without the desk take the places: the providers report 0 free. The desk learns it the way a
triagist does: a hold on a unit its own book thinks free is refused for no capacity, the search
for the placement (the live search service) comes back empty, the case waits and the desk asks
the providers to report now. Both refusals are recorded as shortage moments through the code
the API uses (docs/domain.md §6.10).

Case work [A] (docs/domain.md §15): a triagist of the region takes every Wlz-crisis and GGZ-crisis
case after 5-90 minutes (so some are flagged unowned too long first), writes a note, and hands
the case back to the referrer once a place is promised; a case without a place gets a note.
Acute district nursing is also asked at night (ANW): its day teams do not admit then, so the
desk holds a place with a team that does, as the search's admission hours say (§15.3).
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.audit.service import AuditContext
from app.capacity import admission
from app.capacity import service as capacity_service
from app.capacity.schemas import CapacityReportItem
from app.config import Settings
from app.db import Database
from app.enums import Role
from app.errors import DomainError
from app.flows import search as search_flow
from app.kpi import formulas as f
from app.kpi import queries
from app.kpi import service as kpi_service
from app.kpi.schemas import InflowLineIn, InflowReportIn
from app.placement import cases as case_work
from app.placement import service as placement_service
from app.placement import sweeper
from app.placement.errors import NoCapacity
from app.placement.schemas import (
    CancelIn,
    DeclineIn,
    EventIn,
    HoldCreate,
    NoteIn,
    OccurredIn,
    OwnerIn,
    PlacementCreate,
)
from app.principal import Principal
from app.registry.models import Location, Organisation, Region, Subregion, Unit
from app.reportnow import service as reportnow_service
from app.reportnow.schemas import ReportRequestCreate

SIMULATOR = Principal(
    key_id=uuid.UUID(int=0x5111),
    name="simulator",
    roles=frozenset({Role.ADMIN}),
    organisation_id=None,
    region_id=None,
)
CARE_MIX = [
    ("elv_high", 30),
    ("elv_low", 18),
    ("elv_palliative", 8),
    ("grz", 22),
    ("wlz_crisis", 8),
    ("ggz_crisis", 6),
    ("district_nursing_acute", 8),
    ("respite", 1),
    ("observation", 2),
]
# Referrals by weekday (Monday first): GPs and wards refer on working days [A]
WEEKDAY = (1.25, 1.1, 1.05, 1.05, 1.1, 0.75, 0.7)
GROWTH_PER_YEAR = 0.05
STAY_DAYS = {
    "elv_high": 21,
    "elv_low": 18,
    "elv_palliative": 14,
    "grz": 28,
    "wlz_crisis": 14,
    "ggz_crisis": 7,
    "district_nursing_acute": 10,
    "respite": 5,
    "observation": 4,
}
DECLINES = [
    ("no_place_after_all", 30),
    ("care_too_complex", 20),
    ("target_group_mismatch", 15),
    ("staff_shortage", 20),
    ("room_sex_mismatch", 5),
    ("patient_refused", 10),
]
CANCELS = [("died", 30), ("recovered", 30), ("home_without_care", 25), ("referrer_withdrew", 15)]
# Periods of shortage, in turn [A]: (care type, whole region?). Wlz-crisis beds are the scarcest
# of the region (about 40) and respite and observation beds exist in one subregion only.
PRESSURE_ROTATION = [
    ("wlz_crisis", True),
    ("elv_high", False),
    ("observation", True),
    ("grz", False),
    ("district_nursing_acute", False),
    ("respite", True),
    ("elv_low", False),
]
NIGHT_NURSING_PER_NIGHT = 1.5  # acute district-nursing requests between 23:00 and 06:00 [A]
OWNED_CARE_TYPES = ("wlz_crisis", "ggz_crisis")  # the RAP triagist owns these (§12.3)
REPORT_NOW_EVERY = timedelta(hours=8)  # at most one report-now request per care type so often


@dataclass
class SimSummary:
    start: datetime
    end: datetime
    placements: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    capacity_reports: int = 0
    inflow_lines: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    shortage_windows: int = 0


@dataclass
class _Case:
    id: uuid.UUID
    care_type: str
    subregion: str
    ready: bool = False
    escalated: bool = False
    unit: uuid.UUID | None = None
    done: bool = False
    owned: bool = False  # taken by a triagist (docs/domain.md §15.1)


@dataclass(frozen=True)
class _Pressure:
    """A care type full in a subregion (or the whole region) from ``start`` to ``end``."""

    care_type: str
    subregion: str | None  # None: the whole region
    start: datetime
    end: datetime

    def covers(self, care_type: str, subregion: str, at: datetime) -> bool:
        return (
            care_type == self.care_type
            and self.subregion in (None, subregion)
            and self.start <= at < self.end
        )


@dataclass(order=True)
class _Job:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    data: Any = field(compare=False, default=None)


@dataclass
class _World:
    hospitals: list[tuple[uuid.UUID, str]]  # (organisation, subregion code)
    haps: list[tuple[uuid.UUID, str | None]]
    ravs: list[tuple[uuid.UUID, str | None]]
    units: dict[str, list[tuple[uuid.UUID, str, int]]]  # care type -> (unit, subregion, staffed)
    ggz: list[uuid.UUID] = field(default_factory=list)
    vvt_acute: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # one per subregion
    region_id: uuid.UUID | None = None
    rap: uuid.UUID | None = None  # the region's coordination desk
    hours: dict[uuid.UUID, str] = field(default_factory=dict)  # unit -> its admission hours

    def admits(self, unit_id: uuid.UUID, at: datetime) -> bool:
        return admission.admission_fields(self.hours.get(unit_id), at)[0]


async def _world(db: Database) -> _World:
    async with db.read() as conn:
        orgs = (
            await conn.execute(
                select(Organisation.id, Organisation.kind, Subregion.code)
                .outerjoin(Location, Location.organisation_id == Organisation.id)
                .outerjoin(Subregion, Subregion.id == Location.subregion_id)
                .order_by(Organisation.name, Location.name)
            )
        ).all()
        units = (
            await conn.execute(
                select(
                    Unit.id,
                    Unit.care_type,
                    Subregion.code,
                    Unit.staffed_capacity,
                    Unit.admission_hours,
                )
                .join(Location, Location.id == Unit.location_id)
                .join(Subregion, Subregion.id == Location.subregion_id)
                .where(Unit.active)
                # Unit names repeat across locations and ids are random per load: order by
                # the demo data's own values, never ids, so a seed shuffles the same list.
                .order_by(Location.name, Unit.name, Unit.staffed_capacity, Unit.care_type)
            )
        ).all()
        region_id = await conn.scalar(select(Region.id).order_by(Region.code).limit(1))
    first: dict[uuid.UUID, tuple[str, str | None]] = {}
    for org_id, kind, sub in orgs:
        first.setdefault(org_id, (kind, sub))
    by_care: dict[str, list[tuple[uuid.UUID, str, int]]] = {}
    hours: dict[uuid.UUID, str] = {}
    for unit_id, care, sub, staffed, unit_hours in units:
        by_care.setdefault(care, []).append((unit_id, sub, staffed))
        if unit_hours is not None:
            hours[unit_id] = unit_hours
    vvt_by_sub: dict[str, uuid.UUID] = {}
    for o, (k, s) in first.items():
        if k == "vvt" and s is not None:
            vvt_by_sub.setdefault(s, o)
    return _World(
        hospitals=[(o, s) for o, (k, s) in first.items() if k == "hospital" and s is not None],
        haps=[(o, s) for o, (k, s) in first.items() if k == "hap"],
        ravs=[(o, s) for o, (k, s) in first.items() if k == "rav"],
        units=by_care,
        ggz=[o for o, (k, _) in first.items() if k == "ggz"],
        vvt_acute=sorted(((o, s) for s, o in vvt_by_sub.items()), key=lambda x: x[1]),
        region_id=region_id,
        rap=next((o for o, (k, _) in first.items() if k == "rap"), None),
        hours=hours,
    )


def _pressure_windows(seed: int, start: datetime, end: datetime, world: _World) -> list[_Pressure]:
    """The simulation's periods of shortage (module docstring), from their own generator, so
    the rest of the simulation draws its numbers as before; the first starts within a day."""
    aux = random.Random(f"pressure-{seed}")  # noqa: S311 - simulated data, not secrets
    out: list[_Pressure] = []
    at = start + timedelta(hours=aux.uniform(2, 20))
    turn = 0
    while at < end:
        care, region_wide = PRESSURE_ROTATION[turn % len(PRESSURE_ROTATION)]
        turn += 1
        subs = sorted({sub for _, sub, _ in world.units.get(care, [])})
        if subs:
            length = timedelta(hours=aux.uniform(24, 60))
            sub = None if region_wide else aux.choice(subs)
            out.append(_Pressure(care, sub, at, at + length))
            at += length
        at += timedelta(hours=aux.uniform(12, 72))
    return out


def _triagist(world: _World) -> Principal:
    """The region's triagist on duty, as the simulation's desk (a person-less key)."""
    return Principal(
        key_id=uuid.UUID(int=0x5112),
        name="Triagist RAP (simulatie)",
        roles=frozenset({Role.TRIAGIST}),
        organisation_id=world.rap,
        region_id=world.region_id,
    )


def referral_mean(day: date, first: date, referrals_per_day: float = 16.0) -> float:
    """Expected referrals on ``day`` of a simulation that starts on ``first``: winter peak,
    weekly rhythm and growth (docs/domain.md §6.6 uses it to back-test the forecast)."""
    years = (day - first).days / 365
    rhythm = _winter(day) * WEEKDAY[day.weekday()] * (1 + GROWTH_PER_YEAR * years)
    return referrals_per_day * rhythm


def _winter(d: date) -> float:
    """Seasonal factor: +30 % in mid-January, -15 % in mid-July."""
    return 1.075 + 0.225 * math.cos(2 * math.pi * (d.timetuple().tm_yday - 15) / 365)


async def simulate(
    db: Database,
    settings: Settings,
    *,
    days: int,
    seed: int,
    end: datetime | None = None,
    referrals_per_day: float = 16.0,
    progress: Callable[[str], None] | None = None,
) -> SimSummary:
    """Simulate ``days`` days ending at ``end`` (default: the start of the current hour)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not secrets
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    world = await _world(db)
    if not world.hospitals or not world.units:
        raise RuntimeError("load the demo region first (juisteplek demo --no-serve)")
    summary = SimSummary(start=start, end=end)
    ctx = AuditContext(principal=SIMULATOR, access_point="simulator", purpose="simulation")
    night = random.Random(f"night-{seed}")  # noqa: S311 - its own draws, the rest unchanged
    occupancy: Counter[uuid.UUID] = Counter()
    queue: list[_Job] = []
    counter = 0

    def push(at: datetime, kind: str, data: Any = None) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(queue, _Job(at, counter, kind, data))

    day = f.local_date(start)
    while f.local_midnight(day) < end:
        midnight = f.local_midnight(day)
        for hour in (7, 15, 23):
            push(midnight + timedelta(hours=hour), "report")
        push(midnight + timedelta(hours=6), "inflow", day - timedelta(days=1))
        n = _poisson(rng, referral_mean(day, f.local_date(start), referrals_per_day))
        for _ in range(n):
            push(midnight + timedelta(minutes=rng.uniform(6 * 60, 22 * 60)), "arrive")
        for hour in range(24):
            push(midnight + timedelta(hours=hour, minutes=30), "sweep")
        for _ in range(_poisson(night, NIGHT_NURSING_PER_NIGHT)):  # 23:00-06:00 (ANW)
            at = midnight + timedelta(minutes=night.uniform(23 * 60, 30 * 60))
            push(at, "arrive", "district_nursing_acute")
        day += timedelta(days=1)
    windows = _pressure_windows(seed, start, end, world)
    summary.shortage_windows = len(windows)
    for window in windows:
        push(window.start, "pressure", window)
        push(window.end, "pressure", window)

    async def call(kind: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One service call in its own transaction, like one request; a refusal is counted."""
        async with db.sessionmaker() as session:
            try:
                result = await fn(session, *args, **kwargs)
                await session.commit()
            except DomainError as exc:
                await session.rollback()
                summary.refused[f"{kind}:{exc.type_slug}"] += 1
                return None
        summary.actions[kind] += 1
        return result

    async def hold(case_id: uuid.UUID, unit_id: uuid.UUID, now: datetime) -> str:
        """``POST /v1/placements/{id}/holds``: "held", "no-capacity" (a shortage moment, recorded
        after the refused write as the API records it, docs/domain.md §6.10) or "refused"."""
        async with db.sessionmaker() as session:
            try:
                await placement_service.place_hold(
                    session, ctx, case_id, HoldCreate(unit_id=unit_id), now=now, settings=settings
                )
                await session.commit()
            except DomainError as exc:
                await session.rollback()
                summary.refused[f"hold:{exc.type_slug}"] += 1
                if not isinstance(exc, NoCapacity):
                    return "refused"
                async with db.engine.begin() as conn:
                    await queries.record_hold_refused(conn, case_id, now)
                return "no-capacity"
        summary.actions["hold"] += 1
        return "held"

    def free(care: str, unit_id: uuid.UUID, sub: str, staffed: int, at: datetime) -> int:
        if any(w.covers(care, sub, at) for w in windows):
            return 0  # taken by patients admitted without the desk
        return max(0, staffed - occupancy[unit_id])

    desk = _Desk(
        db=db,
        settings=settings,
        ctx=AuditContext(principal=_triagist(world), access_point="simulator", purpose="care"),
        call=call,
        hold=hold,
    )
    cases: dict[uuid.UUID, _Case] = {}
    while queue:
        job = heapq.heappop(queue)
        now = job.at
        if now >= end:
            break
        if job.kind == "report":
            items = [
                CapacityReportItem(
                    unit_id=u, free=free(care, u, sub, staffed, now), reported_at=now
                )
                for care, units in world.units.items()
                for u, sub, staffed in units
                if rng.random() < 0.9  # now and then a round is missed: stale reports
            ]
            if items:
                done = await call(
                    "report",
                    capacity_service.report_bulk,
                    SIMULATOR,
                    items,
                    now=now,
                    settings=settings,
                )
                summary.capacity_reports += len(items) if done is not None else 0
        elif job.kind == "pressure":  # a shortage starts or ends: the providers report it
            w: _Pressure = job.data
            items = [
                CapacityReportItem(
                    unit_id=u, free=free(w.care_type, u, sub, staffed, now), reported_at=now
                )
                for u, sub, staffed in world.units.get(w.care_type, [])
                if w.subregion in (None, sub)
            ]
            await call(
                "report", capacity_service.report_bulk, SIMULATOR, items, now=now, settings=settings
            )
            summary.capacity_reports += len(items)
        elif job.kind == "inflow":
            summary.inflow_lines += await _inflow(db, rng, world, job.data, now, settings, call)
        elif job.kind == "sweep":
            await sweeper.sweep(db, now=now)
            summary.actions["sweep"] += 1
        elif job.kind == "arrive":
            case = await _arrive(rng, world, now, call, settings, seed, summary, job.data)
            if case is not None:
                cases[case.id] = case
                push(now + timedelta(minutes=rng.uniform(3, 15)), "offer", case.id)
                if case.care_type in OWNED_CARE_TYPES:
                    push(now + timedelta(minutes=rng.uniform(5, 90)), "take", case.id)
                if rng.random() < 0.08:
                    reason = _pick(rng, CANCELS)
                    push(now + timedelta(hours=rng.uniform(2, 96)), "cancel", (case.id, reason))
                elif case.ready and rng.random() < 0.07:
                    push(now + timedelta(hours=rng.uniform(3, 30)), "revoke", case.id)
        elif job.kind == "offer":
            case = cases[job.data]
            if case.done:
                continue
            await _offer(rng, world, case, now, desk, occupancy, push)
        elif job.kind == "take":  # a triagist takes the crisis case (docs/domain.md §15.1)
            case = cases[job.data]
            if case.done:
                continue
            taken = await call(
                "owner_taken",
                case_work.change_owner,
                desk.ctx,
                case.id,
                OwnerIn(action="take"),
                now=now,
            )
            if taken is not None:
                case.owned = True
                text = "Casus overgenomen; contact met de verwijzer over de crisisplaatsing."
                await call(
                    "note", case_work.add_note, desk.ctx, case.id, NoteIn(text=text), now=now
                )
        elif job.kind == "answer":
            case = cases[job.data]
            if case.done or case.unit is None:
                continue
            if rng.random() < 0.75:
                ok = await call(
                    "accept",
                    placement_service.accept,
                    ctx,
                    case.id,
                    OccurredIn(),
                    now=now,
                    settings=settings,
                )
                if ok is not None:
                    if case.owned:  # placed: the triagist hands the case back (§15.1)
                        await call(
                            "owner_handed_over",
                            case_work.change_owner,
                            desk.ctx,
                            case.id,
                            OwnerIn(action="hand_over", to="referrer"),
                            now=now,
                        )
                    hours = rng.uniform(1, 6) if case.care_type == "ggz_crisis" else None
                    hours = hours or rng.choice([rng.uniform(3, 24), rng.uniform(24, 96)])
                    push(now + timedelta(hours=hours), "admit", case.id)
                    continue
            reason = _pick(rng, DECLINES)
            await call(
                "decline",
                placement_service.decline,
                ctx,
                case.id,
                DeclineIn(reason=reason),
                now=now,
                settings=settings,
            )
            case.unit = None
            push(now + timedelta(hours=rng.uniform(1, 8)), "offer", case.id)
        elif job.kind == "admit":
            case = cases[job.data]
            if case.done:
                continue
            ok = await call(
                "admit",
                placement_service.admit,
                ctx,
                case.id,
                OccurredIn(),
                now=now,
                settings=settings,
            )
            if ok is not None and case.unit is not None:
                case.done = True
                occupancy[case.unit] += 1
                stay = rng.expovariate(1 / STAY_DAYS[case.care_type])
                push(now + timedelta(days=max(stay, 1)), "leave", case.unit)
        elif job.kind == "leave":
            occupancy[job.data] -= 1
        elif job.kind == "cancel":
            case_id, reason = job.data
            case = cases[case_id]
            if case.done:
                continue
            ok = await call(
                "cancel",
                placement_service.cancel,
                ctx,
                case.id,
                CancelIn(reason=reason),
                now=now,
                settings=settings,
            )
            case.done = case.done or ok is not None
        elif job.kind in ("revoke", "ready"):
            case = cases[job.data]
            if case.done:
                continue
            kind = "ready_revoked" if job.kind == "revoke" else "medically_ready"
            await call(
                kind,
                placement_service.record_event,
                ctx,
                case.id,
                EventIn(type=kind),
                now=now,
                settings=settings,
            )
            if job.kind == "revoke":
                push(now + timedelta(hours=rng.uniform(12, 72)), "ready", case.id)
        if progress is not None and job.kind == "inflow":
            progress(f"{f.local_date(now)}: {summary.placements} placements")
    return summary


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([w for w, _ in weighted], [n for _, n in weighted])[0]


def _patient_no(n: int) -> int:
    """Every 25th referral is a patient referred again (the one three referrals before), so
    the demo has re-referrals within 30 days (docs/domain.md §6.9); no random draw."""
    return n - 3 if n % 25 == 24 else n


def _referral_fields(care: str, identifier: str) -> dict[str, Any]:
    """Patient group and advance-care-planning answer of a simulated referral (docs/domain.md
    §6.8), from their own generator seeded by the patient identifier, so the rest of the
    simulation draws the same numbers as without them."""
    aux = random.Random(identifier)  # noqa: S311 - simulated data, not secrets
    group: str | None
    if care == "ggz_crisis":
        group = "psychiatric"
    elif care == "elv_palliative":
        group = "palliative"
    else:
        group = aux.choices(["frail_elderly", "dementia", "other", None], weights=[50, 25, 15, 10])[
            0
        ]
    acp = aux.choices(["recorded", "not_recorded", None], weights=[45, 35, 20])[0]
    out: dict[str, Any] = {}
    if group is not None:
        out["patient_group"] = group
    if acp is not None:
        out["advance_care_planning"] = acp
    return out


async def _arrive(
    rng: random.Random,
    world: _World,
    now: datetime,
    call: Callable[..., Any],
    settings: Settings,
    seed: int,
    summary: SimSummary,
    care_type: str | None = None,
) -> _Case | None:
    care = _pick(rng, CARE_MIX) if care_type is None else care_type
    if care not in world.units:
        care = "elv_high"
    origin = (
        "seh"
        if care == "ggz_crisis"
        else _pick(
            rng,
            [("hospital_ward", 51), ("ggz_clinic", 4), ("seh", 15), ("hap", 15), ("gp", 15)],
        )
    )
    if care in ("respite", "observation"):  # from home, via the GP or the HAP
        origin = rng.choice(["gp", "hap", "home"])
    hospital, sub = rng.choice(world.hospitals)
    referrer = hospital
    if origin in ("hap", "gp", "home") and world.haps:
        referrer = rng.choice(world.haps)[0]
    if origin == "ggz_clinic":
        if world.ggz:
            referrer = rng.choice(world.ggz)
        else:
            origin = "hospital_ward"
    age = int(rng.triangular(50, 101, 86)) if care != "ggz_crisis" else rng.randint(18, 90)
    urgency = rng.choice(["U2", "U3", "U3", "U4"]) if care == "ggz_crisis" else "U4"
    if care == "district_nursing_acute":
        urgency = "U3"
    patient = _patient_no(summary.placements + sum(summary.refused.values()))
    body: dict[str, Any] = {
        "referrer_organisation_id": referrer,
        "origin_setting": origin,
        "patient_identifier": f"sim-{seed}-{patient}",
        "birth_year": f.local_date(now).year - age,
        "sex": rng.choice(["female", "female", "male"]),
        "target_group": "psychiatric" if care == "ggz_crisis" else "somatic",
        "care_type": care,
        "urgency": {"system": "nts", "code": urgency},
        "consent_given_at": now,
        "subregion": sub,
        "triage": {"care_type": care, "rule_set": "west-2026.1"},
    }
    if origin in ("hospital_ward", "ggz_clinic"):
        body["medically_ready_at"] = now - timedelta(hours=rng.uniform(0, 48))
    body |= _referral_fields(care, body["patient_identifier"])
    ctx = AuditContext(principal=SIMULATOR, access_point="simulator", purpose="simulation")
    created = await call(
        "create",
        placement_service.create_placement,
        ctx,
        PlacementCreate.model_validate(body),
        now=now,
        settings=settings,
    )
    if created is None:
        return None
    summary.placements += 1
    ready = origin in ("hospital_ward", "ggz_clinic")
    return _Case(id=created.id, care_type=care, subregion=sub, ready=ready)


Hold = Callable[[uuid.UUID, uuid.UUID, datetime], Any]  # (placement, unit, now) -> outcome


@dataclass
class _Desk:
    """What the simulated coordination desk needs to act as the region's triagist."""

    db: Database
    settings: Settings
    ctx: AuditContext  # the triagist
    call: Callable[..., Any]
    hold: Hold
    asked: dict[str, datetime] = field(default_factory=dict)  # care type -> last report-now


async def _offer(
    rng: random.Random,
    world: _World,
    case: _Case,
    now: datetime,
    desk: _Desk,
    occupancy: Counter[uuid.UUID],
    push: Callable[[datetime, str, Any], None],
) -> None:
    """Hold a place: own subregion first (docs/domain.md §8), then the region after escalation.

    The desk first tries the units its own book thinks free and that admit now (their admission
    hours, §15.3); when a unit turns out full (the hold is refused for no capacity) or the book
    has nothing, it searches the live availability for the placement and holds the first hit
    that admits now. A search without result is a shortage moment the search service records
    (§6.10); a case without a place gets a note, a report-now request and a later retry."""
    ctx = AuditContext(principal=SIMULATOR, access_point="simulator", purpose="simulation")
    units = world.units.get(case.care_type, [])
    own = [u for u in units if u[1] == case.subregion]
    others = [u for u in units if u[1] != case.subregion]
    rng.shuffle(own)
    rng.shuffle(others)
    preference = [u for u, _, _ in own + others]
    next_admission: datetime | None = None
    for wider, tier in ((False, own[:6]), (True, others[:6])):
        if wider and not case.escalated:
            case.escalated = True
            await desk.call(
                "escalate",
                placement_service.record_event,
                ctx,
                case.id,
                EventIn(type="escalated", level="region", reason="no place in subregion"),
                now=now,
                settings=desk.settings,
            )
        refused = False
        for unit_id, _, staffed in tier:
            if occupancy[unit_id] >= staffed or not world.admits(unit_id, now):
                continue
            outcome = await desk.hold(case.id, unit_id, now)
            if outcome == "held":
                case.unit = unit_id
                push(now + timedelta(minutes=rng.uniform(5, 25)), "answer", case.id)
                return
            if outcome == "no-capacity":  # the book was wrong: look at the live figures
                refused = True
                break
        if not refused and not wider:
            continue
        hits = await _search(desk, case, wider, now)
        admitting = {h["unit_id"] for h in hits if h["admits_now"]}
        for unit_id in (u for u in preference if u in admitting):
            if await desk.hold(case.id, unit_id, now) == "held":
                case.unit = unit_id
                push(now + timedelta(minutes=rng.uniform(5, 25)), "answer", case.id)
                return
        later = [h["next_admission_at"] for h in hits if h["next_admission_at"] is not None]
        if later:
            next_admission = min(later)
    if next_admission is not None:  # places only with units that do not admit now (§15.3)
        push(max(next_admission, now) + timedelta(minutes=rng.uniform(1, 20)), "offer", case.id)
        return
    await _no_place(desk, case, now)
    push(now + timedelta(hours=rng.uniform(3, 8)), "offer", case.id)


async def _search(desk: _Desk, case: _Case, wider: bool, now: datetime) -> list[dict[str, Any]]:
    """The triagist's search for the placement (``GET /v1/placements/{id}/availability``): the
    own subregion, or the whole region after escalation; stale figures included, since the
    providers report three times a day. An empty answer is recorded by the search itself."""
    query = capacity_service.SearchQuery(care_types=(), escalate=wider, include_stale=True)
    try:
        found = await search_flow.search_for_placement(
            desk.db, desk.ctx, case.id, query, now=now, settings=desk.settings
        )
    except DomainError:
        return []
    hits: list[dict[str, Any]] = found["items"]
    for h in hits:
        h["unit_id"] = uuid.UUID(str(h["unit_id"]))
    return hits


async def _no_place(desk: _Desk, case: _Case, now: datetime) -> None:
    """No place in the region: the triagist notes it on the case and, at most once per care
    type in ``REPORT_NOW_EVERY``, asks the region's providers of that care type to report now."""
    await desk.call(
        "note",
        case_work.add_note,
        desk.ctx,
        case.id,
        NoteIn(text="Geen plek gevonden in de regio; zoekt over enkele uren opnieuw."),
        now=now,
    )
    last = desk.asked.get(case.care_type)
    if last is not None and now - last < REPORT_NOW_EVERY:
        return
    desk.asked[case.care_type] = now
    body = ReportRequestCreate.model_validate(
        {
            "care_types": [case.care_type],
            "within_minutes": 60,
            "message": "Geen plek gevonden: graag uw actuele vrije plaatsen.",
        }
    )
    await desk.call("report_now", reportnow_service.create, desk.ctx.principal, body, now=now)


async def _inflow(
    db: Database,
    rng: random.Random,
    world: _World,
    day: date,
    now: datetime,
    settings: Settings,
    call: Callable[..., Any],
) -> int:
    """One report per SEH, HAP, RAV and acute-VVT organisation for ``day`` (docs/domain.md §6.2
    seed shares: 75+ are 31 % of RAV rides and 13 % of HAP contacts)."""
    season = _winter(day)
    plan: list[tuple[str, list[tuple[uuid.UUID, str | None]], int, list[str], list[str]]] = [
        ("seh", [(o, sub) for o, sub in world.hospitals], 95, ["registration"], ["U2", "U3", "U4"]),
        ("hap", world.haps, 160, ["consult"], ["U3", "U5"]),
        ("rav", world.ravs, 230, ["deployment"], ["A1", "A2", "B1"]),
        (
            "vvt_acute",
            list(world.vvt_acute),
            10,
            ["acute_admission", "acute_home_visit"],
            ["UUL3", "UUL4"],
        ),
    ]
    shares = {
        "seh": {"0-17": 0.16, "18-64": 0.5, "65-74": 0.12, "75-84": 0.13, "85+": 0.09},
        "hap": {"0-17": 0.2, "18-64": 0.55, "65-74": 0.12, "75-84": 0.08, "85+": 0.05},
        "rav": {"0-17": 0.05, "18-64": 0.44, "65-74": 0.2, "75-84": 0.18, "85+": 0.13},
        "vvt_acute": {"18-64": 0.05, "65-74": 0.15, "75-84": 0.4, "85+": 0.4},
    }
    lines = 0
    seen: set[uuid.UUID] = set()
    for source, orgs, daily, contacts, codes in plan:
        for org, sub in orgs:
            if org in seen:
                continue
            seen.add(org)
            items = []
            for band, share in shares[source].items():
                for code in codes:
                    for contact in contacts:
                        mean = daily * season * share / len(codes) / len(contacts)
                        items.append(
                            InflowLineIn(
                                period_start=day,
                                period_end=day + timedelta(days=1),
                                subregion=sub,
                                age_band=band,
                                urgency_native=code,
                                contact_type=contact,
                                count=_poisson(rng, mean),
                            )
                        )
            body = InflowReportIn(source=source, organisation_id=org, lines=items)
            done = await call(
                "inflow",
                kpi_service.report_inflow,
                SIMULATOR,
                body,
                now=now,
            )
            lines += len(items) if done is not None else 0
    return lines


async def run(settings: Settings, *, days: int, seed: int, echo: Callable[[str], None]) -> None:
    """``juisteplek simulate``: load the demo region if needed, simulate, print a KPI digest."""
    from app.flows.demo import is_loaded, load_demo

    db = Database.from_url(settings.database_url)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    try:
        async with db.sessionmaker() as session:
            if not await is_loaded(session):
                # The region's first capacity reports date from the simulation's start, so the
                # simulated reports are never older than a unit's latest one (which is refused).
                start = end - timedelta(days=days)
                await load_demo(session, SIMULATOR, now=start, settings=settings)
                await session.commit()
                echo(f"loaded region West as of {start:%Y-%m-%d %H:%M} UTC")
            else:
                echo("region already loaded: simulate into a fresh database for clean KPIs")
        summary = await simulate(db, settings, days=days, seed=seed, end=end)
        echo(
            f"simulated {days} days ({summary.start:%Y-%m-%d} .. {summary.end:%Y-%m-%d}): "
            f"{summary.placements} placements, {summary.capacity_reports} capacity reports, "
            f"{summary.inflow_lines} inflow lines"
        )
        echo("  actions: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.actions.items())))
        if summary.refused:
            echo("  refused: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.refused.items())))
        for line in await digest(db, settings, summary):
            echo(line)
    finally:
        await db.dispose()


async def digest(db: Database, settings: Settings, summary: SimSummary) -> list[str]:
    """Headline KPIs of the simulated stretch (for the README), through the KPI service."""
    first = f.local_date(summary.start) + timedelta(days=1)
    last = f.local_date(summary.end)
    if last <= first:
        return []
    now = summary.end
    period = kpi_service.make_period(first, last)
    q = kpi_service.KpiQuery
    vbd = await kpi_service.wrong_bed_days(
        db, SIMULATOR, q("wrong_bed_days", period, group_by="month", age_min=75), now=now
    )
    allages = await kpi_service.wrong_bed_days(db, SIMULATOR, q("wrong_bed_days", period), now=now)
    bands = await kpi_service.lead_times(
        db, SIMULATOR, q("lead_times", period, group_by="age_band"), now=now
    )
    lead = await kpi_service.lead_times(
        db, SIMULATOR, q("lead_times", period, group_by="care_type"), now=now
    )
    esc = await kpi_service.escalations(db, SIMULATOR, q("escalations", period), now=now)
    inflow = await kpi_service.inflow(db, SIMULATOR, q("inflow", period, age_min=75), now=now)
    ggz = await kpi_service.ggz_crisis_within_norm(
        db, SIMULATOR, q("ggz_crisis_within_norm", period), now=now
    )
    requests = sum(r.requests or 0 for r in bands.rows)
    old = sum(r.requests or 0 for r in bands.rows if r.group in ("75-84", "85+"))
    out = [f"KPIs {first} .. {last} (local dates, [from, to)):"]
    out.append(
        f"  wrong-bed days 75+ (broad): {vbd.total.days} days, {vbd.total.patients} patients, "
        f"{(vbd.total.avg_daily or 0):.1f} per day; all ages {allages.total.days} days"
    )
    out.append(
        "  per month: " + ", ".join(f"{r.group} {r.days}" for r in vbd.rows if r.days is not None)
    )
    if requests:
        out.append(f"  referrals: {requests}, of which 75+ {old} ({100 * old / requests:.0f} %)")
    for r in lead.rows:
        out.append(
            f"  {r.group}: time to placement median "
            f"{(r.placement_median_minutes or 0) / 60:.1f} h, "
            f"P90 {(r.placement_p90_minutes or 0) / 60:.1f} h ({r.placed} placed)"
        )
    rate = esc.total.escalation_rate
    out.append(
        f"  escalation rate {100 * (rate or 0):.0f} %, declines "
        + ", ".join(f"{k} {v}" for k, v in sorted((esc.total.declines or {}).items()))
    )
    out.append("  inflow 75+: " + ", ".join(f"{r.source.upper()} {r.count}" for r in inflow.totals))
    share = ggz.total.share
    out.append(
        f"  GGZ crisis within norm: {100 * share:.0f} % of {ggz.total.cases} cases"
        if share is not None
        else "  GGZ crisis within norm: no closed cases"
    )
    out += await _plan_digest(db, settings, period, now)
    return out


async def _plan_digest(
    db: Database, settings: Settings, period: f.Period, now: datetime
) -> list[str]:
    """The region-plan figures (docs/domain.md §6.2, §6.5, §6.6): admission guarantee, ambulance
    rides of all ages, wrong-bed days by origin, the forecast's back-test."""
    q = kpi_service.KpiQuery
    out = []
    guarantee = await kpi_service.admission_guarantee(
        db, SIMULATOR, q("admission_guarantee", period), now=now
    )
    g = guarantee.total
    out.append(
        f"  admission guarantee (respite, observation): {100 * g.share:.0f} % of "
        f"{(g.within or 0) + (g.late or 0) + (g.open_overdue or 0)} placed within 24 h"
        if g.share is not None
        else "  admission guarantee: no decided requests"
    )
    rides = await kpi_service.inflow(db, SIMULATOR, q("inflow", period), now=now)
    out.append(
        "  inflow all ages: " + ", ".join(f"{r.source.upper()} {r.count}" for r in rides.totals)
    )
    origin = await kpi_service.wrong_bed_days(
        db, SIMULATOR, q("wrong_bed_days", period, group_by="source"), now=now
    )
    out.append(
        "  wrong-bed days by origin: " + ", ".join(f"{r.group} {r.days}" for r in origin.rows)
    )
    days = min(max(period.days, kpi_service.MIN_FORECAST_HISTORY), 730)
    forecast = await kpi_service.demand_forecast(
        db, SIMULATOR, now=now, settings=settings, history_days=days
    )
    bt = forecast.total.backtest
    if bt.mae is not None and bt.mae_seasonal_naive is not None:
        out.append(
            f"  forecast back-test (all requests, train {bt.train_days} d, test {bt.test_days} d): "
            f"MAE {bt.mae:.2f}/day vs seasonal naive {bt.mae_seasonal_naive:.2f}/day"
        )
    return out
