"""Webhook rules (pure): event-type patterns, retry schedule with jitter, target URL checks."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

# "capacity.reported", "placement.*" or "*"
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """True when ``event_type`` matches one pattern: exact, ``prefix.*`` or ``*``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def retry_delay(
    attempts: int, *, base_seconds: float, cap_seconds: float, rand: Callable[[], float]
) -> float:
    """Seconds to wait after ``attempts`` failed attempts: capped exponential, "equal jitter".

    Half of ``min(cap, base * 2**(attempts-1))`` is fixed and half random, so retries of many
    deliveries spread out after an outage yet never come back sooner than half the schedule.
    """
    exponent = min(max(attempts - 1, 0), 40)
    ceiling = min(cap_seconds, base_seconds * (2**exponent))
    return float(ceiling / 2 + rand() * ceiling / 2)


def target_problem(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` may not be a webhook target, or None when it may."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in {"http", "https"}:
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials; the signature authenticates the sender"
    if parts.fragment:
        return "must not contain a fragment"
    if allow_private:
        return None
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return "must not point at a local or internal host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return "must not point at a private, loopback or link-local address"
    return None
