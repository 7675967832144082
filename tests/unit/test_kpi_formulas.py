"""Hand-written cases for the KPI reference (app.kpi.formulas), one per edge case of
docs/domain.md §6.

Times are written in local Amsterdam time (``loc``) where the census depends on it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.kpi import formulas as f


def loc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A local Amsterdam wall-clock time as a UTC instant."""
    return datetime(y, mo, d, h, mi, tzinfo=f.TZ).astimezone(UTC)


def ev(seq: int, kind: str, at: datetime, *, lag: timedelta = timedelta(0), **kw: str) -> f.Event:
    return f.Event(seq=seq, type=kind, occurred_at=at, recorded_at=at + lag, **kw)


def stay(
    *events: f.Event,
    key: str = "p1",
    birth_year: int = 1940,
    care_type: str = "elv_high",
    hospital: str | None = "h1",
    subregion: str | None = "s1",
    origin: str = "hospital_ward",
    urgency: int = 3,
    sid: str | None = None,
) -> f.Stay:
    return f.Stay(
        id=sid or key,
        patient_key=key,
        birth_year=birth_year,
        care_type=care_type,
        hospital_id=hospital,
        subregion_id=subregion,
        origin_setting=origin,
        urgency_level=urgency,
        events=events,
    )


JAN = f.Period(date(2026, 1, 1), date(2026, 2, 1))
NOW = loc(2026, 6, 1)


def vbd(*stays: f.Stay, period: f.Period = JAN, now: datetime = NOW, **kw: object) -> f.WrongBedRow:
    rows = f.wrong_bed_days(stays, period, now=now, **kw)  # type: ignore[arg-type]
    assert len(rows) == 1
    return rows[0]


# --- calendar ---------------------------------------------------------------------------------


def test_local_midnights_across_dst_are_22_or_23_utc() -> None:
    assert f.local_midnight(date(2026, 3, 29)) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert f.local_midnight(date(2026, 3, 30)) == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert f.local_midnight(date(2026, 10, 25)) == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert f.local_midnight(date(2026, 10, 26)) == datetime(2026, 10, 25, 23, tzinfo=UTC)
    # the instant of a midnight belongs to the day it starts
    assert f.local_date(datetime(2026, 3, 29, 22, tzinfo=UTC)) == date(2026, 3, 30)
    assert f.local_date(datetime(2026, 3, 29, 21, 59, 59, 999_999, tzinfo=UTC)) == date(2026, 3, 29)
    assert f.date_of(f.day_no(date(2026, 3, 29))) == date(2026, 3, 29)
    assert f.day_no(date(2000, 1, 1)) == 0


def test_period_rejects_empty_ranges() -> None:
    with pytest.raises(ValueError, match="after its start"):
        f.Period(date(2026, 1, 2), date(2026, 1, 2))
    assert JAN.days == 31
    assert JAN.contains(date(2026, 1, 31))
    assert not JAN.contains(date(2026, 2, 1))


def test_buckets_by_month_and_iso_week() -> None:
    p = f.Period(date(2025, 12, 30), date(2026, 2, 3))
    assert [(b.label, b.start, b.end) for b in f.buckets(p, "month")] == [
        ("2025-12", date(2025, 12, 30), date(2026, 1, 1)),
        ("2026-01", date(2026, 1, 1), date(2026, 2, 1)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 3)),
    ]
    weeks = f.buckets(p, "week")
    # 2025-12-30 is a Tuesday in ISO week 2026-W01
    assert weeks[0].label == "2026-W01"
    assert (weeks[0].start, weeks[0].end) == (date(2025, 12, 30), date(2026, 1, 5))
    assert weeks[-1].label == "2026-W06"
    assert weeks[-1].days == 1
    assert f.buckets(p, "hospital") == [f.Bucket(None, p.start, p.end)]


