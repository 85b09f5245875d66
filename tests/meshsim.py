"""A simulated mesh for the controller's stateful test and soak run: nodes, cars, a lossy network, faults.

Every node runs the real core (controller, peer table, heartbeat codec with
HMAC) on a shared simulated clock. The network loses, delays (reorders) and
duplicates packets and can cut links one way; nodes crash (their actuator
holds its last limit until the watchdog resets it to the boot state) and
restart with a higher boot id; cars follow their pilot after their own lag
(at most ev_lag_ms). After every event the invariants are checked: for every
circuit and phase, the sum of the limits the actuators enforce, and the sum
of what the cars draw, stay within limit x safety.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

KEY = bytes(range(32))
TICK_MS = 100


class Violation(AssertionError):
    """An invariant broke; the message tells when, where and who."""


@dataclass
class Car:
    """What a load draws: the pilot it saw lag_ms ago, up to its own max; 0 when it does not want current."""

    lag_ms: int
    max_ma: int
    wants: bool = True
    wants_since_ms: int = -(10**9)
    pilot: list[tuple[int, int]] = field(default_factory=lambda: [(-(10**9), 0)])  # (from t_ms, limit)

    def set_wants(self, now_ms: int, wants: bool) -> None:
        # A car that starts asking follows the pilot it sees from then on (after its lag).
        if wants and not self.wants:
            self.wants_since_ms = now_ms
        self.wants = wants

    def set_pilot(self, now_ms: int, limit_ma: int) -> None:
        if self.pilot[-1][1] != limit_ma:
            self.pilot.append((now_ms, limit_ma))
            if len(self.pilot) > 64:
                del self.pilot[:32]

    def draw_ma(self, now_ms: int) -> int:
        seen = now_ms - self.lag_ms
        if not self.wants or seen < self.wants_since_ms:
            return 0
        limit = 0
        for start, value in self.pilot:
            if start <= seen:
                limit = value
            else:
                break
        return min(limit, self.max_ma)


@dataclass
class Node:
    node_id: str
    kind: str
    car: Car
    boot_id: int = 1
    alive: bool = True
    actuator_ma: int = 0
    config: dict[str, Any] | None = None
    config_ticked: bool = False
    previous_config: dict[str, Any] | None = None
    plan: Any = None
    state: dict[str, Any] | None = None
    table: Any = None
    demand: bool = True
    mode: str | None = None
    priority: int | None = None
    last: dict[str, Any] | None = None
    reset_at_ms: int | None = None  # a crashed node's watchdog fires then
    enforced_ma: int = 0  # what it enforced when it crashed: the firmware keeps it across a reset (RTC memory)
    offset_ms: int = 0


class Mesh:
    """The simulated site."""

    def __init__(self, core: ModuleType, config_raw: dict[str, Any], seed: int, lags: dict[str, int],
                 car_max: dict[str, int], offsets: dict[str, int]) -> None:
        self.core = core
        self.rng = random.Random(seed)
        self.pads = core.heartbeat.prepare_key(KEY)
        self.config = core.groupconfig.parse(config_raw)
        self.now_ms = 0
        self.nodes: dict[str, Node] = {}
        self.events: list[tuple[int, int, str, Any]] = []
        self._order = 0
        self.cut: set[tuple[str, str]] = set()
        self.slow: dict[tuple[str, str], int] = {}  # extra delay on a link, one way
        self.loss_pct = 0
        self.dup_pct = 0
        self.max_delay_ms = 0
        self.pending_config: dict[str, dict[str, Any]] = {}
        self.events_checked = 0
        self.steps_run = 0
        self._constraints_cache: dict[str, list[tuple[str, int, list[str]]]] = {}
        self._history: list[tuple[int, dict[str, int]]] = []
        for member in self.config["members"]:
            node_id = member["id"]
            node = Node(node_id, member["kind"], Car(lags[node_id], car_max[node_id]), offset_ms=offsets[node_id])
            node.config = self.config
            node.config_ticked = False
            self.nodes[node_id] = node
            self._boot(node, 0, 0)
            self._schedule(offsets[node_id], "tick", node_id)

    # -- events ------------------------------------------------------------

    def _schedule(self, at_ms: int, kind: str, payload: Any) -> None:
        self._order += 1
        heapq.heappush(self.events, (at_ms, self._order, kind, payload))

    def run_until(self, end_ms: int, until: Any = None) -> int | None:
        """Process events up to end_ms; with until(mesh) -> bool, stop at the first time it holds."""
        while self.events and self.events[0][0] <= end_ms:
            at_ms, _, kind, payload = heapq.heappop(self.events)
            self.now_ms = at_ms
            if kind == "tick":
                self._tick(payload)
            elif kind == "packet":
                self._deliver(*payload)
            elif kind == "reset":
                self._watchdog(payload)
            self.check()
            if until is not None and kind == "tick" and until(self):
                return at_ms
        self.now_ms = end_ms
        self.check()
        return None

    def _boot(self, node: Node, now_ms: int, last_applied_ma: int) -> None:
        core = self.core
        assert node.config is not None
        node.plan = core.controller.prepare(node.config, node.node_id)
        node.table = core.peers.PeerTable(self.pads, node.config["group"], node.node_id, node.plan.ids)
        node.state = core.controller.boot(node.plan, node.boot_id, now_ms, last_applied_ma)
        node.last = None
        self._actuate(node, node.state["applied_ma"])

    def _actuate(self, node: Node, limit_ma: int) -> None:
        if limit_ma != node.actuator_ma:
            node.actuator_ma = limit_ma
            node.car.set_pilot(self.now_ms, limit_ma)
            if node.car.lag_ms:
                # The draw changes lag_ms later: an event, so the check sees it.
                self._schedule(self.now_ms + node.car.lag_ms, "lag", node.node_id)

    def _tick(self, node_id: str) -> None:
        node = self.nodes[node_id]
        self._schedule(self.now_ms + TICK_MS, "tick", node_id)
        if not node.alive:
            return
        core = self.core
        draw = node.car.draw_ma(self.now_ms)
        phases = node.plan.load_phases[node.plan.own]
        draws = [draw if phase in phases else 0 for phase in range(3)]
        inputs: dict[str, Any] = {"demand": node.demand and node.car.wants, "idle": not node.car.wants,
                                  "draw_ma": draws}
        if node.mode is not None:
            inputs["mode"] = node.mode
        if node.priority is not None:
            inputs["priority"] = node.priority
        out, node.state = core.controller.step(node.plan, node.state, inputs, node.table, self.now_ms)
        self.steps_run += 1
        node.last = out
        node.config_ticked = True
        self._actuate(node, out["applied_ma"])
        message = out["heartbeat"]
        if message is not None:
            self._broadcast(node_id, core.heartbeat.encode(self.pads, message))

    def _broadcast(self, src: str, packet: bytes) -> None:
        for dst in self.nodes:
            if dst == src or (src, dst) in self.cut:
                continue
            copies = 1 + (1 if self.rng.randrange(100) < self.dup_pct else 0)
            for _ in range(copies):
                if self.rng.randrange(100) < self.loss_pct:
                    continue
                delay = self.rng.randint(0, self.max_delay_ms) if self.max_delay_ms else 0
                delay += self.slow.get((src, dst), 0)
                self._schedule(self.now_ms + delay, "packet", (dst, packet))

    def _deliver(self, dst: str, packet: bytes) -> None:
        node = self.nodes[dst]
        if node.alive:
            node.table.receive(packet, self.now_ms)

    def _watchdog(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive or node.reset_at_ms != self.now_ms:
            return
        # Reset: the actuator goes to the boot state (what boot() gives, from the limit it held).
        plan = node.plan
        failsafe = plan.failsafe_ma[plan.own]
        self._actuate(node, self.core.groupconfig.lattice_ma(plan.me, min(failsafe, node.actuator_ma)))
        node.reset_at_ms = None

    # -- faults and changes -----------------------------------------------

    def crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if not node.alive:
            return
        node.alive = False
        node.enforced_ma = node.actuator_ma
        wdt_ms = node.config["wdt_ms"] if node.config else 0
        node.reset_at_ms = self.now_ms + self.rng.randint(0, wdt_ms)
        self._schedule(node.reset_at_ms, "reset", node_id)

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive or node.reset_at_ms is not None:
            return  # still hung, or never crashed: the watchdog must fire first
        node.alive = True
        node.boot_id += 1
        pending = self.pending_config.pop(node_id, None)
        if pending is not None:
            self._adopt(node, pending)
        self._boot(node, self.now_ms, node.enforced_ma)

    def set_link(self, src: str, dst: str, up: bool) -> None:
        if up:
            self.cut.discard((src, dst))
        else:
            self.cut.add((src, dst))

    def change_config(self, raw: dict[str, Any], now_to: list[str]) -> None:
        """A new config version: adopted at once by now_to, pending for the others."""
        config = self.core.groupconfig.parse(raw)
        self.config = config
        for node_id, node in self.nodes.items():
            if node_id in now_to and node.alive:
                self._adopt(node, config)
            else:
                self.pending_config[node_id] = config

    def deliver_configs(self, node_ids: list[str]) -> None:
        for node_id in node_ids:
            node = self.nodes[node_id]
            if node.alive and node_id in self.pending_config:
                self._adopt(node, self.pending_config.pop(node_id))

    def _adopt(self, node: Node, config: dict[str, Any]) -> None:
        if node.config is not None and node.config["version"] >= config["version"]:
            return
        node.previous_config = node.config if node.config_ticked else node.previous_config
        node.config = config
        node.config_ticked = False
        if node.alive:
            node.plan = self.core.controller.prepare(config, node.node_id)
            node.table.set_members(node.plan.ids)

    # -- invariants ----------------------------------------------------------

    def _constraints(self, config: dict[str, Any]) -> list[tuple[str, int, list[str]]]:
        key = self.core.groupconfig.config_hash(config)
        cached = self._constraints_cache.get(key)
        if cached is None:
            core = self.core
            loads = [{"id": m["id"], "circuit": m["circuit"], "phases": m["phases"], "min_ma": m["min_ma"],
                      "max_ma": m["max_ma"], "step_ma": m["step_ma"], "priority": 0, "mode": "continuous",
                      "demand": False, "online": True} for m in config["members"]]
            model = core.site.parse(core.groupconfig.scenario(config, loads))
            cached = [(name, capacity, ids) for name, _, capacity, ids in core.site.constraints(model)
                      if not name.startswith("import:")]
            self._constraints_cache[key] = cached
        return cached

    def check_capacities(self) -> dict[str, int]:
        """Per constraint, the capacity to hold: the largest among the configs the nodes enforce.

        A node enforces a new config once it has ticked with it; until every
        node does, the older (larger) limit is the one to hold.
        """
        capacity: dict[str, int] = {}
        for node in self.nodes.values():
            config = node.config if node.config_ticked or node.previous_config is None else node.previous_config
            assert config is not None
            for name, cap, _ in self._constraints(config):
                if cap > capacity.get(name, -1):
                    capacity[name] = cap
        return capacity

    def check(self) -> None:
        self.events_checked += 1
        capacity = self.check_capacities()
        # A car follows a lower pilot within ev_lag_ms: after a lowered limit,
        # what the cars draw is held to it only once that time has passed.
        if not self._history or self._history[-1][1] != capacity:
            self._history.append((self.now_ms, capacity))
        window_ms = self.now_ms - self.config["ev_lag_ms"]
        while len(self._history) > 1 and self._history[1][0] <= window_ms:
            del self._history[0]
        members = {name: ids for name, _, ids in self._constraints(self.config)}
        for name, cap in capacity.items():
            ids = members[name]
            applied = sum(self.nodes[node_id].actuator_ma for node_id in ids)
            if applied > cap:
                raise Violation(self._report("applied", name, applied, cap, ids))
            drawn = sum(self.nodes[node_id].car.draw_ma(self.now_ms) for node_id in ids)
            draw_cap = max(caps.get(name, 0) for _, caps in self._history)
            if drawn > draw_cap:
                raise Violation(self._report("draw", name, drawn, draw_cap, ids))

    def _report(self, what: str, name: str, total: int, cap: int, ids: list[str]) -> str:
        lines = [f"t={self.now_ms} ms: sum of {what} on {name} is {total} mA > {cap} mA"]
        for node_id in ids:
            node = self.nodes[node_id]
            last = node.last or {}
            lines.append(f"  {node_id}: alive={node.alive} actuator={node.actuator_ma} "
                         f"draw={node.car.draw_ma(self.now_ms)} lag={node.car.lag_ms} "
                         f"target={last.get('target_ma')} reason={last.get('reason')} "
                         f"failsafe={last.get('failsafe')} config=v{node.config['version'] if node.config else None}"
                         f" ticked={node.config_ticked}")
        return "\n".join(lines)

    # -- convergence ---------------------------------------------------------

    def heal(self) -> None:
        """Every link up, no loss, every crashed node restarted, every config delivered."""
        self.cut.clear()
        self.slow.clear()
        self.loss_pct = 0
        self.dup_pct = 0
        for node_id, node in self.nodes.items():
            if not node.alive:
                if node.reset_at_ms is not None:
                    self.run_until(node.reset_at_ms)
                self.restart(node_id)
        self.deliver_configs(list(self.nodes))

    def converged(self) -> bool:
        """Every node alive on the same config, digests equal, applied = target = the allocation of the true view."""
        core = self.core
        digests = set()
        facts = {}
        for node in self.nodes.values():
            if not node.alive or node.last is None or node.config is not self.config:
                return False
            last = node.last
            if last["failsafe"] or last["applied_ma"] != last["target_ma"]:
                return False
            digests.add(last["digest"])
            sent = node.state["sent"]
            if sent is None:
                return False
            facts[node.node_id] = sent
        if len(digests) != 1:
            return False
        loads = []
        for member in self.config["members"]:
            _, _, _, _, demand, mode, priority, active, _ = facts[member["id"]]
            loads.append({"id": member["id"], "circuit": member["circuit"], "phases": member["phases"],
                          "min_ma": member["min_ma"], "max_ma": member["max_ma"], "step_ma": member["step_ma"],
                          "priority": priority, "mode": mode, "demand": demand, "online": True, "active": active})
        result = core.allocate.allocate(core.site.parse(core.groupconfig.scenario(self.config, loads)))
        return all(node.last["target_ma"] == result["alloc_ma"][node_id] for node_id, node in self.nodes.items())
