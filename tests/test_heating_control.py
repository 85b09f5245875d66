"""Schedules, the boiler state machine and the valve arbitration, case by case."""

from __future__ import annotations

from types import ModuleType

import pytest

MIN = 60000
HOUR = 60 * MIN
DAY = 24 * HOUR


def _plan(core: ModuleType) -> dict[str, object]:
    # Weekdays 06:30-08:00 at 21.0, Sunday 22:00-24:00 at 18.0, else 16.0.
    result: dict[str, object] = core.schedule.load({"default_target_dc": 160, "blocks": [
        {"days": [0, 1, 2, 3, 4], "start_min": 390, "end_min": 480, "target_dc": 210},
        {"days": [6], "start_min": 1320, "end_min": 1440, "target_dc": 180},
    ]}, "schedule")
    return result


@pytest.mark.parametrize(("week_ms", "target_dc", "upcoming"), [
    (0, 160, (390 * MIN, 210)),  # Monday midnight: the 06:30 block is next
    (390 * MIN, 210, (DAY, 210)),  # the block has just begun: next is Tuesday's
    (480 * MIN - 1, 210, (DAY - 90 * MIN + 1, 210)),
    (480 * MIN, 160, (DAY - 90 * MIN, 210)),  # 08:00: over
    (4 * DAY + 9 * HOUR, 160, (2 * DAY + 13 * HOUR, 180)),  # Friday 09:00: Sunday 22:00 is next
    (6 * DAY + 23 * HOUR, 180, (7 * HOUR + 30 * MIN, 210)),  # Sunday 23:00: wraps to Monday 06:30
    (7 * DAY + 390 * MIN, 210, (DAY, 210)),  # a time past the week counts from Monday again
])
def test_schedule_target_and_next_block(core: ModuleType, week_ms: int, target_dc: int,
                                        upcoming: tuple[int, int]) -> None:
    plan = _plan(core)
    assert core.schedule.target_at(plan, week_ms) == target_dc
    assert core.schedule.next_block(plan, week_ms) == upcoming


def test_schedule_without_blocks_has_no_next(core: ModuleType) -> None:
    plan = core.schedule.load({"default_target_dc": 170}, "schedule")
    assert core.schedule.target_at(plan, 12345) == 170
    assert core.schedule.next_block(plan, 12345) is None


def test_blocks_touching_across_midnight_are_allowed(core: ModuleType) -> None:
    plan = core.schedule.load({"default_target_dc": 160, "blocks": [
        {"days": [0], "start_min": 1380, "end_min": 1440, "target_dc": 190},
        {"days": [1], "start_min": 0, "end_min": 60, "target_dc": 200}]}, "schedule")
    assert core.schedule.target_at(plan, DAY - 1) == 190
    assert core.schedule.target_at(plan, DAY) == 200


def _boiler(core: ModuleType, steps: list[tuple[int, bool, int]]) -> list[str]:
    """Run (now_ms, demand, confirmed_pct) through boiler.step; the FSM state after each."""
    config = core.boiler.load_config({}, "boiler")
    state = core.boiler.initial_state()
    seen = []
    for now_ms, demand, confirmed in steps:
        outputs, state = core.boiler.step(config, state, {"demand": demand, "confirmed_pct": confirmed,
                                                          "flame": False, "flow_dc": 500, "return_dc": 450}, now_ms)
        assert outputs["boiler_on"] == (outputs["fsm"] in ("ON", "PENDING_OFF"))
        assert outputs["hold_valves"] == (outputs["fsm"] in ("PENDING_OFF", "PUMP_OVERRUN"))
        seen.append(outputs["fsm"])
    return seen


@pytest.mark.parametrize(("steps", "expected"), [
    # demand with the valves confirmed: on at once
    ([(0, True, 100)], ["ON"]),
    # demand ends after 1 min: held on until the 3 min minimum, then pump overrun, then off after 3 min
    ([(0, True, 100), (MIN, False, 100), (3 * MIN - 1, False, 100), (3 * MIN, False, 100),
      (6 * MIN - 1, False, 100), (6 * MIN, False, 100)],
     ["ON", "PENDING_OFF", "PENDING_OFF", "PUMP_OVERRUN", "PUMP_OVERRUN", "OFF"]),
    # demand back during pending-off: still on, no new start
    ([(0, True, 100), (MIN, False, 100), (2 * MIN, True, 100)], ["ON", "PENDING_OFF", "ON"]),
    # demand back right after the boiler went off: blocked for the 3 min minimum off time
    ([(0, True, 100), (4 * MIN, False, 100), (5 * MIN, True, 100), (7 * MIN - 1, True, 100),
      (7 * MIN, True, 100)],
     ["ON", "PUMP_OVERRUN", "PUMP_OVERRUN", "PUMP_OVERRUN", "ON"]),
    # the interlock: no fire below 100 % confirmed, off at once when it drops, minimum on time or not
    ([(0, True, 90), (10000, True, 100), (20000, True, 99)], ["BLOCKED", "ON", "PUMP_OVERRUN"]),
    # pump overrun ends while the demand is back but not yet confirmed: blocked, then on
    ([(0, True, 100), (4 * MIN, False, 100), (7 * MIN, True, 0), (7 * MIN + 1, True, 100)],
     ["ON", "PUMP_OVERRUN", "BLOCKED", "ON"]),
])
def test_boiler_state_machine(core: ModuleType, steps: list[tuple[int, bool, int]], expected: list[str]) -> None:
    assert _boiler(core, steps) == expected


