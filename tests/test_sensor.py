"""Sensor sanitising: absurd readings never become numbers; smoothing in integers; hold, then unknown."""

from __future__ import annotations

import json
import math
import struct
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.companion.runtimes import Runtime
from loadmesh.core import canon


@pytest.mark.parametrize(("raw", "scale", "expected"), [
    (16, 1000, ("ok", 16000)),  # an int: exact
    (16.25, 1000, ("ok", 16250)),  # amps to mA
    (-3.125, 1000, ("ok", -3125)),  # export on a meter phase
    (21.5, 10, ("ok", 215)),  # °C to tenths
    (0.0005, 1000, ("ok", 1)),  # 0.0005 as a float is a hair above 0.0005: 0.5000000000000000104 -> 1
    (0.00049999, 1000, ("ok", 0)),
    (2.5, 1, ("ok", 3)),  # an exact half goes away from zero (not to even, as round() would)
    (-2.5, 1, ("ok", -3)),
    (-0.0, 1000, ("ok", 0)),
    (True, 1, ("not_number", 0)),  # a bool is not a reading
    (None, 1, ("not_number", 0)),  # the HAL had nothing
    ("16.2", 1, ("not_number", 0)),
    ([16], 1, ("not_number", 0)),
    (math.nan, 1000, ("nan", 0)),
    (math.inf, 1, ("infinite", 0)),
    (-math.inf, 1, ("infinite", 0)),
    (1e30, 1, ("out_of_range", 0)),  # far outside: refused before it becomes a huge int
    (-3e6, 1, ("out_of_range", 0)),
])
def test_to_fixed(core: ModuleType, raw: object, scale: int, expected: tuple[str, int]) -> None:
    assert core.sensor.to_fixed(raw, scale) == expected


@given(st.floats(min_value=-2000, max_value=2000), st.sampled_from([1, 10, 100, 1000]))
def test_to_fixed_is_exact_rounding(core: ModuleType, raw: float, scale: int) -> None:
    exact = Fraction(raw) * scale
    reason, value = core.sensor.to_fixed(raw, scale)
    assert reason == "ok"
    # Half away from zero, computed exactly: within half a unit, and on a tie, the larger magnitude.
    assert abs(Fraction(value) - exact) <= Fraction(1, 2)
    if abs(Fraction(value) - exact) == Fraction(1, 2):
        assert abs(value) > abs(exact)


def _channel(core: ModuleType, **options: Any) -> Any:
    settings_ = {"low": -100000, "high": 100000, "hold_ms": 5000, "alpha_permille": 1000, "scale": 1,
                 "fast_rise": False}
    settings_.update(options)
    return core.sensor.Channel(**settings_)


# (t_ms, reading or None for no reading, update result, status, value, age_ms): one channel,
# alpha 500 per mille, hold 5 s, fast_rise off.
SEQUENCE = [
    (0, None, None, "unknown", None, None),  # nothing yet: unknown, never 0
    (0, 1000, "ok", "fresh", 1000, 0),  # the first reading is taken as it is (no ramp from 0)
    (100, 0, "ok", "fresh", 500, 0),  # halfway
    (200, 0, "ok", "fresh", 250, 0),
    (300, math.nan, "nan", "held", 250, 100),  # a bad reading changes nothing but the status
    (400, 10**9, "out_of_range", "held", 250, 200),
    (500, 0, "ok", "fresh", 125, 0),
    (5499, None, None, "fresh", 125, 4999),  # no reading: still held by its age
    (5500, None, None, "unknown", None, None),  # hold_ms after the last good reading: unknown
    (6000, 2000, "ok", "fresh", 2000, 0),  # after a gap the old average is forgotten
]


def test_smoothing_hold_and_unknown(core: ModuleType) -> None:
    channel = _channel(core, alpha_permille=500)
    for t_ms, raw, update, status, value, age_ms in SEQUENCE:
        if raw is not None:
            assert channel.update(raw, t_ms) == update, t_ms
        assert channel.read(t_ms) == (status, value, age_ms), t_ms
    assert channel.counts == {"ok": 5, "nan": 1, "out_of_range": 1}


def test_fast_rise_takes_a_rise_at_once_and_smooths_falls(core: ModuleType) -> None:
    channel = _channel(core, alpha_permille=100, fast_rise=True)
    channel.update(10000, 0)
    channel.update(30000, 100)  # an overload appears: seen at once
    assert channel.read(100) == ("fresh", 30000, 0)
    channel.update(0, 200)  # it goes away: only slowly believed
    assert channel.read(200) == ("fresh", 27000, 0)


def test_a_meter_is_as_good_as_its_worst_phase(core: ModuleType) -> None:
    phases = [_channel(core, hold_ms=3000) for _ in range(3)]
    assert core.sensor.read_all(phases, 0) == ("unknown", None, None)  # nothing read yet
    for index, channel in enumerate(phases):
        channel.update(1000 * (index + 1), 0)
    assert core.sensor.read_all(phases, 0) == ("fresh", [1000, 2000, 3000], 0)
    phases[0].update(900, 500)
    phases[1].update(math.nan, 500)  # L2 rejected: held
    phases[2].update(3100, 500)
    assert core.sensor.read_all(phases, 600) == ("held", [900, 2000, 3100], 600)  # the oldest age: L2's
    phases[0].update(800, 3000)
    phases[2].update(3000, 3000)
    assert core.sensor.read_all(phases, 3000) == ("unknown", None, None)  # L2 is now 3 s old


