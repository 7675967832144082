"""Pure parts of the region plans' KPIs not reached through the SQL property tests: the admission
guarantee's target, the all-age ambulance target and the shortage count's filters."""

from datetime import UTC, date, datetime

from app.kpi import formulas as f


def test_the_admission_guarantee_is_on_track_only_at_the_threshold() -> None:
    assert f.guarantee_target(None).on_track is None
    assert f.guarantee_target(0.99).on_track is False
    met = f.guarantee_target(1.0)
    assert (met.on_track, met.value, met.target_year) == (True, 1.0, 2025)


def test_ambulance_rides_fall_ten_percent_on_a_straight_path_to_2025() -> None:
    halfway = f.ambulance_rides_target(
        1000.0, baseline_year=2022, year=2024, fraction=1.0, measured=930.0
    )
    assert round(halfway.value, 6) == round(1000 * (1 - 0.10 * 2 / 3), 6)
    assert halfway.on_track is True
    after = f.ambulance_rides_target(
        1000.0, baseline_year=2022, year=2027, fraction=0.5, measured=460.0
    )
    assert round(after.value, 6) == 450.0  # the end value, scaled to half a year
    assert after.on_track is False
    same_year = f.ambulance_rides_target(
        1000.0, baseline_year=2025, year=2025, fraction=1.0, measured=900.0
    )
    assert round(same_year.value, 6) == 900.0


def test_shortage_counts_only_the_period_subregion_and_care_type_asked() -> None:
    period = f.Period(date(2026, 3, 1), date(2026, 3, 3))
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    events = [
        f.Shortage("hold_refused", "grz", "s1", at),
        f.Shortage("search_empty", "grz", "s2", at),
        f.Shortage("search_empty", "elv_low", "s1", at),
        f.Shortage("search_empty", "grz", "s1", datetime(2026, 4, 1, 12, tzinfo=UTC)),
    ]

    rows = f.shortage(events, period, subregion_id="s1", care_type="grz")

    assert [(r.day, r.care_type, r.subregion, r.holds_refused) for r in rows] == [
        (date(2026, 3, 1), "grz", "s1", 1)
    ]
