"""The heating lines of `loadmesh status` (companion/heatstatus.py), from the heating roles' own /status views.

Each state is made by the real role (the firmware's, on CPython, with the
fake HAL and the real peer table of tests/test_node_heating_roles.py),
then summarised as `loadmesh status` prints it. A whole node's /status
(what the runtime adds around its role): the node runtime itself on
CPython, as the simulator's virtual nodes run it, a boiler node and a valve
node on loopback. The same summary of real node processes' answers:
tests/test_node_memory.py (a heating group run).
"""

from __future__ import annotations

import gc
import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.companion import heatstatus, nodestatus
from loadmesh.companion.sim.runner import free_port
from loadmesh.core import configsync, controller, groupconfig
from loadmesh.core.peers import PeerTable
from loadmesh.node import role_valve, runtime
from loadmesh.node.role_boiler import BoilerRole
from loadmesh.node.role_valve import ValveRole
from loadmesh.node.store import Store

from .test_node_heating_roles import (
    BOILER_SETTINGS,
    CONFIG,
    KEY,
    PADS,
    ROOMS,
    TIMEOUT_MS,
    FakeHal,
    _boiler,
    _folder,
    _heard,
    _plan,
    _room,
    _tick,
)

CONFIRMED = "confirmed open in all (what the interlock counts)"
REACHED = "the commands reach the minimum opening"
NO_BOILER = "not heard: the room follows its own control, its call reaches no boiler"
NOT_YET = "not yet heard since this node's boot: the room follows its own control until its first heartbeat"
NEVER = ("never heard since this node's boot: the room follows its own control, its call reaches no boiler; the "
         "boiler node off, or not on this group's mesh?")
NOT_YET_NAMED = NOT_YET.replace("this node's boot", "its config named it")
NEVER_NAMED = NEVER.replace("this node's boot", "its config named it")


def heating_lines(kind: str, role: dict[str, Any]) -> list[str]:
    """What `loadmesh status` prints for a running node of that kind with that role view, after its head; the
    view as it comes over HTTP (JSON: the overrides' pairs are lists)."""
    status = json.loads(json.dumps({"node": "n1", "kind": kind, "state": "running", "role": role}))
    lines = nodestatus.summary(status)
    assert lines[0] == f"node      n1 ({kind}): running"
    return lines[1:]


