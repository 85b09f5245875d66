"""The heartbeat codec: the documented bytes, a lossless round trip, clear errors, counted rejections."""

from __future__ import annotations

import json
import struct
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given

from .conftest import VECTORS_DIR
from .heartbeats import (
    CONTROLLED,
    KEY,
    MAX_VALUE,
    OTHER_KEY,
    SAMPLE,
    heartbeats,
    independent_encode,
    minimal,
    sign,
    unsigned_body,
)

_UNKNOWN = -0x80000000
_ROOM = {"mode": "manual", "calling": True, "stale": False, "unread": False, "temp_dc": 195, "temp_age_ms": 1200,
         "normal_pct": 70, "command_pct": 80, "valve_pct": 60, "next_start_in_ms": 1800000, "next_target_dc": 210}


def _room(mode: int = 1, flags: int = 1, temp: int = 195, normal: int = 70, valve: int = 60, start: int = 1800000,
          target: int = 210) -> bytes:
    return struct.pack(">BBiiBBBii", mode, flags, temp, 1200, normal, 80, valve, start, target)


def _pads(core: ModuleType, key: bytes = KEY) -> tuple[bytes, bytes]:
    pads: tuple[bytes, bytes] = core.heartbeat.prepare_key(key)
    return pads


def test_sample_has_the_documented_bytes(core: ModuleType) -> None:
    assert core.heartbeat.encode(_pads(core), SAMPLE) == independent_encode(SAMPLE)


def test_the_control_section_has_the_documented_bytes(core: ModuleType) -> None:
    data = core.heartbeat.encode(_pads(core), CONTROLLED)
    assert data == independent_encode(CONTROLLED)
    assert core.heartbeat.decode(_pads(core), "house", data) == ("ok", CONTROLLED)


def test_the_encoding_vector_holds_the_documented_bytes() -> None:
    # The vector's expected hex (checked on all four runtimes by test_vectors)
    # is the format of docs/heartbeat.md, built here without the codec.
    vector = json.loads((VECTORS_DIR / "heartbeat" / "encode_full.json").read_text())
    assert bytes.fromhex(vector["input"]["key_hex"]) == KEY
    assert vector["input"]["heartbeat"] == SAMPLE
    expected = independent_encode(SAMPLE)
    assert vector["expect"] == {"ok": {"hex": expected.hex(), "bytes": len(expected)}}


@given(heartbeats)
def test_every_valid_heartbeat_survives_the_round_trip(core: ModuleType, message: dict[str, Any]) -> None:
    data = core.heartbeat.encode(_pads(core), message)
    assert data == independent_encode(message)
    assert len(data) <= core.heartbeat.MAX_BYTES
    reason, decoded = core.heartbeat.decode(_pads(core), message["group"], data)
    assert reason == "ok"
    assert decoded == message


def test_the_largest_heartbeat_fits_in_512_bytes(core: ModuleType) -> None:
    # Every id at 16 characters, both hashes at 32 bytes, 12 overrides, every section.
    longest = "n" * 16
    overrides = [["valve-" + "x" * 8 + f"{index:02d}", 100] for index in range(12)]
    message = dict(SAMPLE, group=longest, node=longest, circuit=longest, config_hash="ab" * 32, digest="cd" * 32,
                   heating={"state": "TIER3_ESCALATED", "overrides": overrides},
                   control={"target_seq": MAX_VALUE, "exposure_ma": MAX_VALUE}, room=_ROOM,
                   boiler={"fsm": "ON", "on": True, "hold": False, "cooldown": False, "setpoint_dc": 700})
    data = core.heartbeat.encode(_pads(core), message)
    # header 4 + ids 3 x 17 + boot/seq 8 + facts 40 + hashes 2 x 33 + meter 3 + 32
    # + heating 3 + 2 + 12 x 18 + control 3 + 8 + room 3 + 21 + boiler 3 + 6 + tag 16
    assert len(data) == 4 + 51 + 8 + 40 + 66 + 35 + 221 + 11 + 24 + 9 + 16 == 485
    assert core.heartbeat.decode(_pads(core), longest, data) == ("ok", message)


