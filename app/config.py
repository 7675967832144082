"""Settings: the only reader of the environment (prefix ``JUISTEPLEK_``)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.secretbox import DEVELOPMENT_SECRETS_KEY, SecretBox, key_problem

DEMO_PATIENT_KEY_SECRET = "demo-only-patient-key-secret-change-me"  # noqa: S105 - refused in production
MIN_PATIENT_KEY_SECRET_LENGTH = 32
MIN_AUDIT_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Typed configuration; the defaults run the embedded SQLite demo with no setup."""

    model_config = SettingsConfigDict(
        env_prefix="JUISTEPLEK_", extra="ignore", env_ignore_empty=True
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./juisteplek.db"
    db_pool_size: Annotated[int, Field(ge=1, le=500)] = 20
    db_max_overflow: Annotated[int, Field(ge=0, le=500)] = 10
    admin_key: SecretStr | None = None
    patient_key_secret: SecretStr = SecretStr(DEMO_PATIENT_KEY_SECRET)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"
    # Staleness TTLs (docs/domain.md §3): beds are stale after 4 h, district nursing after 24 h.
    stale_after_bed_minutes: Annotated[int, Field(ge=1, le=10_080)] = 240
    stale_after_district_nursing_minutes: Annotated[int, Field(ge=1, le=10_080)] = 1_440
    max_body_bytes: Annotated[int, Field(ge=1_024, le=64 * 1024 * 1024)] = 1_048_576
    clock_skew_seconds: Annotated[int, Field(ge=0, le=3_600)] = 120
    api_key_cache_seconds: Annotated[float, Field(ge=0, le=300)] = 10.0
    access_log: bool = True
    # The address clients reach this instance at (e.g. https://juisteplek.example.nl): Task
    # notifications carry absolute Task URLs under it; unset, they are server-relative.
    public_url: Annotated[str | None, Field(max_length=300, pattern=r"^https?://")] = None
    # Real-time: outbox safety-net poll, SSE heartbeat, PostgreSQL LISTEN/NOTIFY.
    outbox_poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    stream_heartbeat_seconds: Annotated[float, Field(gt=0, le=300)] = 15.0
    realtime_listen_enabled: bool = True
    # Open event streams one instance serves, per API key and in all (429 beyond).
    stream_max_per_key: Annotated[int, Field(ge=1, le=10_000)] = 10
    stream_max_per_instance: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    # Failed authentications (a key that is unknown or revoked) one client address may make per
    # window before its requests get 429 until the window ends; 0 switches the throttle off.
    auth_failure_limit: Annotated[int, Field(ge=0, le=1_000_000)] = 20
    auth_failure_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60
    # Webhooks (docs/webhooks.md). None = on, except with env=test (tests call dispatch_once).
    webhook_dispatch_enabled: bool | None = None
    webhook_poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # After a commit wakes the dispatcher it waits this long, so a burst of writes is fanned out
    # in one pass instead of one pass (and write transaction) per commit.
    webhook_coalesce_seconds: Annotated[float, Field(ge=0, le=5)] = 0.1
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    webhook_max_attempts: Annotated[int, Field(ge=1, le=50)] = 20
    webhook_backoff_base_seconds: Annotated[float, Field(gt=0, le=3_600)] = 10.0
    webhook_backoff_cap_seconds: Annotated[float, Field(gt=0, le=86_400)] = 3_600.0
    webhook_batch_size: Annotated[int, Field(ge=1, le=1_000)] = 50
    # Hosts exempt from the webhook address rule (docs/webhooks.md): comma-separated names or
    # IP addresses, e.g. an operator's own receiver on the internal network.
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Webhook secrets at rest (docs/webhooks.md): the key that encrypts, and old keys that still
    # decrypt during a rotation (comma-separated). Without a key a public development key is
    # used, which production refuses.
    secrets_key: SecretStr | None = None
    secrets_old_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Idempotency records (the first response to a write with an Idempotency-Key) are purged
    # after this many hours by the background sweep.
    idempotency_retention_hours: Annotated[int, Field(ge=1, le=8_760)] = 24
    # Placement sweeper (docs/domain.md §8, §12.6): hold expiry and auto-escalation.
    # None = on, except with env=test (tests call app.placement.sweeper.sweep with an explicit now).
    placement_sweeper_enabled: bool | None = None
    placement_sweep_seconds: Annotated[float, Field(gt=0, le=3_600)] = 15.0
    # The demo's providers keep reporting (app/flows/demo_ticker.py): minutes between rounds,
    # 0 = off. `juisteplek demo` turns it on.
    demo_report_minutes: Annotated[float, Field(ge=0, le=1_440)] = 0
    # Access log (docs/audit.md): the HMAC key of its chains and checkpoints, kept outside the
    # database; earlier keys (comma-separated) still verify rows signed before a rotation.
    audit_signing_key: SecretStr | None = None
    audit_previous_signing_keys: SecretStr | None = None
    # Signed checkpoints of the chain heads. None = on, except with env=test.
    audit_checkpoint_enabled: bool | None = None
    audit_checkpoint_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    # Federation (docs/federation.md): partner regions are pulled on start, on every event of
    # their stream and every ``partner_poll_seconds``. None = on, except with env=test.
    partner_sync_enabled: bool | None = None
    partner_poll_seconds: Annotated[float, Field(gt=0, le=3_600)] = 60.0
    partner_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("secrets_old_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    # Web sessions (docs/web.md): idle and absolute expiry, login throttling, TOTP.
    session_idle_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 60
    session_absolute_hours: Annotated[int, Field(ge=1, le=7 * 24)] = 14
    login_window_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    login_max_failures_per_email: Annotated[int, Field(ge=1, le=1_000)] = 5
    login_max_failures_per_address: Annotated[int, Field(ge=1, le=10_000)] = 30
    # None = required in production for the roles that read patient data, off elsewhere.
    totp_required: bool | None = None
    # None = Secure session cookies in production only (plain http on a laptop demo).
    cookie_secure: bool | None = None

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        old = "JUISTEPLEK_SECRETS_OLD_KEYS"
        keys = [(old, k.get_secret_value()) for k in self.secrets_old_keys]
        if self.secrets_key is not None:
            keys.insert(0, ("JUISTEPLEK_SECRETS_KEY", self.secrets_key.get_secret_value()))
        for name, key in keys:
            problem = key_problem(key)
            if problem is not None:
                raise ValueError(f"{name}: a key {problem}")
        if self.env != "production":
            return self
        patient = self.patient_key_secret.get_secret_value()
        if patient == DEMO_PATIENT_KEY_SECRET:
            raise ValueError("JUISTEPLEK_PATIENT_KEY_SECRET must be set in production")
        if len(patient) < MIN_PATIENT_KEY_SECRET_LENGTH or len(set(patient)) < 8:
            raise ValueError(
                "JUISTEPLEK_PATIENT_KEY_SECRET is too weak for production: use at least "
                f"{MIN_PATIENT_KEY_SECRET_LENGTH} random characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.secrets_key is None or self.secrets_key.get_secret_value() == (
            DEVELOPMENT_SECRETS_KEY
        ):
            raise ValueError(
                "JUISTEPLEK_SECRETS_KEY must be set in production "
                "(generate one with `juisteplek webhooks new-key`)"
            )
        if (
            self.audit_signing_key is None
            or len(self.audit_signing_key.get_secret_value()) < MIN_AUDIT_KEY_LENGTH
        ):
            raise ValueError(
                f"JUISTEPLEK_AUDIT_SIGNING_KEY must be set in production "
                f"(at least {MIN_AUDIT_KEY_LENGTH} characters)"
            )
        return self

    @property
    def run_audit_checkpoints(self) -> bool:
        if self.audit_checkpoint_enabled is None:
            return self.env != "test"
        return self.audit_checkpoint_enabled

    @property
    def dispatch_webhooks(self) -> bool:
        if self.webhook_dispatch_enabled is None:
            return self.env != "test"
        return self.webhook_dispatch_enabled

    @property
    def webhook_require_https(self) -> bool:
        return self.env == "production"

    def secret_box(self) -> SecretBox:
        """Encrypts webhook secrets with the current key; decrypts with it and the old keys."""
        current = DEVELOPMENT_SECRETS_KEY
        if self.secrets_key is not None:
            current = self.secrets_key.get_secret_value()
        return SecretBox([current, *(k.get_secret_value() for k in self.secrets_old_keys)])

    @property
    def run_placement_sweeper(self) -> bool:
        if self.placement_sweeper_enabled is None:
            return self.env != "test"
        return self.placement_sweeper_enabled

    @property
    def run_partner_sync(self) -> bool:
        if self.partner_sync_enabled is None:
            return self.env != "test"
        return self.partner_sync_enabled

    @property
    def require_totp(self) -> bool:
        if self.totp_required is None:
            return self.env == "production"
        return self.totp_required

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is None:
            return self.env == "production"
        return self.cookie_secure

    def stale_after(self, care_type: str) -> timedelta:
        """How old a capacity report may be before it is shown as stale."""
        if care_type.startswith("district_nursing"):
            return timedelta(minutes=self.stale_after_district_nursing_minutes)
        return timedelta(minutes=self.stale_after_bed_minutes)


@lru_cache
def get_settings() -> Settings:
    return Settings()
