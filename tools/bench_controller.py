"""Controller figures on each runtime: µs per tick for 2, 8 and 17 members, with the view unchanged or changed.

    .venv/bin/python tools/bench_controller.py [--rounds N]

A node's tick is controller.step() with every peer fresh in its table: when
nothing changed since the last tick (the allocation is reused), and when the
view changed (the allocation and its digest are computed again). Runs on the
staged device tree (build/device, from ./tools/setup). A script that prints
figures, never a test: timings on a shared machine are noise. The
single-precision runtime runs with its ESP32-sized heap where the modules
and the group fit; where they do not (from .mpy the controller's modules
alone take most of a 12K-word heap) it says so and uses a larger one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from loadmesh.companion.paths import device_tree
from loadmesh.companion.runtimes import SMALL_HEAP, MicroPythonRuntime, load_compiled_core, load_pure_core, open_runtime

# The same script runs in-process on CPython and as a file on MicroPython.
BENCH = r'''
import gc
try:
    from time import ticks_us, ticks_diff
except ImportError:
    from time import perf_counter
    def ticks_us():
        return int(perf_counter() * 1000000)
    def ticks_diff(a, b):
        return a - b


def best(action, rounds):
    # The fastest of five runs: on a shared machine the rest is someone else's time.
    fastest = None
    for _ in range(5):
        start = ticks_us()
        for _ in range(rounds):
            action()
        spent = ticks_diff(ticks_us(), start)
        fastest = spent if fastest is None or spent < fastest else fastest
    return fastest / rounds


def group(count):
    members = []
    for index in range(count):
        members.append({"id": "m%02d" % index, "kind": "evse", "circuit": "garage" if index % 2 else "site",
                        "phases": "L123" if index % 3 == 0 else ("L1", "L2", "L3")[index % 3],
                        "min_ma": 6000, "max_ma": 16000, "step_ma": 1000})
    return {"group": "house", "version": 1, "updated_at": 1, "origin": "bench", "key_id": "k",
            "site": {"phases": 3, "voltage_v": 230, "limit_ma": 63000, "safety_pct": 100},
            "circuits": [{"id": "garage", "parent": "site", "limit_ma": 32000}],
            "members": members, "failsafe": {"mode": "disable", "current_ma": 0}}


def run(core, rounds, count):
    controller = core.controller
    config = core.groupconfig.parse(group(count))
    plan = controller.prepare(config, "m00")
    table = core.peers.PeerTable((b"", b""), "house", "m00", plan.ids)
    for index in range(1, count):
        member = plan.members[index]
        message = {"group": "house", "node": member["id"], "boot_id": 1, "seq": 1, "circuit": member["circuit"],
                   "phases": member["phases"], "mode": "continuous", "priority": 0, "min_ma": 6000,
                   "max_ma": 16000, "step_ma": 1000, "demand": True, "active": True, "failsafe": False,
                   "draw_ma": [None, None, None], "target_ma": 6000, "applied_ma": 6000,
                   "config_version": 1, "config_hash": plan.announced, "digest": "", "meter": None,
                   "heating": None, "control": {"target_seq": 1, "exposure_ma": 6000}}
        table.accept_decoded(message, 0)
    state = controller.boot(plan, 1, 0)
    inputs = {"demand": True, "draw_ma": [0, 0, 0]}
    holder = [state]

    def tick():
        out, holder[0] = controller.step(plan, holder[0], inputs, table, 100)

    def changed():
        plan._view_key = None  # as if a peer's news changed the view
        out, holder[0] = controller.step(plan, holder[0], inputs, table, 100)

    tick()
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    tick()
    after = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    return {"members": count, "tick_us": int(best(tick, rounds)),
            "changed_us": int(best(changed, max(1, rounds // 10))),
            "garbage_per_tick_bytes": (after - before) if hasattr(gc, "mem_alloc") else "n/a"}
'''

MICROPYTHON_MAIN = r'''
import sys
import loadmesh.core.groupconfig
import loadmesh.core.controller
import loadmesh.core.peers
import loadmesh.core as core
print(run(core, int(sys.argv[1]), int(sys.argv[2])))
'''

SIZES = (2, 8, 17)


def _in_process(name: str, rounds: int) -> list[str]:
    tree = device_tree()
    package = load_pure_core(tree / "py" / "lib" / "loadmesh" / "core") if name == "cpython-pure" \
        else load_compiled_core(None)
    for module in ("groupconfig", "controller", "peers"):
        __import__(package.__name__ + "." + module)
    namespace: dict[str, object] = {}
    exec(BENCH, namespace)
    run = namespace["run"]
    assert callable(run)
    return [str(run(package, rounds, count)) for count in SIZES]


def _micropython(name: str, rounds: int) -> list[str]:
    runtime = open_runtime(name, device_tree())
    assert isinstance(runtime, MicroPythonRuntime)
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bench.py"
        script.write_text(BENCH + MICROPYTHON_MAIN)
        for count in SIZES:
            line = ""
            for heap in ([runtime.heap, "256wK"] if runtime.heap else [None]):
                flags = ["-X", "heapsize=" + heap] if heap else []
                done = subprocess.run([str(runtime.binary), *flags, str(script), str(rounds), str(count)],
                                      capture_output=True, text=True, env=runtime.environment())
                if done.returncode == 0:
                    line = done.stdout.strip() + ("" if heap == runtime.heap else f"  (heap {heap}: "
                                                  f"{runtime.heap} is too small from .mpy)")
                    break
                line = "failed: " + done.stderr.strip().splitlines()[-1]
            lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    print(f"controller.step, {args.rounds} rounds; micropython-f32 has a {SMALL_HEAP} heap")
    for name in ("cpython-pure", "cpython-compiled"):
        for line in _in_process(name, args.rounds):
            print(f"{name:>17}: {line}")
    for name in ("micropython", "micropython-f32"):
        for line in _micropython(name, max(1, args.rounds // 5)):
            print(f"{name:>17}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
