# Node side of tests/test_node_memory.py: the same tick, many times over, with 16 peers' heartbeats
# (encoded here, with rising sequence numbers) going through the mesh socket into the peer table, an
# allocation over everyone, and our own heartbeat out; prints what stays allocated after collection.
#   steady_tick.py PORT TICKS EVERY   PORT: a free UDP port for the mesh; print every EVERY ticks
import gc
import json
import socket
import sys

from loadmesh.core import allocate, heartbeat, site
from loadmesh.core.peers import PeerTable
from loadmesh.node.mesh import Mesh

MESH_PORT = int(sys.argv[1])
TICKS = int(sys.argv[2])
EVERY = int(sys.argv[3])
pads = heartbeat.prepare_key(bytes(range(32)))
peers = [f"peer{index:02d}" for index in range(16)]
table = PeerTable(pads, "home", "node", ["node"] + peers)  # noqa: RUF005
mesh = Mesh(MESH_PORT, "127.0.0.1", 9, bind_host="127.0.0.1")  # our heartbeats go to the discard port
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])


def facts(node, seq, applied_ma):
    return {"group": "home", "node": node, "boot_id": 1, "seq": seq, "circuit": "site", "phases": "L123",
            "mode": "continuous", "priority": 0, "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
            "target_ma": applied_ma, "applied_ma": applied_ma, "draw_ma": [applied_ma, applied_ma, applied_ma],
            "config_version": 1, "config_hash": "0123456789abcdef", "digest": "0011223344556677",
            "demand": True, "active": True, "failsafe": False, "meter": None, "heating": None}


own = facts("node", 0, 6000)
buffer = heartbeat.new_buffer()


def tick(number):
    # Five of the 16 peers are heard per tick (each every 300-400 ms).
    for slot in range(5):
        index = (number * 5 + slot) % 16
        message = facts(peers[index], number + 1, 6000 + 100 * (number % 7))
        size = heartbeat.encode_into(buffer, pads, message)
        sender.sendto(memoryview(buffer)[:size], destination)
    mesh.receive(table, number * 100)
    if number % 5 == 0:
        own["seq"] += 1
        mesh.send(pads, own)
    loads = []
    for node in table.nodes():
        loads.append({"id": node, "phases": "L123", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
                      "priority": 0, "mode": "continuous", "demand": True, "online": True})
    allocate.allocate(site.parse({"site": {"phases": 3, "voltage_v": 230, "limit_ma": [63000] * 3,
                                           "safety_pct": 100}, "loads": loads}))


destination = socket.getaddrinfo("127.0.0.1", MESH_PORT)[0][-1]
for number in range(1, TICKS + 1):
    tick(number)
    gc.collect()
    if number % EVERY == 0:
        print(json.dumps({"tick": number, "mem_alloc": gc.mem_alloc(), "peers": len(table.nodes()),
                          "ok": table.counts.get("ok", 0)}))
