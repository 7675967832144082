"""Who may see which real-time event (pure; docs/domain.md §14 roles).

Capacity changes are public to every key. Placement changes, their Task notifications and
report-now requests concern particular organisations: admin sees all, a triagist sees those of
its region, and a provider, referrer or triagist key sees those that concern its own
organisation. Analysts see aggregates only, so no placement events.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from app.enums import Role
from app.principal import Principal

PUBLIC_TOPICS = frozenset({"capacity"})
# Placement changes, their Task notifications and report-now requests: for the organisations
# concerned and the region's triagists.
ORGANISATION_TOPICS = frozenset({"placement", "task", "report_request"})
ORGANISATION_ROLES = frozenset({Role.PROVIDER, Role.REFERRER, Role.TRIAGIST})


def can_see(
    principal: Principal,
    *,
    topic: str,
    region_id: uuid.UUID | None,
    organisation_ids: Collection[uuid.UUID],
) -> bool:
    """True when ``principal`` may receive a ``topic`` event about this region/organisations."""
    if topic in PUBLIC_TOPICS or principal.is_admin:
        return True
    if topic not in ORGANISATION_TOPICS:
        return False  # unknown topics stay private until a rule for them is written here
    if (
        Role.TRIAGIST in principal.roles
        and region_id is not None
        and principal.region_id == region_id
    ):
        return True
    return (
        bool(principal.roles & ORGANISATION_ROLES)
        and principal.organisation_id is not None
        and principal.organisation_id in organisation_ids
    )
