"""The in-process bus: tells this process's listeners which outbox rows were just committed.

It carries outbox ids only, never payloads: subscribers read the rows from the database, which stays
the single source of truth. ``publish`` hooks the session so the bus is told after
the commit and never about a rolled-back change. On PostgreSQL the transaction's first outbox row
queues its own ``pg_notify`` in its INSERT (``app.realtime.outbox``); the same hook sends one
``pg_notify('juisteplek_outbox', '<id>,<id>,...')`` for any further rows just before the commit.
PostgreSQL delivers them to every listening instance on commit only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

Listener = Callable[[list[int]], None]

log = structlog.get_logger("juisteplek.realtime")

NOTIFY_CHANNEL = "juisteplek_outbox"
NOTIFY_MAX_BYTES = 7_000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more

_PENDING = "juisteplek_outbox_ids"  # every outbox id of the transaction: the local bus
_UNSENT = "juisteplek_outbox_unsent"  # the ids whose NOTIFY is still to be sent before commit
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


def _before_commit(session: Session) -> None:
    ids: list[int] = session.info.get(_UNSENT, [])
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    # Runs inside the async session's greenlet, so the sync API is safe to call here.
    for payload in notify_payloads(ids):
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": payload},
        )


def _after_commit(session: Session) -> None:
    session.info.pop(_UNSENT, None)
    ids: list[int] = session.info.pop(_PENDING, [])
    local_bus.notify(ids)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_UNSENT, None)


def notify_in_statement(session: AsyncSession, dialect: str) -> bool:
    """Whether the outbox row about to be written should queue its NOTIFY in its own INSERT:
    on PostgreSQL, for the transaction's first row only (later ones share one NOTIFY)."""
    return dialect == "postgresql" and not session.sync_session.info.get(_PENDING)


def notify_after_commit(session: AsyncSession, outbox_id: int, *, notified: bool = False) -> None:
    """Announce ``outbox_id`` on commit: NOTIFY (PostgreSQL) and then ``local_bus``.

    ``notified``: the row's INSERT already queued its NOTIFY (``notify_in_statement``).
    """
    sync: Session = session.sync_session
    sync.info.setdefault(_PENDING, []).append(outbox_id)
    if not notified:
        sync.info.setdefault(_UNSENT, []).append(outbox_id)
    if not sync.info.get(_HOOKED):
        sync.info[_HOOKED] = True
        hooks: tuple[tuple[str, Callable[[Session], Any]], ...] = (
            ("before_commit", _before_commit),
            ("after_commit", _after_commit),
            ("after_rollback", _after_rollback),
        )
        for name, fn in hooks:
            event.listen(sync, name, fn)
