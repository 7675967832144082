"""Schemathesis hooks (SCHEMATHESIS_HOOKS): the fuzz run also sends the inputs at the edges.

- every ``date-time`` is now and then one of the two extremes whose UTC value falls outside what
  Python can hold (and a value just outside the accepted range);
- a query ``cursor`` is now and then forged: a number no BIGINT holds, an edge timestamp, junk;
- a query parameter or a body string now and then carries a NUL character.

Each must be a 4xx problem; the run fails on any 5xx.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import schemathesis
from hypothesis import strategies as st

EDGE_DATETIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1899-12-31T23:59:59Z",
    "9000-01-01T00:00:01Z",
]


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


FORGED_CURSORS = [
    _cursor("9" * 40),
    _cursor("-" + "9" * 40),
    _cursor(f"0001-01-01T00:00:00+14:00|{uuid.UUID(int=1)}"),
    _cursor(f"9999-12-31T23:59:59-14:00|{uuid.UUID(int=2)}"),
    _cursor("\x00"),
]

_ORDINARY = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda t: t.isoformat() + "Z"
)
schemathesis.openapi.format(
    "date-time", st.one_of(st.sampled_from(EDGE_DATETIMES), _ORDINARY, _ORDINARY)
)


def _with_nul(value: str) -> str:
    return value[: len(value) // 2] + "\x00" + value[len(value) // 2 :]


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return []


def _replace(value: Any, path: tuple[Any, ...], new: str) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _nul_variants(value: Any) -> st.SearchStrategy[Any]:
    paths = _string_paths(value)
    if not paths:
        return st.just(value)
    return st.one_of(
        st.just(value),
        st.just(value),
        st.sampled_from(paths).map(lambda p: _replace(value, p, _with_nul(_get(value, p)))),
    )


@schemathesis.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    if not query:
        return st.just(query)
    options = [_nul_variants(query)]
    if "cursor" in query:
        forged = st.sampled_from(FORGED_CURSORS).map(lambda c: {**query, "cursor": c})
        options.append(forged)
    return st.one_of(options)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _nul_variants(body)
