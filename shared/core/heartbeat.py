"""The heartbeat wire format: compact, versioned, at most 512 bytes, signed with HMAC-SHA256."""

import struct

from . import hmac256
from .errors import FieldError, describe

# The layout is documented field by field in docs/heartbeat.md; keep the two in
# step. In short: "LM", version, flags, group, node, boot id, sequence number,
# static facts, the controller's numbers, config version and hash, view
# digest, then optional sections (type, length, body) in ascending type order,
# then a 16-byte tag: HMAC-SHA256 over everything before it, truncated.
#
# decode() checks size, magic, version and tag before it parses anything, so
# bytes that were not signed with the group key never reach the parser; what
# it rejects comes back as a short reason string, never as an exception.

MAX_BYTES = 512
VERSION = 1
TAG_BYTES = 16  # 128 bits of HMAC-SHA256
MIN_KEY_BYTES = 16
MAX_ID_LEN = 16  # group, node and circuit ids: printable ASCII, no space
MAX_HASH_BYTES = 32  # config hash and view digest, sent as given (up to SHA-256 size)
MAX_OVERRIDES = 12  # valve overrides in the heating section (keeps the worst case at 485 bytes)
MAX_VALUE = (1 << 30) - 1  # integers stay small ints on ESP32 (31-bit)

SECTION_METER = 1
SECTION_HEATING = 2
SECTION_CONTROL = 3
SECTION_ROOM = 4
SECTION_BOILER = 5

# Stable names of what decode() returns; callers count them.
OK = "ok"
NOT_BYTES = "not_bytes"
TOO_LONG = "too_long"
TRUNCATED = "truncated"
BAD_MAGIC = "bad_magic"
BAD_VERSION = "bad_version"
BAD_TAG = "bad_tag"
BAD_FIELD = "bad_field"
WRONG_GROUP = "wrong_group"

PHASES = ("L1", "L2", "L3", "L123")
_PHASE_CODES = (1, 2, 4, 7)  # a bit per phase
MODES = ("off", "continuous", "solar_priority", "solar_only", "excess")
TIER_STATES = ("DISABLED", "INACTIVE", "TIER1_ACTIVE", "TIER1_ESCALATED", "TIER2_ACTIVE",
               "TIER2_ESCALATED", "TIER3_ACTIVE", "TIER3_ESCALATED")

_MAGIC0 = 0x4C  # "L"
_MAGIC1 = 0x4D  # "M"
_HEAD_BYTES = 3  # magic and version: what is read before the tag is checked
_MIN_BYTES = _HEAD_BYTES + TAG_BYTES
_UNKNOWN = -0x80000000  # a reading that is not known (int32 minimum)
_FLAG_FAILSAFE = 1
_FLAG_DEMAND = 2
_FLAG_ACTIVE = 4
# phases, mode, priority, min, max, step, target, applied, draw L1-L3, config version
_FACTS = ">BBhiiiiiiiii"
_FACTS_BYTES = struct.calcsize(_FACTS)  # 40
# meter sequence number, age, signed current L1-L3, managed draws L1-L3
_METER = ">iiiiiiii"
_METER_BYTES = struct.calcsize(_METER)  # 32
# the sequence number of the first heartbeat that carried the current target,
# and the most the sender's load may still draw (a lowered limit, while the car follows)
_CONTROL = ">ii"
_CONTROL_BYTES = struct.calcsize(_CONTROL)  # 8


def prepare_key(key: bytes) -> tuple[bytes, bytes]:
    """The prepared group key that encode() and decode() take."""
    if not isinstance(key, (bytes, bytearray)):
        raise FieldError("key", "must be bytes")
    if len(key) < MIN_KEY_BYTES:
        raise FieldError("key", "has " + str(len(key)) + " bytes; at least " + str(MIN_KEY_BYTES) + " are needed")
    return hmac256.prepare(bytes(key))


