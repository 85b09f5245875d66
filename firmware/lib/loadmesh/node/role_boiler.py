"""The boiler role: boiler state machine, load sharing and valve arbitration, from the valve nodes' heartbeats."""

from loadmesh.core import boiler, sensor, tiers, valves
from loadmesh.core.controller import Plan
from loadmesh.core.errors import FieldError
from loadmesh.core.peers import PeerTable, refill

from .hal import Hal
from .roles import Role, forget

# Every tick, the boiler node's part of the heating chain (docs/heating.md,
# "Where each part runs"), in heating.step's order:
#   1. each configured room from its valve node's last heartbeat ("room"
#      section), only if that node is online (heard within peer_timeout_ms);
#      a silent valve node is the worst case: its valve counts as closed, its
#      room neither calls nor can be opened (mode "off" for load sharing);
#      a room whose sensor is stale or absurd (the valve node says so) has no
#      temperature and is left out of load sharing; so has one whose sensor
#      its valve node has not read yet since its boot ("unread": its first
#      second or so), which is no sensor fault: named apart, not counted;
#   2. boiler.step on the confirmed openings: each valve's feedback, up to
#      what the valve node commands now and what this node last decided for
#      it (valves.confirmed_pct): the interlock;
#   3. tiers.step (load sharing) on the boiler's state of this tick;
#   4. valves.step: the arbitration of safety (hold, interlock raise,
#      make-before-break) > load sharing > normal. Make-before-break lets a
#      valve close only as far as the openings confirmed elsewhere allow; of
#      a room whose valve node commands more than its own opening it counts
#      only that own opening (lasting_pct) until the node has done so for 2 x
#      peer_timeout_ms. Such a command is this node's override, or a
#      decrease the valve node holds until this node answers (role_valve.py),
#      and the report does not say which: a held decrease ends without
#      notice (at most peer_timeout_ms after it began), and an override this
#      node has just sent may not be heard yet. Counting it, a valve was let
#      close while the held one went back to its own opening: the confirmed
#      openings fell short and the burner stopped on the interlock with
#      nothing at fault (tests/test_heating_mesh.py, the calm scenario of
#      seed 8). The interlock itself counts the held command, as before.
# The call-for-heat relay follows boiler_on, the flow setpoint output (where
# the boiler has one, hwconfig "setpoint") the state machine's setpoint: the
# cooldown setpoint while it cools down, so that the burner cannot relight;
# not driven without rooms. Both are driven in inputs(), at once after
# boiler.step's state is kept, and again (the same) in apply(): a tick that
# runs out of memory later on is skipped (runtime.Node) with the relay
# already where the kept state says it went, at the tick it says (its minimum
# on and off times count from then). What else that tick left kept holds
# without its heartbeat, as after a heartbeat lost (docs/firmware.md, "A
# tick out of memory"). The files below that keep a state across a reset
# (cooldown.json, tier3_rests.json) are written before the step's new state
# is kept, not at the end of the tick: a MemoryError in between keeps
# neither, so a tick skipped later on, and a halt at the next (two in a row)
# and its reset, never find the file behind what the node drove. Written
# last, a cooldown begun at a skipped tick, its setpoint driven down, was
# forgotten by such a reset (tests/heatmeshsim.py found it). The heartbeat's heating section
# carries the tier state and, per room, the command of every room whose
# arbitration source is safety or load sharing (the overrides the valve nodes
# apply while they hear this node); the boiler section carries the state
# machine (state, on, hold, cooldown, setpoint).
#
# The settings: heating.json (heatsettings, let go between uses with the
# valve node's modules it imports: Role.occasional). Missing or refused: no
# rooms, so the boiler never fires; /status says why. PUT /heating replaces them
# from the next tick. The boiler's state machine and the valve arbitration
# carry on (its minimum times, pump overrun and held valves hold across the
# change); load sharing starts afresh if its own settings changed (its rooms
# leave at once: a decrease; entry needs new evidence).
#
# The runtime switch (PUT /load_sharing {"enabled": false}, kept in
# load_sharing.json so that it holds across a reboot) is tiers' "enabled"
# input: load sharing runs only while both it and heating.json's
# load_sharing.enabled are true, and stops at once (no minimum duration) when
# either goes false. Missing: on (heating.json decides). Corrupt: off, and
# /status says so: a switch someone turned off is not turned back on by a
# damaged file.
#
# Tier-3 rests are kept across a reboot in tier3_rests.json: per room, the
# rest still due when the file was written; at the first tick after a boot
# they run again from then. Tier 3 may open a fallback room for at most
# tier_3_max_duration_ms and then rests it; a boiler node reset would
# otherwise forget the rests, and the same room could be opened for another
# full duration at once. The monotonic clock restarts at boot and the time
# spent down is unknown, so a rest counts again in full from the boot (it can
# only be longer than due, never shorter), and a room in tier-3 service at the
# reset rests the full tier_3_rest_ms (its valve node dropped the opening
# within peer_timeout of the reset). The file is written only when a room
# starts or ends a tier-3 service or a rest ends: a few times an hour at
# most, never once per tick (flash wear), and not at a boot: the rests read
# are what the first tick finds. Missing or damaged: no rests; a damaged file,
# or one holding what is not a rest (a room no longer configured: the other
# rooms' rests are kept), is written whole at the first tick. The
# store module is imported for the write and let go after it; a write that
# finds no room in the heap for both is tried again at the next tick.
#
# A boot is taken as the moment the relay went off (it is off from power-up
# until the first tick): the boiler waits its minimum off time before it may
# fire. A node that resets while the burner runs (a watchdog, a brown-out,
# over and over in the worst case) would otherwise relight it within a
# second of every reset.
#
# The cooldown is kept across a reboot in cooldown.json, in the same way: the
# file says whether a cooldown is in progress ("cooling"), or ended but began
# within cooldown_lookback_ms ("recent": load sharing's evidence of cycling),
# or neither ("none"). At the first tick after a boot a cooldown in progress
# goes on, begun then (its setpoint held until good readings of flow and
# return have cooled, or cooldown_max_ms from the boot), and a recent one
# counts as begun then: the clock restarts and the time spent down is
# unknown, so each can only last longer than due, never shorter. A node that
# resets in a cooldown (the water too hot to take the heat) would otherwise
# drive the full setpoint at once and the burner relight into the same small
# load, and load sharing would lose its evidence. Written only when that
# state changes (three times a cooldown at most, never once per tick);
# missing: none; damaged: a cooldown in progress (it ends at the first good,
# cooled readings), the worst case, and written at the first tick with what
# the node then holds, so that the next boot reads a whole file again (a
# damaged file left as it was read as a cooldown at every boot, until the
# cooldown's state next changed). /status's cooldown_file says what the boot
# read (ok, missing, corrupt), for the boot's life.