def _hear_rooms(role: BoilerRole, hal: FakeHal, table: PeerTable, now_ms: int, **rooms: dict[str, object]) -> None:
    for room, section in rooms.items():
        _heard(table, room, now_ms // 100, now_ms, room=section)
    _tick(role, hal, table, now_ms)


def test_a_boiler_firing_says_why_and_which_rooms_call(tmp_path: Path) -> None:
    role, hal, table = _boiler(tmp_path)
    for now_ms in (1000, 1100):  # the openings count once this node has decided them (the tick before)
        _hear_rooms(role, hal, table, now_ms, bath=_room(True, 160, 100), bedroom=_room(True, 170, 70),
                    study=_room(False, 190, 0))
    assert heating_lines("boiler", role.status()) == [
        "boiler    firing: demand; setpoint 70.0 °C; fired 1 time since its boot",
        f"valves    170 % {CONFIRMED}; {REACHED}",
        "rooms     3 of 3 heard; calling: bath, bedroom",
        "sharing   inactive",
    ]
    # Both satisfied: their own control closes the valves, so the boiler goes off at once and holds them open
    # as they were while the pump runs on.
    _hear_rooms(role, hal, table, 1200, bath=_room(False, 200, 0, valve_pct=100),
                bedroom=_room(False, 200, 0, valve_pct=70), study=_room(False, 190, 0))
    assert heating_lines("boiler", role.status())[:3] == [
        "boiler    off, pump overrun: off at once, interlock: confirmed 0% < 100%; setpoint 70.0 °C; fired 1 time "
        "since its boot",
        f"valves    0 % {CONFIRMED}; held as they were: bath 100 %, bedroom 70 %",
        "rooms     3 of 3 heard; none calling",
    ]
    _hear_rooms(role, hal, table, 1300, bath=_room(False, 200, 0, command_pct=100, valve_pct=100),
                bedroom=_room(False, 200, 0, command_pct=70, valve_pct=70), study=_room(False, 190, 0))
    assert heating_lines("boiler", role.status())[:2] == [
        "boiler    off, pump overrun; setpoint 70.0 °C; fired 1 time since its boot",
        f"valves    170 % {CONFIRMED}; held as they were: bath 100 %, bedroom 70 %",
    ]


def test_a_boiler_blocked_says_by_what(tmp_path: Path) -> None:
    # The interlock: bath's valve commanded open, its feedback still closed.
    role, hal, table = _boiler(tmp_path)
    _hear_rooms(role, hal, table, 1000, bath=_room(True, 160, 100, valve_pct=0), bedroom=_room(False, 200, 0),
                study=_room(False, 190, 0))
    assert heating_lines("boiler", role.status())[:2] == [
        "boiler    off, blocked: interlock: confirmed 0% < 100%; setpoint 70.0 °C; fired 0 times since its boot",
        f"valves    0 % {CONFIRMED}; {REACHED}",
    ]
    # Its minimum off time (3 min by default), which a boot starts.
    role = BoilerRole(_plan("boiler"), _folder(tmp_path, dict(BOILER_SETTINGS, boiler={})))
    for now_ms in (2000, 2100):
        _hear_rooms(role, hal, table, now_ms, bath=_room(True, 160, 100))
    assert heating_lines("boiler", role.status())[0] == (
        "boiler    off, blocked: minimum off time; setpoint 70.0 °C; fired 0 times since its boot")


def test_a_boiler_in_cooldown_says_its_setpoint_keeps_the_burner_off(tmp_path: Path) -> None:
    role, hal, table = _boiler(tmp_path)
    hal.temps = {"flow": 720, "return": 600}
    for now_ms in (1000, 1100, 1200):  # fired, then lit
        _hear_rooms(role, hal, table, now_ms, bath=_room(True, 160, 100))
    hal.flame_out = True  # out at 72 °C while bath still calls: the water cannot take the heat
    _hear_rooms(role, hal, table, 1300, bath=_room(True, 160, 100))
    assert heating_lines("boiler", role.status())[0] == (
        "boiler    firing: demand; cooldown: flow too hot at flame off; COOLDOWN, setpoint 30.0 °C until the water "
        "has cooled (the burner cannot relight); fired 1 time since its boot")


def test_a_cooldown_the_node_cannot_keep_is_counted_as_a_failed_write(tmp_path: Path) -> None:
    role, hal, table = _boiler(tmp_path)
    (tmp_path / "cooldown.json.tmp").mkdir()  # where the store writes cooldown.json first: the write fails
    hal.temps = {"flow": 720, "return": 600}
    for now_ms in (1000, 1100, 1200):
        _hear_rooms(role, hal, table, now_ms, bath=_room(True, 160, 100))
    hal.flame_out = True
    _hear_rooms(role, hal, table, 1300, bath=_room(True, 160, 100))
    assert "COOLDOWN" in heating_lines("boiler", role.status())[0]
    assert heating_lines("boiler", role.status())[-1] == (
        "counted   failed writes of tier3_rests.json or cooldown.json 1")


def test_a_damaged_cooldown_file_is_said_for_the_boot_that_read_it(tmp_path: Path) -> None:
    role, hal, table = _boiler(tmp_path)
    _hear_rooms(role, hal, table, 1000, bath=_room(False, 200, 0))
    assert not [line for line in heating_lines("boiler", role.status()) if "cooldown.json" in line]
    (tmp_path / "cooldown.json").write_bytes(b"LM1 0000000000000000\n{}")
    again = BoilerRole(_plan("boiler"), str(tmp_path))
    hal.temps = {"flow": 720, "return": 600}
    _hear_rooms(again, hal, table, 1100, bath=_room(False, 200, 0))
    assert heating_lines("boiler", again.status())[-1] == (
        "cooldown  cooldown.json was damaged at this node's boot: read as a cooldown in progress (the worst case), "
        "written again whole at its first tick")
    # The next boot reads the file that tick wrote: nothing to say.
    third = BoilerRole(_plan("boiler"), str(tmp_path))
    _hear_rooms(third, hal, table, 1200, bath=_room(False, 200, 0))
    assert not [line for line in heating_lines("boiler", third.status()) if "cooldown.json" in line]


# A boiler node whose load sharing is ready to act: bath (900 W) is small against the 1000 W asked for, and a
# cooldown has just happened; the bedroom and the study are due to heat in 30 min (DUE).
SHARING = {"rooms": [{"id": "bath", "rated_w": 900}, {"id": "bedroom", "rated_w": 1400},
                     {"id": "study", "rated_w": 1100}], "boiler": {"min_off_ms": 0},
           "load_sharing": {"min_calling_capacity_w": 1000, "target_capacity_w": 2500,
                            "sufficient_capacity_w": 2500}}
DUE = {"next_start_in_ms": 1800000, "next_target_dc": 200}


def _sharing_boiler(tmp_path: Path) -> tuple[BoilerRole, FakeHal, PeerTable]:
    role = BoilerRole(_plan("boiler"), _folder(tmp_path, SHARING))
    table = PeerTable(PADS, "house", "boiler", ["boiler", *ROOMS])
    hal = FakeHal()
    hal.temps = {"flow": 400, "return": 350}
    role.boiler_state = dict(role.boiler_state, cooldown=True, cooldown_at_ms=0, last_cooldown_ms=0)
    return role, hal, table


def test_load_sharing_names_the_rooms_it_opened_and_how_far(tmp_path: Path) -> None:
    # bath (900 W) calls alone after a cooldown; the bedroom and the study are due to heat in 30 min: tier 1 opens
    # both at 70 %, enough for the 2500 W the settings ask for.
    role, hal, table = _sharing_boiler(tmp_path)
    for now_ms in (1000, 1100):
        _hear_rooms(role, hal, table, now_ms, bath=_room(True, 160, 100), bedroom=_room(False, 150, 0, **DUE),
                    study=_room(False, 160, 0, **DUE))
    assert heating_lines("boiler", role.status()) == [
        "boiler    firing: demand; setpoint 70.0 °C; fired 1 time since its boot",
        f"valves    100 % {CONFIRMED}; {REACHED}",
        "rooms     3 of 3 heard; calling: bath",
        "sharing   TIER1_ACTIVE: opened bedroom 70 %, study 70 %",
    ]
    role.put_load_sharing({"enabled": False})
    _hear_rooms(role, hal, table, 1200, bath=_room(True, 160, 100))
    assert heating_lines("boiler", role.status())[-1] == "sharing   off: switched off (PUT /load_sharing)"


def test_the_valves_safety_holds_are_named_even_as_far_open_as_load_sharing_opened_them(tmp_path: Path) -> None:
    # Load sharing opens the bedroom and the study at 70 % for bath; bath satisfied, the boiler held on for its
    # minimum on time holds every open valve as it was: the bedroom's and the study's holds are safety's too,
    # though load sharing still has them at 70 %. The valve nodes cannot tell (the heartbeat's overrides are
    # [room, pct]); the boiler node's /status says whose.
    role, hal, table = _sharing_boiler(tmp_path)
    opened = {"bedroom": _room(False, 150, 0, command_pct=70, valve_pct=70, **DUE),
              "study": _room(False, 160, 0, command_pct=70, valve_pct=70, **DUE)}
    for now_ms in (1000, 1100):
        _hear_rooms(role, hal, table, now_ms, bath=_room(True, 160, 100), **opened)
    assert heating_lines("boiler", role.status())[1] == f"valves    240 % {CONFIRMED}; {REACHED}"
    _hear_rooms(role, hal, table, 1200, bath=_room(False, 200, 0, command_pct=100, valve_pct=100), **opened)
    assert heating_lines("boiler", role.status())[::3] == [
        "boiler    firing, held on: no demand: minimum on time; setpoint 70.0 °C; fired 1 time since its boot",
        "sharing   TIER1_ACTIVE: opened bedroom 70 %, study 70 %"]
    assert heating_lines("boiler", role.status())[1] == (
        f"valves    240 % {CONFIRMED}; held as they were: bath 100 %, bedroom 70 %, study 70 %")


def test_a_silent_room_and_a_stale_sensor_are_named(tmp_path: Path) -> None:
    role, hal, table = _boiler(tmp_path)
    # bath calls, the bedroom's sensor gives no temperature, the study's valve node is heard once, then not.
    _hear_rooms(role, hal, table, 1000, bath=_room(True, 160, 100), bedroom=_room(False, None, 0),
                study=_room(False, 190, 0))
    for now_ms in (1000 + TIMEOUT_MS, 1100 + TIMEOUT_MS):
        _hear_rooms(role, hal, table, now_ms, bath=_room(True, 160, 100), bedroom=_room(False, None, 0))
    assert heating_lines("boiler", role.status())[2:] == [
        "rooms     2 of 3 heard; calling: bath",
        "SILENT    study (not heard: the valve counted closed, the room neither calling nor opened)",
        "STALE     bedroom (no temperature: not calling, left out of load sharing)",
        "sharing   inactive",
        "counted   room-ticks silent 2, room-ticks stale 3",
    ]


def test_a_room_whose_sensor_is_not_read_yet_since_its_valve_node_s_boot_is_no_stale_sensor(tmp_path: Path) -> None:
    # A valve node's first second or so, before the first reading of its room's sensor: no temperature (left out
    # of load sharing as a stale sensor is), and no fault: said apart, lower case, not counted.
    role, hal, table = _boiler(tmp_path)
    _hear_rooms(role, hal, table, 1000, bath=_room(True, 160, 100), bedroom=_room(False, None, 0, unread=True),
                study=_room(False, 190, 0))
    assert heating_lines("boiler", role.status())[2:] == [
        "rooms     3 of 3 heard; calling: bath",
        "starting  bedroom (sensor not read yet since the valve node's boot: not calling, left out of load sharing)",
        "sharing   inactive",
    ]
    # The valve node itself, at its first tick and until a first reading is overdue; then a stale sensor.
    (tmp_path / "bedroom").mkdir()
    valve, valve_hal, valve_table = _valve(tmp_path / "bedroom", 200, "bedroom")
    _tick(valve, valve_hal, valve_table, 1000)
    assert heating_lines("valve", valve.status())[0] == (
        "room      auto, no temperature yet, target 20.0 °C: not calling: sensor not read yet since the boot")
    _tick(valve, valve_hal, valve_table, 1000 + role_valve.FIRST_READ_MS)
    assert heating_lines("valve", valve.status())[0] == (
        "room      auto, no temperature, target 20.0 °C: not calling: no recent temperature")


def test_a_room_not_heard_since_the_boot_has_not_gone_silent(tmp_path: Path) -> None:
    # A boiler node's first ticks, before its valve nodes' first heartbeats: no room lost, no silent ticks.
    role, hal, table = _boiler(tmp_path)
    for now_ms in range(1000, 2000, 100):
        _tick(role, hal, table, now_ms)
    not_yet = "(not yet heard since this node's boot: the valve counted closed, the room neither calling nor opened)"
    assert heating_lines("boiler", role.status())[2:] == [
        "rooms     0 of 3 heard; none calling", f"unheard   bath, bedroom, study {not_yet}", "sharing   inactive"]
    # bath heard, then silent; the study heard; the bedroom never: only bath's ticks without it count.
    _hear_rooms(role, hal, table, 2000, bath=_room(False, 190, 0), study=_room(False, 190, 0))
    _hear_rooms(role, hal, table, 2500, study=_room(False, 190, 0))
    _hear_rooms(role, hal, table, 2000 + TIMEOUT_MS, study=_room(False, 190, 0))
    lines = heating_lines("boiler", role.status())
    assert lines[2:5] == ["rooms     1 of 3 heard; none calling",
                          "SILENT    bath (not heard: the valve counted closed, the room neither calling nor opened)",
                          f"unheard   bedroom {not_yet}"], lines
    assert lines[-1] == "counted   room-ticks silent 1", lines
    # New heating settings keep what was heard, by room: the bedroom still not, bath still gone silent.
    role.use_heating(role.check_heating(dict(BOILER_SETTINGS, rooms=[{"id": "study", "rated_w": 1100},
                                                                     {"id": "bedroom", "rated_w": 1400},
                                                                     {"id": "bath", "rated_w": 900}])))
    _hear_rooms(role, hal, table, 2100 + TIMEOUT_MS, study=_room(False, 190, 0))
    assert heating_lines("boiler", role.status())[2:5] == [
        "rooms     1 of 3 heard; none calling",
        "SILENT    bath (not heard: the valve counted closed, the room neither calling nor opened)",
        f"unheard   bedroom {not_yet}"]
    # A minute after the boot, a room never heard is something to look at.
    status = json.loads(json.dumps({"kind": "boiler", "state": "running", "uptime_ms": heatstatus.UNHEARD_MS,
                                    "role": role.status()}))
    assert heatstatus.lines(status)[4] == ("UNHEARD", "bedroom (never heard since this node's boot: the valve "
                                           "counted closed, the room neither calling nor opened; its valve node "
                                           "off, or its id not the room's?)")
    # Up a minute, but its Wi-Fi up for 10 s only (joining until then): it could not have heard the room yet.
    joined = dict(status, hal={"wifi": {"state": "up", "for_ms": 10000, "hostname": "boiler"}})
    assert heatstatus.lines(joined)[4][0] == "unheard"
    assert heatstatus.lines(dict(joined, hal={"wifi": {"state": "joining"}}))[4][0] == "unheard"
    # A node from before `unheard` was told: every room not heard is silent, as it said.
    older = dict(role.status(), unheard=None)
    assert heating_lines("boiler", older)[3] == ("SILENT    bath, bedroom (not heard: the valve counted closed, "
                                                 "the room neither calling nor opened)")


def test_a_boiler_node_without_its_settings_says_why_it_stays_off(tmp_path: Path) -> None:
    role = BoilerRole(_plan("boiler"), str(tmp_path))
    _tick(role, FakeHal(), PeerTable(PADS, "house", "boiler", ["boiler", *ROOMS]), 1000)
    lines = heating_lines("boiler", role.status())
    assert lines[0].startswith("SETTINGS  ") and lines[0].endswith("; no rooms: the boiler stays off"), lines
    assert lines[1:4] == ["boiler    off: no rooms in the heating settings; setpoint 70.0 °C; fired 0 times since its "
                          "boot", f"valves    0 % {CONFIRMED}", "rooms     none in the heating settings"]


def _valve(tmp_path: Path, target_dc: int, room: str = "bath") -> tuple[ValveRole, FakeHal, PeerTable]:
    settings = {"room": {"mode": "auto", "schedule": {"default_target_dc": target_dc, "blocks": []}}}
    role = ValveRole(_plan(room), _folder(tmp_path, settings))
    return role, FakeHal(), PeerTable(PADS, "house", room, ["boiler", *ROOMS])


def test_a_valve_node_calling_on_its_own(tmp_path: Path) -> None:
    role, hal, table = _valve(tmp_path, 200)
    hal.temps = {"room": 150}
    _tick(role, hal, table, 1000)
    assert heating_lines("valve", role.status()) == [
        "room      auto, 15.0 °C, target 20.0 °C: calling for heat",
        "valve     commanded 100 % by its own control; no feedback (the boiler counts it closed)",
        f"boiler    {NOT_YET}",
    ]


def _valve_status(role: ValveRole, uptime_ms: int, **hal: object) -> list[str]:
    """`loadmesh status`'s lines after the head for a valve node up that long, with that HAL view."""
    status = {"node": "n1", "kind": "valve", "state": "running", "uptime_ms": uptime_ms, "role": role.status()}
    if hal:
        status["hal"] = hal
    return [line for line in nodestatus.summary(json.loads(json.dumps(status)))[1:] if not line.startswith("wifi")]


def test_a_valve_node_booting_is_not_missing_its_boiler_node_until_it_should_have_heard_it(tmp_path: Path) -> None:
    role, hal, table = _valve(tmp_path, 200)
    hal.temps = {"room": 150}
    for now_ms in range(100, TIMEOUT_MS, 100):  # its first seconds: the boiler node's first heartbeat to come
        _tick(role, hal, table, now_ms)
    assert _valve_status(role, TIMEOUT_MS - 100)[-1] == f"boiler    {NOT_YET}"
    # Listened a peer timeout (six heartbeats) and still nothing: the boiler node is missing.
    _tick(role, hal, table, TIMEOUT_MS)
    assert _valve_status(role, TIMEOUT_MS)[-1] == f"BOILER    {NEVER}"
    # Its Wi-Fi up for a second only (up 20 s, joining until then): it could not have heard it yet.
    wifi = {"state": "up", "for_ms": 1000, "hostname": "valve-bath"}
    assert _valve_status(role, 20000, wifi=wifi)[-1] == f"boiler    {NOT_YET}"
    assert _valve_status(role, 20000, wifi=dict(wifi, state="joining"))[-1] == f"boiler    {NOT_YET}"
    assert _valve_status(role, 20000, wifi=dict(wifi, for_ms=TIMEOUT_MS))[-1] == f"BOILER    {NEVER}"
    # Heard, then silent: lost, in capitals at once, however long it has been up.
    _heard(table, "boiler", 1, 4000, heating={"state": "INACTIVE", "overrides": []})
    _tick(role, hal, table, 4000)
    assert _valve_status(role, 4000)[-1] == "boiler    heard"
    _tick(role, hal, table, 4000 + TIMEOUT_MS)
    assert _valve_status(role, 500, wifi=dict(wifi, for_ms=500))[-1] == f"BOILER    {NO_BOILER}"
    # A config naming another boiler node: that one is not heard yet.
    members = [dict(member, id="boiler2") if member["id"] == "boiler" else member for member in CONFIG["members"]]
    role.replan(controller.prepare(groupconfig.parse(dict(CONFIG, members=members, version=2)), "bath"))
    assert _valve_status(role, 20000)[-1] == f"boiler    {NOT_YET_NAMED}"  # its wait begins at the next tick
    _tick(role, hal, table, 20000)
    assert role.status()["boiler_named_ms"] == 20000
    assert _valve_status(role, 20000 + TIMEOUT_MS - 100)[-1] == f"boiler    {NOT_YET_NAMED}"
    assert _valve_status(role, 20000 + TIMEOUT_MS)[-1] == f"BOILER    {NEVER_NAMED}"
    # A wait begun in the node's first seconds (NAMED_AT_BOOT_MS) is its boot's: counted from the boot.
    view = dict(role.status(), boiler_named_ms=heatstatus.NAMED_AT_BOOT_MS - 1)
    status = {"node": "n1", "kind": "valve", "state": "running", "uptime_ms": TIMEOUT_MS, "role": view}
    assert nodestatus.summary(json.loads(json.dumps(status)))[-1] == f"BOILER    {NEVER}"
    # A node from before `boiler_unheard`: not heard is BOILER not heard, as it said.
    older = {key: value for key, value in role.status().items()
             if key not in ("boiler_unheard", "boiler_wait_ms", "boiler_named_ms")}
    assert heating_lines("valve", older)[-1] == f"BOILER    {NO_BOILER}"


def test_a_valve_node_in_a_group_without_a_boiler_node_runs_its_room_alone(tmp_path: Path) -> None:
    members = [member for member in CONFIG["members"] if member["kind"] != "boiler"]
    plan = controller.prepare(groupconfig.parse(dict(CONFIG, members=members)), "bath")
    settings = {"room": {"mode": "auto", "schedule": {"default_target_dc": 200, "blocks": []}}}
    role = ValveRole(plan, _folder(tmp_path, settings))
    hal, table = FakeHal(), PeerTable(PADS, "house", "bath", list(ROOMS))
    hal.temps = {"room": 150}
    for now_ms in range(100, 10 * TIMEOUT_MS, 100):
        _tick(role, hal, table, now_ms)
    lines = _valve_status(role, 10 * TIMEOUT_MS)
    assert lines[-1] == "boiler    none in this group: the valve runs its room alone, by its own control", lines
    assert lines[:2] == ["room      auto, 15.0 °C, target 20.0 °C: calling for heat",
                         "valve     commanded 100 % by its own control; no feedback (the boiler counts it closed)"]
    # A node from before `boiler_node` said BOILER not heard.
    older = {key: value for key, value in role.status().items() if not key.startswith("boiler_") or
             key == "boiler_heard"}
    assert heating_lines("valve", older)[-1] == f"BOILER    {NO_BOILER}"


def test_a_valve_node_holding_its_opening_for_the_firing_boiler(tmp_path: Path) -> None:
    role, hal, table = _valve(tmp_path, 200)
    hal.temps = {"room": 150}
    hal.feedback = 100
    boiler = {"fsm": "ON", "on": True, "hold": False, "cooldown": False, "setpoint_dc": 700}
    _heard(table, "boiler", 1, 1000, heating={"state": "INACTIVE", "overrides": []}, boiler=boiler)
    _tick(role, hal, table, 1000)
    hal.temps = {"room": 230}  # satisfied while the boiler fires: its 0 % waits for the boiler node's answer
    _tick(role, hal, table, 1100)
    assert heating_lines("valve", role.status())[1] == (
        "valve     commanded 100 % held for the firing boiler (its own control: 0 %, once the boiler node "
        "answers); feedback 100 %")


def test_a_valve_node_under_load_sharing_then_its_boiler_node_silent(tmp_path: Path) -> None:
    role, hal, table = _valve(tmp_path, 150, room="study")
    hal.temps = {"room": 170}  # above its 15 °C: satisfied, its own opening 0 %
    hal.feedback = 0
    _heard(table, "boiler", 1, 1000, heating={"state": "TIER3_ACTIVE", "overrides": [["bath", 100], ["study", 50]]})
    _tick(role, hal, table, 1000)
    hal.feedback = 50
    _tick(role, hal, table, 1100)
    assert heating_lines("valve", role.status()) == [
        "room      auto, 17.0 °C, target 15.0 °C: satisfied, not calling",
        "valve     commanded 50 % by the boiler node (load sharing or safety; its own control: 0 %); feedback 50 %",
        "boiler    heard (2 ticks under its override)",
    ]
    _tick(role, hal, table, 1000 + TIMEOUT_MS)  # the boiler node silent: the override dropped, the valve closing
    assert heating_lines("valve", role.status())[1:] == [
        "valve     commanded 0 % by its own control; feedback 50 %",
        f"BOILER    {NO_BOILER} (2 ticks under its override, its override dropped 1 time when it fell silent)",
    ]


def test_a_valve_that_does_not_follow_is_named_once_it_is_not_on_its_way(tmp_path: Path) -> None:
    role, hal, table = _valve(tmp_path, 200)
    hal.temps = {"room": 150}
    hal.feedback = 0  # told 100 %, it stays shut
    for now_ms in (1000, 2000, 14000):
        _tick(role, hal, table, now_ms)
    assert heating_lines("valve", role.status())[1] == (
        "valve     commanded 100 % by its own control; feedback 0 %; off its command for 12 s (on its way?)")
    _tick(role, hal, table, 2000 + heatstatus.STUCK_MS)
    assert heating_lines("valve", role.status())[1] == (
        "valve     commanded 100 % by its own control; feedback 0 %; NOT FOLLOWING its command for 5 min 0 s: stuck, "
        "or its drive without power?")


def test_an_off_room_shows_no_target_and_a_refused_reading_is_counted(tmp_path: Path) -> None:
    role = ValveRole(_plan("bath"), _folder(tmp_path, {"room": {"mode": "off"}}))
    hal, table = FakeHal(), PeerTable(PADS, "house", "bath", ["boiler", *ROOMS])
    hal.temps = {"room": -55}
    _tick(role, hal, table, 1000)
    hal.temps = {"room": 2000}  # 200 °C: absurd, refused, the last good reading held
    _tick(role, hal, table, 1100)
    assert heating_lines("valve", role.status())[0] == (
        "room      off, -5.5 °C: calling: frost protection; 1 reading refused as absurd")


def test_other_nodes_get_no_heating_lines() -> None:
    for kind, role in (("evse", {"pilot": "B", "mode": "on", "calling": True, "temp_dc": 200}),
                       ("relay", {"relay": True, "tiers": "TIER1_ACTIVE"}), ("", {"fsm": "ON"})):
        status: dict[str, Any] = {"node": "n1", "kind": kind or None, "state": "running"}
        plain = nodestatus.summary(status)
        assert nodestatus.summary(dict(status, role=role)) == plain, kind


def test_fields_absent_null_or_odd_are_left_out() -> None:
    assert heating_lines("boiler", {}) == []
    assert heating_lines("valve", {}) == []
    assert nodestatus.summary({"kind": "boiler", "state": "running", "role": "ON"}) == [
        "node      (no id yet) (boiler): running"]
    # A null temperature and feedback are the node saying it has none; the rest null says nothing.
    assert heating_lines("valve", dict.fromkeys(("mode", "temp_dc", "target_dc", "calling", "reason", "valve_pct",
                                                 "command_pct", "source", "boiler_heard", "valve_off_ms"))) == [
        "room      no temperature", "valve     no feedback (the boiler counts it closed)"]
    odd = {"boiler_on": "yes", "fsm": 3, "reason": None, "setpoint_dc": 70.5, "cooldown": 1, "fired": True,
           "confirmed_pct": "100", "interlock": "maybe",
           "overrides": [["bath"], "study", ["kids", True], ["bed\x1b", 40]],
           "load_sharing": ["bath"], "hold": None, "rooms": 3, "heard": None, "calling": "bath", "demand": True,
           "silent": [1, "attic"], "stale": None, "stale_rooms": 2, "tiers": "TIER2_ACTIVE", "silent_ticks": -1,
           "stale_ticks": 3}
    assert heating_lines("boiler", odd) == [
        "valves    kept open until the others confirm: bed\\u001b 40 %",  # as JSON escapes it
        "rooms     3",
        "SILENT    attic (not heard: the valve counted closed, the room neither calling nor opened)",
        "sharing   TIER2_ACTIVE",
        "counted   room-ticks stale 3",  # a count below 0 is no count
    ]
    # A node from before `calling` and `stale` were named: what it has, in counts.
    older = {"rooms": 4, "heard": 4, "demand": True, "stale_rooms": 2}
    assert heating_lines("boiler", older) == ["rooms     4 of 4 heard; some calling",
                                              "STALE     2 rooms without a temperature (not calling, left out of "
                                              "load sharing)"]


ROLE_KEYS = sorted({
    "boiler_on", "fsm", "reason", "hold", "cooldown", "setpoint_dc", "tiers", "load_sharing", "overrides", "safety",
    "interlock",
    "confirmed_pct", "demand", "switch", "switch_file", "rooms", "heard", "silent", "unheard", "stale_rooms",
    "calling", "stale", "unread",
    "silent_ticks", "stale_ticks", "fired", "rejected", "rests_errors", "error",  # the boiler role's
    "mode", "temp_dc", "target_dc", "normal_pct", "override_pct", "command_pct", "valve_pct", "valve_off_ms",
    "source", "boiler_heard", "boiler_node", "boiler_unheard", "boiler_wait_ms", "boiler_named_ms", "overrides_taken",
    "overrides_dropped"})  # the valve role's own
JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=6)