def test_age_bands() -> None:
    assert [f.age_band(a) for a in (-1, 0, 17, 18, 64, 65, 74, 75, 84, 85, 110)] == [
        "0-17",
        "0-17",
        "0-17",
        "18-64",
        "18-64",
        "65-74",
        "65-74",
        "75-84",
        "75-84",
        "85+",
        "85+",
    ]
    assert f.bands_from(75) == ("75-84", "85+")
    assert f.bands_from(90) == ()


def test_duration_is_exact_microseconds() -> None:
    a = datetime(2026, 1, 1, tzinfo=UTC)
    assert f.duration_us(a + timedelta(days=2, microseconds=7), a) == 172_800_000_007
    assert f.duration_us(a, a + timedelta(microseconds=1)) == -1


# --- 6.1 wrong-bed days: the documented edge cases ---------------------------------------------


def test_ready_and_gone_the_same_day_is_zero_days() -> None:
    s = stay(
        ev(1, "medically_ready", loc(2026, 1, 5, 10)), ev(2, "transferred", loc(2026, 1, 5, 15))
    )
    row = vbd(s)
    assert (row.days, row.patients, row.intervals) == (0, 0, 0)


def test_one_midnight_is_one_day() -> None:
    s = stay(
        ev(1, "medically_ready", loc(2026, 1, 5, 23, 59)),
        ev(2, "transferred", loc(2026, 1, 6, 0, 1)),
    )
    assert vbd(s).days == 1


def test_a_midnight_exactly_at_the_end_counts_one_exactly_at_the_start_does_not() -> None:
    s = stay(ev(1, "medically_ready", loc(2026, 1, 5)), ev(2, "transferred", loc(2026, 1, 7)))
    # midnights of 6 and 7 January: start < m <= end
    assert vbd(s).days == 2


def test_open_interval_is_clipped_at_the_period_end_and_continues_in_the_next() -> None:
    s = stay(ev(1, "medically_ready", loc(2026, 1, 30, 10)))
    now = loc(2026, 2, 5, 12)
    jan = vbd(s, now=now)
    feb = vbd(s, period=f.Period(date(2026, 2, 1), date(2026, 3, 1)), now=now)
    assert (jan.days, jan.open_intervals) == (1, 1)  # midnight of 31 January
    assert feb.days == 5  # midnights of 1-5 February (now is 5 February 12:00)
    whole = vbd(s, period=f.Period(date(2026, 1, 1), date(2026, 3, 1)), now=now)
    assert whole.days == jan.days + feb.days == 6


def test_open_interval_before_now_counts_nothing() -> None:
    s = stay(ev(1, "medically_ready", loc(2026, 1, 10, 10)))
    assert vbd(s, now=loc(2026, 1, 9)).days == 0


def test_ready_revoked_ready_is_two_intervals_summed() -> None:
    s = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)),
        ev(2, "ready_revoked", loc(2026, 1, 4, 9)),  # 2 days: midnights of 3 and 4 January
        ev(3, "medically_ready", loc(2026, 1, 10, 9)),
        ev(4, "transferred", loc(2026, 1, 13, 9)),  # 3 days: 11, 12, 13 January
    )
    assert [i.end_kind for i in f.ready_intervals(s)] == ["revoked", "transferred"]
    row = vbd(s)
    assert (row.days, row.intervals, row.patients) == (5, 2, 1)


def test_hospital_to_hospital_transfer_ends_the_interval_and_is_counted_separately() -> None:
    s = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)),
        ev(2, "hospital_admitted", loc(2026, 1, 5, 9)),  # moved to another hospital: 3 days
        ev(3, "triaged", loc(2026, 1, 6, 9)),
        ev(4, "medically_ready", loc(2026, 1, 8, 9)),  # the receiving hospital's ready
        ev(5, "transferred", loc(2026, 1, 9, 9)),  # 1 day
    )
    row = vbd(s)
    assert (row.days, row.intervals, row.hospital_transfers) == (4, 2, 1)


def test_died_while_waiting_counts_until_death() -> None:
    s = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)),
        ev(2, "cancelled", loc(2026, 1, 6, 3), reason="died"),
    )
    row = vbd(s)
    assert (row.days, row.deaths) == (4, 1)
    other = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)),
        ev(2, "cancelled", loc(2026, 1, 6, 3), reason="recovered"),
    )
    assert (vbd(other).days, vbd(other).deaths) == (4, 0)


