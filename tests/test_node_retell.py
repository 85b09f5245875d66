"""Telling a change again (loadmesh.node.retell): the heartbeats after a change come min_gap apart."""

from __future__ import annotations

from types import ModuleType

from loadmesh.node.retell import REPEATS, Retell

from .controllers import KEY, config, evse

TICK_MS = 100


def send_times(core: ModuleType, raw: dict[str, object], demand_at: dict[int, bool], until_ms: int,
               retell: bool) -> list[int]:
    """When a lone node's controller sends, ticked every 100 ms, its demand switched at the given times."""
    parsed = core.groupconfig.parse(raw)
    plan = core.controller.prepare(parsed, "a")
    table = core.peers.PeerTable(core.heartbeat.prepare_key(KEY), parsed["group"], "a", plan.ids)
    state = core.controller.boot(plan, 1, 0)
    teller = Retell()
    demand = False
    sent = []
    for now_ms in range(0, until_ms, TICK_MS):
        demand = demand_at.get(now_ms, demand)
        out, state = core.controller.step(plan, state, {"demand": demand, "idle": False}, table, now_ms)
        if retell:
            teller.after_step(plan, state, out, now_ms)
        if out["heartbeat"] is not None:
            sent.append(now_ms)
    return sent


def test_a_change_is_told_again_three_times_a_tick_apart_then_every_period(core: ModuleType) -> None:
    raw = config([evse("a")], heartbeat_ms=500)  # min_gap 100 ms: one tick
    # Demand at 2 s: the target is told at once, the limit rises to it the tick after (rule 2: only
    # up to a target already published), told at once again; then every 500 ms.
    assert send_times(core, raw, {2000: True}, 3500, retell=False) == [
        0, 500, 1000, 1500, 2000, 2100, 2600, 3100]
    assert REPEATS == 3
    assert send_times(core, raw, {2000: True}, 3500, retell=True) == [
        0, 100, 200, 300, 800, 1300, 1800,  # boot is a change: told three times more, then every 500 ms
        2000, 2100, 2200, 2300, 2400, 2900, 3400]  # the target, the limit, three times more, the period


def test_an_exposure_that_ends_is_told_at_once(core: ModuleType) -> None:
    # ev_lag_ms 1200: after its limit falls to 0 at 2 s the car may draw the old one until 3.2 s.
    raw = config([evse("a")], heartbeat_ms=500, ev_lag_ms=1200)
    plain = send_times(core, raw, {1000: True, 2000: False}, 4000, retell=False)
    # Lowered at 2 s (and no longer active from 2.1 s); the exposure's end waits for the period at 3.6 s.
    assert [t for t in plain if t >= 2000] == [2000, 2100, 2600, 3100, 3600]
    told = send_times(core, raw, {1000: True, 2000: False}, 4000, retell=True)
    # The same changes told three times more, the period at 2.9 s, and the exposure's end at the
    # next tick after it, 3.3 s, told three times more in turn.
    assert [t for t in told if t >= 2000] == [2000, 2100, 2200, 2300, 2400, 2900, 3300, 3400, 3500, 3600]