@settings(max_examples=80)
@given(st.sampled_from(["boiler", "valve"]), st.dictionaries(st.sampled_from(ROLE_KEYS), JSON, max_size=12))
def test_any_role_view_of_the_shape_is_summarised_without_failing(kind: str, role: dict[str, Any]) -> None:
    lines = heating_lines(kind, role)
    assert all(line.isprintable() and line[:10].strip() for line in lines)


GROUP = groupconfig.parse(dict(CONFIG, members=[*CONFIG["members"], {  # type: ignore[list-item]
    "id": "garage", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}]))


class _Clock:
    """The runtime's now_ms(), set by the test; and which node each node's mesh sends to."""

    def __init__(self) -> None:
        self.ms = 0
        self.sends_to: dict[str, runtime.Node] = {}

    def now_ms(self) -> int:
        return self.ms


@pytest.fixture
def heating_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict[str, runtime.Node], _Clock]]:
    """The boiler node and bath's valve node of tests/test_node_heating_roles.py's group with an EV charger
    (bedroom's and study's valve nodes and the charger never switched on), each the node runtime on CPython with
    no hardware (hw.json absent), their meshes on loopback sending to each other."""
    # The runtime's /status reports MicroPython's heap, which CPython's gc does not have.
    monkeypatch.setattr(gc, "mem_alloc", lambda: 0, raising=False)
    monkeypatch.setattr(gc, "mem_free", lambda: 0, raising=False)
    ports = {"boiler": free_port(socket.SOCK_DGRAM), "bath": free_port(socket.SOCK_DGRAM)}
    heating = {"boiler": BOILER_SETTINGS, "bath": {"room": {"mode": "auto", "schedule": {"default_target_dc": 200,
                                                                                         "blocks": []}}}}
    clock = _Clock()
    nodes = {}
    for node, other in (("boiler", "bath"), ("bath", "boiler")):
        (tmp_path / node).mkdir()
        store = Store(str(tmp_path / node))
        store.write_key(KEY)
        store.raise_boot_floor(0)  # its count vouched for, as adoption and node-files leave it
        store.write_json("config.json", GROUP)
        store.write_json("node.json", {"id": node, "mesh_port": ports[node], "mesh_dest_port": ports[other],
                                       "mesh_host": "127.0.0.1", "bind_host": "127.0.0.1"})
        store.write_json("heating.json", json.loads(json.dumps(heating[node])))
        nodes[node] = runtime.Node(str(tmp_path / node), clock=clock)
        assert nodes[node].mode == "running", nodes[node].error
    clock.sends_to = {"boiler": nodes["bath"], "bath": nodes["boiler"]}
    yield nodes, clock
    for each in nodes.values():
        assert each.mesh is not None
        each.mesh.close()