def new_buffer() -> bytearray:
    """A buffer for encode_into(), allocated once per sender."""
    return bytearray(MAX_BYTES)


def encode(pads: tuple[bytes, bytes], heartbeat: object) -> bytes:
    """The signed wire bytes of heartbeat; FieldError names a bad field."""
    buffer = new_buffer()
    size = encode_into(buffer, pads, heartbeat)
    return bytes(buffer[:size])


def encode_into(buffer: bytearray, pads: tuple[bytes, bytes], heartbeat: object) -> int:
    """Write the signed heartbeat into buffer (from new_buffer()); return its length."""
    if len(buffer) < MAX_BYTES:
        raise FieldError("buffer", "has " + str(len(buffer)) + " bytes; " + str(MAX_BYTES) + " are needed")
    if not isinstance(heartbeat, dict):
        raise FieldError("heartbeat", "must be an object")
    flags = 0
    if _bool(heartbeat, "failsafe"):
        flags |= _FLAG_FAILSAFE
    if _bool(heartbeat, "demand"):
        flags |= _FLAG_DEMAND
    if _bool(heartbeat, "active"):
        flags |= _FLAG_ACTIVE
    buffer[0] = _MAGIC0
    buffer[1] = _MAGIC1
    buffer[2] = VERSION
    buffer[3] = flags
    offset = _put_id(buffer, 4, _get(heartbeat, "group"), "heartbeat.group")
    offset = _put_id(buffer, offset, _get(heartbeat, "node"), "heartbeat.node")
    struct.pack_into(">ii", buffer, offset, _int(heartbeat, "boot_id", 1, MAX_VALUE),
                     _int(heartbeat, "seq", 0, MAX_VALUE))
    offset = _put_id(buffer, offset + 8, _get(heartbeat, "circuit"), "heartbeat.circuit")
    draws = _triple(_get(heartbeat, "draw_ma"), "heartbeat.draw_ma", 0, True)
    struct.pack_into(_FACTS, buffer, offset,
                     _code(_get(heartbeat, "phases"), PHASES, _PHASE_CODES, "heartbeat.phases"),
                     _code(_get(heartbeat, "mode"), MODES, None, "heartbeat.mode"),
                     _int(heartbeat, "priority", -0x8000, 0x7FFF),
                     _int(heartbeat, "min_ma", 0, MAX_VALUE), _int(heartbeat, "max_ma", 0, MAX_VALUE),
                     _int(heartbeat, "step_ma", 0, MAX_VALUE), _int(heartbeat, "target_ma", 0, MAX_VALUE),
                     _int(heartbeat, "applied_ma", 0, MAX_VALUE), draws[0], draws[1], draws[2],
                     _int(heartbeat, "config_version", 0, MAX_VALUE))
    offset = _put_hex(buffer, offset + _FACTS_BYTES, _get(heartbeat, "config_hash"), "heartbeat.config_hash")
    offset = _put_hex(buffer, offset, _get(heartbeat, "digest"), "heartbeat.digest")
    meter = heartbeat.get("meter")
    if meter is not None:
        offset = _put_meter(buffer, offset, meter)
    heating = heartbeat.get("heating")
    if heating is not None:
        offset = _put_heating(buffer, offset, heating)
    control = heartbeat.get("control")
    if control is not None:
        offset = _put_control(buffer, offset, control)
    if heartbeat.get("room") is not None or heartbeat.get("boiler") is not None:
        from . import heatsections  # only heating nodes send these: an EVSE's heap never holds the codec

        offset = heatsections.put(buffer, offset, heartbeat)
    # The bounds on ids, hashes and overrides keep the largest message at 485
    # bytes (a test pins it); this catches a future section that breaks them.
    if offset + TAG_BYTES > MAX_BYTES:
        raise FieldError("heartbeat", "encodes to more than " + str(MAX_BYTES) + " bytes")
    tag = hmac256.digest(pads, memoryview(buffer)[:offset])
    for index in range(TAG_BYTES):
        buffer[offset + index] = tag[index]
    return offset + TAG_BYTES


