"""The step remainder (allocate._hand_back): the same result as one step per load per round, in few rounds."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import _runtime
from .scenarios import Scenario, scenarios

# Steps from 1 mA to the largest site.parse accepts, and the odd ones between.
WIDE_STEPS_MA = (1, 1, 2, 3, 7, 100, 999, 1000, 4096, 65535, 999999, 1000000)


def _reference_hand_back(model: Any, candidates: list[int], alloc: list[int], reason: list[str], room: list[int],
                         per_round: list[int], has_solar: bool, solar_ma: int) -> int:
    """The remainder loop as it was before it took whole rounds at once: one step per candidate per round."""
    load_cons = model.load_cons
    load_phases = model.load_phases
    cap = model.load_max_ma
    step = model.load_step_ma
    while candidates:
        took = []
        for index in candidates:
            start = alloc[index]
            top = cap[index]
            increment = step[index]
            if start + increment > top:
                increment = top - start
            phases = len(load_phases[index])
            if has_solar and solar_ma < increment * phases:
                continue
            cons = load_cons[index]
            for con in cons:
                if room[con] < increment:
                    break
            else:
                alloc[index] = start + increment
                for con in cons:
                    room[con] -= increment
                if has_solar:
                    solar_ma -= increment * phases
                if start + increment < top:
                    took.append(index)
                else:
                    reason[index] = "max"
        candidates = took
    return solar_ma


def _load(load_id: str, phases: str, min_ma: int, max_ma: int, step_ma: int, circuit: str) -> dict[str, Any]:
    return {"id": load_id, "circuit": circuit, "phases": phases, "min_ma": min_ma, "max_ma": max_ma,
            "step_ma": step_ma, "priority": 0, "mode": "continuous", "demand": True, "online": True}


@st.composite
def _remainder_states(draw: st.DrawFn) -> tuple[Scenario, list[int], list[int], list[int], bool, int]:
    """A site, and a state the remainder loop may start from: candidates on their steps below their max, room, surplus.

    Each candidate starts at most `rounds` steps below its max, so that the
    reference loop ends within that many rounds whatever the room.
    """
    phases = draw(st.sampled_from((1, 3)))
    circuits = [{"id": f"c{n}", "parent": "site", "limit_ma": 1000000} for n in range(draw(st.integers(0, 3)))]
    names = ("L1",) if phases == 1 else ("L1", "L2", "L3", "L123")
    rounds = draw(st.sampled_from((1, 2, 5, 50, 1500)))
    loads = []
    starts = []
    for number in range(draw(st.integers(1, 12))):
        step_ma = draw(st.sampled_from(WIDE_STEPS_MA) | st.integers(1, 1000000))
        min_ma = draw(st.sampled_from((0, 0, 1, 6000)) | st.integers(0, 1000000))
        max_ma = draw(st.integers(min_ma, 1000000) | st.just(1000000))
        circuit = draw(st.sampled_from(["site"] + [c["id"] for c in circuits]))
        loads.append(_load(f"l{number:02d}", draw(st.sampled_from(names)), min_ma, max_ma, step_ma, circuit))
        # The highest step strictly below max, then up to `rounds` steps lower; -1: not a candidate.
        if max_ma == min_ma or not draw(st.integers(0, 4)):
            starts.append(-1)
            continue
        top_steps = (max_ma - min_ma - 1) // step_ma
        starts.append(min_ma + step_ma * max(0, top_steps - draw(st.integers(0, rounds))))
    scenario: Scenario = {"site": {"phases": phases, "voltage_v": 230, "limit_ma": 1000000, "safety_pct": 100,
                                   "import_limit_w": 1000000},
                          "circuits": circuits, "loads": loads}
    room_ma = st.sampled_from((0, 1, 2, 999, 1000, 999999, 1000000)) | st.integers(0, 1000000) | st.integers(0, 5000)
    constraints = (len(circuits) + 2) * phases
    room = [draw(room_ma) for _ in range(constraints)]
    has_solar = draw(st.booleans())
    solar_ma = draw(room_ma | st.integers(0, 3000000)) if has_solar else -1
    return scenario, starts, room, [0] * len(loads), has_solar, solar_ma


def _run(core: ModuleType, hand_back: Any, state: tuple[Scenario, list[int], list[int], list[int], bool, int]
         ) -> tuple[list[int], list[str], list[int], int]:
    scenario, starts, room, _, has_solar, solar_ma = state
    model = core.site.parse(scenario)
    # starts follow the scenario's order, which is the id order site.parse sorts into
    alloc = [max(start, 0) for start in starts]
    reason = ["equal_share"] * len(starts)
    candidates = [index for index, start in enumerate(starts) if start >= 0]
    order = list(candidates)
    room = list(room)
    scratch = [0] * len(room)
    left = hand_back(model, candidates, alloc, reason, room, scratch, has_solar, solar_ma)
    assert candidates == order  # the caller's list is not reordered
    assert scratch == [0] * len(room)  # the scratch is left as zeros
    return alloc, reason, room, left


@settings(max_examples=600)
@given(_remainder_states())
def test_whole_rounds_at_once_give_what_one_round_at_a_time_gives(core: ModuleType,
                                                                  state: tuple[Any, ...]) -> None:
    assert (_run(core, core.allocate._hand_back, state)  # type: ignore[arg-type]
            == _run(core, _reference_hand_back, state))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pure_allocate(device_root: Path) -> ModuleType:
    """The pure core's allocate module (its _fill reads _hand_back as a global, so a test may swap it)."""
    _runtime("cpython-pure", device_root)  # loads the pure core
    return importlib.import_module("_loadmesh_core_pure.allocate")


