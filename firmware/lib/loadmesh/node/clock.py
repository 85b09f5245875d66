"""Monotonic milliseconds that never wrap, unwrapped from time.ticks_ms()."""

import time

# time.ticks_ms() wraps: at 2^30 on ESP32 (12.4 days), at 2^62 on the 64-bit
# unix port. The core wants now_ms monotonic and unwrapped (peer ages, meter
# ages, guards), so every reading of the time goes through one Clock, which
# adds the forward distance between two readings to a running count.
#
# That distance is only unambiguous below half a period: now_ms() must be
# called at least every period / 2 (6.2 days on ESP32); the control tick calls
# it ten times a second. A reading that lies behind the last one (impossible
# with a real tick counter, unless that bound was broken) never moves the
# clock back, and the clock counts on from it: time can be lost then, but the
# clock never stops (a stopped clock would keep silent peers fresh).
#
# now_ms starts at 0 at boot. After 2^30 ms (12.4 days of uptime) it is no
# longer a small int on ESP32: arithmetic on it then allocates short-lived
# long ints, which gc reclaims. Nothing else changes.


class Clock:
    """now_ms(): milliseconds since this clock was made; monotonic, never wraps."""

    def __init__(self, period: int = 0) -> None:
        # Tick periods are powers of two. ticks_add(0, -1) is the largest tick
        # value, period - 1, on any port; masking with it (rather than taking
        # a modulo by the period, which is a long int on the 64-bit port)
        # keeps every step in small ints.
        self._mask = period - 1 if period > 0 else time.ticks_add(0, -1)
        self._last = self.ticks_ms()
        self._now_ms = 0

    def ticks_ms(self) -> int:
        """The raw, wrapping tick counter (a test overrides it)."""
        return time.ticks_ms()

    def now_ms(self) -> int:
        """Milliseconds since the clock was made, unwrapped."""
        raw = self.ticks_ms()
        forward = (raw - self._last) & self._mask
        self._last = raw
        if forward <= self._mask >> 1:
            self._now_ms += forward
        # else: behind the last reading. Hold, never go back, and count on from this reading.
        return self._now_ms
