"""Shared input types, ETags, code masks and principals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from app.enums import Feature, Role, TargetGroup, codes_of, mask_of
from app.errors import Forbidden, PreconditionFailed
from app.etag import check_if_match, etag
from app.principal import Principal, generate_key, hash_key
from app.schemas import Count, Postcode, UtcDateTime


@pytest.mark.parametrize(("raw", "normal"), [("2333ZA", "2333 ZA"), ("2333 ZA", "2333 ZA")])
def test_postcode_normalised(raw: str, normal: str) -> None:
    assert TypeAdapter(Postcode).validate_python(raw) == normal


@pytest.mark.parametrize("raw", ["0333 ZA", "2333 SA", "2333 za", "23333 ZA", ""])
def test_postcode_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Postcode).validate_python(raw)


@pytest.mark.parametrize("raw", [True, -1, 100_001, "3"])
def test_count_is_strictly_a_small_number(raw: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Count).validate_python(raw, strict=isinstance(raw, str))


def test_if_match() -> None:
    check_if_match(None, 3)
    check_if_match("*", 3)
    check_if_match('W/"3"', 3)
    check_if_match('"2", "3"', 3)
    assert etag(3) == '"3"'
    with pytest.raises(PreconditionFailed):
        check_if_match('"2"', 3)


def test_masks_round_trip() -> None:
    wanted = [Feature.OXYGEN, Feature.ISOLATION]
    assert codes_of(mask_of(wanted, Feature), Feature) == [Feature.ISOLATION, Feature.OXYGEN]
    assert mask_of([], TargetGroup) == 0


def test_keys_are_random_and_hashed() -> None:
    plain, prefix, digest = generate_key()
    assert plain.startswith(f"jp_{prefix}_")
    assert digest == hash_key(plain) != hash_key(generate_key()[0])


def test_principal_checks() -> None:
    org = uuid.uuid4()
    p = Principal(
        key_id=uuid.uuid4(),
        name="p",
        roles=frozenset({Role.PROVIDER}),
        organisation_id=org,
        region_id=None,
    )
    p.require(Role.PROVIDER, Role.TRIAGIST)
    p.require_organisation(org, "units")
    with pytest.raises(Forbidden):
        p.require(Role.TRIAGIST)
    with pytest.raises(Forbidden):
        p.require_organisation(uuid.uuid4(), "units")


@pytest.mark.parametrize("raw", [0, 1.5, "0", "1700000000", "1.5", "1e9", "2026-11-23", ""])
def test_a_date_time_is_iso_text_only(raw: object) -> None:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(UtcDateTime).validate_python(raw)
    assert "ISO 8601" in str(refused.value)


def test_a_date_time_with_an_offset_is_kept_in_utc() -> None:
    adapter = TypeAdapter(UtcDateTime)
    at = adapter.validate_python("2026-11-23T10:00:00+01:00")
    assert at == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert at.utcoffset() == timedelta(0)
    assert adapter.validate_python(at) == at
