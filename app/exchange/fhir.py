"""FHIR R4 mapping (``fhir.resources`` R4B models), pure: registry and capacity views in,
resources out; posted MeasureReports and transaction Bundles in, capacity reports out.

| JuistePlek | FHIR |
|---|---|
| organisation | ``Organization`` (identifier URA / AGB / KvK where known, the uuid always) |
| location | ``Location`` (address, position, managingOrganization; type = care types there) |
| unit | ``HealthcareService`` (type = care type, characteristic = target groups, features and
  room sex, ``notAvailable`` = not accepting with ``during`` = until) |
| current capacity of a location's units of one care type | ``MeasureReport`` (type summary,
  subject the Location; populations capacity, occupied, available, held) |

No I/O and no clock: the service passes ``now`` and the base URL in.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pydantic
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.healthcareservice import HealthcareService
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from app.enums import CareType
from app.exchange.views import LocationView, OrganisationView, UnitView, is_accepting

FHIR_MEDIA_TYPE = "application/fhir+json"
FHIR_VERSION = "4.0.1"
CANONICAL = "https://juisteplek.nl/fhir"
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"
KVK_SYSTEM = "http://fhir.nl/fhir/NamingSystem/kvk"
URI_SYSTEM = "urn:ietf:rfc:3986"
EXTERNAL_ID_SYSTEM = f"{CANONICAL}/NamingSystem/external-id"
CARE_TYPE_SYSTEM = f"{CANONICAL}/CodeSystem/care-type"
TARGET_GROUP_SYSTEM = f"{CANONICAL}/CodeSystem/target-group"
FEATURE_SYSTEM = f"{CANONICAL}/CodeSystem/feature"
SEX_POLICY_SYSTEM = f"{CANONICAL}/CodeSystem/sex-policy"
ORGANISATION_KIND_SYSTEM = f"{CANONICAL}/CodeSystem/organisation-kind"
POPULATION_SYSTEM = f"{CANONICAL}/CodeSystem/capacity-population"
STRATIFIER_SYSTEM = f"{CANONICAL}/CodeSystem/capacity-stratifier"
MEASURE_ID = "juisteplek-capacity"
MEASURE_URL = f"{CANONICAL}/Measure/{MEASURE_ID}"
MEASURE_DATE = datetime(2026, 12, 5, tzinfo=UTC)  # when the Measure's definition last changed
POPULATIONS = ("capacity", "occupied", "available", "held")
MAX_COUNT = 100_000

_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "Bundle": Bundle,
    "CapabilityStatement": CapabilityStatement,
    "HealthcareService": HealthcareService,
    "Location": Location,
    "Measure": Measure,
    "MeasureReport": MeasureReport,
    "OperationOutcome": OperationOutcome,
    "Organization": Organization,
    "ServiceRequest": ServiceRequest,
    "Task": Task,
}


def validated(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource checked against its R4B model, as the model serialises it (raises
    ``pydantic.ValidationError`` on a mapping bug: the service never sends an invalid one)."""
    model = _MODELS[str(resource["resourceType"])].model_validate(resource)
    out: dict[str, Any] = json.loads(model.model_dump_json())
    return out


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}], "text": code}


def _meta(updated_at: datetime) -> dict[str, str]:
    return {"lastUpdated": instant(updated_at)}


# --- identifiers ---------------------------------------------------------------------------------


def organisation_identifiers(org: OrganisationView) -> list[tuple[str, str]]:
    """URA, AGB and KvK where the organisation has them, its region-file code, then the uuid."""
    out = [
        (system, value)
        for system, value in (
            (URA_SYSTEM, org.ura),
            (AGB_SYSTEM, org.agb),
            (KVK_SYSTEM, org.kvk),
            (EXTERNAL_ID_SYSTEM, org.external_id),
        )
        if value
    ]
    return [*out, (URI_SYSTEM, f"urn:uuid:{org.id}")]


