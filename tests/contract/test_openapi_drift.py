"""openapi/openapi.json is generated from the app; it must not drift (regenerate: make openapi)."""

from __future__ import annotations

import json
from pathlib import Path

from app.main import create_app

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads(SPEC.read_text())
    assert committed == json.loads(json.dumps(create_app().openapi(), sort_keys=True))


def test_every_operation_documents_problem_responses() -> None:
    spec = create_app().openapi()
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in operations.items():
            statuses = set(op["responses"])
            assert {"401", "422"} <= statuses, f"{method.upper()} {path} lacks problem responses"
