"""The whole heating control chain in one step: rooms, boiler, load sharing, valve arbitration."""

from . import boiler, roomctl, schedule, tiers, valves
from . import fieldcheck as fc
from .errors import FieldError

# In a house each concern runs where its sensors are: room control on the valve
# nodes, the boiler state machine, load sharing and the arbitration on the
# boiler node. This module chains the same functions for one controller that
# sees everything: the reference-house benchmark, the `heating` contract entry,
# and a single-node installation.
#
# step(config, state, inputs, now_ms) -> (outputs, new_state)
#   config  load_config(raw)
#   state   initial_state(config), or load_state(config, raw)
#   inputs  {"week_ms": ms since Monday 00:00, "enabled": bool (load-sharing
#            switch, default true),
#            "rooms": {room: {"mode", "temp_dc", "temp_age_ms", "manual_target_dc",
#                              "confirmed_pct", "correction_pct"}},
#            "boiler": {"flame": bool, "flow_dc", "return_dc"}}
# Order within a tick: room control, then the boiler (on the confirmed
# openings), then load sharing (on the boiler's state), then the valves (on
# the boiler's hold).

ROOM_KEYS = ("id", "rated_w", "exponent_permille", "schedule", "control", "load_sharing")


def load_config(raw: object) -> dict[str, object]:
    """{"rooms": [...], "room_control": {...}, "boiler": {...}, "load_sharing": {...}}, validated."""
    mapping = fc.obj(raw, "")
    fc.only(mapping, ("rooms", "room_control", "boiler", "load_sharing"), "")
    control_defaults = fc.obj(mapping.get("room_control", {}), "room_control")
    roomctl.load_config(control_defaults, "room_control")
    boiler_config = boiler.load_config(mapping.get("boiler", {}), "boiler")
    sharing = dict(fc.obj(mapping.get("load_sharing", {}), "load_sharing"))
    if "rooms" in sharing:
        raise FieldError("load_sharing.rooms", "is not a known field (room facts go in rooms[])")
    rooms_raw = fc.array_field(mapping, "rooms", "rooms")
    tier_rooms: list[object] = []
    rooms: list[dict[str, object]] = []
    for position, room_raw in enumerate(rooms_raw):
        path = fc.index("rooms", position)
        room = fc.obj(room_raw, path)
        fc.only(room, ROOM_KEYS, path)
        per_room = fc.obj(room.get("load_sharing", {}), fc.join(path, "load_sharing"))
        fc.only(per_room, ("lookahead_ms", "fallback_priority"), fc.join(path, "load_sharing"))
        control = dict(control_defaults)
        control.update(fc.obj(room.get("control", {}), fc.join(path, "control")))
        tier_room: dict[str, object] = {"id": room.get("id"), "rated_w": room.get("rated_w")}
        for key in ("exponent_permille",):
            if key in room:
                tier_room[key] = room[key]
        for key in ("lookahead_ms", "fallback_priority"):
            if key in per_room:
                tier_room[key] = per_room[key]
        tier_rooms.append(tier_room)
        rooms.append({"id": room.get("id"),
                      "schedule": schedule.load(room.get("schedule"), fc.join(path, "schedule")),
                      "control": roomctl.load_config(control, fc.join(path, "control"))})
    sharing["rooms"] = tier_rooms
    # Room facts are checked (ids, duplicates, ratings) as load-sharing rooms;
    # their errors name rooms[i] (and rooms[i].load_sharing) where they came from.
    tiers_config = tiers.load_config(sharing, "load_sharing", "rooms", True)
    boiler.check_interlock(boiler_config, len(rooms), "boiler")
    return {"rooms": rooms, "tiers": tiers_config, "boiler": boiler_config,
            "valves": valves.load_config({"min_valve_open_pct": boiler_config["min_valve_open_pct"]}, "boiler")}


def _rooms(config: dict[str, object]) -> list[dict[str, object]]:
    rooms = config["rooms"]
    assert isinstance(rooms, list)
    return rooms


def _dict(value: object) -> dict[str, object]:
    assert isinstance(value, dict)
    return value


def _ints(value: object) -> dict[str, int]:
    assert isinstance(value, dict)
    return value


