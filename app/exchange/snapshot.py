"""The LPZ-style capacity snapshot and its CSV forms (pure: no I/O, ``now`` is passed in).

One row per unit: identifiers, care type, staffed, free, held, available, expected free in 24 h,
accepting (and why not), reported at, stale. ``POST /v1/capacity-reports`` takes the same CSV
back: ``unit_id`` (or ``external_id``), ``free``, ``expected_free_24h``, ``reported_at``; other
columns are ignored, so a snapshot a provider downloads and sends back reports the same state.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.capacity import ranking
from app.exchange.views import UnitView, is_accepting

SNAPSHOT_COLUMNS = (
    "unit_id",
    "external_id",
    "unit_name",
    "care_type",
    "organisation_id",
    "organisation_name",
    "organisation_ura",
    "organisation_agb",
    "organisation_kvk",
    "location_id",
    "location_name",
    "municipality",
    "postcode",
    "subregion",
    "staffed",
    "free",
    "held",
    "available",
    "expected_free_24h",
    "accepting",
    "not_accepting_reason",
    "not_accepting_detail",
    "not_accepting_until",
    "reported_at",
    "age_minutes",
    "stale",
)
MAX_UPLOAD_LINES = 10_000
MAX_COUNT = 100_000


def snapshot_row(unit: UnitView, *, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    """The snapshot row of one unit; a unit that never reported is stale with no ``reported_at``."""
    accepting = is_accepting(unit.status, now)
    status = None if accepting else unit.status
    at = unit.reported_at
    return {
        "unit_id": unit.id,
        "external_id": unit.external_id,
        "unit_name": unit.name,
        "care_type": unit.care_type,
        "organisation_id": unit.organisation.id,
        "organisation_name": unit.organisation.name,
        "organisation_ura": unit.organisation.ura,
        "organisation_agb": unit.organisation.agb,
        "organisation_kvk": unit.organisation.kvk,
        "location_id": unit.location.id,
        "location_name": unit.location.name,
        "municipality": unit.location.municipality,
        "postcode": unit.location.postcode,
        "subregion": unit.location.subregion_code,
        "staffed": unit.staffed,
        "free": unit.free,
        "held": unit.held,
        "available": unit.available,
        "expected_free_24h": unit.expected_free_24h,
        "accepting": accepting,
        "not_accepting_reason": None if status is None else status.reason,
        "not_accepting_detail": None if status is None else status.detail,
        "not_accepting_until": None if status is None else status.until,
        "reported_at": unit.reported_at,
        # JSON only (not CSV columns): what a partner region needs to match and place patients.
        "target_groups": list(unit.target_groups),
        "features": list(unit.features),
        "sex_policy": unit.sex_policy,
        "address": unit.location.address,
        "phone": unit.location.phone,
        "latitude": unit.location.latitude,
        "longitude": unit.location.longitude,
        "age_minutes": None if at is None else ranking.age_minutes(at, now),
        "stale": at is None or ranking.is_stale(at, now, stale_after),
    }


def snapshot_rows(
    units: Iterable[UnitView], *, now: datetime, stale_after: Callable[[str], timedelta]
) -> list[dict[str, Any]]:
    return [snapshot_row(u, now=now, stale_after=stale_after(u.care_type)) for u in units]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Comma-separated, a header line, RFC 4180 quoting, ``\\r\\n`` line ends, times in UTC."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SNAPSHOT_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in SNAPSHOT_COLUMNS])
    return out.getvalue()


# --- upload ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvReport:
    """One parsed upload line; ``line`` is its line number in the file (the header is line 1)."""

    line: int
    unit_id: uuid.UUID | None
    external_id: str | None
    free: int
    expected_free_24h: int | None
    reported_at: datetime | None

    @property
    def pointer(self) -> str:
        return f"/lines/{self.line}"

    @property
    def unit_field(self) -> str:
        return "unit_id" if self.unit_id is not None else "external_id"


def _count(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError("must be a whole number of places, 0 or more")
    value = int(raw)
    if value > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT}")
    return value


def _instant(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-12-05T09:00:00Z") from None
    if value.tzinfo is None:
        raise ValueError("must include a timezone offset, e.g. 2026-12-05T09:00:00Z")
    return value.astimezone(UTC)


def parse_upload(text: str) -> tuple[list[CsvReport], list[dict[str, str]]]:
    """Parse an upload; returns the good lines and an error per bad cell (pointer
    ``/lines/<n>/<column>``, ``/lines/1`` for the header). Blank lines are skipped."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    errors: list[dict[str, str]] = []
    try:
        header = next(reader)
    except StopIteration:
        return [], [{"pointer": "/lines/1", "detail": "the file is empty; send a header line"}]
    except csv.Error as exc:
        return [], [{"pointer": "/lines/1", "detail": f"not CSV: {exc}"}]
    names = [h.strip().lower() for h in header]
    index = {name: i for i, name in enumerate(names) if name}
    if "free" not in index or ("unit_id" not in index and "external_id" not in index):
        return [], [
            {
                "pointer": "/lines/1",
                "detail": "the header needs the columns free and unit_id (or external_id); "
                f"got {', '.join(names) or 'none'}",
            }
        ]
    reports: list[CsvReport] = []
    data_lines = 0
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            data_lines += 1
            if data_lines > MAX_UPLOAD_LINES:
                errors.append(
                    {
                        "pointer": f"/lines/{line}",
                        "detail": f"more than {MAX_UPLOAD_LINES} lines; split the upload",
                    }
                )
                break
            parsed = _parse_line(line, cells, index, errors)
            if parsed is not None:
                reports.append(parsed)
    except csv.Error as exc:
        errors.append({"pointer": f"/lines/{reader.line_num}", "detail": f"not CSV: {exc}"})
    if not reports and not errors:
        errors.append({"pointer": "/lines/2", "detail": "no report lines after the header"})
    return reports, errors


def _parse_line(
    line: int, cells: list[str], index: Mapping[str, int], errors: list[dict[str, str]]
) -> CsvReport | None:
    def cell(name: str) -> str:
        i = index.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    bad = len(errors)

    def fail(column: str, detail: str) -> None:
        pointer = f"/lines/{line}/{column}" if column else f"/lines/{line}"
        errors.append({"pointer": pointer, "detail": detail})

    if "\x00" in "".join(cells):
        fail("", "contains a NUL character")
        return None
    unit_id: uuid.UUID | None = None
    external_id: str | None = None
    if cell("unit_id"):
        try:
            unit_id = uuid.UUID(cell("unit_id"))
        except ValueError:
            fail("unit_id", "not a unit id (uuid)")
    elif cell("external_id"):
        external_id = cell("external_id")
        if len(external_id) > 100:
            fail("external_id", "longer than 100 characters")
    else:
        fail("unit_id" if "unit_id" in index else "external_id", "empty: name the unit")
    free = 0
    try:
        free = _count(cell("free"))
    except ValueError as exc:
        fail("free", str(exc) if cell("free") else "empty: the places free now")
    expected: int | None = None
    if cell("expected_free_24h"):
        try:
            expected = _count(cell("expected_free_24h"))
        except ValueError as exc:
            fail("expected_free_24h", str(exc))
    reported_at: datetime | None = None
    if cell("reported_at"):
        try:
            reported_at = _instant(cell("reported_at"))
        except ValueError as exc:
            fail("reported_at", str(exc))
    if len(errors) > bad:
        return None
    return CsvReport(line, unit_id, external_id, free, expected, reported_at)
