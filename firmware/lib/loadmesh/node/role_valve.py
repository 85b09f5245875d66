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
        self.reason = ""
        self.normal_pct = 0
        self.override_pct: int | None = None
        self.command_pct = 0
        self.feedback_pct: int | None = None
        self.next_start_in_ms: int | None = None
        self.next_target_dc: int | None = None
        self.boiler_heard = False
        self.overrides_taken = 0  # ticks under an override
        self.overrides_dropped = 0  # times the boiler fell silent while overriding this room
        self.off_since_ms: int | None = None  # since when the feedback has been off the command (None: following)
        self.valve_off_ms = 0

    def replan(self, plan: Plan) -> None:
        super().replan(plan)
        self.boiler = boiler_node(plan)

    def inputs(self, hal: Hal, table: PeerTable, now_ms: int) -> dict[str, object]:
        self._control(hal, now_ms)
        self._take_override(table, now_ms)
        return {"demand": self.calling, "idle": True}

    def _control(self, hal: Hal, now_ms: int) -> None:
        raw = hal.temperature_dc("room")
        if raw is not None:
            self.channel.update(raw, now_ms)
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
        heard = self.boiler != "" and table.online(self.boiler, now_ms, self.plan.peer_timeout_ms)
        if heard:
            peer = table.peer(self.boiler)
            heating = peer.heartbeat["heating"] if peer is not None else None
            if isinstance(heating, dict):
                overrides = heating["overrides"]
                assert isinstance(overrides, list)
                me = self.plan.node
                for pair in overrides:
                    if pair[0] == me:
                        override = pair[1]
                        break
        if override is None and self.override_pct is not None and not heard:
            self.overrides_dropped += 1
        if override is not None:
            self.overrides_taken += 1
        self.boiler_heard = heard
        self.override_pct = override
        self.command_pct = self.normal_pct if override is None else override

    def apply(self, hal: Hal, out: dict[str, object], table: PeerTable, now_ms: int) -> None:
        hal.set_valve_pct(self.command_pct)

    def heartbeat(self, message: dict[str, object], table: PeerTable, now_ms: int) -> None:
        message["room"] = {"mode": self.room["mode"], "calling": self.calling, "stale": self.stale,
                           "temp_dc": None if self.stale else self.temp_dc, "temp_age_ms": self.temp_age_ms,
                           "normal_pct": self.normal_pct, "command_pct": self.command_pct,
                           "valve_pct": self.feedback_pct, "next_start_in_ms": self.next_start_in_ms,
                           "next_target_dc": self.next_target_dc}

    def status(self) -> dict[str, object]:
        return {"mode": self.room["mode"], "temp_dc": self.temp_dc, "target_dc": self.target_dc,
                "calling": self.calling, "reason": self.reason, "normal_pct": self.normal_pct,
                "override_pct": self.override_pct, "command_pct": self.command_pct,
                "valve_pct": self.feedback_pct, "valve_off_ms": self.valve_off_ms,
                "source": "normal" if self.override_pct is None else "boiler",
                "boiler_heard": self.boiler_heard, "overrides_taken": self.overrides_taken,
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
