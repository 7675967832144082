"""The pure exchange mappings: CSV parsing and writing, FHIR search values, posted
MeasureReports, OperationOutcomes, and resources that validate with the R4B models."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.exchange import fhir
from app.exchange import snapshot as snap
from app.exchange.views import LocationView, OrganisationView, StatusView, UnitView, is_accepting

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def unit(**changes: object) -> UnitView:
    org = OrganisationView(
        id=uuid.UUID(int=1),
        name="Topaz",
        kind="vvt",
        active=True,
        updated_at=NOW,
        agb="12345678",
    )
    loc = LocationView(
        id=uuid.UUID(int=2),
        organisation_id=org.id,
        organisation_name=org.name,
        name="Huis Leiden",
        address="Hoofdstraat 1",
        postcode="2300 AA",
        municipality="Leiden",
        latitude=52.16,
        longitude=4.49,
        phone=None,
        active=True,
        updated_at=NOW,
        subregion_code="leiden",
    )
    values: dict[str, object] = {
        "id": uuid.UUID(int=3),
        "name": "GRZ",
        "care_type": "grz",
        "target_groups": ("somatic",),
        "features": ("oxygen",),
        "sex_policy": "any",
        "staffed": 10,
        "label": None,
        "active": True,
        "updated_at": NOW,
        "location": loc,
        "organisation": org,
        "free": 4,
        "held": 1,
        "expected_free_24h": 5,
        "reported_at": NOW - timedelta(minutes=30),
    }
    values.update(changes)
    return UnitView(**values)  # type: ignore[arg-type]


def test_closed_status_ends_at_until() -> None:
    closed = StatusView(accepting=False, reason="full", until=NOW + timedelta(hours=1))
    assert is_accepting(None, NOW)
    assert not is_accepting(closed, NOW)
    assert is_accepting(closed, NOW + timedelta(hours=1))
    assert not is_accepting(StatusView(accepting=False, reason="outbreak"), NOW + timedelta(days=9))


def test_snapshot_row_and_csv() -> None:
    closed = StatusView(accepting=False, reason="outbreak", until=NOW + timedelta(days=1))
    row = snap.snapshot_row(unit(status=closed), now=NOW, stale_after=timedelta(hours=4))
    assert (row["available"], row["accepting"], row["not_accepting_reason"]) == (
        3,
        False,
        "outbreak",
    )
    assert (row["age_minutes"], row["stale"], row["organisation_agb"]) == (30, False, "12345678")
    stale = snap.snapshot_row(unit(), now=NOW, stale_after=timedelta(minutes=29))
    assert stale["stale"] is True
    (line,) = csv.DictReader(io.StringIO(snap.to_csv([row])))
    assert list(line) == list(snap.SNAPSHOT_COLUMNS)
    assert (line["accepting"], line["expected_free_24h"], line["external_id"]) == ("false", "5", "")
    assert line["reported_at"] == "2026-12-05T08:30:00Z"


def test_upload_reads_the_snapshot_columns_it_needs() -> None:
    row = snap.snapshot_row(unit(), now=NOW, stale_after=timedelta(hours=4))
    reports, errors = snap.parse_upload(snap.to_csv([row]))
    assert errors == []
    (report,) = reports
    assert (report.unit_id, report.free, report.expected_free_24h) == (uuid.UUID(int=3), 4, 5)
    assert report.reported_at == NOW - timedelta(minutes=30)


@pytest.mark.parametrize(
    ("text", "pointers"),
    [
        ("", ["/lines/1"]),
        ("unit_id,places\n", ["/lines/1"]),
        ("unit_id,free\n", ["/lines/2"]),
        ('unit_id,free\n"x,1\n', ["/lines/2"]),  # an unclosed quote: not CSV from there on
        ("external_id,free\n,1\nward-7,200000\n", ["/lines/2/external_id", "/lines/3/free"]),
        (
            "unit_id,free,reported_at\n" + str(uuid.UUID(int=3)) + ",1,2026-12-05T09:00\n",
            ["/lines/2/reported_at"],
        ),
        ("unit_id,free\n" + str(uuid.UUID(int=3)) + ",1\x00\n", ["/lines/2"]),
    ],
)
def test_upload_errors_name_lines_and_columns(text: str, pointers: list[str]) -> None:
    reports, errors = snap.parse_upload(text)
    assert reports == []
    assert [e["pointer"] for e in errors] == pointers


def test_upload_by_external_id_with_semicolons() -> None:
    reports, errors = snap.parse_upload("\ufeffExternal_ID;Free\nward-7;2\n\n")
    assert errors == []
    assert [(r.external_id, r.free, r.unit_field, r.line) for r in reports] == [
        ("ward-7", 2, "external_id", 2)
    ]


def test_resources_validate() -> None:
    u = unit(status=StatusView(accepting=False, reason="full", since=NOW, until=NOW + timedelta(1)))
    service = fhir.validated(fhir.healthcare_service(u, now=NOW))
    assert service["notAvailable"][0]["during"] == {
        "start": "2026-12-05T09:00:00Z",
        "end": "2026-12-06T09:00:00Z",
    }
    org = fhir.validated(fhir.organization(u.organisation))
    assert [i["system"] for i in org["identifier"]] == [fhir.AGB_SYSTEM, fhir.URI_SYSTEM]
    report = fhir.validated(fhir.measure_report([u]))
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    assert counts == {"capacity": 10, "occupied": 6, "available": 3, "held": 1}
    assert fhir.parse_measure_report_id(report["id"]) == (u.location.id, "grz")
    fhir.validated(fhir.measure(updated_at=NOW))
    fhir.validated(fhir.location(u.location))
    fhir.validated(fhir.capability_statement(base_url="http://x/fhir", version="1", now=NOW))


def test_exported_report_posts_back_per_unit() -> None:
    report = fhir.measure_report([unit()])
    (posted,), issues = fhir.parse_measure_report(report)
    assert issues == []
    assert (posted.location_id, posted.care_type, posted.free) == (uuid.UUID(int=2), "grz", 3)
    assert posted.unit_refs == ((fhir.URI_SYSTEM, f"urn:uuid:{uuid.UUID(int=3)}"),)
    assert posted.location_identifier == (fhir.URI_SYSTEM, f"urn:uuid:{uuid.UUID(int=2)}")
    assert posted.count_path.endswith(".stratum[0].population[2].count")


@pytest.mark.parametrize(
    ("raw", "inside", "outside"),
    [
        ("2026-12-05", NOW, NOW + timedelta(days=1)),
        ("ge2026-12-05T09:00:00Z", NOW, NOW - timedelta(seconds=1)),
        ("lt2026-12", datetime(2026, 11, 30, tzinfo=UTC), NOW),
        ("gt2025", NOW, datetime(2025, 6, 1, tzinfo=UTC)),
        ("le2026-12-05T10:00:00+01:00", NOW, NOW + timedelta(seconds=1)),
        ("ne2026", datetime(2025, 1, 1, tzinfo=UTC), NOW),
    ],
)
def test_date_params(raw: str, inside: datetime, outside: datetime) -> None:
    param = fhir.parse_date_param(raw)
    assert param.matches(inside)
    assert not param.matches(outside)
    assert not param.matches(None)


def test_bad_date_param() -> None:
    with pytest.raises(ValueError, match="not a FHIR date"):
        fhir.parse_date_param("soon")


def test_token_and_string_matching() -> None:
    pairs = [(fhir.AGB_SYSTEM, "123"), (fhir.URI_SYSTEM, "urn:uuid:x")]
    assert fhir.token_matches("123", pairs)
    assert fhir.token_matches(f"{fhir.AGB_SYSTEM}|123", pairs)
    assert not fhir.token_matches(f"{fhir.URA_SYSTEM}|123", pairs)
    assert fhir.token_matches(f"{fhir.URA_SYSTEM}|1,{fhir.AGB_SYSTEM}|", pairs)
    assert not fhir.token_matches("|123", pairs)
    assert fhir.string_matches("leid,gou", "Gouda")
    assert fhir.reference_id("http://x/fhir/Location/abc", "Location") == "abc"


def test_operation_outcome_paths() -> None:
    outcome = fhir.operation_outcome(
        status=422,
        detail="bad",
        errors=[
            {"pointer": "#/items/0/free", "detail": "too many"},
            {"pointer": "query:_count", "detail": "negative"},
            {"pointer": "MeasureReport.subject", "detail": "unknown", "code": "not-found"},
        ],
    )
    fhir.validated(outcome)
    assert [(i["code"], i["expression"]) for i in outcome["issue"]] == [
        ("invalid", ["items[0].free"]),
        ("invalid", ["_count"]),
        ("not-found", ["MeasureReport.subject"]),
    ]
    plain = fhir.operation_outcome(status=401, detail="no key")
    assert plain["issue"] == [{"severity": "error", "code": "login", "diagnostics": "no key"}]
