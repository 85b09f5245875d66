"""The heating lines of `loadmesh status`: a valve node's or the boiler node's own view, from /status's `role`.

What the installer asks standing at the boiler: is it firing and why, or
why not (the interlock, a cooldown, its minimum off time); which rooms
call; what load sharing does and which rooms it opened how far; what is
silent or has no temperature. At a valve: the room's mode, temperature and
target, whether it calls, the valve's command and whose it is (the room's
own control, the boiler node's override, or held for a firing boiler until the
boiler node answers), its feedback, and whether the
boiler node is heard. The fields and their meaning: the roles' status()
(firmware/lib/loadmesh/node/role_valve.py, role_boiler.py) and
docs/heating.md, "The heating roles on the nodes".

As in the rest of the summary, a field absent, null or of another type is
left out, never a failure: another firmware version may say less.
"""

from __future__ import annotations

from typing import Any

from .nodehttp import shown as _shown
from .nodestatus import _count, _duration, _names, _text

Lines = list[tuple[str, str]]

# The boiler state machine's states (shared/core/boiler.py) as the installer says them; its reason follows.
_BOILER_STATES = {
    "OFF": "off",
    "BLOCKED": "off, blocked",
    "ON": "firing",
    "PENDING_OFF": "firing, held on",  # demand gone, on until its minimum on time has passed: valves held
    "PUMP_OVERRUN": "off, pump overrun",  # valves held open
}
# valves.step's interlock (shared/core/valves.py), on the openings commanded while a room calls (the boiler
# fires on those confirmed, its reason says how far short); "idle" (no demand, valves held) says nothing.
_INTERLOCK = {
    "ok": "the commands reach the minimum opening",
    "raised": "calling rooms opened further to reach the minimum opening",
    "short": "the commands short of the minimum opening, the calling rooms fully open",
}
# A valve's feedback off its command for longer than this is not on its way (a thermal drive takes a few
# minutes, a motor about 40 s: docs/heating.md): shown in capitals, stuck or without power.
STUCK_MS = 300000
# A room whose valve node is not heard this long after the boiler node could hear it: UNHEARD, in capitals.
UNHEARD_MS = 60000
# A valve node that began waiting for its boiler node (`boiler_named_ms`) this soon after its boot began at its
# boot (its first tick comes after the boot's work), and waits from then; later, it was an adoption or a config
# naming another boiler node, and its wait counts from there.
NAMED_AT_BOOT_MS = 10000
# roomctl.step's reason (shared/core/roomctl.py).
_ROOM_REASONS = {
    "calling": "calling for heat",
    "satisfied": "satisfied, not calling",
    "off": "not calling (frost protection only)",
    "frost": "calling: frost protection",
    "stale_sensor": "not calling: no recent temperature",
}


def lines(status: dict[str, Any]) -> Lines:
    """The heating lines for a valve or boiler node's /status; none for any other node."""
    role = status.get("role")
    if not isinstance(role, dict):
        return []
    kind = status.get("kind")
    if kind == "boiler":
        return _boiler(role, _listening_ms(status))
    if kind == "valve":
        return _valve(role, _listening_ms(status), _count(status, "uptime_ms"))
    return []


def _listening_ms(status: dict[str, Any]) -> int | None:
    """How long the node could have heard its peers: since its boot, or since its Wi-Fi came up if later."""
    uptime_ms = _count(status, "uptime_ms")
    hal = status.get("hal")
    wifi = hal.get("wifi") if isinstance(hal, dict) else None
    if isinstance(wifi, dict) and wifi.get("state") is not None:
        up_ms = _count(wifi, "for_ms") if wifi.get("state") == "up" else 0
        if up_ms is not None and (uptime_ms is None or up_ms < uptime_ms):
            return up_ms
    return uptime_ms


