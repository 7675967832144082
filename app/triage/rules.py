"""Triage rule sets as versioned data and their pure first-match evaluator.

The table and its rules: docs/domain.md §4, §12.1.

Evaluation uses three-valued logic: partial answers never claim an outcome a missing answer could
change.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files
from typing import Annotated, Any, ClassVar, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from app.enums import CareType, TargetGroup
from app.triage.urgency import MAX_LEVEL, UnifiedLevel, check_level

DEFAULT_RULESET = "west-2026.1"
_RULESETS = files("app.triage").joinpath("rulesets")

Answer = bool | str
Identifier = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_]*$")]


class RuleSetProblem(BaseModel):
    """One reason a rule set was refused, located as precisely as the YAML allows."""

    model_config = ConfigDict(frozen=True)

    message: str
    rule_id: str | None = None
    line: int | None = None
    location: str | None = None  # e.g. rules[3].when.all[0].input

    def __str__(self) -> str:
        where = [
            *([f"line {self.line}"] if self.line else []),
            *([f"rule {self.rule_id}"] if self.rule_id else []),
            *([f"at {self.location}"] if self.location else []),
        ]
        return f"{', '.join(where)}: {self.message}" if where else self.message


class RuleSetError(ValueError):
    def __init__(self, problems: Iterable[RuleSetProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


class InvalidAnswer(ValueError):
    def __init__(self, input_id: str, message: str) -> None:
        self.input_id = input_id
        super().__init__(message)


def _located(message: str, *path: str | int) -> PydanticCustomError:
    # Carries the path below the field pydantic reports, so the loader can point at the exact line.
    return PydanticCustomError("ruleset", "{message}", {"message": message, "path": path})


# --- Conditions: a small expression tree judged in Kleene three-valued logic


@dataclass(frozen=True, slots=True)
class Verdict:
    value: bool | None  # None: unknown with the answers given
    # Known value: inputs that decide it. Unknown: the missing inputs that could decide it.
    because: frozenset[str]


class Condition(ABC):
    __slots__ = ()

    @abstractmethod
    def judge(self, answers: Mapping[str, Answer]) -> Verdict: ...

    @abstractmethod
    def inputs(self) -> frozenset[str]: ...

    @abstractmethod
    def to_data(self) -> object:
        """The YAML form this condition was parsed from (round-trips through parse_condition)."""


@dataclass(frozen=True, slots=True)
class Is(Condition):
    """An input has one of the given values; the shorthand `x` means x is true."""

    input: str
    values: frozenset[Answer]

    def judge(self, answers: Mapping[str, Answer]) -> Verdict:
        if self.input not in answers:
            return Verdict(None, self.inputs())
        return Verdict(answers[self.input] in self.values, self.inputs())

    def inputs(self) -> frozenset[str]:
        return frozenset({self.input})

    def to_data(self) -> object:
        if self.values == {True}:
            return self.input
        if len(self.values) == 1:
            return {"input": self.input, "equals": next(iter(self.values))}
        return {"input": self.input, "in": sorted(self.values, key=str)}


@dataclass(frozen=True, slots=True)
class Not(Condition):
    operand: Condition

    def judge(self, answers: Mapping[str, Answer]) -> Verdict:
        verdict = self.operand.judge(answers)
        return Verdict(None if verdict.value is None else not verdict.value, verdict.because)

    def inputs(self) -> frozenset[str]:
        return self.operand.inputs()

    def to_data(self) -> object:
        return {"not": self.operand.to_data()}


@dataclass(frozen=True, slots=True)
class _Junction(Condition):
    operands: tuple[Condition, ...]

    KEY: ClassVar[str]
    DECISIVE: ClassVar[bool]  # an operand with this value decides the whole junction

    def judge(self, answers: Mapping[str, Answer]) -> Verdict:
        verdicts = [operand.judge(answers) for operand in self.operands]
        for verdict in verdicts:
            if verdict.value is self.DECISIVE:
                return verdict  # one decisive operand is the whole explanation
        unknown = [verdict for verdict in verdicts if verdict.value is None]
        because = frozenset[str]().union(*(verdict.because for verdict in unknown or verdicts))
        return Verdict(None if unknown else not self.DECISIVE, because)

    def inputs(self) -> frozenset[str]:
        return frozenset[str]().union(*(operand.inputs() for operand in self.operands))

    def to_data(self) -> object:
        return {self.KEY: [operand.to_data() for operand in self.operands]}


class All(_Junction):
    __slots__ = ()
    KEY = "all"
    DECISIVE = False


class AnyOf(_Junction):
    __slots__ = ()
    KEY = "any"
    DECISIVE = True


ALWAYS: Condition = All(())  # the empty conjunction: the condition of an `otherwise` rule


def parse_condition(
    raw: object, questions: Mapping[str, Question], path: tuple[str | int, ...] = ()
) -> Condition:
    """Build a condition from its YAML form; errors name the path below the condition."""
    if isinstance(raw, str):
        question = _question(questions, raw, path)
        if question.type != "boolean":
            raise _located(
                f"input {raw!r} is not boolean; write {{input: {raw}, equals: ...}}", *path
            )
        return Is(question.id, frozenset({True}))
    if not isinstance(raw, dict):
        raise _located(
            "a condition is an input name or a mapping with all, any, not or input", *path
        )
    keys = set(raw)
    if keys == {"not"}:
        return Not(parse_condition(raw["not"], questions, (*path, "not")))
    if keys in ({"all"}, {"any"}):
        (key,) = keys
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise _located(f"{key} takes a non-empty list of conditions", *path, key)
        junction = All if key == "all" else AnyOf
        return junction(
            tuple(parse_condition(item, questions, (*path, key, i)) for i, item in enumerate(items))
        )
    if keys in ({"input", "equals"}, {"input", "in"}):
        question = _question(questions, raw["input"], (*path, "input"))
        if "equals" in raw:
            return Is(
                question.id, frozenset({_accepted(question, raw["equals"], (*path, "equals"))})
            )
        items = raw["in"]
        if not isinstance(items, list) or not items:
            raise _located("in takes a non-empty list of values", *path, "in")
        values = (_accepted(question, item, (*path, "in", i)) for i, item in enumerate(items))
        return Is(question.id, frozenset(values))
    raise _located(
        f"unknown condition form with keys {sorted(map(str, keys))}; use one of "
        "{all: [...]}, {any: [...]}, {not: ...}, {input: x, equals: v}, {input: x, in: [...]} or x",
        *path,
    )


def _question(
    questions: Mapping[str, Question], name: object, path: tuple[str | int, ...]
) -> Question:
    question = questions.get(name) if isinstance(name, str) else None
    if question is None:
        close = difflib.get_close_matches(str(name), questions, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _located(f"unknown input {name!r}{hint}", *path)
    return question


def _accepted(question: Question, value: object, path: tuple[str | int, ...]) -> Answer:
    if isinstance(value, bool | str) and question.accepts(value):
        return value
    raise _located(f"input {question.id!r} takes {question.describe()}, not {value!r}", *path)


def _condition_from_data(raw: object, info: ValidationInfo) -> Condition:
    return parse_condition(raw, _vocabulary(info).question_map)


def _condition_to_data(condition: Condition) -> object:
    return condition.to_data()


ConditionField = Annotated[
    Condition, PlainValidator(_condition_from_data), PlainSerializer(_condition_to_data)
]


# --- The rule-set schema


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Question(_Data):
    """One input of the questionnaire; the rule set lists questions in asking order."""

    id: Identifier
    type: Literal["boolean", "enum"]
    values: tuple[Identifier, ...] = ()
    text_nl: str
    text_en: str
    help_nl: str | None = None
    help_en: str | None = None
    # Recorded (and it may set the target group) but never decides the outcome.
    informational: StrictBool = False

    @model_validator(mode="after")
    def _values_match_type(self) -> Self:
        if self.type == "boolean" and self.values:
            raise _located("a boolean question takes no values", "values")
        distinct = set(self.domain)
        if len(distinct) < 2 or len(distinct) != len(self.domain):
            raise _located("an enum question needs at least two distinct values", "values")
        return self

    @property
    def domain(self) -> tuple[Answer, ...]:
        return (True, False) if self.type == "boolean" else self.values

    def accepts(self, value: object) -> bool:
        if self.type == "boolean":
            return isinstance(value, bool)
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return "true or false" if self.type == "boolean" else f"one of {', '.join(self.values)}"


class UrgencyBand(_Data):
    max_level: UnifiedLevel  # applies to unified urgency levels up to and including this one
    care_types: tuple[CareType, ...]


class Outcome(_Data):
    code: Identifier
    label_nl: str
    label_en: str
    advice_nl: str
    advice_en: str
    # Exactly one of these two; an explicitly empty list means: no capacity to search.
    care_types: tuple[CareType, ...] | None = None
    care_types_by_urgency: tuple[UrgencyBand, ...] | None = None

    @model_validator(mode="after")
    def _one_mapping(self) -> Self:
        bands = self.care_types_by_urgency
        if bands is None:
            return self
        if self.care_types is not None:
            raise _located("declare care_types or care_types_by_urgency, not both")
        levels = [band.max_level for band in bands]
        if levels != sorted(set(levels)) or levels[-1:] != [MAX_LEVEL]:
            raise _located(
                f"care_types_by_urgency needs ascending max_level ending at {MAX_LEVEL}",
                "care_types_by_urgency",
            )
        return self

    @property
    def declares_care_types(self) -> bool:
        return self.care_types is not None or self.care_types_by_urgency is not None

    @property
    def depends_on_urgency(self) -> bool:
        return self.care_types_by_urgency is not None

    def care_types_for(self, level: int | None) -> tuple[CareType, ...]:
        """Care types to search; with an unknown urgency, every candidate (in band order)."""
        if self.care_types_by_urgency is None:
            return self.care_types or ()
        if level is None:
            bands = self.care_types_by_urgency
            return tuple(dict.fromkeys(ct for band in bands for ct in band.care_types))
        return next(b.care_types for b in self.care_types_by_urgency if level <= b.max_level)


class Action(_Data):
    code: Identifier
    text_nl: str
    text_en: str


class Rule(_Data):
    id: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    when: ConditionField | None = None
    otherwise: StrictBool = False  # the catch-all: fires whenever it is reached
    outcome: Identifier
    basis: str  # source of the rule's content, e.g. "LHV afwegingsinstrument"
    rationale_nl: str
    rationale_en: str
    sets: dict[str, Answer] = Field(default_factory=dict)
    actions: tuple[Action, ...] = ()

    @field_validator("outcome")
    @classmethod
    def _known_outcome(cls, code: str, info: ValidationInfo) -> str:
        declared = _vocabulary(info).outcome_map
        if code not in declared:
            raise _located(f"unknown outcome {code!r}; declared: {', '.join(declared)}")
        return code

    @field_validator("sets", mode="before")
    @classmethod
    def _valid_sets(cls, sets: object, info: ValidationInfo) -> object:
        # Checked before pydantic's lax parsing could turn a 1 into True.
        if isinstance(sets, dict):
            questions = _vocabulary(info).question_map
            for name, value in sets.items():
                _accepted(_question(questions, name, (name,)), value, (name,))
        return sets

    @model_validator(mode="after")
    def _when_or_otherwise(self) -> Self:
        if (self.when is None) != self.otherwise:
            raise _located("a rule has either a when condition or otherwise: true")
        return self

    @property
    def condition(self) -> Condition:
        return ALWAYS if self.when is None else self.when


class TargetGroupRule(_Data):
    when: ConditionField
    target_group: TargetGroup


class TargetGroupSpec(_Data):
    """First-match rules for the target group; it shapes the search, not the outcome (§4)."""

    default: TargetGroup
    rules: tuple[TargetGroupRule, ...] = ()

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return (*(rule.when for rule in self.rules), ALWAYS)

    def value(self, index: int | None) -> TargetGroup | None:
        if index is None:
            return None
        return self.rules[index].target_group if index < len(self.rules) else self.default


def _require_unique(ids: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for index, item in enumerate(ids):
        if item in seen:
            raise _located(f"duplicate {what} {item!r}", index)
        seen.add(item)


# A questionnaire longer than this is not a triage a desk can ask; the built-in set has 19.
MAX_QUESTIONS = 40


class _Vocabulary(BaseModel):
    """Questions and outcomes: validated first, so rules can be checked against them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    questions: tuple[Question, ...]
    outcomes: tuple[Outcome, ...]

    @field_validator("questions")
    @classmethod
    def _unique_questions(cls, questions: tuple[Question, ...]) -> tuple[Question, ...]:
        if len(questions) > MAX_QUESTIONS:
            raise _located(
                f"at most {MAX_QUESTIONS} questions (this set has {len(questions)}): the static "
                "checks walk every combination of answers the rules depend on"
            )
        _require_unique([q.id for q in questions], "question id")
        return questions

    @field_validator("outcomes")
    @classmethod
    def _unique_outcomes(cls, outcomes: tuple[Outcome, ...]) -> tuple[Outcome, ...]:
        _require_unique([o.code for o in outcomes], "outcome code")
        return outcomes

    @cached_property
    def question_map(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}

    @cached_property
    def outcome_map(self) -> dict[str, Outcome]:
        return {o.code: o for o in self.outcomes}


