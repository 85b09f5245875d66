"""The ESP32 HAL's pure conversions: pilot duty and state, CT RMS, valve drive, DS18B20; host and unix port agree."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from loadmesh.core import pilot
from loadmesh.node import signals

from . import mpnode


def _scratch(raw: int) -> list[int]:
    """A DS18B20 scratchpad holding raw sixteenths of a degree, with its CRC."""
    data = bytes([raw & 0xFF, (raw >> 8) & 0xFF, 0x4B, 0x46, 0x7F, 0xFF, 0x01, 0x10])
    return [*data, signals.crc8_dallas(data)]


_SINE = [2000 + round(1000 * math.sin(2 * math.pi * k / 100)) for k in range(100)]

CASES: list[tuple[str, str, list[object], object]] = [
    # (about, function, arguments, expected)
    ("100 % duty is constant high", "duty_u16", [1000], 65535),
    ("16 A: 266 per mille, rounded down", "duty_u16", [266], 17432),
    ("10 % duty", "duty_u16", [100], 6553),
    ("96 %, the highest duty with a current (80 A)", "duty_u16", [960], 62913),
    ("96.1 % signals no current: off, not just under 96.1 % (80 A)", "duty_u16", [961], 65535),
    ("9.9 % signals no current: off", "duty_u16", [99], 65535),
    ("0 %: constant low", "duty_u16", [0], 0),
    ("an inverting driver", "duty_u16", [266, True], 65535 - 17432),
    ("an inverting driver, no charging", "duty_u16", [1000, True], 0),
    ("CP +12 V with the default front end", "cp_mv", [2350000, 1300000, 87500], 12000),
    ("CP -12 V", "cp_mv", [250000, 1300000, 87500], -12000),
    ("CP 0 V", "cp_mv", [1300000, 1300000, 87500], 0),
    ("noise rounds toward zero", "cp_mv", [1299990, 1300000, 87500], 0),
    ("A: no vehicle", "cp_state", [12000, -12000, "", True], "A"),
    ("B: vehicle connected, no PWM", "cp_state", [9000, 9000, "", False], "B"),
    ("B with PWM", "cp_state", [9100, -11900, "", True], "B"),
    ("C: charging", "cp_state", [6000, -12000, "", True], "C"),
    ("D: charging with ventilation", "cp_state", [3000, -12000, "", True], "D"),
    ("E: 0 V", "cp_state", [0, 0, "", False], "E"),
    ("F: -12 V", "cp_state", [-12000, -12000, "", False], "F"),
    ("no valid level is an error", "cp_state", [-6000, -6000, "", False], "E"),
    ("hysteresis keeps B just below its band", "cp_state", [7300, -12000, "B", True], "B"),
    ("the same level from nothing is C", "cp_state", [7300, -12000, "", True], "C"),
    ("beyond the hysteresis B becomes C", "cp_state", [7000, -12000, "B", True], "C"),
    ("hysteresis keeps C just above its band", "cp_state", [7800, -12000, "C", True], "C"),
    ("beyond it C becomes B", "cp_state", [8000, -12000, "C", True], "B"),
    ("no diode: the negative half is loaded", "cp_state", [6000, -8800, "", True], "E"),
    ("no PWM, no diode check", "cp_state", [6000, 6000, "", False], "C"),
    ("isqrt of 0", "isqrt", [0], 0),
    ("isqrt rounds down", "isqrt", [15], 3),
    ("isqrt exact", "isqrt", [16], 4),
    ("isqrt of 2^60", "isqrt", [1 << 60], 1 << 30),
    ("RMS of a constant (the bias alone) is 0", "rms", [[2000] * 50, 50], 0),
    ("RMS of a square wave is its amplitude", "rms", [[1700, 2300] * 50, 100], 300),
    ("RMS of a 1000 mV sine over one cycle", "rms", [_SINE, 100], 707),
    ("only the first count samples count", "rms", [[1000, 3000, 0, 0], 2], 1000),
    ("a 30 A/1 V CT at 1 V RMS", "ct_ma", [1000, 30000, 200], 30000),
    ("below the floor is noise", "ct_ma", [5, 30000, 200], 0),
    ("a valve at half", "valve_duty_u16", [50], 32767),
    ("a valve asked past 100 %", "valve_duty_u16", [130], 65535),
    ("70 C on a 0-100 C input, rounded down", "setpoint_duty_u16", [700, 0, 1000], 45874),
    ("30 C on a 20-90 C input", "setpoint_duty_u16", [300, 200, 900], 9362),
    ("below the scale: 0 %", "setpoint_duty_u16", [150, 200, 900], 0),
    ("above the scale: 100 %, never more", "setpoint_duty_u16", [950, 200, 900], 65535),
    ("not driven: 0 %", "setpoint_duty_u16", [None, 200, 900], 0),
    ("a servo closed", "servo_pulse_ns", [0, 1000, 2000], 1000000),
    ("a servo half open", "servo_pulse_ns", [50, 1000, 2000], 1500000),
    ("a servo asked below 0 %", "servo_pulse_ns", [-5, 1000, 2000], 1000000),
    ("feedback halfway", "feedback_pct", [1600, 300, 2900], 50),
    ("feedback falling as it opens", "feedback_pct", [1600, 2900, 300], 50),
    ("feedback past the open end, within the margin", "feedback_pct", [3000, 300, 2900], 100),
    ("feedback below the closed end, within the margin", "feedback_pct", [200, 300, 2900], 0),
    # The margin is 5 % of the 2600 mV span, 130 mV; further out the line is broken or shorted.
    ("feedback at the margin past the open end", "feedback_pct", [3030, 300, 2900], 100),
    ("feedback just beyond it: unknown, not open", "feedback_pct", [3031, 300, 2900], None),
    ("feedback at the margin below the closed end", "feedback_pct", [170, 300, 2900], 0),
    ("feedback just below it: unknown", "feedback_pct", [169, 300, 2900], None),
    ("a falling feedback's wire broken or shorted to ground: unknown, not open", "feedback_pct",
     [0, 2900, 300], None),
    ("feedback shorted to the supply: unknown, not open", "feedback_pct", [3300, 300, 2900], None),
    ("a falling feedback a little past its closed end", "feedback_pct", [2990, 2900, 300], 0),
    ("a feedback wired from 0 V at closed reads a broken wire as closed", "feedback_pct", [0, 0, 2500], 0),
    ("Maxim AN27's ROM code example", "crc8_dallas", [[0x02, 0x1C, 0xB8, 0x01, 0, 0, 0]], 0xA2),
    ("DS18B20 +25.0625 C", "ds18b20_dc", [_scratch(0x0191)], 251),
    ("DS18B20 -10.125 C", "ds18b20_dc", [_scratch(0xFF5E)], -101),
    ("DS18B20 +85 C", "ds18b20_dc", [_scratch(0x0550)], 850),
    ("DS18B20 -55 C", "ds18b20_dc", [_scratch(0xFC90)], -550),
    ("DS18B20 with a bad CRC", "ds18b20_dc", [[*_scratch(0x0191)[:8], 0]], None),
    ("DS18B20 on a shorted bus (all zero)", "ds18b20_dc", [[0] * 9], None),
]


def test_conversions(device_root: Path, tmp_path: Path) -> None:
    calls = [[function, args] for _, function, args, _ in CASES]
    path = tmp_path / "calls.json"
    path.write_text(json.dumps(calls))
    (on_micropython,) = mpnode.run("signals_check.py", str(path), device_root=device_root)
    assert isinstance(on_micropython, list)
    for (about, function, args, expected), micropython_result in zip(CASES, on_micropython, strict=True):
        if function in ("crc8_dallas", "ds18b20_dc"):
            args = [bytes(args[0])]  # type: ignore[arg-type]
        assert getattr(signals, function)(*args) == expected, about
        assert micropython_result == expected, about + " (unix port)"


@given(st.integers(min_value=0, max_value=1000))
@example(961)  # once found by the search: rounded down to just under 96.1 %, read as 80 A
@example(99)
def test_the_pilot_never_signals_more_than_the_core_rounded_to(permille: int) -> None:
    # What the car reads from the 16-bit duty is never above what the core's per mille signals.
    actual_permille = signals.duty_u16(permille) * 1000 / 65535
    if 100 <= permille <= 960:
        assert actual_permille <= permille
        assert permille - actual_permille < 0.02
    assert pilot.signalled_ma(math.floor(actual_permille)) <= pilot.signalled_ma(permille)


@given(st.integers(min_value=0, max_value=3300), st.integers(min_value=0, max_value=3300),
       st.integers(min_value=0, max_value=3300))
def test_feedback_out_of_range_is_unknown(mv: int, closed_mv: int, open_mv: int) -> None:
    # A position is only ever read from a voltage within the margin of the closed..open range.
    pct = signals.feedback_pct(mv, closed_mv, open_mv)
    low, high = min(closed_mv, open_mv), max(closed_mv, open_mv)
    margin = (high - low) * signals.FEEDBACK_MARGIN_PCT // 100
    if low - margin <= mv <= high + margin and low < high:
        assert pct is not None and 0 <= pct <= 100
    else:
        assert pct is None


@given(st.integers(min_value=0, max_value=1 << 62))
def test_isqrt(value: int) -> None:
    root = signals.isqrt(value)
    assert root * root <= value < (root + 1) * (root + 1)


@given(st.integers(min_value=-2000, max_value=2000), st.integers(min_value=1, max_value=4000),
       st.lists(st.integers(min_value=0, max_value=3300), min_size=1, max_size=120))
def test_rms_ignores_the_bias(bias: int, scale: int, samples: list[int]) -> None:
    # Shifting every sample by the same bias changes the RMS by at most the mean's rounding.
    shifted = [s + bias for s in samples]
    assert abs(signals.rms(samples, len(samples)) - signals.rms(shifted, len(shifted))) <= 1


@given(st.integers(min_value=-20000, max_value=20000), st.integers(min_value=-20000, max_value=20000),
       st.sampled_from(["", "A", "B", "C", "D", "E", "F"]), st.booleans())
def test_cp_state_is_a_state(high_mv: int, low_mv: int, previous: str, pwm_on: bool) -> None:
    state = signals.cp_state(high_mv, low_mv, previous, pwm_on)
    assert state in signals.PILOT_STATES
    # Far from every threshold the previous state does not matter.
    for nominal, expected in ((12000, "A"), (9000, "B"), (6000, "C"), (3000, "D"), (0, "E"), (-12000, "F")):
        if abs(high_mv - nominal) < 1000:
            assert signals.cp_state(high_mv, -12000, previous, False) == expected


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_the_flame_changes_only_once_the_input_held_its_level(reads: list[bool]) -> None:
    shown: bool | None = None
    differing = 0
    for position, lit in enumerate(reads):
        before = shown
        shown, differing = signals.flame_step(lit, shown, differing)
        if before is None:
            assert shown is lit  # the first read is taken as it is
        elif shown != before:
            # Changed: the input read this for the last FLAME_STEADY_POLLS reads in a row.
            run = reads[max(0, position - signals.FLAME_STEADY_POLLS + 1):position + 1]
            assert len(run) == signals.FLAME_STEADY_POLLS and all(read is lit for read in run)
        steady = signals.FLAME_STEADY_POLLS
        window = reads[position - steady + 1:position + 1] if position >= steady - 1 else []
        if window and all(read is lit for read in window):
            assert shown is lit  # a level held that long is always taken
