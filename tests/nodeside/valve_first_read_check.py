# Node side of tests/test_node_heating_roles.py: a valve node's first seconds on the ESP32 HAL (machine, network and
# onewire faked), its room's DS18B20 on the bus, as a node's main.py boots it, with a clock the script sets.
#   valve_first_read_check.py ROOT FILE   ROOT: the node's folder (key, config, node.json, heating.json, hw.json);
#                                         FILE: {"rom": hex, "power_on": pad, "reading": pad, "converted_ms": ms,
#                                         "until_ms": ms, "inbox_port": port}
# The sensor answers its power-on scratchpad (85.0 C) until its first conversion has completed (converted_ms after
# the first tick, which starts it), then the reading. A tick every 100 ms from 0 to until_ms; one JSON line a tick:
# the heartbeat the node sent then (hex, as it went on the wire to inbox_port; null if none) and its role's view.
import gc
import json
import select
import socket
import sys

import onewire

from loadmesh.node import runtime


class Clock:
    def __init__(self):
        self.ms = 0

    def now_ms(self):
        return self.ms


def main():
    root = sys.argv[1]
    with open(sys.argv[2]) as source:
        script = json.load(source)
    rom = bytes.fromhex(script["rom"])
    onewire.scratchpads[rom] = bytes(script["power_on"])
    inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbox.bind(socket.getaddrinfo("127.0.0.1", script["inbox_port"])[0][-1])
    waiting = select.poll()
    waiting.register(inbox, select.POLLIN)
    clock = Clock()
    node = runtime.Node(root, clock)
    assert node.mode == "running", node.error
    while clock.ms <= script["until_ms"]:
        if clock.ms >= script["converted_ms"]:
            onewire.scratchpads[rom] = bytes(script["reading"])
        sent = node.mesh.sent
        node.tick()
        data = None
        if node.mesh.sent != sent:
            # A loopback datagram may arrive a moment after sendto() returns: waited for (30 s only if it never comes).
            assert waiting.poll(30000), "the heartbeat never arrived"
            data = inbox.recv(1024).hex()
        status = node.role.status()
        print(json.dumps({"ms": clock.ms, "sent": data, "reason": status["reason"], "temp_dc": status["temp_dc"],
                          "unread": status.get("unread")}))
        clock.ms += 100


# As main.py: a collection before the node is built, and then every GC_THRESHOLD bytes (runtime.main); the node
# built in a function, so that no module-level frame keeps the boot's temporaries.
gc.collect()
gc.threshold(runtime.GC_THRESHOLD)
main()
