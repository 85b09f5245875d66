"""The limit a node enforces, kept where a watchdog reset leaves it (RTC memory), for controller.boot."""

import struct

# docs/safety.md, rule 6: a node boots at min(failsafe current, the limit it
# enforced before the reset); after a power cut that is 0 (the car was not
# charging). The HAL keeps a few bytes across a watchdog reset (RTC memory on
# ESP32, cleared at power-on); anything that is not exactly what encode()
# wrote (power-on garbage, another program's bytes) reads as 0.

_MAGIC = b"LML1"
_CHECK = 0x2A5A5A5A  # the value xor this follows it: one flipped bit in either is caught
MAX_MA = (1 << 30) - 1


def encode(applied_ma: int) -> bytes:
    """The retained bytes for an enforced limit."""
    return _MAGIC + struct.pack(">ii", applied_ma, applied_ma ^ _CHECK)


def decode(data: bytes) -> int:
    """The limit encode() kept, or 0 when data is not such a record (a power cut)."""
    if len(data) != 12 or data[:4] != _MAGIC:
        return 0
    applied_ma, check = struct.unpack(">ii", data[4:])
    if check != applied_ma ^ _CHECK or not 0 <= applied_ma <= MAX_MA:
        return 0
    return int(applied_ma)