def _identifiers(external_id: str | None, own: uuid.UUID) -> list[tuple[str, str]]:
    out = [(EXTERNAL_ID_SYSTEM, external_id)] if external_id else []
    return [*out, (URI_SYSTEM, f"urn:uuid:{own}")]


def location_identifiers(loc: LocationView) -> list[tuple[str, str]]:
    return _identifiers(loc.external_id, loc.id)


def unit_identifiers(unit: UnitView) -> list[tuple[str, str]]:
    return _identifiers(unit.external_id, unit.id)


def _identifier_list(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"system": s, "value": v} for s, v in pairs]


# --- resources -----------------------------------------------------------------------------------


def organization(org: OrganisationView) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": str(org.id),
        "meta": _meta(org.updated_at),
        "identifier": _identifier_list(organisation_identifiers(org)),
        "active": org.active,
        "type": [_coding(ORGANISATION_KIND_SYSTEM, org.kind)],
        "name": org.name,
    }


def location(loc: LocationView) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": str(loc.id),
        "meta": _meta(loc.updated_at),
        "identifier": _identifier_list(location_identifiers(loc)),
        "status": "active" if loc.active else "inactive",
        "name": loc.name,
        "mode": "instance",
        "address": {
            "use": "work",
            "type": "physical",
            "line": [loc.address],
            "city": loc.municipality,
            "postalCode": loc.postcode,
            "country": "NL",
        },
        "position": {"latitude": loc.latitude, "longitude": loc.longitude},
        "managingOrganization": {
            "reference": f"Organization/{loc.organisation_id}",
            "display": loc.organisation_name,
        },
    }
    if loc.care_types:
        resource["type"] = [_coding(CARE_TYPE_SYSTEM, c) for c in loc.care_types]
    if loc.phone:
        resource["telecom"] = [{"system": "phone", "value": loc.phone, "use": "work"}]
    return resource


def healthcare_service(unit: UnitView, *, now: datetime) -> dict[str, Any]:
    """A unit; a unit that is not accepting has one ``notAvailable`` (reason, ``during``)."""
    resource: dict[str, Any] = {
        "resourceType": "HealthcareService",
        "id": str(unit.id),
        "meta": _meta(unit.updated_at),
        "identifier": _identifier_list(unit_identifiers(unit)),
        "active": unit.active,
        "providedBy": {
            "reference": f"Organization/{unit.organisation.id}",
            "display": unit.organisation.name,
        },
        "type": [_coding(CARE_TYPE_SYSTEM, unit.care_type)],
        "location": [{"reference": f"Location/{unit.location.id}", "display": unit.location.name}],
        "name": unit.name,
        "characteristic": [
            *(_coding(TARGET_GROUP_SYSTEM, g) for g in unit.target_groups),
            *(_coding(FEATURE_SYSTEM, f) for f in unit.features),
            _coding(SEX_POLICY_SYSTEM, unit.sex_policy),
        ],
    }
    if unit.label:
        resource["comment"] = unit.label
    status = unit.status
    if status is not None and not is_accepting(status, now):
        during: dict[str, str] = {}
        if status.since is not None:
            during["start"] = instant(status.since)
        if status.until is not None:
            during["end"] = instant(status.until)
        reason = status.reason or "other"
        entry: dict[str, Any] = {
            "description": f"{reason}: {status.detail}" if status.detail else reason
        }
        if during:
            entry["during"] = during
        resource["notAvailable"] = [entry]
    return resource