def decode(pads: tuple[bytes, bytes], group: str, data: object) -> tuple[str, dict[str, object] | None]:
    """(OK, heartbeat) for a valid message of this group, else (reason, None); never raises."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return NOT_BYTES, None
    size = len(data)
    if size > MAX_BYTES:
        return TOO_LONG, None
    if size < _MIN_BYTES:
        return TRUNCATED, None
    if data[0] != _MAGIC0 or data[1] != _MAGIC1:
        return BAD_MAGIC, None
    if data[2] != VERSION:
        return BAD_VERSION, None
    view = memoryview(data)
    end = size - TAG_BYTES
    tag = hmac256.digest(pads, view[:end])
    if not hmac256.equal(memoryview(tag)[:TAG_BYTES], view[end:]):
        return BAD_TAG, None
    # From here on the bytes come from a key holder: what is wrong now is a
    # bug in a peer, not an attack.
    try:
        heartbeat = _parse(view, end)
    except _Malformed as exc:
        return exc.reason, None
    if heartbeat["group"] != group:
        return WRONG_GROUP, None
    return OK, heartbeat


class _Malformed(Exception):
    """An authenticated message that does not parse; reason is what decode() returns."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse(view: memoryview, end: int) -> dict[str, object]:
    _need(_HEAD_BYTES, 1, end)
    flags = view[_HEAD_BYTES]
    group, offset = _read_id(view, _HEAD_BYTES + 1, end)
    node, offset = _read_id(view, offset, end)
    _need(offset, 8, end)
    boot_id, seq = struct.unpack_from(">ii", view, offset)
    circuit, offset = _read_id(view, offset + 8, end)
    _need(offset, _FACTS_BYTES, end)
    facts = struct.unpack_from(_FACTS, view, offset)
    offset += _FACTS_BYTES
    config_hash, offset = _read_hex(view, offset, end)
    digest, offset = _read_hex(view, offset, end)
    if not 1 <= boot_id <= MAX_VALUE or not 0 <= seq <= MAX_VALUE:
        raise _Malformed(BAD_FIELD)
    phases = _name(facts[0], PHASES, _PHASE_CODES)
    mode = _name(facts[1], MODES, None)
    for index in range(3, 12):
        value = facts[index]
        if not 0 <= value <= MAX_VALUE and not (8 <= index <= 10 and value == _UNKNOWN):
            raise _Malformed(BAD_FIELD)
    # The sections first, then the dict in one literal: a key added to a built dict grows its table (MicroPython
    # makes a literal's table of its size, then 23 slots to 29 for a 24th key): on the boiler node a table each
    # room's heartbeat left behind, and a block of 29 slots (464 bytes on a 64-bit host) it needed in one piece.
    meter = heating = control = room = boiler = None
    last_kind = 0
    while offset < end:
        _need(offset, 3, end)
        kind = view[offset]
        length = (view[offset + 1] << 8) | view[offset + 2]
        offset += 3
        _need(offset, length, end)
        # Ascending order makes the encoding canonical and a repeat impossible;
        # type 0 is reserved. Unknown types are skipped: a newer peer may add
        # sections that this one does not need to understand.
        if kind <= last_kind:
            raise _Malformed(BAD_FIELD)
        last_kind = kind
        if kind == SECTION_METER:
            meter = _parse_meter(view, offset, length)
        elif kind == SECTION_HEATING:
            heating = _parse_heating(view, offset, offset + length)
        elif kind == SECTION_CONTROL:
            control = _parse_control(view, offset, length)
        elif kind in (SECTION_ROOM, SECTION_BOILER):
            from . import heatsections

            if kind == SECTION_ROOM:
                room = heatsections.parse(kind, view, offset, length)
            else:
                boiler = heatsections.parse(kind, view, offset, length)
        offset += length
    draw_ma = [_known(facts[8]), _known(facts[9]), _known(facts[10])]
    if room is None and boiler is None:
        return {
            "group": group, "node": node, "boot_id": boot_id, "seq": seq, "circuit": circuit,
            "phases": phases, "mode": mode, "priority": facts[2],
            "min_ma": facts[3], "max_ma": facts[4], "step_ma": facts[5],
            "target_ma": facts[6], "applied_ma": facts[7], "draw_ma": draw_ma,
            "config_version": facts[11], "config_hash": config_hash, "digest": digest,
            "failsafe": flags & _FLAG_FAILSAFE != 0, "demand": flags & _FLAG_DEMAND != 0,
            "active": flags & _FLAG_ACTIVE != 0,  # the other flag bits are reserved and ignored
            "meter": meter, "heating": heating, "control": control,
        }
    # A valve node's room or the boiler node's state machine: the same fields and the one a node of either sends,
    # by its name, so that the table has one slot per key; a second one (no node sends both) is added after.
    section_key = "room" if room is not None else "boiler"
    heartbeat: dict[str, object] = {
        "group": group, "node": node, "boot_id": boot_id, "seq": seq, "circuit": circuit,
        "phases": phases, "mode": mode, "priority": facts[2],
        "min_ma": facts[3], "max_ma": facts[4], "step_ma": facts[5],
        "target_ma": facts[6], "applied_ma": facts[7], "draw_ma": draw_ma,
        "config_version": facts[11], "config_hash": config_hash, "digest": digest,
        "failsafe": flags & _FLAG_FAILSAFE != 0, "demand": flags & _FLAG_DEMAND != 0,
        "active": flags & _FLAG_ACTIVE != 0,
        "meter": meter, "heating": heating, "control": control, section_key: room if room is not None else boiler,
    }
    if room is not None and boiler is not None:
        heartbeat["boiler"] = boiler
    return heartbeat


