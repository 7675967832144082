"""Background loops that live as long as the app: started on entry, cancelled on exit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def task_while_open(
    loop: Callable[[], Coroutine[Any, Any, None]] | None, *, name: str
) -> AsyncIterator[None]:
    """Run ``loop()`` as a task while the context is open (nothing when ``loop`` is None, i.e.
    the setting that enables it is off); on exit the task is cancelled and awaited, so no loop
    outlives the app."""
    if loop is None:
        yield
        return
    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
