"""A longer run of the heating mesh (tests/test_heating_mesh.py): more houses, more faults, the counts.

    .venv/bin/python tools/soak_heating.py [--scenarios 200] [--seed 0] [--steps 60] [--calm] [--pure]

Runs scenarios seed, seed + 1, ... each a house and a fault sequence drawn
from its seed (tests/heatmeshsim.py), and prints what they did: the
boiler's firings, holds and interlock stops, load-sharing ticks and tier-3
services, crashes, overrides dropped, decreases held, packets, events
checked, simulated time, and the longest the relay stayed on with the
valves' real openings short of the interlock minimum (worst_shortfall_ms,
within the bound the interlock invariant allows); load sharing's entries
(ls_entries) and those the liveness check required (ls_entries_due: the
entry's conditions met at the boiler node's tick, docs/heating.md, "And it
enters on that evidence"); boiler node reboots that kept a cooldown in
progress (cooldowns_rebooted) or a recent one (recent_rebooted); how the
valve nodes' held decreases ended (holds_ended_override, _early: on the
boiler node's answer or its burner off, _timeout: after peer_timeout_ms); ticks that ran out of
memory and were skipped (skipped_ticks; boiler_skips_driven: the boiler node's, after boiler.step
kept its state and the relay was driven), the halts of a second in a row or one in the driving
window (starve_halts), and the skipped ticks by node kind and the point they ran out of memory at
(tests/heatmeshsim.py, STARVE_POINTS). --calm: no faults, only
what users and the weather do (modes, schedules, the switch, room
temperatures); interlock stops then are counted as calm_interlock_stops.
--pure: the roles over the pure core (shared/core's .py files, as
companion/runtimes.py loads them), not the compiled one installed in the
venv that tests/test_heating_mesh.py runs: the same counts are the same
behaviour (as fast: the simulator's own Python dominates).
Exits 1 on the first violation, printing it
(the seed and the events before it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="the first scenario's seed")
    parser.add_argument("--steps", type=int, default=60, help="faults per scenario")
    parser.add_argument("--calm", action="store_true", help="changes only, no faults")
    parser.add_argument("--pure", action="store_true", help="the pure core (shared/core), not the compiled one")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.pure:
        _use_pure_core()
    from tests.heatmeshsim import run_scenario
    from tests.meshsim import Violation

    totals: dict[str, int] = {"scenarios": 0, "events": 0, "node_ticks": 0, "simulated_s": 0, "relay_on_s": 0}
    skipped_at: dict[str, int] = {}
    started = time.monotonic()
    for seed in range(args.seed, args.seed + args.scenarios):
        try:
            mesh = run_scenario(seed, args.steps, args.calm)
        except Violation as exc:
            print(exc)
            print("after", totals["scenarios"], "scenarios")
            return 1
        totals["scenarios"] += 1
        totals["events"] += mesh.events_checked
        totals["node_ticks"] += mesh.steps_run
        totals["simulated_s"] += mesh.now_ms // 1000
        totals["relay_on_s"] += mesh.plant.relay_on_ms // 1000
        for key, value in mesh.counts.items():
            totals[key] = max(totals.get(key, 0), value) if key.startswith("worst_") else totals.get(key, 0) + value
        for key, value in mesh.skipped_at.items():
            skipped_at[key] = skipped_at.get(key, 0) + value
    totals["wall_s"] = int(time.monotonic() - started)
    print("heating mesh soak:", totals)
    print("ticks skipped out of memory, by node kind and point:", dict(sorted(skipped_at.items())))
    return 0


def _use_pure_core() -> None:
    """loadmesh.core and its modules, for whatever imports them from here on (the roles, the simulator), are the
    pure core's: the .py files of shared/core loaded as companion/runtimes.py loads them for the tests."""
    from loadmesh.companion.runtimes import core_module_names, load_pure_core

    core_dir = ROOT / "shared" / "core"
    package = load_pure_core(core_dir)
    assert not any(name == "loadmesh.core" or name.startswith("loadmesh.core.") for name in sys.modules), \
        "loadmesh.core was imported before the pure core could take its place"
    sys.modules["loadmesh.core"] = package
    for name in core_module_names(core_dir):
        sys.modules["loadmesh.core." + name] = sys.modules[package.__name__ + "." + name]


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))
