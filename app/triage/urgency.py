"""Uniform urgency language (docs/domain.md §7): native urgency codes <-> unified level (UUL),
and the time limits that follow from a UUL (§8, §12.4, §12.6). Pure apart from reading its own map.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from functools import cache
from importlib.resources import files
from typing import Annotated, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_LEVEL = 5
UnifiedLevel = Annotated[int, Field(ge=0, le=MAX_LEVEL)]


class UnknownUrgencySystem(ValueError):
    def __init__(self, system: str, valid: Iterable[str]) -> None:
        self.system = system
        self.valid = tuple(valid)
        super().__init__(
            f"unknown urgency system {system!r}; valid systems: {', '.join(self.valid)}"
        )


class UnknownUrgencyCode(ValueError):
    def __init__(self, system: str, code: str, valid: Iterable[str]) -> None:
        self.system = system
        self.code = code
        self.valid = tuple(valid)
        super().__init__(
            f"unknown {system} urgency code {code!r}; valid codes: {', '.join(self.valid)}"
        )


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelMeaning(_Data):
    level: UnifiedLevel
    meaning_nl: str
    meaning_en: str


class NativeCode(_Data):
    code: str = Field(min_length=1)
    level: UnifiedLevel
    # Lowest and highest UUL the code spans when docs/domain.md §7 puts it on several rows.
    covers: tuple[UnifiedLevel, UnifiedLevel] | None = None
    meaning_nl: str
    meaning_en: str

    @model_validator(mode="after")
    def _most_urgent_of_range(self) -> Self:
        # A code spanning levels maps to its most urgent one: a vague mapping must not delay care.
        low, high = self.span
        if low != self.level or high < low:
            raise ValueError(f"{self.code}: covers must run from level {self.level} upwards")
        return self

    @property
    def span(self) -> tuple[int, int]:
        return self.covers or (self.level, self.level)


class UrgencySystem(_Data):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    source: str
    codes: tuple[NativeCode, ...]

    @model_validator(mode="after")
    def _unique_codes(self) -> Self:
        _require_unique((c.code for c in self.codes), f"{self.id} code")
        return self

    def code(self, code: str) -> NativeCode:
        for native in self.codes:
            if native.code == code:
                return native
        raise UnknownUrgencyCode(self.id, code, (c.code for c in self.codes))


class UrgencyMap(_Data):
    """The whole table of docs/domain.md §7, served as is by the urgency-map endpoint."""

    levels: tuple[LevelMeaning, ...]
    systems: tuple[UrgencySystem, ...]

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if [m.level for m in self.levels] != list(range(MAX_LEVEL + 1)):
            raise ValueError(f"levels must list 0..{MAX_LEVEL} once each, in order")
        _require_unique((s.id for s in self.systems), "system")
        return self

    def system(self, system: str) -> UrgencySystem:
        for candidate in self.systems:
            if candidate.id == system:
                return candidate
        raise UnknownUrgencySystem(system, (s.id for s in self.systems))


class UnifiedUrgency(_Data):
    """A native code with its unified level; store all three, never overwrite the native code."""

    system: str
    code: str
    level: UnifiedLevel
    meaning_nl: str
    meaning_en: str


def _require_unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def load_urgency_map_text(text: str) -> UrgencyMap:
    return UrgencyMap.model_validate(yaml.safe_load(text))


@cache
def urgency_map() -> UrgencyMap:
    """The packaged map (app/triage/urgency_map.yaml), loaded once."""
    return load_urgency_map_text(
        files("app.triage").joinpath("urgency_map.yaml").read_text("utf-8")
    )


def to_unified(system: str, code: str) -> UnifiedUrgency:
    table = urgency_map()
    level = table.system(system).code(code).level
    meaning = table.levels[level]
    return UnifiedUrgency(
        system=system,
        code=code,
        level=level,
        meaning_nl=meaning.meaning_nl,
        meaning_en=meaning.meaning_en,
    )


def from_unified(level: int, system: str) -> list[str]:
    """Native codes of `system` whose span includes `level`; empty when the system has none."""
    check_level(level)
    return [c.code for c in urgency_map().system(system).codes if c.span[0] <= level <= c.span[1]]


def ggz_crisis_norm(level: int) -> timedelta | None:
    """Maximum wait for a GGZ crisis assessment (docs/domain.md §12.4); None where there is none."""
    check_level(level)
    return {2: timedelta(hours=1), 3: timedelta(hours=4), 4: timedelta(hours=24)}.get(level)


def hold_expiry(level: int) -> timedelta:
    """How long a hold on a free place lasts before automatic release (docs/domain.md §12.6)."""
    check_level(level)
    return timedelta(minutes=30) if level <= 3 else timedelta(hours=2)


def escalation_window(level: int) -> timedelta:
    """Time without an accepted offer after which a placement escalates (docs/domain.md §8)."""
    check_level(level)
    if level <= 3:
        return timedelta(minutes=30)
    return timedelta(hours=4) if level == 4 else timedelta(hours=24)


def check_level(level: int) -> None:
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"unified urgency level must be 0..{MAX_LEVEL}, got {level}")
