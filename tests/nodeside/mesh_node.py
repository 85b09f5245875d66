# Node side of tests/test_node_mesh.py: a node that sends heartbeats through the mesh and takes in its
# peers', printing its peer table every 500 ms.
#   mesh_node.py CONFIG_FILE   JSON: {"node", "port", "hub_port", "key_hex", "group", "members", "boot_id",
#                               "applied_ma", "heartbeat_ms", "peer_timeout_ms"}
import gc
import json
import sys
import time

from loadmesh.core import heartbeat
from loadmesh.core.peers import PeerTable
from loadmesh.node.clock import Clock
from loadmesh.node.mesh import Mesh

with open(sys.argv[1]) as source:
    config = json.load(source)
pads = heartbeat.prepare_key(bytes.fromhex(config["key_hex"]))
mesh = Mesh(config["port"], "127.0.0.1", config["hub_port"], bind_host="127.0.0.1")
table = PeerTable(pads, config["group"], config["node"], config["members"])
message = {
    "group": config["group"], "node": config["node"], "boot_id": config["boot_id"], "seq": 0,
    "circuit": "site", "phases": "L1", "mode": "continuous", "priority": 0,
    "min_ma": 6000, "max_ma": 16000, "step_ma": 1000, "target_ma": config["applied_ma"],
    "applied_ma": config["applied_ma"], "draw_ma": [None, None, None], "config_version": 1,
    "config_hash": "", "digest": "0011223344556677", "demand": True, "active": False, "failsafe": False,
    "meter": None, "heating": None,
}
clock = Clock()
sent_ms = -config["heartbeat_ms"]
printed_ms = 0
ticks = 0
while True:
    now_ms = clock.now_ms()
    mesh.receive(table, now_ms)
    if now_ms - sent_ms >= config["heartbeat_ms"]:
        message["seq"] += 1
        mesh.send(pads, message)
        sent_ms = now_ms
    ticks += 1
    if now_ms - printed_ms >= 500:
        printed_ms = now_ms
        snapshot = table.snapshot(now_ms, config["peer_timeout_ms"])
        gc.collect()
        print(json.dumps({"node": config["node"], "ticks": ticks, "peers": snapshot["peers"],
                          "counts": snapshot["counts"], "mesh": mesh.counts(), "mem_alloc": gc.mem_alloc()}))
    time.sleep_ms(100)
