"""Heating load sharing: the three-tier cascade that opens extra rooms so the boiler stops short-cycling."""

from . import radiator
from .errors import FieldError

# step(config, state, inputs, now_ms) -> (outputs, new_state), on the boiler node
# (it sees cycling risk first). config comes from load_config(), state from
# initial_state() or load_state(); both are plain data that serialise to
# canonical JSON. step never mutates its arguments.
#
# When the rooms calling for heat cannot take the boiler's minimum output and
# there is evidence of cycling, extra rooms open, in tiers, each tier's rooms
# escalated before the next tier adds rooms:
#   tier 1  auto rooms whose next schedule block starts within their lookahead
#           and wants more than temp + pre_warm_margin; neediest first
#   tier 2  the same within lookahead x extended_window_multiplier
#   tier 3  auto rooms by fallback_priority, no temperature check, each for at
#           most tier_3_max_duration_ms; once released it rests before tier 3
#           may take it again, across activations (else every new activation
#           would give the same room another 15 minutes): tier_3_rest_ms after
#           a full service, proportionally less after a shorter one
# Once every tier is at its escalated opening and capacity is still short,
# rooms rise 10 % at a time up to their tier's cap (tier_N_max_pct).
# Rooms in off or manual mode are never opened; a room whose temperature is
# unknown (stale) is never opened and never counted.
#
# Evidence of cycling: a cooldown that began within cooldown_lookback_ms or is
# still in progress, or the boiler on with its return near the setpoint.
# Exits, none before min_activation_duration_ms: B, new rooms call and the
# calling rooms alone reach sufficient_capacity_w + deactivation_hysteresis_w;
# A, no trigger room calls any more; C, no load-sharing room remains. New
# callers that do not reach that capacity become the trigger set at once (an
# adaptation, not an exit), so a trigger room that stops while a new small
# caller goes on does not end load sharing. A load-sharing room that starts
# calling on its own goes back to normal control at once.

DISABLED = "DISABLED"
INACTIVE = "INACTIVE"
TIER1_ACTIVE = "TIER1_ACTIVE"
TIER1_ESCALATED = "TIER1_ESCALATED"
TIER2_ACTIVE = "TIER2_ACTIVE"
TIER2_ESCALATED = "TIER2_ESCALATED"
TIER3_ACTIVE = "TIER3_ACTIVE"
TIER3_ESCALATED = "TIER3_ESCALATED"
# The cascade's rungs in order; an active state names the furthest rung reached.
LADDER = (TIER1_ACTIVE, TIER1_ESCALATED, TIER2_ACTIVE, TIER2_ESCALATED, TIER3_ACTIVE, TIER3_ESCALATED)
STATES = (DISABLED, INACTIVE) + LADDER  # noqa: RUF005 (MicroPython has no * in displays)

MAX_ROOMS = 32
_DAY_MS = 86400000

# name: (default, low, high)
SETTINGS = {
    "min_calling_capacity_w": (3500, 0, 100000),
    "target_capacity_w": (4000, 0, 100000),
    "sufficient_capacity_w": (4000, 0, 100000),
    "deactivation_hysteresis_w": (200, 0, 10000),
    "cooldown_lookback_ms": (900000, 0, _DAY_MS),
    "return_temp_risk_delta_dc": (150, 0, 500),
    "min_activation_duration_ms": (300000, 0, _DAY_MS),
    "tier_3_max_duration_ms": (900000, 1000, _DAY_MS),
    "tier_3_rest_ms": (900000, 60000, _DAY_MS),
    "extended_window_multiplier": (2, 1, 4),
    "tier_1_initial_pct": (70, 10, 100),
    "tier_1_escalated_pct": (80, 10, 100),
    "tier_1_max_pct": (90, 10, 100),
    "tier_2_initial_pct": (40, 10, 100),
    "tier_2_escalated_pct": (50, 10, 100),
    "tier_2_max_pct": (60, 10, 100),
    "tier_3_initial_pct": (50, 10, 100),
    "tier_3_escalated_pct": (60, 10, 100),
    "tier_3_max_pct": (70, 10, 100),
    "flow_efficiency_pct": (120, 10, 400),
    "system_delta_t_dc": (100, 0, 400),
    "pre_warm_margin_dc": (5, 0, 100),
    "sensor_stale_ms": (900000, 1000, _DAY_MS),
}
ROOM_DEFAULTS = {"exponent_permille": 1300, "lookahead_ms": 3600000}
# Each tier's openings by name: initial, escalated, max (the step looks them up without making the names).
_PCT_KEYS = (("tier_1_initial_pct", "tier_1_escalated_pct", "tier_1_max_pct"),
             ("tier_2_initial_pct", "tier_2_escalated_pct", "tier_2_max_pct"),
             ("tier_3_initial_pct", "tier_3_escalated_pct", "tier_3_max_pct"))