def measure(*, updated_at: datetime) -> dict[str, Any]:
    """``Measure/juisteplek-capacity``: one group per care type, four populations each."""
    return {
        "resourceType": "Measure",
        "id": MEASURE_ID,
        "meta": _meta(updated_at),
        "url": MEASURE_URL,
        "name": "JuistePlekCapacity",
        "title": "Bed and place availability per location and care type (SANER-style)",
        "status": "active",
        "subjectCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/resource-types", "code": "Location"}]
        },
        "scoring": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-scoring",
                    "code": "cohort",
                }
            ]
        },
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/measure-type",
                        "code": "structure",
                    }
                ]
            }
        ],
        "group": [
            {
                "code": _coding(CARE_TYPE_SYSTEM, care_type.value),
                "population": [
                    {
                        "code": _coding(POPULATION_SYSTEM, name),
                        "description": _POPULATION_TEXT[name],
                        "criteria": {"language": "text/plain", "expression": name},
                    }
                    for name in POPULATIONS
                ],
            }
            for care_type in CareType
        ],
    }


_POPULATION_TEXT = {
    "capacity": "Staffed places",
    "occupied": "Staffed places not free in the latest report",
    "available": "Free places minus places held for placements",
    "held": "Places held for placements (promised, patient not yet arrived)",
}


def measure_report_id(location_id: uuid.UUID, care_type: str) -> str:
    return f"{location_id}-{care_type.replace('_', '-')}"


_REPORT_ID = re.compile(r"^([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})-([a-z-]+)$")


def parse_measure_report_id(value: str) -> tuple[uuid.UUID, str] | None:
    match = _REPORT_ID.match(value)
    if match is None:
        return None
    care_type = match.group(2).replace("-", "_")
    if care_type not in CareType.__members__.values():
        return None
    return uuid.UUID(match.group(1)), care_type


def measure_report(units: Sequence[UnitView]) -> dict[str, Any]:
    """The current capacity of one location's reported units of one care type."""
    first = units[0]
    loc = first.location
    times = [u.reported_at for u in units if u.reported_at is not None]
    start, end = min(times), max(times)
    system, value = location_identifiers(loc)[0]
    return {
        "resourceType": "MeasureReport",
        "id": measure_report_id(loc.id, first.care_type),
        "meta": _meta(end),
        "status": "complete",
        "type": "summary",
        "measure": MEASURE_URL,
        "subject": {
            "reference": f"Location/{loc.id}",
            "identifier": {"system": system, "value": value},
            "display": loc.name,
        },
        "date": instant(end),
        "reporter": {
            "reference": f"Organization/{first.organisation.id}",
            "display": first.organisation.name,
        },
        "period": {"start": instant(start), "end": instant(end)},
        "group": [
            {
                "code": _coding(CARE_TYPE_SYSTEM, first.care_type),
                "population": _population_counts(units),
                "stratifier": [
                    {
                        "code": [_coding(STRATIFIER_SYSTEM, "healthcare-service")],
                        "stratum": [
                            {
                                "value": {
                                    "coding": [
                                        {"system": s, "code": v}
                                        for s, v in reversed(unit_identifiers(u))
                                    ],
                                    "text": u.name,
                                },
                                "population": _population_counts([u]),
                            }
                            for u in units
                        ],
                    }
                ],
            }
        ],
    }


def _population_counts(units: Sequence[UnitView]) -> list[dict[str, Any]]:
    staffed = sum(u.staffed for u in units)
    counts = {
        "capacity": staffed,
        "occupied": max(0, staffed - sum(u.free for u in units)),
        "available": sum(u.available for u in units),
        "held": sum(u.held for u in units),
    }
    return [
        {"code": _coding(POPULATION_SYSTEM, name), "count": counts[name]} for name in POPULATIONS
    ]