def _run(nodes: dict[str, runtime.Node], clock: _Clock, until_ms: int) -> None:
    """Tick nodes (the others are off) every 100 ms of the fake clock up to until_ms.

    A heartbeat is in the other node's socket before that one ticks next: waited for, not assumed. A loopback
    datagram is not always there when sendto() returns (on a loaded machine the kernel may defer its delivery),
    and the fake clock does not wait: taken some ticks late, it was heard later than sent, and a check at a
    peer timeout's edge (heard, silent) read another state. A node that is off hears nothing: what is sent to
    it is taken out once it has arrived. Each node's socket is so empty whenever a heartbeat is sent to it,
    and its arrival is the socket turning readable."""
    while clock.ms < until_ms:
        clock.ms += 100
        for name, node in nodes.items():
            assert node.mesh is not None
            sent = node.mesh.sent
            node.tick()
            if node.mesh.sent == sent:
                continue
            assert node.mesh.sent == sent + 1, "more than one heartbeat in a tick: wait for each"
            other = clock.sends_to[name]
            assert other.mesh is not None
            inbox = other.mesh._sock
            readable, _, _ = select.select([inbox], [], [], 30)  # for failure only: it comes in microseconds
            assert readable, f"{name}'s heartbeat at t={clock.ms} ms never arrived"
            if other not in nodes.values():
                inbox.recv(1024)


