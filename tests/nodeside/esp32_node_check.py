# Node side of tests/test_node_hal_esp32.py and test_node_wifi.py: a node booted on the ESP32 HAL (machine and
# network faked), one tick, and what its /status says of the HAL. The node prints its console lines; the last
# line is ours.
#   esp32_node_check.py ROOT HW [STATION [MACHINE]]   ROOT: the node's folder; HW: a JSON file holding its
#                                           hw.json; STATION: one holding the fake station's fields at boot;
#                                           MACHINE: the fake machine's dicts updated before boot (e.g.
#                                           {"esp_errors": {"ledc_timer_config": 259}}), and "broken": the name
#                                           of a machine class replaced by one raising TypeError, as a bug would
#                                           (or, with "broken_with": "OSError", an OSError the HAL names no field for)
import json
import sys

import machine
import network

from loadmesh.node import runtime
from loadmesh.node.store import Store

root = sys.argv[1]
if len(sys.argv) > 3:
    with open(sys.argv[3]) as source:
        network.station.update(json.load(source))
if len(sys.argv) > 4:
    with open(sys.argv[4]) as source:
        chip = json.load(source)
    for key in sorted(chip):
        if key == "broken":

            def broken(*args, **kwargs):
                if chip.get("broken_with") != "OSError":
                    raise TypeError("a bug")
                raise OSError(5, "EIO")

            setattr(machine, chip[key], broken)
        elif key != "broken_with":
            getattr(machine, key).update(chip[key])
with open(sys.argv[2]) as source:
    Store(root).write_json("hw.json", json.load(source))
node = runtime.Node(root)
ticked = node.tick_and_collect()
status = node.status()
print(json.dumps({"ticked": ticked, "hw_error": status["hw_error"], "hal": status.get("hal"), "status": status,
                  "driven": {str(pin): machine.history[pin] for pin in sorted(machine.history)}}))
