"""The in-process bus: tells this process's listeners which outbox rows were just committed.

It carries outbox ids only, never payloads: subscribers read the rows from the database, which stays
the single source of truth. ``publish`` hooks the session so the bus is told after the commit and
never about a rolled-back change. On PostgreSQL, :class:`app.realtime.notifier.PgNotifier` hears
the same ids and sends ``pg_notify('juisteplek_outbox', '<id>,<id>,...')`` to the other instances
*after* the commit, on a connection of its own: a NOTIFY inside the write's transaction would take
PostgreSQL's database-wide notify lock through the write's COMMIT and serialise every write that
publishes. A NOTIFY lost in a crash is covered by the hubs' periodic outbox poll.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

Listener = Callable[[list[int]], None]

log = structlog.get_logger("juisteplek.realtime")

NOTIFY_CHANNEL = "juisteplek_outbox"
NOTIFY_MAX_BYTES = 7_000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more

_PENDING = "juisteplek_outbox_ids"  # every outbox id of the transaction: the local bus
_HOOKED = "juisteplek_outbox_hooked"


class LocalBus:
    """Synchronous fan-out of committed outbox ids to the listeners of this process."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self, ids: Iterable[int]) -> None:
        batch = sorted(ids)
        if not batch:
            return
        for listener in list(self._listeners):
            try:
                listener(batch)
            except Exception:  # a broken listener must not break the committing request
                log.exception("bus_listener_failed")


local_bus = LocalBus()


def notify_payloads(ids: Iterable[int]) -> list[str]:
    """Comma-joined ids, split so each NOTIFY payload stays under PostgreSQL's limit."""
    out: list[str] = []
    current = ""
    for outbox_id in ids:
        part = str(outbox_id)
        if current and len(current) + 1 + len(part) > NOTIFY_MAX_BYTES:
            out.append(current)
            current = ""
        current = f"{current},{part}" if current else part
    if current:
        out.append(current)
    return out


def parse_notify_payload(payload: str) -> list[int]:
    return [int(p) for p in payload.split(",") if p.strip().isdigit()]


def _after_commit(session: Session) -> None:
    ids: list[int] = session.info.pop(_PENDING, [])
    local_bus.notify(ids)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def notify_after_commit(session: AsyncSession, outbox_id: int) -> None:
    """Announce ``outbox_id`` on commit to ``local_bus`` (and through it, on PostgreSQL, to the
    other instances)."""
    sync: Session = session.sync_session
    sync.info.setdefault(_PENDING, []).append(outbox_id)
    if not sync.info.get(_HOOKED):
        sync.info[_HOOKED] = True
        hooks: tuple[tuple[str, Callable[[Session], Any]], ...] = (
            ("after_commit", _after_commit),
            ("after_rollback", _after_rollback),
        )
        for name, fn in hooks:
            event.listen(sync, name, fn)
