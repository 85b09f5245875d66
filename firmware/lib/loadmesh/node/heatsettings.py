"""The heating settings of valve and boiler nodes (heating.json in the node's file system), checked."""

from loadmesh.core import boiler, heartbeat, roomctl, schedule, tiers, valves
from loadmesh.core import fieldcheck as fc
from loadmesh.core.errors import FieldError

# Written by the installer or the companion beside node.json (the simulator
# builds them from its house: companion/sim/heatcfg.py). Not part of the group
# config: each node holds what only it needs.
#   valve node   {"room": {"mode": "auto"|"manual"|"off", "manual_target_dc": int
#                 (manual), "schedule": {schedule.load format}, "control":
#                 {roomctl settings}}}
#   boiler node  {"rooms": [{"id": valve node id, "rated_w", "exponent_permille",
#                 "load_sharing": {"lookahead_ms", "fallback_priority"}}],
#                 "boiler": {boiler settings}, "load_sharing": {tiers settings}}

HEATING = "heating.json"
# The most rooms a boiler node takes. What its 12K-word heap holds with 2K words to spare, load sharing
# running and /status asked every second (tools/node_memory_rooms.py; docs/heating.md has the figures: 8
# rooms run on 46K words with every poll answered since an HTTP answer is sent in pieces, where its /status
# in one block was once answered 503 in a 300 s run; with 9 the boiler node reset on 46K words). Never
# more than the valve overrides its heartbeat carries (heartbeat.MAX_OVERRIDES, 12): pump overrun holds
# every room at once, and a node that could not send that heartbeat would halt at every heating cycle.
MAX_ROOMS = 8
assert MAX_ROOMS <= heartbeat.MAX_OVERRIDES
FALLBACK_SCHEDULE = {"default_target_dc": 160, "blocks": []}


def read(root: str) -> object:
    """The raw heating.json of the node at root; FieldError when it is missing or corrupt."""
    from .store import Store

    raw = Store(root).read_json(HEATING)
    if raw is None:
        raise FieldError(HEATING, "is missing or corrupt")
    return raw


def stored(root: str) -> dict[str, object]:
    """GET /heating: the heating.json kept at root (None if missing or corrupt), and which of ok/missing/corrupt."""
    from .store import MISSING, Store

    store = Store(root)
    raw = store.read_json(HEATING)
    return {"heating": raw, "file": store.state.get(HEATING, MISSING)}


def save(root: str, body: bytes) -> None:
    """Keep body (JSON, already checked) as the heating.json at root, atomically; OSError if the file system refuses.

    The bytes as they came: a canonical copy would need the whole text again
    in one piece of a node's heap, beside the parsed and the checked file.
    """
    from .store import Store

    Store(root).write(HEATING, body)


def load_room(raw: object) -> dict[str, object]:
    """The room settings of heating.json, checked: mode, manual_target_dc, schedule, control."""
    top = fc.obj(raw, "heating")
    fc.only(top, ("room",), "heating")
    if "room" not in top:
        raise FieldError("heating.room", "is missing")
    room = fc.obj(top["room"], "heating.room")
    fc.only(room, ("mode", "manual_target_dc", "schedule", "control"), "heating.room")
    mode = fc.choice_field(room, "mode", "heating.room", roomctl.MODES)
    manual = fc.opt_int_field(room, "manual_target_dc", "heating.room", schedule.TARGET_MIN_DC, schedule.TARGET_MAX_DC)
    if mode == "manual" and manual is None:
        raise FieldError("heating.room.manual_target_dc", "is missing for a room in manual mode")
    return {"mode": mode, "manual_target_dc": manual,
            "schedule": schedule.load(room.get("schedule", FALLBACK_SCHEDULE), "heating.room.schedule"),
            "control": roomctl.load_config(room.get("control", {}), "heating.room.control")}


def load_heating(raw: object) -> tuple[list[str], dict[str, object], dict[str, int], dict[str, int]]:
    """(room ids, tiers config, boiler config, valves config) from heating.json, checked."""
    top = fc.obj(raw, "heating")
    fc.only(top, ("rooms", "boiler", "load_sharing"), "heating")
    boiler_config = boiler.load_config(top.get("boiler", {}), "heating.boiler")
    sharing = dict(fc.obj(top.get("load_sharing", {}), "heating.load_sharing"))
    if "rooms" in sharing:
        raise FieldError("heating.load_sharing.rooms", "is not a known field (room facts go in rooms[])")
    if "rooms" not in top:
        raise FieldError("heating.rooms", "is missing")
    rooms_raw = fc.array(top["rooms"], "heating.rooms")
    if len(rooms_raw) > MAX_ROOMS:
        raise FieldError("heating.rooms", "has " + str(len(rooms_raw)) + " rooms; a boiler node commands at most "
                         + str(MAX_ROOMS) + " valves")
    tier_rooms: list[object] = []
    for position, room_raw in enumerate(rooms_raw):
        path = fc.index("heating.rooms", position)
        room = fc.obj(room_raw, path)
        fc.only(room, ("id", "rated_w", "exponent_permille", "load_sharing"), path)
        per_room = fc.obj(room.get("load_sharing", {}), fc.join(path, "load_sharing"))
        fc.only(per_room, ("lookahead_ms", "fallback_priority"), fc.join(path, "load_sharing"))
        tier_room = dict(per_room)
        for key in ("id", "rated_w", "exponent_permille"):
            if key in room:
                tier_room[key] = room[key]
        tier_rooms.append(tier_room)
    sharing["rooms"] = tier_rooms
    tiers_config = tiers.load_config(sharing, "heating.load_sharing", "heating.rooms", True)
    boiler.check_interlock(boiler_config, len(tier_rooms), "heating.boiler")
    rooms = tiers_config["rooms"]
    assert isinstance(rooms, list)
    ids = sorted([str(room["id"]) for room in rooms])
    valves_config = valves.load_config({"min_valve_open_pct": boiler_config["min_valve_open_pct"]}, "heating.boiler")
    return ids, tiers_config, boiler_config, valves_config
