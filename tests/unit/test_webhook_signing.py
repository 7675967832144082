"""Pure webhook rules: signatures, event-type patterns, retry schedule, target URLs; visibility."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid

import pytest

from app.enums import Role
from app.principal import Principal
from app.realtime.bus import notify_payloads, parse_notify_payload
from app.realtime.visibility import can_see
from app.webhooks.dispatcher import DispatchConfig, DispatchSummary
from app.webhooks.policy import address_problem, matches, retry_delay, target_problem
from app.webhooks.signing import (
    compute_signature,
    generate_secret,
    parse_signature_header,
    signature_header,
    standard_key,
    standard_signature,
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
    ("url", "allow_hosts", "problem"),
    [
        ("https://hooks.example.nl/x", (), None),
        ("http://127.0.0.1:8080/hook", ("127.0.0.1",), None),
        ("http://127.0.0.1:8080/hook", (), "loopback"),
        ("http://10.1.2.3/hook", (), "private"),
        ("http://10.1.2.3/hook", ("10.1.2.3",), None),
        ("http://[::1]/hook", (), "loopback"),
        ("http://[::1]/hook", ("[::1]",), None),
        ("http://[::ffff:10.0.0.1]/hook", (), "private"),
        ("http://169.254.169.254/", (), "link-local"),
        ("http://localhost/hook", (), "local"),
        ("http://LOCALHOST./hook", ("localhost",), None),
        ("http://127.1/", ("127.1",), "four decimal numbers"),  # no allow-list for bad syntax
        ("http://2130706433/", (), "four decimal numbers"),
        ("http://0x7f000001/", (), "four decimal numbers"),
        ("http://999.999.999.999/hook", (), "four decimal numbers"),
        ("ftp://example.nl/x", (), "http or https"),
        ("https://user:pw@example.nl/x", (), "credentials"),
        ("https://example.nl/x#frag", (), "fragment"),
        ("https:///nohost", (), "host"),
        ("https://example.nl:99999/x", (), "valid URL"),
        ("https://exa mple.nl/x", (), "whitespace"),
        ("not a url", (), "whitespace"),
        ("example.nl/x", (), "http or https"),
        ("https://-bad-.example.nl/x", (), "not valid"),
        ("http://[v1.fe]/x", (), "IPv6"),
        ("http://[fe80::1%25eth0]/x", ("fe80::1",), "zone"),
        ("https://example.nl:0/x", (), "port 0"),
    ],
)
def test_target_problem(url: str, allow_hosts: tuple[str, ...], problem: str | None) -> None:
    found = target_problem(url, allow_hosts=allow_hosts)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_https_is_required_when_asked_even_for_allowed_hosts() -> None:
    assert target_problem("https://hooks.example.nl/x", require_https=True) is None
    found = target_problem("http://hooks.lan/x", allow_hosts=["hooks.lan"], require_https=True)
    assert found is not None
    assert "https" in found


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("127.0.0.1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:8.8.8.8", None),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "reserved"),
        ("240.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ],
)
def test_address_problem(address: str, reason: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == reason


def test_standard_webhooks_signature_matches_the_specification_example() -> None:
    # The example of the Standard Webhooks specification (and of its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert generate_secret().startswith("whsec_")
    assert len(standard_key(generate_secret())) == 32


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
