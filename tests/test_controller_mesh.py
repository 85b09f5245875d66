"""3 to 8 controllers over a network that loses, reorders, duplicates and partitions: never above a limit.

A hypothesis state machine drives tests/meshsim.py: random demand, mode and
priority changes, lost, late and doubled packets, links cut one way or both,
crashes (the actuator holds until the watchdog) and restarts, and limit
changes delivered to some nodes first. After every event: for every circuit
and phase, the sum of applied limits and the sum of what the cars draw are
within limit x safety. Whenever the test heals everything, all nodes must
reach the allocation of the true view within CONVERGE_BOUND_MS.

LOADMESH_SOAK=N runs N times the examples (tools/soak_controller.py does).
The pure core gets a quarter of the compiled one's examples: it is the same
source, and four times slower (the compiled core is where typed code could
drift from Python's integers, and the one the companion runs).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from .meshsim import Mesh

SOAK = int(os.environ.get("LOADMESH_SOAK", "1"))
EXAMPLES = {"cpython-compiled": 40 * SOAK, "cpython-pure": 10 * SOAK}
STEPS = 60

# Everything heals at once, then: every node hears every other within a
# heartbeat (plus the network delay); three rounds of heartbeats sent at
# once on a change (view, targets, agreement), each a tick and the minimum
# gap at most; a raise can wait ev_lag for a car that has to follow a lower
# pilot first; ramps take their ticks; and a node that restarted boots from
# its failsafe current. Measured worst cases are reported by the soak script.
def converge_bound_ms(config: dict[str, Any], max_delay_ms: int) -> int:
    heartbeat = config["heartbeat_ms"]
    rounds = 4 * (100 + heartbeat // 5 + max_delay_ms)
    ramp = 0
    if config["ramp_ma"]:
        most = max(member["max_ma"] for member in config["members"])
        ramp = (most // config["ramp_ma"] + 1) * 100
    return heartbeat + max_delay_ms + rounds + config["ev_lag_ms"] + heartbeat + max_delay_ms + ramp + 1000


STATS: dict[str, int] = {"scenarios": 0, "steps": 0, "controller_steps": 0, "convergences": 0,
                         "worst_convergence_ms": 0, "events": 0, "simulated_ms": 0, "skipped_ticks": 0}


@st.composite
def setups(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(3, 8), label="nodes")
    phases = draw(st.sampled_from([1, 3]), label="phases")
    circuits = []
    if draw(st.booleans(), label="garage"):
        circuits.append({"id": "garage", "parent": "site", "limit_ma": draw(st.sampled_from([16000, 20000, 25000]))})
        if draw(st.booleans(), label="carport"):
            circuits.append({"id": "carport", "parent": "garage", "limit_ma": draw(st.sampled_from([10000, 16000]))})
    circuit_ids = ["site"] + [circuit["id"] for circuit in circuits]
    members = []
    lags: dict[str, int] = {}
    car_max: dict[str, int] = {}
    offsets: dict[str, int] = {}
    ev_lag_ms = draw(st.sampled_from([0, 2000, 5000]), label="ev_lag_ms")
    for number in range(count):
        node_id = "n" + str(number)
        kind = draw(st.sampled_from(["evse", "evse", "evse", "relay", "valve"]), label="kind")
        member: dict[str, Any] = {"id": node_id, "kind": kind, "circuit": draw(st.sampled_from(circuit_ids)),
                                  "phases": "L1" if phases == 1 else draw(st.sampled_from(["L1", "L2", "L3", "L123"])),
                                  "priority": draw(st.integers(-1, 1))}
        if kind == "evse":
            member.update(min_ma=6000, max_ma=draw(st.sampled_from([16000, 32000])),
                          step_ma=draw(st.sampled_from([100, 1000])))
            own_failsafe = draw(st.sampled_from([None, None, 0, 6000]), label="failsafe_ma")
            if own_failsafe is not None:
                member["failsafe_ma"] = own_failsafe
        elif kind == "relay":
            load = draw(st.sampled_from([2000, 8000]))
            member.update(min_ma=load, max_ma=load, step_ma=1000)
        members.append(member)
        lags[node_id] = 0 if kind != "evse" else draw(st.integers(0, ev_lag_ms // 100)) * 100
        car_max[node_id] = draw(st.sampled_from([10000, 16000, 32000]))
        offsets[node_id] = draw(st.integers(0, 9)) * 10
    heartbeat_ms = 500
    config = {
        "group": "house", "version": 1, "updated_at": 1000, "origin": "companion", "key_id": "k1",
        "site": {"phases": phases, "voltage_v": 230, "limit_ma": draw(st.sampled_from([20000, 32000, 40000])),
                 "safety_pct": draw(st.sampled_from([90, 100]))},
        "circuits": circuits, "members": members, "heartbeat_ms": heartbeat_ms,
        "peer_timeout_ms": draw(st.sampled_from([1500, 3000]), label="peer_timeout_ms"),
        "wdt_ms": 1500, "ev_lag_ms": ev_lag_ms, "margin_ms": 1000,
        "antiflap_ms": draw(st.sampled_from([0, 5000, 300000]), label="antiflap_ms"),
        "ramp_ma": draw(st.sampled_from([0, 0, 3000]), label="ramp_ma"),
        "failsafe": {"mode": draw(st.sampled_from(["safe_current", "disable"])),
                     "current_ma": draw(st.sampled_from([0, 6000]))},
    }
    return {"config": config, "lags": lags, "car_max": car_max, "offsets": offsets,
            "seed": draw(st.integers(0, 2**32 - 1), label="seed")}


def _fit_failsafe(core: ModuleType, config: dict[str, Any]) -> dict[str, Any]:
    """The config, or with failsafe mode disable when its failsafe currents do not fit (the config check refuses)."""
    try:
        core.groupconfig.parse(config)
    except core.errors.FieldError as exc:
        assert exc.field == "failsafe", str(exc)
        config = dict(config, failsafe={"mode": "disable", "current_ma": 0})
    return config


class MeshMachine(RuleBasedStateMachine):
    core: ModuleType

    def __init__(self) -> None:
        super().__init__()
        self.mesh: Mesh | None = None
        self.raw: dict[str, Any] = {}
        self.since_heal = 0
        STATS["scenarios"] += 1

    def _advance(self, ms: int) -> None:
        # Every change lands between ticks somewhere: let the mesh run a little after it.
        assert self.mesh is not None
        self.mesh.run_until(self.mesh.now_ms + ms)
        self.since_heal += 1
        STATS["steps"] += 1

    @initialize(setup=setups())
    def start(self, setup: dict[str, Any]) -> None:
        self.raw = _fit_failsafe(self.core, setup["config"])
        self.mesh = Mesh(self.core, self.raw, setup["seed"], setup["lags"], setup["car_max"], setup["offsets"])
        self.mesh.run_until(1000)

    @property
    def ids(self) -> list[str]:
        assert self.mesh is not None
        return list(self.mesh.nodes)

    def _node(self, number: int) -> str:
        return self.ids[number % len(self.ids)]

    @rule(ms=st.integers(100, 4000))
    def run(self, ms: int) -> None:
        assert self.mesh is not None
        self._advance(ms)

    @rule(number=st.integers(0, 7), wants=st.booleans(), after=st.integers(0, 600))
    def demand(self, number: int, wants: bool, after: int) -> None:
        assert self.mesh is not None
        self.mesh.nodes[self._node(number)].demand = wants
        self._advance(after)

    @rule(number=st.integers(0, 7), wants=st.booleans(), after=st.integers(0, 600))
    def car(self, number: int, wants: bool, after: int) -> None:
        # The car itself stops or starts asking (full, plugged in): it draws nothing while it does not.
        assert self.mesh is not None
        self.mesh.nodes[self._node(number)].car.set_wants(self.mesh.now_ms, wants)
        self._advance(after)

    @rule(number=st.integers(0, 7), mode=st.sampled_from(["continuous", "solar_priority", "off", None]),
          priority=st.sampled_from([-1, 0, 1, None]), after=st.integers(0, 600))
    def mode(self, number: int, mode: str | None, priority: int | None, after: int) -> None:
        assert self.mesh is not None
        node = self.mesh.nodes[self._node(number)]
        node.mode = mode
        node.priority = priority
        self._advance(after)

    @rule(loss=st.sampled_from([0, 10, 30, 60, 100]), dup=st.sampled_from([0, 20]),
          delay=st.sampled_from([0, 50, 300, 1500]), after=st.integers(0, 600))
    def network(self, loss: int, dup: int, delay: int, after: int) -> None:
        assert self.mesh is not None
        self.mesh.loss_pct = loss
        self.mesh.dup_pct = dup
        self.mesh.max_delay_ms = delay
        self._advance(after)

    @rule(src=st.integers(0, 7), dst=st.integers(0, 7), up=st.booleans(), both=st.booleans(), after=st.integers(0, 600))
    def link(self, src: int, dst: int, up: bool, both: bool, after: int) -> None:
        assert self.mesh is not None
        a, b = self._node(src), self._node(dst)
        if a != b:
            self.mesh.set_link(a, b, up)
            if both:
                self.mesh.set_link(b, a, up)
        self._advance(after)

    @rule(src=st.integers(0, 7), dst=st.integers(0, 7), delay=st.sampled_from([0, 300, 800, 2000]),
          after=st.integers(0, 600))
    def slow_link(self, src: int, dst: int, delay: int, after: int) -> None:
        # One direction late: heartbeats cross, each side holding the other's older news.
        assert self.mesh is not None
        self.mesh.slow[(self._node(src), self._node(dst))] = delay
        self._advance(after)

    @rule(side=st.sets(st.integers(0, 7), min_size=1), after=st.integers(0, 600))
    def partition(self, side: set[int], after: int) -> None:
        assert self.mesh is not None
        one = {self._node(number) for number in side}
        for a in self.ids:
            for b in self.ids:
                if (a in one) != (b in one):
                    self.mesh.set_link(a, b, False)
        self._advance(after)

    @rule(number=st.integers(0, 7), after=st.integers(0, 600))
    def crash(self, number: int, after: int) -> None:
        assert self.mesh is not None
        self.mesh.crash(self._node(number))
        self._advance(after)

    @rule(number=st.integers(0, 7), skips=st.integers(1, 30), after=st.integers(0, 600))
    def starve(self, number: int, skips: int, after: int) -> None:
        assert self.mesh is not None
        self.mesh.starve(self._node(number), skips)
        self._advance(after)

    @rule(number=st.integers(0, 7), after=st.integers(0, 600))
    def restart(self, number: int, after: int) -> None:
        assert self.mesh is not None
        self.mesh.restart(self._node(number))
        self._advance(after)

    @rule(site_ma=st.sampled_from([12000, 20000, 25000, 32000, 50000]), garage_ma=st.sampled_from([8000, 16000, 30000]),
          safety=st.sampled_from([80, 100]), first=st.sets(st.integers(0, 7)), after=st.integers(0, 600))
    def limit_change(self, site_ma: int, garage_ma: int, safety: int, first: set[int], after: int) -> None:
        assert self.mesh is not None
        raw = dict(self.raw, version=self.raw["version"] + 1, updated_at=self.raw["updated_at"] + 1)
        raw["site"] = dict(raw["site"], limit_ma=site_ma, safety_pct=safety)
        raw["circuits"] = [dict(circuit, limit_ma=garage_ma) if circuit["id"] == "garage" else circuit
                           for circuit in raw["circuits"]]
        try:
            config = self.core.groupconfig.parse(raw)
        except self.core.errors.FieldError as exc:
            assert exc.field == "failsafe", str(exc)
            return  # the config check refuses it; a user could not deploy it
        if not self._limits_may_change(config):
            return
        self.raw = raw
        self.mesh.change_config(raw, [self._node(number) for number in first])
        self._advance(after)

    def _limits_may_change(self, config: dict[str, Any]) -> bool:
        """Whether the model lets config's limits take over now (a subclass may keep a documented gap out)."""
        return True

    @rule(some=st.sets(st.integers(0, 7), min_size=1), after=st.integers(0, 600))
    def deliver_configs(self, some: set[int], after: int) -> None:
        assert self.mesh is not None
        self.mesh.deliver_configs([self._node(number) for number in some])
        self._advance(after)

    @precondition(lambda self: self.mesh is not None and self.since_heal >= 12)
    @rule()
    def heal_and_converge(self) -> None:
        mesh = self.mesh
        assert mesh is not None
        mesh.max_delay_ms = min(mesh.max_delay_ms, 300)
        delay = mesh.max_delay_ms
        mesh.heal()
        start = mesh.now_ms
        # A member a config removed is held for until it is gone: silent, once it has that config, for the pad.
        bound = converge_bound_ms(mesh.config, delay) + mesh.holding_ms()
        done = mesh.run_until(start + bound, until=lambda m: m.converged())
        # A load paused before the heal asks again when its anti-flap guard
        # ends: a new change, from which convergence is timed again.
        guard_end = _guard_end(mesh, start, start + bound)
        if done is None and guard_end is not None:
            start = guard_end
            done = mesh.run_until(start + bound, until=lambda m: m.converged())
        elif done is not None and guard_end is not None and guard_end <= done:
            start = guard_end
        assert done is not None, f"not converged {bound} ms after healing at {start} ms: " + _status(mesh)
        took = done - start
        assert took <= bound
        self.since_heal = 0
        STATS["steps"] += 1
        STATS["convergences"] += 1
        STATS["worst_convergence_ms"] = max(STATS["worst_convergence_ms"], took)

    def teardown(self) -> None:
        if self.mesh is not None:
            STATS["controller_steps"] += self.mesh.steps_run
            STATS["events"] += self.mesh.events_checked
            STATS["simulated_ms"] += self.mesh.now_ms
            STATS["skipped_ticks"] += self.mesh.counts["skipped_ticks"]


