"""Settings: the only reader of the environment (prefix ``JUISTEPLEK_``)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_PATIENT_KEY_SECRET = "demo-only-patient-key-secret-change-me"  # noqa: S105 - refused in production


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
    # None = private/loopback targets allowed except with env=production (SSRF guard).
    webhook_allow_private_targets: bool | None = None
    # Placement sweeper (docs/domain.md §8, §12.6): hold expiry and auto-escalation.
    # None = on, except with env=test (tests call app.placement.sweeper.sweep with an explicit now).
    placement_sweeper_enabled: bool | None = None
    placement_sweep_seconds: Annotated[float, Field(gt=0, le=3_600)] = 15.0
    # The demo's providers keep reporting (app/registry/demo_ticker.py): minutes between rounds,
    # 0 = off. `juisteplek demo` turns it on.
    demo_report_minutes: Annotated[float, Field(ge=0, le=1_440)] = 0
    # Federation (docs/federation.md): partner regions are pulled on start, on every event of
    # their stream and every ``partner_poll_seconds``. None = on, except with env=test.
    partner_sync_enabled: bool | None = None
    # Encrypts stored secrets (partner keys): URL-safe base64 of 32 bytes (Fernet). Unset: a
    # public development key, refused in production.
    secrets_key: SecretStr | None = None
    partner_poll_seconds: Annotated[float, Field(gt=0, le=3_600)] = 60.0
    partner_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0

    @model_validator(mode="after")
    def _refuse_demo_secrets_in_production(self) -> Settings:
        if self.env == "production" and (
            self.patient_key_secret.get_secret_value() == DEMO_PATIENT_KEY_SECRET
        ):
            raise ValueError("JUISTEPLEK_PATIENT_KEY_SECRET must be set in production")
        return self

    @property
    def dispatch_webhooks(self) -> bool:
        if self.webhook_dispatch_enabled is None:
            return self.env != "test"
        return self.webhook_dispatch_enabled

    @property
    def allow_private_webhook_targets(self) -> bool:
        if self.webhook_allow_private_targets is None:
            return self.env != "production"
        return self.webhook_allow_private_targets

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
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def stale_after(self, care_type: str) -> timedelta:
        """How old a capacity report may be before it is shown as stale."""
        if care_type.startswith("district_nursing"):
            return timedelta(minutes=self.stale_after_district_nursing_minutes)
        return timedelta(minutes=self.stale_after_bed_minutes)


@lru_cache
def get_settings() -> Settings:
    return Settings()