def _valves(core: ModuleType, rooms: dict[str, dict[str, object]], sharing: dict[str, int], *, hold: bool = False,
            demand: bool = True, firing: bool = False, last: dict[str, int] | None = None,
            held: dict[str, int] | None = None) -> tuple[dict[str, int], dict[str, str], str]:
    state = {"held": held or {}, "last": last or {}}
    outputs, _ = core.valves.step({"min_valve_open_pct": 100}, state, {
        "rooms": rooms, "load_sharing": sharing, "hold": hold, "demand": demand, "firing": firing}, 0)
    return outputs["valve_pct"], outputs["source"], outputs["interlock"]


def _room(normal: int, calling: bool, confirmed: int = 0, correction: int | None = None) -> dict[str, object]:
    return {"normal_pct": normal, "calling": calling, "confirmed_pct": confirmed, "correction_pct": correction}


@pytest.mark.parametrize(("rooms", "sharing", "expected_pct", "interlock"), [
    # one room at 40 %: raised to 100 to reach the minimum
    ({"a": _room(40, True)}, {}, {"a": 100}, "raised"),
    # three calling rooms at 0-40 %: each raised to ceil(100/3) in 10 % steps, 40
    ({"a": _room(40, True), "b": _room(0, True), "c": _room(0, True)}, {}, {"a": 40, "b": 40, "c": 40}, "raised"),
    # a load-sharing valve counts: 40 + 70 is enough
    ({"a": _room(40, True), "b": _room(0, False)}, {"b": 70}, {"a": 40, "b": 70}, "ok"),
    # a room that does not call is never raised: nothing calls, the interlock stays short
    ({"a": _room(0, False)}, {}, {"a": 0}, "short"),
])
def test_interlock_raises_calling_rooms_only(core: ModuleType, rooms: dict[str, dict[str, object]],
                                             sharing: dict[str, int], expected_pct: dict[str, int],
                                             interlock: str) -> None:
    pct, _, result = _valves(core, rooms, sharing)
    assert pct == expected_pct
    assert result == interlock


def test_make_before_break_holds_a_closing_valve_until_the_other_confirms(core: ModuleType) -> None:
    # a closes from 100 to 0 while b opens to 100; b has confirmed 35 so far.
    rooms = {"a": _room(0, False, confirmed=100), "b": _room(100, True, confirmed=35)}
    pct, source, _ = _valves(core, rooms, {}, firing=True, last={"a": 100, "b": 100})
    # Secured: b's 35 + a's hold; a keeps 70 (100 - 35, in 10 % steps), never more than it had.
    assert pct == {"a": 70, "b": 100}
    assert source["a"] == "safety"
    # Once b confirms 100, a may close.
    rooms["b"]["confirmed_pct"] = 100
    pct, _, _ = _valves(core, rooms, {}, firing=True, last={"a": 70, "b": 100})
    assert pct == {"a": 0, "b": 100}


def test_make_before_break_counts_for_the_others_only_what_lasts_of_an_opening(core: ModuleType) -> None:
    # b (load sharing's until now) closes while a is raised to 100: a's valve is at 70, but only its own
    # 40 lasts (its valve node may be about to drop the rest: role_boiler.py). Counting 70, b was let go
    # to 30; counting 40, b keeps 60: 40 + 60 covers the 100 % minimum whatever a's node does.
    rooms = {"a": dict(_room(40, True, confirmed=70), lasting_pct=40), "b": _room(0, False, confirmed=90)}
    pct, source, _ = _valves(core, rooms, {}, firing=True, last={"a": 100, "b": 90})
    assert (pct, source["b"]) == ({"a": 100, "b": 60}, "safety")
    # Without lasting_pct the confirmed opening counts in full, as before.
    del rooms["a"]["lasting_pct"]
    pct, _, _ = _valves(core, rooms, {}, firing=True, last={"a": 100, "b": 90})
    assert pct == {"a": 100, "b": 30}
    # lasting_pct limits what a room counts for the others, never how far its own valve may close.
    rooms = {"a": dict(_room(0, False, confirmed=100), lasting_pct=0), "b": _room(100, True, confirmed=35)}
    pct, _, _ = _valves(core, rooms, {}, firing=True, last={"a": 100, "b": 100})
    assert pct == {"a": 70, "b": 100}


def test_hold_keeps_what_was_open_when_it_began(core: ModuleType) -> None:
    rooms = {"a": _room(0, False, confirmed=60), "b": _room(0, False), "c": _room(0, False)}
    pct, source, _ = _valves(core, rooms, {"b": 50}, hold=True, demand=False, last={"a": 60, "b": 0, "c": 30})
    assert pct == {"a": 60, "b": 50, "c": 30}
    assert source == {"a": "safety", "b": "load_sharing", "c": "safety"}


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"load_sharing": {"tier_1_initial_pct": 75}}, "load_sharing.tier_1_initial_pct", "75 is not a multiple of 10"),
    ({"rooms": [{"id": "bath", "rated_w": 600, "schedule": {"default_target_dc": 200},
                 "load_sharing": {"fallback_priority": 0}}]},
     "rooms[0].load_sharing.fallback_priority", "0 is out of range 1..999"),
    ({"boiler": {"min_valve_open_pct": 0}}, "boiler.min_valve_open_pct", "0 is out of range 10..1000"),
    ({"boiler": {"min_valve_open_pct": 150}}, "boiler.min_valve_open_pct",
     "150 is more than the 1 rooms' valves open together (100)"),
])
def test_heating_settings_are_refused_where_they_are_written(core: ModuleType, change: dict[str, object],
                                                              field: str, problem: str) -> None:
    config: dict[str, object] = {"rooms": [{"id": "bath", "rated_w": 600, "schedule": {"default_target_dc": 200}}]}
    config.update(change)
    with pytest.raises(core.errors.FieldError) as refused:
        core.heating.load_config(config)
    assert (refused.value.field, refused.value.problem) == (field, problem)
