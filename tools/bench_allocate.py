"""Benchmark of the allocation engine on the four runtimes (run it through tools/bench-allocate).

Prints µs per allocation for 8, 32 and 128 loads, three ways: "full" is what
a node does each time its view changes (check the scenario dict, build the
site model, allocate, digest); "allocate" is allocate() on a model already
built (targets, reasons, digest); "targets" is the allocation algorithm alone
(targets_ma). Also the compiled-vs-pure speedups, and on MicroPython the bytes
one full allocation allocates (garbage included; a 32-bit ESP32 needs about
half as many for the same objects).

The single-precision runtime runs with the ESP32-like 12K-word heap; when a
scenario does not fit in it (128 loads: the scenario dict alone is larger),
it runs again with a larger heap and says so.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from benchkit import ROOT, run_on_micropython

from loadmesh.companion.paths import device_tree
from loadmesh.companion.runtimes import load_compiled_core, load_pure_core

SIZES = (8, 32, 128)
GOAL_F32_32_US = 2000
GOAL_SPEEDUP_128 = 3.0
LARGER_HEAP = "512wK"

# Runs inside MicroPython: argv = scenario file, repeats, iterations per repeat.
_MICROPYTHON_BENCH = """
import gc, json, sys, time
from loadmesh.core import allocate, site
with open(sys.argv[1]) as source:
    scenario = json.loads(source.read())
repeats, count = int(sys.argv[2]), int(sys.argv[3])
model = site.parse(scenario)
allocate.allocate(model)
gc.collect()
before = gc.mem_alloc()
allocate.allocate(site.parse(scenario))
churn = gc.mem_alloc() - before
best_full = best_alloc = best_targets = 1 << 30
for _ in range(repeats):
    gc.collect()
    start = time.ticks_us()
    for _ in range(count):
        allocate.targets_ma(model)
    best_targets = min(best_targets, time.ticks_diff(time.ticks_us(), start))
    gc.collect()
    start = time.ticks_us()
    for _ in range(count):
        allocate.allocate(site.parse(scenario))
    best_full = min(best_full, time.ticks_diff(time.ticks_us(), start))
    gc.collect()
    start = time.ticks_us()
    for _ in range(count):
        allocate.allocate(model)
    best_alloc = min(best_alloc, time.ticks_diff(time.ticks_us(), start))
print(json.dumps({"full_us": best_full / count, "allocate_us": best_alloc / count,
                  "targets_us": best_targets / count, "churn_bytes": churn}))
