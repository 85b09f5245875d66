"""End to end: the 6-room house with a boiler node, on real node processes (frozen f32 image, 12K-word heap).

One run of the reference house (companion/house.py) at 20 times real time:
a cold Monday from 05:31 to 05:50, the house at 16 °C. The kids' room (manual, 18 °C)
and the bath (17 °C setback) call; their radiators (1.9 kW) cannot take the
boiler's 6 kW minimum, so the boiler node opens extra rooms. The bedroom's
and the kitchen's schedule blocks start at 06:00 and 06:30, within their
lookahead: tier 1. The study is off and the kids' room manual: load sharing
never opens them. Then the boiler node is cut off the mesh (the valve nodes
must drop its overrides within peer_timeout plus a tick, and its relay goes
off: it no longer hears any valve confirm an opening), healed, and killed
(the overrides drop again; the plant resets its relay when its watchdog
fires). The boiler's timings are shortened in its settings (minutes in the
house's time are seconds here); the node's clock is never accelerated. Its
minimum off time, which it also waits after its boot, is 2 s, so that it
fires as the first valves open; load sharing takes a return above 50 °C
(not 55) as the evidence of cycling, which the water reaches about 4 s
before the lounge starts calling too (the calling rooms would then take
the boiler's minimum, and there would be nothing to share).

A second, shorter run kills a valve node whose opening the interlock needs
(below).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadmesh.companion.sim import scenario as sc
from loadmesh.companion.sim.runner import Simulation

from .simsite import SAMPLE_MS, TICK_MS, between, played_ms, samples, simulation

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

PEER_TIMEOUT_MS = 3000
WDT_MS = 2000
SCHEDULING_MS = 400  # a loaded 2-core machine can hold a node's tick back a little
HEARTBEAT_MS = 500
# Healed, the boiler node opens the rooms again within a second (0.4 s on an idle machine): the kill waits 10 s.
ISOLATE_MS, HEAL_MS, KILL_MS, END_MS = 30000, 40000, 50000, 58000
MIN_VALVE_OPEN_PCT = 100
VALVES = ("bath", "bedroom", "kids", "kitchen", "lounge", "study")


def accelerated_house(about: str, end_ms: int, events: list[dict[str, object]]) -> sc.Scenario:
    """The six valve nodes and the boiler node of the reference house at 20 times real time, from Monday 05:31."""
    return sc.parse({
        "about": about, "duration_s": end_ms / 1000,
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": 25000, "safety_pct": 100},
        "group": {"heartbeat_ms": HEARTBEAT_MS, "peer_timeout_ms": PEER_TIMEOUT_MS},
        "house": {"model": "reference", "start_week_s": 5 * 3600 + 31 * 60, "speed": 20, "setpoint_dc": 700,
                  "boiler": {"min_on_ms": 10000, "min_off_ms": 2000, "pump_overrun_ms": 6000},
                  "load_sharing": {"return_temp_risk_delta_dc": 200}},
        "nodes": [{"id": "boiler", "kind": "boiler"}] + [{"id": room, "kind": "valve"} for room in VALVES],
        "events": events,
    })


HOUSE = accelerated_house("the reference house, accelerated", END_MS, [
    {"at_s": ISOLATE_MS / 1000, "isolate": "boiler"}, {"at_s": HEAL_MS / 1000, "heal": "boiler"},
    {"at_s": KILL_MS / 1000, "kill": "boiler"}])


def test_the_house_shares_load_keeps_the_interlock_and_falls_back_when_the_boiler_node_goes(
        tmp_path: Path, device_root: Path) -> None:
    polled: list[tuple[int, dict[str, object]]] = []  # (t_ms, the boiler node's role status)
    rooms: list[tuple[int, dict[str, object]]] = []  # (t_ms, every valve node's role status)
    last_ms = [-1000]

    def poll(sim: Simulation) -> None:
        now_ms = sim.now_ms()
        if now_ms - last_ms[0] < 1000 or now_ms >= KILL_MS:
            return
        last_ms[0] = now_ms
        status = sim.status("boiler")
        if status is not None and isinstance(status.get("role"), dict):
            polled.append((now_ms, status["role"]))  # type: ignore[arg-type]
        if ISOLATE_MS - 8000 <= now_ms < ISOLATE_MS:
            found = {room: (sim.status(room) or {}).get("role") for room in ("bedroom", "kitchen")}
            rooms.append((now_ms, found))

    with simulation(HOUSE, tmp_path, device_root) as sim:
        sim.run(on_tick=poll)
        found = samples(sim)
    boiler = [(t_ms, by_node["boiler"]) for t_ms, by_node in found]

    # Load sharing: tier 1 opened rooms whose schedule block starts soon, never the off or manual room.
    tier1 = [(t_ms, role) for t_ms, role in polled if str(role["tiers"]).startswith("TIER1")]
    assert tier1, [(t_ms, role["tiers"]) for t_ms, role in polled]
    opened = set()
    for _t_ms, role in polled:
        sharing = role["load_sharing"]
        assert isinstance(sharing, dict)
        assert "study" not in sharing and "kids" not in sharing, sharing  # off and manual: never
        opened.update(room for room, pct in sharing.items() if pct > 0)
    assert {"bedroom", "kitchen"} <= opened, opened
    # A valve node under an override follows it while it hears the boiler node, over its own 0 %.
    under = [role for _t_ms, found_rooms in rooms for role in found_rooms.values()
             if isinstance(role, dict) and role["override_pct"] is not None]
    assert under and all(role["normal_pct"] == 0 and role["command_pct"] == role["override_pct"] > 0
                         and role["boiler_heard"] for role in under), under

    # The study (off, far above frost) is never opened, whoever commands.
    assert all(by_node["study"]["valve_pct"] == 0 for _t_ms, by_node in found)

    # The interlock: every time the call for heat goes on, the valves' positions already add up to the minimum.
    starts = [index for index in range(1, len(found)) if boiler[index][1]["boiler_on"]
              and not boiler[index - 1][1]["boiler_on"]]
    assert starts
    for index in starts:
        t_ms, by_node = found[index]
        confirmed = sum(int(by_node[room]["valve_confirmed_pct"]) for room in VALVES)  # type: ignore[call-overload]
        assert confirmed >= MIN_VALVE_OPEN_PCT, (t_ms, {room: by_node[room]["valve_confirmed_pct"] for room in VALVES})

    # Isolated: the overrides drop within the timeout plus a tick (the rooms back under their own control,
    # bedroom and kitchen at their own 0 %), and the boiler's relay goes off with its view of the valves.
    # Counted from when the simulator cut it off and killed it (a loaded machine can hold that back), and
    # seen at the next sample.
    isolated_ms, healed_ms, killed_ms = (played_ms(sim, action, "boiler") for action in ("isolate", "heal", "kill"))
    bound_ms = PEER_TIMEOUT_MS + TICK_MS + SAMPLE_MS + SCHEDULING_MS
    before = [by_node for t_ms, by_node in found if ISOLATE_MS - 2000 <= t_ms < ISOLATE_MS]
    assert before and all(by_node["boiler"]["boiler_on"] for by_node in before)  # it was firing
    assert all(by_node["bedroom"]["valve_pct"] > 0 and by_node["kitchen"]["valve_pct"] > 0 for by_node in before)
    after = between(found, isolated_ms + bound_ms, healed_ms)
    assert after
    for _t_ms, by_node in after:
        assert by_node["boiler"]["boiler_on"] is False
        assert by_node["bedroom"]["valve_pct"] == 0 and by_node["kitchen"]["valve_pct"] == 0

    # Killed: the overrides drop again within the timeout plus a tick; the relay is off once its watchdog fires.
    healed = [by_node for t_ms, by_node in found if KILL_MS - 2000 <= t_ms < KILL_MS]
    assert any(by_node["bedroom"]["valve_pct"] > 0 or by_node["kitchen"]["valve_pct"] > 0 for by_node in healed)
    for _t_ms, by_node in between(found, killed_ms + bound_ms, END_MS):
        assert by_node["bedroom"]["valve_pct"] == 0 and by_node["kitchen"]["valve_pct"] == 0
    for _t_ms, by_node in between(found, killed_ms + WDT_MS + SAMPLE_MS + SCHEDULING_MS, END_MS):
        assert by_node["boiler"]["boiler_on"] is False and by_node["boiler"]["alive"] is False
        assert by_node["boiler"]["setpoint_dc"] is None

    # The boiler node drives the boiler's flow setpoint: 70 C, or 30 C while it cools down.
    driven = [by_node["boiler"]["setpoint_dc"] for _t_ms, by_node in between(found, 2000, KILL_MS)]
    assert driven and set(driven) <= {700, 300} and 700 in driven, sorted(set(map(str, driven)))

    # Memory: no node ran out of its 12K-word heap (each fed its watchdog to the end, none was restarted).
    assert all(sim.nodes[node].resets == 0 for node in VALVES)


# A valve node dies while the boiler fires on the opening it confirmed. Two rooms call from 05:31 (the kids'
# room, manual, and the bath below its setback) and the interlock asks for 150 %, so the boiler needs both
# valves; nothing else has a valve node, so load sharing has no room to open. The bath's node is killed and
# later restarted: the boiler must stop counting its valve (and its call) within peer_timeout plus a tick,
# stay off while the kids' room still calls, and fire again only once the bath's node confirms its opening.
DEAD_KILL_MS, DEAD_RESTART_MS, DEAD_END_MS = 10000, 20000, 30000
TWO_VALVES = ("bath", "kids")
INTERLOCK_PCT = 150
TWO_ROOMS = sc.parse({
    "about": "two calling rooms, an interlock that needs both valves", "duration_s": DEAD_END_MS / 1000,
    "site": {"phases": 1, "voltage_v": 230, "limit_ma": 25000, "safety_pct": 100},
    "group": {"heartbeat_ms": HEARTBEAT_MS, "peer_timeout_ms": PEER_TIMEOUT_MS},
    "house": {"model": "reference", "start_week_s": 5 * 3600 + 31 * 60, "speed": 20, "setpoint_dc": 700,
              "boiler": {"min_on_ms": 10000, "min_off_ms": 2000, "pump_overrun_ms": 6000,
                         "min_valve_open_pct": INTERLOCK_PCT}},
    "nodes": [{"id": "boiler", "kind": "boiler"}] + [{"id": room, "kind": "valve"} for room in TWO_VALVES],
    "events": [{"at_s": DEAD_KILL_MS / 1000, "kill": "bath"}, {"at_s": DEAD_RESTART_MS / 1000, "restart": "bath"}],
})


def test_a_valve_node_that_dies_no_longer_counts_toward_the_interlock(tmp_path: Path, device_root: Path) -> None:
    polled: list[tuple[int, dict[str, object], dict[str, object]]] = []  # (t_ms, boiler role, kids role)
    last_ms = [-1000]

    def poll(sim: Simulation) -> None:
        now_ms = sim.now_ms()
        if now_ms - last_ms[0] < 500:
            return
        last_ms[0] = now_ms
        boiler = (sim.status("boiler") or {}).get("role")
        kids = (sim.status("kids") or {}).get("role")
        if isinstance(boiler, dict) and isinstance(kids, dict):
            polled.append((now_ms, boiler, kids))

    with simulation(TWO_ROOMS, tmp_path, device_root) as sim:
        sim.run(on_tick=poll)
        found = samples(sim)
    on = [(t_ms, by_node["boiler"]["boiler_on"] is True) for t_ms, by_node in found]

    # Both valves open, the boiler fires: every time the call goes on, the positions already reach 150 %.
    starts = [index for index in range(1, len(found)) if on[index][1] and not on[index - 1][1]]
    assert starts and found[starts[0]][0] < DEAD_KILL_MS, on
    for index in starts:
        t_ms, by_node = found[index]
        positions = {room: by_node[room]["valve_confirmed_pct"] for room in TWO_VALVES}
        assert sum(positions.values()) >= INTERLOCK_PCT, (t_ms, positions)  # type: ignore[arg-type]
    assert all(is_on for t_ms, is_on in on if DEAD_KILL_MS - 1000 <= t_ms < DEAD_KILL_MS), on

    # Killed: within the timeout plus a tick the boiler hears one valve node, still has the kids' call
    # (demand), and keeps its relay off on the interlock until the bath's node is back. Counted from when
    # the simulator killed and restarted it: its loop also polls the nodes, and a slow answer holds it back.
    killed_ms, restarted_ms = played_ms(sim, "kill", "bath"), played_ms(sim, "restart", "bath")
    bound_ms = PEER_TIMEOUT_MS + TICK_MS + SCHEDULING_MS
    dead = [is_on for t_ms, is_on in on if killed_ms + bound_ms + SAMPLE_MS <= t_ms < restarted_ms]  # seen a sample on
    assert dead and not any(dead), on
    blocked = [(t_ms, boiler, kids) for t_ms, boiler, kids in polled
               if killed_ms + bound_ms <= t_ms < restarted_ms]
    assert blocked
    for t_ms, boiler, kids in blocked:
        assert kids["calling"] is True, (t_ms, kids)
        heard = (boiler["heard"], boiler["silent"], boiler["demand"], boiler["boiler_on"])
        assert heard == (1, ["bath"], True, False), (t_ms, boiler)
        assert boiler["confirmed_pct"] < INTERLOCK_PCT, (t_ms, boiler)
        assert "bath" not in boiler["load_sharing"], (t_ms, boiler)  # a silent room is never opened
    assert any(str(boiler["reason"]).startswith("interlock") for _t_ms, boiler, _kids in blocked), blocked

    # Restarted: the boiler fires again once the bath's node confirms its opening.
    assert any(is_on for t_ms, is_on in on if t_ms >= DEAD_RESTART_MS), on


# The runtime switch and the heating settings over the nodes' HTTP APIs, on the accelerated house of the first
# test: once load sharing runs, PUT /load_sharing {"enabled": false} on the boiler node ends it at once (within
# the minimum activation duration, which only exits need) and it stays off on the same evidence, across a kill
# and a restart of the boiler node (the switch is kept in its file system); switched on again, it may run
# again. Meanwhile the bath's valve node is turned off by PUT /heating.
SW_KILL_MS, SW_RESTART_MS, SW_ON_MS, SW_END_MS = 24000, 25000, 31000, 36000
SWITCH = accelerated_house("the reference house, accelerated, its load sharing switched", SW_END_MS, [
    {"at_s": SW_KILL_MS / 1000, "kill": "boiler"}, {"at_s": SW_RESTART_MS / 1000, "restart": "boiler"}])


# Four blocks every day, each day written on its own (28 blocks, about 2 KB of JSON): the valve node takes the file on
# its 12K-word heap while it runs (docs/heating.md: how much fits).
BATH_OFF = {"room": {"mode": "off", "schedule": {"default_target_dc": 170, "blocks": [
    {"days": [day], "start_min": start, "end_min": start + 60, "target_dc": 210}
    for day in range(7) for start in (360, 720, 1020, 1260)]}}}


def test_the_load_sharing_switch_and_heating_settings_over_http(tmp_path: Path, device_root: Path) -> None:
    polled: list[tuple[int, dict[str, object]]] = []  # (t_ms, the boiler node's role status)
    baths: list[tuple[int, dict[str, object]]] = []  # (t_ms, the bath's valve node's role status)
    answers: dict[str, tuple[int, object]] = {}  # what the nodes answered, by request
    switched = {"off": -1, "on": -1, "bath": -1}
    last_ms = [-1000]

    def put(sim: Simulation, name: str, node: str, path: str, body: object, token: bool = True) -> None:
        answers[name] = sim.request(node, "PUT", path, json.dumps(body).encode(), token=token)

    def poll(sim: Simulation) -> None:
        now_ms = sim.now_ms()
        if now_ms - last_ms[0] < 250:
            return
        last_ms[0] = now_ms
        role = (sim.status("boiler") or {}).get("role")
        if isinstance(role, dict):
            polled.append((now_ms, role))
        bath = (sim.status("bath") or {}).get("role")
        if isinstance(bath, dict):
            baths.append((now_ms, bath))
        if isinstance(role, dict) and switched["off"] < 0 and str(role["tiers"]).startswith("TIER"):
            # The boiler node's whole heating.json, read back and put again on its 12K-word heap.
            answers["boiler heating"] = sim.request("boiler", "GET", "/heating")
            kept = answers["boiler heating"][1]
            put(sim, "boiler again", "boiler", "/heating", kept.get("heating") if isinstance(kept, dict) else None)
            put(sim, "off", "boiler", "/load_sharing", {"enabled": False})
            switched["off"] = sim.now_ms()
            answers["get"] = sim.request("boiler", "GET", "/load_sharing")
            put(sim, "no token", "boiler", "/load_sharing", {"enabled": True}, token=False)
            put(sim, "not a bool", "boiler", "/load_sharing", {"enabled": "yes"})
            put(sim, "on a valve node", "bath", "/load_sharing", {"enabled": True})
        if switched["bath"] < 0 and now_ms >= 6000:
            put(sim, "bad heating", "bath", "/heating", {"room": {"mode": "away"}})
            put(sim, "bath off", "bath", "/heating", BATH_OFF)
            switched["bath"] = sim.now_ms()
            answers["bath heating"] = sim.request("bath", "GET", "/heating")
        if switched["on"] < 0 and now_ms >= SW_ON_MS:
            put(sim, "on", "boiler", "/load_sharing", {"enabled": True})
            switched["on"] = sim.now_ms()

    with simulation(SWITCH, tmp_path, device_root) as sim:
        sim.run(on_tick=poll)

    # Switched off while load sharing ran, before the kill.
    off_ms = switched["off"]
    assert 0 < off_ms < SW_KILL_MS - 3000, [(t_ms, role["tiers"]) for t_ms, role in polled]
    assert answers["off"] == (200, {"switch": False, "settings": True, "enabled": False, "file": "ok",
                                    "state": answers["off"][1]["state"]}), answers  # type: ignore[index]
    assert answers["get"][0] == 200 and answers["get"][1]["switch"] is False, answers  # type: ignore[index]
    assert answers["no token"][0] == 401, answers
    assert answers["not a bool"] == (400, {"error": "load_sharing.enabled: \"yes\" is not true or false"}), answers
    assert answers["on a valve node"][0] == 400, answers
    assert answers["on a valve node"][1] == {  # the node's words, whole
        "error": "load_sharing: is the boiler node's switch; this node's kind is \"valve\""}, answers
    status, kept = answers["boiler heating"]
    assert status == 200 and kept["file"] == "ok", answers  # type: ignore[index]
    rooms = sorted(room["id"] for room in kept["heating"]["rooms"])  # type: ignore[index]
    assert rooms == sorted(VALVES), kept
    assert answers["boiler again"] == (200, {"saved": True, "kind": "boiler", "rooms": rooms}), answers
    # From the next ticks on, no load sharing until switched on again, on the boiler node's first boot and its
    # second: the switch was read back off after the kill.
    bound_ms = 2 * TICK_MS + SCHEDULING_MS
    off = [(t_ms, role) for t_ms, role in polled if off_ms + bound_ms <= t_ms < SW_ON_MS]
    assert any(t_ms > SW_RESTART_MS + 1000 for t_ms, _role in off), off
    for t_ms, role in off:
        assert (role["tiers"], role["load_sharing"], role["switch"]) == ("DISABLED", {}, False), (t_ms, role)
    # Switched on: load sharing leaves DISABLED, and with the evidence still there (the return above 50 °C), the
    # rooms are short of the boiler's minimum again: it opens rooms again.
    on_ms = switched["on"]
    assert answers["on"][0] == 200 and answers["on"][1]["enabled"] is True, answers  # type: ignore[index]
    later = [str(role["tiers"]) for t_ms, role in polled if t_ms >= on_ms + bound_ms]
    assert later and "DISABLED" not in later and any(state.startswith("TIER") for state in later), later

    # The bath's node: a refused mode changes nothing; "off" is kept and in force from the next ticks.
    assert answers["bad heating"][0] == 400 and "heating.room.mode" in str(answers["bad heating"][1]), answers
    assert answers["bath off"] == (200, {"saved": True, "kind": "valve", "mode": "off"}), answers
    assert answers["bath heating"] == (200, {"heating": BATH_OFF, "file": "ok"}), answers
    assert len(BATH_OFF["room"]["schedule"]["blocks"]) == 28  # type: ignore[index]
    bath_ms = switched["bath"]
    before = [bath for t_ms, bath in baths if bath_ms - 2000 <= t_ms < bath_ms - 500]
    assert before and all(bath["calling"] and bath["mode"] == "auto" for bath in before), before
    after = [bath for t_ms, bath in baths if t_ms >= bath_ms + bound_ms]
    assert after and all(bath["mode"] == "off" and not bath["calling"] for bath in after), after