def _boiler(role: dict[str, Any], listening_ms: int | None = None) -> Lines:
    found: Lines = []
    error = _text(role, "error")
    if error:
        found.append(("SETTINGS", error))
    line = _burner(role)
    if line:
        found.append(("boiler", line))
    line = _valves(role)
    if line:
        found.append(("valves", line))
    line = _rooms(role)
    if line:
        found.append(("rooms", line))
    # The rooms not heard now: gone silent, or (`unheard`, a node before it said none) not heard since its boot.
    silent = _names(role, "silent")
    unheard = [room for room in _names(role, "unheard") if room in silent]
    gone = [room for room in silent if room not in unheard]
    if gone:
        found.append(("SILENT", ", ".join(gone) + " (not heard: the valve counted closed, the room neither "
                                                  "calling nor opened)"))
    if unheard:
        # A valve node heartbeats every second or so from its boot: not heard a minute after this node could
        # hear it (its boot, or its Wi-Fi up if later), it is off, not on this group's mesh, or its id is not
        # its room's.
        late = listening_ms is not None and listening_ms >= UNHEARD_MS
        found.append(("UNHEARD" if late else "unheard", ", ".join(unheard) + (" (never" if late else " (not yet")
                      + " heard since this node's boot: the valve counted closed, the room neither calling nor opened"
                      + ("; its valve node off, or its id not the room's?)" if late else ")")))
    stale = _names(role, "stale")
    stale_rooms = _count(role, "stale_rooms")
    if stale:
        found.append(("STALE", ", ".join(stale) + " (no temperature: not calling, left out of load sharing)"))
    elif "stale" not in role and stale_rooms and stale_rooms > 0:  # a node before `stale` named them: how many
        found.append(("STALE", f"{stale_rooms} room" + ("s" if stale_rooms > 1 else "")
                      + " without a temperature (not calling, left out of load sharing)"))
    # Not read yet since the valve node's boot (its first second or so): no temperature as a stale sensor has
    # none, and no fault (a node before `unread` named such a room STALE).
    unread = _names(role, "unread")
    if unread:
        found.append(("starting", ", ".join(unread) + " (sensor not read yet since the valve node's boot: not "
                                                      "calling, left out of load sharing)"))
    line = _sharing(role)
    if line:
        found.append(("sharing", line))
    counted = [f"{what} {value:,}" for what, value in (
        ("room-ticks silent", _count(role, "silent_ticks")), ("room-ticks stale", _count(role, "stale_ticks")),
        ("absurd flow or return readings", _count(role, "rejected")),
        ("failed writes of tier3_rests.json or cooldown.json", _count(role, "rests_errors"))) if value and value > 0]
    if counted:
        found.append(("counted", ", ".join(counted)))
    if _text(role, "cooldown_file") == "corrupt":
        # Read at the boot, said for the boot's life: the node wrote the file whole again at its first tick.
        found.append(("cooldown", "cooldown.json was damaged at this node's boot: read as a cooldown in progress "
                                  "(the worst case), written again whole at its first tick"))
    return found


def _burner(role: dict[str, Any]) -> str:
    """Firing or not, and why; the setpoint it drives (the cooldown's while it cools down)."""
    fsm = _text(role, "fsm")
    on = _flag(role, "boiler_on")
    reason = _text(role, "reason")
    if fsm in _BOILER_STATES:
        line = _BOILER_STATES[fsm]
    elif on is not None:
        line = ("firing" if on else "off") + (f" ({fsm})" if fsm else "")
    elif fsm or reason:
        line = fsm or "?"
    else:
        return ""
    if reason and not (fsm == "PUMP_OVERRUN" and reason == "pump overrun"):  # said already
        line += ": " + reason
    setpoint_dc = _count(role, "setpoint_dc")
    if _flag(role, "cooldown"):
        line += "; COOLDOWN" + (f", setpoint {_celsius(setpoint_dc)}" if setpoint_dc is not None else "") + \
            " until the water has cooled (the burner cannot relight)"
    elif setpoint_dc is not None:
        line += f"; setpoint {_celsius(setpoint_dc)}"
    fired = _count(role, "fired")
    if fired is not None:
        line += f"; fired {fired:,} time" + ("" if fired == 1 else "s") + " since its boot"
    return line


def _valves(role: dict[str, Any]) -> str:
    """The openings the boiler counts (the interlock) and the valves its safety layer commands."""
    parts = []
    confirmed_pct = _count(role, "confirmed_pct")
    if confirmed_pct is not None:
        parts.append(f"{confirmed_pct} % confirmed open in all (what the interlock counts)")
    # The overrides are load sharing's openings and safety's (hold, interlock, make-before-break), safety first:
    # the node names safety's rooms (`safety`); a node before it did not, and those that are not load sharing's
    # own openings are safety's (a held opening equal to load sharing's own is then missed).
    named = role.get("safety")
    if isinstance(named, list):
        safety = _openings([(room, pct) for room, pct in _pairs(role, "overrides") if room in named])
    else:
        sharing = role.get("load_sharing")
        sharing = sharing if isinstance(sharing, dict) else {}
        safety = _openings([(room, pct) for room, pct in _pairs(role, "overrides") if sharing.get(room) != pct])
    interlock = _text(role, "interlock")
    if _flag(role, "hold"):
        parts.append("held as they were" + (": " + safety if safety else ""))
    elif interlock in _INTERLOCK:
        parts.append(_INTERLOCK[interlock] + (": " + safety if safety and interlock != "ok" else ""))
        if safety and interlock == "ok":
            parts.append("kept open until the others confirm: " + safety)
    elif safety:
        parts.append("kept open until the others confirm: " + safety)
    return "; ".join(parts)