def test_a_death_after_the_period_is_not_counted_in_it() -> None:
    s = stay(
        ev(1, "medically_ready", loc(2026, 1, 30, 9)),
        ev(2, "cancelled", loc(2026, 2, 2, 3), reason="died"),
    )
    assert (vbd(s).days, vbd(s).deaths) == (1, 0)  # midnight of 31 January only


def test_backdated_events_use_occurred_at_and_are_flagged_after_48_hours() -> None:
    late = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9), lag=timedelta(hours=48, seconds=1)),
        ev(2, "transferred", loc(2026, 1, 5, 9)),
    )
    on_time = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9), lag=timedelta(hours=48)),
        ev(2, "transferred", loc(2026, 1, 5, 9)),
        key="p2",
    )
    late_end = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)),
        ev(2, "transferred", loc(2026, 1, 5, 9), lag=timedelta(days=3)),
        key="p3",
    )
    row = vbd(late, on_time, late_end)
    assert (row.days, row.intervals, row.backdated, row.patients) == (9, 3, 2, 3)


def test_placed_twice_counts_only_the_hospital_days() -> None:
    bridge = stay(
        ev(1, "request_created", loc(2026, 1, 1, 8)),
        ev(2, "medically_ready", loc(2026, 1, 2, 9)),
        ev(3, "transferred", loc(2026, 1, 4, 9)),  # to an ELV bridge bed: 2 days
        sid="a",
    )
    wlz = stay(
        ev(1, "request_created", loc(2026, 1, 10, 8)),
        ev(2, "transferred", loc(2026, 1, 25, 9)),  # from ELV to Wlz: no hospital days
        care_type="wlz_crisis",
        sid="b",
    )
    assert vbd(bridge, wlz).days == 2


def test_duplicate_ready_and_events_after_the_final_one_change_nothing() -> None:
    s = stay(
        ev(1, "ready_revoked", loc(2026, 1, 1, 9)),  # nothing open: ignored
        ev(2, "medically_ready", loc(2026, 1, 2, 9)),
        ev(3, "medically_ready", loc(2026, 1, 3, 9)),  # already open: ignored
        ev(4, "transferred", loc(2026, 1, 4, 9)),
        ev(5, "medically_ready", loc(2026, 1, 5, 9)),  # after the final event: ignored
    )
    intervals = f.ready_intervals(s)
    assert [(i.start, i.end) for i in intervals] == [(loc(2026, 1, 2, 9), loc(2026, 1, 4, 9))]
    assert vbd(s).days == 2


def test_dst_nights_are_one_midnight_each() -> None:
    spring = stay(
        ev(1, "medically_ready", loc(2026, 3, 28, 12)), ev(2, "transferred", loc(2026, 3, 30, 12))
    )
    autumn = stay(
        ev(1, "medically_ready", loc(2026, 10, 24, 12)),
        ev(2, "transferred", loc(2026, 10, 26, 12)),
        key="p2",
    )
    assert vbd(spring, period=f.Period(date(2026, 3, 1), date(2026, 4, 1))).days == 2
    assert vbd(autumn, period=f.Period(date(2026, 10, 1), date(2026, 11, 1))).days == 2
    # 22:30 UTC on 29 March is already 00:30 on 30 March in Amsterdam: no midnight passed
    late = stay(
        ev(1, "medically_ready", datetime(2026, 3, 29, 22, 30, tzinfo=UTC)),
        ev(2, "transferred", datetime(2026, 3, 29, 23, 30, tzinfo=UTC)),
    )
    assert vbd(late, period=f.Period(date(2026, 3, 1), date(2026, 4, 1))).days == 0


