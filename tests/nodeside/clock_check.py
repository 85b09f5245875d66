# Node side of tests/test_node_clock.py: feeds raw tick readings to a Clock and prints what now_ms() gives.
#   clock_check.py PERIOD R0 R1 ...   a Clock over a counter of that period, made at R0, then read at R1...
#   clock_check.py real               the real time.ticks_ms(), read a few times over 50 ms
import json
import sys
import time

from loadmesh.node.clock import Clock


class ScriptedClock(Clock):
    def __init__(self, period, readings):
        self.readings = readings
        self.position = 0
        super().__init__(period)

    def ticks_ms(self):
        value = self.readings[self.position]
        self.position += 1
        return value


if sys.argv[1] == "real":
    clock = Clock()
    seen = []
    for _ in range(6):
        seen.append(clock.now_ms())
        time.sleep_ms(10)
    print(json.dumps({"now_ms": seen}))
else:
    readings = [int(text) for text in sys.argv[2:]]
    clock = ScriptedClock(int(sys.argv[1]), readings)
    print(json.dumps({"now_ms": [clock.now_ms() for _ in readings[1:]]}))