def _rooms(role: dict[str, Any]) -> str:
    rooms = _count(role, "rooms")
    if rooms == 0:
        return "none in the heating settings"
    heard = _count(role, "heard")
    parts = []
    if rooms is not None:
        parts.append(f"{heard} of {rooms} heard" if heard is not None else f"{rooms}")
    calling = _names(role, "calling")
    demand = _flag(role, "demand")
    if calling:
        parts.append("calling: " + ", ".join(calling))
    elif role.get("calling") == [] or ("calling" not in role and demand is False):
        parts.append("none calling")
    elif "calling" not in role and demand:  # a node before `calling` named them
        parts.append("some calling")
    return "; ".join(parts)


def _sharing(role: dict[str, Any]) -> str:
    """Load sharing's state (tiers), and the rooms it opened how far; why it is off."""
    state = _text(role, "tiers")
    if not state:
        return ""
    switch = _flag(role, "switch")
    if state == "DISABLED":
        if switch is False:
            if _text(role, "switch_file") == "corrupt":
                return "off: load_sharing.json is damaged, read as switched off (PUT /load_sharing to set it)"
            return "off: switched off (PUT /load_sharing)"
        if switch is True:
            return "off in the heating settings (load_sharing.enabled)"
        return "off"
    if state == "INACTIVE":
        return "inactive"
    opened = role.get("load_sharing")
    line = state
    if isinstance(opened, dict):
        pairs = [(room, pct) for room, pct in opened.items() if _is_int(pct)]
        line += ": opened " + _openings(pairs) if pairs else ", nothing opened"
    return line


def _valve(role: dict[str, Any], listening_ms: int | None = None, uptime_ms: int | None = None) -> Lines:
    found: Lines = []
    error = _text(role, "error")
    if error:
        found.append(("SETTINGS", error))
    line = _room(role)
    if line:
        found.append(("room", line))
    line = _valve_line(role)
    if line:
        found.append(("valve", line))
    heard = _flag(role, "boiler_heard")
    taken, dropped = _count(role, "overrides_taken"), _count(role, "overrides_dropped")
    counts = [f"{taken:,} tick" + ("" if taken == 1 else "s") + " under its override"] if taken and taken > 0 else []
    if dropped and dropped > 0:
        counts.append(f"its override dropped {dropped:,} time" + ("" if dropped == 1 else "s")
                      + " when it fell silent")
    tail = " (" + ", ".join(counts) + ")" if counts else ""
    if "boiler_node" in role and role["boiler_node"] is None:
        # No boiler member in the group's config: nothing to hear, nothing missing (a node before `boiler_node`
        # said BOILER not heard for ever).
        found.append(("boiler", "none in this group: the valve runs its room alone, by its own control" + tail))
    elif heard is True:
        found.append(("boiler", "heard" + tail))
    elif heard is False and _flag(role, "boiler_unheard") is True:
        # Not heard since it was named (this node's boot, its adoption, a config naming another boiler node):
        # its first heartbeat comes within a heartbeat or so of this node's radio coming up. Missing only once
        # this node has listened for the node's wait (`boiler_wait_ms`, the group's peer_timeout_ms: the
        # silence after which any member counts as silent), counted from the latest of its boot, its Wi-Fi up
        # and the tick it began waiting for this boiler node (`boiler_named_ms`, its uptime then).
        wait_ms = _count(role, "boiler_wait_ms")
        # null: named since the last tick, the wait begins at the next (a node before the field: from its boot).
        began_ms = uptime_ms if "boiler_named_ms" in role and role["boiler_named_ms"] is None else \
            _count(role, "boiler_named_ms")
        since = "this node's boot"
        if began_ms is not None and uptime_ms is not None and began_ms >= NAMED_AT_BOOT_MS:
            since = "its config named it"
            if listening_ms is None or uptime_ms - began_ms < listening_ms:
                listening_ms = uptime_ms - began_ms
        late = wait_ms is not None and listening_ms is not None and listening_ms >= wait_ms
        if late:
            found.append(("BOILER", f"never heard since {since}: the room follows its own control, its call "
                                    "reaches no boiler; the boiler node off, or not on this group's mesh?" + tail))
        else:
            found.append(("boiler", f"not yet heard since {since}: the room follows its own control until its "
                                    "first heartbeat" + tail))
    elif heard is False:  # heard since the boot and silent now, or a node before `boiler_unheard`
        found.append(("BOILER", "not heard: the room follows its own control, its call reaches no boiler" + tail))
    return found