WATER_LOW_DC = -400  # a flow or return reading outside -40..150 °C is absurd
WATER_HIGH_DC = 1500
WATER_HOLD_MS = 10000
RESTS = "tier3_rests.json"
COOLDOWN = "cooldown.json"
_COOLING = ("none", "recent", "cooling")  # cooldown.json's states, by the index the role keeps
_SOURCES = ("safety", "load_sharing")  # the layers that override a valve node's own control
SWITCH = "load_sharing.json"
# A room whose valve node is not heard, for tiers.step and valves.step alike (neither changes its inputs).
_SILENT = {"mode": "off", "temp_dc": None, "temp_age_ms": 0, "calling": False, "next_start_in_ms": None,
           "next_target_dc": None, "normal_pct": 0, "correction_pct": None, "confirmed_pct": 0}


class BoilerRole(Role):
    """The boiler: its call for heat, and the load-sharing decisions the valve nodes follow."""

    kind = "boiler"
    occasional = ("loadmesh.node.heatsettings", "loadmesh.core.roomctl", "loadmesh.core.schedule")

    def __init__(self, plan: Plan, root: str = "") -> None:
        super().__init__(plan)
        self.root = root
        self.error = ""
        self.rooms, self.tiers_config, self.boiler_config, self.valves_config = _read_heating(root, self)
        self.switch, self.switch_file = _read_switch(root)
        self.tiers_state = tiers.initial_state(self.tiers_config)
        self.boiler_state = boiler.initial_state()
        self.valves_state = valves.initial_state()
        self.flow = sensor.Channel(WATER_LOW_DC, WATER_HIGH_DC, WATER_HOLD_MS)
        self.back = sensor.Channel(WATER_LOW_DC, WATER_HIGH_DC, WATER_HOLD_MS)
        self.boiler_on = False
        self.fsm = boiler.OFF
        self.hold = False
        self.cooldown = False
        self.setpoint_dc = self.boiler_config["flow_setpoint_dc"]
        self.tier_state = str(self.tiers_state["state"])
        self.overrides: list[tuple[str, int]] = []
        self.confirmed_pct = 0
        self.interlock = "idle"
        self.demand = False
        self.heard = 0  # valve nodes online
        self.silent: list[str] = []  # the rooms whose valve node is not heard now (a misspelt id stays here)
        # The rooms whose valve node has been heard since the boot, bit i for self.rooms[i]: one not heard yet
        # (its node not up yet, off, or its id misspelt) has not gone silent, and its ticks are not counted as
        # silent ones (a boiler node's first seconds would read as rooms lost).
        self.heard_bits = 0
        self.stale_rooms = 0  # rooms online without a temperature for a stale or absurd sensor, this tick
        # Which rooms call and which have no temperature, this tick, for /status: bit i is self.rooms[i]
        # (a small int, where lists of names would be made every tick and read once a second at most).
        self.calling_bits = 0
        self.stale_bits = 0
        self.unread_bits = 0  # the rooms whose valve node has not read their sensor yet since its boot
        # The rooms whose command is safety's (valves.step: hold, interlock raise, make-before-break), bit i for
        # self.rooms[i], for /status: the heartbeat's overrides do not say whose, and a held opening can equal
        # load sharing's own.
        self.safety_bits = 0
        self.silent_ticks = 0  # room-ticks with the valve node silent after it was heard (counted as closed)
        self.stale_ticks = 0  # room-ticks left out of load sharing for a stale or absurd sensor
        self.fired = 0  # times the call for heat went on
        self.reason = "booting"  # the boiler state machine's last reason, for /status
        # Per room (self.rooms' order), since when its valve node has reported a command above its own opening
        # (-1: not), for make-before-break (the top).
        self.above_ms: list[int] = []
        self.last_ms: int | None = None  # the last tick with rooms: when new settings are taken
        # room -> ms, run from the first tick; whole: the file holds these and nothing else (or is missing)
        rests, whole = _read_rests(root, self.tiers_config)
        self.boot_rests = rests
        # What RESTS and COOLDOWN hold: the rooms serving and resting (None: not written since the boot), the
        # cooldown's state (_COOLING's index: read at the boot, taken at the first tick; -1 while the file is
        # damaged, so that the first tick writes it whole) and what the boot read of COOLDOWN (the store's OK,
        # MISSING or CORRUPT, for /status). One list, not four attributes: the boiler node's heap.
        self.kept: list[object] = _read_cooldown(root)
        # RESTS as read is what the first tick finds (its rests run again from then, none serving): not written
        # again at every boot; a damaged file, or one holding more than these, is (None never matches).
        if whole:
            self.kept[0], self.kept[1] = [], sorted(rests)
        self.rests_errors = 0  # RESTS or COOLDOWN could not be written

    def inputs(self, hal: Hal, table: PeerTable, now_ms: int) -> dict[str, object]:
        self._decide(hal, table, now_ms)
        return {"demand": False, "idle": True}

    def _decide(self, hal: Hal, table: PeerTable, now_ms: int) -> None:
        if not self.rooms:
            self.reason = "no rooms in the heating settings"
            self.boiler_on = False  # nothing to heat: the call is off
            self._drive(hal)
            return
        self.last_ms = now_ms
        if self.boiler_state["off_at_ms"] is None:  # the first tick since the boot
            state = self.boiler_state = dict(self.boiler_state, off_at_ms=now_ms)
            cooling = self.kept[2]
            assert isinstance(cooling, int)
            if cooling < 0:  # damaged: the worst case, a cooldown in progress
                cooling = 2
            if cooling:  # a cooldown in progress or recent at the reset: begun now (see the top)
                state["last_cooldown_ms"] = now_ms
            if cooling == 2:
                state["cooldown"], state["cooldown_at_ms"] = True, now_ms
            rests = {rid: now_ms + self.boot_rests[rid] for rid in self.boot_rests}
            self.tiers_state = dict(self.tiers_state, tier3_rest_until_ms=rests)
        flow_dc = _read(self.flow, hal.temperature_dc("flow"), now_ms)
        return_dc = _read(self.back, hal.temperature_dc("return"), now_ms)
        # One dict per room serves both steps (tiers reads mode, temperature, call and next block; valves the
        # openings and the call): half the dicts a tick makes for the rooms.
        rooms: dict[str, object] = {}
        confirmed: dict[str, int] = {}
        demand = False
        stale = 0
        silent: list[str] = []
        calling_bits = stale_bits = unread_bits = 0
        heard_bits = self.heard_bits
        bit = 1  # this room's in the bits
        timeout_ms = self.plan.peer_timeout_ms
        above = self.above_ms
        if len(above) != len(self.rooms):
            above = self.above_ms = [-1] * len(self.rooms)
        index = -1
        for rid in self.rooms:
            index += 1
            room = None
            if table.online(rid, now_ms, timeout_ms):
                peer = table.peer(rid)
                room = peer.heartbeat.get("room") if peer is not None else None
            if not isinstance(room, dict):
                if heard_bits & bit:  # gone silent; not yet heard is not counted
                    self.silent_ticks += 1
                silent.append(rid)
                above[index] = -1
                rooms[rid] = _SILENT
                confirmed[rid] = 0
                bit <<= 1
                continue
            heard_bits |= bit
            calling = room["calling"] is True
            demand = demand or calling
            if calling:
                calling_bits |= bit
            temp_dc = room["temp_dc"]
            if room["stale"] is True or temp_dc is None:
                temp_dc = None
                if room["unread"] is True:  # not read yet since the valve node's boot: no fault to count
                    unread_bits |= bit
                else:
                    stale += 1
                    stale_bits |= bit
            bit <<= 1
            age_ms = room["temp_age_ms"]
            feedback = room["valve_pct"]
            command = room["command_pct"]
            assert isinstance(age_ms, int) and isinstance(command, int)
            # Unknown feedback is closed; an opening counts only up to what the valve node commands.
            opening = 0 if not isinstance(feedback, int) else feedback if feedback < command else command
            confirmed[rid] = opening
            normal = room["normal_pct"]
            assert isinstance(normal, int)
            # Make-before-break counts, for the other valves, only what lasts of this opening (see the top).
            lasting = opening
            if command <= normal:
                above[index] = -1
            elif above[index] < 0:
                above[index] = now_ms
                lasting = normal if normal < opening else opening
            elif now_ms - above[index] < 2 * timeout_ms:
                lasting = normal if normal < opening else opening
            rooms[rid] = {"mode": room["mode"], "temp_dc": temp_dc,
                          "temp_age_ms": age_ms + (table.age_ms(rid, now_ms) or 0), "calling": calling,
                          "next_start_in_ms": room["next_start_in_ms"], "next_target_dc": room["next_target_dc"],
                          "normal_pct": normal, "confirmed_pct": opening, "lasting_pct": lasting}
        self.heard = len(self.rooms) - len(silent)
        self.silent = silent
        self.heard_bits = heard_bits
        self.stale_rooms = stale
        self.calling_bits, self.stale_bits, self.unread_bits = calling_bits, stale_bits, unread_bits
        self.stale_ticks += stale
        self.demand = demand
        self.confirmed_pct = valves.confirmed_pct(self.valves_state, confirmed)
        config = self.boiler_config
        # Each step's new state is put into the dicts of the one before (peers.refill), not kept where the tick
        # made it: the boiler node's heap has its holes cut up less (docs/heating.md, "8 rooms").
        boiler_out, state = boiler.step(
            config, self.boiler_state,
            {"demand": demand, "confirmed_pct": self.confirmed_pct, "flame": hal.flame() is True,
             "flow_dc": flow_dc, "return_dc": return_dc}, now_ms)
        # Its file first, then the state (see the top): a MemoryError in between keeps neither, and the tick is
        # skipped with the relay where the file says.
        self._keep_cooldown(state, now_ms)
        self.boiler_state = _kept(self.boiler_state, state)
        # Driven now, not in apply(): the state just kept says the relay went on or off at now_ms.
        on = boiler_out["boiler_on"] is True
        if on and not self.boiler_on:
            self.fired += 1
        self.boiler_on = on
        self.fsm = str(boiler_out["fsm"])
        self.reason = str(boiler_out["reason"])
        self.hold = boiler_out["hold_valves"] is True
        self.cooldown = boiler_out["cooldown"] is True
        setpoint = boiler_out["setpoint_dc"]
        assert isinstance(setpoint, int)
        self.setpoint_dc = setpoint
        self._drive(hal)
        tiers_out, state = tiers.step(
            self.tiers_config, self.tiers_state,
            {"enabled": self.switch, "rooms": rooms,
             "boiler": {"on": boiler_out["boiler_on"], "return_dc": return_dc,
                        "setpoint_dc": config["flow_setpoint_dc"],
                        "last_cooldown_ms": boiler_out["last_cooldown_ms"], "cooldown": boiler_out["cooldown"]}},
            now_ms)
        self._keep_rests(state, now_ms)
        self.tiers_state = _kept(self.tiers_state, state)
        valves_out, state = valves.step(
            self.valves_config, self.valves_state,
            {"rooms": rooms, "load_sharing": tiers_out["valve_pct"], "hold": boiler_out["hold_valves"],
             "demand": demand, "firing": boiler_out["boiler_on"]}, now_ms)
        self.valves_state = _kept(self.valves_state, state)
        pcts = valves_out["valve_pct"]
        sources = valves_out["source"]
        assert isinstance(pcts, dict) and isinstance(sources, dict)
        self.overrides = _overrides(self.overrides, self.rooms, pcts, sources)
        safety_bits = 0
        bit = 1
        for rid in self.rooms:
            if sources[rid] == "safety":
                safety_bits |= bit
            bit <<= 1
        self.safety_bits = safety_bits
        self.tier_state = str(tiers_out["state"])
        self.interlock = str(valves_out["interlock"])

    def _keep_cooldown(self, state: dict[str, object], now_ms: int) -> None:
        """Write COOLDOWN when the cooldown's state has changed in state, boiler.step's new one (see the top)."""
        last = state["last_cooldown_ms"]
        cooling = 2 if state["cooldown"] else 1 if isinstance(last, int) and \
            now_ms - last <= _int(self.tiers_config["cooldown_lookback_ms"]) else 0
        kept = self.kept
        if cooling == kept[2]:
            return
        if self._write(COOLDOWN, {"cooldown": _COOLING[cooling]}):
            kept[2] = cooling
        forget(("loadmesh.node.store",))  # three times a cooldown at most: not worth its room in between

    def _keep_rests(self, state: dict[str, object], now_ms: int) -> None:
        """Write RESTS when the rooms in tier-3 service or resting have changed in state, tiers.step's new one (see
        the top)."""
        rooms = state["rooms"]
        rests = state["tier3_rest_until_ms"]
        assert isinstance(rooms, dict) and isinstance(rests, dict)
        serving = [rid for rid in rooms if rooms[rid]["tier"] == 3]
        serving.sort()
        resting = [rid for rid in rests if rests[rid] > now_ms and rid not in serving]
        resting.sort()
        kept = self.kept
        if serving == kept[0] and resting == kept[1]:
            return
        record: dict[str, int] = {}
        for rid in serving:
            record[rid] = _int(self.tiers_config["tier_3_rest_ms"])
        for rid in resting:
            record[rid] = rests[rid] - now_ms
        if self._write(RESTS, record):
            kept[0], kept[1] = serving, resting
        forget(("loadmesh.node.store",))  # a few times an hour: not worth its room in between

    def _write(self, name: str, payload: object) -> bool:
        """Keep payload as name; False if the heap had no room for it (the next tick tries again)."""
        try:
            from .store import Store

            Store(self.root).write_json(name, payload)
        except OSError:
            self.rests_errors += 1  # tried once: a broken flash is not written again every tick
        except MemoryError:
            # No room in the heap now for the store (imported for the write alone) and the file. The step's state
            # is kept all the same, and the next tick writes it (a reset in between reads the file before).
            self.rests_errors += 1
            return False
        return True

    def _drive(self, hal: Hal) -> None:
        """The relay and the setpoint output to this node's decision: in the tick's inputs(), as soon as it is made
        (see the top), and again in apply(), where it changes nothing."""
        hal.set_boiler_call(self.boiler_on)
        hal.set_flow_setpoint_dc(self.setpoint_dc if self.rooms else None)

    def apply(self, hal: Hal, out: dict[str, object], table: PeerTable, now_ms: int) -> None:
        self._drive(hal)

    def heartbeat(self, message: dict[str, object], table: PeerTable, now_ms: int) -> None:
        message["heating"] = {"state": self.tier_state, "overrides": self.overrides}
        message["boiler"] = {"fsm": self.fsm, "on": self.boiler_on, "hold": self.hold, "cooldown": self.cooldown,
                             "setpoint_dc": self.setpoint_dc}

    def status(self) -> dict[str, object]:
        return {"boiler_on": self.boiler_on, "fsm": self.fsm, "reason": self.reason, "hold": self.hold,
                "cooldown": self.cooldown, "setpoint_dc": self.setpoint_dc, "tiers": self.tier_state,
                "load_sharing": _sharing(self.tiers_state), "overrides": self.overrides,
                "safety": _named(self.rooms, self.safety_bits), "interlock": self.interlock,
                "confirmed_pct": self.confirmed_pct, "demand": self.demand,
                "switch": self.switch, "switch_file": self.switch_file,
                "rooms": len(self.rooms), "heard": self.heard, "silent": self.silent, "stale_rooms": self.stale_rooms,
                "unheard": _named(self.rooms, ((1 << len(self.rooms)) - 1) & ~self.heard_bits),  # of the silent
                "calling": _named(self.rooms, self.calling_bits), "stale": _named(self.rooms, self.stale_bits),
                "unread": _named(self.rooms, self.unread_bits),
                "silent_ticks": self.silent_ticks, "stale_ticks": self.stale_ticks, "fired": self.fired,
                "rejected": _rejected(self.flow) + _rejected(self.back), "rests_errors": self.rests_errors,
                "cooldown_file": self.kept[3],
                "error": self.error or None}

    def heating(self) -> object:
        from . import heatsettings

        return heatsettings.stored(self.root)

    def check_heating(self, raw: object) -> object:
        from . import heatsettings

        return heatsettings.load_heating(raw)

    def use_heating(self, checked: object) -> object:
        assert isinstance(checked, tuple)
        rooms, tiers_config, boiler_config, valves_config = checked
        if tiers_config != self.tiers_config:
            # Afresh, but a tier-3 room that just served keeps its rest (before the first
            # tick with rooms the context holds neither rooms nor rests: any time will do).
            taken_ms = self.last_ms if self.last_ms is not None else 0
            self.tiers_state = tiers.reconfigured(self.tiers_config, self.tiers_state, tiers_config, taken_ms)
            self.tier_state = str(self.tiers_state["state"])
        heard_bits = 0  # the rooms heard since the boot stay heard, in their places in the new list
        for index in range(len(rooms)):
            if rooms[index] in self.rooms and (self.heard_bits >> self.rooms.index(rooms[index])) & 1:
                heard_bits |= 1 << index
        self.heard_bits = heard_bits
        self.rooms, self.tiers_config, self.boiler_config, self.valves_config = (
            rooms, tiers_config, boiler_config, valves_config)
        # Of the rooms before: known again next tick.
        self.calling_bits = self.stale_bits = self.unread_bits = self.safety_bits = 0
        self.above_ms = []  # by room, in the new order: from the next tick's reports
        self.error = ""
        return {"saved": True, "kind": self.kind, "rooms": rooms}

    def load_sharing(self) -> object:
        settings = self.tiers_config["enabled"] is True
        return {"switch": self.switch, "settings": settings, "enabled": self.switch and settings,
                "file": self.switch_file, "state": self.tier_state}

    def put_load_sharing(self, raw: object) -> object:
        from .store import OK, Store

        switch = _load_switch(raw)
        Store(self.root).write_json(SWITCH, {"enabled": switch})
        self.switch, self.switch_file = switch, OK
        return self.load_sharing()


