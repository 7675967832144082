"""Triage service (docs/domain.md §4, §7, §12.1, §13): rule sets in the database, triage, urgency.

The rule engine itself is pure (``app.triage.rules``, ``checks``, ``urgency``); this module stores
rule sets and triages, converts urgency codes, and ties a triage to the availability search and
to a placement. The built-in ``west-2026.1`` is written to the database on first use, active when
no other rule set is, so a fresh database always has exactly one active rule set.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

import orjson
import yaml
from pydantic import JsonValue
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.enums import CareType, Feature, Role
from app.errors import Conflict, InvalidInput, NotFound
from app.principal import Principal
from app.triage.checks import CheckReport, check_ruleset
from app.triage.models import TriageRecord, TriageRuleSet
from app.triage.rules import (
    DEFAULT_RULESET,
    Answer,
    Question,
    RuleSet,
    RuleSetError,
    RuleSetProblem,
    TriageResult,
    evaluate,
    load_ruleset_text,
)
from app.triage.schemas import (
    ActionRead,
    Advice,
    CheckReportRead,
    FindingRead,
    LevelRead,
    NativeCodeRead,
    OutcomeRead,
    OverrideRead,
    PlacementRef,
    Questionnaire,
    QuestionRead,
    RuleSetList,
    RuleSetRead,
    RuleSetRef,
    RuleSetSummary,
    RuleSetUpload,
    TriageRequest,
    UnifiedUrgencyRead,
    UrgencyConversion,
    UrgencyIn,
    UrgencyMapRead,
    UrgencySystemRead,
)
from app.triage.urgency import (
    NativeCode,
    UnknownUrgencyCode,
    UnknownUrgencySystem,
    to_unified,
    urgency_map,
)

# Column widths the stored rule set must fit (triage_rule_set, triage_record, placement).
_MAX_VERSION = 60
_MAX_TITLE = 200
_MAX_OUTCOME = 40  # placement.triage_outcome
_MAX_RULE_ID = 60


class RuleSetNotActivatable(Conflict):
    type_slug = "rule-set-not-activatable"
    title = "The rule set has check errors and cannot be activated"


class RuleSetExists(Conflict):
    type_slug = "rule-set-exists"
    title = "A rule set with this version is already loaded"


# --- parsing and caching ------------------------------------------------------------------------

# Parsed rule sets by (version, SHA-256 of the source): stored versions never change.
_PARSED: dict[tuple[str, str], RuleSet] = {}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _builtin_source() -> str:
    return files("app.triage").joinpath("rulesets", f"{DEFAULT_RULESET}.yaml").read_text("utf-8")


def parse_rule_set(source: str) -> RuleSet:
    """Validate an uploaded rule set; every refusal is a RuleSetError naming rule and line."""
    alias = _alias_problem(source)
    if alias is not None:
        raise RuleSetError([alias])
    try:
        ruleset = load_ruleset_text(source)
    except RecursionError:
        message = "the document is nested too deeply to be a rule set"
        raise RuleSetError([RuleSetProblem(message=message)]) from None
    problems = _storage_problems(ruleset)
    if problems:
        raise RuleSetError(problems)
    return ruleset


def _parse_and_check(source: str) -> tuple[RuleSet, CheckReport]:
    ruleset = parse_rule_set(source)
    return ruleset, check_ruleset(ruleset)


def _alias_problem(source: str) -> RuleSetProblem | None:
    # Aliases let a few lines expand into an exponentially large document ("billion laughs").
    try:
        for token in yaml.scan(source, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AliasToken):
                return RuleSetProblem(
                    message="YAML aliases (*name) are not supported; write the value out",
                    line=token.start_mark.line + 1,
                )
    except yaml.YAMLError:
        return None  # the loader reports it with its line
    return None


def _storage_problems(ruleset: RuleSet) -> list[RuleSetProblem]:
    problems = []
    if len(ruleset.version) > _MAX_VERSION:
        problems.append(
            RuleSetProblem(message=f"version longer than {_MAX_VERSION}", location="version")
        )
    if len(ruleset.title) > _MAX_TITLE:
        problems.append(RuleSetProblem(message=f"title longer than {_MAX_TITLE}", location="title"))
    for i, outcome in enumerate(ruleset.outcomes):
        if len(outcome.code) > _MAX_OUTCOME:
            problems.append(
                RuleSetProblem(
                    message=f"outcome code longer than {_MAX_OUTCOME}",
                    location=f"outcomes[{i}].code",
                )
            )
    for i, rule in enumerate(ruleset.rules):
        if len(rule.id) > _MAX_RULE_ID:
            problems.append(
                RuleSetProblem(
                    message=f"rule id longer than {_MAX_RULE_ID}",
                    rule_id=rule.id[:_MAX_RULE_ID],
                    location=f"rules[{i}].id",
                )
            )
    return problems


def refusal(exc: RuleSetError, pointer: str = "#/source") -> InvalidInput:
    """A refused rule set as a 422 problem: one error per problem, with rule id and line."""
    return InvalidInput(
        f"The rule set was refused: {len(exc.problems)} problem(s). "
        + "; ".join(str(p) for p in exc.problems[:5]),
        errors=[
            {
                "pointer": pointer,
                "detail": str(problem),
                "rule_id": problem.rule_id,
                "line": problem.line,
                "location": problem.location,
            }
            for problem in exc.problems
        ],
    )


def _cached(version: str, sha: str, source: str) -> RuleSet:
    key = (version, sha)
    ruleset = _PARSED.get(key)
    if ruleset is None:
        try:
            ruleset = load_ruleset_text(source)
        except RuleSetError as exc:  # stored under an older engine that accepted it
            raise Conflict(
                f"The stored rule set {version} no longer loads: {exc}; activate another one."
            ) from None
        _PARSED[key] = ruleset
    return ruleset


# --- rule sets in the database -----------------------------------------------------------------


def _report_json(report: CheckReport) -> str:
    return orjson.dumps(report.model_dump(mode="json")).decode()


async def _ensure_builtin(session: AsyncSession, now: datetime) -> None:
    """Store the built-in rule set once; active only if nothing else is (docs/domain.md §12.1)."""
    found = await session.scalar(
        select(TriageRuleSet.id).where(TriageRuleSet.version == DEFAULT_RULESET)
    )
    if found is not None:
        return
    source = _builtin_source()
    ruleset = _cached(DEFAULT_RULESET, _sha256(source), source)
    report = check_ruleset(ruleset)
    any_active = await session.scalar(select(TriageRuleSet.id).where(TriageRuleSet.active))
    values = {
        "id": uuid.uuid4(),
        "version": ruleset.version,
        "title": ruleset.title,
        "source": source,
        "source_sha256": _sha256(source),
        "builtin": True,
        "active": any_active is None and report.activatable,
        "activatable": report.activatable,
        "check_report": _report_json(report),
        "loaded_at": now,
        "loaded_by_key_id": None,
        "activated_at": now if any_active is None else None,
        "activated_by_key_id": None,
    }
    conn = await session.connection()
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    # A concurrent first use may have stored it already: the unique version makes this a no-op.
    await session.execute(insert(TriageRuleSet).values(values).on_conflict_do_nothing())


@dataclass(frozen=True, slots=True)
class ActiveRuleSet:
    version: str
    title: str
    ruleset: RuleSet


async def active_rule_set(session: AsyncSession, *, now: datetime) -> ActiveRuleSet:
    await _ensure_builtin(session, now)
    row = (
        await session.execute(
            select(TriageRuleSet.version, TriageRuleSet.title, TriageRuleSet.source_sha256).where(
                TriageRuleSet.active
            )
        )
    ).one_or_none()
    if row is None:
        raise Conflict("No triage rule set is active; an admin must activate one.")
    version, title, sha = row
    ruleset = _PARSED.get((version, sha))
    if ruleset is None:
        source = await session.scalar(
            select(TriageRuleSet.source).where(TriageRuleSet.version == version)
        )
        ruleset = _cached(version, sha, source or "")
    return ActiveRuleSet(version=version, title=title, ruleset=ruleset)


def _check_read(report_json: str) -> CheckReportRead:
    report = CheckReport.model_validate_json(report_json)
    return CheckReportRead(
        activatable=report.activatable,
        errors=len(report.errors),
        warnings=len(report.warnings),
        findings=[
            FindingRead(
                severity=f.severity.value,
                code=f.code,
                message=f.message,
                rule_id=f.rule_id,
                subject=f.subject,
            )
            for f in report.findings
        ],
    )


def _summary_fields(row: TriageRuleSet) -> dict[str, Any]:
    return {
        "version": row.version,
        "title": row.title,
        "active": row.active,
        "builtin": row.builtin,
        "activatable": row.activatable,
        "loaded_at": row.loaded_at,
        "loaded_by_key_id": row.loaded_by_key_id,
        "activated_at": row.activated_at,
        "activated_by_key_id": row.activated_by_key_id,
        "check_report": _check_read(row.check_report),
    }


def _rule_set_read(row: TriageRuleSet) -> RuleSetRead:
    ruleset = _cached(row.version, row.source_sha256, row.source)
    return RuleSetRead(
        **_summary_fields(row),
        description=ruleset.description,
        source=row.source,
        questions=len(ruleset.questions),
        outcomes=len(ruleset.outcomes),
        rules=len(ruleset.rules),
    )


async def list_rule_sets(session: AsyncSession, *, now: datetime) -> RuleSetList:
    """Every loaded version, newest first, the active one marked (docs/domain.md §14)."""
    await _ensure_builtin(session, now)
    rows = (
        await session.scalars(
            select(TriageRuleSet).order_by(
                TriageRuleSet.loaded_at.desc(), TriageRuleSet.version.desc()
            )
        )
    ).all()
    await session.commit()
    active = next((row.version for row in rows if row.active), DEFAULT_RULESET)
    return RuleSetList(
        active_version=active,
        items=[RuleSetSummary(**_summary_fields(row)) for row in rows],
    )


async def get_rule_set(session: AsyncSession, version: str, *, now: datetime) -> RuleSetRead:
    """One version with its YAML source and check report."""
    await _ensure_builtin(session, now)
    row = await session.scalar(select(TriageRuleSet).where(TriageRuleSet.version == version))
    await session.commit()
    if row is None:
        raise NotFound(f"No triage rule set {version!r}; GET /v1/triage/rules lists them.")
    return _rule_set_read(row)


async def load_rule_set(
    session: AsyncSession, principal: Principal, body: RuleSetUpload, *, now: datetime
) -> RuleSetRead:
    """Store a region's own rule set with its check report (docs/domain.md §12.1); admins only.

    A refused set (it does not load) is a 422 naming each problem's rule and line. A set with
    check errors is stored but cannot be activated; with ``activate`` it is a 409 and nothing
    is stored.
    """
    principal.require(Role.ADMIN)
    try:
        # Parsing and the exhaustive checks are CPU work: off the event loop, so other requests
        # (and /healthz) are answered meanwhile.
        ruleset, report = await asyncio.to_thread(_parse_and_check, body.source)
    except RuleSetError as exc:
        raise refusal(exc) from None
    await _ensure_builtin(session, now)
    existing = await session.scalar(
        select(TriageRuleSet.id).where(TriageRuleSet.version == ruleset.version)
    )
    if existing is not None:
        raise RuleSetExists(
            f"Rule set {ruleset.version} is already loaded; loaded versions never change, so "
            "give the new text a new version.",
            errors=[{"pointer": "#/source", "detail": f"version {ruleset.version} exists"}],
        )
    sha = _sha256(body.source)
    _PARSED[(ruleset.version, sha)] = ruleset
    row = TriageRuleSet(
        version=ruleset.version,
        title=ruleset.title,
        source=body.source,
        source_sha256=sha,
        builtin=False,
        active=False,
        activatable=report.activatable,
        check_report=_report_json(report),
        loaded_at=now,
        loaded_by_key_id=principal.key_id,
    )
    session.add(row)
    await session.flush()
    if body.activate:
        await _activate(session, principal, row, now=now)
    return _rule_set_read(row)


async def activate_rule_set(
    session: AsyncSession, principal: Principal, version: str, *, now: datetime
) -> RuleSetRead:
    """Make ``version`` the rule set every triage uses from now on; admins only."""
    principal.require(Role.ADMIN)
    await _ensure_builtin(session, now)
    row = await session.scalar(
        select(TriageRuleSet).where(TriageRuleSet.version == version).with_for_update()
    )
    if row is None:
        raise NotFound(f"No triage rule set {version!r}; GET /v1/triage/rules lists them.")
    if not row.active:
        await _activate(session, principal, row, now=now)
    return _rule_set_read(row)


async def _activate(
    session: AsyncSession, principal: Principal, row: TriageRuleSet, *, now: datetime
) -> None:
    if not row.activatable:
        report = _check_read(row.check_report)
        raise RuleSetNotActivatable(
            f"Rule set {row.version} has {report.errors} check error(s): "
            + "; ".join(f.message for f in report.findings if f.severity == "error"),
            extra={"version": row.version, "check_report": report.model_dump(mode="json")},
        )
    try:
        # Deactivate first: the partial unique index never sees two active rows.
        await session.execute(
            update(TriageRuleSet)
            .where(TriageRuleSet.active, TriageRuleSet.id != row.id)
            .values(active=False)
        )
        row.active = True
        row.activated_at = now
        row.activated_by_key_id = principal.key_id
        await session.flush()
    except IntegrityError:
        raise Conflict("Another rule set was activated at the same moment; try again.") from None


async def questionnaire(session: AsyncSession, *, now: datetime) -> Questionnaire:
    """The active rule set's questions in asking order, for a form to render (issue 4 §5)."""
    active = await active_rule_set(session, now=now)
    await session.commit()
    return Questionnaire(
        rule_set_version=active.version,
        title=active.title,
        questions=[_question_read(q) for q in active.ruleset.questions],
    )


