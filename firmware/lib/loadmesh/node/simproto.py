"""The simulated HAL's wire protocol: actuator commands to the plant, sensor readings back (UDP)."""

import struct

# One datagram each way, big-endian, on loopback. The node (hal_sim) sends a
# COMMAND when an actuator changes and at every watchdog feed (once per tick);
# the plant answers each with the node's READINGS. The plant treats a node
# whose feeds stop for wdt_ms as reset by its watchdog (docs/firmware.md).
# This module is the protocol's one definition: the node imports it on
# MicroPython, the plant (loadmesh.companion.sim.plant) on CPython.
#
# COMMAND (node -> plant)
#   0   2  magic "LS"          2  1  version (2)        3  1  type (1)
#   4  1+n node id (1..16 printable ASCII)
#      4  seq            i32, rises with every command of one process
#      1  flags          bit 0 feed (watchdog fed), 1 relay closed, 2 boiler call,
#                        3 failsafe (telemetry)
#      2  pilot_permille u16, 0..1000 (1000: constant +12 V, no charging)
#      1  valve_pct      u8, 0..100 (commanded)
#      2  setpoint_dc    u16, the boiler's flow setpoint 0..1500, SETPOINT_NONE not driven
#      4  applied_ma     i32  \
#      4  target_ma      i32   | telemetry for the trace and the demo table;
#      4  mem_alloc      i32   | not actuator state (UNKNOWN when not known)
#      1  peers          u8   /  peers heard within the timeout
#
# READINGS (plant -> node)
#   0   2  magic "LS"          2  1  version (2)        3  1  type (2)
#   4  1+n node id
#      4  seq            i32, the command answered
#      1  pilot_state    ASCII "A".."F", or 0 without a pilot
#      1  flags          bit 0 flame, 1 meter attached, 2 flame sensor wired (the boiler)
#      1  valve_pct      u8, confirmed position 0..100, 255 unknown
#      3x4 current_ma    i32 per phase L1..L3, measured at the node; UNKNOWN allowed
#      3x4 meter_ma      i32 per phase, signed (negative: export); UNKNOWN allowed
#      4  meter_seq      i32, the meter reading's own sequence number
#      4  meter_age_ms   i32, how old the reading is
#      4x4 temps_dc      i32 room, flow, return, outside (deg C x 10); UNKNOWN allowed
#      4  week_ms        i32, the plant's time of week (ms since Monday 00:00); -1 unknown

MAGIC0 = 0x4C  # "L"
MAGIC1 = 0x53  # "S"
VERSION = 2
COMMAND = 1
READINGS = 2
MAX_BYTES = 128
UNKNOWN = -0x80000000  # i32 minimum: a reading that is not known
VALVE_UNKNOWN = 255
SETPOINT_NONE = 0xFFFF
SETPOINT_MAX_DC = 1500

FLAG_FEED = 1
FLAG_RELAY = 2
FLAG_BOILER = 4
FLAG_FAILSAFE = 8

FLAG_FLAME = 1
FLAG_METER = 2
FLAG_BURNER = 4

TEMPS = ("room", "flow", "return", "outside")
PILOT_STATES = "ABCDEF"

_COMMAND_BODY = ">iBHBHiiiB"  # seq, flags, pilot, valve, setpoint, applied, target, mem_alloc, peers
_COMMAND_BODY_BYTES = struct.calcsize(_COMMAND_BODY)
_READINGS_BODY = ">iBBBiiiiiiiiiiiii"  # seq, state, flags, valve, current x3, meter x3, meter seq, age, temps x4, week
_READINGS_BODY_BYTES = struct.calcsize(_READINGS_BODY)
_I32_MAX = 0x7FFFFFFF


def new_buffer() -> bytearray:
    """A buffer for encode_command() / encode_readings(), allocated once."""
    return bytearray(MAX_BYTES)