def _load_switch(raw: object) -> bool:
    """{"enabled": bool}, the body of PUT /load_sharing and the payload of SWITCH, checked."""
    from loadmesh.core import fieldcheck as fc  # only here: at the top it kept fieldcheck, which the runtime lets go

    mapping = fc.obj(raw, "load_sharing")
    fc.only(mapping, ("enabled",), "load_sharing")
    return fc.bool_field(mapping, "enabled", "load_sharing")


def _read_switch(root: str) -> tuple[bool, str]:
    from .store import CORRUPT, MISSING, Store

    store = Store(root)
    raw = store.read_json(SWITCH)
    state = store.state.get(SWITCH, MISSING)
    if raw is None:
        return state != CORRUPT, state
    try:
        return _load_switch(raw), state
    except FieldError:
        return False, CORRUPT


def _read_rests(root: str, config: dict[str, object]) -> tuple[dict[str, int], bool]:
    """(RESTS as room -> ms still to rest, for rooms configured now, at most the configured rest; whether the file
    held those alone or is missing). Not whole: damaged (no rests), or holding what is not a rest (a room no longer
    configured, a value no rest can have: the others kept); the first tick writes it whole."""
    from .store import MISSING, Store

    store = Store(root)
    raw = store.read_json(RESTS)
    rests: dict[str, int] = {}
    if not isinstance(raw, dict):
        return rests, raw is None and store.state.get(RESTS, MISSING) == MISSING
    most_ms = _int(config["tier_3_rest_ms"])
    known = tiers.room_ids(config)
    for rid in sorted(raw):
        value = raw[rid]
        if rid in known and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            rests[rid] = value if value < most_ms else most_ms
    return rests, len(rests) == len(raw)


