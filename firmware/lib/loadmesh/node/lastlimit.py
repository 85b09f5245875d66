"""What a node enforces, kept where a watchdog reset leaves it (RTC memory), for controller.boot."""

import struct

# docs/safety.md, rule 6: a node boots at min(failsafe current, the limit it
# enforced before the reset); after a power cut that is 0 (the car was not
# charging). Its exposure (what its car could still draw: a limit lowered less
# than ev_lag ago) is kept too, so that the node goes on telling its peers so
# after the reset. The HAL keeps a few bytes across a watchdog reset (RTC
# memory on ESP32, cleared at power-on); anything that is not exactly what
# encode() wrote (power-on garbage, another program's bytes, the older
# one-value record) reads as nothing kept.

_MAGIC = b"LML2"
_CHECK = 0x2A5A5A5A  # each value xor this follows it: one flipped bit anywhere is caught
MAX_MA = (1 << 30) - 1


def encode(applied_ma: int, exposure_ma: int) -> bytes:
    """The retained bytes for an enforced limit and the exposure then."""
    return _MAGIC + struct.pack(">iiii", applied_ma, applied_ma ^ _CHECK, exposure_ma, exposure_ma ^ _CHECK)


def decode(data: bytes) -> tuple[int, int]:
    """(applied_ma, exposure_ma) as encode() kept them, or (0, 0) when data is not such a record (a power cut)."""
    if len(data) != 20 or data[:4] != _MAGIC:
        return 0, 0
    applied_ma, applied_check, exposure_ma, exposure_check = struct.unpack(">iiii", data[4:])
    if applied_check != applied_ma ^ _CHECK or exposure_check != exposure_ma ^ _CHECK:
        return 0, 0
    if not 0 <= applied_ma <= MAX_MA or not 0 <= exposure_ma <= MAX_MA:
        return 0, 0
    return int(applied_ma), int(exposure_ma)
