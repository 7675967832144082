"""What the board and placement pages share: local time, durations and their Jinja filters.

Times are stored in UTC and shown in the region's time (Europe/Amsterdam).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.web.i18n import N_
from app.web.templating import env

TZ = ZoneInfo("Europe/Amsterdam")


def local(value: datetime | None, fmt: str = "%d-%m %H:%M") -> str:
    return "–" if value is None else value.astimezone(TZ).strftime(fmt)


def duration(minutes: int | None) -> str:
    """``2 d 3 h``, ``3 h 05 m``, ``12 m``: language-neutral units."""
    if minutes is None:
        return "–"
    days, rest = divmod(max(0, minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} m"
    return f"{mins} m"


def countdown(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(max(0, seconds), 60)
    return f"{minutes}:{secs:02d}"


env.globals["tz"] = TZ
env.filters["local"] = local
env.filters["duration"] = duration
env.filters["countdown"] = countdown


# Codes as people read them (English msgids, Dutch in the catalog); ``{{ _(code|label) }}``.
LABELS: dict[str, str] = {
    # care types
    "elv_low": N_("ELV low complex"),
    "elv_high": N_("ELV high complex"),
    "elv_palliative": N_("ELV palliative"),
    "grz": N_("geriatric rehabilitation (GRZ)"),
    "wlz_crisis": N_("Wlz crisis bed"),
    "ggz_crisis": N_("mental health crisis bed"),
    "district_nursing_acute": N_("district nursing, acute"),
    "district_nursing": N_("district nursing"),
    "local_other": N_("other local beds"),
    # target groups
    "somatic": N_("somatic"),
    "psychogeriatric": N_("psychogeriatric"),
    "psychiatric": N_("psychiatric"),
    # features
    "isolation": N_("isolation"),
    "oxygen": N_("oxygen"),
    "bariatric": N_("bariatric"),
    "closed_ward": N_("closed ward"),
    "single_room": N_("single room"),
    "tube_feeding": N_("tube feeding"),
    "iv_therapy": N_("IV therapy"),
    # sex and room policy
    "male": N_("male"),
    "female": N_("female"),
    "other": N_("other"),
    "unknown": N_("unknown"),
    "any": N_("any"),
    # states
    "requested": N_("requested"),
    "triaged": N_("triaged"),
    "offered": N_("offered"),
    "accepted": N_("accepted"),
    "transferred": N_("transferred"),
    "cancelled": N_("cancelled"),
    # origin settings
    "seh": N_("emergency department"),
    "hap": N_("GP out-of-hours post"),
    "rav": N_("ambulance"),
    "hospital_ward": N_("hospital ward"),
    "gp": N_("general practitioner"),
    "home": N_("home"),
    # transfer events
    "request_created": N_("referral created"),
    "offer_sent": N_("place held (offer sent)"),
    "offer_accepted": N_("offer accepted"),
    "offer_declined": N_("offer declined"),
    "hold_expired": N_("hold expired"),
    "escalated": N_("escalated"),
    "medically_ready": N_("medically ready"),
    "ready_revoked": N_("medically ready revoked"),
    "hospital_admitted": N_("admitted to another hospital"),
    "consent_given": N_("consent recorded"),
    # decline and cancel reasons
    "no_place_after_all": N_("no place after all"),
    "care_too_complex": N_("care too complex"),
    "target_group_mismatch": N_("target group does not fit"),
    "room_sex_mismatch": N_("room sex does not fit"),
    "isolation_not_possible": N_("isolation not possible"),
    "no_indication": N_("no indication"),
    "patient_refused": N_("patient refused"),
    "staff_shortage": N_("staff shortage"),
    # reasons a unit takes no admissions (staff_shortage and other above)
    "outbreak": N_("outbreak"),
    "renovation": N_("renovation"),
    "full": N_("full"),
    "died": N_("died"),
    "recovered": N_("recovered"),
    "home_without_care": N_("home without care"),
    "placed_elsewhere": N_("placed elsewhere"),
    "referrer_withdrew": N_("referrer withdrew"),
    "expired": N_("expired"),
    # escalation levels
    "subregion": N_("own subregion"),
    "region": N_("region"),
    "national": N_("national"),
    # Wlz status answers
    "none": N_("none"),
    "expected": N_("expected"),
    "granted": N_("granted"),
}


def label(code: object) -> str:
    """The English msgid of a code (an enum or its value); unknown codes are shown as they are."""
    text = str(getattr(code, "value", code))
    return LABELS.get(text, text)


env.filters["label"] = label