_INITIAL = 0
_ESCALATED = 1
_MAX = 2


def load_config(raw: object, path: str = "", rooms_path: str | None = None,
                nested: bool = False) -> dict[str, object]:
    """The load-sharing settings with defaults filled in, validated; rooms keep their order.

    rooms_path names raw's rooms in errors (default path.rooms); nested: each
    room's lookahead_ms and fallback_priority came from its own load_sharing
    object, and errors name them there (heating.json's layout).
    """
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, ("enabled", "rooms") + tuple(sorted(SETTINGS)), path)  # noqa: RUF005
    config: dict[str, object] = {"enabled": fc.bool_field(mapping, "enabled", path, True)}
    for key in sorted(SETTINGS):
        default, low, high = SETTINGS[key]
        config[key] = fc.int_field(mapping, key, path, low, high, default)
    for tier in (1, 2, 3):
        names = ["tier_" + str(tier) + suffix for suffix in ("_initial_pct", "_escalated_pct", "_max_pct")]
        values = []
        for name in names:
            value = config[name]
            assert isinstance(value, int)
            values.append(fc.pct_step(value, fc.join(path, name)))
        if not values[0] <= values[1] <= values[2]:
            raise FieldError(fc.join(path, names[1]), str(values[1]) + " is not between " + names[0]
                             + " (" + str(values[0]) + ") and " + names[2] + " (" + str(values[2]) + ")")
    if _int(config, "target_capacity_w") < _int(config, "min_calling_capacity_w"):
        raise FieldError(fc.join(path, "target_capacity_w"),
                         str(config["target_capacity_w"]) + " is below min_calling_capacity_w")
    if rooms_path is None:
        rooms_path = fc.join(path, "rooms")
    rooms_raw = fc.array_field(mapping, "rooms", rooms_path)
    if not 1 <= len(rooms_raw) <= MAX_ROOMS:
        raise FieldError(rooms_path, "has " + str(len(rooms_raw)) + " rooms, not 1.." + str(MAX_ROOMS))
    rooms: list[dict[str, object]] = []
    seen: list[str] = []
    for position, room_raw in enumerate(rooms_raw):
        rooms.append(load_room(room_raw, fc.index(rooms_path, position), nested))
        rid = rooms[-1]["id"]
        assert isinstance(rid, str)
        if rid in seen:
            raise FieldError(fc.join(fc.index(rooms_path, position), "id"), fc.describe(rid) + " is used twice")
        seen.append(rid)
    config["rooms"] = rooms
    return config


