"""The heating sections of the heartbeat: a valve node's room (4) and the boiler node's state machine (5)."""

import struct

from .errors import FieldError, describe
from .heartbeat import (
    _UNKNOWN,
    BAD_FIELD,
    MAX_VALUE,
    SECTION_BOILER,
    SECTION_ROOM,
    _check_int,
    _code,
    _get,
    _known,
    _Malformed,
    _name,
)

# docs/heartbeat.md has the layout; heartbeat.py imports this module only when
# a heartbeat carries one of these sections, so that nodes without heating
# never load it.

ROOM_MODES = ("auto", "manual", "off")
BOILER_STATES = ("OFF", "BLOCKED", "ON", "PENDING_OFF", "PUMP_OVERRUN")
_TEMP_MAX_DC = 2000  # temperatures in the room and boiler sections: |t| <= 200 °C
# a valve node's room: mode, flags (calling, stale, unread), temperature, its
# age, the room control's own opening, the opening commanded now, the
# confirmed (feedback) opening, the next schedule block's start and target
_ROOM = ">BBiiBBBii"
_ROOM_BYTES = struct.calcsize(_ROOM)  # 21
_ROOM_CALLING = 1
_ROOM_STALE = 2
# The room's sensor not read yet since the valve node's boot: no sensor fault. Sent with the stale bit (the
# temperature is unknown all the same): a node from before this bit ignores it and reads the room as stale.
_ROOM_UNREAD = 4
_PCT_UNKNOWN = 255
# the boiler node's state machine: state, flags (on, holding the valves, cooldown), flow setpoint
_BOILER = ">BBi"
_BOILER_BYTES = struct.calcsize(_BOILER)  # 6
_BOILER_ON = 1
_BOILER_HOLD = 2
_BOILER_COOLDOWN = 4


def parse(kind: int, view: memoryview, offset: int, length: int) -> dict[str, object]:
    """Section kind (SECTION_ROOM or SECTION_BOILER) decoded, for the heartbeat's "room" or "boiler"; _Malformed if it
    is not valid."""
    if kind == SECTION_ROOM:
        return _parse_room(view, offset, length)
    return _parse_boiler(view, offset, length)


def put(buffer: bytearray, offset: int, heartbeat: dict[str, object]) -> int:
    """Write the room and boiler sections heartbeat has, in type order; the offset after them."""
    room = heartbeat.get("room")
    if room is not None:
        offset = _put_room(buffer, offset, room)
    boiler = heartbeat.get("boiler")
    if boiler is not None:
        offset = _put_boiler(buffer, offset, boiler)
    return offset


def _parse_room(view: memoryview, offset: int, length: int) -> dict[str, object]:
    if length != _ROOM_BYTES:
        raise _Malformed(BAD_FIELD)
    mode, flags, temp_dc, temp_age_ms, normal_pct, command_pct, valve_pct, next_start_in_ms, next_target_dc = \
        struct.unpack_from(_ROOM, view, offset)
    if (not -_TEMP_MAX_DC <= temp_dc <= _TEMP_MAX_DC and temp_dc != _UNKNOWN) or not 0 <= temp_age_ms <= MAX_VALUE \
            or normal_pct > 100 or command_pct > 100 or (valve_pct > 100 and valve_pct != _PCT_UNKNOWN):
        raise _Malformed(BAD_FIELD)
    if next_start_in_ms == _UNKNOWN and next_target_dc == _UNKNOWN:
        next_start_in_ms = next_target_dc = None
    elif not 0 <= next_start_in_ms <= MAX_VALUE or not -_TEMP_MAX_DC <= next_target_dc <= _TEMP_MAX_DC:
        raise _Malformed(BAD_FIELD)
    return {"mode": _name(mode, ROOM_MODES, None), "calling": flags & _ROOM_CALLING != 0,
            "stale": flags & _ROOM_STALE != 0, "unread": flags & _ROOM_UNREAD != 0, "temp_dc": _known(temp_dc),
            "temp_age_ms": temp_age_ms, "normal_pct": normal_pct, "command_pct": command_pct,
            "valve_pct": None if valve_pct == _PCT_UNKNOWN else valve_pct,
            "next_start_in_ms": next_start_in_ms, "next_target_dc": next_target_dc}


