"""The problem catalogue: every problem type is one class, with one slug, status and title."""

from __future__ import annotations

import app.main  # noqa: F401  # loads every module, so every problem class is defined
from app.errors import DomainError


def _kinds(base: type[DomainError]) -> list[type[DomainError]]:
    return [base, *(k for sub in base.__subclasses__() for k in _kinds(sub))]


def test_each_slug_names_one_problem_type() -> None:
    seen: dict[str, tuple[int, str]] = {}
    clashes = []
    for kind in _kinds(DomainError):
        entry = (kind.status, kind.title)
        if seen.setdefault(kind.type_slug, entry) != entry:
            clashes.append((kind.__name__, kind.type_slug, entry, seen[kind.type_slug]))
    assert clashes == []
    # The routing errors and the body guard render from the catalogue too.
    assert {"method-not-allowed", "payload-too-large", "unsupported-media-type"} <= set(seen)
