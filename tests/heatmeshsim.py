"""A simulated heating mesh for the heating stateful test and soak run: a boiler node, valve nodes, a plant, faults.

Every node runs the firmware's real role (loadmesh.node.role_boiler.BoilerRole,
role_valve.ValveRole) over the real core (controller, peer table, heartbeat
codec with HMAC) on a shared simulated clock, ticked as runtime.Node.tick
ticks it (role.inputs, controller.step, role.apply, role.heartbeat, send),
each with its own folder for heating.json, load_sharing.json and
tier3_rests.json. The network is tests/meshsim.py's (Mesh._broadcast: loss,
delay and so reordering, duplicates, one-way cuts, slow links). The plant: a
valve per room that moves to its command at its own travel time (or sticks,
or loses its feedback), room temperatures that follow the water and the
valve, room sensors that are fresh, stale or absurd, flow and return sensors
likewise, and a boiler whose own thermostat lights the burner while its
call-for-heat relay is on.

A crashed node hangs: its outputs hold (the relay stays on, the valve keeps
its command) until its watchdog resets it (within wdt_ms) to the HAL's safe
state (relay off, valve commanded closed); restart() boots it again with a
higher boot id, from what its folder keeps.

A starved node (starve(), starve_fault()) runs out of memory at chosen
ticks, each at a point of STARVE_POINTS: a MemoryError raised in the real
code there (the function the tick calls at that point, a core step, a role
method, the HAL's reading, the heartbeat's encoding, replaced for that tick
by one that raises), so that what the tick keeps is the role's own doing,
not this model's. _tick then plays runtime.Node.tick_and_collect: the tick
is skipped (nothing more of it runs; what it kept stays kept, what it drove
stays driven; the watchdog is not fed, and the next tick, 100 ms later,
feeds it within any wdt_ms); a second in a row, or one in the driving window
(from controller.step's state kept to role.apply done), halts the node
(halt(): the outputs safe at once, as runtime.Node._halt makes them, then
crash()'s watchdog reset). Each invariant is checked on what the tick kept
(_tick's done()): the boiler's state machine at a tick that got past
boiler.step (its state kept, the relay and setpoint driven), load sharing at
one that got past tiers.step, the overrides and the valve nodes' commands at
one whose role decided whole (inputs() returned); the interlock counts from
the last tick that drove the relay, seen at the HAL, skipped or not. No bound
below needs more time for a skip: each counts from the tick that kept or
drove what it bounds, and a decision the skipped tick did not get to is made
at the next tick that does, as after a late tick (so the switch's "from the
tick after" and the entry's "that very tick" are the next tick that gets to
tiers.step). What a skip delays is a valve node's command: decided and not
driven (a skip after inputs(), before role.apply), it reaches the valve at
the next tick, so "fresh" holds for what the node commands and its valve is
told within a TICK more; the boiler counts each valve at its feedback, so no
other bound moves. The boiler node's files hold what its last tick kept
(role_boiler writes each before the state it keeps): a reset after a skip
finds them so.

After every event the invariants below are checked (docs/heating.md,
"Verification" derives each bound from the design). D is the network's
largest delay (max_delay_ms plus the slowest link, over the run so far), T
the timeout (peer_timeout_ms), TICK the 100 ms control tick.

  interlock   the relay is on only if the valves' real openings, each taken
              at its largest since T + D before the boiler node's last tick
              (the one that drove the relay), add up to min_valve_open_pct.
              The boiler counts an opening only from a valve node heard less
              than T ago, and only up to the feedback that node read when it
              sent it (at most D earlier); a hung boiler node's relay holds
              until its watchdog, and its last tick is then older.
  fresh       a valve node that has accepted no heartbeat of the boiler node
              for T commands its own opening (no override, no held decrease);
              an override a valve node applies came from a boiler heartbeat
              built less than T + D + TICK ago.
  modes       no room in off or manual mode is opened by load sharing: the
              boiler node's load-sharing rooms never include one whose mode
              changed away from auto T + D or more before its tick (it counts
              only reports sent since; the valve node's override then ends
              within "fresh"'s bound: 2 (T + D + TICK) in all).
  switch      with the runtime switch off, the boiler node's load sharing is
              DISABLED with no room, from the tick after the switch.
  steps       every command a valve node gives its valve, every override, is
              a multiple of 10 in 0..100; a load-sharing room's opening is
              within its tier's maximum.
  overrun     once the boiler node holds the valves (pending-off, pump
              overrun), each room it last commanded open is in its overrides
              at that opening, until the hold ends; pump overrun lasts
              pump_overrun_ms unless the boiler fires again; a valve node
              that takes a hold keeps its valve at the held opening.
  water       a cooldown (the boiler node's setpoint down to the cooldown
              setpoint, so that the burner cannot relight) begins only on a
              hot flow or return reading, and ends only when good readings
              of both have cooled to the recovery limit or after
              cooldown_max_ms; "good" is a reading in range the boiler node
              was given since its boot, less than its channel's hold
              (WATER_HOLD_MS) ago: a stale, missing or absurd reading is
              never taken as hot nor as cooled. The setpoint driven is the
              cooldown one exactly while the cooldown lasts. A cooldown in
              progress at a reset of the boiler node is still in progress at
              its first tick after the boot unless good readings have cooled
              (its maximum time then counts from that tick: the clock
              restarts), and none is there that was not in progress.
  evidence    load sharing enters (INACTIVE onto the cascade) only on
              evidence of cycling: a cooldown in progress, or one begun
              within cooldown_lookback_ms (a boot that kept one in progress or
              recent counts as its beginning), or the boiler on with a good
              return reading above the setpoint less
              return_temp_risk_delta_dc. An unknown return (stale, missing,
              absurd) is no evidence (docs/heating.md, "Flow and return
              sensors", says why that is the worst case here).
  entry       and it enters on that evidence: a boiler tick that begins out
              of the cascade, with the evidence (as counted here), the
              switch on, and in the reports the boiler node hears a room
              calling, the calling rooms taking less than
              min_calling_capacity_w and a room tier 3 may open (past the
              longest its rest may last), ends in the cascade. Sound, not
              exact: that room is sufficient, not necessary (tiers 1 and 2
              may open one when it is missing).
  settings    PUT /heating on the boiler node (put_boiler) changes no bound
              but through the settings in force: the interlock's minimum of
              the tick that drove the relay, the new minimum off time and
              pump overrun, the hold's rooms those still configured, a
              tier-3 service ended by load sharing's new settings released
              at the boiler node's last tick; no override nor load-sharing
              opening for a room it no longer has.
  tier 3      a room serves tier 3 at most tier_3_max_duration_ms at a
              stretch, and once released rests tier_3_rest_ms x served / max
              before tier 3 takes it again, across boiler node reboots.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from typing import Any

from loadmesh.core import boiler as core_boiler
from loadmesh.core import controller, groupconfig, heartbeat, radiator, roomctl, schedule, tiers, valves
from loadmesh.core.errors import FieldError
from loadmesh.core.peers import PeerTable
from loadmesh.node import role_boiler
from loadmesh.node.hal import Hal
from loadmesh.node.role_boiler import WATER_HOLD_MS, BoilerRole
from loadmesh.node.role_valve import ValveRole
from loadmesh.node.store import Store

from .meshsim import KEY, Mesh, Violation

TICK_MS = 100
PLANT = "#plant"
BOILER = "boiler"
WEEK_MS = 7 * 86400000
TRAIL = 60  # the last events a failure prints
# Where a tick runs out of memory (HeatMesh.starve), by node kind, in the order the tick gets there
# (runtime.Node.tick and the roles' inputs()); each the function the tick calls there (HeatMesh._targets).
STARVE_POINTS = {
    # role_boiler._decide: the flow reading (before any decision), the openings confirmed (the rooms read), the
    # three steps (each after the one before kept its state; the relay and setpoint driven after boiler.step's),
    # the files before the step's state they keep (cooldown.json, tier3_rests.json), the overrides (the valves'
    # state kept); then the runtime's.
    BOILER: ("flow", "confirmed", "boiler.step", "cooldown", "tiers.step", "rests", "valves.step", "overrides",
             "controller.step", "driving", "heartbeat", "send"),
    # role_valve._control: the room's reading (the HAL), its target (auto), roomctl.step, the next block (its
    # state kept); then the runtime's: controller.step (the command decided), role.apply (in the driving
    # window: a halt), role.heartbeat, the heartbeat's encoding (the role told it, it is not sent).
    "valve": ("room", "target", "roomctl.step", "next_block", "controller.step", "driving", "heartbeat", "send"),
}
# How many ticks a starved node waits for a point before it lets it go (5 by default: a heartbeat is sent within
# that): the boiler node's file writes (role._write) come a few times a cooldown or a tier-3 service.
STARVE_WAIT = {"write": 1200}


class Plant:
    """The house the nodes drive: valves, rooms and their sensors, the boiler with its own thermostat and water."""

    def __init__(self, rng: random.Random, rooms: list[str], start_week_ms: int) -> None:
        self.rooms = rooms
        self.start_week_ms = start_week_ms
        self.command = {rid: 0 for rid in rooms}  # what each valve was told
        self.pos = {rid: 0 for rid in rooms}  # real position, thousandths of a percent
        self.travel_ms = {rid: rng.choice([2000, 5000, 10000, 30000]) for rid in rooms}  # 0 to 100 %
        self.stuck = {rid: False for rid in rooms}
        self.feedback_lost = {rid: False for rid in rooms}
        self.temp = {rid: rng.randint(150, 230) * 1000 for rid in rooms}  # milli-dC
        self.sensor = {rid: "fresh" for rid in rooms}  # fresh, stale (no reading), absurd
        self.relay = False
        self.relay_off_ms = 0  # when the relay last went off (off from the start: the boiler node boots then)
        self.relay_on_ms = 0  # time with the relay on, for the counts
        self.relay_on_since = 0
        self.flame = False
        self.setpoint_dc: int | None = None
        self.water = 300 * 1000  # milli-dC
        self.clock_ok = True
        # The boiler node's flow and return sensors: fresh, stale (reads fail: none since its boot is a
        # sensor missing) or absurd (this reading, out of -40..150 °C), and the last good reading each gave
        # the boiler node since its boot (ms, dC): what a correct node may use for WATER_HOLD_MS.
        self.water_sensor = {"flow": "fresh", "return": "fresh"}
        self.water_absurd = {"flow": 1600, "return": -1270}
        self.water_good: dict[str, tuple[int, int] | None] = {"flow": None, "return": None}
        # Per valve, its real position's changes (t_ms, pct floored), for the interlock's window.
        self.history: dict[str, list[tuple[int, int]]] = {rid: [(0, 0)] for rid in rooms}

    def pct(self, rid: str) -> int:
        return self.pos[rid] // 1000

    def step(self, now_ms: int, keep_ms: int) -> None:
        """TICK_MS of physics."""
        for rid in self.rooms:
            before = self.pct(rid)
            if not self.stuck[rid]:
                goal = self.command[rid] * 1000
                rate = 100000 * TICK_MS // self.travel_ms[rid]
                if self.pos[rid] < goal:
                    self.pos[rid] = min(goal, self.pos[rid] + rate)
                elif self.pos[rid] > goal:
                    self.pos[rid] = max(goal, self.pos[rid] - rate)
            history = self.history[rid]
            if self.pct(rid) != before:
                history.append((now_ms, self.pct(rid)))
            while len(history) > 1 and history[1][0] < now_ms - keep_ms:
                del history[0]
        # The boiler's own thermostat: it lights while called and the water is 5 °C below the setpoint.
        setpoint = (self.setpoint_dc if self.setpoint_dc is not None else 0) * 1000
        if not self.relay or (self.flame and self.water >= setpoint + 30000):
            self.flame = False
        elif not self.flame and self.water <= setpoint - 50000:
            self.flame = True
        opening = sum(self.pos[rid] for rid in self.rooms) // 1000  # percent, summed
        self.water += (6000 if self.flame else 0) - opening * (self.water - 200000) // 20000 - 200
        self.water = max(self.water, 150000)
        for rid in self.rooms:
            # Fully open on 70 °C water, a room warms by about 1 °C a second (a house at 10x and more).
            heat = self.pos[rid] // 1000 * (self.water - self.temp[rid]) // 500000
            self.temp[rid] += heat - (self.temp[rid] - 50000) // 10000

    def window_pct(self, rid: str, start_ms: int) -> int:
        """The valve's largest real opening from start_ms on."""
        most = 0
        for at_ms, pct in self.history[rid]:
            if at_ms <= start_ms or pct > most:
                most = pct
        return most


