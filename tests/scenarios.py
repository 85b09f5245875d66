"""Random allocation scenarios for property tests, and the rules they are checked against.

The checks here read the raw scenario, not the core's site model, so that a
mistake in the model cannot hide itself.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

MODES = ("continuous", "solar_priority", "solar_only", "excess", "off")
SOLAR_MODES = ("solar_priority", "solar_only", "excess")
PHASE_INDEXES = {"L1": (0,), "L2": (1,), "L3": (2,), "L123": (0, 1, 2)}
STEPS_MA = (1, 100, 250, 500, 1000, 2000, 3000)
QUANTUM_MA = 250  # the meter quantum docs/allocation.md documents
STALE_MS = 15000  # the default stale limit
ABSURD_FACTOR = 4

Scenario = dict[str, Any]


@st.composite
def scenarios(draw: st.DrawFn, *, max_loads: int = 10, max_circuits: int = 5, three_phase_loads: bool = True,
              modes: tuple[str, ...] = MODES, meter: bool = True, import_cap: bool = True,
              circuits: bool = True, phase_counts: tuple[int, ...] = (1, 3),
              steps: tuple[int, ...] = STEPS_MA, max_on_steps: bool = False) -> Scenario:
    """A valid scenario: a circuit tree, loads of every kind, optionally a meter and an import cap.

    max_on_steps: every load's max is its min plus whole steps (else any value from its min up).
    """
    phases = draw(st.sampled_from(phase_counts))
    site: dict[str, Any] = {
        "phases": phases,
        "voltage_v": draw(st.sampled_from((120, 230, 240))),
        "limit_ma": draw(_per_phase(phases, 0, 64000)),
        "safety_pct": draw(st.integers(50, 100)),
    }
    if import_cap and draw(st.booleans()):
        site["import_limit_w"] = draw(st.integers(0, 40000))
    if meter and draw(st.booleans()):
        site["meter"] = {"ma": draw(st.lists(st.integers(-60000, 60000), min_size=phases, max_size=phases)),
                         "age_ms": draw(st.sampled_from((0, 500, 14999, 15000, 15001, 60000)))}
        if draw(st.booleans()):
            site["meter_stale_ms"] = draw(st.integers(0, 30000))
    if draw(st.booleans()):
        site["excess_threshold_w"] = draw(st.integers(0, 5000))
    circuit_list = []
    for number in range(draw(st.integers(0, max_circuits)) if circuits else 0):
        parents = ["site"] + [c["id"] for c in circuit_list]
        circuit_list.append({"id": f"c{number}", "parent": draw(st.sampled_from(parents)),
                             "limit_ma": draw(_per_phase(phases, 0, 40000))})
    load_list = []
    phase_names = ("L1",) if phases == 1 else (("L1", "L2", "L3", "L123") if three_phase_loads else ("L1", "L2", "L3"))
    for number in range(draw(st.integers(0, max_loads))):
        min_ma = draw(st.sampled_from((0, 1000, 2000, 6000, 6000, 6000, 10000)))
        step_ma = draw(st.sampled_from(steps))
        if max_on_steps:
            max_ma = min_ma + step_ma * draw(st.integers(0, (40000 - min_ma) // step_ma))
        else:
            max_ma = draw(st.integers(min_ma, 40000))
        load: dict[str, Any] = {
            "id": f"l{number}",
            "phases": draw(st.sampled_from(phase_names)),
            "min_ma": min_ma,
            "max_ma": max_ma,
            "step_ma": step_ma,
            "priority": draw(st.sampled_from((-1000, -1, 0, 1, 2, 3, 1000))),
            "mode": draw(st.sampled_from(modes)),
            "demand": draw(st.booleans() | st.just(True)),
            "online": draw(st.sampled_from((True, True, True, False))),
        }
        if circuit_list and draw(st.booleans()):
            load["circuit"] = draw(st.sampled_from([c["id"] for c in circuit_list]))
        if draw(st.booleans()):
            load["active"] = draw(st.booleans())
        if draw(st.booleans()):
            # up to its max; sometimes above (a broken CT), or beyond an offline load's reserve
            load["draw_ma"] = draw(st.integers(0, max_ma) | st.integers(0, max_ma + 20000))
        if not load["online"] and draw(st.booleans()):
            load["reserve_ma"] = draw(st.integers(0, 20000))
        load_list.append(load)
    scenario: Scenario = {"site": site, "circuits": circuit_list, "loads": load_list}
    if draw(st.booleans()):
        scenario["offline_reserve_ma"] = draw(st.integers(0, 10000))
    return scenario


def _per_phase(phases: int, low: int, high: int) -> st.SearchStrategy[Any]:
    return st.integers(low, high) | st.lists(st.integers(low, high), min_size=phases, max_size=phases)


def per_phase(value: int | list[int], phases: int) -> list[int]:
    return list(value) if isinstance(value, list) else [value] * phases


def meter_state(scenario: Scenario) -> str:
    """'none', 'fresh' or 'stale', by the documented rules."""
    site = scenario["site"]
    meter = site.get("meter")
    if meter is None:
        return "none"
    limits = per_phase(site["limit_ma"], site["phases"])
    if any(abs(value) > ABSURD_FACTOR * limit for value, limit in zip(meter["ma"], limits, strict=True)):
        return "stale"
    return "stale" if meter["age_ms"] > site.get("meter_stale_ms", STALE_MS) else "fresh"


def credited_ma(scenario: Scenario, load: dict[str, Any]) -> int:
    """What the meter subtracts for a load: its draw_ma; 0 above its max (unknown); offline, at most its reserve."""
    drawn = int(load.get("draw_ma", 0))
    if drawn > load["max_ma"]:
        return 0
    return drawn if load["online"] else min(drawn, reserve_ma(scenario, load))


def unmanaged_ma(scenario: Scenario) -> list[int]:
    """Per phase: measured minus managed draws, rounded up to the quantum; zeros unless the meter is fresh."""
    phases = scenario["site"]["phases"]
    if meter_state(scenario) != "fresh":
        return [0] * phases
    values = list(scenario["site"]["meter"]["ma"])
    for load in scenario["loads"]:
        for phase in PHASE_INDEXES[load["phases"]]:
            values[phase] -= credited_ma(scenario, load)
    return [-(-value // QUANTUM_MA) * QUANTUM_MA for value in values]


def surplus_ma(scenario: Scenario) -> int:
    """Export plus what online solar-mode loads draw, over all phases, rounded down; 0 unless the meter is fresh."""
    if meter_state(scenario) != "fresh":
        return 0
    total = -sum(scenario["site"]["meter"]["ma"])
    for load in scenario["loads"]:
        if load["online"] and load["mode"] in SOLAR_MODES:
            total += credited_ma(scenario, load) * len(PHASE_INDEXES[load["phases"]])
    return max(0, total) // QUANTUM_MA * QUANTUM_MA


def continuous_rise_ma(scenario: Scenario, alloc: dict[str, int]) -> int:
    """What the continuous loads are given above their measured draws, x phases, summed: the surplus they take
    first. 0 unless the meter is fresh."""
    if meter_state(scenario) != "fresh":
        return 0
    total = 0
    for load in scenario["loads"]:
        if load["mode"] == "continuous":
            rise = alloc[load["id"]] - credited_ma(scenario, load)
            if rise > 0:
                total += rise * len(PHASE_INDEXES[load["phases"]])
    return total


def reserve_ma(scenario: Scenario, load: dict[str, Any]) -> int:
    """What an offline load holds: its reserve_ma, else offline_reserve_ma, else its max."""
    if load["online"]:
        return 0
    if "reserve_ma" in load:
        return int(load["reserve_ma"])
    return int(scenario.get("offline_reserve_ma", load["max_ma"]))


def limits(scenario: Scenario) -> list[tuple[str, int, list[str], int]]:
    """Every (name, phase, ids of the loads it covers, capacity for managed loads) the targets must respect."""
    site = scenario["site"]
    phases = site["phases"]
    safety = site["safety_pct"]
    parent = {c["id"]: c["parent"] for c in scenario["circuits"]}
    unmanaged = unmanaged_ma(scenario)

    def under(load: dict[str, Any], circuit_id: str) -> bool:
        walk = load.get("circuit", "site")
        while walk != "site":
            if walk == circuit_id:
                return True
            walk = parent[walk]
        return False

    result = []
    for phase in range(phases):
        on_phase = [load for load in scenario["loads"] if phase in PHASE_INDEXES[load["phases"]]]
        for circuit in scenario["circuits"]:
            capacity = per_phase(circuit["limit_ma"], phases)[phase] * safety // 100
            members = [load["id"] for load in on_phase if under(load, circuit["id"])]
            result.append((f"circuit:{circuit['id']}", phase, members, capacity))
        capacity = per_phase(site["limit_ma"], phases)[phase] * safety // 100 - max(0, unmanaged[phase])
        result.append(("site", phase, [load["id"] for load in on_phase], capacity))
        if "import_limit_w" in site:
            capacity = site["import_limit_w"] * 1000 // (site["voltage_v"] * phases) - unmanaged[phase]
            result.append(("import", phase, [load["id"] for load in on_phase], capacity))
    return result


def phase_weighted_total(scenario: Scenario, alloc: dict[str, int]) -> int:
    """Σ target x phases: the current the loads draw over all phases together."""
    return sum(alloc[load["id"]] * len(PHASE_INDEXES[load["phases"]]) for load in scenario["loads"])