def _read_cooldown(root: str) -> list[object]:
    """The role's kept list as a boot begins it: COOLDOWN's state as _COOLING's index (0 if missing, -1 if damaged:
    a cooldown in progress, and the file to be written again; see the top) and what was read (OK, MISSING,
    CORRUPT)."""
    from .store import CORRUPT, MISSING, OK, Store

    store = Store(root)
    raw = store.read_json(COOLDOWN)
    value = raw.get("cooldown") if isinstance(raw, dict) else None
    if value in _COOLING:
        return [None, None, _COOLING.index(value), OK]
    if raw is None and store.state.get(COOLDOWN, MISSING) == MISSING:
        return [None, None, 0, MISSING]
    return [None, None, -1, CORRUPT]


def _overrides(kept: list[tuple[str, int]], rooms: list[str], pcts: dict[str, int],
               sources: dict[str, str]) -> list[tuple[str, int]]:
    """(room, pct) of the rooms whose source is safety or load sharing, in room order: kept itself while it holds
    the same (most ticks), so that a tick makes no new list; pairs as tuples, half a list's heap."""
    count = 0
    same = True
    for rid in rooms:
        if sources[rid] in _SOURCES:
            if count >= len(kept) or kept[count][0] != rid or kept[count][1] != pcts[rid]:
                same = False
                break
            count += 1
    if same and count == len(kept):
        return kept
    return [(rid, pcts[rid]) for rid in rooms if sources[rid] in _SOURCES]


