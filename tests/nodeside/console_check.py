# Node side of tests/test_node_console.py: boot.py as a board runs it after a reset of the given cause, then
# optionally the ESP32 HAL built as main.py's node builds it; machine faked.
#   console_check.py soft|power BOOT_PY [HW_JSON]
# Prints one JSON line: the timer boot.py left (its period, and the watchdog feeds from three of its calls), and
# whether a timer still runs once the HAL is built.
import json
import sys

import machine

machine.resets["cause"] = machine.SOFT_RESET if sys.argv[1] == "soft" else machine.PWRON_RESET
with open(sys.argv[2]) as source:
    exec(source.read(), {"__name__": "boot"})

out = {"wdt_ms": machine.watchdog["timeout"], "timer_period_ms": None, "feeds_by_the_timer": 0}
timer = machine.timers.get(0)
if timer is not None and timer["mode"] == machine.Timer.PERIODIC:
    out["timer_period_ms"] = timer["period"]
    before = machine.watchdog["feeds"]
    for _ in range(3):
        timer["callback"](None)  # a board runs it on its own
    out["feeds_by_the_timer"] = machine.watchdog["feeds"] - before
if len(sys.argv) > 3:
    from loadmesh.node.hal import open_hal

    hal = open_hal(json.loads(sys.argv[3]))
    out["wdt_ms_of_the_hal"] = machine.watchdog["timeout"]
    out["timer_once_the_hal_runs"] = 0 in machine.timers
print(json.dumps(out))
