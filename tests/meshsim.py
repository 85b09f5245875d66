"""A simulated mesh for the controller's stateful test and soak run: nodes, cars, a lossy network, faults.

Every node runs the real core (controller, peer table, heartbeat codec with
HMAC) on a shared simulated clock. The network loses, delays (reorders) and
duplicates packets and can cut links one way; nodes crash (their actuator
holds its last limit until the watchdog resets it to the boot state) and
restart with a higher boot id; cars follow their pilot after their own lag
(at most ev_lag_ms). After every event the invariants are checked: for every
circuit and phase, the sum of the limits the actuators enforce, and the sum
of what the cars draw, stay within limit x safety.

Configs can change the members (docs/safety.md, "Removed members"): a node
whose config leaves it out stops (left_out: 0 A, silent) and one named again
restarts into it (a new boot id, 0 A); a node never named yet (a spare)
waits, off. A running node whose new config drops members of its old one
tracks and holds for them with the firmware's own code (loadmesh.node.departed,
and runtime.Node._hold_for_departed at every tick). The check counts every
node where it is wired, member or not: a removed member's car draws on its
circuit whatever the configs say.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from loadmesh.node import departed, runtime

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
    kept_exposure_ma: int = 0  # what its car may still draw when it left (the firmware keeps it too)
    # Ticks to skip, every other one from the next (starve()): runtime.Node skips a tick that runs out of memory,
    # keeping nothing of it, and halts at a second in a row.
    skips_left: int = 0
    skip_next: bool = False
    offset_ms: int = 0
    running: bool = True  # False: left out by the config it has (or none yet, a spare): off, silent
    departed: dict[str, list[int]] = field(default_factory=dict)  # runtime.Node.departed
    kept_departed: dict[str, int] = field(default_factory=dict)  # what departed.FILE holds: survives a reset
    departed_kept: list[str] = field(default_factory=list)  # runtime.Node.departed_kept
    departed_listened: int = 0  # runtime.Node.departed_listened

    def _keep_departed(self, removed: dict[str, list[int]] | None = None) -> None:
        """runtime.Node._keep_departed, into kept_departed (the sim's flash), with the firmware's record()."""
        if removed is None:
            removed = self.departed
        kept = sorted(removed)
        if kept != self.departed_kept:
            self.departed_kept = kept
            self.kept_departed = departed.record(removed)


class Mesh:
    """The simulated site."""

    def __init__(self, core: ModuleType, config_raw: dict[str, Any], seed: int, lags: dict[str, int],
                 car_max: dict[str, int], offsets: dict[str, int], spares: list[dict[str, Any]] | None = None,
                 learn_by_ms: int | None = None) -> None:
        """spares: members wired on the site but in no config yet (a later one may add them).

        learn_by_ms: how soon after the first node's switch to a config that
        removes a member that member has it too (None: only when delivered).
        """
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
        # Member changes seen: nodes left out while running, spares booted, left-out nodes named again,
        # removed members brought the config by learn_by_ms, and ticks a node held for a removed member.
        self.counts = {"left": 0, "joined": 0, "rejoined": 0, "learned": 0, "held_ticks": 0, "skipped_ticks": 0}
        self._constraints_cache: dict[str, list[tuple[str, int, list[str]]]] = {}
        # The same, by the config object: check() asks for every node's config at every event, and hashing
        # a config costs more than the rest of the check. Each entry keeps its config, so that its id is not
        # reused while cached; configs are never changed in place (a new config is a new dict).
        self._constraints_by_object: dict[int, tuple[dict[str, Any], list[tuple[str, int, list[str]]]]] = {}
        self._history: list[tuple[int, dict[str, int]]] = []
        self.learn_by_ms = learn_by_ms
        self.learning: dict[str, int] = {}  # removed member -> when it has the config that removed it
        self.wired = list(self.config["members"]) + list(spares or [])
        self._wiring = self._member_constraints(self.config, self.wired)
        for member in self.wired:
            node_id = member["id"]
            node = Node(node_id, member["kind"], Car(lags[node_id], car_max[node_id]), offset_ms=offsets[node_id])
            self.nodes[node_id] = node
            if member in self.config["members"]:
                node.config = self.config
                node.config_ticked = False
                self._boot(node, 0, 0)
            else:
                node.running = False
                node.boot_id = 0  # its first boot, once a config names it, is boot 1
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
            elif kind == "reboot":
                self.restart(payload)
            elif kind == "learn":
                self._learn(payload)
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
        node.state = core.controller.boot(node.plan, node.boot_id, now_ms, last_applied_ma, node.kept_exposure_ma)
        # kept_exposure_ma stays what the RTC record holds until the first tick writes its own (crash()):
        # runtime.Node writes the record at a tick, not at its boot.
        node.last = None
        node.running = True
        node.skips_left = 0  # a new boot's heap
        # runtime.Node._restore_departed, then _switch_to's tracking with no old plan: the removed
        # members kept across the reset are held for again from the boot.
        node.departed = departed.restored(node.kept_departed, node.plan.ids, node.node_id, now_ms,
                                          node.table.max_peers)
        node.departed_kept = sorted(node.departed)
        if node.departed:
            node.table.set_members(departed.listened(node.departed, node.plan.ids, node.node_id,
                                                     node.table.max_peers))
            node._keep_departed()
        node.departed_listened = len(node.departed)
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
        if not node.alive or not node.running:
            return
        if node.skips_left:
            if node.skip_next:  # out of memory: nothing of the tick kept, nothing driven or sent, not counted
                node.skip_next = False
                node.skips_left -= 1
                self.counts["skipped_ticks"] += 1
                return
            node.skip_next = True  # this one runs, the next is skipped
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
        if node.departed or node.departed_listened:
            # The firmware's own: holding() drops the members that are gone, and the table stops listening to them.
            runtime.Node._hold_for_departed(node, inputs, node.plan, node.table, self.now_ms)  # type: ignore[arg-type]
            self.counts["held_ticks"] += 1 if inputs.get("hold") else 0
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
        if node.alive and node.running:
            node.table.receive(packet, self.now_ms)

    def _watchdog(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive or node.reset_at_ms != self.now_ms:
            return
        # Reset: the actuator goes to the boot state (what boot() gives, from the limit it held).
        plan = node.plan
        if node.running:
            failsafe = plan.failsafe_ma[plan.own]
            self._actuate(node, self.core.groupconfig.lattice_ma(plan.me, min(failsafe, node.actuator_ma)))
        node.reset_at_ms = None

    # -- faults and changes -----------------------------------------------

    def crash(self, node_id: str) -> None:
        """The node hangs: its actuator holds until the watchdog resets it to the boot state; restart() boots it.

        A hold for a removed member survives the reset (departed.FILE, the
        sim's kept_departed): the node holds for it again from its boot.
        """
        node = self.nodes[node_id]
        if not node.alive:
            return
        node.alive = False
        node.enforced_ma = node.actuator_ma
        if node.running and node.last is not None:
            # The firmware keeps its exposure with the limit at every tick (lastlimit, runtime.Node._tick): a
            # car still following a limit lowered less than ev_lag ago is told to the peers after the reset
            # too. Without it the model booted such a node telling only its applied limit (a 9 A car
            # counted as 8 A after its node hung, found by this test's random search).
            node.kept_exposure_ma = node.last["exposure_ma"]
        wdt_ms = node.config["wdt_ms"] if node.config else 0
        node.reset_at_ms = self.now_ms + self.rng.randint(0, wdt_ms)
        self._schedule(node.reset_at_ms, "reset", node_id)

    def starve(self, node_id: str, skips: int) -> None:
        """The node's heap is cut up: of its next 2 × skips ticks, every other one (the first too) runs out of memory
        and is skipped (runtime.Node.tick_and_collect: the controller's state and memo left whole, nothing driven or
        sent; tests/test_node_tick_memory.py). A second in a row would halt it, which crash() plays."""
        node = self.nodes[node_id]
        node.skips_left = skips
        node.skip_next = True

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive or node.reset_at_ms is not None:
            return  # still hung, or never crashed: the watchdog must fire first
        kept = node.config
        pending = self.pending_config.pop(node_id, None)
        if pending is not None:
            self._adopt(node, pending)  # while not alive: it only takes the config
        node.alive = True
        node.boot_id += 1
        if node.config is None or not _names(node.config, node_id):
            self._leave(node)  # the firmware boots left out again (or, a spare, with no config it can run)
            return
        self._boot(node, self.now_ms, node.enforced_ma)
        if kept is not None and kept is not node.config and _names(kept, node_id):
            # The firmware boots into the config it kept and adopts the pending one
            # in its first sync round: the members that one dropped are tracked then.
            self._track_departed(node, self.core.controller.prepare(kept, node_id))

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
        had = node.config
        node.previous_config = node.config if node.config_ticked else node.previous_config
        node.config = config
        node.config_ticked = False
        if not node.alive:
            return  # restart() boots it into this config
        if not _names(config, node.node_id):
            self._leave(node)
        elif not node.running and node.boot_id == 0:
            node.boot_id = 1  # a spare's first config: its first boot, at 0 A
            self.counts["joined"] += 1
            self._boot(node, self.now_ms, 0)
        elif not node.running:
            # Named again after it left: runtime.Node._rejoin halts it, and the
            # watchdog restarts it into this config (a new boot id, 0 A kept).
            # runtime.Node._adopt keeps first, for that boot, the members the
            # config that left it out had and this one lacks (departed.py).
            if had is not None:
                plan = self.core.controller.prepare(config, node.node_id)
                ahead = dict(node.departed)
                departed.track(ahead, departed.rejoin_ids(had), plan.ids, plan.node, self.now_ms,
                               departed.rejoin_wait_ms(had, plan))
                node._keep_departed(ahead)
                self._learn_by(sorted(ahead))
            node.alive = False
            node.enforced_ma = 0
            self.counts["rejoined"] += 1
            node.reset_at_ms = self.now_ms + self.rng.randint(0, config["wdt_ms"])
            self._schedule(node.reset_at_ms, "reset", node.node_id)
            self._schedule(node.reset_at_ms, "reboot", node.node_id)
        else:
            old = node.plan
            node.plan = self.core.controller.prepare(config, node.node_id)
            self._track_departed(node, old)

    def _track_departed(self, node: Node, old: Any) -> None:
        """Track the members old had and node.plan has not, and listen to them.

        Mirrors the departed lines of runtime.Node._switch_to (the rest of that
        method opens the role, the HAL and the socket); track() and listened()
        are the firmware's.
        """
        plan = node.plan
        listen = plan.ids
        if node.departed or [member for member in old.ids if member not in plan.ids]:
            departed.track(node.departed, old.ids, plan.ids, plan.node, self.now_ms, departed.wait_ms(old, plan))
            listen = departed.listened(node.departed, plan.ids, plan.node, node.table.max_peers)
            node._keep_departed()
            self._learn_by(sorted(node.departed))
        node.table.set_members(listen)
        node.departed_listened = len(node.departed)

    def _learn_by(self, removed: list[str]) -> None:
        """The model's assumption: each removed member has the config within learn_by_ms of this switch."""
        if self.learn_by_ms is not None:
            for member in removed:
                if member not in self.learning:
                    self.learning[member] = self.now_ms + self.learn_by_ms
                    self._schedule(self.now_ms + self.learn_by_ms, "learn", member)

    def _leave(self, node: Node) -> None:
        """runtime.Node._leave: outputs safe, no more ticks or heartbeats; what the car may draw is kept."""
        if node.running:
            exposure = node.last["exposure_ma"] if node.last is not None else 0
            node.kept_exposure_ma = max(exposure, node.actuator_ma)
            self.counts["left"] += 1
        node.running = False
        node.config_ticked = True  # it enforces this config at once: nothing
        node.enforced_ma = 0
        node.plan = node.table = node.state = node.last = None
        node.departed = {}
        self._actuate(node, 0)

    def _learn(self, node_id: str) -> None:
        """The removed member has the config that removed it (or a later one), as the model assumes."""
        if self.learning.get(node_id) != self.now_ms:
            return
        del self.learning[node_id]
        node = self.nodes[node_id]
        had = node.config
        if not node.alive:
            # Down then: it is back (its watchdog reset) and has the config at boot.
            if node.reset_at_ms is not None:
                node.reset_at_ms = self.now_ms
                self._watchdog(node_id)
            self.restart(node_id)
        else:
            self.deliver_configs([node_id])
        self.counts["learned"] += 1 if node.config is not had else 0

    # -- invariants ----------------------------------------------------------

    def _constraints(self, config: dict[str, Any]) -> list[tuple[str, int, list[str]]]:
        known = self._constraints_by_object.get(id(config))
        if known is not None and known[0] is config:
            return known[1]
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
        self._constraints_by_object[id(config)] = (config, cached)
        return cached

    def _member_constraints(self, config: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, list[str]]:
        """Per constraint, the nodes wired on it: config's site and circuits, these members."""
        return {name: ids for name, _, ids in self._constraints(dict(config, members=members))}

    def check_capacities(self) -> dict[str, int]:
        """Per constraint, the capacity to hold: the largest among the configs the nodes enforce.

        A node enforces a new config once it has ticked with it; until every
        node does, the older (larger) limit is the one to hold.
        """
        capacity: dict[str, int] = {}
        for node in self.nodes.values():
            if not node.running:
                continue  # left out (or a spare): it enforces no config, and drives nothing
            config = node.config if node.config_ticked or node.previous_config is None else node.previous_config
            if config is None:
                continue  # a spare
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
        for name, cap in capacity.items():
            ids = self._wiring[name]
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
            lines.append(f"  {node_id}: alive={node.alive} running={node.running} actuator={node.actuator_ma} "
                         f"draw={node.car.draw_ma(self.now_ms)} lag={node.car.lag_ms} "
                         f"target={last.get('target_ma')} reason={last.get('reason')} "
                         f"failsafe={last.get('failsafe')} config=v{node.config['version'] if node.config else None}"
                         f" ticked={node.config_ticked} departed={sorted(node.departed)}")
        return "\n".join(lines)

    # -- convergence ---------------------------------------------------------

    def heal(self) -> None:
        """Every link up, no loss, no node short of memory, every crashed node restarted, every config delivered."""
        self.cut.clear()
        self.slow.clear()
        self.loss_pct = 0
        self.dup_pct = 0
        for node in self.nodes.values():
            node.skips_left = 0  # the convergence bound counts ticks every 100 ms
        # Configs first: a left-out node named again halts, and restarts below with the crashed ones.
        self.deliver_configs(list(self.nodes))
        for node_id, node in self.nodes.items():
            if not node.alive:
                if node.reset_at_ms is not None:
                    self.run_until(node.reset_at_ms)
                self.restart(node_id)

    def converged(self) -> bool:
        """Every node alive on the same config, digests equal, applied = target = the allocation of the true view."""
        core = self.core
        digests = set()
        facts = {}
        members = [member["id"] for member in self.config["members"]]
        for node in self.nodes.values():
            if node.node_id not in members:
                if node.running or not node.alive:
                    return False  # healed: it has the config that leaves it out
                continue
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
        return all(self.nodes[node_id].last["target_ma"] == result["alloc_ma"][node_id] for node_id in members)

    def _configs_in_force(self) -> list[dict[str, Any]]:
        """The configs nodes that drive a load run (crashed ones included), and those pending for them."""
        configs = []
        for node_id, node in self.nodes.items():
            if node.running and node.config is not None:
                configs.append(node.config)
                if node_id in self.pending_config:
                    configs.append(self.pending_config[node_id])
        return configs

    def members_in_flight(self) -> bool:
        """Whether the configs in force (or on their way) differ in their members."""
        return len({tuple(member["id"] for member in config["members"]) for config in self._configs_in_force()}) > 1

    def lowered_in_flight(self) -> bool:
        """Whether a lowered limit is on its way: configs in force differ in a capacity, or a node still holds
        to its transition share (it has not agreed since a config lowered a capacity it had agreed under)."""
        capacities = {tuple((name, cap) for name, cap, _ in self._constraints(config))
                      for config in self._configs_in_force()}
        if len(capacities) > 1:
            return True
        for node in self.nodes.values():
            if not node.running or node.state is None or node.state["agreed_caps"] is None:
                continue
            now = {name: cap for name, cap, _ in node.plan.caps}
            if any(cap > now.get(name, cap) for name, cap, _ in node.state["agreed_caps"]):
                return True
        return False

    def lowers(self, config: dict[str, Any]) -> bool:
        """Whether config has a capacity below the newest config's."""
        now = {name: cap for name, cap, _ in self._constraints(self.config)}
        return any(cap < now.get(name, cap) for name, cap, _ in self._constraints(config))

    def holding_ms(self) -> int:
        """How long the holds for removed members may still last, at most: the longest pad of the configs run."""
        if not any(node.departed for node in self.nodes.values()):
            return 0
        return max(node.plan.silent_wait_ms for node in self.nodes.values() if node.plan is not None)


def _names(config: dict[str, Any], node_id: str) -> bool:
    """Whether config has a member node_id."""
    return any(member["id"] == node_id for member in config["members"])