def capability_statement(*, base_url: str, version: str, now: datetime) -> dict[str, Any]:
    def search(*params: tuple[str, str]) -> list[dict[str, str]]:
        common = [("_lastUpdated", "date"), ("_count", "number")]
        return [{"name": n, "type": t} for n, t in (*params, *common)]

    registry_params = (("_id", "token"), ("identifier", "token"), ("address-city", "string"))
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now),
        "publisher": "JuistePlek",
        "kind": "instance",
        "software": {"name": "JuistePlek", "version": version},
        "implementation": {
            "description": "JuistePlek regional capacity (SANER-style bed availability)",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_MEDIA_TYPE],
        "rest": [
            {
                "mode": "server",
                "documentation": "Authorization: Bearer <API key>, with the roles of the REST API.",
                "security": {"description": "Bearer API keys; providers write their own units."},
                "resource": [
                    {
                        "type": "Organization",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": search(*registry_params, ("type", "token")),
                    },
                    {
                        "type": "Location",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": search(
                            *registry_params, ("type", "token"), ("organization", "reference")
                        ),
                    },
                    {
                        "type": "HealthcareService",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": search(
                            *registry_params,
                            ("type", "token"),
                            ("service-type", "token"),
                            ("characteristic", "token"),
                            ("organization", "reference"),
                            ("location", "reference"),
                            ("active", "token"),
                        ),
                    },
                    {"type": "Measure", "interaction": [{"code": "read"}]},
                    {
                        "type": "MeasureReport",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type"},
                            {"code": "create"},
                        ],
                        "searchParam": search(
                            ("_id", "token"), ("subject", "reference"), ("period", "date")
                        ),
                    },
                    {"type": "ServiceRequest", "interaction": [{"code": "read"}]},
                    {
                        "type": "Task",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type"},
                            {"code": "update"},
                        ],
                        "searchParam": [
                            {"name": "owner", "type": "reference"},
                            {"name": "status", "type": "token"},
                            {"name": "focus", "type": "reference"},
                            {"name": "_count", "type": "number"},
                        ],
                    },
                ],
                "interaction": [{"code": "transaction"}],
            }
        ],
    }


def searchset(
    entries: Sequence[tuple[str, dict[str, Any]]],
    *,
    total: int,
    self_url: str,
    next_url: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A ``searchset`` Bundle of ``(fullUrl, resource)`` entries."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now)},
        "type": "searchset",
        "timestamp": instant(now),
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = [
            {"fullUrl": url, "resource": resource, "search": {"mode": "match"}}
            for url, resource in entries
        ]
    return bundle


def transaction_response(
    entries: Sequence[tuple[str, dict[str, Any]]], *, now: datetime
) -> dict[str, Any]:
    """The answer to a transaction: one ``201 Created`` entry per written MeasureReport."""
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "transaction-response",
        "timestamp": instant(now),
        "entry": [
            {
                "resource": resource,
                "response": {
                    "status": "201 Created",
                    "location": location_url,
                    "lastModified": resource["meta"]["lastUpdated"],
                },
            }
            for location_url, resource in entries
        ],
    }


_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


def _expression(pointer: str) -> str:
    """A problem pointer as a FHIRPath-like expression: ``#/a/0/b`` -> ``a[0].b``,
    ``query:_count`` -> ``_count``; FHIRPaths pass unchanged."""
    if pointer.startswith("query:") or pointer.startswith("header:"):
        return pointer.split(":", 1)[1]
    if pointer.startswith("#"):
        out = ""
        for part in (p for p in pointer[1:].split("/") if p):
            out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
        return out or "$this"
    return pointer


