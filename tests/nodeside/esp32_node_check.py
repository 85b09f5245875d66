# Node side of tests/test_node_hal_esp32.py and test_node_wifi.py: a node booted on the ESP32 HAL (machine and
# network faked), one tick, and what its /status says of the HAL. The node prints its console lines; the last
# line is ours.
#   esp32_node_check.py ROOT HW [STATION [MACHINE]]   ROOT: the node's folder; HW: a JSON file holding its
#                                           hw.json; STATION: one holding the fake station's fields at boot;
#                                           MACHINE: the fake chip as esp32_chip.script() sets it up (e.g.
#                                           {"esp_errors": {"ledc_timer_config": 259}})
import json
import sys

import machine
import network

from loadmesh.node import runtime
from loadmesh.node.store import Store

machine.record()  # what the outputs drove, printed as "driven"
root = sys.argv[1]
if len(sys.argv) > 3:
    with open(sys.argv[3]) as source:
        network.station.update(json.load(source))
if len(sys.argv) > 4:
    import esp32_chip

    esp32_chip.script(sys.argv[4])
with open(sys.argv[2]) as source:
    Store(root).write_json("hw.json", json.load(source))
node = runtime.Node(root)
ticked = node.tick_and_collect()
status = node.status()
# What the outputs drove, the watchdog, and what boot.py's timer feeds in three calls (None: no timer runs).
watchdog = dict(machine.watchdog)
timer = machine.timers.get(0)
for _ in range(3 if timer else 0):
    timer["callback"](None)  # a board runs it on its own
fed = machine.watchdog["feeds"] - watchdog["feeds"] if timer else None
print(json.dumps({"ticked": ticked, "hw_error": status["hw_error"], "hal": status.get("hal"), "status": status,
                  "driven": {str(pin): machine.history[pin] for pin in sorted(machine.history)},
                  "watchdog": watchdog, "fed_by_timer": fed}))