def encode_command(buffer: bytearray, node: str, seq: int, flags: int, pilot_permille: int, valve_pct: int,
                   setpoint_dc: int | None, applied_ma: int, target_ma: int, mem_alloc: int, peers: int) -> int:
    """Write a COMMAND into buffer; its length. A setpoint outside 0..SETPOINT_MAX_DC is sent as not driven."""
    offset = _header(buffer, COMMAND, node)
    setpoint = SETPOINT_NONE if setpoint_dc is None or not 0 <= setpoint_dc <= SETPOINT_MAX_DC else setpoint_dc
    struct.pack_into(_COMMAND_BODY, buffer, offset, seq, flags, pilot_permille, valve_pct, setpoint,
                     _i32(applied_ma), _i32(target_ma), _i32(mem_alloc), peers if peers < 255 else 255)
    return offset + _COMMAND_BODY_BYTES


def decode_command(data: bytes | bytearray | memoryview) -> tuple[str, tuple[int, ...]] | None:
    """(node, (seq, flags, pilot_permille, valve_pct, setpoint_dc, applied_ma, target_ma, mem_alloc, peers)),
    or None; setpoint_dc is SETPOINT_NONE when not driven."""
    head = _read_header(data, COMMAND)
    if head is None:
        return None
    node, offset = head
    if len(data) != offset + _COMMAND_BODY_BYTES:
        return None
    body = struct.unpack_from(_COMMAND_BODY, data, offset)
    if body[2] > 1000 or body[3] > 100 or (body[4] > SETPOINT_MAX_DC and body[4] != SETPOINT_NONE):
        return None
    return node, body


def encode_readings(buffer: bytearray, node: str, seq: int, pilot_state: str, flags: int, valve_pct: int | None,
                    current_ma: list[int | None], meter_ma: list[int | None], meter_seq: int, meter_age_ms: int,
                    temps_dc: list[int | None], week_ms: int) -> int:
    """Write a READINGS into buffer; its length."""
    offset = _header(buffer, READINGS, node)
    state = ord(pilot_state) if pilot_state else 0
    valve = VALVE_UNKNOWN if valve_pct is None else valve_pct
    struct.pack_into(_READINGS_BODY, buffer, offset, seq, state, flags, valve,
                     _i32(current_ma[0]), _i32(current_ma[1]), _i32(current_ma[2]),
                     _i32(meter_ma[0]), _i32(meter_ma[1]), _i32(meter_ma[2]), meter_seq, meter_age_ms,
                     _i32(temps_dc[0]), _i32(temps_dc[1]), _i32(temps_dc[2]), _i32(temps_dc[3]), week_ms)
    return offset + _READINGS_BODY_BYTES


def decode_readings(data: bytes | bytearray | memoryview) -> tuple[str, tuple[int, ...]] | None:
    """(node, (seq, state, flags, valve, current x3, meter x3, meter seq, age, temps x4, week)), or None."""
    head = _read_header(data, READINGS)
    if head is None:
        return None
    node, offset = head
    if len(data) != offset + _READINGS_BODY_BYTES:
        return None
    body = struct.unpack_from(_READINGS_BODY, data, offset)
    state = body[1]
    if state != 0 and not 0x41 <= state <= 0x46:
        return None
    if body[3] > 100 and body[3] != VALVE_UNKNOWN:
        return None
    return node, body


def known(value: int) -> int | None:
    """A decoded i32 reading, or None where it is UNKNOWN."""
    return None if value == UNKNOWN else value


def _i32(value: int | None) -> int:
    if value is None or value < -_I32_MAX or value > _I32_MAX:
        return UNKNOWN
    return value


def _header(buffer: bytearray, kind: int, node: str) -> int:
    raw = node.encode()
    if not 1 <= len(raw) <= 16:
        raise ValueError("node id must have 1 to 16 characters")
    buffer[0] = MAGIC0
    buffer[1] = MAGIC1
    buffer[2] = VERSION
    buffer[3] = kind
    buffer[4] = len(raw)
    buffer[5:5 + len(raw)] = raw
    return 5 + len(raw)


def _read_header(data: bytes | bytearray | memoryview, kind: int) -> tuple[str, int] | None:
    size = len(data)
    if size < 6 or size > MAX_BYTES:
        return None
    if data[0] != MAGIC0 or data[1] != MAGIC1 or data[2] != VERSION or data[3] != kind:
        return None
    length = data[4]
    if not 1 <= length <= 16 or 5 + length > size:
        return None
    for index in range(5, 5 + length):
        if not 0x21 <= data[index] <= 0x7E:
            return None
    return bytes(data[5:5 + length]).decode(), 5 + length