def _guard_end(mesh: Mesh, start_ms: int, end_ms: int) -> int | None:
    """The last anti-flap guard that ends between start_ms and end_ms, if any."""
    last = None
    for node in mesh.nodes.values():
        paused = node.state["paused_ms"] if node.state else None
        if paused is not None:
            ends = paused + node.config["antiflap_ms"]
            if start_ms < ends <= end_ms and (last is None or ends > last):
                last = ends
    return last


def _status(mesh: Mesh) -> str:
    lines = []
    for node in mesh.nodes.values():
        last = node.last or {}
        lines.append(f"\n  {node.node_id}: alive={node.alive} applied={last.get('applied_ma')} "
                     f"target={last.get('target_ma')} reason={last.get('reason')} failsafe={last.get('failsafe')} "
                     f"digest={last.get('digest')} disagree={last.get('disagree')} silent={last.get('silent')} "
                     f"v{node.config['version'] if node.config else None}")
    return "".join(lines)


def test_mesh_never_exceeds_a_limit_and_converges(core: ModuleType, request: pytest.FixtureRequest) -> None:
    for key in STATS:
        STATS[key] = 0
    machine = type("Machine", (MeshMachine,), {"core": core})
    test_case = machine.TestCase
    # LOADMESH_NOSHRINK=1: report the first failure as found (shrinking a long run takes minutes).
    phases = [Phase.explicit, Phase.reuse, Phase.generate] if os.environ.get("LOADMESH_NOSHRINK") else list(Phase)
    examples = EXAMPLES[request.node.callspec.params["core"]]
    test_case.settings = settings(max_examples=examples, stateful_step_count=STEPS, deadline=None,
                                  suppress_health_check=list(HealthCheck), phases=phases)
    test_case().runTest()
    print("mesh stateful test:", STATS)


