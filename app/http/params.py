"""Query parameter types shared by routes."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

from app.schemas import UtcDateTime


def _iso_only(value: object) -> object:
    # Lax parsing would read "1.5" as a Unix timestamp; the schema promises ISO 8601 date-times.
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-11-23T09:00:00Z")
    return value


_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
IsoDateTimeQ = Annotated[UtcDateTime, BeforeValidator(_iso_only)]