def test_a_heating_node_shows_its_heating_not_the_current_it_does_not_draw(
        heating_nodes: tuple[dict[str, runtime.Node], _Clock]) -> None:
    # Past the peer timeout, each node's controller is in failsafe for the charger never heard, with 0 A applied:
    # true of the allocation, meaningless for a node that draws no current. The rooms and the boiler it does not
    # hear are its heating's to name (its peers line says only the boot ids it keeps).
    nodes, clock = heating_nodes
    _run(nodes, clock, 2 * TIMEOUT_MS)
    for node, kind in (("boiler", "boiler"), ("bath", "valve")):
        status = json.loads(json.dumps(nodes[node].status()))
        assert status["failsafe"] is True and status["silent"] == ["garage"], json.dumps(status)
        assert isinstance(status["peers"], dict) and status["applied_ma"] == 0, status
        lines = nodestatus.summary(status)
        labels = [line[:10].rstrip() for line in lines]
        assert not {"current", "FAILSAFE", "failsafe", "departed"} & set(labels), lines
        assert lines[0].startswith(f"node      {node} ({kind}): running, up 6 s, boot 1"), lines
        # Its peers line says only that it keeps its peers' boot ids (peerboots.json), no count of them.
        # Each heard the other first: one change of the boot ids it keeps, not yet written (no sync loop here).
        assert lines[-4:-1] == ["peers     boot ids kept (1 change seen, 0 writes this boot)",
                                "config    version 1 (" + status["config"]["announced"] + ")",
                                "memory    0 bytes in use, 0 free"], lines
        assert lines[-1].startswith("ticks     "), lines
        assert lines[1:-4] == nodestatus.summary({"node": node, "kind": kind, "state": "running",
                                                  "role": status["role"]})[1:], lines
    # An EV charger's node of the same answer keeps them: its current is what they are about.
    status = dict(json.loads(json.dumps(nodes["boiler"].status())), kind="evse")
    assert [line[:10].rstrip() for line in nodestatus.summary(status)][1:4] == ["current", "FAILSAFE", "peers"]


