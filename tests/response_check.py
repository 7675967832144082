"""Every JSON answer the API tests get is held against its operation's OpenAPI response schema.

``ResponseCheck`` wraps the app under test (the ``client`` fixture): after each response it finds
the route that answered, looks up the operation's declared schema for the status (a 2xx body
against the declared response model, a 4xx against the problem document) and validates the body
with it. Objects may not carry undeclared fields. A mismatch, or a status the operation does not
declare, fails the test that made the request. Routes outside the OpenAPI document (web pages,
FHIR, which validates its resources against the R4B models itself) and bodies that are not JSON
are not checked.
"""

from __future__ import annotations

import copy
from collections.abc import MutableMapping
from typing import Any

import jsonschema_rs
import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import Message, Receive, Scope, Send

JSON_TYPES = ("application/json", "application/problem+json")


class ResponseMismatch(AssertionError):
    """A response body that its operation's OpenAPI document does not describe."""


def _closed(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object naming its properties."""
    if isinstance(schema, dict):
        out = {key: _closed(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


class Schemas:
    """The compiled response validators of one OpenAPI document, built on first use."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = _closed(copy.deepcopy(document.get("components", {})))
        self.validators: dict[tuple[str, str, str], jsonschema_rs.Validator | None] = {}

    def validator(self, method: str, path: str, status: int) -> jsonschema_rs.Validator | None:
        key = (method, path, str(status))
        if key not in self.validators:
            self.validators[key] = self._compile(method, path, status)
        return self.validators[key]

    def _compile(self, method: str, path: str, status: int) -> jsonschema_rs.Validator | None:
        operation = self.document["paths"][path][method.lower()]
        responses = operation["responses"]
        declared = responses.get(str(status)) or responses.get("default")
        if declared is None:
            raise ResponseMismatch(
                f"{method} {path} answered {status}, which its operation does not declare "
                f"(declared: {sorted(responses)})"
            )
        content = declared.get("content", {})
        schema = next(
            (content[t]["schema"] for t in JSON_TYPES if "schema" in content.get(t, {})), None
        )
        if schema is None:
            return None
        return jsonschema_rs.validator_for(
            {**_closed(schema), "components": self.components}, validate_formats=True
        )


_SCHEMAS: list[Schemas] = []


def schemas_of(app: FastAPI) -> Schemas:
    """The document is built once per test process: every app is built from the same routers
    (tests/contract/test_openapi_drift.py holds it equal to openapi/openapi.json)."""
    if not _SCHEMAS:
        _SCHEMAS.append(Schemas(app.openapi()))
    return _SCHEMAS[0]


def check_response(
    schemas: Schemas, scope: Scope, status: int, content_type: str, body: bytes
) -> bool:
    """Raise ``ResponseMismatch`` unless ``body`` fits its operation; True when it was checked."""
    route = scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return False
    if not body or content_type.split(";")[0].strip() not in JSON_TYPES:
        return False
    method = scope["method"]
    if method not in (route.methods or ()) or method == "HEAD":
        return False  # a 405 of a path matched for another method: no operation answered
    validator = schemas.validator(method, route.path_format, status)
    if validator is None:
        return False
    document = orjson.loads(body)
    errors = [
        f"{'/'.join(str(p) for p in error.instance_path) or '$'}: {error.message}"
        for error in validator.iter_errors(document)
    ]
    if errors:
        raise ResponseMismatch(
            f"{method} {route.path_format} answered {status} with a body its OpenAPI response "
            f"schema does not describe: {errors[:5]}"
        )
    return True


class ResponseCheck:
    """ASGI wrapper validating each JSON response of ``app`` (see the module docstring)."""

    def __init__(self, app: FastAPI, schemas: Schemas | None = None) -> None:
        self.app = app
        self.schemas = schemas
        self.checked = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: MutableMapping[str, Any] = {}
        chunks: list[bytes] = []
        json_answer = False

        async def capture(message: Message) -> None:
            nonlocal json_answer
            if message["type"] == "http.response.start":
                start.update(message)
                headers = dict(message.get("headers", []))
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                json_answer = content_type.split(";")[0].strip() in JSON_TYPES
            elif message["type"] == "http.response.body" and json_answer:
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if json_answer and start:
            headers = dict(start.get("headers", []))
            if check_response(
                self.schemas or schemas_of(self.app),
                scope,
                int(start["status"]),
                headers.get(b"content-type", b"").decode("latin-1"),
                b"".join(chunks),
            ):
                self.checked += 1
