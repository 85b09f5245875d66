"""Checking a node's heating.json before it goes on the node: the settings it would run, or the first error."""

from __future__ import annotations

from loadmesh.core import groupconfig
from loadmesh.core.errors import FieldError, describe
from loadmesh.node.heatsettings import load_heating, load_room

# A valve node's file has "room", the boiler node's "rooms"; each is checked
# by the node's own loader (loadmesh.node.heatsettings), so what passes here
# is what the node runs, defaults filled in. With the group config, the
# boiler's rooms are also checked against the group's valve nodes: a room id
# that is no valve node is never heard (its valve counts as closed, its room
# never calls), and a valve node without a room is one the boiler never
# hears. Both are refused here; the node itself would run and show it only
# in /status (the boiler node's "silent" rooms).


NO_GROUP = object()  # no group config given: a group file that holds null is one, and refused as the node would


def check(raw: object, group_raw: object = NO_GROUP) -> dict[str, object]:
    """The settings a node would run from heating.json raw (checked against the group config group_raw, if given);
    FieldError naming the field and the value if refused."""
    group = groupconfig.parse(group_raw) if group_raw is not NO_GROUP else None
    if isinstance(raw, dict) and "room" not in raw and "rooms" not in raw:
        # The valve node's loader would say "heating.room: None is not an object".
        raise FieldError("heating", "has neither room (a valve node's settings) nor rooms (the boiler node's)")
    if isinstance(raw, dict) and "rooms" in raw:
        ids, tiers_config, boiler_config, _valves_config = load_heating(raw)
        if group is not None:
            _match_rooms(raw, ids, group)
        return {"kind": "boiler", "rooms": ids, "boiler": boiler_config, "load_sharing": tiers_config}
    room = load_room(raw)
    if group is not None and not _members(group, "boiler"):
        raise FieldError("members", "has no boiler node in group " + describe(group["group"]) + ": no room is heated")
    return {"kind": "valve", "room": room}


def _members(group: dict[str, object], kind: str) -> list[str]:
    members = group["members"]
    assert isinstance(members, list)
    return [str(member["id"]) for member in members if member["kind"] == kind]


def _match_rooms(raw: dict[str, object], ids: list[str], group: dict[str, object]) -> None:
    valves = _members(group, "valve")
    rooms = raw["rooms"]
    assert isinstance(rooms, list)
    for position, room in enumerate(rooms):
        rid = room["id"]
        if rid not in valves:
            raise FieldError("heating.rooms[" + str(position) + "].id", describe(rid) + " is not a valve node of group "
                             + describe(group["group"]) + " (its valve nodes: " + (", ".join(valves) or "none") + ")")
    for valve in valves:
        if valve not in ids:
            raise FieldError("heating.rooms", "has no room for the valve node " + describe(valve)
                             + ": the boiler would never hear its room")
