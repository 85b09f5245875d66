"""The valve role: its room's control (call, bands, frost), and the boiler node's overrides while it is heard."""

from loadmesh.core import roomctl, schedule, sensor
from loadmesh.core.controller import Plan
from loadmesh.core.errors import FieldError
from loadmesh.core.peers import PeerTable

from .hal import Hal
from .roles import Role

# Every tick (docs/heating.md, "Where each part runs"): the room temperature
# through a sensor channel (absurd readings refused and counted, the last good
# one held for TEMP_HOLD_MS, then unknown: the room neither calls nor takes
# part in load sharing), the target from the schedule (or the manual target),
# roomctl.step, and the next schedule block. The command is the boiler node's
# override for this room while the boiler node is online (heard within
# peer_timeout_ms) and its heating section names this room, else the room's
# own opening. The boiler node's overrides are its arbitration's safety and
# load-sharing layers (core valves module: safety > load sharing >
# corrections > normal); when it falls silent they are dropped and the room
# is back under its own control at the next tick.
#
# Break only when the boiler lets go. While the boiler node is online and its
# last heartbeat's boiler section says it is on (firing) or blocked (about to
# fire: demand, held back by the minimum off time or the interlock), or
# since this node's last heartbeat that told its room calling it has heard
# fewer than ANSWERS boiler heartbeats (the boiler node fires on a call at
# its tick on the report, or the tick after, and says so only with its next
# heartbeat: one that said OFF, sent before it heard the call, is no
# answer), a decrease of the command (the room satisfied, a lower band; the
# end of an override too: the boiler node let it go counting on the own
# opening it last heard, which may have fallen since) is held at the command
# before it until the boiler node has answered: it sends
# an override for this room (which governs, as always), or it is neither on
# nor blocked, or it has
# had time to hear the change and did not hold the room (ANSWERS below); never
# longer than peer_timeout_ms after the latest decrease. Increases are immediate; a silent boiler node
# holds nothing. The held command is what the heartbeat reports as
# command_pct, so the boiler counts it. Why: the boiler counts a room open
# only up to what its valve node commands now (its interlock), and it holds
# the valves (pending-off, pump overrun) only when it decides, a tick after it
# hears the change. A lone caller that commanded 0 % at once lost the
# interlock the moment its heartbeat arrived: the burner stopped on an
# interlock loss instead of a clean stop (no minimum on time), and the pump
# overrun's hold then opened the valve it had just shut (motor wear, a moment
# without a water path while the heat exchanger is hot). On the bench (the
# core chain, one process) the hold is decided in the same tick and this
# never shows.
#
# The room's settings: heating.json (heatsettings). Missing or refused: the
# room runs in "off" mode with the defaults (frost protection only) and
# /status says why. PUT /heating replaces them from the next tick; the room's
# call (its hysteresis) and its sensor history carry on. heatsettings, and the
# boiler node's modules it imports, are let go between uses (Role.occasional).

# A valve whose feedback is more than this far from what it was told (a sensor's and an actuator's own
# tolerance, the 10 % steps commands move in) is not following: /status counts how long (valve_off_ms).
# The boiler counts a valve open only as far as its feedback confirms (the interlock), so this is for the
# user, not for safety: a stuck valve, a drive that lost power, a pin pushed too far.
VALVE_TOLERANCE_PCT = 10
ROOM_LOW_DC = -400  # a room reading outside -40..60 °C is absurd
ROOM_HIGH_DC = 600
TEMP_HOLD_MS = 60000  # a DS18B20 read that fails now and then keeps the last good value for a minute
# How long after its first tick the room's sensor may have given no reading at all before that is a fault. Until
# the first reading the temperature is unknown as a stale one is (the room never calls, load sharing never opens
# it), but the heartbeat says "unread", not a stale sensor: a boot is no fault to name or count. On the ESP32 the
# first reading comes 1.1 s after the first tick from power-up (the sensor's power-on 85.0 C is refused until a
# conversion has completed, the next starts a second after the first, and the room's is read the tick after),
# 0.1 s after a watchdog reset; 3 s allows one failed read more. A sensor that has never answered by then (not
# wired, the wrong ROM id, the bus down) is stale, as one that stops answering is once its hold is over.
FIRST_READ_MS = 3000
# Boiler heartbeats heard, each at a tick of its own, after this node's heartbeat told a held decrease,
# before the hold ends without an answer. The first may have been built before the boiler node heard the
# change (in flight, or built in the boiler tick that read its mesh just before the change arrived); the
# next is built at a later boiler tick (a node builds at most one heartbeat a 100 ms tick), which has read
# the change when the way there (this tick's work after its read, the radio, the boiler tick's work before
# its heartbeat) takes under a tick; the third allows for one more tick of that, or for one of this
# node's heartbeats lost (the next comes within heartbeat_ms, as do the boiler node's, so the third was
# built after the boiler ticked on the one after it). At the default 500 ms heartbeat that is 1-1.5 s.
ANSWERS = 3


