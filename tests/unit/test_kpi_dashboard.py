"""The dashboard's view (query string <-> question), its chart series and the ROAZ report's
month parsing and decline ranking: pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.enums import CareType
from app.errors import InvalidInput
from app.kpi import formulas as f
from app.kpi import report
from app.kpi.schemas import PeriodRead, TargetRead, WrongBedAnswer, WrongBedRead
from app.web import dashboard as dash

TODAY = date(2026, 12, 5)


def test_defaults_are_this_month_by_week_for_75_plus() -> None:
    view = dash.parse_view({}, today=TODAY)
    assert (view.kpi, view.span, view.label) == ("wrong_bed_days", "month", "2026-12")
    assert (view.period.start, view.period.end) == (date(2026, 12, 1), date(2027, 1, 1))
    assert (view.group_by, view.age_min, view.definition) == ("week", 75, "broad")


@pytest.mark.parametrize(
    ("span", "text", "label", "start", "end"),
    [
        ("month", "2026-02", "2026-02", date(2026, 2, 1), date(2026, 3, 1)),
        ("week", "2026-W01", "2026-W01", date(2025, 12, 29), date(2026, 1, 5)),
        ("year", "2024", "2024", date(2024, 1, 1), date(2025, 1, 1)),
        # another span's text: the span that contains its first day
        ("year", "2026-11", "2026", date(2026, 1, 1), date(2027, 1, 1)),
        ("month", "2026-W48", "2026-11", date(2026, 11, 1), date(2026, 12, 1)),
        ("week", "2026-11", "2026-W44", date(2026, 10, 26), date(2026, 11, 2)),
    ],
)
def test_the_period_picker(span: str, text: str, label: str, start: date, end: date) -> None:
    view = dash.parse_view({"span": span, "period": text}, today=TODAY)
    assert (view.label, view.period.start, view.period.end) == (label, start, end)


def test_the_query_string_round_trips_and_moves() -> None:
    params = {
        "kpi": "escalations",
        "span": "month",
        "period": "2026-11",
        "group_by": "care_type",
        "age_min": "",
        "definition": "narrow",
        "hospital": "",
        "subregion": "leiden",
        "care_type": "grz",
    }
    view = dash.parse_view(params, today=TODAY)
    assert view.care_type is CareType.GRZ
    assert view.age_min is None
    assert dict(view.params()) == params
    assert dash.parse_view(dict(view.params()), today=TODAY) == view
    assert view.moved(-1).label == "2026-10"
    assert view.moved(1).label == "2026-12"
    assert view.api_params() == {
        "from": "2026-11-01",
        "to": "2026-12-01",
        "group_by": "care_type",
        "definition": "narrow",
        "subregion": "leiden",
        "care_type": "grz",
    }
    # a KPI without these filters drops them, and a grouping it cannot do
    other = dash.switch(view, "capacity")
    assert dict(other.params())["care_type"] == "grz"
    assert "definition" not in dict(other.params())
    assert (
        dash.switch(dash.parse_view({"group_by": "hospital"}, today=TODAY), "capacity").group_by
        == "week"
    )


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"kpi": "beds"}, "query:kpi"),
        ({"span": "day"}, "query:span"),
        ({"period": "2026-13"}, "query:period"),
        ({"period": "26"}, "query:period"),
        ({"group_by": "hospital", "kpi": "inflow"}, "query:group_by"),
        ({"age_min": "-1"}, "query:age_min"),
        ({"age_min": "121"}, "query:age_min"),
        ({"definition": "wide"}, "query:definition"),
        ({"hospital": "x"}, "query:hospital"),
        ({"care_type": "spa"}, "query:care_type"),
        ({"span": "year", "period": "2014"}, "query:period"),
        ({"span": "year", "period": "9999"}, "query:period"),
        ({"span": "month", "period": "9999-12"}, "query:period"),
        ({"span": "week", "period": "0000-W01"}, "query:period"),
    ],
)
def test_bad_views_name_the_parameter(params: dict[str, str], pointer: str) -> None:
    with pytest.raises(InvalidInput) as err:
        dash.parse_view(params, today=TODAY)
    assert [e["pointer"] for e in err.value.errors or []] == [pointer]


def _row(group: str | None, days: int | None, suppressed: bool = False) -> WrongBedRead:
    n = None if days is None else 1
    return WrongBedRead(
        group=group,
        days=days,
        patients=None if suppressed else 9,
        avg_daily=None,
        intervals=n,
        open_intervals=n,
        backdated=n,
        hospital_transfers=n,
        deaths=n,
        calendar_days=30,
        suppressed=suppressed,
    )


def test_the_chart_has_gaps_for_suppressed_cells_and_target_lines_per_month() -> None:
    view = dash.parse_view({"span": "year", "period": "2026", "group_by": "month"}, today=TODAY)
    rows = [_row(f"2026-{m:02d}", 10 * m) for m in range(1, 13)]
    rows[1] = _row("2026-02", None, suppressed=True)
    target = TargetRead(
        kpi="wrong_bed_days",
        scope="age75+/broad",
        rule="r",
        baseline_year=2022,
        baseline_value=3650.0,
        baseline_source=None,
        target_year=2030,
        value=3285.0,
        fraction=1.0,
        measured=100.0,
        on_track=True,
    )
    answer = WrongBedAnswer(
        kpi="wrong_bed_days",
        period=PeriodRead.model_validate({"from": "2026-01-01", "to": "2027-01-01", "days": 365}),
        group_by="month",
        filters={},
        suppressed_cells=1,
        definition="broad",
        rows=rows,
        total=_row(None, 660),
        targets=[target],
        computed_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    chart = dash.chart(answer, view)
    assert chart["labels"] == [f"2026-{m:02d}" for m in range(1, 13)]
    days, baseline, goal = chart["series"]
    assert days["data"][:3] == [10.0, None, 30.0]
    assert (baseline["field"], goal["field"]) == ("baseline", "target")
    assert goal["data"][0] == 3285.0 / 365 * 31 == pytest.approx(279.0)
    assert baseline["data"][1] == pytest.approx(10.0 * 28)
    table = dash.table(answer, "wrong_bed_days")
    assert [r.suppressed for r in table.rows][:2] == [False, True]
    assert table.totals[0].values["days"] == 660
    # split by something else than time: the target applies to the region, no line
    by_sub = dash.parse_view({"group_by": "subregion"}, today=TODAY)
    assert [s["field"] for s in dash.chart(answer, by_sub)["series"]] == ["days"]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("2026-1", "YYYY-MM"),
        ("2026-00", "YYYY-MM"),
        ("2026/11", "YYYY-MM"),
        ("2015-12", "before 2016-01"),
        ("2027-01", "after the current month"),
    ],
)
def test_a_bad_report_month(text: str, detail: str) -> None:
    with pytest.raises(InvalidInput, match=detail):
        report.parse_month(text, today=TODAY)


def test_report_months_and_top_reasons() -> None:
    p = report.parse_month("2024-02", today=TODAY)
    assert (p.start, p.end, p.days) == (date(2024, 2, 1), date(2024, 3, 1), 29)
    last = report.last_year(p)
    assert (last.start, last.end) == (date(2023, 2, 1), date(2023, 3, 1))
    assert report.parse_month("2026-12", today=TODAY).end == date(2027, 1, 1)
    reasons = report.top_reasons({"a": 1, "b": 5, "c": 5, "d": 0, "e": 2, "f": 3, "g": 4}, 5)
    assert [(r.reason, r.count) for r in reasons] == [
        ("b", 5),
        ("c", 5),
        ("g", 4),
        ("f", 3),
        ("e", 2),
    ]
    assert reasons[0].share == pytest.approx(5 / 20)
    assert report.top_reasons(None) == []
    spec = next(s for s in report.FIGURES if s.key == "wrong_bed_days")
    assert report.figure_query(spec, p) == (
        "/v1/kpis/wrong-bed-days?from=2024-02-01&to=2024-03-01&age_min=75"
    )
    assert f.DEFINITION_VERSION


def test_the_inflow_chart_has_a_series_and_a_target_line_per_source() -> None:
    from app.kpi.schemas import InflowAnswer, InflowRead

    view = dash.parse_view({"kpi": "inflow", "period": "2026-11", "group_by": "week"}, today=TODAY)
    rows = [
        InflowRead(source="seh", group="2026-W44", count=40, ehgv=None),
        InflowRead(source="seh", group="2026-W45", count=None, ehgv=None, suppressed=True),
        InflowRead(source="rav", group="2026-W45", count=12, ehgv=3),
    ]
    target = TargetRead(
        kpi="inflow",
        scope="seh",
        rule="r",
        baseline_year=2022,
        baseline_value=3650.0,
        baseline_source=None,
        target_year=2030,
        value=300.0,
        fraction=30 / 365,
        measured=40.0,
        on_track=True,
    )
    answer = InflowAnswer(
        kpi="inflow",
        period=PeriodRead.model_validate({"from": "2026-11-01", "to": "2026-12-01", "days": 30}),
        group_by="week",
        filters={},
        suppressed_cells=1,
        rows=rows,
        totals=[],
        targets=[target],
        computed_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    chart = dash.chart(answer, view)
    assert chart["labels"] == ["2026-W44", "2026-W45"]
    seh, hap, rav, vvt, baseline, goal = chart["series"]
    assert (seh["scope"], seh["data"]) == ("seh", [40.0, None])
    assert (hap["scope"], hap["data"]) == ("hap", [None, None])
    assert (rav["scope"], rav["data"]) == ("rav", [None, 12.0])
    assert (vvt["scope"], vvt["data"]) == ("vvt_acute", [None, None])
    # W44 of November 2026 is 1-1 Nov (one day in the period), W45 the seven days after it
    assert goal["data"] == [10.0, 70.0]
    assert baseline["data"] == [10.0, 70.0]
    assert chart["percent"] is False
    assert [t.values["source"] for t in dash.table(answer, "inflow").totals] == []


def test_rows_without_a_group_are_named_by_their_day_and_a_day_is_one_chart_point() -> None:
    from app.kpi.schemas import ShortageAnswer, ShortageRead, ShortageTotalRead

    view = dash.parse_view({"kpi": "shortage", "period": "2026-11"}, today=TODAY)
    assert view.group_by is None  # shortage is always per day
    rows = [
        ShortageRead(
            day=date(2026, 11, d),
            care_type=c,
            subregion="leiden",
            holds_refused=h,
            searches_empty=1,
        )
        for d, c, h in ((2, "elv_high", 1), (2, "grz", 2), (5, "grz", 0))
    ]
    answer = ShortageAnswer(
        kpi="shortage",
        period=PeriodRead.model_validate({"from": "2026-11-01", "to": "2026-12-01", "days": 30}),
        group_by=None,
        filters={},
        suppressed_cells=0,
        rows=rows,
        total=ShortageTotalRead(holds_refused=3, searches_empty=3),
        computed_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    table = dash.table(answer, "shortage")
    assert [r.group for r in table.rows] == ["2026-11-02", "2026-11-02", "2026-11-05"]
    assert table.columns == ["care_type", "subregion", "holds_refused", "searches_empty"]
    # the total has no care type or subregion: those cells are absent, not empty
    assert table.totals[0].values == {"holds_refused": 3, "searches_empty": 3}
    chart = dash.chart(answer, view)
    assert chart["labels"] == ["2026-11-02", "2026-11-05"]
    assert [s["data"] for s in chart["series"]] == [[3.0, 0.0], [2.0, 1.0]]
    assert chart["percent"] is False


def test_every_kpi_spec_has_a_tab_its_columns_and_a_chart() -> None:
    assert tuple(dash.SPECS) == dash.KPIS
    for name, spec in dash.SPECS.items():
        assert dash.columns(name), name
        assert dash.charted(name), name
        assert spec.key == "group" or not spec.groups, name
        switched = dash.switch(dash.parse_view({"group_by": "hospital"}, today=TODAY), name)
        assert switched.group_by is None or switched.group_by in spec.groups
        assert dash.parse_view(dict(switched.params()), today=TODAY) == switched