@settings(max_examples=800)
@given(scenarios(steps=(1, 1, 2, 7, 100, 999, 1000, 3000, 5000)))
def test_allocations_equal_the_one_round_at_a_time_reference(pure_allocate: ModuleType, scenario: Scenario) -> None:
    pure_entry = importlib.import_module("_loadmesh_core_pure.entry")
    compiled = importlib.import_module("loadmesh.core.entry").respond("allocate", scenario)
    pure = pure_entry.respond("allocate", scenario)
    new = pure_allocate._hand_back
    pure_allocate._hand_back = _reference_hand_back
    try:
        reference = pure_entry.respond("allocate", scenario)
    finally:
        pure_allocate._hand_back = new
    assert pure == compiled == reference


def _fine_beside_coarse(coarse: int) -> Scenario:
    """A load of 1 mA steps beside loads of 999 999 mA steps on a 1000 A site: rounding frees up to 1 A each."""
    loads = [_load("fine", "L1", 0, 1000000, 1, "site")]
    loads += [_load(f"big{n:03d}", "L1", 0, 1000000, 999999, "site") for n in range(coarse)]
    return {"site": {"phases": 1, "voltage_v": 230, "limit_ma": 1000000, "safety_pct": 100},
            "circuits": [], "loads": loads}


@pytest.mark.parametrize("coarse", [1, 255])
def test_the_remainder_takes_few_rounds_with_a_1_ma_step_beside_large_ones(pure_allocate: ModuleType,
                                                                            coarse: int) -> None:
    # One step per load per round took ~a million rounds here (140 ms on
    # MicroPython for two loads). Count the lines the pure core runs; stop
    # far below a million.
    site = importlib.import_module("_loadmesh_core_pure.site")
    model = site.parse(_fine_beside_coarse(coarse))
    source = pure_allocate.__file__
    budget = [200000]

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename != source:
            return None
        if event == "line":
            budget[0] -= 1
            if budget[0] < 0:
                raise AssertionError("allocate ran more than 200000 lines")
        return tracer

    sys.settrace(tracer)
    try:
        targets, reasons = pure_allocate.targets_ma(model)
    finally:
        sys.settrace(None)
    # the equal shares (1000 A / n) rounded: the big loads' steps fit nowhere but at 0, the fine load takes the rest
    assert targets[model.load_index["fine"]] == 1000000
    assert reasons[model.load_index["fine"]] == "max"
    assert sum(targets) <= 1000000
