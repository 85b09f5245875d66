"""Allocation properties over thousands of random scenarios, on the pure and the compiled core."""

from __future__ import annotations

import json
import random
from types import ModuleType
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loadmesh.companion.runtimes import Runtime

from .scenarios import (
    PHASE_INDEXES,
    SOLAR_MODES,
    Scenario,
    continuous_rise_ma,
    limits,
    meter_state,
    per_phase,
    phase_weighted_total,
    reserve_ma,
    scenarios,
    surplus_ma,
)


def _allocate(core: ModuleType, scenario: Scenario) -> dict[str, Any]:
    result: dict[str, Any] = core.allocate.allocate(core.site.parse(scenario))
    return result


@settings(max_examples=2000)
@given(scenarios())
def test_targets_keep_every_limit_and_every_load_bound(core: ModuleType, scenario: Scenario) -> None:
    alloc = _allocate(core, scenario)["alloc_ma"]
    stale = meter_state(scenario) == "stale"
    for load in scenario["loads"]:
        target = alloc[load["id"]]
        assert target == 0 or target >= load["min_ma"], "0 < target < min"
        assert target <= load["max_ma"], "above max"
        assert target in (0, load["max_ma"]) or (target - load["min_ma"]) % load["step_ma"] == 0, "off its steps"
        if not load["online"] or not load["demand"] or load["mode"] == "off":
            assert target == 0
        if stale:
            assert target <= load["min_ma"], "above min with a stale meter"
    by_id = {load["id"]: load for load in scenario["loads"]}
    for name, phase, members, capacity in limits(scenario):
        held = sum(reserve_ma(scenario, by_id[m]) for m in members)
        given = sum(alloc[m] for m in members)
        assert given <= max(0, capacity - held), f"{name} L{phase + 1}: {given} mA given, {capacity - held} free"


@st.composite
def _sunny(draw: st.DrawFn) -> Scenario:
    """A site exporting, with continuous loads that may rise beside solar ones (drawing something or nothing)."""
    phases = draw(st.sampled_from((1, 3)))
    names = ("L1",) if phases == 1 else ("L1", "L2", "L3", "L123")
    loads = []
    for number in range(draw(st.integers(1, 6))):
        min_ma = draw(st.sampled_from((0, 1000, 6000, 6000)))
        max_ma = draw(st.integers(min_ma, 32000))
        load = {"id": f"l{number}", "phases": draw(st.sampled_from(names)), "min_ma": min_ma, "max_ma": max_ma,
                "step_ma": draw(st.sampled_from((1, 100, 1000))), "priority": draw(st.integers(-1, 1)),
                "mode": draw(st.sampled_from(("continuous", "continuous", "solar_priority", "solar_only", "excess"))),
                "demand": True, "online": draw(st.sampled_from((True, True, True, False)))}
        if draw(st.booleans()):
            load["draw_ma"] = draw(st.sampled_from((0, min_ma, max_ma)) | st.integers(0, max_ma + 20000))
        loads.append(load)
    site = {"phases": phases, "voltage_v": 230, "limit_ma": draw(st.sampled_from((20000, 40000, 63000))),
            "safety_pct": 100, "excess_threshold_w": draw(st.sampled_from((0, 0, 1000))),
            "meter": {"ma": draw(st.lists(st.integers(-40000, 2000), min_size=phases, max_size=phases)),
                      "age_ms": 0}}
    return {"site": site, "circuits": [], "loads": loads, "offline_reserve_ma": 0}


@settings(max_examples=1500)
@given(scenarios(max_circuits=2) | _sunny())
def test_solar_loads_live_on_the_surplus(core: ModuleType, scenario: Scenario) -> None:
    alloc = _allocate(core, scenario)["alloc_ma"]
    # What continuous loads rise above their draws takes the export first.
    surplus = surplus_ma(scenario) - continuous_rise_ma(scenario, alloc)
    site = scenario["site"]
    threshold_ma = site.get("excess_threshold_w", 0) * 1000 // site["voltage_v"]
    solar_total = grid_minimums = 0
    excess_running = solar_only_running = False
    for load in scenario["loads"]:
        target = alloc[load["id"]]
        phases = len(PHASE_INDEXES[load["phases"]])
        if load["mode"] in SOLAR_MODES:
            solar_total += target * phases
        if load["mode"] == "solar_priority" and target:
            grid_minimums += load["min_ma"] * phases
        if load["mode"] == "excess" and target:
            excess_running = True
        if load["mode"] == "solar_only" and target:
            solar_only_running = True
    # Only a solar_priority minimum may come from the grid.
    assert solar_total <= max(surplus, grid_minimums)
    if solar_only_running:
        assert solar_total <= surplus
    if excess_running:
        assert solar_total <= surplus - threshold_ma


