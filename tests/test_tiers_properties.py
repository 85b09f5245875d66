"""Load sharing keeps its promises whatever the house does: random rooms, modes, sensors and calls."""

from __future__ import annotations

import copy
import json
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.companion.runtimes import Runtime
from loadmesh.core import entry

ACTIVE = ("TIER1_ACTIVE", "TIER1_ESCALATED", "TIER2_ACTIVE", "TIER2_ESCALATED", "TIER3_ACTIVE", "TIER3_ESCALATED")
ROOM_IDS = ("a", "b", "c", "d", "e", "f")
MIN = 60000


@st.composite
def tiers_config(draw: st.DrawFn) -> dict[str, object]:
    """A valid load-sharing config: 2 to 6 rooms, some settings moved off their defaults."""
    count = draw(st.integers(2, 6))
    rooms = []
    for rid in ROOM_IDS[:count]:
        room: dict[str, object] = {"id": rid, "rated_w": draw(st.integers(300, 3000)),
                                   "exponent_permille": draw(st.sampled_from([1200, 1300, 1330])),
                                   "lookahead_ms": draw(st.sampled_from([15 * MIN, 30 * MIN, 60 * MIN, 90 * MIN]))}
        priority = draw(st.none() | st.integers(1, 5))
        if priority is not None:
            room["fallback_priority"] = priority
        rooms.append(room)
    config: dict[str, object] = {"rooms": rooms}
    config["min_activation_duration_ms"] = draw(st.sampled_from([0, 2 * MIN, 5 * MIN]))
    config["tier_3_max_duration_ms"] = draw(st.sampled_from([3 * MIN, 15 * MIN]))
    config["tier_3_rest_ms"] = draw(st.sampled_from([1 * MIN, 15 * MIN]))
    for tier, (low, high) in ((1, (70, 90)), (2, (40, 60)), (3, (50, 70))):
        initial = draw(st.integers(low // 10, high // 10)) * 10
        escalated = draw(st.integers(initial // 10, high // 10)) * 10
        config[f"tier_{tier}_initial_pct"] = initial
        config[f"tier_{tier}_escalated_pct"] = escalated
        config[f"tier_{tier}_max_pct"] = high
    return config


def room_inputs(rid_count: int) -> st.SearchStrategy[dict[str, object]]:
    room = st.fixed_dictionaries({
        "mode": st.sampled_from(["auto", "auto", "auto", "manual", "off"]),
        "temp_dc": st.none() | st.integers(100, 260),
        "temp_age_ms": st.sampled_from([0, 0, 0, 900001]),
        "calling": st.sampled_from([False, False, True]),
        "next_start_in_ms": st.none() | st.integers(0, 240 * MIN),
        "next_target_dc": st.none() | st.integers(150, 230),
    })
    return st.fixed_dictionaries({rid: room for rid in ROOM_IDS[:rid_count]})


@st.composite
def scenario(draw: st.DrawFn, max_steps: int = 30) -> tuple[dict[str, object], list[dict[str, object]]]:
    """A config and a sequence of full step inputs with rising now_ms."""
    config = draw(tiers_config())
    rooms = config["rooms"]
    assert isinstance(rooms, list)
    now_ms = 0
    steps: list[dict[str, object]] = []
    house = draw(room_inputs(len(rooms)))
    boiler: dict[str, object] = {"on": True, "return_dc": 600, "setpoint_dc": 700, "last_cooldown_ms": None}
    for _ in range(draw(st.integers(1, max_steps))):
        # Houses change a little at a time: each step redraws some rooms, and
        # steps fall on the minimum and tier-3 durations as often as not.
        now_ms += draw(st.sampled_from([1000, 60000, 60000, 180000, 299999, 300000, 600000]))
        fresh = draw(room_inputs(len(rooms)))
        house = {rid: fresh[rid] if draw(st.integers(0, 4)) == 0 else house[rid] for rid in sorted(house)}
        if draw(st.integers(0, 3)) == 0:
            boiler = {"on": draw(st.booleans()), "return_dc": draw(st.none() | st.integers(400, 700)),
                      "setpoint_dc": 700,
                      "last_cooldown_ms": draw(st.none() | st.integers(max(0, now_ms - 40 * MIN), now_ms)),
                      "cooldown": draw(st.booleans())}
        steps.append({"now_ms": now_ms, "enabled": draw(st.sampled_from([True] * 9 + [False])),
                      "boiler": dict(boiler), "rooms": copy.deepcopy(house)})
    return config, steps


def _tier_caps(config: dict[str, object], tier: int) -> tuple[int, int]:
    low, high = config[f"tier_{tier}_initial_pct"], config[f"tier_{tier}_max_pct"]
    assert isinstance(low, int) and isinstance(high, int)
    return low, high


@settings(max_examples=150)
@given(scenario())
def test_load_sharing_invariants(core: ModuleType, case: tuple[dict[str, object], list[dict[str, object]]]) -> None:
    raw_config, steps = case
    config = core.tiers.load_config(raw_config, "config")
    state = core.tiers.initial_state(config)
    rested_until: dict[str, int] = {}  # when each released tier-3 room may be taken again
    for raw in steps:
        now_ms = raw["now_ms"]
        body = {key: value for key, value in raw.items() if key != "now_ms"}
        inputs = core.tiers.load_inputs(config, body)
        before = copy.deepcopy((state, inputs))
        outputs, new = core.tiers.step(config, state, inputs, now_ms)
        assert (state, inputs) == before, "step changed its arguments"
        rooms_in = inputs["rooms"]
        for rid, pct in outputs["valve_pct"].items():
            room = rooms_in[rid]
            # Never an off or manual room, never one whose temperature is unknown.
            assert room["mode"] == "auto", (rid, room)
            assert rid not in outputs["stale"]
            # 10 % steps, within the tier's opening and its cap.
            low, high = _tier_caps(config, new["rooms"][rid]["tier"])
            assert pct % 10 == 0 and low <= pct <= high, (rid, pct, low, high)
        limit, rest = config["tier_3_max_duration_ms"], config["tier_3_rest_ms"]
        for rid, activation in new["rooms"].items():
            # A tier-3 room never runs past its maximum duration.
            if activation["tier"] == 3:
                assert now_ms - activation["since_ms"] < limit
                # Nor is it taken again before it has rested in proportion to its last service.
                if activation["since_ms"] == now_ms:
                    assert now_ms >= rested_until.get(rid, 0), (rid, now_ms, rested_until)
        for rid, activation in state["rooms"].items():
            if activation["tier"] == 3 and rid not in new["rooms"]:
                rested_until[rid] = now_ms + min(now_ms - activation["since_ms"], limit) * rest // limit
        if new["state"] == "DISABLED":
            rested_until = {}  # the master switch clears the whole context
        was_active = state["state"] in ACTIVE
        if was_active and new["state"] == "INACTIVE":
            # Nothing exits before the minimum activation duration.
            assert now_ms - state["activated_at_ms"] >= config["min_activation_duration_ms"]
        if was_active and any(line.startswith("deactivate: A") for line in outputs["log"]):
            # Exit A only once no room calls: a room that started calling since joined the trigger set.
            assert not outputs["calling_w"] and not [rid for rid in rooms_in if rooms_in[rid]["calling"]
                                                     and rid not in outputs["stale"]], outputs
        if not was_active and new["state"] in ACTIVE:
            assert outputs["calling_w"] < config["min_calling_capacity_w"]
            assert new["trigger_rooms"], "activated with no room calling"
        if not config["enabled"] or not inputs["enabled"]:
            assert new["state"] == "DISABLED" and not outputs["valve_pct"]
        # The context is plain data: canonical JSON that loads back the same.
        assert core.tiers.load_state(config, json.loads(core.canon.dumps(new)), "state") == new
        state = new


@st.composite
def heating_scenario(draw: st.DrawFn) -> tuple[dict[str, object], list[dict[str, object]]]:
    """A small house for the whole chain: schedules, modes, temperatures, valve feedback."""
    count = draw(st.integers(2, 4))
    rooms = []
    for rid in ROOM_IDS[:count]:
        start = draw(st.integers(0, 1380))
        room: dict[str, object] = {
            "id": rid, "rated_w": draw(st.integers(400, 2500)),
            "schedule": {"default_target_dc": draw(st.integers(140, 180)),
                         "blocks": [{"days": [0], "start_min": start, "end_min": start + 60,
                                     "target_dc": draw(st.integers(180, 220))}]},
            "load_sharing": {"fallback_priority": draw(st.integers(1, 3))}}
        rooms.append(room)
    steps = []
    now_ms = 0
    for _ in range(draw(st.integers(1, 25))):
        now_ms += draw(st.sampled_from([10000, 60000, 180000, 300000]))
        step_rooms = {}
        for room in rooms:
            mode = draw(st.sampled_from(["auto", "auto", "manual", "off"]))
            step_rooms[room["id"]] = {"mode": mode, "temp_dc": draw(st.integers(90, 230)),
                                      "manual_target_dc": 190, "confirmed_pct": draw(st.integers(0, 100))}
        steps.append({"now_ms": now_ms, "rooms": step_rooms,
                      "boiler": {"flame": draw(st.booleans()), "flow_dc": draw(st.integers(300, 800)),
                                 "return_dc": draw(st.integers(300, 750))}})
    return {"rooms": rooms}, steps


@settings(max_examples=100)
@given(heating_scenario())
def test_whole_chain_never_opens_an_off_room(core: ModuleType,
                                             case: tuple[dict[str, object], list[dict[str, object]]]) -> None:
    raw_config, steps = case
    config = core.heating.load_config(raw_config)
    state = core.heating.initial_state(config)
    previous: dict[str, int] = {}
    for raw in steps:
        body = {key: value for key, value in raw.items() if key != "now_ms"}
        body["week_ms"] = raw["now_ms"]
        outputs, state = core.heating.step(config, state, core.heating.load_inputs(config, body), raw["now_ms"])
        for rid, pct in outputs["valve_pct"].items():
            assert pct % 10 == 0 and 0 <= pct <= 100, (rid, pct)
            mode = raw["rooms"][rid]["mode"]
            assert mode == "auto" or rid not in outputs["load_sharing"]
            if mode == "off" and outputs["room_reason"][rid] != "frost":
                # An off room is never opened: at most a valve that was open is held while the water flows.
                assert pct <= previous.get(rid, 0), (rid, pct, previous.get(rid, 0), outputs["source"][rid])
        previous = outputs["valve_pct"]


@settings(max_examples=6)
@given(scenario(max_steps=4))
def test_every_runtime_agrees(runtime: Runtime, case: tuple[dict[str, object], list[dict[str, object]]]) -> None:
    raw_config, steps = case
    request = {"config": raw_config, "steps": steps}
    assert runtime.respond("tiers", request) == entry.respond("tiers", json.loads(json.dumps(request)))