def _question_read(q: Question) -> QuestionRead:
    return QuestionRead.model_validate(q, from_attributes=True)


# --- urgency (docs/domain.md §7) ---------------------------------------------------------------


def urgency_map_read() -> UrgencyMapRead:
    table = urgency_map()
    return UrgencyMapRead(
        levels=[
            LevelRead(level=m.level, meaning_nl=m.meaning_nl, meaning_en=m.meaning_en)
            for m in table.levels
        ],
        systems=[
            UrgencySystemRead(
                id=s.id, name=s.name, source=s.source, codes=[_code_read(c) for c in s.codes]
            )
            for s in table.systems
        ],
    )


def _code_read(c: NativeCode) -> NativeCodeRead:
    low, high = c.span
    return NativeCodeRead(
        code=c.code,
        level=c.level,
        covers=list(range(low, high + 1)),
        meaning_nl=c.meaning_nl,
        meaning_en=c.meaning_en,
    )


def _level_read(level: int, system: str | None, code: str | None) -> UnifiedUrgencyRead:
    meaning = urgency_map().levels[level]
    return UnifiedUrgencyRead(
        system=system,
        code=code,
        level=level,
        meaning_nl=meaning.meaning_nl,
        meaning_en=meaning.meaning_en,
    )


def _system_error(exc: UnknownUrgencySystem, pointer: str) -> InvalidInput:
    return InvalidInput(
        str(exc),
        errors=[{"pointer": pointer, "detail": f"unknown system; valid: {', '.join(exc.valid)}"}],
        extra={"valid_systems": list(exc.valid)},
    )