def boiler_node(plan: Plan) -> str:
    """The id of the group's boiler node ("" if it has none)."""
    for member in plan.members:
        if member["kind"] == "boiler":
            return str(member["id"])
    return ""


class ValveRole(Role):
    """A room's valve: room control, the boiler's overrides while the boiler node is online."""

    kind = "valve"
    occasional = ("loadmesh.node.heatsettings", "loadmesh.core.tiers", "loadmesh.core.radiator",
                  "loadmesh.core.boiler", "loadmesh.core.valves")

    def __init__(self, plan: Plan, root: str = "") -> None:
        super().__init__(plan)
        self.root = root
        self.error = ""
        self.room = _read_room(root, self)
        self.boiler = boiler_node(plan)
        self.channel = sensor.Channel(ROOM_LOW_DC, ROOM_HIGH_DC, TEMP_HOLD_MS)
        self.state = roomctl.initial_state()
        self.temp_dc: int | None = None
        self.temp_age_ms = 0
        self.target_dc = 0
        self.calling = False
        self.stale = True
        # Until when the room's sensor may be unread (no reading since the boot) and not at fault: the first tick's
        # now_ms + FIRST_READ_MS; -1 before that tick, 0 once read or once that time has passed. One int, not a flag
        # and a time: a valve node's heap.
        self.unread_until_ms = -1
        self.reason = ""
        self.normal_pct = 0
        self.override_pct: int | None = None
        self.command_pct = 0
        self.feedback_pct: int | None = None
        self.next_start_in_ms: int | None = None
        self.next_target_dc: int | None = None
        self.boiler_heard = False
        # Whether the boiler node the config names was heard since it was named, and if not since when this node
        # waits for it: one not heard yet has not gone silent. Right after the boot, an adoption or a config
        # naming another boiler node its first heartbeat is still to come; /status tells the two apart, and
        # loadmesh status calls the boiler node missing only once this node has listened for it (its radio up)
        # for peer_timeout_ms, the silence that makes any member silent (six heartbeats at least). One int, not
        # a flag and a time: -2 heard, -1 named (its wait begins at the next tick), or the tick's now_ms (the
        # node's uptime) when the wait began. -2 and -1 as literals: two module names would cost a valve node's
        # heap for good.
        self.boiler_named_ms = -1
        self.boiler_heard_ms = -1  # when the boiler node's last heartbeat was heard (-1: not online)
        # The boiler node's heartbeats heard, each counted once, at the tick it arrives (its heard_ms is not
        # the last tick's boiler_heard_ms): what a held decrease and a told call count their answers in, each
        # from the count when its heartbeat told it. A small int for 17 years at two a second.
        self.beats = 0
        # A decrease held until the boiler node answers (see the top): the command held (None: none), since
        # when, the own opening the heartbeat told while holding (-1: not told yet), and the beats then.
        self.held_pct: int | None = None
        self.held_since_ms = 0
        self.held_told_pct = -1
        self.held_beats = 0
        # A call this node told (a heartbeat with calling true) that the boiler node may fire on before its
        # heartbeats say so (see the top): the beats then (ANSWERS or more since: answered; none told yet is
        # answered).
        self.call_beats = -ANSWERS
        self.holds = 0  # decreases held
        self.overrides_taken = 0  # ticks under an override
        self.overrides_dropped = 0  # times the boiler fell silent while overriding this room
        self.off_since_ms: int | None = None  # since when the feedback has been off the command (None: following)
        self.valve_off_ms = 0

    def replan(self, plan: Plan) -> None:
        super().replan(plan)
        boiler = boiler_node(plan)
        if boiler != self.boiler:
            self.boiler_named_ms = -1  # another boiler node (or none): not heard yet, waited for anew
            self.boiler_heard = False  # /status before the next tick: the one heard was the other one
        self.boiler = boiler

    def inputs(self, hal: Hal, table: PeerTable, now_ms: int) -> dict[str, object]:
        self._control(hal, now_ms)
        self._take_override(table, now_ms)
        return {"demand": self.calling, "idle": True}

    def _control(self, hal: Hal, now_ms: int) -> None:
        raw = hal.temperature_dc("room")
        if raw is not None:
            self.channel.update(raw, now_ms)
        until = self.unread_until_ms
        if until != 0:
            if until < 0:
                until = self.unread_until_ms = now_ms + FIRST_READ_MS
            if self.channel.counts or now_ms >= until:  # any reading ends it, an absurd one too (that sensor's fault)
                self.unread_until_ms = 0
        _status, temp_dc, age_ms = self.channel.read(now_ms)
        self.temp_dc = temp_dc
        self.temp_age_ms = age_ms if age_ms is not None else 0
        feedback = self.feedback_pct = hal.valve_pct()
        # Compared with the command the valve has been given (the last tick's): unknown feedback is shown
        # as such (valve_pct null), not as a valve off its command.
        told = self.command_pct
        if feedback is None or (told - VALVE_TOLERANCE_PCT <= feedback <= told + VALVE_TOLERANCE_PCT):
            self.off_since_ms = None
            self.valve_off_ms = 0
        elif self.off_since_ms is None:
            self.off_since_ms = now_ms
        else:
            self.valve_off_ms = now_ms - self.off_since_ms
        room = self.room
        plan = room["schedule"]
        assert isinstance(plan, dict)
        mode = room["mode"]
        week_ms = hal.week_ms()
        if mode == "manual":
            target = room["manual_target_dc"]
        elif week_ms is None:
            target = plan["default_target_dc"]  # no set clock: the setback, never a schedule block guessed
        else:
            target = schedule.target_at(plan, week_ms)
        assert isinstance(target, int)
        self.target_dc = target
        control = room["control"]
        assert isinstance(control, dict)
        out, self.state = roomctl.step(control, self.state, {"mode": mode, "target_dc": target, "temp_dc": temp_dc,
                                                             "temp_age_ms": self.temp_age_ms}, now_ms)
        self.calling = out["calling"] is True
        self.stale = out["stale"] is True
        normal = out["valve_pct"]
        assert isinstance(normal, int)
        self.normal_pct = normal
        self.reason = str(out["reason"])
        upcoming = schedule.next_block(plan, week_ms) if mode == "auto" and week_ms is not None else None
        self.next_start_in_ms = None if upcoming is None else upcoming[0]
        self.next_target_dc = None if upcoming is None else upcoming[1]

    def _take_override(self, table: PeerTable, now_ms: int) -> None:
        override = None
        firing = False
        heard_ms = -1
        heard = self.boiler != "" and table.online(self.boiler, now_ms, self.plan.peer_timeout_ms)
        peer = table.peer(self.boiler) if heard else None
        if peer is not None:
            heard_ms = peer.heard_ms
            message = peer.heartbeat
            heating = message["heating"]
            if isinstance(heating, dict):
                overrides = heating["overrides"]
                assert isinstance(overrides, list)
                me = self.plan.node
                for pair in overrides:
                    if pair[0] == me:
                        override = pair[1]
                        break
            boiler = message.get("boiler")
            # Blocked (a room calls; the minimum off time or the interlock holds it back) may fire at its next
            # tick, before this node hears that it does: a decrease then is held as while it fires.
            firing = isinstance(boiler, dict) and (boiler["on"] is True or boiler["fsm"] == "BLOCKED")
            if heard_ms != self.boiler_heard_ms:
                self.beats += 1  # a heartbeat not counted yet (-1 before it: not online at the last tick)
            # A call told and not yet answered: the boiler node may have fired on it since its last heartbeat,
            # which said it was off (see the top).
            firing = firing or self.beats - self.call_beats < ANSWERS
        if override is None and self.override_pct is not None and not heard:
            self.overrides_dropped += 1
        if override is not None:
            self.overrides_taken += 1
        self.boiler_heard = heard
        if heard:
            self.boiler_named_ms = -2
        elif self.boiler_named_ms == -1:
            self.boiler_named_ms = now_ms  # the wait for it begins
        self.boiler_heard_ms = heard_ms
        if override is not None:
            self.held_pct = None  # the boiler node answered: its override governs
            self.command_pct = override
        else:
            self.command_pct = self._own_command(firing, now_ms)
        self.override_pct = override

    def _own_command(self, firing: bool, now_ms: int) -> int:
        """The room's own opening, or the command held while the boiler node has not answered a decrease."""
        own = self.normal_pct
        held = self.held_pct
        if held is None:
            # A decrease of its command while the boiler fires, the end of the boiler node's override
            # included: the boiler node let the override go counting on the own opening it had heard, which
            # may have fallen since (a lower band, satisfied) in a heartbeat it had not heard yet.
            if firing and own < self.command_pct:
                held = self.held_pct = self.command_pct
                self.held_since_ms = now_ms
                self.held_told_pct = -1
                self.holds += 1
                return held
            return own
        told = self.held_told_pct
        if told >= 0 and own < told:
            # A further decrease (the room satisfied in a lower band): told again, counted again, and held as
            # long as a first one may be; let go at the end of the first one's time, it shut the valve at once.
            told = self.held_told_pct = -1
            self.held_since_ms = now_ms
        if own >= held or not firing or now_ms - self.held_since_ms >= self.plan.peer_timeout_ms:
            self.held_pct = None  # an increase, the boiler off or silent, or held as long as it may be
            return own
        if told >= 0 and self.beats - self.held_beats >= ANSWERS:
            self.held_pct = None  # time enough to hear it, and no hold: the boiler lets go
            return own
        return held

    def apply(self, hal: Hal, out: dict[str, object], table: PeerTable, now_ms: int) -> None:
        hal.set_valve_pct(self.command_pct)

    def heartbeat(self, message: dict[str, object], table: PeerTable, now_ms: int) -> None:
        if self.held_pct is not None and self.held_told_pct < 0:
            # This heartbeat tells the held decrease: the boiler node's answers count from here.
            self.held_told_pct = self.normal_pct
            self.held_beats = self.beats
        if self.calling:
            # This heartbeat tells a call: the boiler node may fire on it at its next tick, before it says so.
            self.call_beats = self.beats
        message["room"] = {"mode": self.room["mode"], "calling": self.calling, "stale": self.stale,
                           "unread": self.unread_until_ms != 0,
                           "temp_dc": None if self.stale else self.temp_dc, "temp_age_ms": self.temp_age_ms,
                           "normal_pct": self.normal_pct, "command_pct": self.command_pct,
                           "valve_pct": self.feedback_pct, "next_start_in_ms": self.next_start_in_ms,
                           "next_target_dc": self.next_target_dc}

    def status(self) -> dict[str, object]:
        return {"mode": self.room["mode"], "temp_dc": self.temp_dc, "target_dc": self.target_dc,
                "calling": self.calling, "reason": self.reason, "unread": self.unread_until_ms != 0,
                "normal_pct": self.normal_pct,
                "override_pct": self.override_pct, "command_pct": self.command_pct,
                "valve_pct": self.feedback_pct, "valve_off_ms": self.valve_off_ms,
                "source": "boiler" if self.override_pct is not None else "normal" if self.held_pct is None else "held",
                "held_pct": self.held_pct, "holds": self.holds,
                "boiler_heard": self.boiler_heard, "boiler_node": self.boiler or None,
                "boiler_unheard": self.boiler_named_ms != -2, "boiler_wait_ms": self.plan.peer_timeout_ms,
                "boiler_named_ms": self.boiler_named_ms if self.boiler_named_ms >= 0 else None,
                "overrides_taken": self.overrides_taken,
                "overrides_dropped": self.overrides_dropped, "rejected": _rejected(self.channel),
                "error": self.error or None}

    def heating(self) -> object:
        from . import heatsettings

        return heatsettings.stored(self.root)

    def check_heating(self, raw: object) -> object:
        from . import heatsettings

        return heatsettings.load_room(raw)

    def use_heating(self, checked: object) -> object:
        assert isinstance(checked, dict)
        self.room = checked
        self.error = ""
        return {"saved": True, "kind": self.kind, "mode": checked["mode"]}


def _read_room(root: str, role: ValveRole) -> dict[str, object]:
    from . import heatsettings

    try:
        return heatsettings.load_room(heatsettings.read(root))
    except FieldError as exc:
        role.error = str(exc) + "; the room is off (frost protection only)"
        return {"mode": "off", "manual_target_dc": None,
                "schedule": schedule.load(heatsettings.FALLBACK_SCHEDULE, "schedule"),
                "control": roomctl.load_config({}, "control")}


def _rejected(channel: sensor.Channel) -> int:
    """Readings refused as absurd."""
    total = 0
    for reason in channel.counts:
        if reason != sensor.OK:
            total += channel.counts[reason]
    return total
