"""The pilot duty never signals more than the limit, and is monotonic."""

from __future__ import annotations

from types import ModuleType

from hypothesis import given
from hypothesis import strategies as st


@given(st.integers(min_value=-10**6, max_value=2 * 10**5))
def test_car_never_reads_more_than_the_limit(core: ModuleType, limit_ma: int) -> None:
    duty = core.pilot.duty_permille(limit_ma)
    assert core.pilot.signalled_ma(duty) <= max(limit_ma, 0)


@given(st.integers(min_value=0, max_value=10**5), st.integers(min_value=0, max_value=10**5))
def test_more_current_never_lowers_the_signal(core: ModuleType, a_ma: int, b_ma: int) -> None:
    low, high = sorted((a_ma, b_ma))
    read_low = core.pilot.signalled_ma(core.pilot.duty_permille(low))
    read_high = core.pilot.signalled_ma(core.pilot.duty_permille(high))
    assert read_low <= read_high


def test_every_pilot_current_is_within_one_step(core: ModuleType) -> None:
    # The duty resolution is 0.1 %: 60 mA in the lower band, 250 mA in the upper.
    for limit_ma in range(6000, 80001, 7):
        read = core.pilot.signalled_ma(core.pilot.duty_permille(limit_ma))
        if 51000 < limit_ma < 52750:
            assert read == 51000  # the gap between the bands
        else:
            assert limit_ma - read < (60 if limit_ma <= 51000 else 250)
