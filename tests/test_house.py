"""The reference house, run for a day by the core's controller: safety and respect for room modes."""

from __future__ import annotations

import dataclasses
from types import ModuleType

import pytest

from loadmesh.companion import house, housebench


@pytest.fixture(scope="module", params=[False, True], ids=["sharing-off", "sharing-on"])
def one_day(request: pytest.FixtureRequest, core: ModuleType) -> housebench.RunResult:
    return housebench.run(core, request.param, days=1)


def test_the_boiler_never_fires_short_of_the_interlock(one_day: housebench.RunResult) -> None:
    assert one_day.interlock_short_s == 0.0
    assert one_day.boiler_starts > 0  # the house did need heat


def test_an_off_room_is_never_heated(one_day: housebench.RunResult) -> None:
    assert one_day.off_room_heated_min == 0
    assert one_day.frost_min == 0  # the study stays above 8 °C through the house's walls


def test_load_sharing_opens_only_auto_rooms(one_day: housebench.RunResult) -> None:
    assert one_day.off_or_manual_opened == 0
    spec = house.reference_house()
    modes = {room.id: room.mode for room in spec.rooms}
    for rid, minutes in one_day.tier_min.items():
        if modes[rid] != "auto":
            assert minutes == 0, rid
    if one_day.load_sharing:
        assert one_day.activations > 0
    else:
        assert one_day.load_sharing_min == 0


def test_rooms_reach_their_targets(one_day: housebench.RunResult) -> None:
    # Heating works at all: no room misses a scheduled target by 0.5 °C for more than 3 hours a day.
    for rid, minutes in one_day.below_target_min.items():
        assert minutes < 180, (rid, minutes)


def test_plant_radiator_follows_en442_at_the_rating_point() -> None:
    assert house.en442_w(2290, 1.3, 50.0) == pytest.approx(2290)
    assert house.en442_w(600, 1.2, 25.0) == pytest.approx(600 * 0.5 ** 1.2)
    assert house.en442_w(600, 1.2, -25.0) == pytest.approx(-600 * 0.5 ** 1.2)


def test_an_unheated_house_cools_towards_outside() -> None:
    spec = dataclasses.replace(house.reference_house(), start_air_c=20.0)
    plant = house.House(spec)
    for _ in range(48):
        plant.command({}, False, 700)
        plant.advance(3600.0)
    temps = [reading["temp_dc"] for reading in plant.readings()["rooms"].values()]  # type: ignore[union-attr]
    assert all(outside_dc < temp < 200 for temp in temps for outside_dc in [round(plant.outside_c() * 10)])
    assert plant.stats.energy_j == 0.0
    assert plant.stats.burner_starts == 0