def unify(system: str, code: str, *, pointer: str = "#/urgency") -> UnifiedUrgencyRead:
    """A native code with its unified level; unknown systems and codes are 422 naming the valid
    ones. ``pointer`` prefixes the field names (``#/urgency`` or ``query:``)."""
    sep = "" if pointer.endswith(":") else "/"
    try:
        unified = to_unified(system, code)
    except UnknownUrgencySystem as exc:
        raise _system_error(exc, f"{pointer}{sep}system") from None
    except UnknownUrgencyCode as exc:
        raise InvalidInput(
            str(exc),
            errors=[
                {
                    "pointer": f"{pointer}{sep}code",
                    "detail": f"unknown {exc.system} code; valid: {', '.join(exc.valid)}",
                }
            ],
            extra={"system": exc.system, "valid_codes": list(exc.valid)},
        ) from None
    return _level_read(unified.level, unified.system, unified.code)


def _urgency_in(u: UrgencyIn) -> UnifiedUrgencyRead:
    if u.level is not None:
        return _level_read(u.level, None, None)
    assert u.system is not None
    assert u.code is not None
    return unify(u.system, u.code)


def convert_urgency(system: str, *, code: str | None, level: int | None) -> UrgencyConversion:
    """``system``+``code`` -> unified level, or ``level``+``system`` -> the native codes that span
    it (empty where the system has none, e.g. GGZ at level 0)."""
    if (code is None) == (level is None):
        raise InvalidInput(
            "Give system with either code (native -> unified) or level (unified -> native).",
            errors=[
                {
                    "pointer": "query:code" if code is None else "query:level",
                    "detail": "give exactly one of code and level",
                }
            ],
        )
    try:
        native = urgency_map().system(system)
    except UnknownUrgencySystem as exc:
        raise _system_error(exc, "query:system") from None
    if code is not None:
        unified = unify(system, code, pointer="query:")
        codes = [_code_read(native.code(code))]
    else:
        assert level is not None
        unified = _level_read(level, system, None)
        codes = [_code_read(c) for c in native.codes if c.span[0] <= level <= c.span[1]]
    return UrgencyConversion(
        system=system,
        level=unified.level,
        meaning_nl=unified.meaning_nl,
        meaning_en=unified.meaning_en,
        codes=codes,
    )


