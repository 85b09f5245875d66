"""The heating settings (heating.json) a simulated valve or boiler node is installed with, from the scenario's house."""

from __future__ import annotations

import json

from loadmesh.node import heatsettings

from .. import house as house_model
from .scenario import Scenario

HEATING = heatsettings.HEATING  # the file name, on valve and boiler nodes alike

# A valve node gets its room's mode, manual target and schedule; the boiler
# node the facts of every room that has a valve node (keyed by the valve
# node's id: the heating section's overrides name nodes), the house section's
# boiler and load-sharing settings, and each room's lookahead and fallback
# priority as the reference house's installer chose them (docs/heating.md).


def heating_files(scenario: Scenario) -> dict[str, dict[str, object]]:
    """heating.json per valve and boiler node; FieldError (from the roles' own checks) if a node would refuse it."""
    house = scenario.house
    if house is None:
        return {}
    spec = house_model.reference_house(start_week_s=house.start_week_s)
    rooms = {room.id: room for room in spec.rooms}
    files: dict[str, dict[str, object]] = {}
    boiler_rooms: list[dict[str, object]] = []
    for node in scenario.nodes:
        if node.kind != "valve" or node.room is None:
            continue
        room = rooms[node.room]
        settings: dict[str, object] = {"mode": room.mode, "schedule": room.schedule}
        if room.manual_target_dc is not None:
            settings["manual_target_dc"] = room.manual_target_dc
        files[node.id] = {"room": settings}
        sharing: dict[str, object] = {"lookahead_ms": room.lookahead_ms}
        if room.fallback_priority is not None:
            sharing["fallback_priority"] = room.fallback_priority
        boiler_rooms.append({"id": node.id, "rated_w": room.rated_w, "exponent_permille": room.exponent_permille,
                             "load_sharing": sharing})
    for node in scenario.nodes:
        if node.kind == "boiler":
            boiler = dict(house.boiler)
            boiler.setdefault("flow_setpoint_dc", house.setpoint_dc)
            files[node.id] = {"rooms": boiler_rooms, "boiler": boiler, "load_sharing": dict(house.load_sharing)}
    for node_id in sorted(files):
        # JSON as the node reads it (no tuples), checked as the node checks it.
        files[node_id] = json.loads(json.dumps(files[node_id]))
        if scenario.node(node_id).kind == "boiler":
            heatsettings.load_heating(files[node_id])
        else:
            heatsettings.load_room(files[node_id])
    return files
