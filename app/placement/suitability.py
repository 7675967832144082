"""Whether a unit can take a placement's patient: the rule a hold checks (pure, no I/O).

A hold is a binding promise of a place (docs/domain.md §12.6), so it is only placed on a unit of the
care type the placement was triaged for (a triagist deviates from the advice at triage, with a
reason: docs/domain.md §4) and whose room policy takes the patient's sex, the same room rule the
search applies. Target groups and features stay the provider's judgement: it declines with
``target_group_mismatch`` or ``isolation_not_possible`` (docs/domain.md §13).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.enums import Sex

# The unit room policies (sex_policy) that take a patient of each sex.
ROOM_POLICIES: Mapping[str, tuple[str, ...]] = {
    Sex.MALE: ("any", "male"),
    Sex.FEMALE: ("any", "female"),
    Sex.OTHER: ("any",),
    Sex.UNKNOWN: ("any",),
}


def hold_misfits(
    *, care_type: str, sex: str, unit_care_type: str, unit_sex_policy: str
) -> list[str]:
    """Why the unit cannot take the placement's patient; empty when it can."""
    misfits = []
    if unit_care_type != care_type:
        misfits.append(
            f"the unit offers {unit_care_type}, the placement was triaged for {care_type}"
        )
    if unit_sex_policy not in ROOM_POLICIES.get(sex, ("any",)):
        misfits.append(f"the unit's rooms are for {unit_sex_policy} patients, the patient is {sex}")
    return misfits
