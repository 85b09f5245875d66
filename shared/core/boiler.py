"""The boiler node's state machine: demand, minimum on/off times, interlock, pump overrun, cooldown."""

from .errors import FieldError

# step(config, state, inputs, now_ms) -> (outputs, new_state), each control tick.
#   config  from load_config()
#   state   initial_state(): {"fsm", "on_at_ms", "off_at_ms", "flame", "cooldown",
#           "cooldown_at_ms", "last_cooldown_ms", "cooldowns"}
#   inputs  {"demand": bool (some room calls), "confirmed_pct": int (the valve
#           openings the valve nodes confirm, each up to its last command, added
#           up: valves.confirmed_pct()), "flame": bool,
#           "flow_dc": int|None, "return_dc": int|None}
#   outputs {"fsm", "boiler_on", "setpoint_dc", "hold_valves", "cooldown",
#            "cooldown_started", "last_cooldown_ms", "reason"}
#
# States:
#   OFF           no demand
#   BLOCKED       demand, but the minimum off time runs or the interlock is short
#   ON            firing allowed (the boiler's own thermostat lights the burner)
#   PENDING_OFF   demand gone, held on until the minimum on time has passed
#   PUMP_OVERRUN  boiler off, pump running: valves stay open (hold_valves)
# The boiler is on only while the confirmed openings reach min_valve_open_pct;
# below it, it goes off at once, minimum on time or not.
#
# Cooldown (short-cycling protection): when the flame goes out while the state
# machine wants the boiler on, and the flow is at setpoint + flow_overheat_margin
# or the return at setpoint - return_high_delta, the water cannot take the heat.
# The setpoint drops to cooldown_setpoint_dc, so the burner cannot relight,
# until flow and return are both at or below max(setpoint - recovery_delta,
# recovery_min), or cooldown_max_ms has passed.

OFF = "OFF"
BLOCKED = "BLOCKED"
ON = "ON"
PENDING_OFF = "PENDING_OFF"
PUMP_OVERRUN = "PUMP_OVERRUN"
STATES = (OFF, BLOCKED, ON, PENDING_OFF, PUMP_OVERRUN)

_DAY_MS = 86400000
# name: (default, low, high)
SETTINGS = {
    "min_on_ms": (180000, 0, _DAY_MS),
    "min_off_ms": (180000, 0, _DAY_MS),
    "pump_overrun_ms": (180000, 0, _DAY_MS),
    "min_valve_open_pct": (100, 10, 1000),  # 0 would fire with every valve shut: no interlock
    "flow_setpoint_dc": (700, 300, 850),
    "cooldown_setpoint_dc": (300, 100, 500),
    "flow_overheat_margin_dc": (20, 0, 200),
    "return_high_delta_dc": (50, 0, 400),
    "recovery_delta_dc": (150, 0, 500),
    "recovery_min_dc": (450, 100, 850),
    "cooldown_max_ms": (1800000, 1000, _DAY_MS),
}
KEYS = tuple(sorted(SETTINGS))


def load_config(raw: object, path: str) -> dict[str, int]:
    """The boiler settings with defaults filled in, validated."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, KEYS, path)
    config: dict[str, int] = {}
    for key in KEYS:
        default, low, high = SETTINGS[key]
        config[key] = fc.int_field(mapping, key, path, low, high, default)
    if config["cooldown_setpoint_dc"] >= config["flow_setpoint_dc"]:
        raise FieldError(fc.join(path, "cooldown_setpoint_dc"),
                            str(config["cooldown_setpoint_dc"]) + " is not below flow_setpoint_dc")
    return config


def check_interlock(config: dict[str, int], rooms: int, path: str) -> None:
    """min_valve_open_pct must be reachable with the rooms' valves all open, or the boiler could never fire."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    most_pct = 100 * rooms
    if config["min_valve_open_pct"] > most_pct:
        raise FieldError(fc.join(path, "min_valve_open_pct"),
                         str(config["min_valve_open_pct"]) + " is more than the " + str(rooms)
                         + " rooms' valves open together (" + str(most_pct) + ")")


def initial_state() -> dict[str, object]:
    """Boiler off, never fired, no cooldown."""
    return {"fsm": OFF, "on_at_ms": None, "off_at_ms": None, "flame": False, "cooldown": False,
            "cooldown_at_ms": None, "last_cooldown_ms": None, "cooldowns": 0}


