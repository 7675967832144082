"""The analyst's pages: the KPI dashboard (/ui/kpis, with CSV and XLSX of what it shows) and the
printable monthly ROAZ report (/ui/reports/roaz). Both call the KPI services with the person's
Principal, so an analyst sees aggregates with small cells suppressed, exactly as the API gives.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.db import utcnow
from app.http.deps import DbDep, SettingsDep
from app.kpi import formulas as f
from app.kpi import report as report_service
from app.kpi import service as kpi_service
from app.web import dashboard as dash
from app.web.deps import AnalystUser
from app.web.i18n import CARE_TYPE_LABELS, DECLINE_REASON_LABELS, N_, Translator
from app.web.templating import render, request_locale, translator

router = APIRouter(include_in_schema=False)

KPI_LABELS = {name: spec.title for name, spec in dash.SPECS.items()}  # marked in app.kpi.specs
SPAN_LABELS = {"month": N_("Month"), "week": N_("Week"), "year": N_("Year")}
GROUP_LABELS = {
    "month": N_("month"),
    "week": N_("week"),
    "hospital": N_("hospital"),
    "subregion": N_("subregion"),
    "age_band": N_("age band"),
    "care_type": N_("care type"),
    "source": N_("source"),
    "patient_group": N_("patient group"),
}
FIELD_LABELS = {
    "days": N_("Wrong-bed days"),
    "patients": N_("Patients"),
    "avg_daily": N_("Average per day"),
    "intervals": N_("Intervals"),
    "open_intervals": N_("Still waiting"),
    "backdated": N_("Back-dated"),
    "hospital_transfers": N_("Back to hospital"),
    "deaths": N_("Deaths"),
    "source": N_("Source"),
    "count": N_("Contacts"),
    "ehgv": N_("Treated without transport"),
    "requests": N_("Requests"),
    "triaged": N_("Triaged"),
    "triage_median_minutes": N_("Time to triage, median (min)"),
    "triage_p90_minutes": N_("Time to triage, P90 (min)"),
    "placed": N_("Placed"),
    "placement_median_minutes": N_("Time to placement, median (min)"),
    "placement_p90_minutes": N_("Time to placement, P90 (min)"),
    "escalated": N_("Escalated"),
    "escalation_rate": N_("Escalation rate"),
    "to_region": N_("To the region"),
    "to_national": N_("National"),
    "expired_holds": N_("Expired holds"),
    "unit_moments": N_("Unit-midnights"),
    "stale": N_("Stale"),
    "stale_share": N_("Stale share"),
    "staffed": N_("Staffed places"),
    "occupied": N_("Occupied"),
    "occupancy": N_("Occupancy"),
    "cases": N_("Cases"),
    "within": N_("Within norm"),
    "late": N_("Late"),
    "open_overdue": N_("Open, overdue"),
    "open_within": N_("Open, within norm"),
    "left_before_assessment": N_("Left before assessment"),
    "share": N_("Share within norm"),
    "baseline": N_("Baseline"),
    "target": N_("Target"),
    "wrong_bed_patients": N_("Patients waiting in a wrong bed"),
    "inflow_seh": N_("Inflow 75+ emergency departments (SEH)"),
    "inflow_hap": N_("Inflow 75+ GP posts (HAP)"),
    "inflow_rav": N_("Inflow 75+ ambulance (RAV)"),
    "ggz_within_norm": N_("GGZ crisis within norm"),
    "wrong_bed_days": N_("Wrong-bed days 75+"),
    "closed_unit_days": N_("Closed unit-days"),
    "cancelled": N_("Cancelled without a place"),
    "day": N_("Day"),
    "waiting": N_("Patients waiting"),
    "patient_days": N_("Patient-days"),
    "mean": N_("Mean per day"),
    "peak": N_("Peak"),
    "referrals": N_("Referrals 65+"),
    "recorded": N_("ACP recorded"),
    "not_recorded": N_("ACP not recorded"),
    "unknown": N_("Not answered"),
    "share_known": N_("Share of answered"),
    "over_norm": N_("Over the norm"),
    "cancelled_without_place": N_("Cancelled without a place"),
    "re_referrals": N_("Re-referred within 30 days"),
    "care_type": N_("Care type"),
    "subregion": N_("Subregion"),
    "holds_refused": N_("Holds refused (no place)"),
    "searches_empty": N_("Searches without result"),
    "organisation_name": N_("Organisation"),
    "targeted": N_("Units asked"),
    "answered": N_("Answered"),
    "answered_within_deadline": N_("Answered in time"),
    "share_within_deadline": N_("Share answered in time"),
    "median_answer_seconds": N_("Median answer time (s)"),
}
SOURCE_LABELS = {"seh": N_("SEH"), "hap": N_("HAP"), "rav": N_("RAV"), "vvt_acute": N_("Acute VVT")}


def _field_label(tr: Translator, field: str) -> str:
    if field.startswith("decline_"):
        reason = field[len("decline_") :]
        return tr("Declined: %(reason)s", reason=tr(DECLINE_REASON_LABELS.get(reason, reason)))
    return tr(FIELD_LABELS.get(field, field))


def _group_label(
    tr: Translator, group_by: str | None, group: str | None, names: dict[str, str]
) -> str:
    if group is None:
        return tr("Total")
    if group == f.UNKNOWN:
        return tr("unknown")
    if group_by == "care_type":
        return tr(CARE_TYPE_LABELS.get(group, group))
    if group_by == "source":
        return tr(SOURCE_LABELS.get(group, group))
    if group_by == "hospital":
        return names.get(group, group)
    return group


def _format(tr: Translator, field: str, value: Any, lang: str) -> str:
    """A number as the table shows it: shares as percentages, minutes with one decimal."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return tr("yes") if value else tr("no")
    if isinstance(value, str):
        if field == "care_type":
            return tr(CARE_TYPE_LABELS.get(value, value))
        return tr(SOURCE_LABELS[value]) if value in SOURCE_LABELS else value
    if field in dash.SHARES:
        text = f"{value * 100:.1f} %"
    elif isinstance(value, float) and not value.is_integer():
        text = f"{value:.1f}"
    else:
        text = f"{int(value)}"
    return text.replace(".", ",") if lang == "nl" else text


