"""The allocation engine's interfaces: digest, overrides, headroom, constraints, and the limits of monotonicity."""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .conftest import VECTORS_DIR, _runtime, load_vector
from .scenarios import (
    continuous_rise_ma,
    meter_state,
    per_phase,
    phase_weighted_total,
    reserve_ma,
    surplus_ma,
    unmanaged_ma,
)


def _load(load_id: str, **fields: Any) -> dict[str, Any]:
    load = {"id": load_id, "phases": "L1", "min_ma": 6000, "max_ma": 32000, "step_ma": 1000, "priority": 0,
            "mode": "continuous", "demand": True, "online": True}
    load.update(fields)
    return load


def _scenario(loads: list[dict[str, Any]], circuits: list[dict[str, Any]] | None = None, **site: Any) -> dict[str, Any]:
    base = {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}
    base.update(site)
    return {"site": base, "circuits": circuits or [], "loads": loads, "offline_reserve_ma": 6000}


def _allocate(core: ModuleType, scenario: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = core.allocate.allocate(core.site.parse(scenario))
    return result


# ---- the digest ----

def _documented_digest(scenario: dict[str, Any]) -> str:
    """The digest as docs/allocation.md defines it, computed from the raw scenario."""
    site = scenario["site"]
    phases = site["phases"]
    view_site = [phases, site["voltage_v"], per_phase(site["limit_ma"], phases), site["safety_pct"],
                 site.get("import_limit_w", -1), site.get("excess_threshold_w", 0), meter_state(scenario),
                 unmanaged_ma(scenario), surplus_ma(scenario)]
    circuits = sorted([c["id"], c["parent"], per_phase(c["limit_ma"], phases)] for c in scenario["circuits"])
    loads = sorted([load["id"], load.get("circuit", "site"), load["phases"], load["min_ma"], load["max_ma"],
                    load["step_ma"], load["priority"], load["mode"], load["demand"], load["online"],
                    load.get("active", False), reserve_ma(scenario, load)] for load in scenario["loads"])
    text = json.dumps([1, view_site, circuits, loads], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _allocation_vectors() -> list[str]:
    names = []
    for path in sorted((VECTORS_DIR / "allocate").glob("*.json")):
        expect = load_vector(path)["expect"]
        if isinstance(expect, dict) and "ok" in expect:
            names.append(path.stem)
    return names


@pytest.mark.parametrize("name", _allocation_vectors())
def test_vector_digest_is_the_documented_hash(name: str) -> None:
    vector: Any = load_vector(VECTORS_DIR / "allocate" / f"{name}.json")
    assert vector["expect"]["ok"]["digest"] == _documented_digest(vector["input"])


def _with(scenario: dict[str, Any], change: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(scenario))
    exec(change, {}, {"s": copy, "loads": copy["loads"], "site": copy["site"]})
    return copy


_DIGEST_BASE = _scenario([_load("a", draw_ma=7000), _load("b", draw_ma=5000), _load("c", online=False)],
                         meter={"ma": [20000], "age_ms": 500})


@pytest.mark.parametrize(("change", "same"), [
    # draws move the unmanaged load from 8.0 A to 7.9 A, inside one 250 mA quantum: same view
    ("loads[0]['draw_ma'] = 7100", True),
    # the meter moves by 100 mA inside the same quantum: same view
    ("site['meter']['ma'] = [19900]", True),
    # the reading gets older but is still fresh
    ("site['meter']['age_ms'] = 9000", True),
    # the order of the loads
    ("loads.reverse()", True),
    # an online load's reserve_ma has no effect, so it is not in the view
    ("loads[0]['reserve_ma'] = 16000", True),
    # the unmanaged load crosses into the next quantum: the capacity changed
    ("site['meter']['ma'] = [20300]", False),
    # the meter goes stale
    ("site['meter']['age_ms'] = 15001", False),
    # a limit changes by 1 mA
    ("site['limit_ma'] = 32001", False),
    # a load stops demanding
    ("loads[1]['demand'] = False", False),
    # a load starts charging (scarcity prefers it)
    ("loads[1]['active'] = True", False),
    # the offline load's reserve changes
    ("loads[2]['reserve_ma'] = 10000", False),
])
def test_digest_follows_what_decides_the_allocation(core: ModuleType, change: str, same: bool) -> None:
    before = _allocate(core, _DIGEST_BASE)
    after = _allocate(core, _with(_DIGEST_BASE, change))
    assert (after["digest"] == before["digest"]) is same
    if same:
        assert after == before


def test_without_a_meter_draws_change_nothing(core: ModuleType) -> None:
    scenario = _scenario([_load("a", draw_ma=1000), _load("b", mode="solar_priority", draw_ma=2000)])
    assert _allocate(core, scenario) == _allocate(core, _with(scenario, "loads[0]['draw_ma'] = 31000"))


# ---- overrides the node controller passes ----

def test_reserve_and_active_overrides_equal_the_fields(core: ModuleType) -> None:
    loads = [_load("a"), _load("b"), _load("c"), _load("d", online=False)]
    scenario = _scenario(loads, limit_ma=16000)
    model = core.site.parse(scenario)
    overridden = core.allocate.allocate(model, reserve_ma={"d": 2000, "a": 9000}, active={"c": True})
    # a is online, so its reserve has no effect; d holds 2 A of 16 A, and c, now active, is preferred to b
    direct = _allocate(core, _with(scenario, "loads[3]['reserve_ma'] = 2000; loads[2]['active'] = True"))
    assert overridden == direct
    assert overridden["alloc_ma"] == {"a": 6000, "b": 0, "c": 6000, "d": 0}
    # the model itself is unchanged
    assert core.allocate.allocate(model) == _allocate(core, scenario)


def test_a_reserve_override_bounds_an_offline_draw_as_the_field_does(core: ModuleType) -> None:
    # b is offline and still draws 16 A; the meter reads a 4 A house plus that. Its reserve (6 A here)
    # bounds what the meter credits for it, and so does a reserve passed as an override: read again.
    scenario = _scenario([_load("a"), _load("b", online=False, max_ma=16000, draw_ma=16000)],
                         meter={"ma": [20000], "age_ms": 0})
    model = core.site.parse(scenario)
    for reserve in (0, 6000, 10000, 16000):
        overridden = core.allocate.allocate(model, reserve_ma={"b": reserve})
        assert overridden == _allocate(core, _with(scenario, f"loads[1]['reserve_ma'] = {reserve}"))
        # the house's 4 A, b's 16 A and a's 12 A fill the 32 A site, whatever b's reserve
        assert overridden["alloc_ma"] == {"a": 12000, "b": 0}
    assert core.allocate.allocate(model) == _allocate(core, scenario)  # the model itself is unchanged


@pytest.mark.parametrize(("reserve", "active", "message"), [
    ({"nobody": 1000}, None, "reserve_ma: \"nobody\" is not a load"),
    ({"d": -1}, None, "reserve_ma.d: -1 is below 0"),
    (None, {"a": 1}, "active.a: 1 is not true or false"),
])
def test_bad_override_names_the_field(core: ModuleType, reserve: Any, active: Any, message: str) -> None:
    model = core.site.parse(_scenario([_load("a"), _load("d", online=False)]))
    with pytest.raises(core.errors.FieldError) as caught:
        core.allocate.allocate(model, reserve_ma=reserve, active=active)
    assert str(caught.value) == message


# ---- constraints and headroom ----

_GARAGE = _scenario([_load("a", circuit="garage"), _load("b", circuit="garage", phases="L2"), _load("c"),
                     _load("d", online=False, phases="L123")],
                    circuits=[{"id": "garage", "parent": "site", "limit_ma": [20000, 16000, 16000]}],
                    phases=3, limit_ma=32000, safety_pct=90, import_limit_w=20700)


def test_constraints_list_every_limit_with_its_loads(core: ModuleType) -> None:
    model = core.site.parse(_GARAGE)
    assert core.site.constraints(model) == [
        # circuits first (their limit x 90 %), then the site, then the import cap (20.7 kW / 3 / 230 V = 30 A)
        ("circuit:garage:L1", "L1", 18000, ["a"]),
        ("circuit:garage:L2", "L2", 14400, ["b"]),
        ("circuit:garage:L3", "L3", 14400, []),
        ("site:L1", "L1", 28800, ["a", "c", "d"]),
        ("site:L2", "L2", 28800, ["b", "d"]),
        ("site:L3", "L3", 28800, ["d"]),
        ("import:L1", "L1", 30000, ["a", "c", "d"]),
        ("import:L2", "L2", 30000, ["b", "d"]),
        ("import:L3", "L3", 30000, ["d"]),
    ]


def test_headroom_counts_each_load_at_its_current(core: ModuleType) -> None:
    model = core.site.parse(_GARAGE)
    # d is offline: it counts at least its 6 A reserve, here 10 A as it still reports 10 A
    left = core.headroom.headroom_ma(model, {"a": 10000, "b": 8000, "c": 5000, "d": 10000})
    assert left == {
        "circuit:garage:L1": 8000, "circuit:garage:L2": 6400, "circuit:garage:L3": 14400,
        "site:L1": 3800, "site:L2": 10800, "site:L3": 18800,
        "import:L1": 5000, "import:L2": 12000, "import:L3": 20000,
    }
    left = core.headroom.headroom_ma(model, {"a": 10000, "b": 8000, "c": 5000, "d": 0})
    assert left["site:L1"] == 7800  # the reserve, not 0


@pytest.mark.parametrize(("load_id", "currents", "allowed"), [
    # a: garage L1 has 18 A, site L1 28.8 - c 5 - d's 6 A reserve = 17.8 A: 17 A on 1 A steps
    ("a", {"b": 8000, "c": 5000, "d": 0}, 17000),
    # a: with c at 13 A the site leaves 9.8 A: 9 A
    ("a", {"b": 8000, "c": 13000, "d": 0}, 9000),
    # a: with c at 18 A the site leaves 4.8 A, below a's 6 A minimum: 0, never 4.8 A
    ("a", {"b": 8000, "c": 18000, "d": 0}, 0),
    # c: with the others at 0 the site still holds d's 6 A reserve: 22.8 A left
    ("c", {"a": 0, "b": 0, "d": 0}, 22000),
    # b: garage L2 14.4 A holds it to 14 A
    ("b", {"a": 0, "c": 0, "d": 0}, 14000),
])
def test_allowed_is_the_highest_step_that_fits(core: ModuleType, load_id: str, currents: dict[str, int],
                                               allowed: int) -> None:
    model = core.site.parse(_GARAGE)
    assert core.headroom.allowed_ma(model, load_id, currents) == allowed


def test_headroom_needs_every_load(core: ModuleType) -> None:
    model = core.site.parse(_GARAGE)
    with pytest.raises(core.errors.FieldError) as caught:
        core.headroom.headroom_ma(model, {"a": 0, "b": 0, "c": 0})
    assert str(caught.value) == "current_ma.d: is missing"


# ---- where a higher limit can lower the total: by design ----

@pytest.mark.parametrize(("scenario", "raise_code", "before", "after"), [
    # A preferred load whose minimum now fits displaces a less preferred one:
    # p (priority 0, 6 A fixed) was blocked by its 5.9 A circuit and q took
    # 11.9 A; at 6 A p gets in and q's minimum no longer fits. Σ 11.9 -> 6 A.
    (_scenario([_load("p", circuit="x", min_ma=6000, max_ma=6000), _load("q", priority=1, step_ma=100)],
               circuits=[{"id": "x", "parent": "site", "limit_ma": 5900}], limit_ma=11900),
     "s['circuits'][0]['limit_ma'] = 6000", {"p": 0, "q": 11900}, {"p": 6000, "q": 0}),
    # Equal shares across phases: b (three-phase) and y share circuit k on L1;
    # raising k lets b grow by 1 A on each phase, which takes 1 A from each of
    # x1, x2, x3 on the full site: Σ targets 28 -> 26 A (per-phase sum 30 A both).
    (_scenario([_load("b", circuit="k", phases="L123", min_ma=0), _load("y", circuit="k", min_ma=0),
                _load("x1", min_ma=0), _load("x2", phases="L2", min_ma=0), _load("x3", phases="L3", min_ma=0)],
               circuits=[{"id": "k", "parent": "site", "limit_ma": 2000}], phases=3, limit_ma=10000),
     "s['circuits'][0]['limit_ma'] = 4000", {"b": 1000, "y": 1000, "x1": 8000, "x2": 9000, "x3": 9000},
     {"b": 2000, "y": 2000, "x1": 6000, "x2": 8000, "x3": 8000}),
    # The same across phases, the other way: b on L1 in circuit k shares full
    # L1 with z (three-phase); raising k gives b 5 A more and takes 5 A from z
    # on every phase: per-phase sum 50 -> 40 A (Σ targets 20 A both).
    (_scenario([_load("b", circuit="k", min_ma=0), _load("z", phases="L123", min_ma=0)],
               circuits=[{"id": "k", "parent": "site", "limit_ma": 5000}], phases=3, limit_ma=[20000, 32000, 32000]),
     "s['circuits'][0]['limit_ma'] = 10000", {"b": 5000, "z": 15000}, {"b": 10000, "z": 10000}),
    # Steps: the site is full with a (100 mA steps) and b at their maxima;
    # raising circuit k lets c rise by its share of 1 mA, which leaves a 17.199 A,
    # rounded down to its step: Σ 26.456 -> 26.357 A. The loss is step rounding
    # (less than a's step), the price of equal shares with unequal steps.
    (_scenario([_load("a", min_ma=0, max_ma=17200, step_ma=100), _load("b", min_ma=0, max_ma=9256, step_ma=1),
                _load("c", circuit="k", min_ma=0, max_ma=1, step_ma=1)],
               circuits=[{"id": "k", "parent": "site", "limit_ma": 0}], limit_ma=26456),
     "s['circuits'][0]['limit_ma'] = 2", {"a": 17200, "b": 9256, "c": 0}, {"a": 17100, "b": 9256, "c": 1}),
    # A max off the steps, in a flat group: e's top step (1 A to its 3.001 A max) is 2.001 A, shorter
    # than its 3 A step. At 10.999 A it fits beside a at 7.9 A; one more mA gives preferred a its last
    # 100 mA step first, and e's top step no longer fits: Σ 10.901 -> 9 A. Found by hypothesis.
    (_scenario([_load("a", min_ma=6000, max_ma=8000, step_ma=100, priority=-1),
                _load("e", min_ma=1000, max_ma=3001, step_ma=3000, priority=-1000)], limit_ma=10999),
     "s['site']['limit_ma'] = 11000", {"a": 7900, "e": 3001}, {"a": 8000, "e": 1000}),
])
def test_a_higher_limit_may_lower_the_total(core: ModuleType, scenario: dict[str, Any], raise_code: str,
                                            before: dict[str, int], after: dict[str, int]) -> None:
    first = _allocate(core, scenario)["alloc_ma"]
    raised = _with(scenario, raise_code)
    second = _allocate(core, raised)["alloc_ma"]
    assert (first, second) == (before, after)
    assert (sum(second.values()) < sum(first.values())
            or phase_weighted_total(raised, second) < phase_weighted_total(scenario, first))


# ---- the meter ----

@pytest.mark.parametrize(("meter", "reason"), [
    # fresh, and 4 x the 32 A limit is still a possible reading
    ({"ma": [128000], "age_ms": 0}, "scarcity"),
    # beyond 4 x the limit: absurd
    ({"ma": [128001], "age_ms": 0}, "meter_stale"),
    ({"ma": [-128001], "age_ms": 0}, "meter_stale"),
    # exactly at the 15 s stale limit: still fresh
    ({"ma": [0], "age_ms": 15000}, "max"),
    ({"ma": [0], "age_ms": 15001}, "meter_stale"),
])
def test_meter_state(core: ModuleType, meter: dict[str, Any], reason: str) -> None:
    result = _allocate(core, _scenario([_load("a")], meter=meter))
    assert result["reason"] == {"a": reason}


# ---- continuous rises and solar minimums: how many runs ----

@pytest.mark.parametrize(("vector", "runs"), [
    # nothing granted is short after the continuous rises: one run
    ("solar_modes_share_the_export_in_urgency_order", 1),
    ("solar_modes_in_urgency_order", 1),  # d's minimum takes what a's would need: a is never granted
    # a solar_only minimum the continuous rise left short: a second run with that rise set aside
    ("solar_only_waits_for_a_rising_continuous_load", 2),
    ("solar_only_minimum_taken_back_for_a_continuous_rise", 2),
    # short again in the second: a third with every continuous load's rise to its max set aside
    ("solar_only_minimums_all_taken_back_by_continuous_rises", 3),
])
def test_a_solar_minimum_the_continuous_rise_leaves_short_runs_the_allocation_again(
        device_root: Path, vector: str, runs: int) -> None:
    _runtime("cpython-pure", device_root)  # loads the pure core, whose _targets a test may wrap
    pure = importlib.import_module("_loadmesh_core_pure.allocate")
    scenario: Any = load_vector(VECTORS_DIR / "allocate" / f"{vector}.json")["input"]
    one_run = pure._targets
    set_aside: list[int] = []

    def counted(model: Any, ahead_ma: int) -> Any:
        set_aside.append(ahead_ma)
        return one_run(model, ahead_ma)

    pure._targets = counted
    try:
        alloc = pure.allocate(importlib.import_module("_loadmesh_core_pure.site").parse(scenario))["alloc_ma"]
    finally:
        pure._targets = one_run
    assert len(set_aside) == runs, set_aside
    # whichever runs it took, no solar_only load stands on surplus a continuous rise took
    solar = sum(alloc[load["id"]] for load in scenario["loads"] if load["mode"] == "solar_only")
    assert solar == 0 or solar <= surplus_ma(scenario) - continuous_rise_ma(scenario, alloc)


# ---- bad scenarios the vectors do not already cover ----

@pytest.mark.parametrize(("scenario", "message"), [
    # a circuit that leads into a cycle is not itself named: the first circuit on it is
    (_scenario([], circuits=[{"id": "a", "parent": "b", "limit_ma": 1}, {"id": "b", "parent": "c", "limit_ma": 1},
                             {"id": "c", "parent": "b", "limit_ma": 1}]),
     "circuits[1].parent: \"c\" makes a cycle: b -> c -> b"),
    # its own parent
    (_scenario([], circuits=[{"id": "x", "parent": "x", "limit_ma": 1}]),
     "circuits[0].parent: \"x\" makes a cycle: x -> x"),
    # 'site' is the root, not a circuit
    (_scenario([], circuits=[{"id": "site", "parent": "site", "limit_ma": 1}]),
     "circuits[0].id: 'site' names the site itself, not a circuit"),
    # ids are letters, digits, '-', '_' and '.': no spaces, no quotes, nothing to escape
    (_scenario([_load("my evse")]), "loads[0].id: \"my evse\" is not 1 to 64 letters, digits, '-', '_' or '.'"),
    (_scenario([_load('say"hi')]), "loads[0].id: \"say\\\"hi\" is not 1 to 64 letters, digits, '-', '_' or '.'"),
    (_scenario([_load("")]), "loads[0].id: \"\" is not 1 to 64 letters, digits, '-', '_' or '.'"),
    (_scenario([_load("a", circuit="x y")]), "loads[0].circuit: \"x y\" is not a circuit"),
    (_scenario([], circuits=[{"id": "c:1", "parent": "site", "limit_ma": 1}]),
     "circuits[0].id: \"c:1\" is not 1 to 64 letters, digits, '-', '_' or '.'"),
    # a three-phase load on a single-phase site
    (_scenario([_load("a", phases="L123")]), "loads[0].phases: \"L123\" on a single-phase site (only L1 exists)"),
    # the safety derating is a percentage of 1 to 100
    (_scenario([], safety_pct=0), "site.safety_pct: 0 is below 1"),
    # the step must move the current
    (_scenario([_load("a", step_ma=0)]), "loads[0].step_ma: 0 is below 1"),
    # too many loads for the integer bounds
    (_scenario([_load(f"l{n}") for n in range(257)]), "loads: has 257 entries, more than 256"),
    # a value that is not JSON's: the scenario is a JSON object
    ({"site": None}, "site: null is not an object"),
])
def test_bad_scenario_names_the_field(core: ModuleType, scenario: dict[str, Any], message: str) -> None:
    with pytest.raises(core.errors.FieldError) as caught:
        core.site.parse(scenario)
    assert str(caught.value) == message