def test_age_is_fixed_at_the_ready_moment_in_local_time() -> None:
    # 23:30 UTC on 31 December 2025 is 00:30 on 1 January 2026 in Amsterdam: age 2026 - 1951
    s = stay(
        ev(1, "medically_ready", datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
        ev(2, "transferred", loc(2026, 1, 3, 12)),
        birth_year=1951,
    )
    assert f.ready_intervals(s)[0].age_at_ready == 75
    assert vbd(s, flt=f.StayFilter(age_min=75)).days == 2
    assert vbd(s, flt=f.StayFilter(age_min=76)).days == 0


def test_filters_narrow_hospital_subregion_care_type() -> None:
    elv = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)), ev(2, "transferred", loc(2026, 1, 4, 9))
    )
    wlz = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)),
        ev(2, "transferred", loc(2026, 1, 5, 9)),
        key="p2",
        care_type="wlz_crisis",
        hospital="h2",
        subregion=None,
    )
    assert vbd(elv, wlz).days == 5
    assert vbd(elv, wlz, flt=f.StayFilter(definition="narrow")).days == 3
    assert vbd(elv, wlz, flt=f.StayFilter(hospital_id="h2")).days == 3
    assert vbd(elv, wlz, flt=f.StayFilter(subregion_id="s1")).days == 2
    assert vbd(elv, wlz, flt=f.StayFilter(care_type="elv_high")).days == 2


def test_grouping_splits_days_by_month_and_by_attribute() -> None:
    s1 = stay(
        ev(1, "medically_ready", loc(2026, 1, 30, 9)), ev(2, "transferred", loc(2026, 2, 2, 9))
    )
    s2 = stay(
        ev(1, "medically_ready", loc(2026, 2, 10, 9)),
        ev(2, "cancelled", loc(2026, 2, 12, 9), reason="died"),
        key="p2",
        birth_year=1930,
        subregion=None,
    )
    p = f.Period(date(2026, 1, 1), date(2026, 3, 1))
    months = f.wrong_bed_days([s1, s2], p, now=NOW, group_by="month")
    # s1: midnights of 31 Jan | 1, 2 Feb; s2: midnights of 11, 12 Feb
    assert [(r.group, r.days, r.patients, r.calendar_days, r.deaths) for r in months] == [
        ("2026-01", 1, 1, 31, 0),
        ("2026-02", 4, 2, 28, 1),
    ]
    assert months[1].avg_daily == 4 / 28
    bands = {r.group: r.days for r in f.wrong_bed_days([s1, s2], p, now=NOW, group_by="age_band")}
    assert bands == {"85+": 5}
    subs = {r.group: r.days for r in f.wrong_bed_days([s1, s2], p, now=NOW, group_by="subregion")}
    assert subs == {"s1": 3, f.UNKNOWN: 2}
    for dim, want in [
        ("hospital", {"h1": 5}),
        ("care_type", {"elv_high": 5}),
        ("source", {"hospital_ward": 5}),
    ]:
        rows = f.wrong_bed_days([s1, s2], p, now=NOW, group_by=dim)
        assert {r.group: r.days for r in rows} == want


def test_no_hospital_and_empty_period_rows() -> None:
    s = stay(
        ev(1, "medically_ready", loc(2026, 1, 2, 9)),
        ev(2, "transferred", loc(2026, 1, 4, 9)),
        hospital=None,
    )
    rows = f.wrong_bed_days([s], JAN, now=NOW, group_by="hospital")
    assert [(r.group, r.days) for r in rows] == [(f.UNKNOWN, 2)]
    empty = f.wrong_bed_days([], JAN, now=NOW)
    assert [(r.group, r.days, r.avg_daily) for r in empty] == [(None, 0, 0.0)]
    assert f.WrongBedRow(None, 0).avg_daily == 0.0


# --- 6.2 inflow ---------------------------------------------------------------------------------


def line(source: str, contact: str, count: int, **kw: object) -> f.InflowLine:
    base: dict[str, object] = {
        "source": source,
        "organisation_id": "o1",
        "subregion_id": "s1",
        "period_start": date(2026, 1, 5),
        "period_end": date(2026, 1, 6),
        "age_band": "85+",
        "urgency_native": "A1" if source == "rav" else "U3",
        "contact_type": contact,
        "count": count,
    }
    base.update(kw)
    return f.InflowLine(**base)  # type: ignore[arg-type]


