"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx


def assert_problem(
    r: httpx.Response, status: int, *, type_slug: str | None = None
) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].startswith("/problems/")
    if type_slug is not None:
        assert body["type"] == f"/problems/{type_slug}"
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [e["pointer"] for e in body.get("errors", [])]
