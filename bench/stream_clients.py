"""Raw SSE subscribers for the live-push benchmark: one process holds many ``/v1/stream`` clients.

    python -m bench.stream_clients --port P --key K --count N

Opens N HTTP/1.1 connections to ``GET /v1/stream?topic=capacity`` (plain asyncio sockets, a small
chunked-transfer decoder; no HTTP library, so one process holds thousands of clients cheaply),
prints ``ready <connected> <failed>`` once every client has its first frame, then records, per
event id, how many clients got it and when the last one did (``time.monotonic()``, which is one
clock for every process of the machine). On a line ``stop`` on stdin it prints one JSON line of
its tallies and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field

OPEN_AT_ONCE = 100  # connections being opened concurrently (keeps the listen backlog small)


@dataclass
class Tally:
    connected: int = 0
    failed: int = 0
    closed_early: int = 0
    heartbeats: int = 0
    count: dict[int, int] = field(default_factory=dict)  # event id -> clients that got it
    last: dict[int, float] = field(default_factory=dict)  # event id -> arrival at the last one
    first: dict[int, float] = field(default_factory=dict)
    expected: int = 0
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def opened(self, ok: bool) -> None:
        if ok:
            self.connected += 1
        else:
            self.failed += 1
        if self.connected + self.failed >= self.expected:
            self.settled.set()


async def _frames(reader: asyncio.StreamReader) -> None:
    """Skip the response head; the caller then reads chunked SSE frames."""
    status = await reader.readline()
    if b" 200 " not in status:
        raise ConnectionError(status.decode(errors="replace").strip())
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass


async def _client(host: str, port: int, key: str, tally: Tally, opened: asyncio.Semaphore) -> None:
    request = (
        f"GET /v1/stream?topic=capacity HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    async with opened:
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
            writer.write(request)
            await _frames(reader)
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            tally.opened(False)
            return
    counted = False
    try:
        while True:
            size_line = await reader.readline()
            if not size_line:
                break
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                break
            chunk = await reader.readexactly(size + 2)
            now = time.monotonic()
            for line in chunk.split(b"\n"):
                if line.startswith(b"id: "):
                    ident = int(line[4:].strip())
                    tally.count[ident] = tally.count.get(ident, 0) + 1
                    tally.last[ident] = now
                    tally.first.setdefault(ident, now)
                elif line.startswith(b":"):
                    if not counted:
                        counted = True
                        tally.opened(True)
                    else:
                        tally.heartbeats += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        pass
    tally.closed_early += 1
    writer.close()


async def run(host: str, port: int, key: str, count: int) -> None:
    tally = Tally(expected=count)
    opened = asyncio.Semaphore(OPEN_AT_ONCE)
    tasks = [asyncio.create_task(_client(host, port, key, tally, opened)) for _ in range(count)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.settled.wait(), timeout=300)
    print(f"ready {tally.connected} {tally.failed}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    summary = {
        "connected": tally.connected,
        "failed": tally.failed,
        "closed_early": tally.closed_early,
        "heartbeats": tally.heartbeats,
        "events": {
            str(i): [tally.count[i], tally.first[i], tally.last[i]] for i in sorted(tally.count)
        },
    }
    print(json.dumps(summary), flush=True)
    for task in tasks:
        task.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    import uvloop  # uvicorn[standard] brings it

    uvloop.run(run(args.host, args.port, args.key, args.count))


if __name__ == "__main__":
    main()