@st.composite
def _metered(draw: st.DrawFn) -> Scenario:
    """A scenario with a fresh meter reading anything the site accepts (at most 4 x its limit either way)."""
    scenario: Scenario = draw(scenarios(max_circuits=2, meter=False))
    site = scenario["site"]
    limits = per_phase(site["limit_ma"], site["phases"])
    site["meter"] = {"ma": [draw(st.integers(-4 * limit, 4 * limit) | st.integers(-limit // 2, limit))
                            for limit in limits], "age_ms": 0}
    return scenario


@settings(max_examples=2000)
@given(_metered())
def test_every_site_phase_holds_once_the_online_loads_follow(core: ModuleType, scenario: Scenario) -> None:
    # The meter holds the house and every load's real draw: draw_ma, or, for
    # a reading above the load's max (a broken CT), anything up to its max;
    # 0 is the worst case. Once the online loads run at their targets and the
    # offline ones go on drawing, no site phase the allocation gave current
    # on may exceed its limit: an offline load's draw beyond its reserve, or
    # a draw above a max, must read as unmanaged load, not be subtracted.
    alloc = _allocate(core, scenario)["alloc_ma"]
    site = scenario["site"]
    for phase, limit in enumerate(per_phase(site["limit_ma"], site["phases"])):
        on_phase = [load for load in scenario["loads"] if phase in PHASE_INDEXES[load["phases"]]]
        real = {load["id"]: load.get("draw_ma", 0) if load.get("draw_ma", 0) <= load["max_ma"] else 0
                for load in on_phase}
        house = site["meter"]["ma"][phase] - sum(real.values())
        given = sum(alloc[load["id"]] for load in on_phase if load["online"])
        if not given:
            continue  # the allocation added nothing here (the reserves alone may not fit)
        after = house + given + sum(real[load["id"]] for load in on_phase if not load["online"])
        assert after <= limit * site["safety_pct"] // 100, f"L{phase + 1}: {after} mA once the loads follow"


def _shuffled(scenario: Scenario, seed: int) -> Scenario:
    shuffler = random.Random(seed)
    copy = json.loads(json.dumps(scenario))
    shuffler.shuffle(copy["loads"])
    shuffler.shuffle(copy["circuits"])
    return copy


@settings(max_examples=1000)
@given(scenarios())
def test_view_text_is_the_canonical_encoding_of_the_view(core: ModuleType, scenario: Scenario) -> None:
    # The digest hashes view_text, formatted by hand for speed; canon is the reference.
    model = core.site.parse(scenario)
    assert core.view.view_text(model) == core.canon.dumps(core.view.view(model))


@settings(max_examples=1000)
@given(scenarios(), st.integers(0, 2**32))
def test_input_order_changes_nothing(core: ModuleType, scenario: Scenario, seed: int) -> None:
    first = core.entry.respond("allocate", scenario)
    assert core.entry.respond("allocate", _shuffled(scenario, seed)) == first


@settings(max_examples=1000)
@given(scenarios(circuits=False, phase_counts=(1,), modes=("continuous", "off"), meter=False,
                 import_cap=False, max_loads=8, max_on_steps=True),
       st.integers(1, 30000))
def test_raising_the_limit_of_a_flat_group_never_lowers_the_total(core: ModuleType, scenario: Scenario,
                                                                  raise_ma: int) -> None:
    # One breaker, any mix of minimums, steps, priorities, reserves and scarcity; maxima on their
    # steps (a shorter top step can drop the total: test_allocate.py, test_a_higher_limit_may_lower_the_total).
    before = sum(_allocate(core, scenario)["alloc_ma"].values())
    site = scenario["site"]
    site["limit_ma"] = [limit + raise_ma for limit in site["limit_ma"]] if isinstance(site["limit_ma"], list) \
        else site["limit_ma"] + raise_ma
    assert sum(_allocate(core, scenario)["alloc_ma"].values()) >= before


@settings(max_examples=1000)
@given(scenarios(three_phase_loads=False, modes=("continuous", "off"), meter=False, max_loads=8),
       st.data(), st.integers(1, 30000))
def test_raising_any_limit_never_lowers_the_total_when_all_minimums_fit(core: ModuleType, scenario: Scenario,
                                                                        data: st.DataObject, raise_ma: int) -> None:
    # Single-phase loads under nested circuits, an import cap, reserves. With
    # three-phase loads, or when a raise lets a preferred minimum displace
    # others, the total can drop by design: see test_allocate.py.
    first = _allocate(core, scenario)
    assume("scarcity" not in first["reason"].values())
    targets = [("site", None)] + [("circuit", index) for index in range(len(scenario["circuits"]))]
    if "import_limit_w" in scenario["site"]:
        targets.append(("import", None))
    kind, index = data.draw(st.sampled_from(targets))
    raised = json.loads(json.dumps(scenario))
    if kind == "import":
        raised["site"]["import_limit_w"] += raise_ma
    else:
        holder = raised["site"] if kind == "site" else raised["circuits"][index]
        limit = holder["limit_ma"]
        if isinstance(limit, list):
            phase = data.draw(st.integers(0, len(limit) - 1))
            limit[phase] += raise_ma
        else:
            holder["limit_ma"] = limit + raise_ma
    second = _allocate(core, raised)
    assume("scarcity" not in second["reason"].values())
    # Equal shares with unequal steps: a load that may now rise by its share
    # can leave another just short of its next step, so the total may drop,
    # but never by more than what rounding to steps can lose (test_allocate.py
    # pins an example).
    rounding_ma = sum(load["step_ma"] - 1 for load in scenario["loads"])
    assert (phase_weighted_total(raised, second["alloc_ma"])
            >= phase_weighted_total(scenario, first["alloc_ma"]) - rounding_ma)


@settings(max_examples=1000)
@given(scenarios())
def test_each_load_may_hold_its_target_under_the_raise_check(core: ModuleType, scenario: Scenario) -> None:
    # The controller raises only up to allowed_ma with every peer at what it
    # applies; with everyone at their targets, each must be allowed its own.
    model = core.site.parse(scenario)
    alloc = core.allocate.allocate(model)["alloc_ma"]
    left = core.headroom.headroom_ma(model, alloc)
    for con, capacity in enumerate(model.con_capacity_ma):
        if any(alloc[model.load_ids[i]] for i in core.site.members(model, con)):
            assert left[core.site.constraint_name(model, con)] >= 0, capacity
    for load_id, target in alloc.items():
        allowed = core.headroom.allowed_ma(model, load_id, alloc)
        assert allowed >= target
        if allowed and model.load_online[model.load_index[load_id]]:  # and what it grants must fit
            trial = dict(alloc, **{load_id: allowed})
            after = core.headroom.headroom_ma(model, trial)
            for con in model.load_cons[model.load_index[load_id]]:
                assert after[core.site.constraint_name(model, con)] >= 0


@settings(max_examples=1000)
@given(scenarios())
def test_pure_and_compiled_agree(all_runtimes: list[Runtime], scenario: Scenario) -> None:
    pure, compiled = (r for r in all_runtimes if r.name in ("cpython-pure", "cpython-compiled"))
    assert pure.respond("allocate", scenario) == compiled.respond("allocate", scenario)


@settings(max_examples=150)
@given(scenarios())
def test_every_runtime_gives_the_same_bytes(all_runtimes: list[Runtime], scenario: Scenario) -> None:
    outputs = {r.name: r.respond("allocate", scenario) for r in all_runtimes}
    assert len(set(outputs.values())) == 1, outputs
