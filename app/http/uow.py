"""Unit of work for writes: one session, idempotent replay, commit before the response exists.

A write route does its service call on ``write.session`` and returns ``await write.commit(body)``;
the body is validated against the route's declared response model, the idempotency record is
stored in the same transaction as the write, so a retried request either finds the first response
or finds nothing was written (docs/database-access.md).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.auth.models import IdempotencyRecord
from app.errors import IdempotencyKeyReused
from app.principal import Principal

REPLAY_HEADER = "Idempotent-Replayed"


class ReplayedResponse(Exception):
    """Raised by the write dependency to answer a retried request with its first response."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


# Headers that change what a write means: whom the access log names as responsible and the
# purpose it records. A retry that differs in them is another request, not a retry.
FINGERPRINT_HEADERS = ("x-on-behalf-of", "x-purpose-of-use")


def request_fingerprint(
    method: str, path: str, query: str, body: bytes, headers: Sequence[str | None] = ()
) -> str:
    """What makes two requests with one Idempotency-Key the same request (an absent header
    differs from an empty one)."""
    marked = [b"-" if value is None else b"+" + value.encode() for value in headers]
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body, *marked):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    headers = orjson.loads(record.headers_json)
    headers[REPLAY_HEADER] = "true"
    return Response(
        record.body,
        status_code=record.status_code,
        media_type=record.content_type,
        headers=headers,
    )


async def find_replay(
    session: AsyncSession, api_key_id: uuid.UUID, key: str, fingerprint: str
) -> Response | None:
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id,
            IdempotencyRecord.idempotency_key == key,
        )
    )
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request; use a new key.",
            errors=[{"pointer": "header:Idempotency-Key", "detail": "reused for another request"}],
        )
    return _replay(record)


@lru_cache(maxsize=512)
def _adapter(response_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(response_type)


def validated(response_type: Any, body: BaseModel | Sequence[BaseModel]) -> Any:
    """``body`` as the declared ``response_type`` in JSON-ready form, or a ``ValidationError``.

    An instance of the declared model passes as it is (it was validated when it was built);
    anything else is read by attribute and validated, so a route answering with another model
    than the one its OpenAPI operation declares fails here instead of sending a wrong body.
    """
    adapter = _adapter(response_type)
    return adapter.dump_python(adapter.validate_python(body, from_attributes=True), mode="json")


@dataclass
class Write:
    session: AsyncSession
    principal: Principal
    idempotency_key: str | None
    fingerprint: str
    headers: dict[str, str] = field(default_factory=dict)
    # Called with the session when the answer is a replay (logs it on audited routes).
    on_replay: Callable[[AsyncSession, Response], Awaitable[None]] | None = None
    # The route's declared response model (its ``response_model``); None: not validated.
    response_type: Any = None

    async def commit(
        self,
        body: BaseModel | Sequence[BaseModel] | None,
        *,
        status_code: int = 200,
        stored: BaseModel | None = None,
    ) -> Response:
        """Commit the transaction (with the idempotency record) and build the response.

        ``stored`` is what the idempotency record keeps instead of ``body`` when the response
        carries a secret that must not be stored (an issued API key): a replay answers with it.
        """
        if body is None:
            content = b""
        elif self.response_type is not None:
            content = orjson.dumps(validated(self.response_type, body))
        elif isinstance(body, BaseModel):
            content = orjson.dumps(body.model_dump(mode="json"))
        else:
            content = orjson.dumps([item.model_dump(mode="json") for item in body])
        kept = content if stored is None else orjson.dumps(stored.model_dump(mode="json"))
        response = Response(
            content, status_code=status_code, media_type="application/json", headers=self.headers
        )
        return await self._commit(response, kept, self.headers)

    async def commit_response(self, response: Response) -> Response:
        """Commit with a response already rendered in another format (a FHIR resource): the
        idempotency record keeps it as it is sent."""
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return await self._commit(response, bytes(response.body), headers)

    async def _commit(self, response: Response, kept: bytes, headers: dict[str, str]) -> Response:
        if self.idempotency_key is not None:
            self.session.add(
                IdempotencyRecord(
                    api_key_id=self.principal.key_id,
                    idempotency_key=self.idempotency_key,
                    request_hash=self.fingerprint,
                    status_code=response.status_code,
                    content_type=response.media_type or "application/json",
                    body=kept,
                    headers_json=orjson.dumps(headers).decode(),
                )
            )
        try:
            await self.session.commit()
        except IntegrityError:
            # A concurrent retry with the same key won the race: answer with its response.
            await self.session.rollback()
            if self.idempotency_key is None:
                raise
            replay = await find_replay(
                self.session, self.principal.key_id, self.idempotency_key, self.fingerprint
            )
            if replay is None:
                raise
            if self.on_replay is not None:
                await self.on_replay(self.session, replay)
            return replay
        return response
