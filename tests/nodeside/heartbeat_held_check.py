# Node side of tests/test_node_memory.py: what a decoded heartbeat holds on the heap, with and without a room.
#   heartbeat_held_check.py   prints one JSON line: the bytes held per decoded heartbeat (each kept, as the peer
#                             table keeps one a peer) without a section, with a valve node's room, its room alone
import gc
import json

from loadmesh.core import heartbeat

PADS = heartbeat.prepare_key(bytes(range(32)))
COMMON = {"group": "house", "node": "valve-1", "boot_id": 7, "seq": 42, "circuit": "site", "phases": "L1",
          "mode": "continuous", "priority": 1, "min_ma": 0, "max_ma": 0, "step_ma": 1000, "demand": False,
          "active": False, "failsafe": False, "draw_ma": [None, None, None], "target_ma": 0, "applied_ma": 0,
          "config_version": 3, "config_hash": "a1b2c3d4e5f60718", "digest": "00ff" * 8,
          "meter": None, "heating": None, "control": None}
ROOM = {"mode": "auto", "calling": True, "stale": False, "unread": False, "temp_dc": 195, "temp_age_ms": 1200,
        "normal_pct": 70, "command_pct": 70, "valve_pct": 70, "next_start_in_ms": None, "next_target_dc": None}
COUNT = 8


def held(data, part=None):
    kept = [None] * COUNT  # made before the first count: only what each decode leaves is measured
    gc.collect()
    before = gc.mem_alloc()
    for index in range(COUNT):
        reason, message = heartbeat.decode(PADS, "house", data)
        assert reason == "ok", reason
        kept[index] = message if part is None else message[part]
        message = None
    gc.collect()
    return (gc.mem_alloc() - before) // COUNT


def main():
    plain = heartbeat.encode(PADS, COMMON)
    with_room = dict(COMMON)
    with_room["room"] = ROOM
    room = heartbeat.encode(PADS, with_room)
    print(json.dumps({"plain": held(plain), "with_room": held(room), "room": held(room, "room")}))


main()
