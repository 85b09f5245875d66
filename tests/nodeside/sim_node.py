# Node side of tests/test_sim_plant.py: a node on the simulated HAL that follows a script of actuator
# settings and prints what its sensors read, one JSON line per 100 ms tick.
#   sim_node.py PLANT_PORT NODE_ID SCRIPT_FILE   JSON: {"tick": [[action, value], ...]}; actions pilot_ma,
#                                           relay, valve_pct, boiler_call, applied_ma
import gc
import json
import sys
import time

from loadmesh.node.clock import Clock
from loadmesh.node.hal import open_hal

hal = open_hal({"hal": "sim", "node": sys.argv[2], "plant_port": int(sys.argv[1]), "stale_ms": 500})
with open(sys.argv[3]) as source:
    script = json.load(source)
clock = Clock()
applied_ma = 0
tick = 0
while True:
    now_ms = clock.now_ms()
    hal.poll(now_ms)
    for action, value in script.get(str(tick), []):
        if action == "pilot_ma":
            hal.set_pilot_ma(value)
            applied_ma = value
        elif action == "relay":
            hal.set_relay(value)
        elif action == "valve_pct":
            hal.set_valve_pct(value)
        elif action == "boiler_call":
            hal.set_boiler_call(value)
    gc.collect()
    hal.report(applied_ma, applied_ma, False, gc.mem_alloc(), 0)
    hal.feed_watchdog()
    meter = hal.meter()
    print(json.dumps({"tick": tick, "state": hal.pilot_state(), "current_ma": hal.current_ma(),
                      "meter": None if meter is None else [meter[0], meter[1], meter[2]],
                      "room_dc": hal.temperature_dc("room"), "flow_dc": hal.temperature_dc("flow"),
                      "valve_pct": hal.valve_pct(), "flame": hal.flame(), "week_ms": hal.week_ms()}))
    tick += 1
    time.sleep_ms(100)
