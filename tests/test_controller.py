"""The node controller, rule by rule (DESIGN "Safety model of the mesh", docs/safety.md), on hand-driven packets."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from .controllers import Net, Node, config, evse


def _parsed(core: ModuleType, raw: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = core.groupconfig.parse(raw)
    return parsed


# Rule 6: a node boots at its failsafe current, never above what it enforced
# before the reset (a raise without evidence), on its steps.
@pytest.mark.parametrize(("failsafe", "member", "last_applied_ma", "boot_ma"), [
    ({"mode": "safe_current", "current_ma": 6000}, {}, 0, 0),  # a power cut: the car was not charging
    ({"mode": "safe_current", "current_ma": 6000}, {}, 16000, 6000),  # a watchdog reset while charging
    ({"mode": "safe_current", "current_ma": 6000}, {}, 5000, 0),  # below the car's minimum is off
    ({"mode": "safe_current", "current_ma": 6000}, {"step_ma": 4000}, 32000, 6000),  # the minimum is on the steps
    ({"mode": "safe_current", "current_ma": 8000}, {"step_ma": 4000}, 32000, 6000),  # 8 A is between steps: 6 A
    ({"mode": "disable", "current_ma": 6000}, {}, 16000, 0),  # disable: off
    ({"mode": "safe_current", "current_ma": 6000}, {"failsafe_ma": 10000}, 32000, 10000),  # a member's own
    ({"mode": "safe_current", "current_ma": 6000}, {"kind": "relay", "min_ma": 8000, "max_ma": 8000}, 8000, 0),
])
def test_boot_state(core: ModuleType, failsafe: dict[str, Any], member: dict[str, Any], last_applied_ma: int,
                    boot_ma: int) -> None:
    parsed = _parsed(core, config([evse("a", **member), evse("b", max_ma=16000)], failsafe=failsafe))
    node = Node(core, parsed, "a", last_applied_ma=last_applied_ma)
    assert node.applied == boot_ma


def test_a_reset_soon_after_lowering_keeps_telling_what_the_car_may_still_draw(core: ModuleType) -> None:
    # a charges at 32 A, lowers to 16 A for b, and is reset 0.5 s later: its car may draw 32 A until
    # ev_lag after the lowering. What RTC memory kept (applied 16 A, exposure 32 A) is what it tells
    # after the reset, so b cannot take the 16 A a's car has not yet given back.
    net = Net(core, config([evse("a"), evse("b")], ev_lag_ms=5000, wdt_ms=2000,
                           failsafe={"mode": "safe_current", "current_ma": 6000}))
    net["a"].inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"a": 32000, "b": 0}
    net["b"].inputs["demand"] = True
    lowered_ms = net.now_ms
    net.run(500)
    assert net["a"].applied == 16000 and net["a"].out["exposure_ma"] == 32000
    kept = (net["a"].applied, net["a"].out["exposure_ma"])
    del net.nodes["a"]
    net.run(2000)  # the watchdog's reset
    net.nodes["a"] = Node(core, net.config, "a", boot_id=2, now_ms=net.now_ms, last_applied_ma=kept[0],
                          last_exposure_ma=kept[1])
    net["a"].inputs["demand"] = True
    while net.now_ms < lowered_ms + 5000:
        net.run(100)
        assert net["a"].out["exposure_ma"] == 32000
        assert 32000 + net["b"].applied <= 32000, (net.now_ms - lowered_ms, net.applied())
    net.run(8000)  # the lag is over, and the group shares again
    assert net["a"].out["exposure_ma"] == net["a"].applied and net["b"].applied > 0


def test_no_raise_until_every_member_is_heard_and_agrees(core: ModuleType) -> None:
    net = Net(core, config([evse("a"), evse("b"), evse("c")]))
    net["a"].inputs["demand"] = True
    for _ in range(10):  # c never speaks: a and b hear each other, a stays off
        net.tick("a", "b")
        net.deliver("a")
        net.deliver("b")
    assert net.applied() == {"a": 0, "b": 0, "c": 0}
    assert net["a"].out["failsafe"] and net["a"].out["silent"] == ["c"]
    net.run(1000)  # c speaks; agreement follows
    assert net.applied() == {"a": 32000, "b": 0, "c": 0}
    assert net["a"].out["reason"] == "target"


def test_raise_waits_for_the_peer_to_hold_this_nodes_new_target(core: ModuleType) -> None:
    net = Net(core, config([evse("a"), evse("b")]))
    net.run(1000)
    net["a"].tick(net.now_ms, demand=True)
    # a's target is 32 A, but b has not heard it: a's digest covers its new target, b's does not.
    assert (net["a"].out["target_ma"], net["a"].applied, net["a"].out["reason"]) == (32000, 0, "agreement")
    assert net["a"].out["disagree"] == ["b"]
    net.deliver("a")
    net["b"].tick(net.now_ms)
    net.deliver("b")
    net.now_ms += 100
    net["a"].tick(net.now_ms)
    assert net["a"].applied == 32000


def test_lowering_is_at_once(core: ModuleType) -> None:
    net = Net(core, config([evse("a"), evse("b")]))
    net["a"].inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"a": 32000, "b": 0}
    net["b"].tick(net.now_ms, demand=True)
    net.deliver("b")
    net.now_ms += 100
    net["a"].tick(net.now_ms)
    # The first tick that sees b's demand: a's target is 16 A, and a enforces it at once.
    assert (net["a"].out["target_ma"], net["a"].applied) == (16000, 16000)
    net.run(2000)
    assert net.applied() == {"a": 16000, "b": 16000}


def test_silence_means_failsafe_after_exactly_peer_timeout(core: ModuleType) -> None:
    raw = config([evse("a"), evse("b")], failsafe={"mode": "safe_current", "current_ma": 6000})
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    net.run(2000)
    heard_ms = net["a"].table.peer("b").heard_ms
    assert net.applied() == {"a": 32000, "b": 0}
    timeout_ms = net.config["peer_timeout_ms"]
    out = net["a"].tick(heard_ms + timeout_ms - 1)  # heard timeout - 1 ms ago: still online
    assert (out["failsafe"], out["applied_ma"]) == (False, 32000)
    out = net["a"].tick(heard_ms + timeout_ms)
    assert (out["failsafe"], out["applied_ma"], out["silent"]) == (True, 6000, ["b"])


def test_failsafe_never_raises(core: ModuleType) -> None:
    raw = config([evse("a"), evse("b")], failsafe={"mode": "safe_current", "current_ma": 6000})
    node = Node(core, _parsed(core, raw), "a")
    for now_ms in range(0, 5000, 100):
        out = node.tick(now_ms, demand=True)
        assert out["applied_ma"] == 0 and out["failsafe"]


def test_a_peer_counts_at_what_its_car_may_still_draw(core: ModuleType) -> None:
    # a lowers from 32 A to 16 A when b asks; its car may still draw 32 A for
    # ev_lag_ms, so b stays off until then, although its target is 16 A.
    net = Net(core, config([evse("a"), evse("b")], ev_lag_ms=5000))
    net["a"].inputs["demand"] = True
    net.run(2000)
    net["b"].inputs["demand"] = True
    lowered_ms = net.now_ms
    net.run(1000)
    assert net.applied() == {"a": 16000, "b": 0}
    assert net["a"].out["exposure_ma"] == 32000
    assert (net["b"].out["target_ma"], net["b"].out["reason"]) == (16000, "headroom")
    net.run(lowered_ms + 5000 - net.now_ms)
    assert net["b"].applied == 0  # a's exposure ends 5 s after it lowered, at its tick
    net.run(500)
    assert net.applied() == {"a": 16000, "b": 16000}


def test_an_idle_car_frees_its_exposure_at_once(core: ModuleType) -> None:
    # An unplugged (or not asking) car draws nothing, and starts from the pilot it sees when it asks again.
    net = Net(core, config([evse("a"), evse("b")], ev_lag_ms=5000))
    net["a"].inputs["demand"] = True
    net.run(2000)
    net["a"].inputs.update(demand=False, idle=True)
    net["b"].inputs["demand"] = True
    net.run(1000)
    assert net.applied() == {"a": 0, "b": 32000}


def test_a_relay_has_no_lag(core: ModuleType) -> None:
    relay = {"kind": "relay", "min_ma": 16000, "max_ma": 16000}
    net = Net(core, config([evse("a", **relay), evse("b")], ev_lag_ms=5000, limit_ma=20000))
    net["a"].inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"a": 16000, "b": 0}
    net["a"].inputs["demand"] = False
    net["b"].inputs["demand"] = True
    net.run(1000)
    assert net.applied() == {"a": 0, "b": 20000}


def test_two_nodes_never_raise_into_the_same_room_on_crossing_heartbeats(core: ModuleType) -> None:
    # Demand flips on both nodes while their heartbeats cross. At the end a
    # holds b's heartbeat C, computed from the same inputs a sees now, and b
    # holds a's heartbeat B, computed from the inputs b sees now. Were the
    # views alone compared, each would find agreement and take all 32 A,
    # counting the other at the 0 A it reported: 64 A on a 32 A supply. The
    # digest also covers the heartbeat that first carried each target, so
    # neither agreement can pass for the other's news.
    net = Net(core, config([evse("a"), evse("b")]))
    net.run(1000)
    a, b = net["a"], net["b"]
    a.tick(net.now_ms, demand=True)  # A: a asks (32 A would be its target)
    net.deliver("a")
    net.now_ms += 100
    b.tick(net.now_ms, demand=True)  # b asks too: 16 A each; b has no agreement yet
    net.deliver("b")
    net.now_ms += 100
    a.tick(net.now_ms, demand=False)  # B: a has heard b's demand, and stops asking; B is late to b
    late = a.outbox[-1]
    net.now_ms += 100
    b.tick(net.now_ms, demand=False)  # C: b stops asking, still seeing a's demand
    net.deliver("b")
    net.now_ms += 100
    a.tick(net.now_ms, demand=True)  # a asks again: its view is C's
    net.now_ms += 100
    b.hear(late, net.now_ms)
    b.tick(net.now_ms, demand=True)  # b asks again: its view is B's
    for _ in range(3):
        net.now_ms += 100
        a.tick(net.now_ms)
        b.tick(net.now_ms)
        assert a.applied + b.applied <= 32000
    assert (a.out["reason"], b.out["reason"]) == ("agreement", "agreement")
    net.run(2000)
    assert net.applied() == {"a": 16000, "b": 16000}


def test_anti_flap_guard(core: ModuleType) -> None:
    # 10 A hold one car (minimum 6 A), not two. b is paused when c (more
    # important) asks; when c stops, b waits out the guard before it asks
    # again; a car that leaves ends it.
    members = [evse("b", max_ma=10000), evse("c", max_ma=10000, priority=-1)]
    net = Net(core, config(members, limit_ma=10000, antiflap_ms=60000))
    net["b"].inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"b": 10000, "c": 0}
    net["c"].inputs["demand"] = True
    net.run(2000)
    paused_ms = net["b"].state["paused_ms"]
    assert net.applied() == {"b": 0, "c": 10000} and paused_ms is not None
    net["c"].inputs["demand"] = False
    net.run(paused_ms + 60000 - net.now_ms)
    assert net.applied() == {"b": 0, "c": 0}
    assert (net["b"].out["reason"], net["b"].out["alloc_reason"]) == ("antiflap", "no_demand")
    net.run(2000)
    assert net.applied() == {"b": 10000, "c": 0}
    # Paused again; then the car is unplugged and another one plugged in: no guard.
    net["c"].inputs["demand"] = True
    net.run(2000)
    assert net["b"].out["reason"] == "antiflap"
    net["c"].inputs["demand"] = False
    net["b"].inputs["demand"] = False
    net.run(200)
    net["b"].inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"b": 10000, "c": 0}


def test_ramp_limits_each_rise(core: ModuleType) -> None:
    net = Net(core, config([evse("a"), evse("b")], ramp_ma=4000))
    net["a"].inputs["demand"] = True
    seen = []
    for _ in range(30):
        net.run(100)
        if not seen or seen[-1] != net["a"].applied:
            seen.append(net["a"].applied)
    # From off to the minimum at once (a car cannot run below it), then 4 A per tick.
    assert seen == [0, 6000, 10000, 14000, 18000, 22000, 26000, 30000, 32000]


# The memo keeps no model (a node's heap): a raising tick builds the view's model for its headroom check,
# and a tick whose view changed builds it for the allocation, so one that does both must use that one
# model twice, not build a second. Counted on the pure core, whose calls to site.parse can be seen here.
@pytest.mark.parametrize("core", ["cpython-pure"], indirect=True)
def test_a_tick_whose_view_changed_and_that_raises_builds_the_model_once(
        core: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    parse = core.site.parse

    def counted(*args: Any) -> Any:
        builds.append(args)
        return parse(*args)

    monkeypatch.setattr(core.site, "parse", counted)
    net = Net(core, config([evse("a"), evse("b")], ramp_ma=4000))
    net["a"].inputs["demand"] = True
    net.run(600)  # a ramps: 6 A, then agreement again on its being active
    assert (net["a"].applied, net["a"].out["reason"]) == (6000, "agreement")
    net["b"].inputs["priority"] = 5  # b, asking for nothing, tells a new priority: the views change, not the targets
    net.run(100)
    assert (net["a"].applied, net["a"].out["reason"]) == (10000, "ramp")  # its view unchanged: a model to raise
    builds.clear()
    out = net["a"].tick(net.now_ms)  # b's news heard: the view changed, and b carries a's new digest
    assert (out["applied_ma"], out["reason"], out["disagree"]) == (14000, "ramp", [])
    assert len(builds) == 1
    builds.clear()
    out = net["a"].tick(net.now_ms + 100)  # nothing new: no allocation, but a raise, so a model
    assert (out["applied_ma"], out["reason"]) == (18000, "ramp")
    assert len(builds) == 1


def test_staged_reservation_of_a_silent_peer(core: ModuleType) -> None:
    raw = config([evse("a"), evse("b")], ev_lag_ms=5000, margin_ms=1000,
                 failsafe={"mode": "safe_current", "current_ma": 6000})
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    net["b"].inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"a": 16000, "b": 16000}
    a = net["a"]
    heard_ms = a.table.peer("b").heard_ms
    # b goes silent; a keeps b's 16 A reserved until b must have reached its
    # failsafe: heard + peer_timeout + ev_lag + margin; then b's 6 A.
    pad_ms = net.config["peer_timeout_ms"] + 5000 + 1000
    out = a.tick(heard_ms + pad_ms - 1)
    assert (out["target_ma"], out["applied_ma"], out["failsafe"]) == (16000, 6000, True)
    out = a.tick(heard_ms + pad_ms)
    assert (out["target_ma"], out["applied_ma"], out["alloc_reason"]) == (26000, 6000, "equal_share")


def test_a_narrower_config_caps_at_the_transition_share_until_agreed(core: ModuleType) -> None:
    raw = config([evse("a"), evse("b"), evse("c")], limit_ma=40000)
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    net["b"].inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"a": 20000, "b": 20000, "c": 0}
    # 30 A now: each gets its 6 A minimum and a third of the 12 A left (the transition share).
    lower = core.groupconfig.parse(dict(raw, version=2, site=dict(raw["site"], limit_ma=30000)))
    net["a"].plan = core.controller.prepare(lower, "a")
    net["a"].tick(net.now_ms)
    assert (net["a"].out["target_ma"], net["a"].applied, net["a"].out["reason"]) == (15000, 10000, "transition")
    assert net["a"].out["config_mismatch"] == ["b", "c"]
    for node_id in ("b", "c"):
        net[node_id].plan = core.controller.prepare(lower, node_id)
    net.run(2000)
    assert net.applied() == {"a": 15000, "b": 15000, "c": 0}
    # A wider one needs no cap: the limits in force fit it already.
    wider = core.groupconfig.parse(dict(raw, version=3, site=dict(raw["site"], limit_ma=50000)))
    net["a"].plan = core.controller.prepare(wider, "a")
    net["a"].tick(net.now_ms)
    assert (net["a"].applied, net["a"].out["reason"]) == (15000, "agreement")


def test_a_lowered_limit_holds_at_the_first_tick_even_while_views_differ(core: ModuleType) -> None:
    # 48 A, three cars at 16 A each. The limit drops to 32 A while c has just
    # become the most important: c's view gives the 2 A left after 10 A each
    # to c and a, a's and b's views (c's news not heard) to a and b. Each
    # lowering to its own target would make 33 A; the transition share (the
    # config alone decides it, so every node computes the same: each minimum
    # and a third of the 14 A left, on 1 A steps) holds 32 A.
    raw = config([evse("a"), evse("b"), evse("c")], limit_ma=48000)
    net = Net(core, raw)
    for node in net.nodes.values():
        node.inputs["demand"] = True
    net.run(2000)
    assert net.applied() == {"a": 16000, "b": 16000, "c": 16000}
    lower = core.groupconfig.parse(dict(raw, version=2, site=dict(raw["site"], limit_ma=32000)))
    for node_id, node in net.nodes.items():
        node.plan = core.controller.prepare(lower, node_id)
    net["c"].inputs["priority"] = -1
    net.tick()
    assert {node_id: node.out["target_ma"] for node_id, node in net.nodes.items()} == \
        {"a": 11000, "b": 11000, "c": 11000}
    assert net.applied() == {"a": 10000, "b": 10000, "c": 10000}
    net.run(2000)
    assert net.applied() == {"a": 11000, "b": 10000, "c": 11000}


def test_the_meter_is_the_meter_nodes_published_reading(core: ModuleType) -> None:
    # Site 32 A; the meter node m reads the mains; 10 A of the reading is
    # unmanaged. A stale or missing reading gives minimums only (rule 5).
    raw = config([evse("a"), evse("m", max_ma=16000)], ev_lag_ms=0)
    raw["site"] = dict(raw["site"], meter_node="m", meter_stale_ms=15000)
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    net.run(2000)
    assert net["a"].out["alloc_reason"] == "meter_stale" and net["a"].applied == 6000
    net["a"].inputs["draw_ma"] = [6000, 0, 0]
    net.run(1000)  # a's draw is heard before the reading is taken: subtracted (meter skew)
    net["m"].inputs["meter"] = {"seq": 1, "age_ms": 0, "ma": [16000, 0, 0]}  # 6 A managed (a) + 10 A unmanaged
    net.run(2000)
    assert net.applied() == {"a": 22000, "m": 0}
    assert net["a"].out["digest"] == net["m"].out["digest"]
    net["m"].inputs["meter"] = {"seq": 2, "age_ms": 0, "ma": [None, 0, 0]}  # a phase unknown: stale
    net.run(1000)
    assert net["a"].applied == 6000 and net["a"].out["alloc_reason"] == "meter_stale"


def test_a_stale_meter_is_stale_at_the_largest_meter_stale_ms(core: ModuleType) -> None:
    # The view of a stale meter once told site.parse an age of meter_stale_ms
    # + 1, out of bounds at the largest meter_stale_ms the config accepts:
    # every node's step raised FieldError instead of giving minimums.
    raw = config([evse("a"), evse("m", max_ma=16000)])
    raw["site"] = dict(raw["site"], meter_node="m", meter_stale_ms=core.site.MAX_MS)
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    net.run(2000)  # no reading yet: stale
    assert net["a"].out["alloc_reason"] == "meter_stale" and net.applied() == {"a": 6000, "m": 0}
    net["m"].inputs["meter"] = {"seq": 1, "age_ms": 0, "ma": [10000, 0, 0]}
    net.run(2000)
    assert net["a"].out["alloc_reason"] == "equal_share" and net.applied() == {"a": 22000, "m": 0}


@pytest.mark.parametrize(("reading_ma", "reason", "applied_ma"), [
    (-128000, "max", 32000),  # 4 x the 32 A limit is a possible, if alarming, reading: 128 A of export
    (-128001, "meter_stale", 0),  # beyond it: absurd (a sign, a unit, an overflow), and solar_only waits
])
def test_an_absurd_published_reading_is_stale_whatever_the_draws(core: ModuleType, reading_ma: int, reason: str,
                                                                 applied_ma: int) -> None:
    # Rule 5 (docs/allocation.md, Meter): a reading beyond 4 x the site limit
    # on its phase is absurd, and the meter stale. The view once checked that
    # on the reading rebuilt from the unmanaged load and the members' draws
    # (meterview.scenario_meter), not on the one published: a's CT reading
    # 16 A beside a pilot of 0 (nothing subtracted for it) made -130 A look
    # like -114 A, a fresh export, and solar_only a took 32 A of it.
    raw = config([evse("a", mode="solar_only"), evse("m", max_ma=16000)], ev_lag_ms=0)
    raw["site"] = dict(raw["site"], meter_node="m")
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    net["a"].inputs["draw_ma"] = [16000, 0, 0]
    net["m"].inputs["meter"] = {"seq": 1, "age_ms": 0, "ma": [reading_ma, 0, 0]}
    net.run(2000)
    assert (net["a"].out["alloc_reason"], net.applied()) == (reason, {"a": applied_ma, "m": 0})


_CT = st.one_of(st.none(), st.integers(0, 40000), st.integers(0, (1 << 30) - 1))


@settings(max_examples=60, deadline=None)
@given(house_ma=st.integers(0, 40000), ct_a=_CT, ct_b=_CT)
@example(house_ma=20000, ct_a=150000, ct_b=None)  # a's CT mis-scaled: it once made 60 A on 40 A
@example(house_ma=1, ct_a=None, ct_b=1)  # a's draw heard after its pilot fell to 0 once counted: 40.001 A
def test_no_ct_reading_widens_the_site(core: ModuleType, house_ma: int, ct_a: int | None, ct_b: int | None) -> None:
    # Site 40 A with a house load the mesh does not manage; the meter node m
    # publishes a fresh, true reading every tick, minus the draws the EVSEs'
    # CTs report (None: the true draw; else any value, a mis-scaled or broken
    # CT). The cars draw what their pilots allow. Whatever the CTs say, the
    # site holds: a draw is subtracted at most at what the member may draw
    # (its applied limit or exposure as it sent the draw), and not at all
    # above its max.
    raw = config([{"id": "m", "kind": "valve", "phases": "L1"}, evse("a", max_ma=16000), evse("b")], 40000)
    raw["site"] = dict(raw["site"], meter_node="m")
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    net["b"].inputs["demand"] = True
    for _ in range(40):
        real = house_ma + net["a"].applied + net["b"].applied
        assert real <= 40000, net.applied()
        net["m"].inputs["meter"] = {"seq": net.now_ms, "age_ms": 0, "ma": [real, None, None]}
        for node_id, ct in (("a", ct_a), ("b", ct_b)):
            net[node_id].inputs["draw_ma"] = [net[node_id].applied if ct is None else ct, None, None]
        net.run(100)


@settings(max_examples=40, deadline=None)
@given(house_ma=st.integers(0, 28000), every_ms=st.sampled_from([100, 1000, 3000, 10000]),
       delay_ms=st.sampled_from([0, 100, 400, 900, 1500]), ramp_ma=st.sampled_from([1000, 4000, 32000]),
       b_from_ms=st.integers(0, 30).map(lambda seconds: seconds * 1000))
@example(house_ma=20000, every_ms=10000, delay_ms=0, ramp_ma=32000, b_from_ms=0)  # once 60 A on 40 A
def test_cars_ramping_between_slow_readings_do_not_widen_the_site(
        core: ModuleType, house_ma: int, every_ms: int, delay_ms: int, ramp_ma: int, b_from_ms: int) -> None:
    # Site 40 A with a constant house load; the meter node m gets one reading
    # every every_ms, taken delay_ms before it arrives (age_ms says so). The
    # cars ramp up by ramp_ma per 100 ms towards their pilots (and follow a
    # lower one at once: ev_lag 0), so they draw more at the meter node's
    # ticks than at the reading's time. A draw subtracted from a reading is
    # one the reading held, or less: the real site current stays within 40 A.
    # (Until the first reading arrives the meter is stale, and both cars get
    # their minimums, 12 A: the house load is at most 28 A here.)
    raw = config([{"id": "m", "kind": "valve", "phases": "L1"}, evse("a", max_ma=16000), evse("b")], 40000)
    raw["site"] = dict(raw["site"], meter_node="m")
    net = Net(core, raw)
    net["a"].inputs["demand"] = True
    cars = {"a": 0, "b": 0}
    history = [(0, house_ma)]  # (t_ms, real site current)
    reading: dict[str, Any] | None = None
    for _ in range(300):
        if net.now_ms >= b_from_ms:
            net["b"].inputs["demand"] = True
        for node_id in cars:
            pilot = net[node_id].applied
            cars[node_id] = pilot if cars[node_id] >= pilot else min(pilot, cars[node_id] + ramp_ma)
            net[node_id].inputs["draw_ma"] = [cars[node_id], None, None]
        real = house_ma + cars["a"] + cars["b"]
        assert real <= 40000, (net.now_ms, cars, reading)
        history.append((net.now_ms, real))
        if net.now_ms % every_ms == 0 and net.now_ms >= delay_ms:
            taken_ms = net.now_ms - delay_ms
            ma = [real for t_ms, real in history if t_ms <= taken_ms][-1]
            reading = {"seq": net.now_ms // every_ms, "taken_ms": taken_ms, "ma": [ma, None, None]}
        if reading is not None:
            net["m"].inputs["meter"] = {"seq": reading["seq"], "age_ms": net.now_ms - reading["taken_ms"],
                                        "ma": reading["ma"]}
        net.run(100)


@pytest.mark.parametrize(("inputs", "error"), [
    ({}, "inputs.demand: null is not true or false"),
    ({"demand": 1}, "inputs.demand: 1 is not true or false"),
    ({"demand": True, "mode": "fast"}, "inputs.mode: \"fast\" is not one of continuous, solar_priority, solar_only, "
                                       "excess, off"),
    ({"demand": True, "priority": 5000}, "inputs.priority: 5000 is not an integer -1000..1000"),
    ({"demand": True, "draw_ma": [1, 2]}, "inputs.draw_ma: must be a list of 3 values (L1, L2, L3; null when unknown)"),
    ({"demand": True, "draw_ma": [1, -2, 3]}, "inputs.draw_ma[1]: -2 is not an integer 0..1073741823"),
    ({"demand": True, "speed": 3}, "inputs.speed: is not a known field"),
    ({"demand": True, "meter": {"seq": 1, "age_ms": 0}}, "inputs.meter.ma: is missing"),
])
def test_bad_inputs_are_named(core: ModuleType, inputs: dict[str, Any], error: str) -> None:
    node = Node(core, _parsed(core, config([evse("a"), evse("b")])), "a")
    node.inputs = inputs
    with pytest.raises(core.errors.FieldError) as raised:
        node.tick(0)
    assert str(raised.value) == error


def test_a_node_that_is_not_a_member_is_refused(core: ModuleType) -> None:
    with pytest.raises(core.errors.FieldError, match=r"^node: \"x\" is not a member of the group$"):
        core.controller.prepare(_parsed(core, config([evse("a"), evse("b")])), "x")


def test_step_leaves_its_state_alone(core: ModuleType) -> None:
    net = Net(core, config([evse("a"), evse("b")]))
    net.run(500)
    node = net["a"]
    before = core.canon.dumps(node.state)
    state = node.state
    core.controller.step(node.plan, state, {"demand": True}, node.table, net.now_ms)
    assert core.canon.dumps(state) == before


# A node's tick that runs out of memory is skipped (docs/firmware.md, "A tick out of memory"): the runtime keeps
# nothing of it, and the next tick runs as if the failed one never had. That holds only if step() leaves its state
# and the plan's memo whole when it raises half way: a memo that took the new view's key but not its targets or
# digest would serve them to every later tick. Raised here in each call that builds or reads the allocation, on the
# pure core, whose module functions can be swapped; the compiled core runs the same source. The next tick's bytes
# are the same after the runtime's controller.forget_view as well, which drops the digest's memo with the view's.
@pytest.mark.parametrize("core", ["cpython-pure"], indirect=True)
@pytest.mark.parametrize("where", [("site", "parse"), ("allocate", "targets_ma"), ("view", "digest"),
                                   ("headroom", "allowed_ma")])
def test_a_step_out_of_memory_leaves_nothing_behind(core: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                     where: tuple[str, str]) -> None:
    def net() -> Net:  # a ramps, so its ticks may raise; b then tells a new priority: a's view changes
        built = Net(core, config([evse("a"), evse("b")], ramp_ma=4000))
        built["a"].inputs["demand"] = True
        built.run(600)
        built["b"].inputs["priority"] = 5
        built.run(100)
        return built

    failing, twin = net(), net()
    node = failing["a"]
    module = getattr(core, where[0])
    real = getattr(module, where[1])
    calls = []

    def out_of_memory(*args: Any) -> Any:
        calls.append(1)
        raise MemoryError

    state = core.canon.dumps(node.state)
    monkeypatch.setattr(module, where[1], out_of_memory)
    with pytest.raises(MemoryError):
        node.tick(failing.now_ms)
    assert calls, f"{where} was not called: the view did not change"
    assert core.canon.dumps(node.state) == state
    # The runtime then lets go of what the memo holds of the view before, once its key is gone (to make room for
    # the next tick's model): all of it before the new view's key was kept, none after (the memo whole).
    plan = node.plan
    results = (list(plan._targets), list(plan._reasons), plan._view_digest, plan._digest_key, plan._digest)
    assert results[0] and results[3] is not None
    core.controller.forget_view(plan)
    if where[0] == "headroom":
        assert (plan._targets, plan._reasons, plan._view_digest, plan._digest_key, plan._digest) == results
    else:
        assert (plan._targets, plan._reasons, plan._view_digest, plan._digest_key, plan._digest) == \
            ([], [], "", None, "")
    monkeypatch.setattr(module, where[1], real)
    for now_ms in (failing.now_ms, failing.now_ms + 100, failing.now_ms + 200):
        out = node.tick(now_ms)
        expected = twin["a"].tick(now_ms)
        assert core.canon.dumps(out) == core.canon.dumps(expected), now_ms
        assert core.canon.dumps(node.state) == core.canon.dumps(twin["a"].state), now_ms
    assert out["reason"] == "ramp"  # the ticks compared did raise
