"""EN 442 radiator output in integers: rated watts at ΔT50 scaled by (ΔT/50)^n."""

# Output = rated_w * (delta / 50 K) ** n, n being 1.3 for panels and 1.2 for
# towel rails. The power is computed as 2 ** (n * log2(delta / 50 K)) with an
# integer log2 (repeated squaring of a Q14 mantissa) and an integer exp2 (a
# table of 2 ** (j/16) and a cubic for the rest), so every runtime gives the
# same watts. Measured against the exact formula over n = 1.000..2.000,
# delta = 0.1..100 K and rated_w up to 20 kW: |error| <= 0.5 W (the final
# rounding) + 0.011 % of the exact value (tests/test_radiator.py checks it).
# Every intermediate stays below 2 ** 30 (a small int on ESP32), but for
# delta = 0.1 K with n > 1.86, where one product passes it and stays exact.

RATED_MAX_W = 20000
DELTA_MAX_DC = 1000  # 100 K between mean water and room: beyond any wet system
EXPONENT_MIN_PERMILLE = 1000
EXPONENT_MAX_PERMILLE = 2000

_FRAC = 14  # mantissa bits: a Q14 value squared stays below 2 ** 30
_ONE = 1 << _FRAC
_TWO = 2 << _FRAC
_LOG_FRAC = 16  # log2 results are Q16
_LOG_ONE = 1 << _LOG_FRAC

# round(2 ** (j / 16) * 2 ** 14) for j = 0..15
_EXP2_SIXTEENTHS = (16384, 17109, 17867, 18658, 19484, 20347, 21247, 22188,
                    23170, 24196, 25268, 26386, 27554, 28774, 30048, 31379)
_LN2_Q16 = 45426  # round(ln 2 * 2 ** 16)


def _log2_q16(value: int) -> int:
    """log2(value) in Q16 for 1 <= value < 2 ** 30."""
    exponent = 0
    while value >> (exponent + 1):
        exponent += 1
    mantissa = value << (_FRAC - exponent) if exponent <= _FRAC else value >> (exponent - _FRAC)
    fraction = 0
    # Each squaring doubles the log: its overflow past 2 is the next bit.
    for _ in range(_LOG_FRAC):
        mantissa = (mantissa * mantissa + (_ONE >> 1)) >> _FRAC
        fraction <<= 1
        if mantissa >= _TWO:
            mantissa = (mantissa + 1) >> 1
            fraction |= 1
    return (exponent << _LOG_FRAC) | fraction


def _exp2_q14(fraction_q16: int) -> int:
    """2 ** (fraction_q16 / 2 ** 16) in Q14, for 0 <= fraction_q16 < 2 ** 16."""
    base = _EXP2_SIXTEENTHS[fraction_q16 >> 12]
    rest = fraction_q16 & 0xFFF  # below 1/16: a cubic of e ** (rest * ln 2) is exact to 2e-7
    z = (rest * _LN2_Q16 + 32768) >> 16
    z2 = (z * z + 32768) >> 16
    z3 = (z2 * z + 32768) >> 16
    poly = _LOG_ONE + z + (z2 >> 1) + (z3 + 3) // 6
    return (base * poly + 32768) >> 16


_LOG2_50K = _log2_q16(500)  # the rating point, in deci-kelvin


def capacity_w(rated_w: int, exponent_permille: int, delta_dc: int) -> int:
    """Heat output in W of a radiator rated rated_w at ΔT50, at a mean-water-to-room ΔT in deci-kelvin."""
    if delta_dc <= 0 or rated_w <= 0:
        return 0
    if delta_dc > DELTA_MAX_DC:
        delta_dc = DELTA_MAX_DC
    scaled = exponent_permille * (_log2_q16(delta_dc) - _LOG2_50K)
    # Round half away from zero, explicitly: // floors negative values.
    power_q16 = (scaled + 500) // 1000 if scaled >= 0 else -((500 - scaled) // 1000)
    whole = power_q16 >> _LOG_FRAC  # floor, also for negative powers
    product = rated_w * _exp2_q14(power_q16 & (_LOG_ONE - 1))
    shift = _FRAC - whole
    if shift <= 0:
        return product << -shift
    return (product + (1 << (shift - 1))) >> shift


def effective_w(full_w: int, valve_pct: int, flow_efficiency_pct: int) -> int:
    """What a radiator giving full_w when open gives at valve_pct: full × pct × efficiency, capped at full."""
    share = valve_pct * flow_efficiency_pct  # in 1/10000 of the full output
    if share >= 10000:
        return full_w
    if share <= 0:
        return 0
    return full_w * share // 10000


def mean_water_dc(flow_setpoint_dc: int, system_delta_t_dc: int) -> int:
    """Mean water temperature the radiators see when the boiler holds its flow setpoint."""
    return flow_setpoint_dc - system_delta_t_dc // 2