class HeatHal(Hal):
    """The HAL of one node, on the plant: its room's sensor and valve, or the boiler's relay, flame and water."""

    def __init__(self, plant: Plant, node_id: str, now: Any) -> None:
        super().__init__()
        self.plant = plant
        self.node_id = node_id
        self.now = now  # the mesh clock, for week_ms
        self.call_ms = -1  # when the node last drove the call-for-heat relay

    def temperature_dc(self, name: str) -> int | None:
        plant = self.plant
        if name == "room":
            how = plant.sensor[self.node_id]
            return None if how == "stale" else 900 if how == "absurd" else plant.temp[self.node_id] // 1000
        how = plant.water_sensor[name]
        if how == "stale":
            return None
        if how == "absurd":
            return plant.water_absurd[name]
        water = plant.water // 1000
        value = water if name == "flow" else water - 100
        plant.water_good[name] = (self.now(), value)
        return value

    def valve_pct(self) -> int | None:
        return None if self.plant.feedback_lost[self.node_id] else self.plant.pct(self.node_id)

    def flame(self) -> bool | None:
        return self.plant.flame

    def week_ms(self) -> int | None:
        return (self.plant.start_week_ms + self.now()) % WEEK_MS if self.plant.clock_ok else None

    def set_valve_pct(self, pct: int) -> None:
        super().set_valve_pct(pct)
        if self.node_id in self.plant.command:
            self.plant.command[self.node_id] = self.valve_command_pct

    def set_boiler_call(self, on: bool) -> None:
        super().set_boiler_call(on)
        self.call_ms = self.now()  # the relay driven (to where it was, most ticks): the interlock counts from here
        if self.node_id == BOILER:
            plant = self.plant
            if on and not plant.relay:
                plant.relay_on_since = self.now()
            elif plant.relay and not on:
                plant.relay_off_ms = self.now()
                plant.relay_on_ms += self.now() - plant.relay_on_since
            plant.relay = on

    def set_flow_setpoint_dc(self, setpoint_dc: int | None) -> None:
        super().set_flow_setpoint_dc(setpoint_dc)
        if self.node_id == BOILER:
            self.plant.setpoint_dc = setpoint_dc


class HeatNode:
    def __init__(self, node_id: str, root: str, hal: HeatHal) -> None:
        self.node_id = node_id
        self.kind = BOILER if node_id == BOILER else "valve"
        self.root = root
        self.hal = hal
        self.boot_id = 0
        self.alive = False
        self.reset_at_ms: int | None = None
        self.role: Any = None
        self.plan: Any = None
        self.table: Any = None
        self.state: Any = None
        self.last_tick_ms = 0  # the boiler node's last tick that kept boiler.step's state
        self.rests_tick_ms = 0  # and tiers.step's
        self.boiler_heard_ms: int | None = None  # a valve node: its last boiler heartbeat accepted, since its boot
        self.had_override = False
        self.holds_seen = 0
        self.held_since_ms: int | None = None  # a valve node: since when it held a decrease at its last tick
        # runtime.Node's: the last tick ran out of memory and was skipped; the tick is between keeping its new state
        # and driving its outputs.
        self.skipping = False
        self.driving = False
        # starve(): the ticks to run out of memory, each [point, good ticks after it, ticks it waited for its point].
        self.starve: list[list[Any]] = []
        self.starve_gap = 0  # good ticks still to come before the next