def test_a_boiler_node_booting_reads_rooms_not_heard_yet_not_rooms_lost(
        heating_nodes: tuple[dict[str, runtime.Node], _Clock]) -> None:
    # Its first seconds: bath's valve node heard; the bedroom's and the study's not yet.
    nodes, clock = heating_nodes
    _run(nodes, clock, 2 * TIMEOUT_MS)

    def boiler() -> dict[str, str]:
        lines = nodestatus.summary(json.loads(json.dumps(nodes["boiler"].status())))
        return {line[:10].rstrip(): line[10:] for line in lines}

    lines = boiler()
    assert lines["unheard"].startswith("bedroom, study (not yet heard since this node's boot"), lines
    assert "SILENT" not in lines and "silent" not in lines["counted"], lines
    # bath's valve node stops: gone silent, its ticks counted from its timeout on; the others are still not heard.
    ticking = {"boiler": nodes["boiler"]}
    _run(ticking, clock, 3 * TIMEOUT_MS)
    lines = boiler()
    assert lines["SILENT"].startswith("bath (not heard"), lines
    assert lines["unheard"].startswith("bedroom, study (not yet heard"), lines
    assert lines["counted"].startswith("room-ticks silent "), lines
    assert 0 < int(lines["counted"].split(",")[0].split()[-1]) <= TIMEOUT_MS // 100, lines
    _run(ticking, clock, heatstatus.UNHEARD_MS)  # a minute after its boot: something to look at
    lines = boiler()
    assert lines["UNHEARD"].startswith("bedroom, study (never heard since this node's boot"), lines