def load_state(raw: object, path: str) -> dict[str, object]:
    """A persisted boiler state, validated."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, tuple(sorted(initial_state())), path)
    state: dict[str, object] = {"fsm": fc.choice_field(mapping, "fsm", path, STATES)}
    for key in ("on_at_ms", "off_at_ms", "cooldown_at_ms", "last_cooldown_ms"):
        state[key] = fc.opt_int_field(mapping, key, path, 0, 1 << 62)
    state["flame"] = fc.bool_field(mapping, "flame", path)
    state["cooldown"] = fc.bool_field(mapping, "cooldown", path)
    state["cooldowns"] = fc.int_field(mapping, "cooldowns", path, 0, 1 << 62)
    if state["cooldown"] and state["cooldown_at_ms"] is None:
        raise FieldError(fc.join(path, "cooldown_at_ms"), "is missing while cooldown is true")
    return state


def _since(now_ms: int, then_ms: object, span_ms: int) -> bool:
    """Whether span_ms has passed since then_ms (never set: it has)."""
    return then_ms is None or (isinstance(then_ms, int) and now_ms - then_ms >= span_ms)


def _fsm(config: dict[str, int], state: dict[str, object], inputs: dict[str, object], now_ms: int) -> str:
    """Advance the state machine in state; returns the reason."""
    fsm = state["fsm"]
    demand = inputs["demand"] is True
    confirmed = inputs["confirmed_pct"]
    assert isinstance(confirmed, int)
    interlock_ok = confirmed >= config["min_valve_open_pct"]
    min_off_ok = _since(now_ms, state["off_at_ms"], config["min_off_ms"])
    if fsm in (ON, PENDING_OFF):
        if not interlock_ok:
            state["fsm"], state["off_at_ms"] = PUMP_OVERRUN, now_ms
            return "off at once, " + _short(config, confirmed)
        if demand:
            state["fsm"] = ON
            return "demand"
        if _since(now_ms, state["on_at_ms"], config["min_on_ms"]):
            state["fsm"], state["off_at_ms"] = PUMP_OVERRUN, now_ms
            return "no demand: pump overrun"
        state["fsm"] = PENDING_OFF
        return "no demand: minimum on time"
    if fsm == PUMP_OVERRUN:
        if demand and min_off_ok and interlock_ok:
            state["fsm"], state["on_at_ms"] = ON, now_ms
            return "demand"
        if _since(now_ms, state["off_at_ms"], config["pump_overrun_ms"]):
            state["fsm"] = BLOCKED if demand else OFF
            return "pump overrun done"
        return "pump overrun"
    if not demand:
        state["fsm"] = OFF
        return "no demand"
    if not min_off_ok:
        state["fsm"] = BLOCKED
        return "minimum off time"
    if not interlock_ok:
        state["fsm"] = BLOCKED
        return _short(config, confirmed)
    state["fsm"], state["on_at_ms"] = ON, now_ms
    return "demand"


def _short(config: dict[str, int], confirmed: int) -> str:
    """The reason the interlock gives (made only when it is the reason: a tick makes no text it drops)."""
    return "interlock: confirmed " + str(confirmed) + "% < " + str(config["min_valve_open_pct"]) + "%"


def step(config: dict[str, int], state: dict[str, object], inputs: dict[str, object],
         now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
    """One control tick of the boiler."""
    new = dict(state)
    was = new["fsm"]
    reason = _fsm(config, new, inputs, now_ms)
    flow = inputs["flow_dc"]
    returned = inputs["return_dc"]
    setpoint = config["flow_setpoint_dc"]
    started = False
    if new["cooldown"]:
        limit = setpoint - config["recovery_delta_dc"]
        if limit < config["recovery_min_dc"]:
            limit = config["recovery_min_dc"]
        if isinstance(flow, int) and isinstance(returned, int) and flow <= limit and returned <= limit:
            new["cooldown"] = False
            reason += "; cooldown over"
        elif _since(now_ms, new["cooldown_at_ms"], config["cooldown_max_ms"]):
            new["cooldown"] = False
            reason += "; cooldown timed out"
    elif state["flame"] and not inputs["flame"] and was == ON and new["fsm"] == ON:
        # The flame went out while we wanted heat: the boiler's own thermostat stopped it.
        hot_flow = isinstance(flow, int) and flow >= setpoint + config["flow_overheat_margin_dc"]
        hot_return = isinstance(returned, int) and returned >= setpoint - config["return_high_delta_dc"]
        if hot_flow or hot_return:
            started = True
            new["cooldown"] = True
            new["cooldown_at_ms"] = now_ms
            new["last_cooldown_ms"] = now_ms
            cooldowns = new["cooldowns"]
            assert isinstance(cooldowns, int)
            new["cooldowns"] = cooldowns + 1
            reason += "; cooldown: " + ("flow" if hot_flow else "return") + " too hot at flame off"
    new["flame"] = inputs["flame"] is True
    fsm = new["fsm"]
    outputs = {
        "fsm": fsm,
        "boiler_on": fsm in (ON, PENDING_OFF),
        "setpoint_dc": config["cooldown_setpoint_dc"] if new["cooldown"] else setpoint,
        "hold_valves": fsm in (PENDING_OFF, PUMP_OVERRUN),
        "cooldown": new["cooldown"],
        "cooldown_started": started,
        "last_cooldown_ms": new["last_cooldown_ms"],
        "reason": reason,
    }
    return outputs, new