def test_inflow_counting_rules_per_source() -> None:
    lines = [
        line("seh", "registration", 10),
        line("seh", "secondary_transfer", 3),  # excluded
        line("hap", "consult", 7),
        line("hap", "home_visit", 2),
        line("hap", "information_call", 50),  # excluded
        line("rav", "deployment", 5),
        line("rav", "ehgv", 4),  # counted, and a sub-count
        line("rav", "deployment", 9, urgency_native="C1"),  # no ambulance sent: excluded
        line("rav", "cancelled_run", 6),  # loze rit: excluded
        line("rav", "deployment", 1, urgency_native="B"),  # old scale
        line("seh", "registration", 4, age_band="65-74"),  # under 75
        line("seh", "registration", 8, period_start=date(2026, 2, 1)),  # outside January
        line("xyz", "registration", 8),  # unknown source never counts
    ]
    rows = f.inflow(lines, JAN, age_min=75)
    assert [(r.source, r.count, r.ehgv) for r in rows] == [
        ("hap", 9, 0),
        ("rav", 10, 4),
        ("seh", 10, 0),
    ]
    everyone = {r.source: r.count for r in f.inflow(lines, JAN)}
    assert everyone["seh"] == 14


def test_inflow_groups_and_filters() -> None:
    lines = [
        line("seh", "registration", 10),
        line("seh", "registration", 5, subregion_id=None, age_band="75-84"),
        line("seh", "registration", 2, period_start=date(2026, 1, 20)),
    ]
    by_month = f.inflow(lines, JAN, group_by="month")
    assert [(r.group, r.count) for r in by_month] == [("2026-01", 17)]
    by_week = f.inflow(lines, JAN, group_by="week")
    assert [(r.group, r.count) for r in by_week] == [("2026-W02", 15), ("2026-W04", 2)]
    by_sub = f.inflow(lines, JAN, group_by="subregion")
    assert [(r.group, r.count) for r in by_sub] == [("s1", 12), (f.UNKNOWN, 5)]
    by_band = f.inflow(lines, JAN, group_by="age_band")
    assert [(r.group, r.count) for r in by_band] == [("75-84", 5), ("85+", 12)]
    by_source = f.inflow(lines, JAN, group_by="source")
    assert [(r.group, r.count) for r in by_source] == [("seh", 17)]
    assert [r.count for r in f.inflow(lines, JAN, subregion_id="s1")] == [12]


# --- 6.4 lead times and escalations -------------------------------------------------------------


def placement(i: int, triage_min: int | None, accept_min: int | None, **kw: object) -> f.Stay:
    t = loc(2026, 1, 10, 8)
    events = [ev(1, "request_created", t)]
    if triage_min is not None:
        events.append(ev(2, "triaged", t + timedelta(minutes=triage_min)))
    if accept_min is not None:
        events.append(ev(3, "offer_accepted", t + timedelta(minutes=accept_min)))
    return stay(*events, key=f"p{i}", **kw)  # type: ignore[arg-type]


def test_lead_time_median_and_p90() -> None:
    stays = [placement(i, m, m * 10) for i, m in enumerate([5, 1, 3, 10])]
    stays.append(placement(9, None, None))
    (row,) = f.lead_times(stays, JAN, group_by=None)
    summary = row.summary()
    assert summary.requests == 5
    assert summary.triaged == 4
    minute = 60_000_000
    assert summary.triage_median_us == 4 * minute  # (3 + 5) / 2
    assert summary.triage_p90_us == 10 * minute  # rank ceil(3.6) = 4
    assert summary.placement_median_us == 40 * minute
    assert summary.placed == 4
    odd = f.lead_times(stays[:3], JAN, group_by=None)[0]
    assert odd.triage_median_us == 3 * minute
    assert odd.triage_p90_us == 5 * minute
    none = f.lead_times([placement(1, None, None)], JAN, group_by=None)[0].summary()
    assert (none.triage_median_us, none.triage_p90_us, none.placement_p90_us) == (None, None, None)
    assert f.median_us([]) is None
    assert f.p90_us([]) is None


