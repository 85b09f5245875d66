"""EVSE control pilot per IEC 61851-1: current limit to PWM duty, in per mille."""

# Duty is in tenths of a percent so that the conversion stays in integers.
# Every rounding goes down: the current a car reads back from the duty is never
# above the limit it was given.

PILOT_OFF_PERMILLE = 1000  # 100 % duty: no PWM, the car may not draw current
PILOT_MIN_MA = 6000  # the lowest current the pilot can signal
PILOT_MAX_MA = 80000  # the highest (96 % duty)
_LOW_BAND_MAX_MA = 51000  # up to here: duty = A / 0.6
_LOW_BAND_MAX_PERMILLE = 850


def duty_permille(limit_ma: int) -> int:
    """Pilot duty for a current limit; below the pilot's minimum means no charging."""
    if limit_ma < PILOT_MIN_MA:
        return PILOT_OFF_PERMILLE
    if limit_ma > PILOT_MAX_MA:
        limit_ma = PILOT_MAX_MA
    if limit_ma <= _LOW_BAND_MAX_MA:
        return limit_ma // 60
    # Upper band: duty = A / 2.5 + 64. Between 51 A and 52.75 A that formula
    # falls below 85 %, which a car would read in the lower band; 85 % (51 A)
    # is then the highest safe duty.
    permille = limit_ma // 250 + 640
    return permille if permille > _LOW_BAND_MAX_PERMILLE else _LOW_BAND_MAX_PERMILLE


def signalled_ma(permille: int) -> int:
    """The current a car reads from a pilot duty; 0 where it may not charge."""
    if permille < 100 or permille > 960:
        return 0
    if permille <= _LOW_BAND_MAX_PERMILLE:
        return permille * 60
    return (permille - 640) * 250