def initial_state(config: dict[str, object]) -> dict[str, object]:
    """Every room quiet, boiler off, load sharing inactive (or disabled)."""
    return {"rooms": {room["id"]: roomctl.initial_state() for room in _rooms(config)},
            "tiers": tiers.initial_state(_dict(config["tiers"])),
            "valves": valves.initial_state(),
            "boiler": boiler.initial_state()}


def load_state(config: dict[str, object], raw: object) -> dict[str, object]:
    """A persisted chain state, validated."""
    mapping = fc.obj(raw, "state")
    fc.only(mapping, ("rooms", "tiers", "valves", "boiler"), "state")
    ids = [str(room["id"]) for room in _rooms(config)]
    rooms_raw = fc.obj_field(mapping, "rooms", "state.rooms")
    rooms: dict[str, object] = {}
    for rid in sorted(rooms_raw):
        if rid not in ids:
            raise FieldError("state.rooms." + fc.key_name(rid), "is not a configured room")
    for rid in ids:
        if rid not in rooms_raw:
            raise FieldError("state.rooms." + rid, "is missing")
        rooms[rid] = roomctl.load_state(rooms_raw[rid], "state.rooms." + rid)
    return {"rooms": rooms,
            "tiers": tiers.load_state(_dict(config["tiers"]), mapping.get("tiers"), "state.tiers"),
            "valves": valves.load_state(mapping.get("valves"), "state.valves", ids),
            "boiler": boiler.load_state(mapping.get("boiler"), "state.boiler")}


def load_inputs(config: dict[str, object], raw: object) -> dict[str, object]:
    """One tick's inputs, validated: every configured room must be there."""
    mapping = fc.obj(raw, "")
    fc.only(mapping, ("week_ms", "enabled", "rooms", "boiler"), "")
    rooms_raw = fc.obj_field(mapping, "rooms", "rooms")
    ids = [str(room["id"]) for room in _rooms(config)]
    fc.same_keys(rooms_raw, ids, "rooms")
    rooms: dict[str, object] = {}
    for rid in ids:
        path = "rooms." + rid
        room = fc.obj(rooms_raw[rid], path)
        fc.only(room, ("mode", "temp_dc", "temp_age_ms", "manual_target_dc", "confirmed_pct", "correction_pct"),
                path)
        mode = fc.choice_field(room, "mode", path, roomctl.MODES)
        manual = fc.opt_int_field(room, "manual_target_dc", path, schedule.TARGET_MIN_DC, schedule.TARGET_MAX_DC)
        if mode == "manual" and manual is None:
            raise FieldError(fc.join(path, "manual_target_dc"), "is missing for a room in manual mode")
        correction = fc.opt_int_field(room, "correction_pct", path, 0, 100)
        rooms[rid] = {"mode": mode,
                      "temp_dc": fc.opt_int_field(room, "temp_dc", path, -400, 600),
                      "temp_age_ms": fc.int_field(room, "temp_age_ms", path, 0, 1 << 62, 0),
                      "manual_target_dc": manual,
                      "confirmed_pct": fc.int_field(room, "confirmed_pct", path, 0, 100),
                      "correction_pct": correction}
    boiler_raw = fc.obj_field(mapping, "boiler", "boiler")
    fc.only(boiler_raw, ("flame", "flow_dc", "return_dc"), "boiler")
    return {"week_ms": fc.int_field(mapping, "week_ms", "", 0, schedule.WEEK_MS - 1),
            "enabled": fc.bool_field(mapping, "enabled", "", True),
            "rooms": rooms,
            "boiler": {"flame": fc.bool_field(boiler_raw, "flame", "boiler"),
                       "flow_dc": fc.opt_int_field(boiler_raw, "flow_dc", "boiler", -400, 1500),
                       "return_dc": fc.opt_int_field(boiler_raw, "return_dc", "boiler", -400, 1500)}}


