"""Fuzzing with the edge inputs (date-times, cursors, NUL) on every test backend."""

from __future__ import annotations

import os
from pathlib import Path

from tests.contract.fuzzing import schemathesis_run


def test_schemathesis_edge_inputs_on_every_backend(
    edge_server: tuple[str, str], tmp_path: Path
) -> None:
    """The operations with date-time, cursor or free-string inputs, fuzzed with the edges."""
    base, key = edge_server
    schemathesis_run(
        base,
        key,
        tmp_path,
        "--include-path-regex",
        "^/v1/(audit|availability|capacity-reports|placements|triage|units)",
        "--max-examples",
        os.environ.get("JUISTEPLEK_FUZZ_EXAMPLES", "10"),
        "--phases",
        "examples,fuzzing",
        "--max-time",
        "60",
    )
