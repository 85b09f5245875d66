"""EN 442 in integers stays within its documented error of the exact formula."""

from __future__ import annotations

from types import ModuleType

import pytest


def test_capacity_within_half_a_watt_and_a_hundredth_of_a_percent(core: ModuleType) -> None:
    # The bound radiator.py documents: |error| <= 0.5 W + 0.011 % of the exact value,
    # over n = 1.0..2.0, dT = 0.1..100 K, rated up to 20 kW.
    worst = 0.0
    for exponent_permille in range(1000, 2001, 50):
        for rated_w in (300, 2290, 20000):
            for delta_dc in range(1, 1001):
                exact = rated_w * (delta_dc / 500) ** (exponent_permille / 1000)
                got = core.radiator.capacity_w(rated_w, exponent_permille, delta_dc)
                excess = (abs(got - exact) - 0.5) / exact
                worst = max(worst, excess)
    assert worst <= 0.00011


@pytest.mark.parametrize(("rated_w", "exponent_permille", "delta_dc", "expected_w"), [
    (2290, 1300, 500, 2290),  # at the rating point the rating itself, exactly
    (600, 1200, 500, 600),
    (1000, 1300, 0, 0),  # no temperature difference, no output
    (1000, 1300, -100, 0),  # water colder than the room: the core counts nothing
    (20000, 2000, 1500, 80000),  # beyond 100 K it counts as 100 K
])
def test_capacity_fixed_points(core: ModuleType, rated_w: int, exponent_permille: int, delta_dc: int,
                               expected_w: int) -> None:
    assert core.radiator.capacity_w(rated_w, exponent_permille, delta_dc) == expected_w


def test_more_temperature_difference_never_gives_less(core: ModuleType) -> None:
    for exponent_permille in (1200, 1300):
        outputs = [core.radiator.capacity_w(2290, exponent_permille, delta) for delta in range(0, 1001)]
        assert outputs == sorted(outputs)


@pytest.mark.parametrize(("full_w", "valve_pct", "efficiency_pct", "expected_w"), [
    (1000, 70, 120, 840),  # 70 % open gives 84 %
    (1000, 40, 120, 480),
    (1000, 50, 120, 600),
    (1000, 90, 120, 1000),  # 108 % is capped at the full output
    (1000, 0, 120, 0),
    (999, 70, 115, 804),  # 80.5 % of 999 = 804.195: rounded down
])
def test_effective_output_of_a_part_open_valve(core: ModuleType, full_w: int, valve_pct: int, efficiency_pct: int,
                                               expected_w: int) -> None:
    assert core.radiator.effective_w(full_w, valve_pct, efficiency_pct) == expected_w


def test_mean_water_is_setpoint_less_half_the_system_drop(core: ModuleType) -> None:
    assert core.radiator.mean_water_dc(700, 100) == 650