def load_room(raw: object, path: str, nested: bool = False) -> dict[str, object]:
    """One room's load-sharing facts: id, rated_w, exponent_permille, lookahead_ms, fallback_priority."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    room = fc.obj(raw, path)
    fc.only(room, ("id", "rated_w", "exponent_permille", "lookahead_ms", "fallback_priority"), path)
    sharing_path = fc.join(path, "load_sharing") if nested else path
    return {
        "id": fc.room_id(fc.given(room, "id", fc.join(path, "id")), fc.join(path, "id")),
        "rated_w": fc.int_field(room, "rated_w", path, 1, radiator.RATED_MAX_W),
        "exponent_permille": fc.int_field(room, "exponent_permille", path, radiator.EXPONENT_MIN_PERMILLE,
                                          radiator.EXPONENT_MAX_PERMILLE, ROOM_DEFAULTS["exponent_permille"]),
        "lookahead_ms": fc.int_field(room, "lookahead_ms", sharing_path, 0, _DAY_MS, ROOM_DEFAULTS["lookahead_ms"]),
        "fallback_priority": fc.opt_int_field(room, "fallback_priority", sharing_path, 1, 999),
    }


def _int(mapping: dict[str, object], key: str) -> int:
    value = mapping[key]
    assert isinstance(value, int)
    return value


def _rooms(config: dict[str, object]) -> list[dict[str, object]]:
    rooms = config["rooms"]
    assert isinstance(rooms, list)
    return rooms


def _room(config: dict[str, object], rid: str) -> dict[str, object]:
    for room in _rooms(config):
        if room["id"] == rid:
            return room
    raise KeyError(rid)


def room_ids(config: dict[str, object]) -> list[str]:
    """The configured room ids, in config order."""
    return [str(room["id"]) for room in _rooms(config)]


def _fresh(state: str, rest: dict[str, int] | None = None) -> dict[str, object]:
    return {"state": state, "trigger_rooms": [], "trigger_capacity_w": 0, "activated_at_ms": None,
            "rooms": {}, "tier3_rest_until_ms": dict(rest) if rest else {}}


def initial_state(config: dict[str, object]) -> dict[str, object]:
    """The context before the first step: INACTIVE, or DISABLED when the config disables load sharing."""
    return _fresh(INACTIVE if config["enabled"] else DISABLED)


def load_state(config: dict[str, object], raw: object, path: str = "state") -> dict[str, object]:
    """A persisted context, validated against config."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, ("state", "trigger_rooms", "trigger_capacity_w", "activated_at_ms", "rooms",
                      "tier3_rest_until_ms"), path)
    known = room_ids(config)
    state = fc.choice_field(mapping, "state", path, STATES)
    context = _fresh(state)
    ids: list[str] = []
    for position, value in enumerate(fc.array(mapping.get("trigger_rooms", []), fc.join(path, "trigger_rooms"))):
        where = fc.index(fc.join(path, "trigger_rooms"), position)
        if value not in known:
            raise FieldError(where, fc.describe(value) + " is not a configured room")
        ids.append(str(value))
    context["trigger_rooms"] = sorted(ids)
    rest_path = fc.join(path, "tier3_rest_until_ms")
    rest_raw = fc.obj(mapping.get("tier3_rest_until_ms", {}), rest_path)
    rest: dict[str, int] = {}
    for rid in sorted(rest_raw):
        if rid not in known:
            raise FieldError(fc.join(rest_path, fc.key_name(rid)), "is not a configured room")
        rest[rid] = fc.integer(rest_raw[rid], fc.join(rest_path, rid), 0, 1 << 62)
    context["tier3_rest_until_ms"] = rest
    context["trigger_capacity_w"] = fc.int_field(mapping, "trigger_capacity_w", path, 0, 1 << 30, 0)
    context["activated_at_ms"] = fc.opt_int_field(mapping, "activated_at_ms", path, 0, 1 << 62)
    rooms_path = fc.join(path, "rooms")
    rooms = fc.obj(mapping.get("rooms", {}), rooms_path)
    active: dict[str, object] = {}
    # Only what step() could have produced: a tier the state has reached, an
    # opening within that tier's cap, and tier 3 only for a fallback room.
    top_tier = LADDER.index(state) // 2 + 1 if state in LADDER else 3  # not active: refused below anyway
    for rid in sorted(rooms):
        if rid not in known:
            raise FieldError(fc.join(rooms_path, fc.key_name(rid)), "is not a configured room")
        where = fc.join(rooms_path, rid)
        entry = fc.obj(rooms[rid], where)
        fc.only(entry, ("tier", "pct", "reason", "since_ms"), where)
        reason = fc.given(entry, "reason", fc.join(where, "reason"))
        if not isinstance(reason, str):
            raise FieldError(fc.join(where, "reason"), fc.describe(reason) + " is not a string")
        tier = fc.int_field(entry, "tier", where, 1, top_tier)
        cap = _int(config, "tier_" + str(tier) + "_max_pct")
        if tier == 3 and _room(config, rid)["fallback_priority"] is None:
            raise FieldError(fc.join(where, "tier"), "3 needs a fallback_priority, and room " + rid + " has none")
        active[rid] = {"tier": tier,
                       "pct": fc.pct_step(fc.int_field(entry, "pct", where, 10, cap), fc.join(where, "pct")),
                       "reason": reason,
                       "since_ms": fc.int_field(entry, "since_ms", where, 0, 1 << 62)}
    context["rooms"] = active
    if state in (DISABLED, INACTIVE):
        if active or context["activated_at_ms"] is not None or context["trigger_rooms"]:
            raise FieldError(fc.join(path, "state"),
                             fc.describe(state) + " cannot have rooms, triggers or activated_at_ms")
    elif context["activated_at_ms"] is None:
        raise FieldError(fc.join(path, "activated_at_ms"), "is missing for an active state")
    return context


