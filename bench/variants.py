"""What-if variants of the service, to measure a hot-path change with the same benchmark.

Not product code: each factory patches the app at start-up (it edits no file), so a candidate fix
can be measured before it is made, or an applied one switched off to see what it is worth:

    .venv/bin/python -m bench.run_search --service-app bench.variants:scope_uncached --name x

The three fixes measured this way in the first search benchmark (async dependencies, RowMapping
reads in ``_hit``, the memoised search scope) are applied in the service now; see
bench/results.md. What is left here:

- ``scope_uncached``: the service with the search-scope memo switched off (three queries and a
  second connection checkout per search, as before the fix).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from app.capacity import ranking
from app.capacity import service as capacity_service
from app.main import create_app

Patch = Callable[[FastAPI], None]


async def _resolve_uncached(
    self: capacity_service.ScopeResolver, ref: str | None, escalate: bool
) -> ranking.Scope | None:
    return None if ref is None else await capacity_service._scope(self.db, ref, escalate)


def _no_scope_memo(_: FastAPI) -> None:
    capacity_service.ScopeResolver.resolve = _resolve_uncached  # type: ignore[method-assign]


def _app(*patches: Patch) -> FastAPI:
    app = create_app()
    for patch in patches:
        patch(app)
    return app


def scope_uncached() -> FastAPI:
    return _app(_no_scope_memo)
