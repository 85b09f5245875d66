"""Pure signal conversions behind the ESP32 HAL: control pilot, CT current, valve drive and feedback, DS18B20, flame."""

import array

# Everything here is integer arithmetic on numbers the peripherals give, so
# it is tested on the host (unix port and CPython) and the HAL keeps only the
# peripheral calls. Voltages are in mV or uV, currents in mA, duty in per
# mille (the core's pilot module) or in the 16-bit units of PWM.duty_u16.

# IEC 61851-1 control pilot levels (the positive level of the PWM, or the
# constant level without PWM), nominal: A +12 V (no vehicle), B +9 V
# (vehicle connected), C +6 V (charging), D +3 V (charging, ventilation),
# E 0 V (short or no supply), F -12 V (EVSE not available). The decision
# thresholds are the midpoints; a reading in no band is an error ("E").
PILOT_STATES = ("A", "B", "C", "D", "E", "F")
_BAND_LOW_MV = (10500, 7500, 4500, 1500, -1500)  # A, B, C, D, E: level >= this
_F_HIGH_MV = -10500  # F: level <= this
_DIODE_LOW_MV = -10500  # with PWM on, the negative level must reach this (the vehicle's diode)
HYSTERESIS_MV = 400

U16_MAX = 65535


def duty_u16(permille: int, inverted: bool = False) -> int:
    """PWM.duty_u16 for a pilot duty in per mille (1000: constant high); rounded down, as the core rounds.

    A duty the core never signals a current with (1..99, 961..999: 0 A in
    pilot.signalled_ma) is constant high, the core's "off": rounded down,
    961 would come out just under 96.1 %, which a car reads as 80 A.
    """
    if permille > 960 or 0 < permille < 100:  # 1000 and over too: constant high
        value = U16_MAX
    elif permille <= 0:
        value = 0
    else:
        value = permille * U16_MAX // 1000
    return U16_MAX - value if inverted else value


def cp_mv(adc_uv: int, zero_uv: int, uv_per_v: int) -> int:
    """The CP voltage in mV from the ADC voltage behind a linear front end (zero_uv at 0 V, uv_per_v per volt)."""
    delta = (adc_uv - zero_uv) * 1000
    # Round toward zero, so that noise does not favour either side.
    return delta // uv_per_v if delta >= 0 else -((-delta) // uv_per_v)


def _band(level_mv: int) -> str:
    if level_mv <= _F_HIGH_MV:
        return "F"
    for index in range(5):
        if level_mv >= _BAND_LOW_MV[index]:
            return PILOT_STATES[index]
    return "E"  # between -10.5 V and -1.5 V: no valid level


def _in_band(state: str, level_mv: int, margin_mv: int) -> bool:
    if state == "F":
        return level_mv <= _F_HIGH_MV + margin_mv
    for index in range(5):
        if PILOT_STATES[index] == state:
            low = _BAND_LOW_MV[index] - margin_mv
            high = 1000000 if index == 0 else _BAND_LOW_MV[index - 1] + margin_mv
            return low <= level_mv < high
    return False


def cp_state(high_mv: int, low_mv: int, previous: str, pwm_on: bool) -> str:
    """The pilot state from the CP's high and low levels over a PWM period, with hysteresis around previous."""
    state = previous if previous and _in_band(previous, high_mv, HYSTERESIS_MV) else _band(high_mv)
    # With the PWM running, a vehicle's diode clamps the negative half to -12 V;
    # a B, C or D level without it is not a vehicle (a short, a finger, a fault).
    if pwm_on and state in ("B", "C", "D") and low_mv > _DIODE_LOW_MV:
        return "E"
    return state


