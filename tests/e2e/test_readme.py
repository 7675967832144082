"""The README's and docs/placements.md's commands run as printed against `juisteplek demo`.

The demo is started as a newcomer would (`.venv/bin/juisteplek demo`, in a directory of its own),
and the shell blocks are run verbatim with bash: the README's "Try it" block, the placement
walk-through twice in a row, and `juisteplek audit verify`, whose row count must be the one the
page shows.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("curl") and shutil.which("jq")),
        reason="the docs' examples use curl and jq",
    ),
]

BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def _block(doc: str, marker: str) -> str:
    blocks: list[str] = BLOCK.findall((ROOT / doc).read_text("utf-8"))
    [block] = [b for b in blocks if marker in b]
    return block


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory like a checkout after `make demo`: .venv and the demo's files, server running."""
    workdir = tmp_path_factory.mktemp("newcomer")
    (workdir / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUISTEPLEK_")}
    port = _free_port()
    log = (workdir / "demo.log").open("wb")
    server = subprocess.Popen(
        [".venv/bin/juisteplek", "demo", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (workdir / "demo.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.2)
        yield workdir
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _bash(script: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUISTEPLEK_")}
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/problems/" not in done.stdout, done.stdout
    return done.stdout + done.stderr


def test_the_placement_walk_through_runs_twice_and_the_audit_count_is_right(demo: Path) -> None:
    walk = _block("docs/placements.md", "# 1. The hospital's transfer desk")
    verify = _block("docs/placements.md", "audit verify")
    [shown] = re.findall(r"# audit log intact: (\d+) rows", verify)

    first = _bash(walk, demo)
    for event in ("request_created", "medically_ready", "triaged", "offer_sent", "offer_accepted"):
        assert f"\t{event}\t" in first
    assert "\ttransferred\ttransferred" in first
    assert f"audit log intact: {shown} rows" in _bash(verify, demo)

    second = _bash(walk, demo)
    assert "\ttransferred\ttransferred" in second


def test_the_readme_try_it_block_runs_as_printed(demo: Path) -> None:
    out = _bash(_block("README.md", "juisteplek-demo.env"), demo)
    assert '"items":[' in out  # the search
    assert '"free":2' in out  # the capacity report
    assert '"expected_free_24h":3' in out
