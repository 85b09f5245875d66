"""Telling a change again: the heartbeats that follow a change come min_gap_ms apart, not a whole period."""

from __future__ import annotations

import itertools
from types import ModuleType

from .controllers import KEY, config, evse

TICK_MS = 100


def send_times(core: ModuleType, raw: dict[str, object], demand_at: dict[int, bool], until_ms: int) -> list[int]:
    """When a lone node's controller sends, ticked every 100 ms, its demand switched at the given times."""
    parsed = core.groupconfig.parse(raw)
    plan = core.controller.prepare(parsed, "a")
    table = core.peers.PeerTable(core.heartbeat.prepare_key(KEY), parsed["group"], "a", plan.ids)
    state = core.controller.boot(plan, 1, 0)
    demand = False
    sent = []
    for now_ms in range(0, until_ms, TICK_MS):
        demand = demand_at.get(now_ms, demand)
        out, state = core.controller.step(plan, state, {"demand": demand, "idle": False}, table, now_ms)
        if out["heartbeat"] is not None:
            sent.append(now_ms)
    return sent


def test_a_change_is_told_again_three_times_a_tick_apart_then_every_period(core: ModuleType) -> None:
    raw = config([evse("a")], heartbeat_ms=500)  # min_gap 100 ms: one tick
    assert core.controller.RETELLS == 3
    # Demand at 2 s: the target is told at once, the limit rises to it the tick after (rule 2: only
    # up to a target already published), told at once again, then three times more; then every 500 ms.
    assert send_times(core, raw, {2000: True}, 3500) == [
        0, 100, 200, 300, 800, 1300, 1800,  # boot is a change: told three times more, then every 500 ms
        2000, 2100, 2200, 2300, 2400, 2900, 3400]


def test_an_exposure_that_ends_is_told_at_once(core: ModuleType) -> None:
    # ev_lag_ms 1200: after its limit falls to 0 at 2 s the car may draw the old one until 3.2 s.
    raw = config([evse("a")], heartbeat_ms=500, ev_lag_ms=1200)
    told = send_times(core, raw, {1000: True, 2000: False}, 4000)
    # Lowered at 2 s (and no longer active from 2.1 s): told, then three times more, the period at
    # 2.9 s; the exposure ends at 3.2 s, told at that tick and three times more in turn.
    assert [t for t in told if t >= 2000] == [2000, 2100, 2200, 2300, 2400, 2900, 3200, 3300, 3400, 3500]


def test_a_change_is_never_told_twice_within_min_gap(core: ModuleType) -> None:
    # heartbeat 1000 ms: min_gap 200 ms, two ticks. Demand flapping every tick sends at most every 200 ms.
    raw = config([evse("a")], heartbeat_ms=1000)
    flapping = {t_ms: t_ms // TICK_MS % 2 == 0 for t_ms in range(2000, 3000, TICK_MS)}
    told = send_times(core, raw, flapping, 4000)
    gaps = [later - earlier for earlier, later in itertools.pairwise(told)]
    assert min(gaps) == 200, told
