"""Per-client-address throttle of failed authentications (wrong-key floods).

In memory, per instance: after ``limit`` failures from one address within ``window`` seconds,
that address gets 429 with ``Retry-After`` on every authenticated request until the window ends.
A refused request costs no key lookup in the database.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from app.errors import TooManyRequests

# Addresses tracked at once; beyond it the expired windows are dropped, then the oldest.
MAX_TRACKED = 50_000


class AuthThrottle:
    def __init__(
        self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, tuple[float, int]] = {}  # address -> (window end, failures)

    def check(self, address: str | None) -> None:
        """Raise TooManyRequests while ``address`` is over its limit."""
        if self.limit == 0 or address is None:
            return
        entry = self._failures.get(address)
        if entry is None:
            return
        ends, failures = entry
        now = self._clock()
        if ends <= now:
            del self._failures[address]
        elif failures >= self.limit:
            wait = max(1, math.ceil(ends - now))
            raise TooManyRequests(
                f"Too many failed authentications from this address; try again in {wait} s.",
                retry_after=wait,
            )

    def failed(self, address: str | None) -> None:
        if self.limit == 0 or address is None:
            return
        now = self._clock()
        entry = self._failures.get(address)
        if entry is None or entry[0] <= now:
            if len(self._failures) >= MAX_TRACKED:
                self._prune(now)
            self._failures[address] = (now + self.window, 1)
        else:
            self._failures[address] = (entry[0], entry[1] + 1)

    def _prune(self, now: float) -> None:
        live = {a: e for a, e in self._failures.items() if e[0] > now}
        if len(live) >= MAX_TRACKED:
            keep = sorted(live.items(), key=lambda item: item[1][0])[MAX_TRACKED // 2 :]
            live = dict(keep)
        self._failures = live
