"""Every table, imported in one place so Alembic and the tests see the whole metadata."""

from app.audit.models import AuditChainHead, AuditCheckpoint, AuditCheckpointHead, AuditLog
from app.auth.models import ApiKey, IdempotencyRecord, LoginAttempt, User, WebSession
from app.capacity.models import CapacityReport, UnitCapacity
from app.db import Base
from app.exchange.models import Partner, PartnerHold, PartnerUnit
from app.kpi.models import InflowCount, KpiBaseline, KpiCalendar, ShortageEvent
from app.placement.models import Placement, PlacementHold, PlacementNote, TransferEvent
from app.realtime.models import OutboxEvent
from app.registry.models import (
    Location,
    Municipality,
    Organisation,
    Region,
    Subregion,
    SubregionNeighbour,
    Unit,
)
from app.reportnow.models import ReportRequest, ReportRequestUnit
from app.triage.models import TriageRecord, TriageRuleSet
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "ApiKey",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditCheckpointHead",
    "AuditLog",
    "Base",
    "CapacityReport",
    "IdempotencyRecord",
    "InflowCount",
    "KpiBaseline",
    "KpiCalendar",
    "Location",
    "LoginAttempt",
    "Municipality",
    "Organisation",
    "OutboxEvent",
    "Partner",
    "PartnerHold",
    "PartnerUnit",
    "Placement",
    "PlacementHold",
    "PlacementNote",
    "Region",
    "ReportRequest",
    "ReportRequestUnit",
    "ShortageEvent",
    "Subregion",
    "SubregionNeighbour",
    "TransferEvent",
    "TriageRecord",
    "TriageRuleSet",
    "Unit",
    "UnitCapacity",
    "User",
    "WebSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