def step(config: dict[str, object], state: dict[str, object], inputs: dict[str, object],
         now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
    """One control tick of the whole chain; inputs from load_inputs()."""
    week_ms = inputs["week_ms"]
    assert isinstance(week_ms, int)
    rooms_in = _dict(inputs["rooms"])
    room_states = _dict(state["rooms"])
    new_rooms: dict[str, object] = {}
    control: dict[str, dict[str, object]] = {}
    targets: dict[str, int] = {}
    confirmed: dict[str, int] = {}
    demand = False
    for room in _rooms(config):
        rid = room["id"]
        assert isinstance(rid, str)
        room_in = _dict(rooms_in[rid])
        plan = _dict(room["schedule"])
        target = room_in["manual_target_dc"] if room_in["mode"] == "manual" else schedule.target_at(plan, week_ms)
        assert isinstance(target, int)
        targets[rid] = target
        outputs, new_rooms[rid] = roomctl.step(
            _ints(room["control"]), _dict(room_states[rid]),
            {"mode": room_in["mode"], "target_dc": target, "temp_dc": room_in["temp_dc"],
             "temp_age_ms": room_in["temp_age_ms"]}, now_ms)
        control[rid] = outputs
        demand = demand or outputs["calling"] is True
        pct = room_in["confirmed_pct"]
        assert isinstance(pct, int)
        confirmed[rid] = pct
    boiler_in = _dict(inputs["boiler"])
    boiler_config = _dict(config["boiler"])
    boiler_out, boiler_state = boiler.step(
        _ints(config["boiler"]), _dict(state["boiler"]),
        {"demand": demand, "confirmed_pct": valves.confirmed_pct(_dict(state["valves"]), confirmed),
         "flame": boiler_in["flame"],
         "flow_dc": boiler_in["flow_dc"], "return_dc": boiler_in["return_dc"]}, now_ms)
    tier_rooms: dict[str, object] = {}
    for room in _rooms(config):
        rid = room["id"]
        assert isinstance(rid, str)
        room_in = _dict(rooms_in[rid])
        upcoming = schedule.next_block(_dict(room["schedule"]), week_ms) if room_in["mode"] == "auto" else None
        tier_rooms[rid] = {
            # The room's own verdict on its sensor decides for load sharing too.
            "mode": room_in["mode"], "temp_dc": None if control[rid]["stale"] else room_in["temp_dc"],
            "temp_age_ms": 0, "calling": control[rid]["calling"],
            "next_start_in_ms": None if upcoming is None else upcoming[0],
            "next_target_dc": None if upcoming is None else upcoming[1]}
    tiers_out, tiers_state = tiers.step(
        _dict(config["tiers"]), _dict(state["tiers"]),
        {"enabled": inputs["enabled"], "rooms": tier_rooms,
         "boiler": {"on": boiler_out["boiler_on"], "return_dc": boiler_in["return_dc"],
                    "setpoint_dc": boiler_config["flow_setpoint_dc"],
                    "last_cooldown_ms": boiler_out["last_cooldown_ms"], "cooldown": boiler_out["cooldown"]}}, now_ms)
    valve_rooms: dict[str, object] = {}
    for rid in sorted(control):
        valve_rooms[rid] = {"normal_pct": control[rid]["valve_pct"], "calling": control[rid]["calling"],
                            "correction_pct": _dict(rooms_in[rid])["correction_pct"],
                            "confirmed_pct": _dict(rooms_in[rid])["confirmed_pct"]}
    valves_out, valves_state = valves.step(
        _ints(config["valves"]), _dict(state["valves"]),
        {"rooms": valve_rooms, "load_sharing": tiers_out["valve_pct"], "hold": boiler_out["hold_valves"],
         "demand": demand, "firing": boiler_out["boiler_on"]}, now_ms)
    outputs = {
        "valve_pct": valves_out["valve_pct"],
        "source": valves_out["source"],
        "interlock": valves_out["interlock"],
        "calling": {rid: control[rid]["calling"] for rid in control},
        "room_reason": {rid: control[rid]["reason"] for rid in control},
        "target_dc": targets,
        "boiler_on": boiler_out["boiler_on"],
        "boiler_fsm": boiler_out["fsm"],
        "setpoint_dc": boiler_out["setpoint_dc"],
        "cooldown": boiler_out["cooldown"],
        "cooldown_started": boiler_out["cooldown_started"],
        "tiers_state": tiers_out["state"],
        "load_sharing": tiers_out["valve_pct"],
        "load_sharing_reasons": tiers_out["reasons"],
        "log": tiers_out["log"],
    }
    return outputs, {"rooms": new_rooms, "tiers": tiers_state, "valves": valves_state, "boiler": boiler_state}
