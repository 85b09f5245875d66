"""What RTC memory keeps across a watchdog reset (firmware code on CPython, as virtual nodes run it)."""

from __future__ import annotations

import struct

from loadmesh.node import lastlimit


def test_the_limit_and_the_exposure_come_back_as_kept() -> None:
    assert lastlimit.decode(lastlimit.encode(16000, 32000)) == (16000, 32000)
    assert lastlimit.decode(lastlimit.encode(0, 0)) == (0, 0)


def test_anything_else_reads_as_nothing_kept() -> None:
    kept = lastlimit.encode(16000, 32000)
    # Every single flipped bit: a power-on pattern or a torn write never reads as a limit.
    for bit in range(len(kept) * 8):
        flipped = bytearray(kept)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert lastlimit.decode(bytes(flipped)) == (0, 0), bit
    assert lastlimit.decode(b"") == (0, 0)
    assert lastlimit.decode(kept[:-1]) == (0, 0)
    # The one-value record of the firmware before: its exposure is unknown, so it is not trusted.
    assert lastlimit.decode(b"LML1" + struct.pack(">ii", 16000, 16000 ^ 0x2A5A5A5A)) == (0, 0)