def load_inputs(config: dict[str, object], raw: object, path: str = "") -> dict[str, object]:
    """One step's inputs, validated: every configured room must be there."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, ("enabled", "boiler", "rooms"), path)
    boiler_path = fc.join(path, "boiler")
    boiler_raw = fc.obj_field(mapping, "boiler", boiler_path)
    fc.only(boiler_raw, ("on", "return_dc", "setpoint_dc", "last_cooldown_ms", "cooldown"), boiler_path)
    boiler = {"on": fc.bool_field(boiler_raw, "on", boiler_path),
              "cooldown": fc.bool_field(boiler_raw, "cooldown", boiler_path, False),
              "return_dc": fc.opt_int_field(boiler_raw, "return_dc", boiler_path, -400, 1500),
              "setpoint_dc": fc.int_field(boiler_raw, "setpoint_dc", boiler_path, 200, 900),
              "last_cooldown_ms": fc.opt_int_field(boiler_raw, "last_cooldown_ms", boiler_path, 0, 1 << 62)}
    rooms_path = fc.join(path, "rooms")
    rooms_raw = fc.obj_field(mapping, "rooms", rooms_path)
    known = room_ids(config)
    for rid in sorted(rooms_raw):
        if rid not in known:
            raise FieldError(fc.join(rooms_path, fc.key_name(rid)), "is not a configured room")
    rooms: dict[str, object] = {}
    for rid in known:
        where = fc.join(rooms_path, rid)
        if rid not in rooms_raw:
            raise FieldError(where, "is missing")
        room = fc.obj(rooms_raw[rid], where)
        fc.only(room, ("mode", "temp_dc", "temp_age_ms", "calling", "next_start_in_ms", "next_target_dc"), where)
        rooms[rid] = {"mode": fc.choice_field(room, "mode", where, ("auto", "manual", "off")),
                      "temp_dc": fc.opt_int_field(room, "temp_dc", where, -400, 600),
                      "temp_age_ms": fc.int_field(room, "temp_age_ms", where, 0, 1 << 62, 0),
                      "calling": fc.bool_field(room, "calling", where),
                      "next_start_in_ms": fc.opt_int_field(room, "next_start_in_ms", where, 0, 1 << 30),
                      "next_target_dc": fc.opt_int_field(room, "next_target_dc", where, 50, 300)}
    return {"enabled": fc.bool_field(mapping, "enabled", path, True), "boiler": boiler, "rooms": rooms}


def _copy(context: dict[str, object]) -> dict[str, object]:
    rooms = context["rooms"]
    assert isinstance(rooms, dict)
    trigger = context["trigger_rooms"]
    rest = context["tier3_rest_until_ms"]
    assert isinstance(trigger, list) and isinstance(rest, dict)
    return {"state": context["state"], "trigger_rooms": list(trigger),
            "trigger_capacity_w": context["trigger_capacity_w"], "activated_at_ms": context["activated_at_ms"],
            "rooms": {rid: dict(rooms[rid]) for rid in rooms}, "tier3_rest_until_ms": dict(rest)}


class _Step:
    """What one step knows: per room its inputs, full capacity and staleness; the context it edits."""

    def __init__(self, config: dict[str, object], context: dict[str, object], inputs: dict[str, object],
                 now_ms: int) -> None:
        self.config = config
        self.context = context
        self.now_ms = now_ms
        self.log: list[str] = []
        boiler = inputs["boiler"]
        assert isinstance(boiler, dict)
        self.boiler = boiler
        rooms_in = inputs["rooms"]
        assert isinstance(rooms_in, dict)
        self.inputs = rooms_in
        mean_water = radiator.mean_water_dc(boiler["setpoint_dc"], _int(config, "system_delta_t_dc"))
        stale_ms = _int(config, "sensor_stale_ms")
        self.full_w: dict[str, int] = {}
        self.stale: list[str] = []
        self.calling: list[str] = []
        self.order: list[str] = []
        self.room_config: dict[str, dict[str, object]] = {}
        for room in _rooms(config):
            rid = room["id"]
            assert isinstance(rid, str)
            self.order.append(rid)
            self.room_config[rid] = room
            state = rooms_in[rid]
            temp = state["temp_dc"]
            if temp is None or state["temp_age_ms"] > stale_ms:
                self.stale.append(rid)
                self.full_w[rid] = 0
                continue
            self.full_w[rid] = radiator.capacity_w(_int(room, "rated_w"), _int(room, "exponent_permille"),
                                                   mean_water - temp)
            if state["calling"]:
                self.calling.append(rid)
        self.calling.sort()
        self.stale.sort()
        self.calling_w = 0
        for rid in self.calling:
            self.calling_w += self.full_w[rid]

    def active(self) -> dict[str, dict[str, object]]:
        rooms = self.context["rooms"]
        assert isinstance(rooms, dict)
        return rooms

    def total_w(self) -> int:
        """Calling rooms at full output plus load-sharing rooms at their valve opening."""
        total = self.calling_w
        active = self.active()
        efficiency = _int(self.config, "flow_efficiency_pct")
        # A sum of integers: the same in any order, so the rooms are not sorted (a list made at every
        # call, and the cascade calls this for every room it weighs).
        for rid in active:
            if rid not in self.calling:
                total += radiator.effective_w(self.full_w[rid], _int(active[rid], "pct"), efficiency)
        return total

    def stage(self) -> int:
        state = self.context["state"]
        return LADDER.index(state) if state in LADDER else -1

    def set_stage(self, index: int) -> None:
        if index > self.stage():
            self.log.append("state " + str(self.context["state"]) + " -> " + LADDER[index])
            self.context["state"] = LADDER[index]

    def remove(self, rid: str, why: str) -> None:
        """Release a room; a tier-3 room then rests, in proportion to its service, before tier 3 takes it again."""
        room = self.active().pop(rid)
        until = _rest_until(self.config, room, self.now_ms)
        if until > self.now_ms:
            rests = self.context["tier3_rest_until_ms"]
            assert isinstance(rests, dict)
            rests[rid] = until
        if why:
            self.log.append("release " + rid + ": " + why)


def _rest_until(config: dict[str, object], room: dict[str, object], now_ms: int) -> int:
    """Until when a room released at now_ms rests (now_ms: not at all)."""
    if room["tier"] != 3:
        return now_ms
    # tier_3_rest_ms after a full tier_3_max_duration_ms, less after a shorter service
    # (an exit, a call of its own): the room is never open longer than the maximum at a
    # stretch, nor more than max / (max + rest) of the time, and a room released after
    # a few minutes is not kept from the very next activation for the whole rest.
    limit_ms = _int(config, "tier_3_max_duration_ms")
    served_ms = now_ms - _int(room, "since_ms")
    if served_ms > limit_ms:  # released late (a sparse step): the limit is what it was owed
        served_ms = limit_ms
    return now_ms + served_ms * _int(config, "tier_3_rest_ms") // limit_ms


def reconfigured(old_config: dict[str, object], context: dict[str, object], new_config: dict[str, object],
                 now_ms: int) -> dict[str, object]:
    """The context for new settings taken at now_ms: nothing open (the cascade starts afresh under them),
    and the tier-3 rests kept, those its open rooms earned until now included, for the rooms still configured."""
    rests = context["tier3_rest_until_ms"]
    rooms = context["rooms"]
    assert isinstance(rests, dict) and isinstance(rooms, dict)
    kept: dict[str, int] = {}
    known = room_ids(new_config)
    for rid in sorted(rests):
        if rid in known and rests[rid] > now_ms:
            kept[rid] = rests[rid]
    for rid in sorted(rooms):
        until = _rest_until(old_config, rooms[rid], now_ms)
        if rid in known and until > now_ms:
            kept[rid] = until
    return _fresh(INACTIVE if new_config["enabled"] else DISABLED, kept)


def _cycling_risk(work: _Step) -> str | None:
    last = work.boiler["last_cooldown_ms"]
    if last is not None and 0 <= work.now_ms - last <= _int(work.config, "cooldown_lookback_ms"):
        return "recent cooldown"
    if work.boiler["cooldown"]:
        # Still cooling down from a cooldown that began longer ago than the lookback: the
        # burner relights the moment it ends, into the same small load.
        return "cooldown in progress"
    returned = work.boiler["return_dc"]
    if work.boiler["on"] and returned is not None and \
            returned > work.boiler["setpoint_dc"] - _int(work.config, "return_temp_risk_delta_dc"):
        return "high return temperature"
    return None


def _candidates(work: _Step, tier: int) -> list[str]:
    """The rooms that tier may add, best first (their reasons: _reason, made only for a room added)."""
    ranked: list[tuple[int, str]] = []
    active = work.active()
    rest = work.context["tier3_rest_until_ms"]
    assert isinstance(rest, dict)
    for rid in work.order:
        state = work.inputs[rid]
        if rid in active or state["mode"] != "auto" or rid in work.stale or state["calling"]:
            continue
        room = work.room_config[rid]
        if tier == 3:
            priority = room["fallback_priority"]
            if priority is None or work.now_ms < rest.get(rid, 0):
                continue
            assert isinstance(priority, int)
            ranked.append((priority, rid))
            continue
        window_ms = _window_ms(work, room, tier)
        starts_in = state["next_start_in_ms"]
        target = state["next_target_dc"]
        if starts_in is None or target is None or starts_in > window_ms:
            continue
        need_dc = target - state["temp_dc"]
        if need_dc <= _int(work.config, "pre_warm_margin_dc"):
            continue
        ranked.append((-need_dc, rid))
    ranked.sort()  # by priority or need, then id: each room once, so never a tie
    return [rid for _key, rid in ranked]


def _window_ms(work: _Step, room: dict[str, object], tier: int) -> int:
    """How far ahead tier 1 or 2 looks for a room's next block."""
    window_ms = _int(room, "lookahead_ms")
    if tier == 2:
        window_ms *= _int(work.config, "extended_window_multiplier")
    return window_ms


