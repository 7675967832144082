"""What-if variants of the service, to measure a hot-path change with the same benchmark.

Not product code: each factory patches the app at start-up (it edits no file), so a candidate fix
can be measured before it is made, or an applied one switched off to see what it is worth:

    .venv/bin/python -m bench.run_search --service-app bench.variants:scope_uncached --name x

The three fixes measured this way in the first search benchmark (async dependencies, RowMapping
reads in ``_hit``, the memoised search scope) are applied in the service now; see
bench/results.md. What is left here:

- ``scope_uncached``: the service with the search-scope memo switched off (three queries and a
  second connection checkout per search, as before the fix).
- ``search_sqlalchemy``: the search statement executed through SQLAlchemy on PostgreSQL too, as
  before it went straight to the driver (``app.capacity.queries._driver_fetch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy import TextualSelect
from sqlalchemy.ext.asyncio import AsyncConnection

from app.capacity import queries, ranking
from app.capacity import service as capacity_service
from app.main import create_app

Patch = Callable[[FastAPI], None]


async def _resolve_uncached(
    self: capacity_service.ScopeResolver, ref: str | None, escalate: bool
) -> ranking.Scope | None:
    return None if ref is None else await capacity_service._scope(self.db, ref, escalate)


def _no_scope_memo(_: FastAPI) -> None:
    capacity_service.ScopeResolver.resolve = _resolve_uncached  # type: ignore[method-assign]


async def _through_sqlalchemy(
    conn: AsyncConnection, _shape: tuple[Any, ...], stmt: TextualSelect, params: dict[str, Any]
) -> Sequence[Mapping[str, Any]]:
    rows = (await conn.execute(stmt, params)).mappings().all()
    return cast(Sequence[Mapping[str, Any]], rows)


def _search_sqlalchemy(_: FastAPI) -> None:
    queries._driver_fetch = _through_sqlalchemy  # type: ignore[assignment]


def _app(*patches: Patch) -> FastAPI:
    app = create_app()
    for patch in patches:
        patch(app)
    return app


def scope_uncached() -> FastAPI:
    return _app(_no_scope_memo)


def search_sqlalchemy() -> FastAPI:
    return _app(_search_sqlalchemy)
