"""Who may see and change a placement (docs/placements.md roles): pure checks raising 403."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from app.enums import Role
from app.errors import Forbidden
from app.principal import Principal


def can_manage(p: Principal, referrer_org: uuid.UUID, region_id: uuid.UUID) -> bool:
    """Case owners: the referrer's own organisation, the region's triagists, admins."""
    return (
        p.is_admin
        or (Role.REFERRER in p.roles and p.organisation_id == referrer_org)
        or (Role.TRIAGIST in p.roles and p.region_id == region_id)
    )


def is_receiving_provider(p: Principal, hold_org: uuid.UUID | None) -> bool:
    return hold_org is not None and Role.PROVIDER in p.roles and p.organisation_id == hold_org


def require_manage(p: Principal, referrer_org: uuid.UUID, region_id: uuid.UUID) -> None:
    if not can_manage(p, referrer_org, region_id):
        raise Forbidden(
            "Only the referring organisation, a triagist of the placement's region or an admin "
            "may do this."
        )


def require_receiving_provider(p: Principal, hold_org: uuid.UUID | None) -> None:
    if not (p.is_admin or is_receiving_provider(p, hold_org)):
        raise Forbidden("Only the provider that owns the held unit may accept the offer.")


def require_manage_or_receiver(
    p: Principal, referrer_org: uuid.UUID, region_id: uuid.UUID, hold_org: uuid.UUID | None
) -> None:
    if not (can_manage(p, referrer_org, region_id) or is_receiving_provider(p, hold_org)):
        raise Forbidden(
            "Only the case owner (referrer, regional triagist) or the receiving provider may do "
            "this."
        )


# A provider is involved in a placement while a hold on one of its units is open (offered,
# accepted) or became the admission; a declined, expired or cancelled hold ends it.
INVOLVED_HOLD_STATUSES = frozenset({"active", "admitted"})


@dataclass(frozen=True, slots=True)
class HoldFact:
    """What the access rules need of one hold of the placement."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    status: str


def involved_orgs(holds: Iterable[HoldFact]) -> set[uuid.UUID]:
    return {h.organisation_id for h in holds if h.status in INVOLVED_HOLD_STATUSES}


def can_view(
    p: Principal, referrer_org: uuid.UUID, region_id: uuid.UUID, holds: Iterable[HoldFact]
) -> bool:
    """Case owners, and a provider for as long as it is involved (``INVOLVED_HOLD_STATUSES``)."""
    if can_manage(p, referrer_org, region_id):
        return True
    return Role.PROVIDER in p.roles and p.organisation_id in involved_orgs(holds)


def require_view(
    p: Principal, referrer_org: uuid.UUID, region_id: uuid.UUID, holds: Iterable[HoldFact]
) -> None:
    if not can_view(p, referrer_org, region_id, holds):
        raise Forbidden("This key may not see this placement.")


def own_declined_holds(p: Principal, holds: Iterable[HoldFact]) -> set[uuid.UUID]:
    """The holds a former provider declined: the events of those declines stay readable to it."""
    if Role.PROVIDER not in p.roles or p.organisation_id is None:
        return set()
    return {
        h.id for h in holds if h.organisation_id == p.organisation_id and h.status == "declined"
    }
