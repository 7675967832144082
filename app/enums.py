"""Code lists shared by every domain (docs/domain.md §2-3, §14); stored as text."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


class CareType(StrEnum):
    """Capacity care types (docs/domain.md §3); the upper-case names there are the same things."""

    ELV_LOW = "elv_low"  # ELV laag complex
    ELV_HIGH = "elv_high"  # ELV hoog complex
    ELV_PALLIATIVE = "elv_palliative"  # ELV palliatief terminaal
    GRZ = "grz"  # geriatrische revalidatiezorg
    WLZ_CRISIS = "wlz_crisis"  # Wlz-crisisbed
    GGZ_CRISIS = "ggz_crisis"  # GGZ-crisisbed
    DISTRICT_NURSING_ACUTE = "district_nursing_acute"  # wijkverpleging acuut/onplanbaar
    DISTRICT_NURSING = "district_nursing"  # wijkverpleging regulier
    LOCAL_OTHER = "local_other"  # local beds with a free-text label
    RESPITE = "respite"  # logeeropvang: a short stay to relieve the informal carer
    OBSERVATION = "observation"  # observation bed (Zoetermeer REO: at most 9 days)


# Care types whose requests carry the regional admission guarantee (docs/domain.md §6.5)
GUARANTEED_CARE_TYPES = (CareType.RESPITE, CareType.OBSERVATION)


class TargetGroup(StrEnum):
    SOMATIC = "somatic"  # somatiek
    PSYCHOGERIATRIC = "psychogeriatric"  # psychogeriatrie (PG)
    PSYCHIATRIC = "psychiatric"  # GGZ


class PatientGroup(StrEnum):
    """The patient group of a referral, for bottlenecks by group (docs/domain.md §6.8)."""

    FRAIL_ELDERLY = "frail_elderly"  # kwetsbare ouderen
    DEMENTIA = "dementia"  # dementie
    PSYCHIATRIC = "psychiatric"  # psychiatrische problematiek
    PALLIATIVE = "palliative"  # palliatieve zorg
    OTHER = "other"


class AdvanceCarePlanning(StrEnum):
    """Whether advance care planning (proactieve zorgplanning) is recorded for the patient
    (docs/domain.md §6.8); absent on the referral = unknown."""

    RECORDED = "recorded"
    NOT_RECORDED = "not_recorded"


class Feature(StrEnum):
    ISOLATION = "isolation"
    OXYGEN = "oxygen"
    BARIATRIC = "bariatric"
    CLOSED_WARD = "closed_ward"  # gesloten afdeling, PG-suitable
    SINGLE_ROOM = "single_room"
    TUBE_FEEDING = "tube_feeding"
    IV_THERAPY = "iv_therapy"


class SexPolicy(StrEnum):
    """Which patients a unit's rooms take (room sex)."""

    ANY = "any"
    MALE = "male"
    FEMALE = "female"


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class OrganisationKind(StrEnum):
    VVT = "vvt"
    HOSPITAL = "hospital"
    GGZ = "ggz"
    GRZ = "grz"
    HAP = "hap"
    RAV = "rav"
    RAP = "rap"
    GP = "gp"


class NotAcceptingReason(StrEnum):
    """Why a unit takes no admissions for a while (``PUT /v1/units/{id}/status``)."""

    STAFF_SHORTAGE = "staff_shortage"
    OUTBREAK = "outbreak"
    RENOVATION = "renovation"
    FULL = "full"
    OTHER = "other"


def is_closed(reason: str | None, until: datetime | None, now: datetime) -> bool:
    """A unit is closed at ``now``: a not-accepting reason is set and its expected end (if any)
    lies after ``now``."""
    return reason is not None and (until is None or until > now)


class Role(StrEnum):
    PROVIDER = "provider"
    REFERRER = "referrer"
    TRIAGIST = "triagist"
    ANALYST = "analyst"
    ADMIN = "admin"


def mask_of(codes: Iterable[str], enum: type[StrEnum]) -> int:
    """Bitmask of a set of codes, by their position in the enum (for portable SQL filtering)."""
    members = list(enum)
    mask = 0
    for code in codes:
        mask |= 1 << members.index(enum(code))
    return mask


def codes_of(mask: int, enum: type[E]) -> list[E]:
    """The codes of a bitmask, in enum order (a new list: callers may change it)."""
    return list(_codes_of(mask, enum))


@lru_cache(maxsize=4096)
def _codes_of(mask: int, enum: type[E]) -> tuple[E, ...]:
    # Memoised: the search decodes two masks per hit, and iterating an enum is slow; the masks
    # a registry uses are few.
    return tuple(member for i, member in enumerate(enum) if mask & (1 << i))