def test_lead_time_cohort_is_requests_in_the_period_grouped() -> None:
    a = placement(1, 5, None, care_type="grz")
    b = placement(2, 7, None, birth_year=1990)
    feb = stay(ev(1, "request_created", loc(2026, 2, 1, 0)), key="x")
    no_request = stay(ev(1, "triaged", loc(2026, 1, 3)), key="y")
    rows = f.lead_times([a, b, feb, no_request], JAN)
    assert [(r.group, r.requests) for r in rows] == [("elv_high", 1), ("grz", 1)]
    assert [r.group for r in f.lead_times([a, b], JAN, group_by="week")] == ["2026-W02"]
    assert [r.requests for r in f.lead_times([a, b], JAN, flt=f.StayFilter(age_min=75))] == [1]
    assert f.lead_times([a, b], JAN, flt=f.StayFilter(definition="narrow")) == []


def test_escalations_rate_levels_and_declines() -> None:
    t = loc(2026, 1, 10, 8)
    s1 = stay(
        ev(1, "request_created", t),
        ev(2, "offer_declined", t, reason="staff_shortage"),
        ev(3, "offer_declined", t, reason="staff_shortage"),
        ev(4, "escalated", t, level="region"),
        ev(5, "hold_expired", t),
        key="a",
    )
    s2 = stay(
        ev(1, "request_created", t),
        ev(2, "escalated", t, level="region"),
        ev(3, "escalated", t, level="national"),
        ev(4, "offer_declined", t),
        key="b",
    )
    s3 = stay(ev(1, "request_created", t), key="c")
    (row,) = f.escalations([s1, s2, s3], JAN)
    assert (row.requests, row.escalated, row.to_region, row.to_national) == (3, 2, 1, 1)
    assert row.escalation_rate == 2 / 3
    assert row.declines == {"staff_shortage": 2, "other": 1}
    assert row.expired_holds == 1
    assert f.EscalationRow(None).escalation_rate is None


# --- capacity -----------------------------------------------------------------------------------


def test_capacity_stale_share_and_occupancy_at_census_moments() -> None:
    created = loc(2025, 12, 1)
    bed = f.UnitInfo("u1", "elv_high", "s1", 10, created)
    dn = f.UnitInfo("u2", "district_nursing", "s2", 4, created)
    new = f.UnitInfo("u3", "elv_high", "s1", 5, loc(2026, 1, 3, 12))
    early = f.UnitInfo("u6", "grz", "s1", 2, loc(2026, 1, 3, 12))  # created late, reported early
    gone = f.UnitInfo("u4", "elv_high", "s1", 5, created, active=False)
    reports = [
        f.Report(2, "u1", 3, loc(2026, 1, 1, 21)),  # 3 h before the midnight of 2 January
        f.Report(1, "u1", 12, loc(2026, 1, 1, 21)),  # same time, lower id: superseded
        f.Report(3, "u2", 1, loc(2026, 1, 1, 1)),  # 23 h old at midnight of 2 January
        f.Report(4, "u1", 0, loc(2026, 1, 5)),  # after every census moment
        f.Report(5, "u6", 1, loc(2026, 1, 2, 23)),  # proves u6 existed on 3 January
    ]
    moments = f.census_moments(f.Period(date(2026, 1, 2), date(2026, 1, 4)))
    assert moments == [loc(2026, 1, 2), loc(2026, 1, 3)]

    def ttl(care_type: str) -> timedelta:
        return timedelta(hours=24 if care_type.startswith("district_nursing") else 4)

    rows = f.capacity([bed, dn, new, gone, early], reports, moments, ttl=ttl)
    by = {r.group: r for r in rows}
    elv = by["elv_high"]
    # 2 Jan: fresh (3 h); 3 Jan: stale (27 h). u3 exists only from 3 Jan 12:00: not counted.
    assert (elv.unit_moments, elv.stale, elv.reported, elv.staffed, elv.occupied) == (
        2,
        1,
        2,
        20,
        14,
    )
    assert elv.stale_share == 0.5
    assert elv.occupancy == 14 / 20
    assert (by["grz"].unit_moments, by["grz"].stale, by["grz"].occupied) == (1, 0, 1)
    nursing = by["district_nursing"]
    assert (nursing.unit_moments, nursing.stale, nursing.occupied) == (2, 1, 6)
    none = f.capacity([bed], [], moments, ttl=ttl, group_by=None)[0]
    assert (none.stale, none.reported, none.occupancy) == (2, 0, None)
    assert f.CapacityRow(None).stale_share is None
    assert [r.group for r in f.capacity([bed, dn], [], moments, ttl=ttl, group_by="month")] == [
        "2026-01"
    ]
    subs = f.capacity([bed, dn], [], moments, ttl=ttl, group_by="subregion", subregion_id="s2")
    assert [(r.group, r.unit_moments) for r in subs] == [("s2", 2)]
    only = f.capacity([bed, dn], [], moments, ttl=ttl, care_type="elv_high", group_by=None)
    assert only[0].unit_moments == 2
    nosub = f.UnitInfo("u5", "grz", None, 1, created)
    assert f.capacity([nosub], [], moments, ttl=ttl, group_by="subregion")[0].group == f.UNKNOWN