def _vocabulary(info: ValidationInfo) -> _Vocabulary:
    if not isinstance(info.context, _Vocabulary):
        raise _located("rule sets are built with load_ruleset_text()")
    return info.context


class RuleSet(_Vocabulary):
    """A versioned triage table (docs/domain.md §12.1): questions, outcomes and ordered rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    title: str
    description: str
    target_group: TargetGroupSpec
    rules: tuple[Rule, ...]

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        _require_unique([rule.id for rule in rules], "rule id")
        return rules

    @cached_property
    def activatable(self) -> bool:
        """True when the static checks find no errors; only such a set may go live."""
        from app.triage.checks import check_ruleset  # imported here: checks imports this module

        return check_ruleset(self).activatable

    def in_asking_order(self, ids: Iterable[str]) -> tuple[str, ...]:
        wanted = set(ids)
        return tuple(q.id for q in self.questions if q.id in wanted)


# --- Loading


def _yaml_error(exc: yaml.YAMLError, text: str) -> RuleSetError:
    mark = getattr(exc, "problem_mark", None)
    position = getattr(exc, "position", None)  # a ReaderError has a character offset only
    line = mark.line + 1 if mark else None
    if line is None and position is not None:
        line = text.count("\n", 0, position) + 1
    message = f"not valid YAML: {getattr(exc, 'problem', None) or exc}"
    return RuleSetError([RuleSetProblem(message=message, line=line)])


def load_ruleset_text(text: str) -> RuleSet:
    """Parse and validate a rule set; every refusal is a RuleSetError naming rule and line."""
    try:
        loader = yaml.SafeLoader(text)  # the reader refuses control characters right here
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        message = "a rule set is a mapping with version, title, questions, outcomes and rules"
        raise RuleSetError([RuleSetProblem(message=message, line=_line(root, ()))])
    try:
        vocabulary = _Vocabulary.model_validate(data)
        return RuleSet.model_validate(data, context=vocabulary)
    except ValidationError as exc:
        raise RuleSetError(_problem(error, data, root) for error in exc.errors()) from None


@cache
def load_builtin_ruleset(name: str = DEFAULT_RULESET) -> RuleSet:
    """A rule set packaged in app/triage/rulesets/; its file name must equal its version."""
    if name not in builtin_ruleset_names():
        available = ", ".join(builtin_ruleset_names())
        raise RuleSetError(
            [RuleSetProblem(message=f"no rule set {name!r}; available: {available}")]
        )
    ruleset = load_ruleset_text(_RULESETS.joinpath(f"{name}.yaml").read_text("utf-8"))
    if ruleset.version != name:
        message = f"{name}.yaml declares version {ruleset.version!r}"
        raise RuleSetError([RuleSetProblem(message=message, location="version")])
    return ruleset


def builtin_ruleset_names() -> list[str]:
    names = (entry.name for entry in _RULESETS.iterdir())
    return sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml"))


def _problem(
    error: ErrorDetails, data: Mapping[str, Any], root: yaml.Node | None
) -> RuleSetProblem:
    path: tuple[str | int, ...] = (*error["loc"], *error.get("ctx", {}).get("path", ()))
    location = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)
    return RuleSetProblem(
        message=str(error["msg"]),
        rule_id=_rule_id(data, path),
        line=_line(root, path),
        location=location.removeprefix(".") or None,
    )


def _rule_id(data: Mapping[str, Any], path: tuple[str | int, ...]) -> str | None:
    if path[:1] != ("rules",) or len(path) < 2:
        return None
    try:
        return str(data["rules"][path[1]]["id"])  # the shape is unvalidated: anything may fail
    except (KeyError, IndexError, TypeError):
        return None


def _line(root: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    if root is None:
        return None
    # Walk the composed node tree as far as the path exists: a missing key points at its parent.
    node = root
    for key in path:
        child = _children(node).get(key)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _children(node: yaml.Node) -> dict[object, yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return {name.value: value for name, value in node.value}
    return dict(enumerate(node.value)) if isinstance(node, yaml.SequenceNode) else {}


# --- Evaluation


@dataclass(frozen=True, slots=True)
class Match:
    """A first-match scan: the index that fires (None while undetermined or when nothing matches),
    the inputs that decided the scan so far, and the missing inputs that could still change it."""

    index: int | None
    deciding: frozenset[str]
    open: frozenset[str]


def match_first(conditions: Sequence[Condition], answers: Mapping[str, Answer]) -> Match:
    """A condition fires only if it is definitely true and every earlier one definitely false."""
    deciding: set[str] = set()
    open_inputs: set[str] = set()
    for index, condition in enumerate(conditions):
        verdict = condition.judge(answers)
        if verdict.value is None:
            open_inputs |= verdict.because
        elif verdict.value:
            if not open_inputs:
                return Match(index, frozenset(deciding | verdict.because), frozenset())
            break  # later conditions can no longer fire
        elif not open_inputs:
            deciding |= verdict.because
    return Match(None, frozenset(deciding), frozenset(open_inputs))


@dataclass(frozen=True, slots=True)
class _Advice:
    """What a triage tells the triagist: the rule that fires and, when a place must be found, the
    target group the search is for. Two answer sets give the same advice when these are equal."""

    rule: int
    target_group: int | None


def _advice_or_candidates(
    ruleset: RuleSet, answers: Mapping[str, Answer]
) -> _Advice | frozenset[str]:
    """The advice when ``answers`` decide it, else the missing inputs that could still matter."""
    match = match_first([rule.condition for rule in ruleset.rules], answers)
    group = match_first(ruleset.target_group.conditions, answers)
    outcome = (
        None if match.index is None else ruleset.outcome_map[ruleset.rules[match.index].outcome]
    )
    # The target group only matters while the outcome may still need a place to be found.
    needs_place = outcome is None or bool(outcome.care_types_for(None))
    if match.index is not None and (group.index is not None or not needs_place):
        return _Advice(match.index, group.index if needs_place else None)
    return match.open | (group.open if needs_place else frozenset())


def deciding_questions(ruleset: RuleSet, answers: Mapping[str, Answer]) -> frozenset[str]:
    """The missing inputs some answer to which could change the advice (rule and target group).

    A scan of the rules lists every input of every undecided rule down to the first rule that
    surely fires; many of those cannot matter (with a Wlz entitlement, the crisis question alone
    decides between R3 and R4, whatever the later rules ask). This builds the advice as a function
    of the missing inputs, as a reduced decision diagram branching on inputs in asking order:
    equal sub-functions share one node and a test whose branches all lead to the same node is
    dropped. In such a diagram an input appears exactly when the function depends on it, i.e. when
    some answer to it, with some answers to the others, changes the advice.
    """
    rank = {question.id: i for i, question in enumerate(ruleset.questions)}
    conditions = (
        *(rule.condition for rule in ruleset.rules),
        *ruleset.target_group.conditions,
    )
    nodes: dict[object, int] = {}  # a leaf's advice or (input, children) -> node id
    tests: dict[int, str] = {}  # node id -> the input it tests (absent for leaves)
    built: dict[object, int] = {}  # residual problem -> node id

    def node(key: object) -> int:
        return nodes.setdefault(key, len(nodes))

    def build(known: dict[str, Answer]) -> int:
        state = _advice_or_candidates(ruleset, known)
        if isinstance(state, _Advice):
            return node(state)
        # Two paths that agree on every verdict and on the answers given to the inputs of the
        # undecided conditions pose the same remaining problem.
        verdicts = tuple(condition.judge(known).value for condition in conditions)
        undecided = frozenset[str]().union(
            *(c.inputs() for c, v in zip(conditions, verdicts, strict=True) if v is None)
        )
        residual = frozenset(
            (name, value)
            for name, value in known.items()
            if name in undecided and name not in answers
        )
        memo_key = (verdicts, residual)
        if memo_key in built:
            return built[memo_key]
        name = min(state, key=rank.__getitem__)
        children = tuple(
            build(known | {name: value}) for value in ruleset.question_map[name].domain
        )
        if len(set(children)) == 1:
            result = children[0]
        else:
            result = node((name, children))
            tests[result] = name
        built[memo_key] = result
        return result

    root = build(dict(answers))
    reachable: set[int] = set()
    stack = [root]
    children_of = {ident: key[1] for key, ident in nodes.items() if isinstance(key, tuple)}
    while stack:
        ident = stack.pop()
        if ident not in reachable:
            reachable.add(ident)
            stack.extend(children_of.get(ident, ()))
    return frozenset(tests[ident] for ident in reachable if ident in tests)


class TriageResult(BaseModel):
    """The advice and its explanation; store it with the answers and the rule-set version (§4)."""

    model_config = ConfigDict(frozen=True)

    ruleset_version: str
    outcome: str | None  # None: undetermined, see open_questions
    rule_id: str | None
    care_types: tuple[CareType, ...]  # every candidate while needs_urgency
    target_group: TargetGroup | None
    # Replaying only these answers gives the same result; for an undetermined outcome, the answers
    # that ruled out the rules before the first undecided one.
    deciding_inputs: dict[str, Answer]
    open_questions: tuple[str, ...]  # in asking order; each could still change the result
    sets: dict[str, Answer]
    actions: tuple[Action, ...]
    basis: str | None
    rationale_nl: str | None
    rationale_en: str | None
    needs_urgency: bool  # the care types depend on a unified urgency level that was not given
    complete: bool


def evaluate(
    ruleset: RuleSet, answers: Mapping[str, Answer], unified_urgency: int | None = None
) -> TriageResult:
    """Triage advice for (possibly partial) answers under one rule set (docs/domain.md §4)."""
    for name, value in answers.items():
        question = ruleset.question_map.get(name)
        if question is None:
            raise InvalidAnswer(name, f"unknown input {name!r} in rule set {ruleset.version}")
        if not question.accepts(value):
            raise InvalidAnswer(name, f"input {name!r} takes {question.describe()}, not {value!r}")
    if unified_urgency is not None:
        check_level(unified_urgency)

    match = match_first([rule.condition for rule in ruleset.rules], answers)
    group = match_first(ruleset.target_group.conditions, answers)
    rule = None if match.index is None else ruleset.rules[match.index]
    outcome = None if rule is None else ruleset.outcome_map[rule.outcome]
    # The target group only matters while the outcome may still need a place to be found.
    open_questions = ruleset.in_asking_order(deciding_questions(ruleset, answers))
    needs_urgency = outcome is not None and outcome.depends_on_urgency and unified_urgency is None
    return TriageResult(
        ruleset_version=ruleset.version,
        outcome=None if outcome is None else outcome.code,
        rule_id=None if rule is None else rule.id,
        care_types=() if outcome is None else outcome.care_types_for(unified_urgency),
        target_group=ruleset.target_group.value(group.index),
        deciding_inputs={
            name: answers[name] for name in ruleset.in_asking_order(match.deciding | group.deciding)
        },
        open_questions=open_questions,
        sets={} if rule is None else rule.sets,
        actions=() if rule is None else rule.actions,
        basis=None if rule is None else rule.basis,
        rationale_nl=None if rule is None else rule.rationale_nl,
        rationale_en=None if rule is None else rule.rationale_en,
        needs_urgency=needs_urgency,
        complete=rule is not None and not open_questions and not needs_urgency,
    )
