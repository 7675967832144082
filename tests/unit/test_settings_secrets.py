"""Production settings refuse weak or demo secrets; keys are checked where they are read."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from app.config import DEMO_PATIENT_KEY_SECRET, Settings
from app.secretbox import DEVELOPMENT_SECRETS_KEY

STRONG = "k3J9-vQ2x_Lr8ZpT4mW7cYb1NhF6sD0aE5uGiO"
KEY = Fernet.generate_key().decode()


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "patient_key_secret": STRONG,
        "secrets_key": KEY,
        "audit_signing_key": "audit-" + STRONG,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def test_a_strong_production_configuration_is_accepted() -> None:
    settings = production()
    assert settings.webhook_require_https
    box = settings.secret_box()
    assert box.open(box.seal("whsec_x")) == "whsec_x"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patient_key_secret": DEMO_PATIENT_KEY_SECRET}, "must be set"),
        ({"patient_key_secret": "short-secret"}, "too weak"),
        ({"patient_key_secret": "a" * 64}, "too weak"),
        ({"secrets_key": None}, "JUISTEPLEK_SECRETS_KEY must be set"),
        ({"secrets_key": DEVELOPMENT_SECRETS_KEY}, "JUISTEPLEK_SECRETS_KEY must be set"),
        ({"secrets_key": "c2hvcnQta2V5"}, "32 bytes"),
        ({"secrets_key": "not a key"}, "base64"),
        ({"secrets_old_keys": "also not a key!"}, "JUISTEPLEK_SECRETS_OLD_KEYS"),
    ],
)
def test_production_refuses_weak_secrets(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        production(**overrides)


def test_development_runs_with_the_demo_secrets_but_still_checks_key_format() -> None:
    settings = Settings.model_validate({"env": "development"})
    assert settings.secret_box().open(settings.secret_box().seal("s")) == "s"
    with pytest.raises(ValidationError, match="JUISTEPLEK_SECRETS_KEY"):
        Settings.model_validate({"env": "development", "secrets_key": "short"})


def test_lists_are_read_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = Fernet.generate_key().decode()
    monkeypatch.setenv("JUISTEPLEK_WEBHOOK_ALLOW_HOSTS", "hooks.lan, 10.0.0.5 ,")
    monkeypatch.setenv("JUISTEPLEK_SECRETS_OLD_KEYS", f"{old}")
    settings = Settings()
    assert settings.webhook_allow_hosts == ["hooks.lan", "10.0.0.5"]
    assert [k.get_secret_value() for k in settings.secrets_old_keys] == [old]