def test_a_valve_node_booting_reads_its_boiler_node_not_heard_yet_not_lost(
        heating_nodes: tuple[dict[str, runtime.Node], _Clock]) -> None:
    nodes, clock = heating_nodes

    def bath() -> str:
        lines = nodestatus.summary(json.loads(json.dumps(nodes["bath"].status())))
        return [line for line in lines if line[:10].rstrip().lower() == "boiler"][-1]

    # bath's valve node up first, the boiler node not yet: calm for a peer timeout, then missing.
    ticking = {"bath": nodes["bath"]}
    _run(ticking, clock, TIMEOUT_MS - 100)
    assert bath() == f"boiler    {NOT_YET}"
    _run(ticking, clock, TIMEOUT_MS)
    assert bath() == f"BOILER    {NEVER}"
    # The boiler node up: heard; then it stops: gone silent.
    _run(nodes, clock, TIMEOUT_MS + 1000)
    assert bath() == "boiler    heard"
    _run(ticking, clock, 3 * TIMEOUT_MS)
    assert bath() == f"BOILER    {NO_BOILER}"


def test_a_valve_node_given_a_config_naming_another_boiler_node_waits_for_that_one_anew(
        heating_nodes: tuple[dict[str, runtime.Node], _Clock]) -> None:
    # bath's valve node has heard its boiler node for 12 s, longer than the wait (a peer timeout) and its boot's
    # first seconds; then a config names another boiler node, not on yet. Before, bath called it missing at
    # once (BOILER never heard since this node's boot): its wait counted from the boot, not from the change.
    nodes, clock = heating_nodes

    def bath() -> str:
        lines = nodestatus.summary(json.loads(json.dumps(nodes["bath"].status())))
        return [line for line in lines if line[:10].rstrip().lower() == "boiler"][-1]

    _run(nodes, clock, 4 * TIMEOUT_MS)
    assert bath() == "boiler    heard"
    members = [dict(member, id="boiler2") if member["id"] == "boiler" else member for member in GROUP["members"]]
    version_2 = groupconfig.parse(dict(GROUP, members=members, version=2))
    assert nodes["bath"].put_config(configsync.seal(PADS, version_2))["adopted"] is True
    switched_ms = clock.ms
    assert bath() == f"boiler    {NOT_YET_NAMED}"  # before its first tick under the new config too
    _run(nodes, clock, switched_ms + TIMEOUT_MS)  # its wait began at the first tick after the switch
    role = nodes["bath"].status()["role"]
    assert isinstance(role, dict) and role["boiler_named_ms"] == switched_ms + 100, role
    assert bath() == f"boiler    {NOT_YET_NAMED}"
    _run(nodes, clock, switched_ms + TIMEOUT_MS + 100)  # listened a peer timeout for boiler2: missing
    assert bath() == f"BOILER    {NEVER_NAMED}"
    # The same config again with a new version, the same boiler node named: its wait goes on, it does not restart.
    version_3 = groupconfig.parse(dict(GROUP, members=members, version=3))
    assert nodes["bath"].put_config(configsync.seal(PADS, version_3))["adopted"] is True
    _run(nodes, clock, clock.ms + 100)
    assert bath() == f"BOILER    {NEVER_NAMED}"