def _kept(held: dict[str, object], new: dict[str, object]) -> dict[str, object]:
    """A step's new state in the dicts of the one it replaces (held) where they have its keys, else new itself."""
    return held if refill(held, new) else new


def _sharing(context: dict[str, object]) -> dict[str, int]:
    """Load sharing's own openings by room: what tiers.step gave as valve_pct (made again for /status, not kept)."""
    rooms = context["rooms"]
    assert isinstance(rooms, dict)
    return {rid: rooms[rid]["pct"] for rid in rooms}


def _named(rooms: list[str], bits: int) -> list[str]:
    """The rooms whose bit is set, in room order."""
    return [rooms[index] for index in range(len(rooms)) if (bits >> index) & 1]


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _read(channel: sensor.Channel, raw: int | None, now_ms: int) -> int | None:
    if raw is not None:
        channel.update(raw, now_ms)
    return channel.read(now_ms)[1]


def _read_heating(root: str, role: BoilerRole) -> tuple[list[str], dict[str, object], dict[str, int], dict[str, int]]:
    from .heatsettings import load_heating, read

    try:
        return load_heating(read(root))
    except FieldError as exc:
        role.error = str(exc) + "; no rooms: the boiler stays off"
        _ids, tiers_config, boiler_config, valves_config = load_heating({"rooms": [{"id": "none", "rated_w": 1000}]})
        return [], tiers_config, boiler_config, valves_config  # no room: _decide never lets it fire


def _rejected(channel: sensor.Channel) -> int:
    total = 0
    for reason in channel.counts:
        if reason != sensor.OK:
            total += channel.counts[reason]
    return total