def _parse_boiler(view: memoryview, offset: int, length: int) -> dict[str, object]:
    if length != _BOILER_BYTES:
        raise _Malformed(BAD_FIELD)
    state, flags, setpoint_dc = struct.unpack_from(_BOILER, view, offset)
    if not 0 <= setpoint_dc <= _TEMP_MAX_DC:
        raise _Malformed(BAD_FIELD)
    return {"fsm": _name(state, BOILER_STATES, None), "on": flags & _BOILER_ON != 0,
            "hold": flags & _BOILER_HOLD != 0, "cooldown": flags & _BOILER_COOLDOWN != 0,
            "setpoint_dc": setpoint_dc}


def _put_room(buffer: bytearray, offset: int, room: object) -> int:
    path = "heartbeat.room"
    if not isinstance(room, dict):
        raise FieldError(path, "must be an object or null")
    mode = _code(_get(room, "mode", path), ROOM_MODES, None, path + ".mode")
    flags = 0
    if _bool_at(room, "calling", path):
        flags |= _ROOM_CALLING
    if _bool_at(room, "stale", path):
        flags |= _ROOM_STALE
    if _bool_at(room, "unread", path):
        flags |= _ROOM_UNREAD
    temp_dc = _get(room, "temp_dc", path)
    temp = _UNKNOWN if temp_dc is None else _check_int(temp_dc, path + ".temp_dc", -_TEMP_MAX_DC, _TEMP_MAX_DC)
    age_ms = _check_int(_get(room, "temp_age_ms", path), path + ".temp_age_ms", 0, MAX_VALUE)
    normal_pct = _check_int(_get(room, "normal_pct", path), path + ".normal_pct", 0, 100)
    command_pct = _check_int(_get(room, "command_pct", path), path + ".command_pct", 0, 100)
    valve_pct = _get(room, "valve_pct", path)
    valve = _PCT_UNKNOWN if valve_pct is None else _check_int(valve_pct, path + ".valve_pct", 0, 100)
    next_start = _get(room, "next_start_in_ms", path)
    next_target = _get(room, "next_target_dc", path)
    if next_start is None or next_target is None:
        if next_start is not None or next_target is not None:
            raise FieldError(path + ".next_start_in_ms", "and next_target_dc must both be null or both be given")
        start = target = _UNKNOWN
    else:
        start = _check_int(next_start, path + ".next_start_in_ms", 0, MAX_VALUE)
        target = _check_int(next_target, path + ".next_target_dc", -_TEMP_MAX_DC, _TEMP_MAX_DC)
    buffer[offset] = SECTION_ROOM
    struct.pack_into(">H" + _ROOM[1:], buffer, offset + 1, _ROOM_BYTES, mode, flags, temp, age_ms, normal_pct,
                     command_pct, valve, start, target)
    return offset + 3 + _ROOM_BYTES


def _put_boiler(buffer: bytearray, offset: int, boiler: object) -> int:
    path = "heartbeat.boiler"
    if not isinstance(boiler, dict):
        raise FieldError(path, "must be an object or null")
    state = _code(_get(boiler, "fsm", path), BOILER_STATES, None, path + ".fsm")
    flags = 0
    if _bool_at(boiler, "on", path):
        flags |= _BOILER_ON
    if _bool_at(boiler, "hold", path):
        flags |= _BOILER_HOLD
    if _bool_at(boiler, "cooldown", path):
        flags |= _BOILER_COOLDOWN
    setpoint_dc = _check_int(_get(boiler, "setpoint_dc", path), path + ".setpoint_dc", 0, _TEMP_MAX_DC)
    buffer[offset] = SECTION_BOILER
    struct.pack_into(">H" + _BOILER[1:], buffer, offset + 1, _BOILER_BYTES, state, flags, setpoint_dc)
    return offset + 3 + _BOILER_BYTES


def _bool_at(mapping: dict[str, object], name: str, path: str) -> bool:
    value = _get(mapping, name, path)
    if value is not True and value is not False:
        raise FieldError(path + "." + name, describe(value) + " is not true or false")
    return value
