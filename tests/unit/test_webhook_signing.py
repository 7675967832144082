"""Pure webhook rules: signatures, event-type patterns, retry schedule, target URLs; visibility."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from app.auth.principal import Principal
from app.enums import Role
from app.realtime.bus import notify_payloads, parse_notify_payload
from app.realtime.visibility import can_see
from app.webhooks.dispatcher import DispatchConfig, DispatchSummary
from app.webhooks.policy import matches, retry_delay, target_problem
from app.webhooks.signing import (
    compute_signature,
    generate_secret,
    parse_signature_header,
    signature_header,
    verify_signature,
)

SECRET = "whsec_test"
BODY = b'{"id":"e1","type":"capacity.reported"}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, 1_700_000_000, BODY) == expected
    assert signature_header(SECRET, 1_700_000_000, BODY) == f"t=1700000000,v1={expected}"


def test_verify_accepts_own_signature_within_tolerance() -> None:
    header = signature_header(SECRET, 1_000, BODY)
    assert verify_signature(SECRET, header, BODY, now=1_000) is True
    assert verify_signature(SECRET, header, BODY, now=1_300) is True
    assert verify_signature(SECRET, header, BODY, now=1_301) is False  # replayed too late
    assert verify_signature(SECRET, header, BODY, now=699) is False


@pytest.mark.parametrize(
    ("secret", "header_body", "body"),
    [
        ("whsec_other", BODY, BODY),  # wrong secret
        (SECRET, BODY, BODY + b" "),  # body changed in transit
    ],
)
def test_verify_rejects_tampering(secret: str, header_body: bytes, body: bytes) -> None:
    header = signature_header(SECRET, 1_000, header_body)
    assert verify_signature(secret, header, body, now=1_000) is False


def test_verify_accepts_any_of_several_v1_entries_during_rotation() -> None:
    good = compute_signature(SECRET, 5, BODY)
    assert verify_signature(SECRET, f"t=5,v1=deadbeef,v1={good}", BODY, now=5) is True


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=5", "t=5,v1="])
def test_verify_rejects_garbled_headers(header: str) -> None:
    assert verify_signature(SECRET, header, BODY, now=5) is False


def test_parse_header() -> None:
    assert parse_signature_header("t=12, v1=ab ,v0=zz,v1=cd") == (12, ["ab", "cd"])


def test_generated_secrets_are_prefixed_and_unique() -> None:
    a, b = generate_secret(), generate_secret()
    assert a.startswith("whsec_")
    assert len(a) > 40
    assert a != b


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "placement.created", True),
        (["placement.*"], "placement.hold_placed", True),
        (["placement.*"], "placementx.created", False),
        (["placement.*"], "capacity.reported", False),
        (["capacity.reported"], "capacity.reported", True),
        (["capacity.reported"], "capacity.reported_late", False),
        (["capacity.reported", "placement.accepted"], "placement.accepted", True),
        ([], "capacity.reported", False),
    ],
)
def test_event_type_patterns(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def test_retry_delay_is_capped_exponential_with_equal_jitter() -> None:
    low = [retry_delay(n, base_seconds=10, cap_seconds=300, rand=lambda: 0.0) for n in range(1, 9)]
    high = [retry_delay(n, base_seconds=10, cap_seconds=300, rand=lambda: 1.0) for n in range(1, 9)]
    assert low == [5, 10, 20, 40, 80, 150, 150, 150]
    assert high == [10, 20, 40, 80, 160, 300, 300, 300]
    assert retry_delay(10_000, base_seconds=10, cap_seconds=300, rand=lambda: 1.0) == 300


@pytest.mark.parametrize(
    ("url", "allow_private", "problem"),
    [
        ("https://hooks.example.nl/x", False, None),
        ("http://127.0.0.1:8080/hook", True, None),
        ("http://127.0.0.1:8080/hook", False, "private"),
        ("http://10.1.2.3/hook", False, "private"),
        ("http://[::1]/hook", False, "private"),
        ("http://localhost/hook", False, "local"),
        ("ftp://example.nl/x", True, "http or https"),
        ("https://user:pw@example.nl/x", True, "credentials"),
        ("https://example.nl/x#frag", True, "fragment"),
        ("https:///nohost", True, "host"),
        ("https://example.nl:99999/x", True, "valid URL"),
        ("https://exa mple.nl/x", True, "whitespace"),
        ("not a url", True, "whitespace"),
        ("example.nl/x", True, "http or https"),
    ],
)
def test_target_problem(url: str, allow_private: bool, problem: str | None) -> None:
    found = target_problem(url, allow_private=allow_private)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def _principal(*roles: Role, org: uuid.UUID | None, region: uuid.UUID | None) -> Principal:
    return Principal(
        key_id=uuid.uuid4(),
        name="k",
        roles=frozenset(roles),
        organisation_id=org,
        region_id=region,
    )


REGION = uuid.uuid4()
OTHER_REGION = uuid.uuid4()
REFERRER_ORG = uuid.uuid4()
PROVIDER_ORG = uuid.uuid4()
RAP_ORG = uuid.uuid4()


@pytest.mark.parametrize(
    ("principal", "capacity", "placement"),
    [
        (_principal(Role.ADMIN, org=None, region=None), True, True),
        (_principal(Role.TRIAGIST, org=RAP_ORG, region=REGION), True, True),
        (_principal(Role.TRIAGIST, org=RAP_ORG, region=OTHER_REGION), True, False),
        (_principal(Role.REFERRER, org=REFERRER_ORG, region=REGION), True, True),
        (_principal(Role.PROVIDER, org=PROVIDER_ORG, region=REGION), True, True),
        (_principal(Role.PROVIDER, org=RAP_ORG, region=REGION), True, False),
        (_principal(Role.ANALYST, org=RAP_ORG, region=REGION), True, False),
        # an analyst's organisation being concerned does not open patient data to it
        (_principal(Role.ANALYST, org=REFERRER_ORG, region=REGION), True, False),
    ],
)
def test_visibility(principal: Principal, capacity: bool, placement: bool) -> None:
    concerned = frozenset({REFERRER_ORG, PROVIDER_ORG})
    assert can_see(principal, topic="capacity", region_id=None, organisation_ids=()) is capacity
    seen = can_see(principal, topic="placement", region_id=REGION, organisation_ids=concerned)
    assert seen is placement


def test_unknown_topics_are_admin_only() -> None:
    analyst = _principal(Role.TRIAGIST, org=RAP_ORG, region=REGION)
    admin = _principal(Role.ADMIN, org=None, region=None)
    assert can_see(analyst, topic="audit", region_id=REGION, organisation_ids={RAP_ORG}) is False
    assert can_see(admin, topic="audit", region_id=REGION, organisation_ids=()) is True


def test_notify_payloads_stay_under_the_postgres_limit() -> None:
    ids = list(range(1_000_000, 1_003_000))
    payloads = notify_payloads(ids)
    assert len(payloads) > 1
    assert all(len(p) < 8_000 for p in payloads)
    assert [i for p in payloads for i in parse_notify_payload(p)] == ids
    assert notify_payloads([]) == []
    assert parse_notify_payload("1,x,,3") == [1, 3]


@pytest.mark.parametrize(
    ("fanned_out", "attempted", "full"),
    [(0, 0, False), (199, 49, False), (200, 0, True), (0, 50, True)],
)
def test_dispatcher_goes_on_at_once_only_after_a_full_pass(
    fanned_out: int, attempted: int, full: bool
) -> None:
    summary = DispatchSummary(events_fanned_out=fanned_out, attempted=attempted)
    assert summary.full(DispatchConfig(batch_size=50)) is full
