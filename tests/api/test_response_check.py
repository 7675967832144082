"""The suite-wide response check (tests/response_check.py) catches bodies that do not match their
operation, and the write unit of work validates its body against the route's declared model."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from pydantic import BaseModel, ValidationError

from app.errors import NotFound, install_problem_handlers
from app.http.uow import validated
from app.routers.common import json_response
from app.schemas import problem_responses
from tests.conftest import auth
from tests.factories import Seed
from tests.response_check import ResponseCheck, ResponseMismatch, Schemas


class Thing(BaseModel):
    id: uuid.UUID
    name: str


class Other(BaseModel):
    id: uuid.UUID
    label: str


def _tiny_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things/{kind}", response_model=Thing, responses=problem_responses(404))
    async def thing(kind: str) -> Response:
        documents: dict[str, Any] = {
            "good": {"id": str(uuid.uuid4()), "name": "a"},
            "missing": {"id": str(uuid.uuid4())},
            "wrong-type": {"id": "not a uuid", "name": "a"},
            "extra": {"id": str(uuid.uuid4()), "name": "a", "secret": "x"},
        }
        if kind == "gone":
            raise NotFound("No such thing.")
        if kind == "teapot":
            return Response(b"{}", status_code=418, media_type="application/json")
        return json_response(documents[kind])

    return app


async def _get(path: str) -> tuple[httpx.Response, ResponseCheck]:
    app = _tiny_app()
    check = ResponseCheck(app, Schemas(app.openapi()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=check), base_url="http://testserver"
    ) as client:
        return await client.get(path), check


async def test_a_body_matching_its_operation_passes() -> None:
    r, check = await _get("/things/good")
    assert r.status_code == 200
    assert check.checked == 1
    r, check = await _get("/things/gone")  # a declared problem document
    assert r.status_code == 404
    assert check.checked == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", '"name" is a required property'),
        ("wrong-type", 'is not a "uuid"'),
        ("extra", "Additional properties are not allowed"),
        ("teapot", "answered 418, which its operation does not declare"),
    ],
)
async def test_a_body_not_matching_its_operation_fails(kind: str, message: str) -> None:
    with pytest.raises(ResponseMismatch) as caught:
        await _get(f"/things/{kind}")
    assert message in str(caught.value)


async def test_the_search_answer_is_checked_in_the_suite(
    app: FastAPI, client: httpx.AsyncClient, seed: Seed
) -> None:
    check = client._transport.app  # type: ignore[attr-defined]
    assert isinstance(check, ResponseCheck)
    before = check.checked
    r = await client.get(
        "/v1/availability", params={"care_type": "elv_high"}, headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    assert check.checked == before + 1


def test_a_write_body_of_another_model_is_refused() -> None:
    thing = Thing(id=uuid.uuid4(), name="a")
    assert validated(Thing, thing) == {"id": str(thing.id), "name": "a"}
    assert validated(list[Thing], [thing]) == [{"id": str(thing.id), "name": "a"}]
    with pytest.raises(ValidationError):
        validated(Thing, Other(id=uuid.uuid4(), label="b"))
