"""The HTTP client webhook deliveries go out through: it refuses non-public addresses.

Every connection resolves its host first and refuses it when **any** address it resolves to is
loopback, private, link-local, multicast, reserved or unspecified (``policy.address_problem``),
then connects to one of exactly those checked addresses. The check and the connection use the
same lookup, so a name whose DNS answer changes after registration (DNS rebinding) cannot reach
an internal address. TLS still verifies the certificate against the URL's host name. Hosts in
``JUISTEPLEK_WEBHOOK_ALLOW_HOSTS`` are exempt from the address rule. The client ignores proxy
environment variables and never follows redirects.

``send`` never raises: every failure becomes a coarse outcome category (``refused_url``,
``refused_address``, ``dns_failed``, ``connect_failed``, ``tls_failed``, ``timeout``,
``protocol_error``, ``send_failed``, ``http_<status>``). These are what a tenant reads in its
delivery log; the raw error (which could map another host's ports) goes to the server log only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpcore
import httpx
import structlog

from app.webhooks.policy import address_problem, normalise_host, target_problem

log = structlog.get_logger("juisteplek.webhooks")

Resolver = Callable[[str, int], Awaitable[list[str]]]

# Outcome categories that another attempt cannot change: the delivery fails at once.
PERMANENT = frozenset({"refused_url"})


class RefusedAddress(Exception):
    """The host resolves to an address webhooks may not reach."""


class ResolveFailed(Exception):
    """The host name did not resolve."""


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the operating system's resolver), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AddressGuard:
    """Resolves a host and refuses it unless every address is public or the host is allowed."""

    allow_hosts: frozenset[str] = frozenset()
    resolve: Resolver = system_resolve

    def allowed(self, host: str) -> bool:
        return normalise_host(host) in self.allow_hosts

    async def addresses(self, host: str, port: int, timeout: float | None) -> list[str]:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                found = await self.resolve(normalise_host(host), port)
        except (OSError, UnicodeError, TimeoutError) as exc:
            raise ResolveFailed(host) from exc
        if not found:
            raise ResolveFailed(host)
        if self.allowed(host):
            return found
        for text in found:
            try:
                address = ipaddress.ip_address(text.partition("%")[0])
            except ValueError as exc:
                raise RefusedAddress(f"{host}: unreadable address") from exc
            reason = address_problem(address)
            if reason is not None:
                raise RefusedAddress(f"{host}: {reason} address")
        return found


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend: resolve, check, then connect to a checked address."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._guard.addresses(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: AddressGuard) -> None:
        super().__init__(trust_env=False)
        # The standard transport with the connection pool's network backend replaced; a test
        # (tests/api/test_webhook_targets.py) proves the guard is in the path.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(guard),
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    error: str | None  # an outcome category, never a raw error text
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def permanent(self) -> bool:
        return self.error in PERMANENT


def _category(exc: BaseException) -> str:
    if isinstance(exc, RefusedAddress):
        return "refused_address"
    if isinstance(exc, ResolveFailed):
        return "dns_failed"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLError):
                return "tls_failed"
            cause = cause.__cause__ or cause.__context__
        return "connect_failed"
    if isinstance(exc, httpx.HTTPError):
        return "protocol_error"
    return "send_failed"


class WebhookClient:
    """Sends webhook requests to public addresses only (and to the operator's allowed hosts)."""

    def __init__(
        self,
        *,
        allow_hosts: Collection[str] = (),
        require_https: bool = False,
        resolve: Resolver = system_resolve,
    ) -> None:
        self.allow_hosts = frozenset(normalise_host(h) for h in allow_hosts)
        self.require_https = require_https
        guard = AddressGuard(self.allow_hosts, resolve)
        self._http = httpx.AsyncClient(
            transport=_GuardedTransport(guard), follow_redirects=False, trust_env=False
        )

    async def __aenter__(self) -> WebhookClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        url: str,
        *,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109 - a per-request timeout handed to httpx
    ) -> SendResult:
        """POST ``body`` to ``url``; never raises (the outcome says what happened)."""
        started = time.perf_counter()

        def done(code: int | None, error: str | None) -> SendResult:
            return SendResult(code, error, int((time.perf_counter() - started) * 1000))

        problem = target_problem(
            url, allow_hosts=self.allow_hosts, require_https=self.require_https
        )
        if problem is not None:
            log.warning("webhook_target_refused", url=url, problem=problem)
            return done(None, "refused_url")
        try:
            # Streamed and never read: the receiver's answer body is of no interest.
            async with self._http.stream(
                "POST", url, content=body, headers=dict(headers), timeout=timeout
            ) as response:
                code = response.status_code
        except Exception as exc:
            category = _category(exc)
            log.info("webhook_send_failed", url=url, category=category, error=repr(exc)[:500])
            return done(None, category)
        return done(code, None if 200 <= code < 300 else f"http_{code}")