def operation_outcome(
    *, status: int, detail: str, errors: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """An ``OperationOutcome`` for an error status: one issue per failing element (with its
    path in ``expression``), or one issue with the detail."""
    code = _ISSUE_CODE.get(status, "exception" if status >= 500 else "processing")
    issues: list[dict[str, Any]] = [
        {
            "severity": "error",
            "code": str(e.get("code", code)),
            "diagnostics": str(e.get("detail", detail)),
            "expression": [_expression(str(e.get("pointer", "")))],
        }
        for e in errors or ()
        if e.get("pointer")
    ]
    if not issues:
        issues = [{"severity": "error", "code": code, "diagnostics": detail}]
    else:
        issues[0]["details"] = {"text": detail[:1000]}
    return {"resourceType": "OperationOutcome", "issue": issues}


# --- search parameters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DateParam:
    """``[prefix]value`` of a date search: the value is the interval ``[low, high)``."""

    prefix: str
    low: datetime
    high: datetime

    def matches(self, value: datetime | None) -> bool:
        if value is None:
            return False
        if self.prefix == "eq":
            return self.low <= value < self.high
        if self.prefix == "ne":
            return not self.low <= value < self.high
        if self.prefix in ("gt", "sa"):
            return value >= self.high
        if self.prefix == "ge":
            return value >= self.low
        if self.prefix in ("lt", "eb"):
            return value < self.low
        return value < self.high  # le


_DATE_PREFIXES = ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb")


def parse_date_param(raw: str) -> DateParam:
    """``ge2026-12-05``, ``lt2026-12-05T10:00:00Z``, ``2026-12``...; raises ``ValueError``."""
    prefix, value = "eq", raw.strip()
    if value[:2] in _DATE_PREFIXES:
        prefix, value = value[:2], value[2:]
    try:
        if re.fullmatch(r"[0-9]{4}", value):
            low = datetime(int(value), 1, 1, tzinfo=UTC)
            return DateParam(prefix, low, low.replace(year=low.year + 1))
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}", value):
            low = datetime(int(value[:4]), int(value[5:]), 1, tzinfo=UTC)
            high = (low + timedelta(days=32)).replace(day=1)
            return DateParam(prefix, low, high)
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            day = date.fromisoformat(value)
            low = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return DateParam(prefix, low, low + timedelta(days=1))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise ValueError(
            f"{raw!r} is not a FHIR date search value, e.g. ge2026-12-05 or lt2026-12-05T10:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return DateParam(prefix, moment, moment + timedelta(seconds=1))


def token_matches(raw: str, candidates: Iterable[tuple[str | None, str]]) -> bool:
    """A token search value (``system|code``, ``|code``, ``code``; comma = or) against the
    ``(system, code)`` pairs of a resource. Codes compare exactly."""
    pairs = list(candidates)
    for alternative in raw.split(","):
        if "|" in alternative:
            system, code = alternative.split("|", 1)
            if any((system == "" and s is None) or s == system for s, c in pairs if c == code):
                return True
            if system and code == "" and any(s == system for s, _ in pairs):
                return True
        elif any(c == alternative for _, c in pairs):
            return True
    return False


def string_matches(raw: str, value: str) -> bool:
    """FHIR string search: case-insensitive prefix, comma = or."""
    return any(value.casefold().startswith(alt.strip().casefold()) for alt in raw.split(","))


def reference_id(raw: str, resource_type: str) -> str:
    """``Location/abc``, an absolute URL ending in it, or a bare id -> ``abc``."""
    value = raw.strip().rstrip("/")
    marker = f"{resource_type}/"
    if marker in value:
        value = value.rsplit(marker, 1)[1]
    return value


# --- posted capacity -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostedCapacity:
    """The free places of one care type at a location, or of one unit (a stratum) there."""

    report_path: str
    location_id: uuid.UUID | None
    location_identifier: tuple[str, str] | None
    care_type: str
    unit_refs: tuple[tuple[str, str], ...]
    free: int
    count_path: str
    reported_at: datetime | None
    stratum_path: str | None = None

    @property
    def subject_path(self) -> str:
        return f"{self.report_path}.subject"

    @property
    def time_path(self) -> str:
        return f"{self.report_path}.date"

    @property
    def group_path(self) -> str:
        return f"{self.report_path}.group[0]"


Issue = dict[str, str]


def _loc_path(base: str, loc: Sequence[Any]) -> str:
    out = base
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "root":
            out += f".{part}"
    return out


def _codes(concept: Any) -> list[tuple[str | None, str]]:
    if not isinstance(concept, Mapping):
        return []
    return [
        (c.get("system"), str(c.get("code")))
        for c in concept.get("coding") or []
        if isinstance(c, Mapping) and c.get("code")
    ]


def _parse_instant(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if value.tzinfo is None else value.astimezone(UTC)


def _available(populations: Any, path: str, issues: list[Issue]) -> tuple[int, str] | None:
    """The ``available`` count of a population list and its path; issues for bad counts."""
    found: tuple[int, str] | None = None
    before = len(issues)
    for p, population in enumerate(populations or []):
        names = [c for s, c in _codes(population.get("code")) if s in (None, POPULATION_SYSTEM)]
        count = population.get("count")
        cpath = f"{path}.population[{p}].count"
        if count is not None and not 0 <= count <= MAX_COUNT:
            issues.append({"pointer": cpath, "detail": f"must be between 0 and {MAX_COUNT}"})
        elif "available" in names:
            if count is None:
                issues.append({"pointer": cpath, "detail": "required"})
            else:
                found = (count, cpath)
    if found is None and len(issues) == before:
        issues.append(
            {
                "pointer": f"{path}.population",
                "detail": "an 'available' population with its count is required",
            }
        )
    return found


def _unit_refs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(
        (str(system), code)
        for system, code in _codes(value)
        if system in (URI_SYSTEM, EXTERNAL_ID_SYSTEM)
    )


def parse_measure_report(
    data: Any, path: str = "MeasureReport"
) -> tuple[list[PostedCapacity], list[Issue]]:
    """The capacity reports in a posted MeasureReport, or the issues that refuse it.

    One group (a care type) per MeasureReport. Its ``available`` population is the places free
    now (the reporter's own holds already taken out). A location with several units of the care
    type reports each unit as a stratum (value: the unit's ``urn:uuid`` or external id), as the
    export does. The time is ``date``, else ``period.end``.
    """
    if not isinstance(data, Mapping):
        return [], [{"pointer": path, "detail": "must be a JSON object (a MeasureReport)"}]
    if data.get("resourceType") != "MeasureReport":
        return [], [
            {
                "pointer": f"{path}.resourceType",
                "detail": f"must be MeasureReport, not {data.get('resourceType')!r}",
            }
        ]
    try:
        MeasureReport.model_validate(data)
    except pydantic.ValidationError as exc:
        return [], [
            {"pointer": _loc_path(path, e["loc"]), "detail": str(e["msg"]).split("\n")[0]}
            for e in exc.errors()
        ]
    issues: list[Issue] = []
    if data.get("type") != "summary":
        issues.append({"pointer": f"{path}.type", "detail": "must be 'summary'"})
    if data.get("status") != "complete":
        issues.append({"pointer": f"{path}.status", "detail": "must be 'complete'"})
    if not str(data.get("measure", "")).endswith(f"Measure/{MEASURE_ID}"):
        issues.append({"pointer": f"{path}.measure", "detail": f"must be {MEASURE_URL}"})
    subject = data.get("subject")
    location_id: uuid.UUID | None = None
    identifier: tuple[str, str] | None = None
    if not isinstance(subject, Mapping):
        issues.append({"pointer": f"{path}.subject", "detail": "required: the Location reported"})
    else:
        ref = subject.get("reference")
        ident = subject.get("identifier")
        # Both may be given (the export sends both): a partner instance whose ids differ
        # resolves the identifier (the region file's code) when the reference is not its own.
        if isinstance(ident, Mapping) and ident.get("system") and ident.get("value"):
            identifier = (str(ident["system"]), str(ident["value"]))
        if isinstance(ref, str):
            try:
                if not re.search(r"(^|/)Location/[^/]+$", ref):
                    raise ValueError
                location_id = uuid.UUID(reference_id(ref, "Location"))
            except ValueError:
                issues.append(
                    {"pointer": f"{path}.subject.reference", "detail": "must be Location/<id>"}
                )
        elif identifier is None:
            issues.append(
                {"pointer": f"{path}.subject", "detail": "needs a reference or an identifier"}
            )
    reported_at = _parse_instant(data.get("date"))
    if reported_at is None and isinstance(data.get("period"), Mapping):
        period = data["period"]
        reported_at = _parse_instant(period.get("end")) or _parse_instant(period.get("start"))
    if reported_at is None:
        issues.append(
            {
                "pointer": f"{path}.date",
                "detail": "the reporting time (date or period.end) with a time zone is required",
            }
        )
    groups = data.get("group") or []
    if len(groups) != 1:
        issues.append(
            {
                "pointer": f"{path}.group" if not groups else f"{path}.group[1]",
                "detail": "exactly one group (one care type) per MeasureReport; "
                "send several in a transaction Bundle",
            }
        )
        return [], issues
    gpath = f"{path}.group[0]"
    group = groups[0]
    care = [c for s, c in _codes(group.get("code")) if s in (None, CARE_TYPE_SYSTEM)]
    care_type = care[0] if care else ""
    if care_type not in CareType.__members__.values():
        issues.append(
            {"pointer": f"{gpath}.code", "detail": f"a care type code of {CARE_TYPE_SYSTEM}"}
        )
        return [], issues
    found: list[PostedCapacity] = []
    strata = [
        (f"{gpath}.stratifier[{i}].stratum[{j}]", stratum)
        for i, stratifier in enumerate(group.get("stratifier") or [])
        for j, stratum in enumerate(stratifier.get("stratum") or [])
    ]
    if not strata:
        hit = _available(group.get("population"), gpath, issues)
        if hit is not None:
            found.append(
                PostedCapacity(
                    path, location_id, identifier, care_type, (), hit[0], hit[1], reported_at
                )
            )
    for spath, stratum in strata:
        unit = _unit_refs(stratum.get("value"))
        if not unit:
            issues.append(
                {
                    "pointer": f"{spath}.value",
                    "detail": f"the unit as a coding of {URI_SYSTEM} (urn:uuid:<unit id>) or "
                    f"{EXTERNAL_ID_SYSTEM}",
                }
            )
            continue
        hit = _available(stratum.get("population"), spath, issues)
        if hit is not None:
            found.append(
                PostedCapacity(
                    path,
                    location_id,
                    identifier,
                    care_type,
                    unit,
                    hit[0],
                    hit[1],
                    reported_at,
                    spath,
                )
            )
    return ([], issues) if issues else (found, [])


def parse_transaction(data: Any) -> tuple[list[PostedCapacity], list[Issue]]:
    """Every MeasureReport of a transaction Bundle (``POST MeasureReport`` entries)."""
    if not isinstance(data, Mapping):
        return [], [{"pointer": "Bundle", "detail": "must be a JSON object (a Bundle)"}]
    if data.get("resourceType") != "Bundle":
        return [], [
            {
                "pointer": "Bundle.resourceType",
                "detail": f"must be Bundle, not {data.get('resourceType')!r}",
            }
        ]
    if data.get("type") != "transaction":
        return [], [{"pointer": "Bundle.type", "detail": "must be 'transaction'"}]
    entries = data.get("entry")
    if not isinstance(entries, list) or not entries:
        return [], [{"pointer": "Bundle.entry", "detail": "a transaction needs entries"}]
    found: list[PostedCapacity] = []
    issues: list[Issue] = []
    for i, entry in enumerate(entries):
        epath = f"Bundle.entry[{i}]"
        if not isinstance(entry, Mapping):
            issues.append({"pointer": epath, "detail": "must be an object"})
            continue
        request = entry.get("request")
        if (
            not isinstance(request, Mapping)
            or request.get("method") != "POST"
            or str(request.get("url", "")).rstrip("/") != "MeasureReport"
        ):
            issues.append(
                {
                    "pointer": f"{epath}.request",
                    "detail": "only {method: POST, url: MeasureReport} entries are taken",
                }
            )
            continue
        reports, problems = parse_measure_report(entry.get("resource"), f"{epath}.resource")
        found += reports
        issues += problems
    return ([], issues) if issues else (found, [])
