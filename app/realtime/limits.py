"""Caps on the event streams one instance keeps open: per API key and in all."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from app.errors import TooManyRequests

# Streams end when their clients go; a few seconds is a fair time to try again.
RETRY_AFTER_SECONDS = 10


class StreamSlots:
    def __init__(self, *, per_key: int, per_instance: int) -> None:
        self.per_key = per_key
        self.per_instance = per_instance
        self._open: dict[uuid.UUID, int] = {}
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def acquire(self, key_id: uuid.UUID) -> Callable[[], None]:
        """Take a slot for ``key_id`` (429 when none is free); call the result once to free it."""
        if self._open.get(key_id, 0) >= self.per_key:
            raise TooManyRequests(
                f"This API key already has {self.per_key} open event streams on this server; "
                "close one (or share one stream between views) first.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if self._total >= self.per_instance:
            raise TooManyRequests(
                "This server has no event stream free; try again shortly.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._open[key_id] = self._open.get(key_id, 0) + 1
        self._total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._total -= 1
            left = self._open[key_id] - 1
            if left:
                self._open[key_id] = left
            else:
                del self._open[key_id]

        return release
