# The node side of tools/node_memory.py (and tests/test_node_memory.py), run on MicroPython: what a
# node's modules cost in heap, what a full peer table costs, and the heap over a run shaped like a
# node's: a 100 ms tick taking in heartbeats of up to 16 peers, sending its own every 500 ms,
# allocating over everyone it hears at every tick (an upper bound: the controller recomputes only
# when its inputs change), collecting between ticks, and serving the HTTP API beside it.
#   node_memory_mp.py SETTINGS_FILE   JSON: {"port", "http_port", "key_hex", "group", "peers": [ids],
#                                      "seconds", "report_ms"}
# Prints JSON lines: {"imports": [[module, bytes], ...]}, {"table": {...}}, then one {"t_ms", ...}
# per report, and {"done": ...} at the end.
import gc
import json
import sys

# Everything measured is done in functions: a frame that stays live (the
# script's own, which runs the node) would keep its temporaries alive.
MODULES = ("loadmesh.core.errors", "loadmesh.core.canon", "loadmesh.core.fieldcheck", "loadmesh.core.hmac256",
           "loadmesh.core.heartbeat", "loadmesh.core.peers", "loadmesh.core.pilot", "loadmesh.core.sensor",
           "loadmesh.core.site", "loadmesh.core.view", "loadmesh.core.allocate", "loadmesh.core.headroom",
           "loadmesh.node.clock", "loadmesh.node.store", "loadmesh.node.hal", "loadmesh.node.simproto",
           "loadmesh.node.hal_sim", "loadmesh.node.mesh", "loadmesh.node.httpapi")


def measure_imports():
    # Room to report a MemoryError in: without it, whether the report itself
    # fits depends on a few hundred bytes of whichever module failed to load.
    reserve = bytearray(2048)
    gc.collect()
    start = gc.mem_alloc()
    costs = []
    for name in MODULES:
        gc.collect()
        before = gc.mem_alloc()
        try:
            __import__(name)
        except MemoryError:
            del reserve
            gc.collect()
            print(json.dumps({"imports": costs, "memory_error": name}))
            sys.exit(0)
        gc.collect()
        costs.append([name, gc.mem_alloc() - before])
    del reserve
    gc.collect()
    print(json.dumps({"imports": costs, "total": gc.mem_alloc() - start, "heap": gc.mem_alloc() + gc.mem_free()}))


measure_imports()

import asyncio  # noqa: E402  (measured above, through httpapi)

from loadmesh.core import allocate, heartbeat, site  # noqa: E402
from loadmesh.core.peers import PeerTable  # noqa: E402
from loadmesh.node.clock import Clock  # noqa: E402
from loadmesh.node.httpapi import Api, HttpServer, token_for  # noqa: E402
from loadmesh.node.mesh import Mesh  # noqa: E402

with open(sys.argv[1]) as _source:
    settings = json.load(_source)
pads = heartbeat.prepare_key(bytes.fromhex(settings["key_hex"]))
group = settings["group"]
own = "node"
members = [own] + settings["peers"]


def facts(node, seq, applied_ma):
    return {"group": group, "node": node, "boot_id": 1, "seq": seq, "circuit": "site", "phases": "L123",
            "mode": "continuous", "priority": 0, "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
            "target_ma": applied_ma, "applied_ma": applied_ma, "draw_ma": [applied_ma, applied_ma, applied_ma],
            "config_version": 1, "config_hash": "0123456789abcdef", "digest": "0011223344556677",
            "demand": True, "active": True, "failsafe": False, "meter": None, "heating": None}


def measure_table():
    """What a full table costs: every peer's decoded heartbeat and its entry."""
    full = PeerTable(pads, group, own, members)
    gc.collect()
    before = gc.mem_alloc()
    for index in range(len(settings["peers"])):
        full.receive(heartbeat.encode(pads, facts(settings["peers"][index], 1, 6000 + index)), 0)
    gc.collect()
    print(json.dumps({"table": {"peers": len(full.nodes()), "bytes": gc.mem_alloc() - before}}))


measure_table()
table = PeerTable(pads, group, own, members)  # the run starts empty


class NodeApi(Api):
    def status(self):
        return {"peers": table.nodes(), "counts": table.counts}


mesh = Mesh(settings["port"], "127.0.0.1", settings["port"], bind_host="127.0.0.1")
server = HttpServer(NodeApi(), port=settings["http_port"], host="127.0.0.1")
token = token_for(bytes.fromhex(settings["key_hex"]))
clock = Clock()
own_facts = facts(own, 0, 6000)
state = {"peak": 0, "steady": 0, "live_max": 0, "ticks": 0, "allocations": 0, "errors": 0, "sent_ms": -500}


def scenario_of(now_ms):
    """An allocate request over this node and every peer in the table (what a controller would build)."""
    loads = [{"id": own, "phases": "L123", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000, "priority": 0,
              "mode": "continuous", "demand": True, "online": True}]
    for node in table.nodes():
        peer = table.peer(node)
        loads.append({"id": node, "phases": "L123", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
                      "priority": 0, "mode": "continuous", "demand": True,
                      "online": table.online(node, now_ms, 3000), "reserve_ma": peer.applied_ma()})
    return {"site": {"phases": 3, "voltage_v": 230, "limit_ma": [63000, 63000, 63000], "safety_pct": 100},
            "loads": loads}


def tick(now_ms):
    """One control tick's work. A plain function: what it leaves behind dies with its frame (a
    coroutine's frame lives on the heap, and the collector would keep its stale slots alive)."""
    mesh.receive(table, now_ms)
    if now_ms - state["sent_ms"] >= 500:
        own_facts["seq"] += 1
        mesh.send(pads, own_facts)
        state["sent_ms"] = now_ms
    try:
        allocate.allocate(site.parse(scenario_of(now_ms)))
        state["allocations"] += 1
    except MemoryError:
        state["errors"] += 1


async def ticker():
    reported_ms = 0
    end_ms = settings["seconds"] * 1000
    while True:
        now_ms = clock.now_ms()
        tick(now_ms)
        # The tick's high-water mark is what is in use before the collection
        # (the heap size when it filled up and collected on its own).
        in_use = gc.mem_alloc()
        state["peak"] = in_use if in_use > state["peak"] else state["peak"]
        gc.collect()
        live = gc.mem_alloc()
        state["steady"] = live
        state["live_max"] = live if live > state["live_max"] else state["live_max"]
        state["ticks"] += 1
        if now_ms - reported_ms >= settings["report_ms"]:
            reported_ms = now_ms
            print(json.dumps({"t_ms": now_ms, "peers": len(table.nodes()),
                              "online": sum(1 for n in table.nodes() if table.online(n, now_ms, 3000)),
                              "peak": state["peak"], "steady": live, "ticks": state["ticks"],
                              "errors": state["errors"], "free": gc.mem_free(), "counts": table.counts}))
        if now_ms >= end_ms:
            print(json.dumps({"done": state}))
            return
        await asyncio.sleep_ms(100)


async def main():
    await server.start()
    await ticker()


asyncio.run(main())