def test_a_node_that_hangs_while_its_car_follows_a_lowered_limit_is_counted_at_what_the_car_still_draws(
        core: ModuleType) -> None:
    # Found by the random search above (shrunk as it printed it): n3 lowers 9 A to 8 A at 2.1 s, its car (4 s
    # behind its pilot) still draws 9 A until 6.1 s; n3 hangs at 4.2 s and boots again at 5.5 s. The firmware
    # keeps the exposure (9 A) with the limit across the reset (lastlimit), so its peers count 9 A for it; the
    # model kept only the limit, and n0 and n1 raised into 1 A that n3's car was still drawing at 6 s.
    machine = type("Machine", (MeshMachine,), {"core": core})
    members = [{"id": "n0", "kind": "evse", "circuit": "site", "phases": "L123", "priority": 0, "min_ma": 6000,
                "max_ma": 16000, "step_ma": 100},
               {"id": "n1", "kind": "relay", "circuit": "site", "phases": "L1", "priority": 0, "min_ma": 2000,
                "max_ma": 2000, "step_ma": 1000},
               {"id": "n2", "kind": "evse", "circuit": "site", "phases": "L2", "priority": 0, "min_ma": 6000,
                "max_ma": 16000, "step_ma": 100},
               {"id": "n3", "kind": "evse", "circuit": "site", "phases": "L1", "priority": 1, "min_ma": 6000,
                "max_ma": 16000, "step_ma": 100}]
    config = {"group": "house", "version": 1, "updated_at": 1000, "origin": "companion", "key_id": "k1",
              "site": {"phases": 3, "voltage_v": 230, "limit_ma": 20000, "safety_pct": 90},
              "circuits": [{"id": "garage", "parent": "site", "limit_ma": 16000}], "members": members,
              "heartbeat_ms": 500, "peer_timeout_ms": 3000, "wdt_ms": 1500, "ev_lag_ms": 5000, "margin_ms": 1000,
              "antiflap_ms": 0, "ramp_ma": 0, "failsafe": {"mode": "safe_current", "current_ma": 0}}
    state = machine()
    state.start(setup={"config": config, "lags": {"n0": 0, "n1": 0, "n2": 0, "n3": 4000},
                       "car_max": {"n0": 10000, "n1": 10000, "n2": 10000, "n3": 10000},
                       "offsets": {"n0": 0, "n1": 0, "n2": 0, "n3": 0}, "seed": 774361})
    state.demand(after=93, number=1, wants=False)
    state.demand(after=59, number=0, wants=True)
    state.deliver_configs(after=0, some={0})
    state.deliver_configs(after=0, some={0})
    state.deliver_configs(after=261, some={0})
    state.crash(after=0, number=0)
    state.crash(after=0, number=0)
    state.partition(after=2, side={0})
    state.crash(after=0, number=0)
    state.crash(after=0, number=6)
    state.crash(after=234, number=0)
    state.demand(after=255, number=0, wants=True)
    state.demand(after=294, number=1, wants=True)
    state.deliver_configs(after=130, some={0})
    state.deliver_configs(after=385, some={0})
    state.link(after=600, both=False, dst=1, src=7, up=True)
    state.deliver_configs(after=385, some={0, 1})
    state.crash(after=500, number=0)
    state.crash(after=0, number=3)
    assert state.mesh is not None
    n3 = state.mesh.nodes["n3"]
    # Hung at 4.2 s, its car following the pilot of 4 s before: 9 A (set at 1.4 s) until 6.1 s.
    assert not n3.alive and n3.car.draw_ma(6000) == 9000, "the case no longer sets itself up"
    state.heal_and_converge()  # Violation on the old model, at 6.0 s
    state.teardown()
