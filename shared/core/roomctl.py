"""Room control without load sharing: hysteresis call for heat, valve bands, frost protection."""

from .errors import FieldError

# step(config, state, inputs, now_ms) -> (outputs, new_state), once per control
# tick on the room's valve node.
#   config  from load_config()
#   state   {"calling": bool, "band": 0..3, "frost": bool}   (initial_state())
#   inputs  {"mode": "auto"|"manual"|"off", "target_dc": int, "temp_dc": int|None,
#            "temp_age_ms": int}
#   outputs {"calling": bool, "valve_pct": int, "reason": str, "stale": bool}
# A room calls at target - on_delta and stops at target + off_delta. While it
# calls, its valve opens by bands of the error (target - temp), moving up at
# once and down only past the threshold minus band_hysteresis_dc (no flapping
# on a sensor's last digit). Frost protection heats any room, off ones too,
# below frost_dc; a stale sensor means the temperature is unknown: no call.

MODES = ("auto", "manual", "off")

DEFAULTS = {
    "on_delta_dc": 3,  # call at target - 0.3 °C
    "off_delta_dc": 1,  # stop at target + 0.1 °C
    "band_1_error_dc": 3,  # error below 0.3 °C: band 1
    "band_2_error_dc": 8,  # error below 0.8 °C: band 2, else band max
    "band_1_pct": 40,
    "band_2_pct": 70,
    "band_max_pct": 100,
    "band_hysteresis_dc": 1,
    "frost_dc": 80,  # 8 °C
    "frost_off_delta_dc": 10,  # frost heating stops at 9 °C
    "sensor_stale_ms": 900000,  # 15 min without a reading: temperature unknown
}
_RANGES = {
    "on_delta_dc": (1, 50),
    "off_delta_dc": (0, 50),
    "band_1_error_dc": (0, 100),
    "band_2_error_dc": (1, 200),
    "band_1_pct": (10, 100),
    "band_2_pct": (10, 100),
    "band_max_pct": (10, 100),
    "band_hysteresis_dc": (0, 20),
    "frost_dc": (30, 150),
    "frost_off_delta_dc": (1, 50),
    "sensor_stale_ms": (1000, 86400000),
}
KEYS = tuple(sorted(DEFAULTS))


def load_config(raw: object, path: str) -> dict[str, int]:
    """The room-control settings with defaults filled in, validated."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, KEYS, path)
    config: dict[str, int] = {}
    for key in KEYS:
        low, high = _RANGES[key]
        config[key] = fc.int_field(mapping, key, path, low, high, DEFAULTS[key])
    if config["band_2_error_dc"] <= config["band_1_error_dc"]:
        raise FieldError(fc.join(path, "band_2_error_dc"),
                            str(config["band_2_error_dc"]) + " is not above band_1_error_dc")
    for key in ("band_1_pct", "band_2_pct", "band_max_pct"):
        fc.pct_step(config[key], fc.join(path, key))
    if not config["band_1_pct"] <= config["band_2_pct"] <= config["band_max_pct"]:
        raise FieldError(fc.join(path, "band_2_pct"),
                            str(config["band_2_pct"]) + " is not between band_1_pct and band_max_pct")
    return config


def initial_state() -> dict[str, object]:
    """A room that does not call."""
    return {"calling": False, "band": 0, "frost": False}


def load_state(raw: object, path: str) -> dict[str, object]:
    """A persisted room state, validated."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, ("calling", "band", "frost"), path)
    return {"calling": fc.bool_field(mapping, "calling", path),
            "band": fc.int_field(mapping, "band", path, 0, 3),
            "frost": fc.bool_field(mapping, "frost", path)}


def is_stale(config: dict[str, int], temp_dc: object, temp_age_ms: int) -> bool:
    """Whether the room's temperature is unknown: no reading, or one older than sensor_stale_ms."""
    return temp_dc is None or temp_age_ms > config["sensor_stale_ms"]


def _band(config: dict[str, int], band: int, error_dc: int) -> int:
    if error_dc < config["band_1_error_dc"]:
        wanted = 1
    elif error_dc < config["band_2_error_dc"]:
        wanted = 2
    else:
        wanted = 3
    if band == 0 or wanted >= band:
        return wanted
    thresholds = (0, 0, config["band_1_error_dc"], config["band_2_error_dc"])
    while band > wanted and error_dc < thresholds[band] - config["band_hysteresis_dc"]:
        band -= 1
    return band


def step(config: dict[str, int], state: dict[str, object], inputs: dict[str, object],
         now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
    """One control tick of one room; now_ms is unused today and kept for a uniform step API."""
    temp = inputs["temp_dc"]
    age = inputs["temp_age_ms"]
    assert isinstance(age, int)
    if is_stale(config, temp, age):
        return ({"calling": False, "valve_pct": 0, "reason": "stale_sensor", "stale": True},
                {"calling": False, "band": 0, "frost": False})
    assert isinstance(temp, int)
    # Frost heating ends frost_off_delta above where it began.
    frost = temp < config["frost_dc"] + (config["frost_off_delta_dc"] if state["frost"] else 0)
    if frost:
        return ({"calling": True, "valve_pct": config["band_max_pct"], "reason": "frost", "stale": False},
                {"calling": True, "band": 3, "frost": True})
    mode = inputs["mode"]
    if mode == "off":
        return ({"calling": False, "valve_pct": 0, "reason": "off", "stale": False},
                {"calling": False, "band": 0, "frost": False})
    target = inputs["target_dc"]
    assert isinstance(target, int)
    error = target - temp
    # Hysteresis: a calling room stops above target + off_delta, a quiet one starts at target - on_delta.
    calling = temp < target + config["off_delta_dc"] if state["calling"] else error >= config["on_delta_dc"]
    if not calling:
        return ({"calling": False, "valve_pct": 0, "reason": "satisfied", "stale": False},
                {"calling": False, "band": 0, "frost": False})
    previous = state["band"]
    assert isinstance(previous, int)
    band = _band(config, previous, error)
    pct = (0, config["band_1_pct"], config["band_2_pct"], config["band_max_pct"])[band]
    return ({"calling": True, "valve_pct": pct, "reason": "calling", "stale": False},
            {"calling": True, "band": band, "frost": False})