def test_encode_into_reuses_one_buffer(core: ModuleType) -> None:
    buffer = core.heartbeat.new_buffer()
    long_size = core.heartbeat.encode_into(buffer, _pads(core), SAMPLE)
    short = minimal(seq=43)
    short_size = core.heartbeat.encode_into(buffer, _pads(core), short)
    assert short_size < long_size
    assert bytes(buffer[:short_size]) == independent_encode(short)
    assert len(buffer) == 512


@pytest.mark.parametrize(("changes", "error"), [
    ({"node": ""}, "heartbeat.node: \"\" must have 1 to 16 characters"),  # empty id
    ({"node": "n" * 17}, "heartbeat.node: \"" + "n" * 17 + "\" must have 1 to 16 characters"),  # too long
    ({"circuit": "my garage"}, "heartbeat.circuit: \"my garage\" must be printable ASCII without spaces"),
    ({"group": 7}, "heartbeat.group: 7 is not a string"),
    ({"boot_id": 0}, "heartbeat.boot_id: 0 is outside 1..1073741823"),  # boot ids start at 1
    ({"seq": 1 << 30}, "heartbeat.seq: 1073741824 is outside 0..1073741823"),  # stays a small int
    ({"applied_ma": -1}, "heartbeat.applied_ma: -1 is outside 0..1073741823"),
    ({"target_ma": 16.0}, "heartbeat.target_ma: a float is not an integer"),  # no float reprs in errors
    ({"max_ma": True}, "heartbeat.max_ma: true is not an integer"),  # bool is not an int here
    ({"priority": 40000}, "heartbeat.priority: 40000 is outside -32768..32767"),
    ({"phases": "L4"}, "heartbeat.phases: \"L4\" is not one of L1, L2, L3, L123"),
    ({"mode": "fast"}, "heartbeat.mode: \"fast\" is not one of off, continuous, solar_priority, solar_only, excess"),
    ({"failsafe": 0}, "heartbeat.failsafe: 0 is not true or false"),
    ({"draw_ma": [1, 2]}, "heartbeat.draw_ma: must be a list of 3 values (L1, L2, L3)"),
    ({"draw_ma": [1, -2, 3]}, "heartbeat.draw_ma[1]: -2 is outside 0..1073741823"),
    ({"digest": "ABCD"}, "heartbeat.digest: \"ABCD\" is not lowercase hex"),
    ({"digest": "abc"}, "heartbeat.digest: must be an even number of hex digits, at most 64"),
    ({"config_hash": "00" * 33}, "heartbeat.config_hash: must be an even number of hex digits, at most 64"),
    ({"meter": {"seq": 1, "age_ms": 0, "ma": [0, 0, 0]}}, "heartbeat.meter.managed_ma: is missing"),
    ({"meter": {"seq": 1, "age_ms": 0, "ma": [0, 0, -(1 << 30)], "managed_ma": [0, 0, 0]}},
     "heartbeat.meter.ma[2]: -1073741824 is outside -1073741823..1073741823"),
    ({"meter": {"seq": 1, "age_ms": 0, "ma": [0, 0, 0], "managed_ma": [0, None, 0]}},
     "heartbeat.meter.managed_ma[1]: null is not an integer"),  # only readings may be unknown
    ({"heating": {"state": "TIER4_ACTIVE", "overrides": []}},
     "heartbeat.heating.state: \"TIER4_ACTIVE\" is not one of DISABLED, INACTIVE, TIER1_ACTIVE, TIER1_ESCALATED, "
     "TIER2_ACTIVE, TIER2_ESCALATED, TIER3_ACTIVE, TIER3_ESCALATED"),
    ({"heating": {"state": "INACTIVE", "overrides": [["b", 10], ["a", 10]]}},
     "heartbeat.heating.overrides[1][0]: \"a\" must come after \"b\" (sorted by node, each node once)"),
    ({"heating": {"state": "INACTIVE", "overrides": [["a", 10], ["a", 20]]}},
     "heartbeat.heating.overrides[1][0]: \"a\" must come after \"a\" (sorted by node, each node once)"),
    # Ids are shown as every core error shows text (errors.quoted), not repr(): an id may hold a backslash.
    ({"heating": {"state": "INACTIVE", "overrides": [["b\\x", 10], ["a", 10]]}},
     "heartbeat.heating.overrides[1][0]: \"a\" must come after \"b\\\\x\" (sorted by node, each node once)"),
    ({"heating": {"state": "INACTIVE", "overrides": [["a", 101]]}},
     "heartbeat.heating.overrides[0][1]: 101 is outside 0..100"),
    ({"heating": {"state": "INACTIVE", "overrides": [["v" + str(n), 10] for n in range(10, 23)]}},
     "heartbeat.heating.overrides: must be a list of at most 12 [node, pct] pairs"),
    ({"room": dict(_ROOM, mode="away")}, "heartbeat.room.mode: \"away\" is not one of auto, manual, off"),
    ({"room": dict(_ROOM, temp_dc=19.5)}, "heartbeat.room.temp_dc: a float is not an integer"),
    ({"room": dict(_ROOM, valve_pct=101)}, "heartbeat.room.valve_pct: 101 is outside 0..100"),
    ({"room": dict(_ROOM, stale=None)}, "heartbeat.room.stale: null is not true or false"),
    ({"room": dict(_ROOM, next_target_dc=None)},
     "heartbeat.room.next_start_in_ms: and next_target_dc must both be null or both be given"),
    ({"boiler": {"fsm": "ON", "on": True, "hold": False, "cooldown": False}},
     "heartbeat.boiler.setpoint_dc: is missing"),
    ({"boiler": {"fsm": "LIT", "on": True, "hold": False, "cooldown": False, "setpoint_dc": 700}},
     "heartbeat.boiler.fsm: \"LIT\" is not one of OFF, BLOCKED, ON, PENDING_OFF, PUMP_OVERRUN"),
])
def test_a_bad_field_is_named(core: ModuleType, changes: dict[str, Any], error: str) -> None:
    with pytest.raises(core.errors.FieldError) as raised:
        core.heartbeat.encode(_pads(core), dict(SAMPLE, **changes))
    assert str(raised.value) == error


