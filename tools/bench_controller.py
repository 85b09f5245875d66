"""Controller figures on each runtime: µs per tick for 2, 8 and 17 members, with the view unchanged or changed.

    .venv/bin/python tools/bench_controller.py [--rounds N]

A node's tick is controller.step() with every peer fresh in its table: when
nothing changed since the last tick (the allocation is reused), and when the
view changed (the allocation and its digest are computed again). Runs on the
staged device tree (build/device, from ./tools/setup). A script that prints
figures, never a test: timings on a shared machine are noise. The
single-precision runtime is the node image (modules frozen) with its
ESP32-sized heap; a group that does not fit in it runs again in a larger
heap, and the output says so.
"""

from __future__ import annotations

import argparse
import sys

from benchkit import run_in_process, run_on_micropython

from loadmesh.companion.runtimes import SMALL_HEAP

# The same code runs in-process on CPython and as a script on MicroPython
# (benchkit.TIMING gives both best()).
BENCH = r'''
import gc


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
    return [str(run_in_process(name, BENCH, "run", rounds, count)) for count in SIZES]


def _micropython(name: str, rounds: int) -> list[str]:
    lines = []
    for count in SIZES:
        ok, output, note = run_on_micropython(name, BENCH + MICROPYTHON_MAIN, [str(rounds), str(count)], "256wK")
        lines.append((output + ("  (" + note + ")" if note else "")) if ok else "failed: " + output)
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
