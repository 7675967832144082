"""Production refuses to start without a real access-log signing key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.audit.service import DEVELOPMENT_SIGNING_KEY, signing_keys
from app.config import Settings
from app.secretbox import new_key

SECRET = "patient-key-secret-0123456789-abcdefghij"


def test_production_needs_a_long_audit_signing_key() -> None:
    def production(audit_key: str | None) -> Settings:
        return Settings.model_validate(
            {
                "env": "production",
                "patient_key_secret": SECRET,
                "secrets_key": new_key(),
                "audit_signing_key": audit_key,
            }
        )

    with pytest.raises(ValidationError, match="JUISTEPLEK_AUDIT_SIGNING_KEY"):
        production(None)
    with pytest.raises(ValidationError, match="at least 32"):
        production("short")
    ok = production("k" * 32)
    keys = signing_keys(ok)
    assert keys.current == b"k" * 32
    assert not keys.development


def test_outside_production_the_development_key_is_used_and_flagged() -> None:
    keys = signing_keys(Settings(env="development", audit_previous_signing_keys="a, b,"))
    assert keys.development
    assert keys.current == DEVELOPMENT_SIGNING_KEY
    assert keys.all == (DEVELOPMENT_SIGNING_KEY, b"a", b"b")