"""


def bench_scenario(count: int, seed: int = 3) -> dict[str, Any]:
    """A busy three-phase site with count loads: nested circuits, every mode, a meter, an import cap."""
    pick = random.Random(seed * 1000 + count)
    circuits = []
    panels = max(1, count // 16)
    for panel in range(panels):
        circuits.append({"id": f"panel{panel}", "parent": "site", "limit_ma": 63000})
    for group in range(max(1, count // 4)):
        circuits.append({"id": f"c{group}", "parent": f"panel{group % panels}",
                         "limit_ma": pick.choice((16000, 20000, 25000, 32000))})
    loads = []
    for number in range(count):
        max_ma = pick.choice((16000, 20000, 32000))
        load: dict[str, Any] = {
            "id": f"evse{number:03d}",
            "circuit": f"c{number // 4}",
            "phases": pick.choice(("L1", "L2", "L3", "L123")),
            "min_ma": pick.choice((6000, 6000, 6000, 1000)),
            "max_ma": max_ma,
            "step_ma": pick.choice((1000, 100)),
            "priority": pick.randrange(4),
            "mode": pick.choice(("continuous",) * 6 + ("solar_priority", "solar_only", "excess", "off")),
            "demand": pick.random() < 0.9,
            "online": pick.random() < 0.95,
            "draw_ma": pick.randrange(0, max_ma),
            "active": pick.random() < 0.5,
        }
        loads.append(load)
    limit_ma = max(40000, count * 3000)
    return {
        "site": {"phases": 3, "voltage_v": 230, "limit_ma": limit_ma, "safety_pct": 95,
                 "import_limit_w": limit_ma * 3 * 230 // 1000 * 9 // 10,
                 "meter": {"ma": [limit_ma // 3, limit_ma // 4, -limit_ma // 8], "age_ms": 800}},
        "circuits": circuits,
        "loads": loads,
        "offline_reserve_ma": 6000,
    }


def _per_call_us(call: Callable[[], object], seconds: float) -> float:
    call()
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            call()
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 10:
            break
        count *= 2
    best = elapsed
    for _ in range(4):
        start = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def _cpython(core: ModuleType, scenario: dict[str, Any], seconds: float) -> dict[str, Any]:
    site, allocate = core.site, core.allocate
    model = site.parse(scenario)
    return {"full_us": _per_call_us(lambda: allocate.allocate(site.parse(scenario)), seconds),
            "allocate_us": _per_call_us(lambda: allocate.allocate(model), seconds),
            "targets_us": _per_call_us(lambda: allocate.targets_ma(model), seconds)}


def _micropython(name: str, scenario_file: Path, count: int) -> dict[str, Any]:
    iterations = max(2, 400 // count)
    ok, output, note = run_on_micropython(name, _MICROPYTHON_BENCH, [str(scenario_file), "5", str(iterations)],
                                          LARGER_HEAP)
    if not ok:
        return {"error": output}
    result: dict[str, Any] = json.loads(output)
    if note:
        result["note"] = note
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per CPython figure")
    args = parser.parse_args()
    tree = device_tree()
    pure = load_pure_core(tree / "py" / "lib" / "loadmesh" / "core")
    compiled = load_compiled_core(ROOT / "shared" / "core")
    rows: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in SIZES:
            scenario = bench_scenario(size)
            scenario_file = Path(scratch) / f"scenario{size}.json"
            scenario_file.write_text(json.dumps(scenario))
            rows[size] = {
                "cpython-pure": _cpython(pure, scenario, args.seconds),
                "cpython-compiled": _cpython(compiled, scenario, args.seconds),
                "micropython": _micropython("micropython", scenario_file, size),
                "micropython-f32": _micropython("micropython-f32", scenario_file, size),
            }
    print("µs per allocation: full = check scenario + build model + allocate + digest; allocate = allocate() on a")
    print("built model (targets, reasons, digest); targets = the allocation algorithm alone (targets_ma)")
    header = (f"{'loads':>5} | {'runtime':<16} | {'full µs':>9} | {'allocate µs':>11} | {'targets µs':>10} | "
              f"{'bytes/full':>10}")
    print(header)
    print("-" * len(header))
    notes = []
    for size, by_runtime in rows.items():
        for name, figures in by_runtime.items():
            if "error" in figures:
                print(f"{size:>5} | {name:<16} | failed: {figures['error']}")
                continue
            churn = f"{int(figures['churn_bytes']):>10}" if "churn_bytes" in figures else f"{'':>10}"
            mark = " *" if "note" in figures else ""
            print(f"{size:>5} | {name:<16} | {figures['full_us']:>9.1f} | {figures['allocate_us']:>11.1f} | "
                  f"{figures['targets_us']:>10.1f} | {churn}{mark}")
            if "note" in figures:
                notes.append(f"* {size} loads on {name}: {figures['note']}")
    for note in notes:
        print(note)
    print()
    for size, by_runtime in rows.items():
        pure_row, compiled_row = by_runtime["cpython-pure"], by_runtime["cpython-compiled"]
        ratios = ", ".join(f"{key} {pure_row[key + '_us'] / compiled_row[key + '_us']:.2f}x"
                           for key in ("full", "allocate", "targets"))
        print(f"compiled vs pure, {size:>3} loads: {ratios}")
    print()
    f32 = rows[32]["micropython-f32"]
    if "error" in f32:
        print(f"goal: <= {GOAL_F32_32_US} µs for 32 loads on micropython-f32: failed ({f32['error']})")
    else:
        verdict = "met" if f32["full_us"] <= GOAL_F32_32_US and "note" not in f32 else "NOT met"
        print(f"goal: <= {GOAL_F32_32_US} µs for 32 loads on micropython-f32: full {f32['full_us']:.0f} µs "
              f"(allocate {f32['allocate_us']:.0f} µs, targets {f32['targets_us']:.0f} µs): {verdict}")
    pure_128, compiled_128 = rows[128]["cpython-pure"], rows[128]["cpython-compiled"]
    for key in ("targets", "allocate"):
        speedup = pure_128[key + "_us"] / compiled_128[key + "_us"]
        print(f"goal: compiled >= {GOAL_SPEEDUP_128:.0f}x pure on 128 loads, {key}: {speedup:.2f}x: "
              f"{'met' if speedup >= GOAL_SPEEDUP_128 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
