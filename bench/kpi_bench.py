"""KPI benchmark (target: bench/README.md): every KPI over 1,000,000 transfer events on
PostgreSQL, next to the pure-Python reference over the same data, in one run.

    .venv/bin/python -m bench.kpi_bench [--events 1000000] [--seed 7] [--write-results]

A throw-away cluster (default durability) is started on its own port, migrated, and filled
with COPY: ~110k placements over two years with realistic transfer logs (about nine events
each), capacity reports every few hours for 300 units, and daily inflow aggregates; the KPI
summaries are rebuilt from the logs (as the migrations backfill them) and the rebuilt tables
vacuumed and analysed (``VACUUM ANALYZE``, as autovacuum would) before anything is timed. Each
KPI is asked for the year 2026 split by month (a dashboard question); SQL is timed as the median
of three runs of ``app.kpi.queries``. The reference loads the same rows with asyncpg into the
``app.kpi.formulas`` records once (load time, shared) and computes each KPI (compute time). The
SQL and reference answers are compared for equality before any time is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from app.db import Database
from app.kpi import episodes
from app.kpi import formulas as f
from app.kpi import queries as q
from bench.runner import ROOT, PgCluster, free_port, log, machine_info, write_json

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
DATA_START = datetime(2025, 1, 1, tzinfo=UTC)
PERIOD = f.Period(date(2026, 1, 1), date(2027, 1, 1))
TTL_BED = timedelta(hours=4)
TTL_DN = timedelta(hours=24)
CARE = [
    ("elv_high", 35),
    ("elv_low", 20),
    ("elv_palliative", 8),
    ("grz", 20),
    ("wlz_crisis", 7),
    ("ggz_crisis", 5),
    ("district_nursing_acute", 5),
    ("respite", 3),
    ("observation", 3),
]
# Tables the summary rebuild writes (VACUUM ANALYZE after the bulk load, before timing).
REBUILT_TABLES = ("placement", "kpi_placement_decline", "kpi_ready_interval", "kpi_capacity_day")
PATIENT_GROUPS = ["frail_elderly", "dementia", "psychiatric", "palliative", "other", None]
ACP_ANSWERS = ["recorded", "recorded", "not_recorded", "not_recorded", None]
DECLINES = ["no_place_after_all", "care_too_complex", "target_group_mismatch", "staff_shortage"]


def _uid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def build(events_wanted: int, seed: int) -> dict[str, list[tuple[Any, ...]]]:
    """Registry, placements and transfer events (tuples in table column order)."""
    rng = random.Random(seed)
    region = _uid(rng)
    subs = [_uid(rng) for _ in range(5)]
    hospitals = [_uid(rng) for _ in range(7)]
    vvts = [_uid(rng) for _ in range(20)]
    sources = {
        "seh": hospitals,
        "hap": [_uid(rng) for _ in range(6)],
        "rav": [_uid(rng) for _ in range(2)],
    }
    created = DATA_START - timedelta(days=30)
    orgs = [(h, region, f"Hospital {i}", "hospital", created) for i, h in enumerate(hospitals)]
    orgs += [(v, region, f"VVT {i}", "vvt", created) for i, v in enumerate(vvts)]
    orgs += [(o, region, f"HAP {i}", "hap", created) for i, o in enumerate(sources["hap"])]
    orgs += [(o, region, f"RAV {i}", "rav", created) for i, o in enumerate(sources["rav"])]
    locations = [(_uid(rng), vvts[i], subs[i % 5]) for i in range(20)]
    units = []
    for i in range(300):
        loc = locations[i % 20]
        care = rng.choices([c for c, _ in CARE], [w for _, w in CARE])[0]
        units.append((_uid(rng), loc[0], care, rng.randint(4, 24), loc[2]))
    placements: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    span = (NOW - DATA_START).total_seconds()
    n = 0
    while len(events) < events_wanted:
        n += 1
        pid = _uid(rng)
        # winter peak: accept-reject on a seasonal weight
        while True:
            t0 = DATA_START + timedelta(seconds=rng.random() * span)
            if rng.random() < 0.75 + 0.25 * abs(t0.month - 7) / 6:
                break
        origin = rng.choices(["hospital_ward", "seh", "hap", "gp"], [55, 20, 15, 10])[0]
        care = rng.choices([c for c, _ in CARE], [w for _, w in CARE])[0]
        age = int(rng.triangular(55, 100, 84))
        urgency = rng.choice([3, 3, 4, 4, 5]) if care != "ggz_crisis" else rng.choice([2, 3, 4])
        log_: list[tuple[str, datetime, datetime, str | None, str | None]] = []

        def add(
            kind: str,
            at: datetime,
            rec: datetime | None = None,
            reason: str | None = None,
            level: str | None = None,
            out: list[tuple[str, datetime, datetime, str | None, str | None]] = log_,
        ) -> None:
            out.append((kind, at, rec or at, reason, level))

        add("request_created", t0)
        ready = origin == "hospital_ward"
        if ready:
            add("medically_ready", t0 - timedelta(hours=rng.uniform(0, 60)), t0)
        t = t0 + timedelta(minutes=rng.expovariate(1 / 45))
        add("triaged", t)
        final = None
        for round_ in range(4):
            t += timedelta(minutes=rng.expovariate(1 / 40))
            add("offer_sent", t)
            if round_ == 1 and rng.random() < 0.3:
                add("escalated", t, level="national" if rng.random() < 0.1 else "region")
            t += timedelta(minutes=rng.expovariate(1 / 60))
            roll = rng.random()
            if roll < 0.55 or round_ == 3:
                add("offer_accepted", t)
                final = "accept"
                break
            if roll < 0.85:
                add("offer_declined", t, reason=rng.choice(DECLINES))
            else:
                add("hold_expired", t)
        if ready and rng.random() < 0.04:
            t += timedelta(hours=rng.uniform(1, 30))
            add("ready_revoked", t)
            t += timedelta(hours=rng.uniform(6, 72))
            add("medically_ready", t)
        if ready and rng.random() < 0.01:
            t += timedelta(hours=rng.uniform(1, 30))
            add("hospital_admitted", t)
        t += timedelta(hours=rng.uniform(2, 96))
        if rng.random() < 0.9:
            add("transferred", t, t + timedelta(hours=rng.choice([0, 0, 0, 1, 60])))
        else:
            reason = rng.choice(["died", "recovered", "home_without_care", "placed_elsewhere"])
            add("cancelled", t, reason=reason)
        del final
        if t > NOW:  # still open at now: cut the log
            log_ = [e for e in log_ if e[1] <= NOW and e[2] <= NOW]
        # The milestone columns the service keeps in the same transaction as each event.
        kinds = [e[0] for e in log_]
        state = next(
            (
                s
                for k, s in (
                    ("transferred", "transferred"),
                    ("cancelled", "cancelled"),
                    ("offer_accepted", "accepted"),
                    ("triaged", "triaged"),
                )
                if k in kinds
            ),
            "requested",
        )
        last_at = max(e[1] for e in log_)
        placements.append(
            (
                pid,
                region,
                rng.choice(hospitals) if origin in ("hospital_ward", "seh") else rng.choice(vvts),
                rng.choice([*subs, None]) if rng.random() < 0.02 else rng.choice(subs),
                origin,
                f"pk{rng.randrange(n + 1)}" if rng.random() < 0.05 else f"pk{n}",
                NOW.year - age,
                care,
                urgency,
                t0,
                len(log_),
                state,
                last_at,
                # referral fields (docs/domain.md §6.8), from n so the random stream is unchanged
                PATIENT_GROUPS[n % len(PATIENT_GROUPS)],
                ACP_ANSWERS[(n * 7) % len(ACP_ANSWERS)],
            )
        )
        for seq, (kind, at, rec, why, level) in enumerate(log_, start=1):
            events.append((pid, seq, kind, at, rec, why, level))
    reports: list[tuple[Any, ...]] = []
    rid = 0
    for unit in units:
        t = DATA_START
        while t < NOW:
            rid += 1
            reports.append((rid, unit[0], rng.randint(0, unit[3] + 2), t))
            t += timedelta(hours=rng.choice([2, 3, 4, 5, 6, 8, 30]))
    inflow: list[tuple[Any, ...]] = []
    day = DATA_START.date()
    while day < NOW.date():
        for source, orgs_ in sources.items():
            contact = {"seh": "registration", "hap": "consult", "rav": "deployment"}[source]
            urg = {"seh": "U3", "hap": "U3", "rav": "A1"}[source]
            for org in orgs_:
                for band in ("65-74", "75-84", "85+"):
                    inflow.append(
                        (
                            source,
                            org,
                            rng.choice(subs),
                            day,
                            day + timedelta(days=1),
                            band,
                            urg,
                            contact,
                            rng.randint(0, 40),
                        )
                    )
        day += timedelta(days=1)
    # shortage moments (docs/domain.md §6.10), as many as transfer events, from their own
    # generator so the data above stays the same
    srng = random.Random(seed + 1)
    shortages = []
    for _ in range(events_wanted):
        at = DATA_START + timedelta(seconds=srng.random() * span)
        kind = "hold_refused" if srng.random() < 0.3 else "search_empty"
        care = srng.choices([c for c, _ in CARE], [w for _, w in CARE])[0]
        sub = srng.choice([*subs, None])
        shortages.append((_uid(srng), kind, region, sub, care, at, f.local_day(at)))
    return {
        "shortage_event": shortages,
        "region": [(region, "west", "ROAZ West")],
        "subregion": [(s, region, f"sub{i}", f"Subregion {i}") for i, s in enumerate(subs)],
        "organisation": orgs,
        "location": [(loc[0], loc[1], loc[2]) for loc in locations],
        "unit": [(u[0], u[1], u[2], u[3]) for u in units],
        "placement": placements,
        "transfer_event": events,
        "capacity_report": reports,
        "inflow_count": inflow,
    }


async def load(url: str, data: dict[str, list[tuple[Any, ...]]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "region", records=data["region"], columns=["id", "code", "name"]
        )
        await conn.copy_records_to_table(
            "subregion",
            records=[(*sub, True) for sub in data["subregion"]],
            columns=["id", "region_id", "code", "name", "active"],
        )
        await conn.copy_records_to_table(
            "organisation",
            records=[(*o, 1, True, o[4]) for o in data["organisation"]],
            columns=[
                "id",
                "region_id",
                "name",
                "kind",
                "created_at",
                "version",
                "active",
                "updated_at",
            ],
        )
        created = DATA_START - timedelta(days=30)
        await conn.copy_records_to_table(
            "location",
            records=[
                (loc, org, sub, "L", "x", "2300 AA", "Leiden", 52.0, 4.5, True, 1, created, created)
                for loc, org, sub in data["location"]
            ],
            columns=[
                "id",
                "organisation_id",
                "subregion_id",
                "name",
                "address",
                "postcode",
                "municipality",
                "latitude",
                "longitude",
                "active",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "unit",
            records=[
                (u, loc, "u", care, 1, 0, "any", cap, True, 1, created, created)
                for u, loc, care, cap in data["unit"]
            ],
            columns=[
                "id",
                "location_id",
                "name",
                "care_type",
                "target_group_mask",
                "feature_mask",
                "sex_policy",
                "staffed_capacity",
                "active",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "placement",
            records=[
                (
                    pid,
                    region,
                    org,
                    sub,
                    origin,
                    key,
                    by,
                    "female",
                    "somatic",
                    care,
                    0,
                    "uul",
                    str(u),
                    u,
                    state,
                    1,
                    seq,
                    last_at,
                    "subregion",
                    t0,
                    t0,
                    group,
                    acp,
                )
                for (
                    pid,
                    region,
                    org,
                    sub,
                    origin,
                    key,
                    by,
                    care,
                    u,
                    t0,
                    seq,
                    state,
                    last_at,
                    group,
                    acp,
                ) in data["placement"]
            ],
            columns=[
                "id",
                "region_id",
                "referrer_organisation_id",
                "subregion_id",
                "origin_setting",
                "patient_key",
                "birth_year",
                "sex",
                "target_group",
                "care_type",
                "feature_mask",
                "urgency_system",
                "urgency_code",
                "urgency_level",
                "state",
                "version",
                "event_seq",
                "last_event_at",
                "escalation_level",
                "created_at",
                "updated_at",
                "patient_group",
                "advance_care_planning",
            ],
        )
        await conn.copy_records_to_table(
            "transfer_event",
            records=[(*e, "requested", "{}") for e in data["transfer_event"]],
            columns=[
                "placement_id",
                "seq",
                "event_type",
                "occurred_at",
                "recorded_at",
                "reason",
                "level",
                "to_state",
                "payload",
            ],
        )
        await conn.copy_records_to_table(
            "capacity_report",
            records=[(*r, r[3], "bench") for r in data["capacity_report"]],
            columns=["id", "unit_id", "free", "reported_at", "recorded_at", "source"],
        )
        await conn.copy_records_to_table(
            "shortage_event",
            records=data["shortage_event"],
            columns=[
                "id",
                "kind",
                "region_id",
                "subregion_id",
                "care_type",
                "occurred_at",
                "day_no",
            ],
        )
        await conn.copy_records_to_table(
            "inflow_count",
            records=[(*i, 1, NOW, NOW) for i in data["inflow_count"]],
            columns=[
                "source",
                "organisation_id",
                "subregion_id",
                "period_start",
                "period_end",
                "age_band",
                "urgency_native",
                "contact_type",
                "count",
                "version",
                "received_at",
                "updated_at",
            ],
        )
        # The KPI summaries the services keep with each write, built the way migrations 0006
        # and 0007 backfill them (app.kpi.episodes): the same SQL over the log, the same census
        # rule.
        for sql in (
            *episodes.REBUILD_PLACEMENTS_SQL,
            *episodes.rebuild_ready_intervals_sql("postgresql"),
        ):
            await conn.execute(sql)
        days = episodes.capacity_day_rows((r[0], r[1], r[3], r[2]) for r in data["capacity_report"])
        columns = ["unit_id", "day_no", "report_id", "reported_at", "free"]
        await conn.copy_records_to_table(
            "kpi_capacity_day", records=[[d[c] for c in columns] for d in days], columns=columns
        )
        # The bulk rebuild UPDATE leaves `placement` with a dead copy of every row (~3x its
        # size); a live database is autovacuumed, so vacuum the rebuilt tables before timing.
        await conn.execute("VACUUM ANALYZE " + ", ".join(REBUILT_TABLES))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def reference_data(url: str) -> tuple[dict[str, Any], dict[str, float]]:
    """The reference's input records, loaded with asyncpg; load time per kind of input."""
    loads: dict[str, float] = {}
    conn = await asyncpg.connect(url)
    try:
        t = time.perf_counter()
        prow = await conn.fetch(
            "SELECT id, patient_key, birth_year, care_type, referrer_organisation_id, "
            "subregion_id, origin_setting, urgency_level, patient_group, advance_care_planning "
            "FROM placement"
        )
        erow = await conn.fetch(
            "SELECT placement_id, seq, event_type, occurred_at, recorded_at, reason, level "
            "FROM transfer_event"
        )
        by_placement: dict[Any, list[f.Event]] = {}
        for r in erow:
            by_placement.setdefault(r[0], []).append(
                f.Event(
                    seq=r[1],
                    type=r[2],
                    occurred_at=r[3],
                    recorded_at=r[4],
                    reason=r[5],
                    level=r[6],
                )
            )
        stays = [
            f.Stay(
                id=str(r[0]),
                patient_key=r[1],
                birth_year=r[2],
                care_type=r[3],
                hospital_id=str(r[4]),
                subregion_id=None if r[5] is None else str(r[5]),
                origin_setting=r[6],
                urgency_level=r[7],
                events=tuple(by_placement.get(r[0], ())),
                patient_group=r[8],
                advance_care_planning=r[9],
            )
            for r in prow
        ]
        loads["stays"] = time.perf_counter() - t
        t = time.perf_counter()
        urow = await conn.fetch(
            "SELECT u.id, u.care_type, l.subregion_id, u.staffed_capacity, u.created_at, "
            "u.active FROM unit u JOIN location l ON l.id = u.location_id"
        )
        rrow = await conn.fetch("SELECT id, unit_id, free, reported_at FROM capacity_report")
        units = [f.UnitInfo(str(r[0]), r[1], str(r[2]), r[3], r[4], r[5]) for r in urow]
        reports = [f.Report(r[0], str(r[1]), r[2], r[3]) for r in rrow]
        loads["capacity"] = time.perf_counter() - t
        t = time.perf_counter()
        irow = await conn.fetch(
            "SELECT source, organisation_id, subregion_id, period_start, period_end, age_band, "
            "urgency_native, contact_type, count FROM inflow_count"
        )
        lines = [
            f.InflowLine(r[0], str(r[1]), None if r[2] is None else str(r[2]), *r[3:]) for r in irow
        ]
        loads["inflow"] = time.perf_counter() - t
        t = time.perf_counter()
        srow = await conn.fetch(
            "SELECT kind, care_type, subregion_id, occurred_at FROM shortage_event"
        )
        shortages = [
            f.Shortage(r[0], r[1], None if r[2] is None else str(r[2]), r[3]) for r in srow
        ]
        loads["shortage"] = time.perf_counter() - t
    finally:
        await conn.close()
    data = {
        "stays": stays,
        "units": units,
        "reports": reports,
        "lines": lines,
        "shortages": shortages,
    }
    return data | {"events": len(erow)}, loads


