"""The hold's suitability rule: care type as triaged, a room policy that takes the patient."""

from __future__ import annotations

import pytest

from app.enums import CareType, Sex, SexPolicy
from app.placement.suitability import ROOM_POLICIES, hold_misfits


@pytest.mark.parametrize("sex", list(Sex))
@pytest.mark.parametrize("policy", list(SexPolicy))
def test_room_policy_takes_the_patient_only_when_the_search_would_show_it(
    sex: Sex, policy: SexPolicy
) -> None:
    fits = policy == SexPolicy.ANY or policy.value == sex.value
    misfits = hold_misfits(
        care_type="elv_high", sex=sex.value, unit_care_type="elv_high", unit_sex_policy=policy
    )
    assert (misfits == []) is fits
    assert (policy.value in ROOM_POLICIES[sex]) is fits


@pytest.mark.parametrize("unit_care_type", list(CareType))
def test_only_the_triaged_care_type_fits(unit_care_type: CareType) -> None:
    misfits = hold_misfits(
        care_type="grz", sex="female", unit_care_type=unit_care_type, unit_sex_policy="any"
    )
    if unit_care_type == CareType.GRZ:
        assert misfits == []
    else:
        assert misfits == [f"the unit offers {unit_care_type}, the placement was triaged for grz"]


def test_every_misfit_is_named() -> None:
    assert hold_misfits(
        care_type="elv_low", sex="male", unit_care_type="elv_high", unit_sex_policy="female"
    ) == [
        "the unit offers elv_high, the placement was triaged for elv_low",
        "the unit's rooms are for female patients, the patient is male",
    ]


def test_an_unknown_sex_takes_mixed_rooms_only() -> None:
    assert hold_misfits(care_type="grz", sex="x", unit_care_type="grz", unit_sex_policy="any") == []
    assert hold_misfits(care_type="grz", sex="x", unit_care_type="grz", unit_sex_policy="male")
