"""A node with 16 peers, run for a while: the real node runtime on the 12K-word heap, its memory and its ticks.

    .venv/bin/python tools/node_memory_peers.py [--seconds 600]

One node (n01) runs as a process of the frozen single-precision node image
with the ESP32's heap (-X heapsize=48wK), exactly as in `loadmesh sim`; its
16 peers are the same runtime ticked on CPython in this process (virtual
nodes: the same heartbeats on the wire, the same controller), so that a
2-core machine can hold the run. All 17 share a three-phase 63 A supply,
and their cars come and go every few seconds, so views, allocations and
heartbeats keep changing. The script polls the node's GET /status (as a
companion would) and prints: ticks, late ticks, the longest tick, peers
heard, the peak gc.mem_alloc() (in use just before a tick's collection),
the most live after a collection, the heap's size, and whether the node
ever halted (a MemoryError in a tick halts it and its watchdog resets it).
Figures are bytes on this 64-bit host (objects take about twice their ESP32
size; the 48wK heap is scaled to match): compare them with the heap size.
Not a test (tests/test_node_memory.py runs 25 seconds of it).

--meter makes the site's mains meter n01's (site.meter_node): the plant
gives it a reading every second (8 A of house load per phase beside the
cars' draws), and n01 runs what only a meter node runs on top of a member's
tick (meterview: its members' draw minima every tick, the section it
publishes in its heartbeats) while every node's view reads the meter.
--meter-node n02 makes it a peer's instead (a virtual node): n01 is then an
ordinary member of a metered site, whose view reads the section n02 publishes.

A MemoryError resets the node (its watchdog), and its /status figures start
again: peak_any_boot and live_max_any_boot are the most any boot's showed (at
the polls and at the end), peak and live_max the last boot's.

--flood adds a LAN client that needs no token, from the 5th second on:
connections as fast as it can make them, each announcing an 8 KB PUT /adopt
body (sent whole) and closing after the first bytes of the answer, and a
second one doing the same with GET /status. The node must run on unreset.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from loadmesh.companion.runtimes import SMALL_HEAP
from loadmesh.companion.sim import scenario as sc
from loadmesh.companion.sim import trace
from loadmesh.companion.sim.runner import Simulation

NODES = [f"n{index:02d}" for index in range(1, 18)]
MEASURED = "n01"
STATUS_EVERY_S = 5.0
WARM_UP_MS = 3000  # every peer heard by then (heartbeats every 500 ms)


HOUSE_MA = 8000  # the unmanaged load per phase the meter reads beside the cars (--meter)
METER_INTERVAL_MS = 1000  # a reading a second, as a DSMR 5 P1 port sends them


def scenario(seconds: int, meter: bool = False, meter_node: str = MEASURED) -> sc.Scenario:
    """17 EVSEs on 3 x 63 A: 5 on all phases, 4 on each phase; a car leaves and one returns every 4 s.

    With meter, the mains meter is meter_node's (the measured node's unless told).
    """
    nodes = []
    for index, node in enumerate(NODES):
        phases = "L123" if index < 5 else ("L1", "L2", "L3")[index % 3]
        nodes.append({"id": node, "kind": "evse", "phases": phases, "min_ma": 6000, "max_ma": 16000,
                      "step_ma": 1000, "priority": index % 3, "mode": "continuous",
                      "car": {"plug_at_s": 0, "lag_ms": 1000 + 250 * (index % 5)}})
    events = []
    at_s = 6
    turn = 0
    while at_s + 2 < seconds:
        node = NODES[turn % len(NODES)]
        events.append({"at_s": at_s, "unplug": node})
        events.append({"at_s": at_s + 2, "plug": node})
        at_s += 4
        turn += 1
    raw: dict[str, object] = {
        "about": "a node with 16 peers", "duration_s": seconds,
        "site": {"phases": 3, "voltage_v": 230, "limit_ma": 63000, "safety_pct": 100},
        "group": {"heartbeat_ms": 500, "peer_timeout_ms": 3000, "ev_lag_ms": 2000},
        "nodes": nodes, "events": events}
    if meter:
        raw["meter"] = {"node": meter_node, "unmanaged_ma": HOUSE_MA, "interval_ms": METER_INTERVAL_MS}
    return sc.parse(raw)


FLOOD_FROM_S = 5
FLOOD_REQUESTS = (b"PUT /adopt HTTP/1.0\r\nContent-Length: 8192\r\n\r\n" + b" " * 8192,
                  b"GET /status HTTP/1.0\r\n\r\n")


def _flood(port: int, request: bytes, stop: threading.Event, counts: dict[str, int]) -> None:
    """Connect, send request, read a little, close; again, until stop."""
    stop.wait(FLOOD_FROM_S)
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as client:
                client.sendall(request)
                client.recv(200)
            counts["connections"] += 1
        except OSError:
            counts["refused"] += 1
            time.sleep(0.001)


def run(seconds: int, workdir: Path, device_root: Path | None = None, quiet: bool = False,
        heap: str = SMALL_HEAP, flood: bool = False, meter: bool = False,
        meter_node: str = MEASURED) -> dict[str, object]:
    """Run it; the figures (see the module's docstring)."""
    site = scenario(seconds, meter, meter_node)
    said: list[str] = []  # the runner's lines of a reset (its watchdog fired): kept when quiet, for the figures

    def progress(line: str) -> None:
        if "watchdog" in line:
            said.append(line)
        if not quiet:
            print("sim:", line, file=sys.stderr, flush=True)

    polled: list[dict[str, object]] = []

    def poll(sim: Simulation) -> None:
        now_ms = sim.now_ms()
        if not polled or now_ms - int(polled[-1]["t_ms"]) >= STATUS_EVERY_S * 1000:  # type: ignore[call-overload]
            polled.append({"t_ms": now_ms, "status": sim.status(MEASURED) or {}})

    sim = Simulation(site, workdir, device_root=device_root, keep_records=True, progress=progress,
                     virtual=tuple(node for node in NODES if node != MEASURED), heap=heap)
    stop = threading.Event()
    flooding: list[threading.Thread] = []
    flood_counts = {"connections": 0, "refused": 0}
    try:
        sim.start()
        if flood:
            port = sim.nodes[MEASURED].http_port
            flooding = [threading.Thread(target=_flood, args=(port, request, stop, flood_counts), daemon=True)
                        for request in FLOOD_REQUESTS]
            for thread in flooding:
                thread.start()
        sim.run(on_tick=poll)
        stop.set()
        for thread in flooding:
            thread.join()
        final = sim.status(MEASURED) or {}
        resets = sim.nodes[MEASURED].resets
        peer_failures = dict(sim.virtual.errors) if sim.virtual is not None else {}
        records = list(sim.records)
        # Why it reset or halted, in the node's words (its traceback; node.log keeps every boot's lines).
        log_tail = sim.log_tail(MEASURED, 12) if resets or final.get("state") != "running" else ""
    finally:
        sim.close()
    measured = [record for record in records if record["node"] == MEASURED]
    # After the first heartbeats (the first poll comes at once, before any peer was heard).
    online = [(s["t_ms"], s["status"].get("peers_online")) for s in polled  # type: ignore[attr-defined]
              if s["status"] and s["t_ms"] >= WARM_UP_MS]  # type: ignore[operator]
    memory = final.get("memory", {})
    ticks = final.get("ticks", {})
    assert isinstance(memory, dict) and isinstance(ticks, dict)
    # Every boot's figures seen (a reset starts them again).
    memories = [s["status"].get("memory") or {} for s in polled if s["status"]] + [memory]  # type: ignore[attr-defined]
    return {
        "seconds": seconds, "meter": meter_node if meter else None, "state": final.get("state"),
        "error": final.get("error"), "resets": resets, "resets_said": said, "log_tail": log_tail,
        "ticks": ticks.get("count"), "late_ticks": ticks.get("late"), "max_tick_ms": ticks.get("max_ms"),
        "skipped_ticks": ticks.get("skipped"),  # out of memory once, and skipped (the last boot's)
        "peers_online_min": min((n for _t, n in online if isinstance(n, int)), default=None),
        "peers_online_dips": [[t_ms, n] for t_ms, n in online if n != len(NODES) - 1],  # [t_ms, online]
        "peers_online_end": final.get("peers_online"),
        # Why a peer was not heard at the end: how long ago each was, and any virtual peer that failed.
        "peer_ages_end_ms": {peer: row[0] for peer, row in sorted(final.get("peers", {}).items())},
        "peer_failures": peer_failures,
        "heap": (memory.get("alloc") or 0) + (memory.get("free") or 0),
        "peak": memory.get("peak"), "live_max": memory.get("live_max"),
        "peak_any_boot": max((m.get("peak") or 0 for m in memories), default=None),
        "live_max_any_boot": max((m.get("live_max") or 0 for m in memories), default=None),
        "trace_mem_alloc_max": max((r["mem_alloc"] for r in measured if isinstance(r["mem_alloc"], int)),
                                   default=None),
        "heartbeats": final.get("counters", {}).get("heartbeats"),  # type: ignore[attr-defined]
        "violations": len(trace.violations(records, site)),
        "flood": flood_counts if flood else None,
        "http": final.get("counters", {}).get("http"),  # type: ignore[attr-defined]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the run (default 60; the issue's: 600)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--heap", default=SMALL_HEAP, help="MicroPython's heap size (default the ESP32's, "
                                                           + SMALL_HEAP + "; more only to see what it would need)")
    parser.add_argument("--flood", action="store_true", help="flood the node's HTTP API from the 5th second on "
                                                              "(clients without the token)")
    parser.add_argument("--meter", action="store_true", help="the site's mains meter is the measured node's")
    parser.add_argument("--meter-node", choices=NODES, help="the site's mains meter is this node's (implies --meter; "
                                                             "another than " + MEASURED + ": it is a member)")
    args = parser.parse_args()
    meter = args.meter or args.meter_node is not None
    meter_node = args.meter_node or MEASURED
    with tempfile.TemporaryDirectory(prefix="loadmesh-memory-") as folder:
        figures = run(args.seconds, Path(folder), heap=args.heap, flood=args.flood, meter=meter,
                      meter_node=meter_node)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return 0
    role = (", the meter node" if meter_node == MEASURED else ", a member (" + meter_node + " the meter node)") \
        if meter else ""
    print(f"node {MEASURED}{role}, 16 peers, {args.seconds} s, node image, heap {args.heap} = {figures['heap']} bytes "
          "here")
    print(f"state at the end: {figures['state']} (watchdog resets: {figures['resets']}; error: {figures['error']})")
    if figures["log_tail"]:
        print(f"the node's last lines: {figures['log_tail']}")
    print(f"ticks {figures['ticks']}, late {figures['late_ticks']}, longest {figures['max_tick_ms']} ms, "
          f"skipped out of memory {figures['skipped_ticks']}")
    print(f"peers heard: {figures['peers_online_min']} at least (polled every {STATUS_EVERY_S:.0f} s after the "
          f"first {WARM_UP_MS // 1000} s), {figures['peers_online_end']} at the end; "
          f"polls with fewer: {figures['peers_online_dips']}")
    print(f"peak gc.mem_alloc() before a tick's collection: {figures['peak']} bytes")
    print(f"most live after a tick's collection: {figures['live_max']} bytes")
    print(f"any boot's (after a reset the figures start again): peak {figures['peak_any_boot']}, "
          f"live {figures['live_max_any_boot']} bytes")
    print(f"heartbeats: {figures['heartbeats']}")
    print(f"samples with the applied limits over a limit: {figures['violations']}")
    if args.flood:
        print(f"flood: {figures['flood']}; the node's HTTP counters at the end: {figures['http']}")
    return 0 if figures["state"] == "running" and figures["resets"] == 0 else 1


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
