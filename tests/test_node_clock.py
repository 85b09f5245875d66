"""The node's clock: monotonic milliseconds across the tick counter's wrap, on the unix port."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import mpnode

WRAP = 1 << 30  # time.ticks_ms() wraps here on ESP32

CASES = [
    # (about, period, raw readings (the first when the clock is made), now_ms expected at each later reading)
    ("counts from 0 at start", WRAP, [5000, 5000, 5100, 7100], [0, 100, 2100]),
    ("across the ESP32 wrap", WRAP, [WRAP - 50, WRAP - 1, 3, 40], [49, 53, 90]),
    ("a reading behind the last one holds, then counts on from it", WRAP, [1000, 1500, 1490, 1600],
     [500, 500, 610]),
    ("a jump just under half a period still counts", WRAP, [0, WRAP // 2 - 1, WRAP // 2 + 9], [WRAP // 2 - 1,
                                                                                             WRAP // 2 + 9]),
    ("wrapping twice keeps counting past 2^30", WRAP, [0, WRAP // 2 - 10, WRAP - 20, 100, WRAP // 2],
     [WRAP // 2 - 10, WRAP - 20, WRAP + 100, WRAP + WRAP // 2]),
    ("a small period wraps the same way", 1 << 10, [1000, 1023, 5, 500], [23, 29, 524]),
    ("more than half a period between readings looks backward: held", 1 << 10, [0, 600, 700], [0, 100]),
    ("never stuck: one bad reading, then it counts again", WRAP, [0, 10, WRAP - 5, WRAP - 4, 2],
     [10, 10, 11, 17]),
]


@pytest.mark.parametrize(("about", "period", "readings", "expected"), CASES, ids=[c[0] for c in CASES])
def test_now_ms_unwraps(device_root: Path, about: str, period: int, readings: list[int],
                        expected: list[int]) -> None:
    out = mpnode.run("clock_check.py", str(period), *map(str, readings), device_root=device_root)
    assert out == [{"now_ms": expected}], about


def test_real_ticks_rise_from_zero(device_root: Path) -> None:
    out = mpnode.run("clock_check.py", "real", device_root=device_root)
    seen = out[0]["now_ms"]  # type: ignore[index]
    assert seen[0] < 50
    assert seen == sorted(seen) and seen[-1] > seen[0]