# --- triage (docs/domain.md §4, §13) -----------------------------------------------------------


def _pointer_part(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _answers(ruleset: RuleSet, raw: Mapping[str, JsonValue]) -> dict[str, Answer]:
    """The given answers, checked against the rule set's questions; null means not answered."""
    answers: dict[str, Answer] = {}
    errors = []
    for name, value in raw.items():
        if value is None:
            continue
        question = ruleset.question_map.get(name)
        pointer = f"#/answers/{_pointer_part(name)}"
        if question is None:
            close = difflib.get_close_matches(name, ruleset.question_map, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            detail = f"unknown question in rule set {ruleset.version}{hint}"
            errors.append({"pointer": pointer, "detail": detail})
        elif isinstance(value, bool | str) and question.accepts(value):
            answers[name] = value
        else:
            errors.append({"pointer": pointer, "detail": f"takes {question.describe()}"})
    if errors:
        raise InvalidInput(
            "Invalid answers: " + ", ".join(e["pointer"] for e in errors),
            errors=errors,
            extra={"rule_set_version": ruleset.version},
        )
    return answers


def _placement_problem(result: TriageResult, care_type: CareType | None) -> InvalidInput | None:
    """Why this advice cannot be stored on a placement, if it cannot (docs/domain.md §13)."""
    if care_type is not None:
        return None
    if result.outcome is None:
        return InvalidInput(
            "The triage is not complete, so it cannot be stored on the placement; still open: "
            + ", ".join(result.open_questions),
            errors=[{"pointer": "#/answers", "detail": "open questions decide the outcome"}],
        )
    if result.needs_urgency:
        return InvalidInput(
            f"Outcome {result.outcome} needs an urgency to pick the care type.",
            errors=[{"pointer": "#/urgency", "detail": "required for this outcome"}],
        )
    return InvalidInput(
        f"Outcome {result.outcome} advises no place to search, so the placement cannot be "
        "triaged with it: cancel the placement, or override with a care type and a reason.",
        errors=[{"pointer": "#/placement_id", "detail": f"outcome {result.outcome} has no place"}],
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """A triage request checked against the active rule set, before its placement is read."""

    active: ActiveRuleSet
    answers: dict[str, Answer]
    unified: UnifiedUrgencyRead | None


async def prepare(
    session: AsyncSession, principal: Principal, body: TriageRequest, *, now: datetime
) -> Prepared:
    """The caller's role, the urgency and the answers checked against the active rule set."""
    principal.require(Role.TRIAGIST, Role.REFERRER)
    unified = None if body.urgency is None else _urgency_in(body.urgency)
    active = await active_rule_set(session, now=now)
    return Prepared(active, _answers(active.ruleset, body.answers), unified)


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the rule set advises for a request: the outcome, the advised care types and the one
    a placement is triaged with (the override, or the first advised)."""

    active: ActiveRuleSet
    answers: dict[str, Answer]
    unified: UnifiedUrgencyRead | None
    result: TriageResult
    advised: list[CareType]
    care_type: CareType | None
    target_group: str | None


def assess(
    prepared: Prepared,
    body: TriageRequest,
    *,
    placement_urgency: tuple[int, str | None, str | None] | None = None,
) -> Assessment:
    """Evaluate the rule set (docs/domain.md §4). ``placement_urgency`` (level, system, code) is
    the triaged placement's, used when the request gives none. With ``placement_id`` an advice
    that names no single care type is refused: it cannot be stored on the placement."""
    unified = prepared.unified
    if unified is None and placement_urgency is not None:
        unified = _level_read(*placement_urgency)
    active = prepared.active
    result = evaluate(active.ruleset, prepared.answers, None if unified is None else unified.level)
    advised = list(result.care_types)
    override = body.override_care_type
    if override is not None and override not in advised and body.override_reason is None:
        raise InvalidInput(
            f"Overriding the advice ({', '.join(advised) or 'no place'}) with {override} needs "
            "a reason (docs/domain.md §4: deviate only with arguments).",
            errors=[{"pointer": "#/override_reason", "detail": "required for an override"}],
        )
    care_type = override or (advised[0] if advised and not result.needs_urgency else None)
    if body.placement_id is not None:
        problem = _placement_problem(result, care_type)
        if problem is not None:
            raise problem
    target_group = None if result.target_group is None else result.target_group.value
    return Assessment(active, prepared.answers, unified, result, advised, care_type, target_group)


async def record(
    session: AsyncSession,
    principal: Principal,
    body: TriageRequest,
    assessed: Assessment,
    *,
    now: datetime,
) -> TriageRecord:
    """Store the triage record (in the caller's transaction)."""
    unified, result, override = assessed.unified, assessed.result, body.override_care_type
    record = TriageRecord(
        id=uuid.uuid4(),
        created_at=now,
        rule_set_version=assessed.active.version,
        placement_id=body.placement_id,
        answers=orjson.dumps(assessed.answers).decode(),
        urgency_system=None if unified is None else unified.system,
        urgency_code=None if unified is None else unified.code,
        urgency_level=None if unified is None else unified.level,
        outcome=result.outcome,
        rule_id=result.rule_id,
        complete=result.complete,
        care_types=",".join(assessed.advised),
        target_group=assessed.target_group,
        required_features=",".join(f.value for f in Feature if f in body.features),
        override_care_type=None if override is None else override.value,
        override_reason=body.override_reason,
        key_id=principal.key_id,
        organisation_id=principal.organisation_id,
    )
    session.add(record)
    await session.flush()
    return record


def placement_details(
    record: TriageRecord, assessed: Assessment, body: TriageRequest
) -> dict[str, Any]:
    """What the placement's triage event records of this triage."""
    override = body.override_care_type
    return {
        "triage_id": record.id,
        "rule_id": assessed.result.rule_id,
        "advised_care_types": assessed.advised,
        **(
            {"override_care_type": override.value, "override_reason": body.override_reason}
            if override is not None and override not in assessed.advised
            else {}
        ),
    }


def advice(
    record: TriageRecord, assessed: Assessment, placement: PlacementRef | None, body: TriageRequest
) -> Advice:
    """The answer of a triage (without the search, which ``app.flows.triage`` adds)."""
    return _advice(
        record,
        assessed.active,
        assessed.result,
        assessed.unified,
        assessed.care_type,
        placement,
        body,
    )


def _advice(
    record: TriageRecord,
    active: ActiveRuleSet,
    result: TriageResult,
    unified: UnifiedUrgencyRead | None,
    care_type: CareType | None,
    placement: PlacementRef | None,
    body: TriageRequest,
) -> Advice:
    ruleset = active.ruleset
    outcome = None if result.outcome is None else ruleset.outcome_map[result.outcome]
    return Advice(
        id=record.id,
        created_at=record.created_at,
        rule_set=RuleSetRef(version=active.version, title=active.title),
        complete=result.complete,
        outcome=None
        if outcome is None
        else OutcomeRead(
            code=outcome.code,
            label_nl=outcome.label_nl,
            label_en=outcome.label_en,
            advice_nl=outcome.advice_nl,
            advice_en=outcome.advice_en,
        ),
        rule_id=result.rule_id,
        basis=result.basis,
        rationale_nl=result.rationale_nl,
        rationale_en=result.rationale_en,
        care_types=list(result.care_types),
        care_type=care_type,
        override=None
        if body.override_care_type is None
        else OverrideRead(
            care_type=body.override_care_type,
            reason=body.override_reason,
            advised_care_types=list(result.care_types),
        ),
        target_group=result.target_group,
        required_features=[f for f in Feature if f in body.features],
        urgency=unified,
        needs_urgency=result.needs_urgency,
        deciding_inputs=dict(result.deciding_inputs),
        open_questions=[_question_read(ruleset.question_map[q]) for q in result.open_questions],
        sets=dict(result.sets),
        actions=[
            ActionRead(code=a.code, text_nl=a.text_nl, text_en=a.text_en) for a in result.actions
        ],
        placement=placement,
    )
