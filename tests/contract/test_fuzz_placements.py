"""Fuzzing as a transfer desk: the referrer key walks placements through their actions."""

from __future__ import annotations

from pathlib import Path

from tests.contract.fuzzing import schemathesis_run


def test_schemathesis_walks_placements_as_a_transfer_desk(
    demo_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """With the hospital's referrer key the documented request examples are valid, so the
    stateful phase chains real placements through holds, events, cancel and the other actions."""
    base, keys = demo_server
    schemathesis_run(
        base,
        keys["referrer"],
        tmp_path,
        "--include-path-regex",
        "^/v1/placements",
        "--phases",
        "examples,stateful",
        "--max-time",
        "45",
    )
