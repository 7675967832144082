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
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditContext
from app.capacity import service as capacity_service
from app.capacity.schemas import CapacityReportItem
from app.config import Settings
from app.db import Database
from app.enums import Role
from app.errors import DomainError
from app.kpi import formulas as f
from app.kpi import queries
from app.kpi import service as kpi_service
from app.kpi.schemas import InflowLineIn, InflowReportIn
from app.placement import service as placement_service
from app.placement import sweeper
from app.placement.schemas import (
    CancelIn,
    DeclineIn,
    EventIn,
    HoldCreate,
    OccurredIn,
    PlacementCreate,
)
from app.principal import Principal
from app.registry.models import Location, Organisation, Subregion, Unit

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


@dataclass
class SimSummary:
    start: datetime
    end: datetime
    placements: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    capacity_reports: int = 0
    inflow_lines: int = 0
    refused: Counter[str] = field(default_factory=Counter)


@dataclass
class _Case:
    id: uuid.UUID
    care_type: str
    subregion: str
    ready: bool = False
    escalated: bool = False
    unit: uuid.UUID | None = None
    done: bool = False


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
                select(Unit.id, Unit.care_type, Subregion.code, Unit.staffed_capacity)
                .join(Location, Location.id == Unit.location_id)
                .join(Subregion, Subregion.id == Location.subregion_id)
                .where(Unit.active)
                # Unit names repeat across locations and ids are random per load: order by
                # the demo data's own values, never ids, so a seed shuffles the same list.
                .order_by(Location.name, Unit.name, Unit.staffed_capacity, Unit.care_type)
            )
        ).all()
    first: dict[uuid.UUID, tuple[str, str | None]] = {}
    for org_id, kind, sub in orgs:
        first.setdefault(org_id, (kind, sub))
    by_care: dict[str, list[tuple[uuid.UUID, str, int]]] = {}
    for unit_id, care, sub, staffed in units:
        by_care.setdefault(care, []).append((unit_id, sub, staffed))
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
        day += timedelta(days=1)

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

    cases: dict[uuid.UUID, _Case] = {}
    while queue:
        job = heapq.heappop(queue)
        now = job.at
        if now >= end:
            break
        if job.kind == "report":
            items = [
                CapacityReportItem(unit_id=u, free=max(0, staffed - occupancy[u]), reported_at=now)
                for units in world.units.values()
                for u, _, staffed in units
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
        elif job.kind == "inflow":
            summary.inflow_lines += await _inflow(db, rng, world, job.data, now, settings, call)
        elif job.kind == "sweep":
            await sweeper.sweep(db, now=now)
            summary.actions["sweep"] += 1
        elif job.kind == "arrive":
            case = await _arrive(rng, world, now, call, settings, seed, summary)
            if case is not None:
                cases[case.id] = case
                push(now + timedelta(minutes=rng.uniform(3, 15)), "offer", case.id)
                if rng.random() < 0.08:
                    reason = _pick(rng, CANCELS)
                    push(now + timedelta(hours=rng.uniform(2, 96)), "cancel", (case.id, reason))
                elif case.ready and rng.random() < 0.07:
                    push(now + timedelta(hours=rng.uniform(3, 30)), "revoke", case.id)
        elif job.kind == "offer":
            case = cases[job.data]
            if case.done:
                continue
            await _offer(rng, world, case, now, call, settings, occupancy, push)
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
) -> _Case | None:
    care = _pick(rng, CARE_MIX)
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


async def _offer(
    rng: random.Random,
    world: _World,
    case: _Case,
    now: datetime,
    call: Callable[..., Any],
    settings: Settings,
    occupancy: Counter[uuid.UUID],
    push: Callable[[datetime, str, Any], None],
) -> None:
    """Hold a place: own subregion first (docs/domain.md §8), then the region after escalation."""
    ctx = AuditContext(principal=SIMULATOR, access_point="simulator", purpose="simulation")
    units = world.units.get(case.care_type, [])
    own = [u for u in units if u[1] == case.subregion]
    others = [u for u in units if u[1] != case.subregion]
    rng.shuffle(own)
    rng.shuffle(others)
    for wider, tier in ((False, own[:6]), (True, others[:6])):
        if wider and not case.escalated:
            case.escalated = True
            await call(
                "escalate",
                placement_service.record_event,
                ctx,
                case.id,
                EventIn(type="escalated", level="region", reason="no place in subregion"),
                now=now,
                settings=settings,
            )
        for unit_id, _, staffed in tier:
            if occupancy[unit_id] >= staffed:
                continue
            held = await call(
                "hold",
                placement_service.place_hold,
                ctx,
                case.id,
                HoldCreate(unit_id=unit_id),
                now=now,
                settings=settings,
            )
            if held is not None:
                case.unit = unit_id
                push(now + timedelta(minutes=rng.uniform(5, 25)), "answer", case.id)
                return
    # no place found anywhere: a shortage moment, as an empty search records it (§6.10)
    await call("shortage", _search_empty, case.id, now)
    push(now + timedelta(hours=rng.uniform(3, 8)), "offer", case.id)


async def _search_empty(session: AsyncSession, placement_id: uuid.UUID, now: datetime) -> None:
    await queries.record_hold_refused(
        await session.connection(), placement_id, now, kind=f.SEARCH_EMPTY
    )


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