def _room(role: dict[str, Any]) -> str:
    mode = _text(role, "mode")
    parts = [mode] if mode else []
    temp_dc = _count(role, "temp_dc")
    unread = _flag(role, "unread") is True  # its sensor not read yet since the boot (its first second or so)
    if temp_dc is not None:
        parts.append(_celsius(temp_dc))
    elif "temp_dc" in role and role["temp_dc"] is None:
        parts.append("no temperature yet" if unread else "no temperature")
    target_dc = _count(role, "target_dc")
    if target_dc is not None and mode != "off":  # an off room has no target but frost protection
        parts.append("target " + _celsius(target_dc))
    line = ", ".join(parts)
    reason = _text(role, "reason")
    calling = _flag(role, "calling")
    if reason == "stale_sensor" and unread:
        said = "not calling: sensor not read yet since the boot"
    elif reason:
        said = _ROOM_REASONS.get(reason, reason)
    elif calling is not None:
        said = "calling for heat" if calling else "not calling"
    else:
        said = ""
    if said:
        line = line + ": " + said if line else said
    rejected = _count(role, "rejected")
    if rejected and rejected > 0:
        line += f"; {rejected:,} reading" + ("s" if rejected > 1 else "") + " refused as absurd"
    return line


def _valve_line(role: dict[str, Any]) -> str:
    """The command, whose it is, and what the valve's feedback says."""
    command_pct = _count(role, "command_pct")
    source = _text(role, "source")
    normal_pct = _count(role, "normal_pct")
    parts = []
    if command_pct is not None:
        line = f"commanded {command_pct} %"
        if source == "boiler":
            line += " by the boiler node (load sharing or safety" + \
                (f"; its own control: {normal_pct} %)" if normal_pct is not None else ")")
        elif source == "held":
            # Its own control went lower while the boiler fires: held until the boiler node answers (a second
            # or so; role_valve.py). The boiler counts the held opening.
            line += " held for the firing boiler" + \
                (f" (its own control: {normal_pct} %, once the boiler node answers)" if normal_pct is not None else "")
        elif source == "normal":
            line += " by its own control"
        parts.append(line)
    feedback_pct = _count(role, "valve_pct")
    if feedback_pct is not None:
        parts.append(f"feedback {feedback_pct} %")
    elif "valve_pct" in role and role["valve_pct"] is None:
        parts.append("no feedback (the boiler counts it closed)")
    off_ms = _count(role, "valve_off_ms")
    if off_ms and off_ms >= STUCK_MS:
        parts.append("NOT FOLLOWING its command for " + _duration(off_ms) + ": stuck, or its drive without power?")
    elif off_ms and off_ms > 0:
        parts.append("off its command for " + _duration(off_ms) + " (on its way?)")
    return "; ".join(parts)


def _flag(mapping: dict[str, Any], key: str) -> bool | None:
    """A boolean value, or None (absent, null or not a boolean)."""
    value = mapping.get(key)
    return value if isinstance(value, bool) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pairs(mapping: dict[str, Any], key: str) -> list[tuple[str, int]]:
    """[[room, pct], ...] as (room, pct), the malformed left out."""
    value = mapping.get(key)
    if not isinstance(value, list):
        return []
    return [(pair[0], pair[1]) for pair in value
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and _is_int(pair[1])]


def _openings(pairs: list[tuple[str, int]]) -> str:
    return ", ".join(f"{_shown(room)} {pct} %" for room, pct in pairs)


def _celsius(dc: int) -> str:
    """Deci-degrees as °C with one decimal, in integers (-5: -0.5 °C)."""
    tenths = abs(dc)
    return ("-" if dc < 0 else "") + f"{tenths // 10}.{tenths % 10} °C"
