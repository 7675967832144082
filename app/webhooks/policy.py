"""Webhook rules (pure): event-type patterns, retry schedule with jitter, target URL and address
checks.

A target is checked twice: its URL when it is registered (syntax, scheme, a host written in one
unambiguous notation, no literal non-public address) and every address its host resolves to when
a delivery connects (``app/webhooks/transport.py``), so a name that later resolves to an internal
address (DNS rebinding) is refused too. Hosts an operator lists in
``JUISTEPLEK_WEBHOOK_ALLOW_HOSTS`` are exempt from the address rule (not from the URL syntax).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable
from urllib.parse import urlsplit

# "capacity.reported", "placement.*" or "*"
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
# A last label that is all digits or 0x-hex makes a host an IPv4 address to URL parsers and to
# inet_aton ("127.1", "0x7f.1", "2130706433", "0177.0.0.1"): only the dotted-quad form is taken.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"^{_OCTET}(\.{_OCTET}){{3}}$")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


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


def normalise_host(host: str) -> str:
    """The form hosts are compared in: lower case, no trailing dot, IPv6 without brackets."""
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook may not connect to ``address``, or None when it is a public address.

    IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:127.0.0.1``, 6to4, NAT64) are
    judged by the IPv4 address they carry.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def host_problem(host: str) -> str | None:
    """Why ``host`` (from a URL, already lower case) is not a well-formed host name or address."""
    if host.startswith("[") or ":" in host:
        if "%" in host:
            return "must not carry an IPv6 zone"
        try:
            ipaddress.IPv6Address(host.removeprefix("[").removesuffix("]"))
        except ValueError:
            return "has an IPv6 address that is not valid"
        return None
    name = host.rstrip(".")
    if not name:
        return "must name a host"
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        if not _DOTTED_QUAD.fullmatch(name):
            return "must write an IPv4 address as four decimal numbers 0-255 (a.b.c.d)"
        return None
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return "has a host name that is not valid"
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_name.split(".")):
        return "has a host name that is not valid"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names literally (after ``host_problem`` passed), else None."""
    try:
        return ipaddress.ip_address(normalise_host(host))
    except ValueError:
        return None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a well-formed webhook URL (syntax only: no address rule, no DNS)."""
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
    if parts.port == 0:
        return "must not use port 0"
    if "[" in parts.netloc and ":" not in parts.hostname:
        return "has an IPv6 address that is not valid"
    return host_problem(parts.hostname)


def target_problem(
    url: str, *, allow_hosts: Collection[str] = (), require_https: bool = False
) -> str | None:
    """Why ``url`` may not be a webhook target, or None when it may (no DNS lookup here)."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    assert parts.hostname is not None
    if require_https and parts.scheme != "https":
        return "must be an https URL in production"
    host = normalise_host(parts.hostname)
    if host in {normalise_host(h) for h in allow_hosts}:
        return None
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return "must not point at a local or internal host"
    address = literal_address(host)
    if address is not None:
        reason = address_problem(address)
        if reason is not None:
            return f"must not point at a non-public address ({reason})"
    return None