def _chart_json(
    tr: Translator, chart: dict[str, Any], view: dash.View, names: dict[str, str]
) -> str:
    """The chart's data for static/kpis.js, translated, safe inside a <script> element."""
    series = []
    for s in chart["series"]:
        name = _field_label(tr, s["field"])
        if s["scope"] is not None:
            name = f"{name} · {tr(SOURCE_LABELS.get(s['scope'], s['scope']))}"
        series.append({"name": name, "kind": s["kind"], "data": s["data"]})
    payload = {
        "labels": [_group_label(tr, view.group_by, g, names) for g in chart["labels"]],
        "series": series,
        "percent": chart["percent"],
        "gap": tr("suppressed"),
    }
    text = json.dumps(payload, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _request_view(request: Request) -> dash.View:
    return dash.parse_view(dict(request.query_params), today=f.local_date(utcnow()))


def _names(options: dash.Options) -> dict[str, str]:
    return dict(options.hospitals)


@router.get("/ui/kpis")
async def kpis_page(
    request: Request, person: AnalystUser, db: DbDep, settings: SettingsDep
) -> Response:
    view = _request_view(request)
    tr = translator(request)
    answer = await dash.answer(db, person, view, now=utcnow(), settings=settings)
    options = await dash.filter_options(db, person)
    names = _names(options)
    lang = request_locale(request)
    return render(
        request,
        "kpis.html",
        {
            "title": N_("KPIs"),
            "view": view,
            "answer": answer,
            "table": dash.table(answer, view.kpi),
            "chart_json": _chart_json(tr, dash.chart(answer, view), view, names),
            "options": options,
            "kpi_labels": KPI_LABELS,
            "span_labels": SPAN_LABELS,
            "group_labels": GROUP_LABELS,
            "spec": dash.SPECS[view.kpi],
            "groups": [g for g in dash.GROUP_ORDER if g in dash.SPECS[view.kpi].groups],
            "filters": dash.SPECS[view.kpi].filters,
            "ages": dash.AGES,
            "kpis": dash.KPIS,
            "spans": dash.SPANS,
            "small_cell": kpi_service.SMALL_CELL,
            "field_label": lambda field: _field_label(tr, field),
            "group_label": lambda g: _group_label(tr, view.group_by, g, names),
            "fmt": lambda field, value: _format(tr, field, value, lang),
            "source_labels": SOURCE_LABELS,
            "qs": lambda **changes: _qs(view, **changes),
            "tab_links": {kpi: _qs(dash.switch(view, kpi)) for kpi in dash.KPIS},
        },
    )


def _qs(view: dash.View, **changes: Any) -> str:
    return urlencode(view.params(**changes))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/ui/kpis/export.{ext}")
async def kpis_export(
    request: Request,
    ext: Literal["csv", "xlsx"],
    person: AnalystUser,
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    """What the dashboard shows as CSV (the API's CSV) or as a spreadsheet of the same lines."""
    view = _request_view(request)
    answer = await dash.answer(db, person, view, now=utcnow(), settings=settings)
    if ext == "csv":
        body, media = kpi_service.render_csv(answer).encode(), "text/csv; charset=utf-8"
    else:
        body, media = dash.xlsx(answer, title=view.kpi), XLSX
    filename = f"{view.kpi}_{view.label}.{ext}"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/ui/reports/roaz")
async def roaz_page(
    request: Request, person: AnalystUser, db: DbDep, settings: SettingsDep
) -> Response:
    now = utcnow()
    month = request.query_params.get("month") or f"{f.local_date(now):%Y-%m}"
    tr = translator(request)
    report = await report_service.roaz_report(db, person, month, now=now, settings=settings)
    lang = request_locale(request)
    units: dict[str, str] = {x.key: x.measure for x in report.figures}

    def fmt(field: str, value: Any) -> str:
        return _format(tr, units.get(field, field), value, lang)

    def decline_label(reason: str) -> str:
        return tr(DECLINE_REASON_LABELS.get(reason, reason))

    return render(
        request,
        "roaz.html",
        {
            "title": N_("ROAZ monthly report"),
            "report": report,
            "field_label": lambda field: _field_label(tr, field),
            "fmt": fmt,
            "decline_label": decline_label,
            "small_cell": kpi_service.SMALL_CELL,
            "group_label": lambda g: _group_label(tr, "subregion", g, {}),
        },
    )
