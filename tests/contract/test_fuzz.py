"""Schema-driven fuzzing (schemathesis) of the running service: no 5xx, no response off-schema.

The service runs as a real uvicorn process on loopback with the demo region loaded; the run is
seeded and bounded (about three minutes). Besides single requests it runs the stateful phase, which
chains operations through the links schemathesis infers from the schema (an id a POST returns,
used in the operations on that resource). Every run loads ``fuzz_hooks.py``: edge date-times,
forged cursors and NUL characters among the generated inputs; a shorter run sends those to the
operations that take them on every test backend (PostgreSQL refuses NUL in text, SQLite does not).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.contract.fuzzing import schemathesis_run


def test_schemathesis_finds_no_server_error_or_schema_violation(
    demo_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, keys = demo_server
    schemathesis_run(
        base,
        keys["admin"],
        tmp_path,
        "--max-examples",
        os.environ.get("JUISTEPLEK_FUZZ_EXAMPLES", "10"),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-time",
        "120",
    )