def test_a_missing_field_is_named(core: ModuleType) -> None:
    message = dict(SAMPLE)
    del message["applied_ma"]
    with pytest.raises(core.errors.FieldError, match=r"^heartbeat\.applied_ma: is missing$"):
        core.heartbeat.encode(_pads(core), message)


@pytest.mark.parametrize("key", [b"", b"k" * 15, "a string key"])
def test_a_weak_key_is_refused(core: ModuleType, key: object) -> None:
    with pytest.raises(core.errors.FieldError, match=r"^key: "):
        core.heartbeat.prepare_key(key)


_GOOD = independent_encode(SAMPLE)


@pytest.mark.parametrize(("data", "reason"), [
    (_GOOD, "ok"),
    ("a string", "not_bytes"),  # only bytes-like input is read
    (None, "not_bytes"),
    (list(_GOOD), "not_bytes"),
    (b"", "truncated"),
    (_GOOD[:18], "truncated"),  # shorter than magic, version and tag
    (_GOOD + bytes(512 - len(_GOOD) + 1), "too_long"),  # 513 bytes, refused before any work
    (b"XM" + _GOOD[2:], "bad_magic"),
    (_GOOD[:2] + b"\x02" + _GOOD[3:], "bad_version"),  # a future version: not parsed
    (_GOOD[:-1] + bytes([_GOOD[-1] ^ 1]), "bad_tag"),  # last tag bit
    (_GOOD[:100] + bytes([_GOOD[100] ^ 0x10]) + _GOOD[101:], "bad_tag"),  # a body bit
    (independent_encode(SAMPLE, OTHER_KEY), "bad_tag"),  # another group's key
    (independent_encode(dict(SAMPLE, group="flat")), "wrong_group"),  # our key, another group's id
    (bytearray(_GOOD), "ok"),
    (memoryview(_GOOD), "ok"),
])
def test_decode_reasons(core: ModuleType, data: object, reason: str) -> None:
    got, message = core.heartbeat.decode(_pads(core), "house", data)
    assert got == reason
    assert (message == SAMPLE) if reason == "ok" else (message is None)


_PLAIN = minimal()
_BODY = unsigned_body(_PLAIN)
_METER_BODY = struct.pack(">8i", 1, 2, 3, 4, 5, 6, 7, 8)