def _parse_meter(view: memoryview, offset: int, length: int) -> dict[str, object]:
    if length != _METER_BYTES:
        raise _Malformed(BAD_FIELD)
    values = struct.unpack_from(_METER, view, offset)
    for index in range(8):
        value = values[index]
        low = -MAX_VALUE if 2 <= index <= 4 else 0
        if not low <= value <= MAX_VALUE and not (2 <= index <= 4 and value == _UNKNOWN):
            raise _Malformed(BAD_FIELD)
    return {"seq": values[0], "age_ms": values[1],
            "ma": [_known(values[2]), _known(values[3]), _known(values[4])],
            "managed_ma": [values[5], values[6], values[7]]}


def _parse_heating(view: memoryview, offset: int, end: int) -> dict[str, object]:
    _need(offset, 2, end)
    state = _name(view[offset], TIER_STATES, None)
    count = view[offset + 1]
    if count > MAX_OVERRIDES:
        raise _Malformed(BAD_FIELD)
    offset += 2
    overrides: list[list[object]] = []
    previous = ""
    for _ in range(count):
        node, offset = _read_id(view, offset, end)
        _need(offset, 1, end)
        pct = view[offset]
        offset += 1
        if pct > 100 or node <= previous:
            raise _Malformed(BAD_FIELD)
        previous = node
        overrides.append([node, pct])
    if offset != end:
        raise _Malformed(BAD_FIELD)
    return {"state": state, "overrides": overrides}


def _parse_control(view: memoryview, offset: int, length: int) -> dict[str, object]:
    if length != _CONTROL_BYTES:
        raise _Malformed(BAD_FIELD)
    target_seq, exposure_ma = struct.unpack_from(_CONTROL, view, offset)
    if not 0 <= target_seq <= MAX_VALUE or not 0 <= exposure_ma <= MAX_VALUE:
        raise _Malformed(BAD_FIELD)
    return {"target_seq": target_seq, "exposure_ma": exposure_ma}


