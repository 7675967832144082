"""The region file's shape and consistency rules (app/registry/regionfile.py); no database."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.registry import regionfile
from app.registry.regionfile import Problem, RegionFileInvalid

EXAMPLE = Path(__file__).parents[2] / "examples" / "region-zeeland.yaml"


@cache
def _example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


def example() -> dict[str, Any]:
    return copy.deepcopy(_example())


def problems(data: dict[str, Any]) -> list[Problem]:
    return regionfile.check(regionfile.parse(data))


def test_the_example_is_consistent_and_flattens_nested_and_top_level_items() -> None:
    file, flat = regionfile.load(example())
    assert file.region.code == "zeeland-example"
    assert [len(flat.organisations), len(flat.locations), len(flat.units)] == [6, 9, 10]
    by_code = {p.entry.code: p for p in flat.units}
    nested = by_code["zl-zw-vlissingen-palliatief"]
    assert (nested.parent, nested.pointer) == (
        "zl-zw-vlissingen",
        "#/organisations/2/locations/1/units/0",
    )
    apart = by_code["zl-zz-hulst-wijkverpleging"]
    assert (apart.parent, apart.pointer) == ("zl-zz-hulst", "#/units/0")
    locations = {p.entry.code: p.parent for p in flat.locations}
    assert locations["zl-zw-vlissingen"] == "zl-zorggroep-walcheren"
    assert regionfile.municipality_name(file, "GM0718") == "Vlissingen"
    assert regionfile.municipality_name(file, "Goes") == "Goes"
    with pytest.raises(KeyError):
        regionfile.municipality_name(file, "Utrecht")


def test_each_inconsistency_is_named_at_its_place() -> None:
    data = example()
    walcheren = data["subregions"][0]
    walcheren["neighbours"] = ["zl-bevelanden", "zl-atlantis", "zl-walcheren", "zl-bevelanden"]
    data["subregions"][2]["municipalities"].append({"cbs_code": "GM0687", "name": "Middelburg"})
    data["subregions"].append(
        {
            "code": "zl-walcheren",
            "name": "Twice",
            "municipalities": [{"cbs_code": "GM9999", "name": "X"}],
        }
    )
    org = data["organisations"][2]
    org["locations"][0]["units"][1]["code"] = "zl-zw-middelburg-elv-high"
    org["locations"][0]["municipality"] = "Utrecht"
    data["units"][0]["location"] = "zl-nowhere"
    data["locations"] = [
        {
            "code": "zl-loose",
            "name": "Loose",
            "address": "Weg 1",
            "postcode": "4331 AA",
            "municipality": "Middelburg",
            "latitude": 51.5,
            "longitude": 3.6,
        }
    ]
    data["organisations"][3]["locations"][0]["organisation"] = "zl-ggz"
    data["organisations"].append(copy.deepcopy(data["organisations"][0]) | {"locations": []})
    found = [(p.pointer, p.detail) for p in problems(data)]
    assert found == [
        (
            "#/subregions/3/code",
            "duplicate subregion code 'zl-walcheren' (first at #/subregions/0/code)",
        ),
        ("#/subregions/0/neighbours/1", "unknown neighbour 'zl-atlantis': no such subregion"),
        ("#/subregions/0/neighbours/2", "a subregion is not its own neighbour"),
        ("#/subregions/0/neighbours", "neighbour 'zl-bevelanden' listed 2 times"),
        (
            "#/subregions/2/municipalities/3",
            "municipality GM0687 (Middelburg) is in two subregions: 'zl-walcheren' "
            "(at #/subregions/0/municipalities/0) and 'zl-zeeuws-vlaanderen'",
        ),
        (
            "#/organisations/6/code",
            "duplicate organisation code 'zl-ziekenhuis' (first at #/organisations/0/code)",
        ),
        (
            "#/organisations/2/locations/0/units/1/code",
            "duplicate unit code 'zl-zw-middelburg-elv-high' "
            "(first at #/organisations/2/locations/0/units/0/code)",
        ),
        (
            "#/organisations/2/locations/0/municipality",
            "unknown municipality 'Utrecht': not in any subregion of the file",
        ),
        (
            "#/organisations/3/locations/0/organisation",
            "nested under organisation 'zl-zorggroep-bevelanden' but names 'zl-ggz'",
        ),
        ("#/locations/0/organisation", "required for a top-level location"),
        ("#/units/0/location", "unknown location 'zl-nowhere'"),
    ]


def test_a_municipality_listed_twice_or_named_with_two_codes() -> None:
    data = example()
    munis = data["subregions"][0]["municipalities"]
    munis.append({"cbs_code": "GM0687", "name": "Middelburg"})
    munis.append({"cbs_code": "GM0001", "name": "Veere"})
    assert [(p.pointer, p.detail) for p in problems(data)] == [
        ("#/subregions/0/municipalities/3", "municipality GM0687 listed twice"),
        (
            "#/subregions/0/municipalities/4",
            "municipality name 'Veere' has two CBS codes: GM0717",
        ),
    ]


def test_a_unit_apart_needs_its_location_and_a_nested_one_must_agree() -> None:
    data = example()
    data["units"][0].pop("location")
    data["organisations"][2]["locations"][0]["units"][0]["location"] = "zl-zw-vlissingen"
    assert [(p.pointer, p.detail) for p in problems(data)] == [
        (
            "#/organisations/2/locations/0/units/0/location",
            "nested under location 'zl-zw-middelburg' but names 'zl-zw-vlissingen'",
        ),
        ("#/units/0/location", "required for a top-level unit"),
    ]
    data = example()
    data["locations"] = [
        {
            "code": "zl-loose",
            "organisation": "zl-unknown",
            "name": "Loose",
            "address": "Weg 1",
            "postcode": "4331AA",
            "municipality": "Middelburg",
            "latitude": 51.5,
            "longitude": 3.6,
        }
    ]
    assert [(p.pointer, p.detail) for p in problems(data)] == [
        ("#/locations/0/organisation", "unknown organisation 'zl-unknown'")
    ]


def test_a_file_of_the_wrong_shape_names_every_field() -> None:
    data = example()
    data["region"]["code"] = "no spaces allowed"
    data["subregions"][1]["municipalities"][0]["cbs_code"] = "0664"
    unit = data["organisations"][2]["locations"][0]["units"][0]
    unit["care_type"] = "spa"
    unit["staffed_capacity"] = -1
    unit["colour"] = "blue"
    with pytest.raises(RegionFileInvalid) as caught:
        regionfile.parse(data)
    where = "#/organisations/2/locations/0/units/0"
    assert [p.pointer for p in caught.value.problems] == [
        "#/region/code",
        "#/subregions/1/municipalities/0/cbs_code",
        f"{where}/care_type",
        f"{where}/staffed_capacity",
        f"{where}/colour",
    ]
    data = example()
    data["units"][0] |= {"care_type": "local_other", "label": None}
    with pytest.raises(RegionFileInvalid) as caught:
        regionfile.parse(data)
    assert [(p.pointer, p.detail) for p in caught.value.problems] == [
        ("#/units/0", "Value error, label is required for care_type local_other")
    ]
    with pytest.raises(RegionFileInvalid) as caught:
        regionfile.parse(["not", "a", "mapping"])
    assert [p.pointer for p in caught.value.problems] == ["#/"]
    with pytest.raises(RegionFileInvalid):
        regionfile.load({**example(), "units": [{**example()["units"][0], "location": "x"}]})


def test_pointers_escape_slash_and_tilde() -> None:
    assert regionfile.pointer("a/b", "c~d", 3) == "#/a~1b/c~0d/3"
    assert Problem("#/x", "bad").as_error() == {"pointer": "#/x", "detail": "bad"}