def _reason(work: _Step, rid: str, tier: int) -> str:
    """Why tier adds the room: its fallback priority (tier 3), or the window its next block starts in."""
    room = work.room_config[rid]
    if tier == 3:
        return "fallback_p" + str(room["fallback_priority"])
    return "schedule_" + str(_window_ms(work, room, tier) // 60000) + "m"


def _rung(work: _Step, index: int) -> bool:
    """Run one rung of the cascade; whether it opened or raised anything."""
    config = work.config
    target = _int(config, "target_capacity_w")
    active = work.active()
    if index < len(LADDER):
        tier = index // 2 + 1
        keys = _PCT_KEYS[tier - 1]
        if index % 2 == 0:  # add this tier's rooms until the target is met
            changed = False
            for rid in _candidates(work, tier):
                if work.total_w() >= target:
                    break
                reason = _reason(work, rid, tier)
                active[rid] = {"tier": tier, "pct": _int(config, keys[_INITIAL]), "reason": reason,
                               "since_ms": work.now_ms}
                work.log.append("open " + rid + " at " + str(active[rid]["pct"]) + "%: tier " + str(tier)
                                + " " + reason)
                changed = True
            return changed
        escalated = _int(config, keys[_ESCALATED])
        raised = [rid for rid in active if active[rid]["tier"] == tier and _int(active[rid], "pct") < escalated]
        raised.sort()  # mostly none: not a sorted copy of every open room at each tick
        for rid in raised:
            active[rid]["pct"] = escalated
        if raised:
            work.log.append("escalate tier " + str(tier) + " to " + str(escalated) + "%: " + ",".join(raised))
        return len(raised) > 0
    # Last resort: every tier at its escalated opening and still short. Raise
    # the rooms 10 % at a time, tier 1 first, up to each tier's cap.
    # Each room's sort key made once (MicroPython's sort calls a key function at every comparison).
    keyed = [(active[rid]["tier"], active[rid]["since_ms"], rid) for rid in active]
    keyed.sort()
    order = [rid for _tier, _since_ms, rid in keyed]
    keyed = []
    changed = False
    progressed = True
    while progressed and work.total_w() < target:
        progressed = False
        for rid in order:
            if work.total_w() >= target:
                break
            cap = _int(config, _PCT_KEYS[_int(active[rid], "tier") - 1][_MAX])
            if _int(active[rid], "pct") < cap:
                active[rid]["pct"] = _int(active[rid], "pct") + 10
                work.log.append("raise " + rid + " to " + str(active[rid]["pct"]) + "%")
                progressed = changed = True
    return changed


def _cascade(work: _Step) -> None:
    """Open or escalate until the target capacity is met, resuming at the current tier's rung."""
    # Not from tier 1 again at every shortfall: measured, worse on the reference house (docs/heating.md).
    stage = work.stage()
    start = 0 if stage < 0 else (stage // 2) * 2
    for index in range(start, len(LADDER) + 1):
        if work.total_w() >= _int(work.config, "target_capacity_w"):
            return
        if _rung(work, index) and index < len(LADDER):
            work.set_stage(index)


def _exit(work: _Step, why: str) -> None:
    work.log.append("deactivate: " + why)
    _release_all(work, INACTIVE)


def _release_all(work: _Step, state: str) -> None:
    """Every room released (tier-3 rooms then rest), and the context back to state."""
    for rid in sorted(work.active()):
        work.remove(rid, "")
    _reset(work.context, state)


def _reset(context: dict[str, object], state: str) -> None:
    """Back to a state without rooms; tier-3 rest times outlive the activation."""
    rest = context["tier3_rest_until_ms"]
    assert isinstance(rest, dict)
    context.clear()
    context.update(_fresh(state, rest))


def _try_entry(work: _Step) -> None:
    if not work.calling or work.calling_w >= _int(work.config, "min_calling_capacity_w"):
        return
    risk = _cycling_risk(work)
    if risk is None:
        return
    context = work.context
    context["trigger_rooms"] = list(work.calling)
    context["trigger_capacity_w"] = work.calling_w
    context["activated_at_ms"] = work.now_ms
    why = risk + ", calling " + ",".join(work.calling) + " take " + str(work.calling_w) + " W"
    first = len(work.log)
    _cascade(work)
    if not work.active():
        work.log.append("no room to open (" + why + "): accept cycling")
        _reset(context, INACTIVE)
        return
    work.log.insert(first, "activate: " + why)


def _evaluate_active(work: _Step) -> None:
    config = work.config
    context = work.context
    active = work.active()
    # Releasing a room is not an exit: these go at once, minimum duration or not.
    natural = False  # a room left because it calls on its own (what exit C is about)
    for rid in sorted(active):
        state = work.inputs[rid]
        if state["mode"] != "auto":
            work.remove(rid, "mode " + str(state["mode"]))
        elif rid in work.stale:
            work.remove(rid, "stale sensor")
        elif rid in work.calling:
            work.remove(rid, "calls on its own, back to normal control")
            natural = True
        elif active[rid]["tier"] == 3 and \
                work.now_ms - _int(active[rid], "since_ms") >= _int(config, "tier_3_max_duration_ms"):
            work.remove(rid, "tier 3 limit reached")
    trigger = context["trigger_rooms"]
    assert isinstance(trigger, list)
    joined = [rid for rid in work.calling if rid not in trigger]
    enough = _int(config, "sufficient_capacity_w") + _int(config, "deactivation_hysteresis_w")
    if joined and work.calling_w < enough:
        # B without its exit: the new calling pattern is still short, it becomes the trigger set.
        context["trigger_rooms"] = list(work.calling)
        context["trigger_capacity_w"] = work.calling_w
        work.log.append("trigger rooms now " + ",".join(work.calling))
        joined = []
    activated = context["activated_at_ms"]
    assert isinstance(activated, int)
    may_exit = work.now_ms - activated >= _int(config, "min_activation_duration_ms")
    if may_exit:
        if joined:
            _exit(work, "B, " + ",".join(joined) + " joined: calling rooms take " + str(work.calling_w) + " W")
            return
        trigger = context["trigger_rooms"]
        assert isinstance(trigger, list)
        if not [rid for rid in trigger if rid in work.calling]:
            _exit(work, "A, the trigger rooms stopped calling")
            return
        if not active and natural:
            _exit(work, "C, no load-sharing room remains")
            return
    if work.calling:  # with no room calling the boiler is going off: nothing to dump heat for
        # Rooms released for another reason (tier 3's limit, a mode change, a stale
        # sensor) are replaced as the cascade finds others: the need is unchanged.
        _cascade(work)
    if may_exit and not active:
        _exit(work, "no load-sharing room remains, and none to open")


def step(config: dict[str, object], state: dict[str, object], inputs: dict[str, object],
         now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
    """One evaluation: (outputs, new context). Inputs from load_inputs(); now_ms never goes back."""
    context = _copy(state)
    rest = context["tier3_rest_until_ms"]
    assert isinstance(rest, dict)
    for rid in sorted(rest):
        if rest[rid] <= now_ms:
            del rest[rid]
    work = _Step(config, context, inputs, now_ms)
    if not config["enabled"] or not inputs["enabled"]:
        if context["state"] != DISABLED:
            work.log.append("disabled: load sharing switched off")
        _release_all(work, DISABLED)
    else:
        if context["state"] == DISABLED:
            work.log.append("enabled")
            context["state"] = INACTIVE
        if context["state"] == INACTIVE:
            _try_entry(work)
        else:
            _evaluate_active(work)
    active = work.active()
    outputs = {
        "state": context["state"],
        "valve_pct": {rid: active[rid]["pct"] for rid in active},
        "reasons": {rid: active[rid]["reason"] for rid in active},
        "calling_w": work.calling_w,
        "total_w": work.total_w(),
        "stale": list(work.stale),
        "log": work.log,
    }
    return outputs, context
