# Node side of tests/test_node_wifi.py's bind_host and http_host tests: a node on the ESP32 HAL (machine and network
# faked) whose node.json names a bind_host and an http_host, its HTTP server made for that host as run() makes it
# (not started: the unix port could not listen on a LAN address it lacks), its Wi-Fi station given addresses in
# turn as DHCP would; after each, a tick (the HAL polls the station) and what the sync loop does between ticks
# (Node._check_hosts). The node prints its console lines; the last line is ours: /status's bind_error after each
# address.
#   hosts_check.py ROOT HW NODE ADDRESS...   HW, NODE: JSON files holding hw.json and node.json; each
#                                            ADDRESS the station's from then on ("-": not joined)
import json
import sys

import network

from loadmesh.node import runtime
from loadmesh.node.clock import Clock
from loadmesh.node.httpapi import HttpServer
from loadmesh.node.store import Store


class SteppedClock(Clock):
    """A second on per address: the HAL reads the station's status once a second (wifijoin.CHECK_MS)."""

    def __init__(self) -> None:
        super().__init__()
        self.at_ms = 0

    def now_ms(self) -> int:
        return self.at_ms


root = sys.argv[1]
store = Store(root)
for name, path in (("hw.json", sys.argv[2]), ("node.json", sys.argv[3])):
    with open(path) as source:
        store.write_json(name, json.load(source))
clock = SteppedClock()
node = runtime.Node(root, clock)
node.server = HttpServer(runtime.NodeApi(node), port=node.settings["http_port"], host=node.settings["http_host"])
said = []
for address in sys.argv[4:]:
    clock.at_ms += 1000
    if address == "-":
        network.disconnected(200)  # WIFI_REASON_BEACON_TIMEOUT: the link lost
    else:
        network.got_ip([address, "255.255.255.0", "192.168.1.1", "192.168.1.1"])
    assert node.tick_and_collect()
    node._check_hosts()
    said.append(node.status()["bind_error"])
print(json.dumps(said))
