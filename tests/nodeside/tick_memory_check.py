# Node side of tests/test_node_tick_memory.py: a node of a one-member group on the ESP32 HAL (machine faked), a car
# asking for current (its control pilot read as state C), run by tick_and_collect() as the control loop runs it,
# with ticks made to run out of memory.
#   tick_memory_check.py ROOT SCRIPT   ROOT: the node's folder (key, config, node.json, hw.json written);
#                                      SCRIPT: a JSON file {"adc_uv": the pilot's ADC readings, "ticks": [...]}
# Each of "ticks" is one tick_and_collect(), 100 ms after the one before: "good"; "locked", the heap locked
# (micropython.heap_lock) through controller.step, which then meets a real MemoryError at its first allocation;
# "locked_allocation", the same through allocate.targets_ma alone, half way through the step with the memo half
# made (armed until the allocation runs: at a new view); "locked_send", through the mesh's send of a heartbeat,
# after the outputs were driven (armed until a heartbeat is sent); "driver", the role's apply() raising
# MemoryError (a driver out of memory while the outputs are driven). After each tick one JSON line: what it
# returned, the node's state and status, the controller's state, the watchdog's feeds and what the pilot and the
# relay were driven to in that tick, and what the plan's memo holds.
import json
import sys

import machine
import micropython

from loadmesh.core import allocate, canon, controller
from loadmesh.node import runtime
from loadmesh.node.clock import Clock


class SteppedClock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.at_ms = 0

    def now_ms(self) -> int:
        return self.at_ms


def locked(module, name):
    """module.name with the heap locked through its next call, which then puts the real one back."""
    function = getattr(module, name)

    def call(*args):
        setattr(module, name, function)
        micropython.heap_lock()
        try:
            return function(*args)
        finally:
            micropython.heap_unlock()

    setattr(module, name, call)


def driver_out_of_memory(*args):
    raise MemoryError("memory allocation failed, allocating 64 bytes")


with open(sys.argv[2]) as source:
    script = json.load(source)
machine.record()
clock = SteppedClock()
node = runtime.Node(sys.argv[1], clock)
machine.adc_uv[36] = script["adc_uv"]
for kind in script["ticks"]:
    clock.at_ms += runtime.TICK_MS
    if kind == "locked":
        locked(controller, "step")
    elif kind == "locked_allocation":
        locked(allocate, "targets_ma")
    elif kind == "locked_send":
        locked(node.mesh, "send")
    elif kind == "driver":
        node.role.apply = driver_out_of_memory
    sent = node.mesh.counts()["sent"]
    before = {pin: len(machine.history.get(pin, [])) for pin in (25, 26)}
    ticked = node.tick_and_collect()
    if kind == "driver":
        del node.role.apply
    status = node.status()
    print(json.dumps({"tick": kind, "ticked": ticked, "mode": node.mode, "error": status["error"],
                      "applied_ma": status.get("applied_ma"), "ticks": status["ticks"],
                      "heartbeats_sent": node.mesh.counts()["sent"] - sent,
                      "state": canon.dumps(node.state) if node.state is not None else None,
                      "feeds": machine.watchdog["feeds"],
                      "pilot": machine.history.get(25, [])[before[25]:],
                      "relay": machine.history.get(26, [])[before[26]:],
                      # What the plan's memo holds: a view's key, its targets, the key of the digest that tells it.
                      "memo": [node.plan._view_key is not None, len(node.plan._targets),
                               node.plan._digest_key is not None]}))
