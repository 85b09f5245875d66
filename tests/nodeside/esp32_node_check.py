# Node side of tests/test_node_hal_esp32.py: a node booted on the ESP32 HAL (machine and network faked),
# one tick, and what its /status says of the HAL. The node prints its boot line; the last line is ours.
#   esp32_node_check.py ROOT HW   ROOT: the node's folder; HW: a JSON file holding its hw.json
import json
import sys

import machine

from loadmesh.node import runtime
from loadmesh.node.store import Store

root = sys.argv[1]
with open(sys.argv[2]) as source:
    Store(root).write_json("hw.json", json.load(source))
node = runtime.Node(root)
ticked = node.tick_and_collect()
status = node.status()
print(json.dumps({"ticked": ticked, "hw_error": status["hw_error"], "hal": status.get("hal"), "status": status,
                  "driven": {str(pin): machine.history[pin] for pin in sorted(machine.history)}}))