def _ttl(care_type: str) -> timedelta:
    return TTL_DN if care_type.startswith("district_nursing") else TTL_BED


KPI_INPUT = {
    "wrong_bed_days (75+, broad, by month)": "stays",
    "inflow (75+, by month)": "inflow",
    "lead_times (by care type)": "stays",
    "escalations (by month)": "stays",
    "capacity (by care type, daily census)": "capacity",
    "ggz_crisis_within_norm (by month)": "stays",
    "admission_guarantee (by month)": "stays",
    "wlz_crisis_waiting (daily)": "stays",
    "advance_care_planning (65+, by month)": "stays",
    "lead_times (by patient group)": "stays",
    "between_the_cracks (by month)": "stays",
    "shortage (per day, care type, subregion)": "shortage",
}


def kpis(
    db: Database,
) -> dict[str, tuple[Callable[[Any], Coroutine[Any, Any, Any]], Callable[[dict[str, Any]], Any]]]:
    """KPI name -> (SQL coroutine on a connection, reference on the loaded records)."""
    flt = f.StayFilter(age_min=75)
    return {
        "wrong_bed_days (75+, broad, by month)": (
            lambda c: q.wrong_bed_days(c, PERIOD, now=NOW, flt=flt, group_by="month"),
            lambda d: f.wrong_bed_days(d["stays"], PERIOD, now=NOW, flt=flt, group_by="month"),
        ),
        "inflow (75+, by month)": (
            lambda c: q.inflow(c, PERIOD, age_min=75, group_by="month"),
            lambda d: f.inflow(d["lines"], PERIOD, age_min=75, group_by="month"),
        ),
        "lead_times (by care type)": (
            lambda c: q.lead_times(c, PERIOD, group_by="care_type"),
            lambda d: [r.summary() for r in f.lead_times(d["stays"], PERIOD, group_by="care_type")],
        ),
        "escalations (by month)": (
            lambda c: q.escalations(c, PERIOD, group_by="month"),
            lambda d: f.escalations(d["stays"], PERIOD, group_by="month"),
        ),
        "capacity (by care type, daily census)": (
            lambda c: q.capacity(
                c, PERIOD, ttl_bed=TTL_BED, ttl_district_nursing=TTL_DN, group_by="care_type"
            ),
            lambda d: f.capacity(
                d["units"], d["reports"], f.census_moments(PERIOD), ttl=_ttl, group_by="care_type"
            ),
        ),
        "ggz_crisis_within_norm (by month)": (
            lambda c: q.ggz_crisis_within_norm(c, PERIOD, now=NOW, group_by="month"),
            lambda d: f.ggz_crisis_within_norm(d["stays"], PERIOD, now=NOW, group_by="month"),
        ),
        "admission_guarantee (by month)": (
            lambda c: q.admission_guarantee(c, PERIOD, now=NOW, group_by="month"),
            lambda d: f.admission_guarantee(d["stays"], PERIOD, now=NOW, group_by="month"),
        ),
        "wlz_crisis_waiting (daily)": (
            lambda c: q.wlz_crisis_waiting(c, PERIOD, now=NOW),
            lambda d: f.wlz_crisis_waiting(d["stays"], PERIOD, now=NOW),
        ),
        "advance_care_planning (65+, by month)": (
            lambda c: q.advance_care_planning(c, PERIOD, group_by="month"),
            lambda d: f.advance_care_planning(d["stays"], PERIOD, group_by="month"),
        ),
        "lead_times (by patient group)": (
            lambda c: q.lead_times(c, PERIOD, group_by="patient_group"),
            lambda d: [
                r.summary() for r in f.lead_times(d["stays"], PERIOD, group_by="patient_group")
            ],
        ),
        "between_the_cracks (by month)": (
            lambda c: q.between_the_cracks(c, PERIOD, now=NOW, group_by="month"),
            lambda d: f.between_the_cracks(d["stays"], PERIOD, now=NOW, group_by="month"),
        ),
        "shortage (per day, care type, subregion)": (
            lambda c: q.shortage(c, PERIOD),
            lambda d: f.shortage(d["shortages"], PERIOD),
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    pg = PgCluster(root=Path(args.pgroot), port=args.port or free_port(), db="kpibench")
    log(f"starting PostgreSQL on {pg.port}")
    url = pg.start()
    try:
        from app.cli import run_migrations

        url = url.replace("postgresql+asyncpg://", "postgresql://")
        sa_url = url.replace("postgresql://", "postgresql+asyncpg://")
        await asyncio.to_thread(run_migrations, sa_url)
        t = time.perf_counter()
        data = build(args.events, args.seed)
        log(
            f"built {len(data['placement'])} placements, {len(data['transfer_event'])} events, "
            f"{len(data['capacity_report'])} capacity reports, {len(data['inflow_count'])} inflow "
            f"lines in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        await load(url, data)
        log(f"loaded with COPY in {time.perf_counter() - t:.1f} s")
        del data
        db = Database.from_url(sa_url, pool_size=2, max_overflow=0)
        ref, loads = await reference_data(url)
        log("reference load: " + ", ".join(f"{k} {v:.2f} s" for k, v in loads.items()))
        results = []
        for name, (sql, python) in kpis(db).items():
            if args.only and not any(part in name for part in args.only):
                continue
            times = []
            answer = None
            for _ in range(3):
                async with db.read() as conn:
                    t = time.perf_counter()
                    answer = await sql(conn)
                    times.append(time.perf_counter() - t)
            t = time.perf_counter()
            expected = python(ref)
            compute = time.perf_counter() - t
            assert answer == expected, f"{name}: SQL and reference differ"
            sql_s = statistics.median(times)
            load_s = loads[KPI_INPUT[name]]
            results.append(
                {
                    "kpi": name,
                    "sql_s": round(sql_s, 3),
                    "sql_runs_s": [round(x, 3) for x in times],
                    "reference_input": KPI_INPUT[name],
                    "reference_load_s": round(load_s, 3),
                    "reference_compute_s": round(compute, 3),
                    "reference_total_s": round(load_s + compute, 3),
                    "ratio_total": round((load_s + compute) / sql_s, 1),
                    "ratio_compute": round(compute / sql_s, 1),
                    "ok_1s": sql_s <= 1.0,
                    "ok_10x": (load_s + compute) / sql_s >= 10,
                }
            )
            log(f"{name}: SQL {sql_s:.3f} s, reference {load_s:.2f} + {compute:.2f} s")
        await db.dispose()
        return {
            "events": ref["events"],
            "placements": len(ref["stays"]),
            "capacity_reports": len(ref["reports"]),
            "inflow_lines": len(ref["lines"]),
            "reference_load_s": {k: round(v, 3) for k, v in loads.items()},
            "period": f"{PERIOD.start} .. {PERIOD.end}",
            "now": NOW.isoformat(),
            "results": results,
            "machine": machine_info(pg),
        }
    finally:
        pg.stop()


def markdown(summary: dict[str, Any]) -> str:
    m = summary["machine"]
    loads = ", ".join(f"{k} {v:.2f} s" for k, v in summary["reference_load_s"].items())
    data = (
        f"{summary['events']:,} transfer events ({summary['placements']:,} placements), "
        f"{summary['capacity_reports']:,} capacity reports, {summary['inflow_lines']:,} inflow "
        "lines"
    )
    machine = (
        f"{m['nproc']} cores ({m['cpu_model']}), {m['mem_gib']} GiB, PostgreSQL "
        f"{m['postgresql']}, Python {m['python']}, default durability"
    )
    lines = [
        "## KPIs",
        "",
        f"`python -m bench.kpi_bench --write-results` on {time.strftime('%Y-%m-%d')}: {data}. "
        f"Question: {summary['period']} by month (lead times and capacity by care type), "
        f"now = {summary['now']}. Machine: {machine}. SQL = median of 3 runs of "
        "`app.kpi.queries` (what the API runs). Reference = `app.kpi.formulas` on the same rows, "
        f"loaded with asyncpg into its input records (load per input: {loads}). Setup: COPY, "
        "KPI summaries rebuilt from the logs with the migrations' backfill SQL, then "
        f"`VACUUM ANALYZE` of the rebuilt tables ({', '.join(REBUILT_TABLES)}; a live database "
        "is autovacuumed) and `ANALYZE`, all before timing. SQL and "
        "reference answers were equal for every KPI before any time was recorded. "
        "Absolute times on this shared machine drift; the ratio is the measure.",
        "",
        "| KPI | SQL (s) | reference load + compute (s) | ratio | ratio, compute only "
        "| ≤ 1 s | ≥ 10× |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["results"]:
        lines.append(
            f"| {r['kpi']} | {r['sql_s']:.3f} | {r['reference_load_s']:.2f} + "
            f"{r['reference_compute_s']:.2f} | {r['ratio_total']}× | {r['ratio_compute']}× | "
            f"{'yes' if r['ok_1s'] else 'NO'} | {'yes' if r['ok_10x'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace (or append) only the KPIs section of bench/results.md."""
    path = ROOT / "bench" / "results.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    start = current.find("## KPIs\n")
    if start == -1:
        path.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + 1)
    rest = "" if end == -1 else current[end + 1 :]
    path.write_text(current[:start] + text + ("\n" + rest if rest else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pgroot", default="/tmp/jppg-kpibench")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="Time only the KPIs whose name contains this text (repeatable)",
    )
    args = parser.parse_args()
    if args.only and args.write_results:
        parser.error("--write-results rewrites the whole KPI table: run every KPI for it")
    summary = asyncio.run(run(args))
    path = write_json("kpis-partial" if args.only else "kpis", summary)
    text = markdown(summary)
    sys.stdout.write(text)
    sys.stdout.write(json.dumps(summary["results"], indent=1) + "\n")
    if args.write_results:
        write_section(text)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
