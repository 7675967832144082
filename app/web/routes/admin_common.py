"""What the pages of the administrator's console share: form specs, parsing, problem mapping.

A form is a list of ``Field``s; ``templates/admin/_form.html`` renders them and ``parse_form``
turns the posted values into the service's request body, so a page shows the service's own
validation errors (the problem's ``errors[].pointer``) next to the fields they name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request

from app.errors import DomainError
from app.web.i18n import Translator
from app.web.templating import translator

M = TypeVar("M", bound=BaseModel)
Kind = Literal["text", "number", "select", "multi", "checkbox", "password", "email"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str  # msgid
    kind: Kind = "text"
    options: Sequence[tuple[str, str]] = ()  # (value, label msgid or plain text)
    translate_options: bool = True
    required: bool = False
    step: str | None = None  # for numbers: "any" for coordinates
    help: str | None = None  # msgid


@dataclass
class FormState:
    """The values shown in a form and the errors next to its fields (``_form``: the whole form)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.errors)


def raw_values(form: FormData, fields: Sequence[Field]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields:
        if f.kind == "multi":
            values[f.name] = [str(v) for v in form.getlist(f.name)]
        elif f.kind == "checkbox":
            values[f.name] = f.name in form
        else:
            values[f.name] = str(form.get(f.name) or "").strip()
    return values


def body_data(
    values: Mapping[str, Any], fields: Sequence[Field], *, clear_empty: bool = False
) -> dict[str, Any]:
    """The request body of the posted values: an empty text field is left out, or with
    ``clear_empty`` (an edit) sent as null, so the service clears it or says it may not."""
    data: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name)
        if f.kind in ("multi", "checkbox") or value:
            data[f.name] = value
        elif clear_empty:
            data[f.name] = None
    return data


def validation_errors(tr: Translator, exc: ValidationError) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else "_form"
        found.setdefault(name, tr("Not valid: %(reason)s", reason=error.get("msg", "")))
    return found


def problem_errors(tr: Translator, exc: DomainError, names: Sequence[str]) -> dict[str, str]:
    """A service's problem as errors by field: each ``#/field`` pointer next to its field."""
    found: dict[str, str] = {}
    for error in exc.errors or []:
        name = str(error.get("pointer", "")).removeprefix("#/").split("/")[0]
        detail = str(error.get("detail", ""))
        if name in names:
            found.setdefault(name, detail)
    if not found:
        found["_form"] = exc.detail
    return found


def parse_form(
    tr: Translator,
    model: type[M],
    values: Mapping[str, Any],
    fields: Sequence[Field],
    *,
    clear_empty: bool = False,
) -> tuple[M | None, dict[str, str]]:
    try:
        return model.model_validate(body_data(values, fields, clear_empty=clear_empty)), {}
    except ValidationError as exc:
        return None, validation_errors(tr, exc)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def status_for(request: Request, status: int) -> int:
    """htmx swaps only 2xx answers: a refused form is sent as 200 to htmx, else with its status."""
    return 200 if is_htmx(request) else status


def tr_of(request: Request) -> Translator:
    return translator(request)
