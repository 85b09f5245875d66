# Node side of tests/test_node_console.py: main.py's node on the ESP32 HAL (machine faked) stopped by an exception,
# and what main() does then. The node prints its console lines; the last line is ours.
#   boot_failure_check.py ROOT HW MACHINE WHERE RESTART_MS
#     HW: a JSON file holding hw.json; MACHINE: the fake chip as esp32_chip.script() sets it up (e.g.
#     {"broken": "PWM"}: a TypeError while the HAL builds, before the watchdog runs); WHERE: "boot" (the chip's
#     fault alone) or "loop" (the node boots, and its run() raises a TypeError, as a bug in the loop would).
import json
import sys

import esp32_chip
import machine

from loadmesh.node import runtime
from loadmesh.node.store import Store

root = sys.argv[1]
with open(sys.argv[2]) as source:
    Store(root).write_json("hw.json", json.load(source))
esp32_chip.script(sys.argv[3])
before = {}  # what the outputs had driven when the loop failed
if sys.argv[4] == "loop":

    async def failing_run(node):
        for pin in sorted(machine.history):
            before[str(pin)] = list(machine.history[pin])
        raise TypeError("a bug in the loop")

    runtime.Node.run = failing_run
runtime.RESTART_MS = int(sys.argv[5])
machine.record()
try:
    runtime.main(root)
    ended = "returned"
except machine.Reset:
    ended = "reset"
print(json.dumps({"ended": ended, "resets": machine.resets["made"], "wdt_ms": machine.watchdog["timeout"],
                  "driven": {str(pin): machine.history[pin] for pin in sorted(machine.history)},
                  "driven_before_the_failure": before}))
