"""Uniform urgency language (docs/domain.md §7) and the time limits per unified level (§8, §12.4,
§12.6)."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from pydantic import ValidationError

from app.triage.urgency import (
    UnifiedUrgency,
    UnknownUrgencyCode,
    UnknownUrgencySystem,
    escalation_window,
    from_unified,
    ggz_crisis_norm,
    hold_expiry,
    load_urgency_map_text,
    to_unified,
    urgency_map,
)

# The §7 table, native code -> unified level; where a code spans rows, its most urgent one.
TABLE = {
    "nts": {"U0": 0, "U1": 1, "U2": 2, "U3": 3, "U4": 4, "U5": 5},
    "mts": {"red": 0, "orange": 2, "yellow": 3, "green": 4, "blue": 5},
    "ambulance": {"A0": 0, "A1": 1, "A2": 2, "B1": 4, "B2": 4, "C1": 4, "C2": 5},
    "ambulance_legacy": {"A1": 0, "A2": 2, "B": 4},
    "ggz": {"1h": 2, "4h": 3, "24h": 4},
    "vvt": {"wv_acute_visit": 3, "within_24h": 4, "regular_start": 5},
}
# Level -> native codes per system; codes spanning rows appear on each of them.
REVERSE = {
    "nts": [["U0"], ["U1"], ["U2"], ["U3"], ["U4"], ["U5"]],
    "mts": [["red"], ["red"], ["orange"], ["yellow"], ["green"], ["blue"]],
    "ambulance": [["A0"], ["A1"], ["A1", "A2"], ["A2"], ["B1", "B2", "C1"], ["C2"]],
    "ambulance_legacy": [["A1"], ["A1"], ["A1", "A2"], ["A2"], ["B"], []],
    "ggz": [[], [], ["1h"], ["4h"], ["24h"], []],
    "vvt": [[], [], [], ["wv_acute_visit"], ["within_24h"], ["regular_start"]],
}


def test_map_holds_exactly_the_systems_and_codes_of_the_table() -> None:
    table = urgency_map()

    assert {s.id: {c.code: c.level for c in s.codes} for s in table.systems} == TABLE
    assert [level.meaning_en for level in table.levels] == [
        "resuscitation",
        "immediate threat to life",
        "threat to vital functions or organ damage, as soon as possible",
        "real chance of harm, within hours",
        "within 24 hours",
        "next working day",
    ]


@pytest.mark.parametrize(
    ("system", "code", "level"),
    [(system, code, level) for system, codes in TABLE.items() for code, level in codes.items()],
)
def test_to_unified(system: str, code: str, level: int) -> None:
    assert to_unified(system, code).level == level


def test_to_unified_keeps_the_native_code_and_explains_the_level() -> None:
    assert to_unified("mts", "orange") == UnifiedUrgency(
        system="mts",
        code="orange",
        level=2,
        meaning_nl="bedreiging van vitale functies of orgaanschade, zo snel mogelijk",
        meaning_en="threat to vital functions or organ damage, as soon as possible",
    )


@pytest.mark.parametrize(
    ("system", "level", "codes"),
    [
        (system, level, codes)
        for system, per_level in REVERSE.items()
        for level, codes in enumerate(per_level)
    ],
)
def test_from_unified(system: str, level: int, codes: list[str]) -> None:
    assert from_unified(level, system) == codes


@pytest.mark.parametrize(
    ("system", "code"), [(system, code) for system, codes in TABLE.items() for code in codes]
)
def test_every_code_comes_back_from_its_own_level(system: str, code: str) -> None:
    assert code in from_unified(to_unified(system, code).level, system)


def test_unknown_code_names_the_system_and_the_valid_codes() -> None:
    with pytest.raises(UnknownUrgencyCode) as caught:
        to_unified("mts", "purple")

    assert str(caught.value) == (
        "unknown mts urgency code 'purple'; valid codes: red, orange, yellow, green, blue"
    )
    assert (caught.value.system, caught.value.code) == ("mts", "purple")
    assert caught.value.valid == ("red", "orange", "yellow", "green", "blue")


@pytest.mark.parametrize("call", [lambda: to_unified("ets", "1"), lambda: from_unified(1, "ets")])
def test_unknown_system_names_the_valid_systems(call: Callable[[], object]) -> None:
    with pytest.raises(UnknownUrgencySystem) as caught:
        call()

    assert str(caught.value) == (
        "unknown urgency system 'ets'; "
        "valid systems: nts, mts, ambulance, ambulance_legacy, ggz, vvt"
    )


@pytest.mark.parametrize(
    ("level", "norm", "expiry", "window"),
    [
        (0, None, timedelta(minutes=30), timedelta(minutes=30)),
        (1, None, timedelta(minutes=30), timedelta(minutes=30)),
        (2, timedelta(hours=1), timedelta(minutes=30), timedelta(minutes=30)),
        (3, timedelta(hours=4), timedelta(minutes=30), timedelta(minutes=30)),
        (4, timedelta(hours=24), timedelta(hours=2), timedelta(hours=4)),
        (5, None, timedelta(hours=2), timedelta(hours=24)),
    ],
)
def test_time_limits_per_level(
    level: int, norm: timedelta | None, expiry: timedelta, window: timedelta
) -> None:
    assert (ggz_crisis_norm(level), hold_expiry(level), escalation_window(level)) == (
        norm,
        expiry,
        window,
    )


@pytest.mark.parametrize("code", ["1h", "4h", "24h"])
def test_ggz_norm_agrees_with_the_ggz_codes(code: str) -> None:
    assert ggz_crisis_norm(to_unified("ggz", code).level) == timedelta(hours=int(code[:-1]))


@pytest.mark.parametrize(
    "call",
    [ggz_crisis_norm, hold_expiry, escalation_window, lambda level: from_unified(level, "nts")],
)
@pytest.mark.parametrize("level", [-1, 6])
def test_levels_outside_the_scale_are_refused(call: Callable[[int], object], level: int) -> None:
    with pytest.raises(ValueError, match=rf"^unified urgency level must be 0\.\.5, got {level}$"):
        call(level)


def map_text(*systems: str, levels: range = range(6)) -> str:
    rows = "".join(f"  - {{level: {i}, meaning_nl: n, meaning_en: e}}\n" for i in levels)
    return f"levels:\n{rows}systems: [{', '.join(systems)}]"


def system(system_id: str, *codes: str) -> str:
    return f"{{id: {system_id}, name: S, source: x, codes: [{', '.join(codes)}]}}"


def code(native: str, level: int, covers: str = "null") -> str:
    return f"{{code: {native}, level: {level}, covers: {covers}, meaning_nl: n, meaning_en: e}}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            map_text(system("s", code("a", 0)), levels=range(5)),
            "levels must list 0..5 once each, in order",
        ),
        (map_text(system("s", code("a", 1, "[0, 1]"))), "a: covers must run from level 1 upwards"),
        (map_text(system("s", code("a", 1, "[1, 0]"))), "a: covers must run from level 1 upwards"),
        (map_text(system("s", code("a", 0), code("a", 1))), "duplicate s code 'a'"),
        (map_text(system("s", code("a", 0)), system("s", code("b", 0))), "duplicate system 's'"),
    ],
)
def test_invalid_maps_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_urgency_map_text(text)

    assert [error["msg"] for error in caught.value.errors()] == [f"Value error, {message}"]
