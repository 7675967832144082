"""Dutch first, English second: gettext catalogs (Babel) and the choice of language per request.

The language comes from ``?lang=``, then the ``jp_lang`` cookie, then ``Accept-Language``;
Dutch when none of them names a language we have.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path
from typing import Any

LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES = ("nl", "en")
DEFAULT_LOCALE = "nl"
LANG_COOKIE = "jp_lang"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> gettext.NullTranslations:
    return gettext.translation("messages", localedir=LOCALE_DIR, languages=[locale], fallback=True)


def pick(value: str | None) -> str | None:
    """The supported locale ``value`` names (``en``, ``en-GB``, ``NL``), or None."""
    if not value:
        return None
    primary = value.strip().split("-")[0].split("_")[0].lower()
    return primary if primary in LOCALES else None


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (q-values honoured)."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = pick(tag)
        if locale is not None and quality > 0:
            ranked.append((-quality, index, locale))
    return min(ranked)[2] if ranked else None


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    return pick(query) or pick(cookie) or from_accept_language(accept_language) or DEFAULT_LOCALE


def N_(message: str) -> str:
    """Mark ``message`` for the catalog; it is translated where it is shown."""
    return message


class Translator:
    """``_("text")`` and ``_("Hello %(name)s", name=...)`` for one locale."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._t = translations(locale)

    def gettext(self, message: str, **values: Any) -> str:
        text = self._t.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text % {"num": n, **values}

    __call__ = gettext


# Role names as people read them (the codes stay English in the API).
ROLE_LABELS = {
    "provider": N_("provider"),
    "referrer": N_("referrer"),
    "triagist": N_("triagist"),
    "analyst": N_("analyst"),
    "admin": N_("admin"),
}

CARE_TYPE_LABELS = {
    "elv_low": N_("ELV low complex"),
    "elv_high": N_("ELV high complex"),
    "elv_palliative": N_("ELV palliative"),
    "grz": N_("Geriatric rehabilitation (GRZ)"),
    "wlz_crisis": N_("Wlz crisis"),
    "ggz_crisis": N_("Mental health crisis (GGZ)"),
    "district_nursing_acute": N_("District nursing, acute"),
    "district_nursing": N_("District nursing"),
    "local_other": N_("Other (local)"),
}

DECLINE_REASON_LABELS = {
    "no_place_after_all": N_("No place after all"),
    "care_too_complex": N_("Care too complex"),
    "target_group_mismatch": N_("Target group does not fit"),
    "room_sex_mismatch": N_("No room for this sex"),
    "isolation_not_possible": N_("Isolation not possible"),
    "no_indication": N_("No indication"),
    "patient_refused": N_("Patient refused"),
    "staff_shortage": N_("Staff shortage"),
    "other": N_("Other reason"),
}

SEX_LABELS = {
    "female": N_("female"),
    "male": N_("male"),
    "other": N_("other"),
    "unknown": N_("unknown"),
}
