"""Helpers for the end-to-end tests: a simulated site of real node processes, and reading its trace."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from loadmesh.companion.sim import scenario as sc
from loadmesh.companion.sim import trace
from loadmesh.companion.sim.runner import Simulation
from loadmesh.core import allocate, site

from . import mpnode

SITE = {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}
# ev_lag_ms covers the slowest car (2 s): the safety rules assume a car follows within it.
GROUP = {"heartbeat_ms": 500, "peer_timeout_ms": 3000, "ev_lag_ms": 2000, "margin_ms": 1000}
LAGS_MS = {"evse1": 1000, "evse2": 2000, "evse3": 1500}
FAILSAFE_MA = 6000
TICK_MS = 100
SAMPLE_MS = 100
LOOK_MS = 500  # how often run_until looks at the samples (every sample would redo the grouping ten times a second)

Samples = list[tuple[int, dict[str, dict[str, object]]]]


def evse(node: str, plug_at_s: float | None, unplug_at_s: float | None = None) -> dict[str, object]:
    """An EVSE on L1 (6..16 A) with a car that plugs in at plug_at_s."""
    car: dict[str, object] = {"plug_at_s": plug_at_s, "lag_ms": LAGS_MS[node]}
    if unplug_at_s is not None:
        car["unplug_at_s"] = unplug_at_s
    return {"id": node, "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
            "priority": 0, "mode": "continuous", "car": car}


def three_evses(duration_s: float, events: list[dict[str, object]], plugs: dict[str, float | None] | None = None,
                unplugs: dict[str, float] | None = None, limit_ma: int = 32000) -> sc.Scenario:
    """Three EVSEs on one 32 A phase; every car plugged in at 0 unless plugs says otherwise."""
    plugs = plugs or {}
    unplugs = unplugs or {}
    nodes = [evse(node, plugs.get(node, 0), unplugs.get(node)) for node in ("evse1", "evse2", "evse3")]
    return sc.parse({"about": "end-to-end test site", "duration_s": duration_s, "site": {**SITE, "limit_ma": limit_ma},
                     "group": GROUP, "nodes": nodes, "events": events})


@contextlib.contextmanager
def simulation(scenario: sc.Scenario, tmp_path: Path, device_root: Path, **options: object) -> Iterator[Simulation]:
    """A started simulation whose every process is killed when the test ends, however it ends."""
    mpnode.require_wallclock("the simulator")
    sim = Simulation(scenario, tmp_path / "site", device_root=device_root, keep_records=True,
                     sample_ms=SAMPLE_MS, progress=_progress, **options)  # type: ignore[arg-type]
    try:
        sim.start()
        yield sim
    finally:
        sim.close()


def _progress(line: str) -> None:
    print("sim:", line, file=sys.stderr)


def expected(scenario: sc.Scenario, demand: dict[str, bool], reserve_ma: dict[str, int] | None = None,
             limit_ma: int | None = None) -> dict[str, int]:
    """What the allocation gives each node (the nodes in reserve_ma offline, reserved at that)."""
    online = {node: node not in (reserve_ma or {}) for node in scenario.node_ids()}
    request = scenario.allocate_request(demand, online)
    if limit_ma is not None:
        request["site"] = {**SITE, "limit_ma": limit_ma}
    for load in request["loads"]:  # type: ignore[attr-defined]
        if reserve_ma and load["id"] in reserve_ma:
            load["reserve_ma"] = reserve_ma[load["id"]]
    result = allocate.allocate(site.parse(request))["alloc_ma"]
    assert isinstance(result, dict)
    return result


def played_ms(sim: Simulation, action: str, value: object) -> int:
    """When the simulator played an event, on the trace's clock: its at_ms, or later if the run loop was held back.

    A bound on what the nodes do after an event counts from this: the nodes cannot react before it."""
    found = [t_ms for t_ms, event in sim.played if event.action == action and event.value == value]
    assert len(found) == 1, f"{action} {value!r} played {len(found)} times: {sim.played}"
    return found[0]


def samples(sim: Simulation) -> Samples:
    """The trace so far, grouped by sample time."""
    return trace.samples(list(sim.records))


def between(all_samples: Samples, start_ms: int, end_ms: int) -> Samples:
    """The samples with start_ms <= t_ms <= end_ms."""
    return [(t_ms, by_node) for t_ms, by_node in all_samples if start_ms <= t_ms <= end_ms]


def last_before(all_samples: Samples, t_ms: int) -> dict[str, dict[str, object]]:
    """The last sample before t_ms."""
    found = [by_node for at_ms, by_node in all_samples if at_ms < t_ms]
    assert found, f"no sample before {t_ms} ms"
    return found[-1]


def field(by_node: dict[str, dict[str, object]], name: str, nodes: tuple[str, ...] | None = None) -> dict[str, object]:
    """One field of every node (or of nodes) at one sample."""
    return {node: record[name] for node, record in sorted(by_node.items()) if nodes is None or node in nodes}


def settled(all_samples: Samples, after_ms: int, check: Callable[[dict[str, dict[str, object]]], bool],
            until_ms: int | None = None) -> int | None:
    """The first t_ms >= after_ms from which check holds at every later sample (before until_ms); None if never."""
    start = None
    for t_ms, by_node in all_samples:
        if t_ms < after_ms or (until_ms is not None and t_ms >= until_ms):
            continue
        if check(by_node):
            if start is None:
                start = t_ms
        else:
            start = None
    return start


def held_ms(all_samples: Samples, after_ms: int, check: Callable[[dict[str, dict[str, object]]], bool]) -> int:
    """How long check has held, up to the last sample, since it settled after after_ms (settled); -1 if not."""
    start = settled(all_samples, after_ms, check)
    return -1 if start is None or not all_samples else all_samples[-1][0] - start


def run_until(sim: Simulation, done: Callable[[Samples], bool], deadline_ms: int) -> None:
    """Run sim until done holds of its samples (looked at every LOOK_MS of the run's clock) or until deadline_ms on
    that clock, a bound for failure only: the caller's asserts then say what is missing."""
    looked_ms = [sim.now_ms()]

    def look(sim: Simulation) -> None:
        now_ms = sim.now_ms()
        if now_ms - looked_ms[0] >= LOOK_MS:
            looked_ms[0] = now_ms
            if done(samples(sim)):
                sim.stop_requested = True  # ends run() at its next turn

    try:
        sim.run(deadline_ms, on_tick=look)
    finally:
        sim.stop_requested = False


def at_allocation(by_node: dict[str, dict[str, object]], wanted: dict[str, int]) -> bool:
    """Whether every node in wanted applies, and targets, what it should."""
    return all(by_node[node]["applied_ma"] == ma and by_node[node]["target_ma"] == ma for node, ma in wanted.items())
