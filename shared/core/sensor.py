"""Sensor sanitising: absurd readings rejected, integer smoothing, a bounded hold, then unknown."""

import math

from .errors import FieldError

# A reading from the HAL (int or float, in the sensor's own unit) becomes an
# integer in a fixed unit (mA, °C x 10) by an integer scale. NaN, infinities,
# non-numbers and values outside [low, high] are rejected and counted. Good
# values are smoothed by an exponential moving average kept in integers, so
# every runtime computes the same numbers. The last good value is held for
# hold_ms; after that the channel is "unknown", and DESIGN rule 5 applies: an
# unknown meter is overload (never zero) and an unknown room temperature takes
# the room out of the heating decision.

FRESH = "fresh"  # the latest reading was good, and is younger than hold_ms
HELD = "held"  # later readings were rejected; the last good one is younger than hold_ms
UNKNOWN = "unknown"  # no good reading, or the last is hold_ms old or older

OK = "ok"
NOT_NUMBER = "not_number"
NAN = "nan"
INFINITE = "infinite"
OUT_OF_RANGE = "out_of_range"

MAX_ABS_VALUE = 1 << 20  # bounds of [low, high]: the scaled average and its steps stay below 2^30
MAX_SCALE = 1000000
_FRACTION_BITS = 8  # the average carries 8 bits below the unit, so small steps are not lost
_HALF = 1 << (_FRACTION_BITS - 1)
_INFINITY = float("inf")


def to_fixed(raw: object, scale: int) -> tuple[str, int]:
    """(OK, raw x scale rounded half away from zero) for a finite int or float, else (reason, 0)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return NOT_NUMBER, 0
    if isinstance(raw, int):
        return OK, raw * scale
    if raw != raw:
        return NAN, 0
    if raw == _INFINITY or raw == -_INFINITY:
        return INFINITE, 0
    if raw * scale > 2 * MAX_ABS_VALUE or raw * scale < -2 * MAX_ABS_VALUE:
        return OUT_OF_RANGE, 0  # far outside any range; the exact check comes later
    # Exact, in integers: raw = mantissa x 2^exponent, and the mantissa times
    # 2^53 is a whole number on a 32-bit float as on a 64-bit one. No float
    # product is rounded, so one float value gives one integer on every runtime.
    # (The intermediate exceeds 2^30; this runs once per reading, not per tick.)
    mantissa, exponent = math.frexp(raw)
    product = int(math.ldexp(mantissa, 53)) * scale
    shift = 53 - exponent  # above 0: |raw| < 2^22 here
    magnitude = product if product >= 0 else -product
    rounded = (magnitude + (1 << (shift - 1))) >> shift
    return OK, rounded if product >= 0 else -rounded


class Channel:
    """One sanitised sensor channel (a meter phase, a room temperature)."""

    def __init__(self, low: int, high: int, hold_ms: int, alpha_permille: int = 1000, scale: int = 1,
                 fast_rise: bool = False) -> None:
        self.low = _check(low, "sensor.low", -MAX_ABS_VALUE, MAX_ABS_VALUE)
        self.high = _check(high, "sensor.high", low, MAX_ABS_VALUE)
        self.hold_ms = _check(hold_ms, "sensor.hold_ms", 1, (1 << 30) - 1)
        # The weight of a new reading, per mille; 1000 means no smoothing.
        self.alpha_permille = _check(alpha_permille, "sensor.alpha_permille", 1, 1000)
        self.scale = _check(scale, "sensor.scale", 1, MAX_SCALE)
        if fast_rise is not True and fast_rise is not False:
            raise FieldError("sensor.fast_rise", "must be true or false")
        # For a meter a rise is what hurts: fast_rise takes a higher reading
        # at once and smooths only the falls, so smoothing never hides an overload.
        self.fast_rise = fast_rise
        self.counts: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every reading: the channel is unknown until the next good one."""
        self._average = 0  # value << _FRACTION_BITS
        self._good_ms = 0
        self._has_value = False
        self._latest_good = False

    def update(self, raw: object, now_ms: int) -> str:
        """Take one reading made at now_ms; OK, or why it was rejected."""
        reason, value = to_fixed(raw, self.scale)
        if reason == OK and not self.low <= value <= self.high:
            reason = OUT_OF_RANGE
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if reason != OK:
            self._latest_good = False
            return reason
        scaled = value << _FRACTION_BITS
        if not self._has_value or self._age_ms(now_ms) >= self.hold_ms or (
                self.fast_rise and scaled > self._average):
            # After a gap the old average says nothing: start from the reading.
            self._average = scaled
        else:
            difference = scaled - self._average
            # |difference| x alpha / 1000 rounded toward zero, computed in two
            # parts so that no product reaches 2^30 (a heap int on ESP32); at
            # least one unit of the fraction, so the average reaches a steady
            # reading exactly and never overshoots it.
            magnitude = difference if difference >= 0 else -difference
            whole, rest = divmod(magnitude, 1000)
            step = whole * self.alpha_permille + rest * self.alpha_permille // 1000
            if step == 0 and magnitude:
                step = 1
            self._average += step if difference >= 0 else -step
        self._has_value = True
        self._good_ms = now_ms
        self._latest_good = True
        return OK

    def read(self, now_ms: int) -> tuple[str, int | None, int | None]:
        """(FRESH or HELD, value, age_ms) or (UNKNOWN, None, None) at now_ms."""
        if not self._has_value:
            return UNKNOWN, None, None
        age_ms = self._age_ms(now_ms)
        if age_ms >= self.hold_ms:
            return UNKNOWN, None, None
        value = (self._average + _HALF) >> _FRACTION_BITS
        return (FRESH if self._latest_good else HELD), value, age_ms

    def _age_ms(self, now_ms: int) -> int:
        # now_ms must be monotonic; a reading stamped after it is simply fresh.
        age = now_ms - self._good_ms
        return age if age > 0 else 0


def read_all(channels: list[Channel], now_ms: int) -> tuple[str, list[int] | None, int | None]:
    """The channels of one instrument (a meter's phases) as one reading: the worst status, the oldest age."""
    # One unknown phase makes the whole reading unknown: a meter with a
    # phase missing cannot say what the site draws.
    values: list[int] = []
    oldest_ms = 0
    status = FRESH
    for channel in channels:
        channel_status, value, age_ms = channel.read(now_ms)
        if value is None or age_ms is None:
            return UNKNOWN, None, None
        if channel_status == HELD:
            status = HELD
        values.append(value)
        oldest_ms = age_ms if age_ms > oldest_ms else oldest_ms
    return status, values, oldest_ms


def _check(value: object, field: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldError(field, "must be an integer")
    if value < low or value > high:
        raise FieldError(field, str(value) + " is outside " + str(low) + ".." + str(high))
    return value