def _need(offset: int, count: int, end: int) -> None:
    if offset + count > end:
        raise _Malformed(TRUNCATED)


def _read_id(view: memoryview, offset: int, end: int) -> tuple[str, int]:
    _need(offset, 1, end)
    length = view[offset]
    offset += 1
    if length < 1 or length > MAX_ID_LEN:
        raise _Malformed(BAD_FIELD)
    _need(offset, length, end)
    for index in range(offset, offset + length):
        if not 0x21 <= view[index] <= 0x7E:
            raise _Malformed(BAD_FIELD)
    return bytes(view[offset:offset + length]).decode(), offset + length


def _read_hex(view: memoryview, offset: int, end: int) -> tuple[str, int]:
    _need(offset, 1, end)
    length = view[offset]
    offset += 1
    if length > MAX_HASH_BYTES:
        raise _Malformed(BAD_FIELD)
    _need(offset, length, end)
    if length == 0:
        return "", offset  # MicroPython 1.25's b"".hex() is b"", not ""
    return bytes(view[offset:offset + length]).hex(), offset + length


def _name(code: int, names: tuple[str, ...], codes: tuple[int, ...] | None) -> str:
    if codes is not None:
        for index in range(len(codes)):
            if codes[index] == code:
                return names[index]
        raise _Malformed(BAD_FIELD)
    if code >= len(names):
        raise _Malformed(BAD_FIELD)
    return names[code]


def _known(value: int) -> int | None:
    return None if value == _UNKNOWN else value


# Encoding: every field is checked, and a bad one raises FieldError naming it.


def _get(mapping: dict[str, object], name: str, path: str = "heartbeat") -> object:
    if name not in mapping:
        raise FieldError(path + "." + name, "is missing")
    return mapping[name]


