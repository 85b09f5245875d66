"""A boiler node and 3 to 6 valve nodes under random faults: the heating's safety invariants after every event.

tests/heatmeshsim.py runs the firmware's own heating roles over the real
core, peer tables and signed heartbeats on a simulated clock, with a plant
(valves with a travel time, rooms, sensors, the boiler's own thermostat) and
tests/meshsim.py's network. Each scenario is a house drawn from a seed and a
sequence of faults drawn from it: packets lost, delayed, reordered and
doubled, links cut one way, partitions, crashes and reboots of any node (the
boiler node too), valves that stick or lose their feedback, room sensors
stale or absurd, the boiler node's flow and return sensors stale, missing
(stale from its boot) or absurd, PUT /heating on the boiler node (its
minimum times, interlock minimum, room ratings, a room left out or
back), room temperatures that jump, modes and schedules changed (PUT
/heating), the load-sharing switch, the time of week lost, and ticks that
run out of memory (a MemoryError raised in the real role or runtime code at
a point of the tick: skipped as runtime.Node skips it, or a halt). The
invariants and their bounds: tests/heatmeshsim.py and docs/heating.md,
"Verification". A failure names the seed and the events before it; run that
seed alone with tools/soak_heating.py --seed N --scenarios 1.

The compiled core only: the roles import loadmesh.core, the compiled one in
this venv (the pure core's mesh test is tests/test_controller_mesh.py's;
tools/soak_heating.py --pure runs these scenarios over the pure core).
LOADMESH_SOAK=N runs N times the scenarios (tools/soak_heating.py runs more
and prints the counts).
"""

from __future__ import annotations

import os

from .heatmeshsim import run_scenario

SOAK = int(os.environ.get("LOADMESH_SOAK", "1"))
SCENARIOS = 9 * SOAK  # about 1 s each on CPython compiled
CALM = 1 * SOAK  # about 3 s each: with no fault the house is busier (the boiler fires more, load sharing runs)
STEPS = 60


def test_heating_mesh_keeps_its_safety_invariants_under_faults() -> None:
    totals: dict[str, int] = {}
    runs = [(seed, False) for seed in range(SCENARIOS)] + [(seed, True) for seed in range(CALM)]
    for seed, calm in runs:
        mesh = run_scenario(seed, STEPS, calm)
        for key, value in mesh.counts.items():
            totals[key] = max(totals.get(key, 0), value) if key.startswith("worst_") else totals.get(key, 0) + value
        totals["relay_on_ms"] = totals.get("relay_on_ms", 0) + mesh.plant.relay_on_ms
    print("heating mesh:", totals)
    # The faults must not keep the house from doing what is checked: the boiler fires, pump overrun
    # holds, load sharing runs and reaches tier 3, valve nodes drop overrides of a boiler node gone silent,
    # cooldowns end on cooled readings and, with a water sensor unknown, on their maximum time; the boiler
    # node resets in a cooldown and after one (its evidence kept as recent); load sharing enters on a high
    # return alone, and the boiler fires with the return unknown and load sharing inactive (where an unknown
    # return taken as high would enter it); the entry's conditions are met (so the liveness check bites); ticks
    # run out of memory and are skipped, the boiler node's after boiler.step drove the relay too, and halt.
    for key in ("fired", "holds", "ls_ticks", "tier3_services", "overrides_dropped", "boiler_crashes",
                "held_decreases", "water_faults", "cooldowns_recovered", "cooldowns_timed_out", "boiler_puts",
                "cooldowns_rebooted", "recent_rebooted", "ls_entries_on_return", "return_unknown_firing_ticks",
                "ls_entries_due", "skipped_ticks", "boiler_skips_driven", "starve_halts"):
        assert totals[key] > 0, (key, totals)
    # With no fault for 2 x peer_timeout_ms, the burner stops cleanly (minimum on time, pump overrun),
    # never at once on the interlock: that is what make-before-break and the held decreases are for.
    assert totals["calm_interlock_stops"] == 0, totals