def isqrt(value: int) -> int:
    """The integer square root (MicroPython has no math.isqrt)."""
    if value <= 0:
        return 0
    root = value
    guess = (root + 1) // 2
    while guess < root:
        root = guess
        guess = (root + value // root) // 2
    return root


def rms(samples: "list[int] | array.array[int]", count: int) -> int:
    """The RMS of the first count samples about their mean (the CT's bias removed), in their unit."""
    if count <= 0:
        return 0
    total = 0
    for index in range(count):
        total += samples[index]
    mean = total // count
    squares = 0
    for index in range(count):
        deviation = samples[index] - mean
        squares += deviation * deviation
    return isqrt(squares // count)


def ct_ma(rms_mv: int, ma_per_v: int, floor_ma: int) -> int:
    """The current through a CT from the RMS voltage across its burden; below floor_ma reads 0 (noise)."""
    current = rms_mv * ma_per_v // 1000
    return current if current >= floor_ma else 0


def valve_duty_u16(pct: int) -> int:
    """PWM.duty_u16 for a proportional (PWM-driven) valve actuator at pct percent."""
    pct = 0 if pct < 0 else 100 if pct > 100 else pct
    return pct * U16_MAX // 100


def setpoint_duty_u16(setpoint_dc: int | None, low_dc: int, high_dc: int) -> int:
    """PWM.duty_u16 for a flow setpoint on an input scaled from low_dc (0 %) to high_dc (100 %); None: 0 %.

    The boiler's 0-10 V setpoint input behind a PWM-to-voltage converter.
    Rounded down and clamped: the boiler is never asked for more than the
    setpoint, nor above high_dc.
    """
    if setpoint_dc is None or setpoint_dc <= low_dc:
        return 0
    if setpoint_dc >= high_dc:
        return U16_MAX
    return (setpoint_dc - low_dc) * U16_MAX // (high_dc - low_dc)


def servo_pulse_ns(pct: int, closed_us: int, open_us: int) -> int:
    """The servo pulse width (PWM.duty_ns) for pct percent open, between the closed and open pulses."""
    pct = 0 if pct < 0 else 100 if pct > 100 else pct
    return closed_us * 1000 + (open_us - closed_us) * 10 * pct


# How far outside its closed..open voltages a valve's feedback may read and
# still be taken as that end: 5 % of the span (130 mV on a 0.3-2.9 V
# feedback). That covers the ESP32 ADC's calibrated error (tens of mV), a
# divider's 1 % resistors and an actuator that travels a little past its end
# stop; a broken wire, or one shorted to ground or the supply, reads at a
# rail, further out whenever the ends are wired away from the rails.
FEEDBACK_MARGIN_PCT = 5


def feedback_pct(mv: int, closed_mv: int, open_mv: int) -> int | None:
    """A valve's position in percent from its feedback voltage (either direction); None if out of range.

    Within FEEDBACK_MARGIN_PCT of the span outside closed..open it clamps to
    0..100; further out the line is broken or shorted, and the position is
    unknown: never 100, which would count toward the boiler's interlock.
    """
    span = open_mv - closed_mv
    if span == 0:
        return None
    low, high = (closed_mv, open_mv) if span > 0 else (open_mv, closed_mv)
    margin = (high - low) * FEEDBACK_MARGIN_PCT // 100
    if mv < low - margin or mv > high + margin:
        return None
    pct = (mv - closed_mv) * 100 // span if span > 0 else (closed_mv - mv) * 100 // -span
    return 0 if pct < 0 else 100 if pct > 100 else pct


# The burner's flame input is read once a tick. A change is taken once the
# input has held its new level for FLAME_STEADY_POLLS reads in a row (300 ms):
# a contact's bounce or one glitch must not look like the flame going out,
# which with a hot flow starts a cooldown (docs/heating.md).
FLAME_STEADY_POLLS = 3


def flame_step(lit: bool, shown: bool | None, differing: int) -> tuple[bool, int]:
    """(the flame shown, reads in a row that differed from it) after a read of the input (lit); None: no read yet."""
    if shown is None or lit == shown:
        return lit, 0
    differing += 1
    if differing >= FLAME_STEADY_POLLS:
        return lit, 0
    return shown, differing


def crc8_dallas(data: bytes | bytearray) -> int:
    """The Dallas/Maxim 1-Wire CRC-8 (polynomial x^8 + x^5 + x^4 + 1)."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


# A DS18B20's temperature register holds 0x0550, +85.0 C, from power-up until
# its first conversion completes (no other raw value rounds to 850).
DS18B20_POWER_ON_DC = 850


def ds18b20_dc(scratch: bytes | bytearray) -> int | None:
    """deg C x 10 from a DS18B20's 9-byte scratchpad (rounded half up); None if it is not a valid one."""
    if len(scratch) != 9 or crc8_dallas(scratch[:8]) != scratch[8]:
        return None
    if not any(scratch):  # a shorted bus reads all zeros, which passes the CRC
        return None
    raw = scratch[0] | (scratch[1] << 8)  # sixteenths of a degree, two's complement
    if raw & 0x8000:
        raw -= 0x10000
    return (raw * 10 + 8) // 16
