# Node side of tests/test_cli_status.py: a node's main.py on the ESP32 HAL, machine and network faked, run in
# the current folder (its file system), with the Wi-Fi station as a file scripts it.
#   esp32_node.py STATION   JSON: what network.station holds (e.g. {"connected": true, "ifconfig": [...]})
import json
import sys

import network

with open(sys.argv[1]) as source:
    network.station.update(json.load(source))

# The fake keeps no record of the calls and reads (network.record() is not asked for): a node that runs for
# minutes reads its address at every /status, and the record grew its heap until the tick halted.

from loadmesh.node import runtime  # after the station is scripted: the HAL reads it at boot

runtime.main()

# main() returns once Ctrl-C (SIGINT here) stopped the node: what it left the board with, for
# tests/test_node_console.py. A board runs a periodic timer's callback on its own; here it is called thrice.
import machine  # noqa: E402

feeds = machine.watchdog["feeds"]
timer = machine.timers.get(0)
if timer is not None and timer["mode"] == machine.Timer.PERIODIC:
    for _ in range(3):
        timer["callback"](None)
print("after main: " + json.dumps({"timer_period_ms": timer["period"] if timer else None,
                                   "feeds_by_the_timer": machine.watchdog["feeds"] - feeds,
                                   "wdt_ms": machine.watchdog["timeout"]}))
