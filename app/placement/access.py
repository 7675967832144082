"""Who may see and change a placement (docs/domain.md §14 roles): pure checks raising 403."""

from __future__ import annotations

import uuid

from app.auth.principal import Principal
from app.enums import Role
from app.errors import Forbidden


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


def require_view(
    p: Principal, referrer_org: uuid.UUID, region_id: uuid.UUID, hold_orgs: set[uuid.UUID]
) -> None:
    if can_manage(p, referrer_org, region_id):
        return
    if Role.PROVIDER in p.roles and p.organisation_id in hold_orgs:
        return
    raise Forbidden("This key may not see this placement.")