def test_a_tick_out_of_memory_after_the_boiler_decided_is_skipped_with_the_relay_driven_and_on_a_valve_node(
        heating_nodes: tuple[dict[str, runtime.Node], _Clock], monkeypatch: pytest.MonkeyPatch) -> None:
    # A tick that runs out of memory is skipped and the node runs on (docs/firmware.md, "A tick out of memory"), the
    # boiler node's too once its role has decided: the relay is driven as soon as the boiler's state is kept, so that
    # a state saying the relay went on (or off) at that tick, its minimum times counted from then, never stands with
    # the relay not switched. Before, the relay waited for apply(), and such a tick halted the node. The valve
    # node's own opening, decided in its inputs() and driven a tick late, changes no rule: the boiler counts a
    # valve's opening as its feedback, the valve itself.
    nodes, clock = heating_nodes
    # bath is cold and its valve open as commanded; the boiler node may fire 5 s after its first tick (its boot
    # counts as the relay going off): the first tick it may is the one that runs out of memory.
    boiler_hal, bath_hal = FakeHal(), FakeHal()
    bath_hal.temps, bath_hal.feedback = {"room": 150}, 100
    nodes["boiler"].hal, nodes["bath"].hal = boiler_hal, bath_hal
    role = nodes["boiler"].role
    assert isinstance(role, BoilerRole)
    role.use_heating(role.check_heating(dict(BOILER_SETTINGS, boiler={"min_off_ms": 5000})))
    _run(nodes, clock, 5000)
    assert (role.boiler_on, boiler_hal.boiler_call, role.reason) == (False, False, "minimum off time"), role.reason
    step = controller.step
    # The control loop's own timing reads MicroPython's tick counter, which CPython's time has not.
    monkeypatch.setattr(runtime, "time", SimpleNamespace(ticks_ms=lambda: clock.ms, ticks_diff=lambda a, b: a - b))

    def out_of_memory(*args: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(controller, "step", out_of_memory)
    clock.ms += 100
    assert nodes["bath"].tick_and_collect() is True
    assert (nodes["bath"].mode, nodes["bath"].status()["ticks"]["skipped"]) == ("running", 1)  # type: ignore[index]
    assert nodes["boiler"].tick_and_collect() is True
    assert (nodes["boiler"].mode, nodes["boiler"].status()["ticks"]["skipped"]) == (  # type: ignore[index]
        "running", 1), nodes["boiler"].error
    # The state kept says the relay went on at this tick, and it did.
    assert role.boiler_state["on_at_ms"] == clock.ms
    assert (role.boiler_on, boiler_hal.boiler_call, boiler_hal.flow_setpoint_dc) == (True, True, 700)
    monkeypatch.setattr(controller, "step", step)
    clock.ms += 100
    assert nodes["bath"].tick_and_collect() is True
    assert nodes["bath"].status()["ticks"]["skipped"] == 1  # type: ignore[index]
    assert nodes["boiler"].tick_and_collect() is True
    assert (role.boiler_on, boiler_hal.boiler_call, role.fired) == (True, True, 1)  # fired once, at the skipped tick
    assert nodes["boiler"].status()["ticks"]["skipped"] == 1  # type: ignore[index]