def _section(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + struct.pack(">H", len(body)) + body


def _patched(offset: int, value: int) -> bytes:
    body = bytearray(_BODY)
    body[offset] = value
    return bytes(body)


def _patched_int(offset: int, value: int) -> bytes:
    body = bytearray(_BODY)
    struct.pack_into(">i", body, offset, value)
    return bytes(body)


# Offsets into the plain body: "LM", version, flags, group "house" (1+5),
# node "evse-1" (1+6), boot id and seq (8), circuit "garage" (1+6), then the facts.
_FLAGS = 3
_NODE = 10
_FACTS = 4 + 6 + 7 + 8 + 7
_DRAW = _FACTS + 4 + 5 * 4  # after phases, mode, priority, min, max, step, target, applied


@pytest.mark.parametrize(("body", "reason", "changes"), [
    (_BODY, "ok", {}),
    (_patched(_FLAGS, 0x02 | 0xF0), "ok", {"failsafe": False, "active": False}),  # reserved flag bits ignored
    (_patched(_FACTS, 3), "bad_field", None),  # phases code 3 (L1+L2) is not a wiring
    (_patched(_FACTS + 1, 5), "bad_field", None),  # mode 5 does not exist
    (_patched(_NODE + 1, 0x20), "bad_field", None),  # a space in the node id
    (_patched(_NODE, 0), "bad_field", None),  # an empty node id
    (_patched(_NODE, 17), "bad_field", None),  # a node id longer than 16
    (_patched(_FACTS + 4, 0x80), "bad_field", None),  # min_ma negative
    (_patched(_FACTS + 4, 0x40), "bad_field", None),  # min_ma 2^30 and more
    (_patched_int(_DRAW, -0x80000000), "ok", {"draw_ma": [None, 15900, None]}),  # int32 minimum: unknown
    (_patched_int(_DRAW, -1), "bad_field", None),  # any other negative draw is not
    (_BODY[:-1], "truncated", None),  # the digest runs past the end
    (_BODY[:_FACTS + 10], "truncated", None),  # the facts run past the end
    (_BODY[:_FLAGS], "truncated", None),  # nothing after the version
    (_BODY + b"\x01", "truncated", None),  # half a section header
    (_BODY + _section(1, _METER_BODY)[:-1], "truncated", None),  # a section longer than the message
    (_BODY + _section(9, b"future"), "ok", {}),  # an unknown section is skipped
    (_BODY + _section(9, b""), "ok", {}),  # even an empty one
    (_BODY + _section(1, _METER_BODY) + _section(9, b"x"), "ok",
     {"meter": {"seq": 1, "age_ms": 2, "ma": [3, 4, 5], "managed_ma": [6, 7, 8]}}),
    (_BODY + _section(0, b""), "bad_field", None),  # type 0 is reserved
    (_BODY + _section(1, _METER_BODY) * 2, "bad_field", None),  # a section twice
    (_BODY + _section(2, b"\x01\x00") + _section(1, _METER_BODY), "bad_field", None),  # out of order
    (_BODY + _section(1, _METER_BODY + b"\x00"), "bad_field", None),  # a known section has an exact size
    (_BODY + _section(1, struct.pack(">8i", -1, 2, 3, 4, 5, 6, 7, 8)), "bad_field", None),  # meter seq < 0
    (_BODY + _section(1, struct.pack(">8i", 1, 2, 3, 4, 5, 6, -7, 8)), "bad_field", None),  # managed < 0
    (_BODY + _section(2, b"\x01\x00"), "ok", {"heating": {"state": "INACTIVE", "overrides": []}}),
    (_BODY + _section(2, b"\x08\x00"), "bad_field", None),  # tier state 8 does not exist
    (_BODY + _section(2, b"\x01\x01\x01a\x65"), "bad_field", None),  # 101 %
    (_BODY + _section(2, b"\x01\x02\x01b\x0a\x01a\x0a"), "bad_field", None),  # overrides not sorted
    (_BODY + _section(2, b"\x01\x01\x01a\x0a\x00"), "bad_field", None),  # a byte after the overrides
    (_BODY + _section(2, b"\x01\x02\x01a\x0a"), "truncated", None),  # fewer overrides than counted
    (_BODY + _section(2, b"\x01\x0d" + b"".join(b"\x02v" + bytes([65 + n, 10]) for n in range(13))),
     "bad_field", None),  # 13 overrides
    (_BODY + _section(3, struct.pack(">ii", 17, 6000)), "ok", {"control": {"target_seq": 17, "exposure_ma": 6000}}),
    (_BODY + _section(2, b"\x01\x00") + _section(3, struct.pack(">ii", 0, 0)), "ok",
     {"heating": {"state": "INACTIVE", "overrides": []}, "control": {"target_seq": 0, "exposure_ma": 0}}),
    (_BODY + _section(3, struct.pack(">ii", -1, 0)), "bad_field", None),  # a sequence number is never negative
    (_BODY + _section(3, struct.pack(">ii", 0, -1)), "bad_field", None),  # nor a current
    (_BODY + _section(3, struct.pack(">i", 1)), "bad_field", None),  # the control section has 8 bytes
    (_BODY + _section(3, b"\x00" * 8) + _section(2, b"\x01\x00"), "bad_field", None),  # out of order
    # The room section (4): mode, flags, temperature, its age, normal, commanded and confirmed openings, next block.
    (_BODY + _section(4, _room()), "ok", {"room": _ROOM}),
    (_BODY + _section(4, _room(temp=_UNKNOWN, valve=255, start=_UNKNOWN, target=_UNKNOWN, flags=2)), "ok",
     {"room": dict(_ROOM, temp_dc=None, valve_pct=None, next_start_in_ms=None, next_target_dc=None, calling=False,
                   stale=True)}),  # unknown temperature and feedback, no block: the room is stale
    (_BODY + _section(4, _room(temp=_UNKNOWN, flags=6)), "ok",
     {"room": dict(_ROOM, temp_dc=None, calling=False, stale=True, unread=True)}),  # not read yet since its boot
    # Bits 3-7 are reserved and ignored, as bit 2 (unread) was by the nodes before it: they read that room stale.
    (_BODY + _section(4, _room(flags=0xF9)), "ok", {"room": _ROOM}),
    (_BODY + _section(4, _room(mode=3)), "bad_field", None),  # mode 3 does not exist
    (_BODY + _section(4, _room(temp=2001)), "bad_field", None),  # 200.1 °C is no room temperature
    (_BODY + _section(4, _room(normal=101)), "bad_field", None),  # 101 %
    (_BODY + _section(4, _room(valve=254)), "bad_field", None),  # feedback is 0..100 or 255 (unknown)
    (_BODY + _section(4, _room(start=_UNKNOWN)), "bad_field", None),  # a block without a start
    (_BODY + _section(4, _room(start=-5)), "bad_field", None),  # a block that started: not the next one
    (_BODY + _section(4, _room()[:-1]), "bad_field", None),  # the room section has 21 bytes
    # The boiler section (5): state machine, flags (on, hold, cooldown), setpoint.
    (_BODY + _section(5, struct.pack(">BBi", 2, 1, 700)), "ok",
     {"boiler": {"fsm": "ON", "on": True, "hold": False, "cooldown": False, "setpoint_dc": 700}}),
    (_BODY + _section(5, struct.pack(">BBi", 4, 6, 300)), "ok",
     {"boiler": {"fsm": "PUMP_OVERRUN", "on": False, "hold": True, "cooldown": True, "setpoint_dc": 300}}),
    (_BODY + _section(5, struct.pack(">BBi", 5, 0, 700)), "bad_field", None),  # state 5 does not exist
    (_BODY + _section(5, struct.pack(">BBi", 0, 0, -1)), "bad_field", None),  # a setpoint below 0 °C
    (_BODY + _section(5, struct.pack(">BB", 0, 0)), "bad_field", None),  # the boiler section has 6 bytes
    (_BODY + _section(5, struct.pack(">BBi", 0, 0, 0)) + _section(4, _room()), "bad_field", None),  # order
])
def test_an_authenticated_but_malformed_message_is_rejected(core: ModuleType, body: bytes, reason: str,
                                                            changes: dict[str, Any] | None) -> None:
    got, message = core.heartbeat.decode(_pads(core), "house", sign(body))
    assert got == reason
    if changes is None:
        assert message is None
    else:
        assert message == dict(_PLAIN, **changes)