def test_closed_unit_days_per_reason_at_census_moments() -> None:
    created = loc(2025, 12, 1)
    bed = f.UnitInfo("u1", "elv_high", "s1", 10, created)
    grz = f.UnitInfo("u2", "grz", "s1", 4, loc(2026, 1, 10))  # created after the period
    gone = f.UnitInfo("u3", "elv_high", "s1", 5, created, active=False)
    statuses = [
        # Closed before the midnight of 2 January, until just after the one of 3 January.
        f.StatusChange(2, "u1", False, "outbreak", loc(2026, 1, 1, 23), loc(2026, 1, 3, 0, 1)),
        # The same instant, lower id: superseded by the one above.
        f.StatusChange(1, "u1", False, "full", loc(2026, 1, 1, 23)),
        # Reopened by hand on 3 January at 12:00, closed again (no until) at 4 January 0:00.
        f.StatusChange(3, "u1", True, None, loc(2026, 1, 3, 12)),
        f.StatusChange(4, "u1", False, "renovation", loc(2026, 1, 4)),
        # Ends exactly at a census midnight: open at that moment.
        f.StatusChange(5, "u2", False, "staff_shortage", loc(2026, 1, 1), loc(2026, 1, 3)),
        f.StatusChange(6, "u3", False, "outbreak", loc(2026, 1, 1)),
    ]
    moments = f.census_moments(f.Period(date(2026, 1, 2), date(2026, 1, 6)))

    def ttl(care_type: str) -> timedelta:
        return timedelta(hours=4)

    rows = f.capacity([bed, grz, gone], [], moments, ttl=ttl, statuses=statuses)
    by = {r.group: r for r in rows}
    # u1: outbreak at 2 and 3 Jan, renovation at 4 and 5 Jan.
    assert by["elv_high"].closed == {"outbreak": 2, "renovation": 2}
    # u2 did not exist as a unit-moment, but its closure proves it existed: 2 January only.
    assert (by["grz"].closed, by["grz"].unit_moments) == ({"staff_shortage": 1}, 0)
    weeks = f.capacity([bed], [], moments, ttl=ttl, statuses=statuses, group_by="week")
    assert [(r.group, r.closed) for r in weeks] == [
        ("2026-W01", {"outbreak": 2, "renovation": 1}),
        ("2026-W02", {"renovation": 1}),
    ]


# --- 6.3 GGZ crisis -----------------------------------------------------------------------------