def _check_int(value: object, path: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldError(path, describe(value) + " is not an integer")
    if value < low or value > high:
        raise FieldError(path, str(value) + " is outside " + str(low) + ".." + str(high))
    return value


def _int(mapping: dict[str, object], name: str, low: int, high: int) -> int:
    return _check_int(_get(mapping, name), "heartbeat." + name, low, high)


def _bool(mapping: dict[str, object], name: str) -> bool:
    value = _get(mapping, name)
    if value is not True and value is not False:
        raise FieldError("heartbeat." + name, describe(value) + " is not true or false")
    return value


def _triple(value: object, path: str, low: int, may_be_unknown: bool) -> list[int]:
    if not isinstance(value, list) or len(value) != 3:
        raise FieldError(path, "must be a list of 3 values (L1, L2, L3)")
    out: list[int] = []
    for index in range(3):
        item = value[index]
        if item is None and may_be_unknown:
            out.append(_UNKNOWN)
        else:
            out.append(_check_int(item, path + "[" + str(index) + "]", low, MAX_VALUE))
    return out


def _code(value: object, names: tuple[str, ...], codes: tuple[int, ...] | None, path: str) -> int:
    for index in range(len(names)):
        if names[index] == value:
            return index if codes is None else codes[index]
    raise FieldError(path, describe(value) + " is not one of " + ", ".join(names))


def _put_id(buffer: bytearray, offset: int, value: object, path: str) -> int:
    if not isinstance(value, str):
        raise FieldError(path, describe(value) + " is not a string")
    length = len(value)
    if length < 1 or length > MAX_ID_LEN:
        raise FieldError(path, describe(value) + " must have 1 to " + str(MAX_ID_LEN) + " characters")
    for char in value:
        if not 0x21 <= ord(char) <= 0x7E:
            raise FieldError(path, describe(value) + " must be printable ASCII without spaces")
    buffer[offset] = length
    buffer[offset + 1:offset + 1 + length] = value.encode()
    return offset + 1 + length


def _put_hex(buffer: bytearray, offset: int, value: object, path: str) -> int:
    if not isinstance(value, str):
        raise FieldError(path, describe(value) + " is not a hex string")
    if len(value) > 2 * MAX_HASH_BYTES or len(value) % 2:
        raise FieldError(path, "must be an even number of hex digits, at most " + str(2 * MAX_HASH_BYTES))
    for char in value:
        if char not in "0123456789abcdef":
            raise FieldError(path, describe(value) + " is not lowercase hex")
    raw = bytes.fromhex(value)
    buffer[offset] = len(raw)
    buffer[offset + 1:offset + 1 + len(raw)] = raw
    return offset + 1 + len(raw)


def _put_meter(buffer: bytearray, offset: int, meter: object) -> int:
    if not isinstance(meter, dict):
        raise FieldError("heartbeat.meter", "must be an object or null")
    seq = _check_int(_get(meter, "seq", "heartbeat.meter"), "heartbeat.meter.seq", 0, MAX_VALUE)
    age_ms = _check_int(_get(meter, "age_ms", "heartbeat.meter"), "heartbeat.meter.age_ms", 0, MAX_VALUE)
    current = _triple(_get(meter, "ma", "heartbeat.meter"), "heartbeat.meter.ma", -MAX_VALUE, True)
    managed = _triple(_get(meter, "managed_ma", "heartbeat.meter"), "heartbeat.meter.managed_ma", 0, False)
    buffer[offset] = SECTION_METER
    struct.pack_into(">H" + _METER[1:], buffer, offset + 1, _METER_BYTES, seq, age_ms,
                     current[0], current[1], current[2], managed[0], managed[1], managed[2])
    return offset + 3 + _METER_BYTES


def _put_control(buffer: bytearray, offset: int, control: object) -> int:
    if not isinstance(control, dict):
        raise FieldError("heartbeat.control", "must be an object or null")
    target_seq = _check_int(_get(control, "target_seq", "heartbeat.control"), "heartbeat.control.target_seq", 0,
                            MAX_VALUE)
    exposure_ma = _check_int(_get(control, "exposure_ma", "heartbeat.control"), "heartbeat.control.exposure_ma",
                             0, MAX_VALUE)
    buffer[offset] = SECTION_CONTROL
    struct.pack_into(">H" + _CONTROL[1:], buffer, offset + 1, _CONTROL_BYTES, target_seq, exposure_ma)
    return offset + 3 + _CONTROL_BYTES


def _put_heating(buffer: bytearray, offset: int, heating: object) -> int:
    if not isinstance(heating, dict):
        raise FieldError("heartbeat.heating", "must be an object or null")
    state = _code(_get(heating, "state", "heartbeat.heating"), TIER_STATES, None, "heartbeat.heating.state")
    overrides = _get(heating, "overrides", "heartbeat.heating")
    if not isinstance(overrides, list) or len(overrides) > MAX_OVERRIDES:
        raise FieldError("heartbeat.heating.overrides", "must be a list of at most " + str(MAX_OVERRIDES)
                         + " [node, pct] pairs")
    start = offset
    buffer[offset] = SECTION_HEATING
    buffer[offset + 3] = state
    buffer[offset + 4] = len(overrides)
    offset += 5
    previous = ""
    for index in range(len(overrides)):
        path = "heartbeat.heating.overrides[" + str(index) + "]"
        pair = overrides[index]
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise FieldError(path, "must be a [node, pct] pair")
        node = pair[0]
        offset = _put_id(buffer, offset, node, path + "[0]")
        assert isinstance(node, str)
        if node <= previous:
            raise FieldError(path + "[0]", describe(node) + " must come after " + describe(previous)
                             + " (sorted by node, each node once)")
        previous = node
        buffer[offset] = _check_int(pair[1], path + "[1]", 0, 100)
        offset += 1
    struct.pack_into(">H", buffer, start + 1, offset - start - 3)
    return offset