@pytest.mark.parametrize(("options", "error"), [
    ({"low": 10, "high": 9}, "sensor.high: 9 is outside 10..1048576"),
    ({"low": -(1 << 20) - 1}, "sensor.low: -1048577 is outside -1048576..1048576"),
    ({"hold_ms": 0}, "sensor.hold_ms: 0 is outside 1..1073741823"),
    ({"alpha_permille": 0}, "sensor.alpha_permille: 0 is outside 1..1000"),
    ({"scale": 0}, "sensor.scale: 0 is outside 1..1000000"),
    ({"scale": 1.0}, "sensor.scale: must be an integer"),
    ({"fast_rise": 1}, "sensor.fast_rise: must be true or false"),
])
def test_bad_settings_are_named(core: ModuleType, options: dict[str, Any], error: str) -> None:
    with pytest.raises(core.errors.FieldError) as raised:
        _channel(core, **options)
    assert str(raised.value) == error


_readings = st.lists(st.integers(-50000, 50000), min_size=1, max_size=40)


def _settle(channel: Any, start_ms: int, steady: int, limit: int) -> list[int]:
    values = []
    for t_ms in range(start_ms, start_ms + limit):
        channel.update(steady, t_ms)
        values.append(channel.read(t_ms)[1])
        if values[-1] == steady:
            break
    return values


@given(_readings, st.integers(20, 1000), st.integers(-50000, 50000))
def test_the_average_stays_within_the_readings_and_reaches_a_steady_one_exactly(
        core: ModuleType, readings: list[int], alpha: int, steady: int) -> None:
    channel = _channel(core, alpha_permille=alpha)
    for t_ms, reading in enumerate(readings):
        channel.update(reading, t_ms)
        _, value, _ = channel.read(t_ms)
        assert min(readings[:t_ms + 1]) <= value <= max(readings[:t_ms + 1])
    # A steady reading is reached exactly (no stall a unit short), without overshoot.
    start = channel.read(len(readings) - 1)[1]
    values = _settle(channel, len(readings), steady, 5000)
    assert values[-1] == steady
    assert all(min(start, steady) <= v <= max(start, steady) for v in values)


def test_even_the_slowest_average_reaches_a_steady_reading(core: ModuleType) -> None:
    # alpha 1 per mille: a step of 0.1 % rounds to nothing near the end; the
    # minimum step of 1/256 unit still gets there.
    channel = _channel(core, alpha_permille=1)
    channel.update(0, 0)
    values = _settle(channel, 1, 1, 100000)
    assert values[-1] == 1
    assert values == sorted(values)


@given(_readings, st.integers(1, 1000))
def test_with_fast_rise_the_value_is_never_below_the_latest_reading(core: ModuleType, readings: list[int],
                                                                     alpha: int) -> None:
    # For a meter: smoothing may make an overload look longer, never smaller.
    channel = _channel(core, alpha_permille=alpha, fast_rise=True)
    for t_ms, reading in enumerate(readings):
        channel.update(reading, t_ms)
        assert channel.read(t_ms)[1] >= reading


@given(st.lists(st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.floats(allow_nan=True),
                          st.integers(-10**7, 10**7)), max_size=30))
def test_a_rejected_reading_never_changes_the_value(core: ModuleType, readings: list[object]) -> None:
    channel = _channel(core, alpha_permille=300, hold_ms=10**6)
    for t_ms, reading in enumerate(readings):
        before = channel.read(t_ms)[1]
        if channel.update(reading, t_ms) != "ok":
            assert channel.read(t_ms)[1] == before
            assert channel.read(t_ms)[0] in ("held", "unknown")
        else:
            assert channel.read(t_ms)[0] == "fresh"


# The same numbers on all four runtimes. Floats go through JSON, and
# MicroPython's single-precision parser does not round every decimal to the
# nearest float (7999.3125 comes out one ulp off): the readings here are
# dyadic with at most 7 significant digits, which it parses exactly.

def _short_dyadic(k: int, n: int) -> float:
    value = k / (1 << n)
    assert struct.unpack("f", struct.pack("f", value))[0] == value
    return value


_floats = st.builds(_short_dyadic, st.integers(-(1 << 16), 1 << 16), st.integers(0, 4)).filter(
    lambda v: len(repr(abs(v)).replace(".", "").lstrip("0")) <= 7)
_raw = st.one_of(_floats, st.integers(-2000, 2000), st.sampled_from(["NaN", "Infinity", "-Infinity", "x"]), st.none())


@settings(max_examples=30)
@given(st.lists(st.tuples(st.integers(0, 400), _raw), min_size=1, max_size=12), st.integers(1, 1000),
       st.booleans())
def test_the_same_numbers_on_every_runtime(core: ModuleType, all_runtimes: list[Runtime],
                                           steps: list[tuple[int, object]], alpha: int, fast_rise: bool) -> None:
    t_ms = 0
    plan = []
    for gap_ms, raw in steps:
        t_ms += gap_ms
        plan.append({"t_ms": t_ms} if raw is None else {"t_ms": t_ms, "raw": raw})
    request = {"low": -30000, "high": 30000, "hold_ms": 1000, "alpha_permille": alpha, "scale": 100,
               "fast_rise": fast_rise, "steps": plan}
    expected = core.entry.respond("sensor", json.loads(json.dumps(request)))
    assert expected.startswith('{"ok":')
    for runtime in all_runtimes:
        assert runtime.respond("sensor", request) == expected, runtime.name
    assert canon.dumps(json.loads(expected)) == expected