class HeatMesh(Mesh):
    """The simulated heating group; the network and the event queue are Mesh's."""

    def __init__(self, seed: int, setup: dict[str, Any]) -> None:
        # Mesh.__init__ builds cars and controllers: only its network and queue are wanted here.
        self.rng = random.Random(seed)
        # Heaps cut up (starve_fault): a stream of its own, so that the houses and faults of a seed stay those of
        # before it was added.
        self.starve_rng = random.Random("starve " + str(seed))
        self.seed = seed
        self.pads = heartbeat.prepare_key(KEY)
        self.config = groupconfig.parse(setup["config"])
        self.timeout_ms = self.config["peer_timeout_ms"]
        self.wdt_ms = self.config["wdt_ms"]
        self.now_ms = 0
        self.events: list[tuple[int, int, str, Any]] = []
        self._order = 0
        self.cut: set[tuple[str, str]] = set()
        self.slow: dict[tuple[str, str], int] = {}
        self.loss_pct = 0
        self.dup_pct = 0
        self.max_delay_ms = 0
        self.delay_seen_ms = 0  # D: the largest delay a packet may have had so far
        self.events_checked = 0
        self.steps_run = 0
        self.rooms: list[str] = setup["rooms"]
        self.settings = setup["settings"]  # node -> heating.json
        self.boiler_cfg = setup["boiler"]
        self.tiers_cfg = setup["tiers"]
        self.plant = Plant(self.rng, self.rooms, setup["start_week_ms"])
        self.trail: list[str] = []
        self.mode_since: dict[str, tuple[str, int]] = {}  # room -> (mode, since ms)
        self.switch_off_since: int | None = None
        self.sent: dict[tuple[str, int, int], tuple[int, dict[str, int], bool]] = {}  # boiler beats: built, ls, hold
        self.hold_expected: dict[str, int] | None = None
        self.last_prev: dict[str, int] = {}
        self.overrun_from: int | None = None
        self.relay_tick_ms = 0  # when the boiler node last drove the relay
        self.boiler_tick_ms = 0  # its last tick, skipped or not
        self.relay_min_pct = setup["boiler"]["min_valve_open_pct"]  # the interlock's minimum at that tick
        self.tier3: dict[str, tuple[int, int]] = {}  # room -> (served from, last tick in service)
        self.tier3_done: dict[str, tuple[int, int]] = {}  # room -> (released at, served ms)
        # room -> the latest its tier-3 rest at the boiler node may end (liveness: a room past it may be opened):
        # the rest its service earned from its release, or a whole tier_3_rest_ms from the first tick after a
        # boot for a room serving or resting when the node went down (tier3_rests.json runs again in full).
        self.rest_max: dict[str, int] = {}
        self.boot_last_tick_ms = 0  # the boiler node's last tick before its latest boot that kept tiers.step's state
        self.counts = {"fired": 0, "ls_ticks": 0, "tier3_services": 0, "holds": 0, "overrides_dropped": 0,
                       "shortfall_ticks": 0, "crashes": 0, "boiler_crashes": 0, "held_decreases": 0,
                       "packets": 0, "cooldowns": 0, "interlock_stops": 0,
                       "calm_interlock_stops": 0, "worst_shortfall_ms": 0, "water_faults": 0,
                       "cooldowns_recovered": 0, "cooldowns_timed_out": 0, "water_unknown_ticks": 0,
                       "boiler_puts": 0, "cooldowns_rebooted": 0, "ls_entries": 0, "ls_entries_on_return": 0,
                       "return_unknown_firing_ticks": 0, "ls_entries_due": 0, "recent_rebooted": 0,
                       "holds_ended_override": 0, "holds_ended_timeout": 0, "holds_ended_early": 0,
                       "skipped_ticks": 0, "boiler_skips_driven": 0, "starve_halts": 0}
        self.skipped_at: dict[str, int] = {}  # "kind point" -> ticks skipped there (starve())
        self.raised = ""  # the point at which this tick ran out of memory
        self.boot_check: bool | None = None  # a boot's cooldown to check at its first boiler.step: in progress
        # The cooldown across boiler node reboots: when the last one began, for load sharing's evidence, and
        # since when the one in progress runs, as the node can count each (a boot that kept one: from its first
        # tick, the node's clock restarts); and, from a boot of the boiler node to its first tick, whether it
        # was in a cooldown at its last tick before (None: no boot waiting) and whether one was recent.
        self.cooldown_began_ms: int | None = None
        self.cooling_since_ms = 0
        self.boot_cooldown: tuple[bool, bool] | None = None
        self.disturbed_ms = 0  # the last fault (fault() sets it): loss, cuts, crashes, valves, sensors
        self.shortfall_from: int | None = None
        self.roots: list[str] = []
        self.nodes: dict[str, HeatNode] = {}  # type: ignore[assignment]
        for node_id in [BOILER, *self.rooms]:
            root = tempfile.mkdtemp(prefix="heatmesh-")
            self.roots.append(root)
            Store(root).write_json("heating.json", json.loads(json.dumps(self.settings[node_id])))
            node = HeatNode(node_id, root, HeatHal(self.plant, node_id, lambda: self.now_ms))
            self.nodes[node_id] = node
            if node_id != BOILER:
                self.mode_since[node_id] = (self.settings[node_id]["room"]["mode"], 0)
            self._start(node)
            self._schedule(setup["offsets"][node_id], "tick", node_id)
        self._schedule(50, "tick", PLANT)

    def calm(self) -> bool:
        """Whether no fault is active and none was for 2 T: every node up, a clean network, valves that follow."""
        plant = self.plant
        return (self.now_ms - self.disturbed_ms >= 2 * self.timeout_ms and not self.cut and not self.loss_pct
                and not self.max_delay_ms and not any(self.slow.values())
                and all(node.alive for node in self.nodes.values())
                and not any(plant.stuck.values()) and not any(plant.feedback_lost.values()))

    def close(self) -> None:
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)

    def note(self, text: str) -> None:
        self.trail.append("t=" + str(self.now_ms) + " " + text)
        if len(self.trail) > 4 * TRAIL:
            del self.trail[:2 * TRAIL]

    # -- nodes ----------------------------------------------------------------

    def _start(self, node: HeatNode) -> None:
        node.boot_id += 1
        node.alive = True
        node.reset_at_ms = None
        if node.kind == BOILER:
            self.boot_last_tick_ms = node.rests_tick_ms
            # What the node kept of the cooldown at its last tick (its first boot: none): its state's, as its file
            # holds it (a first tick after a boot skipped before boiler.step has taken the boot's cooldown into its
            # state and not yet into role.cooldown).
            cooling = node.role is not None and node.role.boiler_state["cooldown"] is True
            began = self.cooldown_began_ms
            recent = began is not None and node.last_tick_ms - began <= self.tiers_cfg["cooldown_lookback_ms"]
            self.boot_cooldown = (cooling, cooling or recent)
        node.plan = controller.prepare(self.config, node.node_id)
        node.table = PeerTable(self.pads, self.config["group"], node.node_id, node.plan.ids)
        node.state = controller.boot(node.plan, node.boot_id, self.now_ms, 0, 0)
        node.role = BoilerRole(node.plan, node.root) if node.kind == BOILER else ValveRole(node.plan, node.root)
        assert node.role.error == "", node.role.error
        node.boiler_heard_ms = None
        node.skipping = node.driving = False
        node.starve = []  # a new boot's heap
        node.starve_gap = 0
        node.had_override = False
        node.holds_seen = 0
        node.held_since_ms = None
        if node.kind == BOILER:
            self.hold_expected = None
            self.overrun_from = None
            self.last_prev = {}
            self.relay_tick_ms = self.now_ms
            self.relay_min_pct = self.boiler_cfg["min_valve_open_pct"]
            self.plant.water_good = {"flow": None, "return": None}  # a new channel: nothing read since the boot

    def _tick(self, node_id: str) -> None:
        self._schedule(self.now_ms + TICK_MS, "tick", node_id)
        if node_id == PLANT:
            self.plant.step(self.now_ms, self.timeout_ms + self.delay_seen_ms + self.wdt_ms + 2 * TICK_MS)
            return
        node = self.nodes[node_id]
        if not node.alive:
            return
        now = self.now_ms
        role = node.role
        before: tuple[Any, ...] = ()
        if node.kind == BOILER:
            self.boiler_tick_ms = now
            self.last_prev = dict(role.valves_state["last"])
            # The tiers' state as kept, not the role's tier_state: a tick skipped after tiers.step has kept the one
            # and not yet said the other.
            before = (role.boiler_on, role.hold, role.fsm, role.cooldown, role.boiler_state["cooldowns"],
                      role.tiers_state["state"])
        point = self._starve_point(node)
        passed: list[str] = []  # how far a tick that ran out of memory got (_arm's spies, _run_tick)
        self.raised = ""
        restore = self._arm(node, point, passed) if point else []
        whole = halt = False
        try:
            self._run_tick(node, passed)
            whole = True
        except MemoryError:
            # runtime.Node.tick_and_collect: a tick out of memory is skipped (what it kept stays kept, what it drove
            # stays driven, not fed); a second in a row, or one in the driving window, halts the node.
            if not self.raised:
                raise  # not the fault's
            halt = node.skipping or node.driving
            node.skipping = True
            self.counts["skipped_ticks"] += 1
            self.skipped_at[node.kind + " " + point] = self.skipped_at.get(node.kind + " " + point, 0) + 1
            self.disturbed_ms = now
            self.note(node_id + " tick out of memory at " + point + (": halts" if halt else ": skipped"))
        finally:
            for obj, name, held in reversed(restore):
                if held is None:
                    delattr(obj, name)  # the class's method again
                else:
                    setattr(obj, name, held)
        if whole:
            node.skipping = False
            self.steps_run += 1
        if point:
            entry = node.starve[0]
            entry[2] += 1
            if self.raised or entry[2] >= STARVE_WAIT.get(point, 5):  # run out of memory, or its point not reached
                node.starve.pop(0)
                node.starve_gap = entry[1]

        def done(part: str) -> bool:
            return whole or part in passed

        if node.kind == BOILER:
            # What its files hold (role_boiler writes each before the step's state it keeps): cooldown.json
            # boiler.step's of this tick, tier3_rests.json tiers.step's.
            if done("boiler"):
                node.last_tick_ms = now
            if done("tiers"):
                node.rests_tick_ms = now
            if not whole and done("boiler"):
                self.counts["boiler_skips_driven"] += 1  # skipped with the relay driven (to where it was, or not)
            if node.hal.call_ms == now:  # the relay driven at this tick, the tick skipped or not
                self.relay_tick_ms = now
                self.relay_min_pct = self.boiler_cfg["min_valve_open_pct"]  # in force at the tick that drove it
            self._check_boiler_tick(node, before, done)
            self._check_water(node, before, done)
        elif done("inputs"):
            self._check_valve_tick(node)
        if halt:
            self.halt(node_id)

    def _run_tick(self, node: HeatNode, passed: list[str]) -> None:
        """runtime.Node.tick, for a heating node (no meter, no departed members; the mesh read as packets come)."""
        now = self.now_ms
        role = node.role
        inputs = role.inputs(node.hal, node.table, now)
        passed.append("inputs")
        out, state = controller.step(node.plan, node.state, inputs, node.table, now)
        node.driving = True  # from the state kept to the outputs driven: a MemoryError halts
        node.state = state
        role.apply(node.hal, out, node.table, now)
        node.driving = False
        message = out["heartbeat"]
        if isinstance(message, dict):
            role.heartbeat(message, node.table, now)
            packet = heartbeat.encode(self.pads, message)
            if node.kind == BOILER:
                self.sent[(node.node_id, node.boot_id, message["seq"])] = (now, self._ls_rooms(role), role.hold)
            self._broadcast(node.node_id, packet)

    # -- out of memory ---------------------------------------------------------------

    def _targets(self, node: HeatNode) -> dict[str, tuple[Any, str]]:
        """Where each point of STARVE_POINTS runs out of memory: the function the tick calls there (a module's
        attribute, or the node's role or HAL), replaced for that tick by one that raises MemoryError."""
        role = node.role
        return {"flow": (role_boiler, "_read"), "confirmed": (valves, "confirmed_pct"),
                "boiler.step": (core_boiler, "step"), "tiers.step": (tiers, "step"), "valves.step": (valves, "step"),
                "cooldown": (role, "_keep_cooldown"), "rests": (role, "_keep_rests"), "write": (role, "_write"),
                "overrides": (role_boiler, "_overrides"),
                "room": (node.hal, "temperature_dc"), "target": (schedule, "target_at"),
                "roomctl.step": (roomctl, "step"), "next_block": (schedule, "next_block"),
                "controller.step": (controller, "step"), "driving": (role, "apply"), "heartbeat": (role, "heartbeat"),
                "send": (heartbeat, "encode")}

    def _arm(self, node: HeatNode, point: str, passed: list[str]) -> list[tuple[Any, str, Any]]:
        """This tick runs out of memory at point (if it gets there): its function raises MemoryError. On the boiler
        node, tiers.step and valves.step say when the tick gets to them (passed: "boiler", "tiers"): the role
        steps in that order, each on the state the step before kept. What to put back after the tick: (object,
        name, what it held; None: a method of its class)."""
        targets = self._targets(node)
        restore: list[tuple[Any, str, Any]] = []
        kept_before = {"tiers.step": "boiler", "valves.step": "tiers"} if node.kind == BOILER else {}

        def out_of_memory(*args: Any, **kwargs: Any) -> Any:
            if point in kept_before:
                passed.append(kept_before[point])
            self.raised = point
            raise MemoryError("heatmeshsim: out of memory at " + point)

        def replace(part: str, make: Any) -> None:
            obj, name = targets[part]
            restore.append((obj, name, vars(obj).get(name)))
            setattr(obj, name, make(getattr(obj, name)))

        def spy(real: Any, part: str) -> Any:
            def entered(*args: Any, **kwargs: Any) -> Any:
                passed.append(kept_before[part])
                return real(*args, **kwargs)

            return entered

        replace(point, lambda real: out_of_memory)
        for part in kept_before:
            if part != point:
                replace(part, lambda real, part=part: spy(real, part))
        return restore

    def _starve_point(self, node: HeatNode) -> str:
        """Where this tick of node runs out of memory ("": it does not)."""
        if not node.starve:
            return ""
        if node.starve_gap:
            node.starve_gap -= 1
            return ""
        return str(node.starve[0][0])

    def starve(self, node_id: str, points: list[str], gaps: list[int]) -> None:
        """The node's heap is cut up: its next ticks run out of memory, each at its point of STARVE_POINTS (once the
        tick gets there: a heartbeat's only at a tick that sends one), with gaps[i] good ticks after the i-th (0: the
        next one runs out too, and the node halts)."""
        node = self.nodes[node_id]
        if node.alive:
            node.starve = [[point, gap, 0] for point, gap in zip(points, gaps, strict=True)]
            node.starve_gap = 0
            self.note(node_id + " starved: " + str(points) + " gaps " + str(gaps))

    def halt(self, node_id: str) -> None:
        """runtime.Node._halt: the outputs safe at once, the watchdog no longer fed (it resets the node: crash())."""
        node = self.nodes[node_id]
        self.crash(node_id)
        node.hal.safe()
        self.counts["starve_halts"] += 1

    def _ls_rooms(self, role: BoilerRole) -> dict[str, int]:
        """The rooms whose override this tick is load sharing's (not safety's), with their tier."""
        rooms = role.tiers_state["rooms"]
        return {rid: rooms[rid]["tier"] for index, rid in enumerate(role.rooms)
                if rid in rooms and not (role.safety_bits >> index) & 1}

    def _broadcast(self, src: str, packet: bytes) -> None:
        self.delay_seen_ms = max(self.delay_seen_ms, self.max_delay_ms + max(self.slow.values(), default=0))
        self.counts["packets"] += 1
        super()._broadcast(src, packet)

    def _deliver(self, dst: str, packet: bytes) -> None:
        node = self.nodes[dst]
        if node.alive and node.table.receive(packet, self.now_ms) == "ok" and node.kind != BOILER:
            peer = node.table.peer(BOILER)
            if peer is not None and peer.heard_ms == self.now_ms:
                node.boiler_heard_ms = self.now_ms

    def _watchdog(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive or node.reset_at_ms != self.now_ms:
            return
        node.hal.safe()  # the reset: relay open, valve commanded closed
        node.reset_at_ms = None
        self.note(node_id + " watchdog reset")

    def crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if not node.alive:
            return
        node.alive = False
        node.reset_at_ms = self.now_ms + self.rng.randint(0, self.wdt_ms)
        self._schedule(node.reset_at_ms, "reset", node_id)
        self.counts["crashes"] += 1
        if node.kind == BOILER:
            self.counts["boiler_crashes"] += 1
            for rid in list(self.tier3):  # its service ends with the node (the valve drops it within T)
                self._released(rid, self.tier3[rid][1], self.tier3[rid][1] - self.tier3[rid][0])
        self.note(node_id + " hangs (reset at " + str(node.reset_at_ms) + ")")

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive or node.reset_at_ms is not None:
            return  # running, or still hung: its watchdog must fire first
        self._start(node)
        self.note(node_id + " boots, boot " + str(node.boot_id))

    # -- changes -----------------------------------------------------------------

    def set_mode(self, rid: str, mode: str, schedule: dict[str, Any] | None = None) -> None:
        """PUT /heating on the room's valve node: another mode (a manual target with manual), or schedule."""
        room = dict(self.settings[rid]["room"], mode=mode)
        if mode == "manual":
            room["manual_target_dc"] = self.rng.choice([180, 200, 220])
        if schedule is not None:
            room["schedule"] = schedule
        self.settings[rid] = {"room": room}
        Store(self.nodes[rid].root).write_json("heating.json", json.loads(json.dumps(self.settings[rid])))
        node = self.nodes[rid]
        if node.alive:
            node.role.use_heating(node.role.check_heating(self.settings[rid]))
        if mode != self.mode_since[rid][0]:
            self.mode_since[rid] = (mode, self.now_ms)
        self.note(rid + " mode " + mode + (" schedule " + str(schedule) if schedule is not None else ""))

    def put_boiler(self, rng: random.Random) -> None:
        """PUT /heating on the boiler node (if it runs): other boiler settings, room ratings and fallback
        priorities (load sharing's settings changed: it starts afresh, the tier-3 rests kept), a room left out
        or back. The tier-3 duration and rest stay: the tier-3 invariant's bounds."""
        node = self.nodes[BOILER]
        if not node.alive:
            return
        raw = json.loads(json.dumps(self.settings[BOILER]))
        boiler = raw["boiler"]
        what = rng.choice(["boiler", "rooms", "leave", "back"])
        if what == "boiler":
            for key, choices in (("min_on_ms", [0, 3000, 10000]), ("min_off_ms", [0, 3000, 10000]),
                                 ("pump_overrun_ms", [0, 3000, 10000]), ("min_valve_open_pct", [50, 100, 150])):
                if rng.random() < 0.5:
                    boiler[key] = rng.choice(choices)
        elif what == "rooms":
            for entry in raw["rooms"]:
                entry["rated_w"] = rng.choice([400, 700, 1000, 1500, 2200])
                if rng.random() < 0.5:
                    entry["load_sharing"]["fallback_priority"] = rng.randint(1, 3)
        elif what == "leave" and len(raw["rooms"]) > 2:
            raw["rooms"].pop(rng.randrange(len(raw["rooms"])))
            # A water path the boiler node counted may go with it: an interlock stop then is no fault of the
            # mesh's, and the house is not calm for 2 T.
            self.disturbed_ms = self.now_ms
        elif what == "back":
            have = [entry["id"] for entry in raw["rooms"]]
            gone = [rid for rid in self.rooms if rid not in have]
            if gone:
                rid = rng.choice(gone)
                raw["rooms"].insert(self.rooms.index(rid), {"id": rid, "rated_w": 1000,
                                                            "load_sharing": {"lookahead_ms": 3600000}})
        from loadmesh.node import heatsettings

        try:
            _ids, tiers_config, boiler_config, _valves = heatsettings.load_heating(raw)
        except FieldError as exc:  # what the node would refuse (400): nothing changes
            self.note("boiler PUT /heating refused: " + str(exc))
            return
        if tiers_config != self.tiers_cfg:
            # Load sharing starts afresh from the boiler node's last tick (tiers.reconfigured): a tier-3
            # service ends there and earns its rest, as when the boiler node hangs. That tick is the role's
            # last_ms, which a tick skipped out of memory sets too (before its first point): a service counts to
            # it, though the tick had not kept the tiers' state (a rest can only come out longer than due).
            at_ms = self.boiler_tick_ms
            for rid in list(self.tier3):
                self._released(rid, at_ms, at_ms - self.tier3[rid][0])
        if boiler_config["min_valve_open_pct"] > self.boiler_cfg["min_valve_open_pct"]:
            self.disturbed_ms = self.now_ms  # a burner on fewer openings stops on the interlock: no calm house
        answer = node.role.use_heating(node.role.check_heating(raw))
        Store(node.root).write_json("heating.json", raw)
        self.settings[BOILER] = raw
        self.boiler_cfg, self.tiers_cfg = boiler_config, tiers_config
        if self.hold_expected is not None:  # the rooms left out are no longer the boiler node's to hold
            self.hold_expected = {rid: pct for rid, pct in self.hold_expected.items() if rid in answer["rooms"]}
        self.counts["boiler_puts"] += 1
        self.note("boiler PUT /heating " + what + ": rooms " + str(answer["rooms"]) + " boiler " + str(boiler))

    def set_switch(self, on: bool) -> None:
        node = self.nodes[BOILER]
        if not node.alive:
            return
        node.role.put_load_sharing({"enabled": on})
        if not on and self.switch_off_since is None:
            self.switch_off_since = self.now_ms
        if on:
            self.switch_off_since = None
        self.note("load sharing switch " + ("on" if on else "off"))

    # -- invariants ---------------------------------------------------------------

    def fail(self, what: str) -> None:
        lines = ["seed " + str(self.seed) + ", t=" + str(self.now_ms) + " ms: " + what]
        plant = self.plant
        lines.append("  plant: relay=" + str(plant.relay) + " flame=" + str(plant.flame) + " water="
                     + str(plant.water // 1000) + " D=" + str(self.delay_seen_ms))
        for rid in self.rooms:
            node = self.nodes[rid]
            role = node.role
            lines.append("  " + rid + ": alive=" + str(node.alive) + " mode=" + str(role.room["mode"]) + " cmd="
                         + str(plant.command[rid]) + " real=" + str(plant.pct(rid)) + " stuck="
                         + str(plant.stuck[rid]) + " own=" + str(role.normal_pct) + " override="
                         + str(role.override_pct) + " held=" + str(role.held_pct) + " heard_boiler="
                         + str(node.boiler_heard_ms) + " history=" + str(plant.history[rid][-4:]))
        boiler = self.nodes[BOILER].role
        lines.append("  boiler: fsm=" + boiler.fsm + " on=" + str(boiler.boiler_on) + " confirmed="
                     + str(boiler.confirmed_pct) + " reason=" + boiler.reason + " tiers=" + boiler.tier_state
                     + " overrides=" + str(boiler.overrides))
        lines.append("  the last events:")
        lines.extend("    " + line for line in self.trail[-TRAIL:])
        raise Violation("\n".join(lines))

    def check(self) -> None:
        self.events_checked += 1
        plant = self.plant
        if plant.relay and plant.relay_on_since == self.now_ms and \
                plant.relay_on_since - plant.relay_off_ms < self.boiler_cfg["min_off_ms"]:
            self.fail("the relay went on " + str(plant.relay_on_since - plant.relay_off_ms)
                      + " ms after it went off (min_off_ms " + str(self.boiler_cfg["min_off_ms"]) + ")")
        minimum = self.relay_min_pct
        if not (plant.relay and sum(plant.pct(rid) for rid in self.rooms) < minimum):
            if self.shortfall_from is not None:
                lasted = self.now_ms - self.shortfall_from
                self.counts["worst_shortfall_ms"] = max(self.counts["worst_shortfall_ms"], lasted)
                self.shortfall_from = None
        else:
            if self.shortfall_from is None:
                self.shortfall_from = self.now_ms
            self.counts["shortfall_ticks"] += 1
            start = self.relay_tick_ms - self.timeout_ms - self.delay_seen_ms
            window = sum(plant.window_pct(rid, start) for rid in self.rooms)
            if window < minimum:
                self.fail("interlock: the relay is on with real openings " + str(window) + " % since "
                          + str(start) + " ms < " + str(minimum) + " %")

    def _check_valve_tick(self, node: HeatNode) -> None:
        role = node.role
        now = self.now_ms
        command = role.command_pct
        if not (0 <= command <= 100 and command % 10 == 0):
            self.fail(node.node_id + " commands " + str(command) + " %")
        if role.holds != node.holds_seen:
            node.holds_seen = role.holds
            self.counts["held_decreases"] += 1
        if role.held_pct is not None and now - role.held_since_ms >= self.timeout_ms:
            self.fail(node.node_id + " holds a decrease since " + str(role.held_since_ms))
        # How a hold ended: the boiler node's override, its own time (peer_timeout_ms), or before it (the boiler
        # node off and not blocked, or its answers heard without a hold; a further decrease restarts the time).
        if node.held_since_ms is not None and role.held_pct is None:
            if role.override_pct is not None:
                self.counts["holds_ended_override"] += 1
            elif now - node.held_since_ms >= self.timeout_ms:
                self.counts["holds_ended_timeout"] += 1
            else:
                self.counts["holds_ended_early"] += 1
        node.held_since_ms = role.held_since_ms if role.held_pct is not None else None
        heard = node.boiler_heard_ms
        had, node.had_override = node.had_override, role.override_pct is not None
        if heard is None or now - heard >= self.timeout_ms:
            if had:
                self.counts["overrides_dropped"] += 1
            if role.override_pct is not None or command != role.normal_pct:
                self.fail(node.node_id + " has not heard the boiler node since " + str(heard) + " yet commands "
                          + str(command) + " % (own " + str(role.normal_pct) + ")")
            return
        if role.override_pct is None:
            return
        peer = node.table.peer(BOILER)
        sent = self.sent.get((BOILER, peer.heartbeat["boot_id"], peer.heartbeat["seq"]))
        assert sent is not None
        built_ms, ls_rooms, hold = sent
        if now - built_ms >= self.timeout_ms + self.delay_seen_ms + TICK_MS:
            self.fail(node.node_id + " applies an override built at " + str(built_ms))
        mode, since = self.mode_since[node.node_id]
        if node.node_id in ls_rooms and mode != "auto" and \
                since <= now - 2 * (self.timeout_ms + self.delay_seen_ms + TICK_MS):
            self.fail(node.node_id + " opened by load sharing, " + mode + " since " + str(since))
        if hold and command != role.override_pct:
            self.fail(node.node_id + " commands " + str(command) + " % under the boiler's hold of "
                      + str(role.override_pct) + " %")

    def _water(self, name: str) -> int | None:
        """The flow or return reading the boiler node may use now: the last good one it was given since its
        boot, younger than WATER_HOLD_MS (its sensor channel's hold), else none."""
        good = self.plant.water_good[name]
        return good[1] if good is not None and self.now_ms - good[0] < WATER_HOLD_MS else None

    def _check_water(self, node: HeatNode, before: tuple[Any, ...], done: Any) -> None:
        """A cooldown (the setpoint that keeps the burner from relighting) begins only on a hot reading and ends
        only on good readings of both, both cooled, or after cooldown_max_ms: an unknown flow or return is
        never taken as hot or as cooled, and an absurd one never used. A cooldown in progress at a reset of the
        boiler node goes on after its boot (its maximum time counted from its first tick); none begins there
        otherwise. Load sharing enters only on evidence: a cooldown in progress or begun within
        cooldown_lookback_ms (a boot that kept one counts as its beginning), or the boiler on with a good return
        reading above the setpoint less return_temp_risk_delta_dc: an unknown return is no evidence."""
        role = node.role
        cfg = self.boiler_cfg
        now = self.now_ms
        was_cooldown, was_cooldowns, was_tier = before[3:]
        flow, back = self._water("flow"), self._water("return")
        if flow is None or back is None:
            self.counts["water_unknown_ticks"] += 1
        setpoint = cfg["flow_setpoint_dc"]
        limit = max(setpoint - cfg["recovery_delta_dc"], cfg["recovery_min_dc"])
        cooled = flow is not None and back is not None and flow <= limit and back <= limit
        if self.boot_cooldown is not None:  # the first tick since a boot (the role takes the boot's first, always)
            cooling, carried = self.boot_cooldown
            self.boot_cooldown = None
            # Checked at the first tick that keeps boiler.step's state: this one, unless skipped before.
            self.boot_check = cooling
            if cooling:
                self.counts["cooldowns_rebooted"] += 1
                self.cooling_since_ms = now
            if carried:
                self.cooldown_began_ms = now
                if not cooling:
                    self.counts["recent_rebooted"] += 1
            for rid in self.rest_max:  # in the node's tier3_rests.json at its last tick: rests again in full
                if self.rest_max[rid] >= self.boot_last_tick_ms:
                    self.rest_max[rid] = now + self.tiers_cfg["tier_3_rest_ms"]
        if not done("boiler"):
            return  # skipped before it: its state and the setpoint as they were
        if self.boot_check is not None:
            cooling = self.boot_check
            self.boot_check = None
            if cooling and not role.cooldown and not cooled:
                self.fail("a cooldown in progress at the boiler node's reset ended at its boot with flow "
                          + str(flow) + " and return " + str(back) + " (good ones)")
            if role.cooldown and not cooling and role.boiler_state["cooldowns"] == was_cooldowns:
                self.fail("a cooldown at the boiler node's boot, none in progress at its reset")
        if role.boiler_state["cooldowns"] != was_cooldowns:
            hot_flow = flow is not None and flow >= setpoint + cfg["flow_overheat_margin_dc"]
            hot_return = back is not None and back >= setpoint - cfg["return_high_delta_dc"]
            if not (hot_flow or hot_return):
                self.fail("a cooldown began with flow " + str(flow) + " and return " + str(back) + " (good ones)")
            self.cooldown_began_ms = self.cooling_since_ms = now
        if was_cooldown and not role.cooldown:
            if cooled:
                self.counts["cooldowns_recovered"] += 1
            elif now - self.cooling_since_ms >= cfg["cooldown_max_ms"]:
                self.counts["cooldowns_timed_out"] += 1
            else:
                self.fail("a cooldown ended with flow " + str(flow) + " and return " + str(back)
                          + " (good ones), " + str(now - self.cooling_since_ms) + " ms in")
        expected = cfg["cooldown_setpoint_dc"] if role.cooldown else setpoint
        if role.setpoint_dc != expected or (role.rooms and self.plant.setpoint_dc != expected):
            self.fail("the setpoint is " + str(role.setpoint_dc) + " (drives " + str(self.plant.setpoint_dc)
                      + "), cooldown " + str(role.cooldown))
        if not done("tiers"):
            return  # skipped before it: load sharing as it was
        tier = role.tiers_state["state"]  # as kept (a tick skipped after tiers.step has not said it yet)
        # Load sharing's entry (out of INACTIVE onto the cascade) and its evidence of cycling.
        began = self.cooldown_began_ms
        recent = began is not None and 0 <= now - began <= self.tiers_cfg["cooldown_lookback_ms"]
        hot = role.boiler_on and back is not None and \
            back > setpoint - self.tiers_cfg["return_temp_risk_delta_dc"]
        if role.boiler_on and back is None and tier not in tiers.LADDER:
            self.counts["return_unknown_firing_ticks"] += 1
        if tier in tiers.LADDER and was_tier not in tiers.LADDER:
            self.counts["ls_entries"] += 1
            if not (recent or role.cooldown or hot):
                self.fail("load sharing entered (" + tier + ") with no evidence of cycling: last cooldown "
                          + str(began) + ", none in progress, boiler on " + str(role.boiler_on) + ", return "
                          + str(back) + " (a good one)")
            if hot and not (recent or role.cooldown):
                self.counts["ls_entries_on_return"] += 1
        # And it does enter on that evidence: in the cascade after the first tick whose inputs meet the entry's
        # conditions (after the next one if this tick ended an activation: exit C, its last rooms calling on
        # their own, runs no cascade), if a room is there to open (see _entry_due).
        if (recent or role.cooldown or hot) and was_tier not in tiers.LADDER:
            due = self._entry_due(node)
            if due:
                self.counts["ls_entries_due"] += 1
                if tier not in tiers.LADDER:
                    self.fail("load sharing did not enter (" + tier + ") on " + due + ", last cooldown "
                              + str(began) + ", cooldown " + str(role.cooldown) + ", boiler on "
                              + str(role.boiler_on) + ", return " + str(back))

    def _released(self, rid: str, at_ms: int, served_ms: int) -> None:
        """A room's tier-3 service ended at at_ms after served_ms: it rests tier_3_rest_ms x served / maximum."""
        max_ms = self.tiers_cfg["tier_3_max_duration_ms"]
        self.tier3_done[rid] = (at_ms, served_ms)
        del self.tier3[rid]
        self.rest_max[rid] = at_ms + self.tiers_cfg["tier_3_rest_ms"] * min(served_ms, max_ms) // max_ms

    def _entry_due(self, node: HeatNode) -> str:
        """What load sharing's entry needs besides the evidence, on the rooms as the boiler node heard them this
        tick (the reports of valve nodes online): the switch on and load sharing enabled, a room calling, the
        calling rooms (those with a temperature) taking less than min_calling_capacity_w at the normal setpoint,
        and a room tier 3 may open (auto, a temperature, not calling, a fallback priority, past the longest its
        rest may last). The last is sufficient, not necessary: tiers 1 and 2 may open a room when it fails (a
        block due within the window), which this does not foresee. The conditions in words, or "" if one fails."""
        cfg = self.tiers_cfg
        if self.switch_off_since is not None or not cfg["enabled"]:
            return ""
        table = node.table
        now = self.now_ms
        mean_dc = radiator.mean_water_dc(self.boiler_cfg["flow_setpoint_dc"], cfg["system_delta_t_dc"])
        calling: list[str] = []
        calling_w = 0
        spare = ""
        for entry in cfg["rooms"]:
            rid = entry["id"]
            peer = table.peer(rid) if table.online(rid, now, self.timeout_ms) else None
            room = peer.heartbeat.get("room") if peer is not None else None
            if not isinstance(room, dict):
                continue
            temp_dc = room["temp_dc"]
            if room["stale"] is True or temp_dc is None or \
                    room["temp_age_ms"] + (table.age_ms(rid, now) or 0) > cfg["sensor_stale_ms"]:
                continue
            if room["calling"] is True:
                calling.append(rid)
                calling_w += radiator.capacity_w(entry["rated_w"], entry["exponent_permille"], mean_dc - temp_dc)
            elif room["mode"] == "auto" and entry["fallback_priority"] is not None and \
                    now >= self.rest_max.get(rid, 0) and not spare:
                spare = rid
        if not calling or calling_w >= cfg["min_calling_capacity_w"] or not spare:
            return ""
        return "calling " + ",".join(calling) + " " + str(calling_w) + " W, " + spare + " to open"

    def _check_boiler_tick(self, node: HeatNode, before: tuple[Any, ...], done: Any) -> None:
        """The boiler node's tick, as far as it went (done(part): a tick skipped out of memory kept what its role
        kept before that point, and is checked on that; the next tick on the rest)."""
        role = node.role
        now = self.now_ms
        was_on, was_hold, was_fsm = before[:3]
        if done("boiler"):
            self._check_boiler_step(role, was_on, was_hold, was_fsm)
        if done("inputs"):
            for pair in role.overrides:
                if not (0 <= pair[1] <= 100 and pair[1] % 10 == 0) or pair[0] not in role.rooms:
                    self.fail("override " + str(pair) + " (rooms " + str(role.rooms) + ")")
            if self.hold_expected is not None:
                given = dict(role.overrides)
                for rid, pct in self.hold_expected.items():
                    if given.get(rid) != pct:
                        self.fail("the hold lost " + rid + " at " + str(pct) + " %: overrides " + str(role.overrides))
        if not done("tiers"):
            return
        # Load sharing: never a room off or manual (as the boiler can know it), within the caps, off with the switch.
        rooms = role.tiers_state["rooms"]
        tier = role.tiers_state["state"]
        if rooms:
            self.counts["ls_ticks"] += 1
        if not role.switch and (rooms or tier != "DISABLED"):
            self.fail("load sharing runs with the switch off: " + tier + " " + str(sorted(rooms)))
        for rid in sorted(rooms):
            entry = rooms[rid]
            if rid not in role.rooms:
                self.fail("load sharing opens " + rid + ", left out of the boiler node's rooms")
            mode, since = self.mode_since[rid]
            if mode != "auto" and since <= now - self.timeout_ms - self.delay_seen_ms:
                self.fail("load sharing opens " + rid + ", " + mode + " since " + str(since))
            cap = self.tiers_cfg["tier_" + str(entry["tier"]) + "_max_pct"]
            if not (0 < entry["pct"] <= cap and entry["pct"] % 10 == 0):
                self.fail("load sharing opens " + rid + " at " + str(entry["pct"]) + " % (tier " + str(entry["tier"])
                          + ", cap " + str(cap) + ")")
        # Tier 3: at most the maximum at a stretch, then the rest in proportion, across reboots.
        max_ms = self.tiers_cfg["tier_3_max_duration_ms"]
        rest_ms = self.tiers_cfg["tier_3_rest_ms"]
        for rid in self.rooms:
            serving = rid in rooms and rooms[rid]["tier"] == 3
            if serving and rid not in self.tier3:
                released = self.tier3_done.get(rid)
                if released is not None and now < released[0] + rest_ms * min(released[1], max_ms) // max_ms - TICK_MS:
                    self.fail(rid + " back in tier 3 at " + str(now) + ", released at " + str(released[0])
                              + " after " + str(released[1]) + " ms of service")
                self.tier3[rid] = (now, now)
                self.counts["tier3_services"] += 1
                self.note(rid + " tier 3")
            elif serving:
                self.tier3[rid] = (self.tier3[rid][0], now)
                if now - self.tier3[rid][0] > max_ms:
                    self.fail(rid + " in tier 3 since " + str(self.tier3[rid][0]))
            elif rid in self.tier3:
                self._released(rid, now, now - self.tier3[rid][0])

    def _check_boiler_step(self, role: BoilerRole, was_on: bool, was_hold: bool, was_fsm: str) -> None:
        """What boiler.step decided (kept, and the relay driven, before the rest of the tick)."""
        now = self.now_ms
        if role.boiler_on and not was_on:
            self.counts["fired"] += 1
            self.note("boiler fires, confirmed " + str(role.confirmed_pct))
        if was_on and not role.boiler_on:
            self.note("boiler stops: " + role.reason)
            if role.reason.startswith("off at once"):
                self.counts["interlock_stops"] += 1
                if self.calm():
                    self.counts["calm_interlock_stops"] += 1
                    self.note("an interlock stop with no fault for " + str(self.now_ms - self.disturbed_ms) + " ms")
        # The hold: pending-off and pump overrun keep the openings last commanded before it (checked on the
        # overrides of each tick that makes them).
        if role.hold and not was_hold:
            # The rooms it still has (a PUT /heating may have left one out since its tick before).
            self.hold_expected = {rid: pct for rid, pct in self.last_prev.items() if pct > 0 and rid in role.rooms}
            self.counts["holds"] += 1
        if not role.hold:
            self.hold_expected = None
        if role.fsm == "PUMP_OVERRUN" and was_fsm != "PUMP_OVERRUN":
            self.overrun_from = now
        if self.overrun_from is not None:
            if role.fsm == "ON":
                self.overrun_from = None
            elif now - self.overrun_from < self.boiler_cfg["pump_overrun_ms"] and role.fsm != "PUMP_OVERRUN":
                self.fail("pump overrun ended after " + str(now - self.overrun_from) + " ms: " + role.fsm)
            elif role.fsm != "PUMP_OVERRUN":
                self.overrun_from = None
        if "cooldown:" in role.reason:
            self.counts["cooldowns"] += 1


# -- scenarios ------------------------------------------------------------------------


def make_schedule(rng: random.Random, minute: int) -> dict[str, Any]:
    """A schedule with, mostly, one block starting within 150 minutes of minute (of the week): tiers 1 and 2."""
    blocks = []
    if rng.random() < 0.7:
        start = (minute + rng.randint(1, 150)) % (7 * 1440)
        day, start_min = divmod(start, 1440)
        end_min = min(1440, start_min + rng.randint(30, 120))
        if end_min > start_min:
            blocks.append({"days": [day], "start_min": start_min, "end_min": end_min,
                           "target_dc": rng.choice([200, 210, 220])})
    return {"default_target_dc": rng.choice([160, 180, 200]), "blocks": blocks}


def make_setup(rng: random.Random, water_rng: random.Random) -> dict[str, Any]:
    """A house: 3 to 6 valve nodes and the boiler node, their settings, the group config (water_rng: the
    cooldown's maximum, drawn apart so that the houses and faults drawn from rng stay those of before)."""
    count = rng.randint(3, 6)
    rooms = ["r" + str(number) for number in range(count)]
    start_week_ms = rng.randrange(WEEK_MS // 60000) * 60000
    minute = start_week_ms // 60000
    settings: dict[str, Any] = {}
    room_entries = []
    for rid in rooms:
        mode = rng.choice(["auto", "auto", "auto", "manual", "off"])
        room: dict[str, Any] = {"mode": mode, "schedule": make_schedule(rng, minute)}
        if mode == "manual":
            room["manual_target_dc"] = rng.choice([180, 200, 220])
        settings[rid] = {"room": room}
        entry: dict[str, Any] = {"id": rid, "rated_w": rng.choice([400, 700, 1000, 1500, 2200])}
        sharing: dict[str, Any] = {"lookahead_ms": rng.choice([1800000, 3600000])}
        if rng.random() < 0.6:
            sharing["fallback_priority"] = rng.randint(1, 3)
        entry["load_sharing"] = sharing
        room_entries.append(entry)
    boiler = {"min_on_ms": rng.choice([0, 3000, 10000]), "min_off_ms": rng.choice([0, 3000, 10000]),
              "pump_overrun_ms": rng.choice([0, 3000, 10000]), "cooldown_max_ms": water_rng.choice([10000, 20000]),
              "min_valve_open_pct": rng.choice([50, 100, 100, 150])}
    tiers = {"enabled": True, "min_activation_duration_ms": rng.choice([0, 10000, 30000]),
             "tier_3_max_duration_ms": rng.choice([5000, 20000]), "tier_3_rest_ms": 60000,
             "cooldown_lookback_ms": 120000}
    settings[BOILER] = {"rooms": room_entries, "boiler": boiler, "load_sharing": tiers}
    from loadmesh.node import heatsettings

    _ids, tiers_config, boiler_config, _valves = heatsettings.load_heating(settings[BOILER])
    heartbeat_ms = 500
    timeout_ms = rng.choice([1500, 3000])
    config = {
        "group": "house", "version": 1, "updated_at": 1, "origin": "test", "key_id": "house",
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": [25000], "safety_pct": 100},
        "circuits": [], "heartbeat_ms": heartbeat_ms, "peer_timeout_ms": timeout_ms,
        "wdt_ms": rng.choice([500, 1500]),
        "members": [{"id": node, "kind": BOILER if node == BOILER else "valve", "phases": "L1", "min_ma": 0,
                     "max_ma": 0, "step_ma": 1000, "priority": 0, "mode": "off"} for node in [BOILER, *rooms]],
    }
    offsets = {node: rng.randint(0, 9) * 10 for node in [BOILER, *rooms]}
    return {"config": config, "rooms": rooms, "settings": settings, "boiler": boiler_config, "tiers": tiers_config,
            "offsets": offsets, "start_week_ms": start_week_ms}


CALM = ("run", "run", "temp", "temp", "mode", "schedule", "switch")  # what users and the weather do, no fault


def water_fault(mesh: HeatMesh, rng: random.Random) -> None:
    """The boiler node's flow or return sensor fresh again, stale (its reads fail) or absurd."""
    plant = mesh.plant
    name = rng.choice(["flow", "return"])
    plant.water_sensor[name] = rng.choice(["fresh", "stale", "stale", "absurd"])
    plant.water_absurd[name] = rng.choice([1600, -1270, 32767])
    mesh.counts["water_faults"] += 1
    mesh.disturbed_ms = mesh.now_ms
    mesh.note(name + " sensor " + plant.water_sensor[name]
              + (" " + str(plant.water_absurd[name]) if plant.water_sensor[name] == "absurd" else ""))


def starve_fault(mesh: HeatMesh, rng: random.Random) -> None:
    """A node's heap cut up for a while (the boiler node in half the cases): 1 to 6 of its ticks run out of memory,
    each at a point of STARVE_POINTS drawn apart, 1 to 5 good ticks between them, or (1 in 20) none: a second in a
    row, which halts it as one in the driving window does. Or the boiler node's next file write (3 in 10 of its)."""
    node_id = BOILER if rng.random() < 0.5 else rng.choice(mesh.rooms)
    if node_id == BOILER and rng.random() < 0.3:
        # Or its next file write (a cooldown begun or ended, a tier-3 service begun or ended, a rest over) runs out
        # of memory, and half the time the tick after it too: the node halts, and its reset reads its files.
        mesh.starve(BOILER, ["write", "flow"], [0 if rng.random() < 0.5 else 1, 1])
        return
    # The driving window a third as often as another point: it allocates little (runtime.Node.tick).
    points = [point for point in STARVE_POINTS[mesh.nodes[node_id].kind] for _ in range(1 if point == "driving" else 3)]
    count = rng.randint(1, 6)
    mesh.starve(node_id, [rng.choice(points) for _ in range(count)],
                [0 if rng.random() < 0.05 else rng.randint(1, 5) for _ in range(count)])


def fault(mesh: HeatMesh, rng: random.Random, calm: bool = False) -> int:
    """One random change or fault (calm: a change of CALM), noted in the trail; how long to run after it (ms).
    Not calm, one in five also starves a node (starve_fault), from a stream of its own."""
    if not calm and mesh.starve_rng.random() < 0.2:
        starve_fault(mesh, mesh.starve_rng)
    nodes = [BOILER, *mesh.rooms]
    rid = rng.choice(mesh.rooms)
    plant = mesh.plant
    kind = rng.choice(["run", "run", "run", "network", "link", "slow", "partition", "crash", "crash", "restart",
                       "restart", "stick", "unstick", "feedback", "sensor", "temp", "temp", "mode", "switch",
                       "schedule", "clock", "heal"] if not calm else CALM)
    if kind == "network":
        mesh.loss_pct = rng.choice([0, 0, 10, 30, 60, 100])
        mesh.dup_pct = rng.choice([0, 20])
        mesh.max_delay_ms = rng.choice([0, 50, 300, 1000])
        mesh.note("network loss " + str(mesh.loss_pct) + " % dup " + str(mesh.dup_pct) + " % delay "
                  + str(mesh.max_delay_ms))
    elif kind == "link":
        src, dst = rng.sample(nodes, 2)
        up = rng.random() < 0.5
        mesh.set_link(src, dst, up)
        if rng.random() < 0.5:
            mesh.set_link(dst, src, up)
        mesh.note("link " + src + "->" + dst + (" up" if up else " cut"))
    elif kind == "slow":
        src, dst = rng.sample(nodes, 2)
        mesh.slow[(src, dst)] = rng.choice([0, 300, 800])
        mesh.note("link " + src + "->" + dst + " slow " + str(mesh.slow[(src, dst)]))
    elif kind == "partition":
        side = set(rng.sample(nodes, rng.randint(1, len(nodes) - 1)))
        for a in nodes:
            for b in nodes:
                if (a in side) != (b in side):
                    mesh.set_link(a, b, False)
        mesh.note("partition " + str(sorted(side)))
    elif kind == "crash":
        mesh.crash(rng.choice(nodes))
    elif kind == "restart":
        mesh.restart(rng.choice(nodes))
    elif kind == "stick":
        plant.stuck[rid] = True
        mesh.note(rid + " valve sticks at " + str(plant.pct(rid)))
    elif kind == "unstick":
        plant.stuck[rid] = False
        mesh.note(rid + " valve follows")
    elif kind == "feedback":
        plant.feedback_lost[rid] = not plant.feedback_lost[rid]
        mesh.note(rid + " feedback " + ("lost" if plant.feedback_lost[rid] else "back"))
    elif kind == "sensor":
        plant.sensor[rid] = rng.choice(["fresh", "fresh", "stale", "absurd"])
        mesh.note(rid + " sensor " + plant.sensor[rid])
    elif kind == "temp":
        plant.temp[rid] = rng.choice([60, 150, 180, 195, 205, 215, 230]) * 1000
        mesh.note(rid + " room at " + str(plant.temp[rid] // 1000))
    elif kind == "mode":
        mesh.set_mode(rid, rng.choice(["auto", "auto", "manual", "off"]))
    elif kind == "schedule":
        minute = (plant.start_week_ms + mesh.now_ms) % WEEK_MS // 60000
        mesh.set_mode(rid, mesh.settings[rid]["room"]["mode"], make_schedule(rng, minute))
    elif kind == "switch":
        mesh.set_switch(rng.random() < 0.6)
    elif kind == "clock":
        plant.clock_ok = not plant.clock_ok
        mesh.note("time of week " + ("set" if plant.clock_ok else "unknown"))
    elif kind == "heal":
        mesh.cut.clear()
        mesh.slow.clear()
        mesh.loss_pct = mesh.dup_pct = 0
        for node_id in nodes:
            mesh.restart(node_id)
        mesh.note("healed")
    if kind not in ("run", "temp", "mode", "schedule", "switch", "clock"):
        mesh.disturbed_ms = mesh.now_ms
    return rng.choice([0, 100, 300, 600, 1000, 2000, 4000, 8000])


def _cooling(mesh: HeatMesh) -> bool:
    """Whether the boiler node runs and is in a cooldown."""
    boiler = mesh.nodes[BOILER]
    return boiler.alive and boiler.role.cooldown is True


def _recently_cooled(mesh: HeatMesh) -> bool:
    """Whether the boiler node runs, is in no cooldown and one ended within cooldown_lookback_ms of its beginning:
    the evidence of cycling its cooldown.json keeps as "recent" across a reset."""
    boiler = mesh.nodes[BOILER]
    if not boiler.alive or boiler.role.cooldown is True:
        return False
    last = boiler.role.boiler_state["last_cooldown_ms"]
    return last is not None and mesh.now_ms - last <= mesh.tiers_cfg["cooldown_lookback_ms"] // 2


def run_scenario(seed: int, steps: int, calm: bool = False) -> HeatMesh:
    """One house from seed, steps random faults (calm: changes) each followed by a run; Violation names the seed."""
    rng = random.Random(seed)
    water_rng = random.Random("water " + str(seed))  # apart: the houses and faults of rng stay those of before
    put_rng = random.Random("put " + str(seed))  # the same: PUT /heating on the boiler node, calm or not
    reset_rng = random.Random("reset " + str(seed))  # the same: the boiler node reset in a cooldown
    recent_rng = random.Random("recent " + str(seed))  # the same: reset after one, within the lookback
    mesh = HeatMesh(seed, make_setup(rng, water_rng))
    try:
        mesh.run_until(2000)
        for _ in range(steps):
            if not calm and water_rng.random() < 0.15:
                water_fault(mesh, water_rng)
            if put_rng.random() < 0.06:
                mesh.put_boiler(put_rng)
            end_ms = mesh.now_ms + fault(mesh, rng, calm)
            # The boiler node hangs in a cooldown, if one comes before the next fault, and boots again after its
            # watchdog: the cooldown across a reset (cooldowns are few, and other crashes rarely hit one).
            if not calm and reset_rng.random() < 0.3 and mesh.run_until(end_ms, _cooling) is not None:
                mesh.crash(BOILER)
                reset_ms = mesh.nodes[BOILER].reset_at_ms
                assert reset_ms is not None
                mesh._schedule(reset_ms + reset_rng.choice([0, 500, 3000]), "reboot", BOILER)
            # Or after a cooldown, within the lookback: load sharing's evidence (a recent cooldown) must come back
            # with the node, and it must enter on it (the liveness check).
            if not calm and recent_rng.random() < 0.3 and mesh.run_until(end_ms, _recently_cooled) is not None:
                mesh.crash(BOILER)
                reset_ms = mesh.nodes[BOILER].reset_at_ms
                assert reset_ms is not None
                mesh._schedule(reset_ms + recent_rng.choice([0, 500, 3000]), "reboot", BOILER)
            mesh.run_until(end_ms)
    finally:
        mesh.close()
    return mesh
