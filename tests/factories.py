"""Typed async builders of test data, written through the services like real clients would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.capacity import service as capacity_service
from app.capacity.schemas import CapacityReportIn
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Feature, OrganisationKind, Role, SexPolicy, TargetGroup
from app.flows import units as units_flow
from app.principal import Principal
from app.registry import service as registry_service
from app.registry.models import Municipality, Region, Subregion, SubregionNeighbour
from app.registry.schemas import LocationCreate, OrganisationCreate, UnitCreate

ADMIN = Principal(
    key_id=uuid.UUID(int=0),
    name="test admin",
    roles=frozenset({Role.ADMIN}),
    organisation_id=None,
    region_id=None,
)

# (code, name, latitude, longitude, municipality); escalation order follows the list.
SUBREGIONS = [
    ("leiden", "Leiden", 52.1601, 4.4970, "Leiden"),
    ("den-haag", "Den Haag", 52.0705, 4.3007, "Den Haag"),
    ("gouda", "Gouda", 52.0115, 4.7105, "Gouda"),
]
NEIGHBOURS = {
    "leiden": ["den-haag", "gouda"],
    "den-haag": ["leiden", "gouda"],
    "gouda": ["leiden", "den-haag"],
}


@dataclass
class Seed:
    region_id: uuid.UUID
    subregions: dict[str, uuid.UUID]
    organisations: dict[str, uuid.UUID]
    locations: dict[str, uuid.UUID]
    units: dict[str, uuid.UUID]
    keys: dict[str, str]
    other_provider_key: str = ""
    extra: dict[str, object] = field(default_factory=dict)


async def add_unit(
    db: Database,
    settings: Settings,
    location_id: uuid.UUID,
    *,
    name: str,
    care_type: CareType,
    free: int,
    capacity: int = 10,
    target_groups: tuple[TargetGroup, ...] = (TargetGroup.SOMATIC,),
    features: tuple[Feature, ...] = (),
    sex_policy: SexPolicy = SexPolicy.ANY,
    reported_at: datetime | None = None,
) -> uuid.UUID:
    async with db.sessionmaker() as session:
        unit = await units_flow.create_unit(
            session,
            ADMIN,
            UnitCreate(
                location_id=location_id,
                name=name,
                care_type=care_type,
                target_groups=list(target_groups),
                features=list(features),
                sex_policy=sex_policy,
                staffed_capacity=capacity,
            ),
        )
        now = utcnow()
        await capacity_service.report_capacity(
            session,
            ADMIN,
            unit.id,
            CapacityReportIn(free=free, reported_at=reported_at or now - timedelta(minutes=10)),
            now=now,
            settings=settings,
        )
        await session.commit()
        return unit.id


async def seed_region(db: Database, settings: Settings) -> Seed:
    """Three subregions (Leiden, Den Haag, Gouda), one VVT per subregion, a hospital, a desk."""
    async with db.sessionmaker() as session:
        region = Region(code="west", name="ROAZ regio West")
        session.add(region)
        await session.flush()
        subs = {}
        for code, name, *_ in SUBREGIONS:
            subs[code] = Subregion(region_id=region.id, code=code, name=name)
            session.add(subs[code])
        await session.flush()
        for code, _, _, _, municipality in SUBREGIONS:
            session.add(Municipality(name=municipality, subregion_id=subs[code].id))
            for rank, other in enumerate(NEIGHBOURS[code], start=1):
                session.add(
                    SubregionNeighbour(
                        subregion_id=subs[code].id, neighbour_id=subs[other].id, rank=rank
                    )
                )
        await session.flush()
        orgs: dict[str, uuid.UUID] = {}
        locations: dict[str, uuid.UUID] = {}
        for key, name, kind in [
            ("vvt-leiden", "Topaz", OrganisationKind.VVT),
            ("vvt-den-haag", "Florence", OrganisationKind.VVT),
            ("vvt-gouda", "Zorgpartners Midden-Holland", OrganisationKind.VVT),
            ("hospital", "LUMC", OrganisationKind.HOSPITAL),
            ("rap", "RAP Zuid-Holland Noord", OrganisationKind.RAP),
        ]:
            org = await registry_service.create_organisation(
                session, ADMIN, OrganisationCreate(name=name, kind=kind, region_id=region.id)
            )
            orgs[key] = org.id
        for code, _, lat, lon, municipality in SUBREGIONS:
            loc = await registry_service.create_location(
                session,
                ADMIN,
                LocationCreate(
                    organisation_id=orgs[f"vvt-{code}"],
                    name=f"Huis {code}",
                    address="Hoofdstraat 1",
                    postcode="2300 AA",
                    municipality=municipality,
                    latitude=lat,
                    longitude=lon,
                ),
            )
            locations[code] = loc.id
        keys = {}
        owners = {
            Role.ADMIN: None,
            Role.PROVIDER: orgs["vvt-leiden"],
            Role.REFERRER: orgs["hospital"],
            Role.TRIAGIST: orgs["rap"],
            Role.ANALYST: orgs["rap"],
        }
        for role, org_id in owners.items():
            issued = await auth_service.issue_key(
                session, ApiKeyCreate(name=f"test {role}", organisation_id=org_id, roles=[role])
            )
            keys[role.value] = issued.key
        other_key = await auth_service.issue_key(
            session,
            ApiKeyCreate(
                name="other provider", organisation_id=orgs["vvt-den-haag"], roles=[Role.PROVIDER]
            ),
        )
        await session.commit()
    units = {
        "leiden-elv-high": await add_unit(
            db,
            settings,
            locations["leiden"],
            name="ELV HC Leiden",
            care_type=CareType.ELV_HIGH,
            free=2,
        ),
        "den-haag-elv-high": await add_unit(
            db,
            settings,
            locations["den-haag"],
            name="ELV HC Den Haag",
            care_type=CareType.ELV_HIGH,
            free=3,
            features=(Feature.ISOLATION,),
        ),
        "gouda-elv-high": await add_unit(
            db,
            settings,
            locations["gouda"],
            name="ELV HC Gouda",
            care_type=CareType.ELV_HIGH,
            free=1,
            sex_policy=SexPolicy.FEMALE,
        ),
        "leiden-grz": await add_unit(
            db, settings, locations["leiden"], name="GRZ Leiden", care_type=CareType.GRZ, free=4
        ),
    }
    return Seed(
        region_id=region.id,
        subregions={c: s.id for c, s in subs.items()},
        organisations=orgs,
        locations=locations,
        units=units,
        keys=keys,
        other_provider_key=other_key.key,
    )


# --- placements (issue 3) ----------------------------------------------------------------------


# Overrides for a placement triaged for GRZ: it fits the seed's "leiden-grz" unit (4 places).
GRZ: dict[str, object] = {
    "care_type": "grz",
    "triage": {"care_type": "grz", "rule_set": "west-2026.1"},
}


def placement_body(**overrides: object) -> dict[str, object]:
    """A valid ``POST /v1/placements`` body: a hospital in-patient with consent, triaged."""
    body: dict[str, object] = {
        "origin_setting": "hospital_ward",
        "patient_identifier": f"mrn-{uuid.uuid4().hex[:12]}",
        "birth_year": 1941,
        "sex": "female",
        "target_group": "somatic",
        "care_type": "elv_high",
        "features": [],
        "urgency": {"system": "nts", "code": "U3"},
        "consent_given_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "triage": {"care_type": "elv_high", "rule_set": "west-2026.1"},
    }
    body.update(overrides)
    return body


async def create_placements(
    db: Database, settings: Settings, seed: Seed, count: int, **overrides: object
) -> list[uuid.UUID]:
    """``count`` triaged placements with consent, written through the service as the referrer."""
    from app.audit.service import AuditContext
    from app.auth.service import KeyResolver
    from app.placement import service as placement_service
    from app.placement.schemas import PlacementCreate

    principal = await KeyResolver(db, ttl=0).resolve(f"Bearer {seed.keys['referrer']}")
    ctx = AuditContext(principal=principal, access_point="127.0.0.1")
    ids = []
    async with db.sessionmaker() as session:
        for _ in range(count):
            body = PlacementCreate.model_validate(placement_body(**overrides))
            created = await placement_service.create_placement(
                session, ctx, body, now=utcnow(), settings=settings
            )
            ids.append(created.id)
        await session.commit()
    return ids


@dataclass(frozen=True)
class Person:
    """A web user created for a test, with the password to log in with."""

    id: uuid.UUID
    email: str
    password: str
    name: str
    organisation_id: uuid.UUID | None
    roles: frozenset[Role]


async def add_person(
    db: Database,
    role: Role | frozenset[Role],
    organisation_id: uuid.UUID | None,
    *,
    name: str | None = None,
    email: str | None = None,
    password: str = "correct horse battery",
) -> Person:
    """A web user (argon2 password) with one role or a set of roles."""
    from app.auth import users as user_service

    roles = frozenset({role}) if isinstance(role, Role) else role
    label = "-".join(sorted(r.value for r in roles))
    email = email or f"{label}-{uuid.uuid4().hex[:6]}@example.nl"
    name = name or f"Test {label}"
    async with db.sessionmaker() as session:
        user = await user_service.add_user(
            session,
            name=name,
            email=email,
            organisation_id=organisation_id,
            roles=roles,
            password=password,
        )
        await session.commit()
    return Person(user.id, user.email, password, name, organisation_id, roles)
