"""Browser tests: real headless Chromium (Debian's ``chromium``) on a live server, both backends.

The server is uvicorn in a thread with its own event loop and its own engine on the session's
test database (``database_url``), so each backend gets one server for the whole session. The
browser is driven with Playwright's async API on the session event loop: one browser per
session, a fresh context (cookies, viewport, locale) per test.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from app.config import Settings
from app.main import create_app
from tests.conftest import _free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The tests take their screenshots on every run; they replace the ones in docs/ only when asked
# (`make screenshots`), so a test run leaves the working tree as it was.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("JUISTEPLEK_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="jp-screenshots-"))
)


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt when missing (Playwright's own download is not
    reachable from here, and not needed)."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    # Parallel test workers install once: the first takes the lock, the others find it installed.
    with open(os.path.join(tempfile.gettempdir(), "juisteplek-chromium.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(CHROMIUM):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "chromium"],
                check=True,
                env=env,
                capture_output=True,
            )
    return CHROMIUM


class LiveServer:
    """uvicorn serving ``create_app`` on a free loopback port, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[LiveServer]:
    settings = Settings(
        env="test",
        database_url=database_url,
        access_log=False,
        api_key_cache_seconds=0,
        db_pool_size=5,
        db_max_overflow=5,
    )
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = ensure_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, live_server: LiveServer) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies), Dutch first like a Dutch workstation."""
    ctx = await browser.new_context(
        base_url=live_server.url, locale="nl-NL", viewport={"width": 1280, "height": 900}
    )
    ctx.set_default_timeout(10_000)
    yield ctx
    await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()
