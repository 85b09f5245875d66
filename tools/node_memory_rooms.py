"""A heating group of N rooms on the 12K-word heap: its boiler node and a valve node, their memory, load sharing on.

    .venv/bin/python tools/node_memory_rooms.py [--rooms 6 7] [--seconds 30] [--heap 48wK] [--json] [--keep DIR]

The reference house (companion/house.py) at 20 times real time from Monday
05:31, with N valve nodes (its six rooms, then a second valve node in each,
as a larger house would have) and the boiler node. The boiler node and one
valve node (bedroom, which load sharing opens) run as processes of the
frozen single-precision node image with the ESP32's heap (-X
heapsize=48wK); every other valve node is the node runtime ticked on
CPython in this process (a virtual node: the heartbeats a MicroPython node
sends, with its view's digest, the group's config hash and its room
section), so that a 2-core machine can hold the run. Both measured nodes'
GET /status is polled every second, as a companion would.

Load sharing is made to run at once and to open every room it may, at every
tick: any calling room is short of the minimum capacity (min_calling_capacity_w
and target_capacity_w at their maximum, so the cascade runs to its last rung
each tick), and a return above 20 °C is taken as the evidence of cycling.
The boiler's minimum times are seconds (minutes in the house's time), so a
longer run takes it through pump overrun too (every open room held). The kids' rooms and
the baths call; load sharing opens the bedrooms (tier 1), the kitchens and
the lounges (tiers 2 and 3); the studies are off.

Printed per N and node: whether it ran to the end unreset (a MemoryError in
a tick halts a node and its watchdog resets it), the peak gc.mem_alloc()
(in use just before a tick's collection: the tick's garbage included), the
most live after a tick's collection and its median over the run (from the
trace), the heap's size, the tier states, the most overrides and the times
the boiler fired, the /status polls not answered 200 and, of those, the
answers the node could not build (503, its no_memory count). Figures are
bytes on this 64-bit host (objects take about twice their ESP32 size; the
48wK heap is scaled to match): compare them with the heap size. The
margin is what a smaller --heap still runs unreset, every poll answered
(46wK: 2K words to spare).

N goes up to heatsettings.MAX_ROOMS, the most a boiler node's heating.json
takes (the simulator and the node both check it): to measure more rooms,
raise it and run ./tools/setup. docs/heating.md has the figures that set it.
Not a test (tests/test_node_memory.py runs a short one at MAX_ROOMS).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from loadmesh.companion.runtimes import SMALL_HEAP
from loadmesh.companion.sim import scenario as sc
from loadmesh.companion.sim.runner import SimError, Simulation
from loadmesh.node import heatsettings

BOILER = "boiler"
VALVE = "bedroom"  # the measured valve node: load sharing's tier 1 opens it
REFERENCE = ("bath", "bedroom", "kids", "kitchen", "lounge", "study")
MAX_ROOMS = heatsettings.MAX_ROOMS  # what a boiler node's heating.json may have
POLL_MS = 1000
WARM_UP_MS = 3000  # every peer heard by then (heartbeats every 500 ms)
SPEED = 20


def valve_nodes(rooms: int) -> list[tuple[str, str]]:
    """(node id, the house's room) of N valve nodes: the six rooms, then a second node in each."""
    nodes = []
    for index in range(rooms):
        room = REFERENCE[index % len(REFERENCE)]
        nodes.append((room if index < len(REFERENCE) else room + "2", room))
    return nodes


def scenario(rooms: int, seconds: int) -> sc.Scenario:
    """The house with N valve nodes and the boiler node, load sharing forced to run (see the top)."""
    nodes: list[dict[str, object]] = [{"id": BOILER, "kind": "boiler"}]
    nodes += [{"id": node, "kind": "valve", "room": room} for node, room in valve_nodes(rooms)]
    return sc.parse({
        "about": f"the reference house with {rooms} valve nodes", "duration_s": seconds,
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": 25000, "safety_pct": 100},
        "group": {"heartbeat_ms": 500, "peer_timeout_ms": 3000},
        "house": {"model": "reference", "start_week_s": 5 * 3600 + 31 * 60, "speed": SPEED, "setpoint_dc": 700,
                  "boiler": {"min_on_ms": 5000, "min_off_ms": 2000, "pump_overrun_ms": 3000},
                  "load_sharing": {"min_calling_capacity_w": 100000, "target_capacity_w": 100000,
                                   "sufficient_capacity_w": 100000, "return_temp_risk_delta_dc": 500,
                                   "min_activation_duration_ms": 0}},
        "nodes": nodes, "events": []})


def run(rooms: int, seconds: int, workdir: Path, device_root: Path | None = None, heap: str = SMALL_HEAP,
        quiet: bool = True, answers: dict[str, list[dict[str, object]]] | None = None) -> dict[str, dict[str, object]]:
    """Run it; the figures of the boiler node and the measured valve node. With answers, each measured node's
    /status answers (the polls answered, then the last) are put in it by node: what a companion reads."""
    site = scenario(rooms, seconds)
    measured = (BOILER, VALVE)
    progress = (lambda _line: None) if quiet else (lambda line: print("sim:", line, file=sys.stderr, flush=True))
    polls: dict[str, list[dict[str, object] | None]] = {node: [] for node in measured}
    last_ms = [-POLL_MS]

    def poll(sim: Simulation) -> None:
        now_ms = sim.now_ms()
        if now_ms - last_ms[0] < POLL_MS:
            return
        last_ms[0] = now_ms
        for node in measured:
            polls[node].append(sim.status(node))

    sim = Simulation(site, workdir, device_root=device_root, progress=progress, heap=heap, keep_records=True,
                     virtual=tuple(node.id for node in site.nodes if node.id not in measured))
    refused = ""  # a node that halted before it answered its first /status (SimError)
    try:
        try:
            sim.start()
            sim.run(on_tick=poll)
        except SimError as exc:
            refused = str(exc)
        final = {node: sim.status(node) for node in measured}
        resets = {node: sim.nodes[node].resets for node in measured}
        failures = dict(sim.virtual.errors) if sim.virtual is not None else {}
        records = list(sim.records)
    finally:
        sim.close()
    if answers is not None:
        for node in measured:
            last = final[node]
            answers[node] = [status for status in polls[node] if status is not None] + ([last] if last else [])
    figures: dict[str, dict[str, object]] = {}
    for node in measured:
        answered = [status for status in polls[node] if status is not None]
        end = final[node] or {}
        memory = end.get("memory") or {}
        ticks = end.get("ticks") or {}
        assert isinstance(memory, dict) and isinstance(ticks, dict)
        memories = [status.get("memory") or {} for status in answered] + [memory]
        roles = [status.get("role") for status in answered if isinstance(status.get("role"), dict)]
        # Live after each tick's collection, from the trace (every 100 ms), once all peers can have been heard.
        live = sorted(int(r["mem_alloc"]) for r in records  # type: ignore[call-overload]
                      if r["node"] == node and isinstance(r["mem_alloc"], int) and r["mem_alloc"] > 0
                      and int(r["t_ms"]) >= WARM_UP_MS)  # type: ignore[call-overload]
        figures[node] = {
            "rooms": rooms, "seconds": seconds, "heap": (memory.get("alloc") or 0) + (memory.get("free") or 0),
            "state": end.get("state") if not refused else "did not start",
            "error": end.get("error") if not refused else refused[:300], "resets": resets[node],
            "ticks": ticks.get("count"), "late_ticks": ticks.get("late"), "max_tick_ms": ticks.get("max_ms"),
            "skipped_ticks": ticks.get("skipped"),  # out of memory once, and skipped (the last boot's)
            "peak": memory.get("peak"), "live_max": memory.get("live_max"),
            "live_median": live[len(live) // 2] if live else None,
            "peak_any_boot": max((m.get("peak") or 0 for m in memories), default=None),  # type: ignore[union-attr]
            "live_max_any_boot": max((m.get("live_max") or 0 for m in memories), default=None),  # type: ignore[union-attr]
            "polls": len(polls[node]), "polls_unanswered": len(polls[node]) - len(answered),
            "no_memory": max((_no_memory(status) for status in [*answered, end]), default=0),
            "peers_online_end": end.get("peers_online"), "virtual_failures": failures,
        }
        if node == BOILER:
            figures[node]["tiers"] = sorted({str(role["tiers"]) for role in roles})  # type: ignore[index]
            figures[node]["overrides_max"] = max((len(role["overrides"]) for role in roles), default=0)  # type: ignore[arg-type,index]
            figures[node]["fired"] = max((role["fired"] for role in roles), default=0)  # type: ignore[type-var,index]
        else:
            figures[node]["override_ticks"] = max((role["overrides_taken"] for role in roles), default=0)  # type: ignore[type-var,index]
    return figures


def _no_memory(status: dict[str, object]) -> int:
    """The answers a node's /status says it could not build (503) since its boot."""
    counters = status.get("counters") or {}
    http = counters.get("http") if isinstance(counters, dict) else None
    found = http.get("no_memory") if isinstance(http, dict) else None
    return found if isinstance(found, int) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, nargs="+", default=list(range(6, MAX_ROOMS + 1)),
                        help=f"the room counts to run (default 6..{MAX_ROOMS}, the most heating.json takes)")
    parser.add_argument("--seconds", type=int, default=30, help="length of each run (default 30)")
    parser.add_argument("--heap", default=SMALL_HEAP, help="MicroPython's heap size (default the ESP32's, "
                                                           + SMALL_HEAP + "; less to find the margin)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (each node's node.log is there)")
    args = parser.parse_args()
    failed = False
    for rooms in args.rooms:
        if not 1 <= rooms <= MAX_ROOMS:
            parser.error(f"--rooms: 1..{MAX_ROOMS} (heatsettings.MAX_ROOMS: raise it, ./tools/setup, to measure more)")
        if args.keep is not None:
            figures = run(rooms, args.seconds, args.keep / str(rooms), heap=args.heap, quiet=args.json)
        else:
            with tempfile.TemporaryDirectory(prefix="loadmesh-rooms-") as folder:
                figures = run(rooms, args.seconds, Path(folder), heap=args.heap, quiet=args.json)
        for node, found in figures.items():
            failed = failed or found["state"] != "running" or found["resets"] != 0
            if args.json:
                print(json.dumps({"node": node, **found}, sort_keys=True), flush=True)
                continue
            extra = (f"tiers {found['tiers']}, overrides up to {found['overrides_max']}, fired {found['fired']}"
                     if node == BOILER else f"ticks under an override {found['override_ticks']}")
            print(f"{rooms:>2} rooms, {node:<8} heap {args.heap} = {found['heap']}: {found['state']}, "
                  f"resets {found['resets']}, peak {found['peak_any_boot']}, live max {found['live_max_any_boot']} "
                  f"(median {found['live_median']}), "
                  f"ticks {found['ticks']} (late {found['late_ticks']}, longest {found['max_tick_ms']} ms, "
                  f"skipped out of memory {found['skipped_ticks']}), "
                  f"polls {found['polls']} ({found['polls_unanswered']} unanswered, "
                  f"{found['no_memory']} answers 503 for want of memory); {extra}"
                  + (f"; error {found['error']}" if found["error"] else "")
                  + (f"; virtual peers failed: {found['virtual_failures']}" if found["virtual_failures"] else ""),
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