def ggz(key: str, urgency: int, *events: f.Event, **kw: object) -> f.Stay:
    return stay(*events, key=key, care_type="ggz_crisis", urgency=urgency, **kw)  # type: ignore[arg-type]


def test_ggz_norms_by_urgency() -> None:
    assert f.ggz_norm(0) == f.ggz_norm(2) == timedelta(hours=1)
    assert f.ggz_norm(3) == timedelta(hours=4)
    assert f.ggz_norm(4) == f.ggz_norm(5) == timedelta(hours=24)


def test_ggz_within_norm_late_open_and_left() -> None:
    t0 = loc(2026, 1, 10, 8)
    h = timedelta(hours=1)
    cases = [
        # within: exactly at the norm (t1 - t0 <= norm), clock from the somatic clearance
        ggz(
            "a",
            2,
            ev(1, "request_created", t0 - h),
            ev(2, "medically_ready", t0),
            ev(3, "offer_accepted", t0 + h),
        ),
        ggz("b", 3, ev(1, "request_created", t0), ev(2, "offer_accepted", t0 + 5 * h)),  # late
        ggz("c", 4, ev(1, "request_created", t0)),  # open, 25 h at now: overdue (failure)
        ggz("d", 4, ev(1, "request_created", t0 + 2 * h)),  # open, 23 h: pending, excluded
        ggz("e", 3, ev(1, "request_created", t0), ev(2, "cancelled", t0 + h)),  # left
        stay(ev(1, "request_created", t0), key="f"),  # not a GGZ case
        ggz("g", 3, ev(1, "triaged", t0)),  # no request: not a case
        ggz("h", 3, ev(1, "request_created", loc(2026, 2, 3))),  # t0 outside the period
    ]
    now = t0 + 25 * h
    (row,) = f.ggz_crisis_within_norm(cases, JAN, now=now)
    assert (row.cases, row.within, row.late, row.open_overdue, row.open_within) == (5, 1, 1, 1, 1)
    assert row.left_before_assessment == 1
    assert row.denominator == 3
    assert row.share == 1 / 3
    assert f.GgzRow(None).share is None
    weekly = f.ggz_crisis_within_norm(cases, JAN, now=now, group_by="week")
    assert [r.group for r in weekly] == ["2026-W02"]
    assert f.ggz_crisis_within_norm(cases, JAN, now=now, subregion_id="other") == []
    bands = f.ggz_crisis_within_norm(cases, JAN, now=now, group_by="age_band")
    assert [(r.group, r.cases) for r in bands] == [("85+", 5)]


# --- targets ------------------------------------------------------------------------------------


def test_wrong_bed_target_follows_a_straight_path_to_2030() -> None:
    t = f.wrong_bed_target(8000.0, baseline_year=2022, year=2026, fraction=1.0, measured=7000.0)
    assert t.value == 8000 * (1 - 0.25 * 4 / 8)  # 7000
    assert t.on_track is True
    later = f.wrong_bed_target(8000.0, baseline_year=2022, year=2035, fraction=0.5, measured=3100)
    assert later.value == 8000 * 0.75 * 0.5
    assert later.on_track is False
    same = f.wrong_bed_target(8000.0, baseline_year=2030, year=2030, fraction=1.0, measured=1)
    assert same.value == 6000.0


def test_inflow_and_ggz_targets() -> None:
    t = f.inflow_target("seh", 36500.0, baseline_year=2022, fraction=31 / 365, measured=3000.0)
    assert t.value == 36500 * 31 / 365
    assert t.on_track is True
    assert t.rule == "SEH75(Y) <= SEH75(2022)"
    assert f.ggz_target(0.91).on_track is True
    assert f.ggz_target(0.89).on_track is False
    assert f.ggz_target(None).on_track is None


def test_year_fraction() -> None:
    assert f.year_fraction(JAN) == (2026, 31 / 365)
    assert f.year_fraction(f.Period(date(2028, 1, 1), date(2029, 1, 1))) == (2028, 1.0)
    assert f.year_fraction(f.Period(date(2025, 12, 1), date(2026, 2, 1))) is None
