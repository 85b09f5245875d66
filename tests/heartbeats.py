"""Heartbeats for tests: a full sample, a hypothesis strategy of valid ones, and an independent encoder."""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

from hypothesis import strategies as st

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
OTHER_KEY = bytes.fromhex("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
MAX_VALUE = (1 << 30) - 1

# Every field and the meter and heating sections: what the boiler node that
# also reads the mains meter would send (the control section is in CONTROLLED).
SAMPLE: dict[str, Any] = {
    "group": "house", "node": "evse-1", "boot_id": 7, "seq": 42, "circuit": "garage",
    "phases": "L123", "mode": "continuous", "priority": 1,
    "min_ma": 6000, "max_ma": 32000, "step_ma": 1000,
    "demand": True, "active": True, "failsafe": False,
    "draw_ma": [15800, 15900, None], "target_ma": 16000, "applied_ma": 16000,
    "config_version": 3, "config_hash": "a1b2c3d4e5f60718", "digest": "00ff" * 8,
    "meter": {"seq": 9, "age_ms": 250, "ma": [20000, -3000, None], "managed_ma": [15800, 15900, 0]},
    "heating": {"state": "TIER1_ACTIVE", "overrides": [["valve-bath", 70], ["valve-hall", 80]]},
    "control": None,
}


# What a node's controller sends: the control section, no meter or heating.
CONTROLLED: dict[str, Any] = dict(SAMPLE, meter=None, heating=None, control={"target_seq": 40, "exposure_ma": 16000})


def minimal(**changes: Any) -> dict[str, Any]:
    """An EVSE's heartbeat without optional sections, with changes applied."""
    message = dict(SAMPLE, meter=None, heating=None, control=None)
    message.update(changes)
    return message


ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16)
_values = st.integers(0, MAX_VALUE)
_hashes = st.binary(max_size=32).map(bytes.hex)
_meters = st.fixed_dictionaries({
    "seq": _values, "age_ms": _values,
    "ma": st.lists(st.none() | st.integers(-MAX_VALUE, MAX_VALUE), min_size=3, max_size=3),
    "managed_ma": st.lists(_values, min_size=3, max_size=3),
})
_heatings = st.fixed_dictionaries({
    "state": st.sampled_from(["DISABLED", "INACTIVE", "TIER1_ACTIVE", "TIER1_ESCALATED", "TIER2_ACTIVE",
                              "TIER2_ESCALATED", "TIER3_ACTIVE", "TIER3_ESCALATED"]),
    "overrides": st.dictionaries(ids, st.integers(0, 100), max_size=12).map(
        lambda pcts: [[node, pcts[node]] for node in sorted(pcts)]),
})
_temps = st.integers(-2000, 2000)
_pcts = st.integers(0, 100)
_rooms = st.fixed_dictionaries({
    "mode": st.sampled_from(["auto", "manual", "off"]), "calling": st.booleans(), "stale": st.booleans(),
    "unread": st.booleans(), "temp_dc": st.none() | _temps, "temp_age_ms": _values, "normal_pct": _pcts,
    "command_pct": _pcts, "valve_pct": st.none() | _pcts,
}).flatmap(lambda room: (st.just((None, None)) | st.tuples(_values, _temps)).map(
    lambda block: dict(room, next_start_in_ms=block[0], next_target_dc=block[1])))
_boilers = st.fixed_dictionaries({
    "fsm": st.sampled_from(["OFF", "BLOCKED", "ON", "PENDING_OFF", "PUMP_OVERRUN"]), "on": st.booleans(),
    "hold": st.booleans(), "cooldown": st.booleans(), "setpoint_dc": st.integers(0, 2000),
})
heartbeats = st.fixed_dictionaries({
    "group": ids, "node": ids, "boot_id": st.integers(1, MAX_VALUE), "seq": _values, "circuit": ids,
    "phases": st.sampled_from(["L1", "L2", "L3", "L123"]),
    "mode": st.sampled_from(["off", "continuous", "solar_priority", "solar_only", "excess"]),
    "priority": st.integers(-0x8000, 0x7FFF),
    "min_ma": _values, "max_ma": _values, "step_ma": _values,
    "demand": st.booleans(), "active": st.booleans(), "failsafe": st.booleans(),
    "draw_ma": st.lists(st.none() | _values, min_size=3, max_size=3),
    "target_ma": _values, "applied_ma": _values, "config_version": _values,
    "config_hash": _hashes, "digest": _hashes,
    "meter": st.none() | _meters, "heating": st.none() | _heatings,
    "control": st.none() | st.fixed_dictionaries({"target_seq": _values, "exposure_ma": _values}),
}, optional={"room": _rooms, "boiler": _boilers})


def _text(value: str) -> bytes:
    raw = value.encode("ascii")
    return bytes([len(raw)]) + raw


def _known(value: int | None) -> int:
    return -0x80000000 if value is None else value


def unsigned_body(message: dict[str, Any], sections: bytes | None = None) -> bytes:
    """The bytes before the tag, built from the table in docs/heartbeat.md, not from the codec."""
    phases = {"L1": 1, "L2": 2, "L3": 4, "L123": 7}[message["phases"]]
    mode = ["off", "continuous", "solar_priority", "solar_only", "excess"].index(message["mode"])
    flags = int(message["failsafe"]) | int(message["demand"]) << 1 | int(message["active"]) << 2
    body = b"LM" + bytes([1, flags]) + _text(message["group"]) + _text(message["node"])
    body += struct.pack(">ii", message["boot_id"], message["seq"]) + _text(message["circuit"])
    body += struct.pack(">BBh", phases, mode, message["priority"])
    body += struct.pack(">9i", message["min_ma"], message["max_ma"], message["step_ma"], message["target_ma"],
                        message["applied_ma"], *[_known(v) for v in message["draw_ma"]], message["config_version"])
    for name in ("config_hash", "digest"):
        raw = bytes.fromhex(message[name])
        body += bytes([len(raw)]) + raw
    if sections is not None:
        return body + sections
    meter = message.get("meter")
    if meter is not None:
        body += b"\x01" + struct.pack(">H8i", 32, meter["seq"], meter["age_ms"],
                                      *[_known(v) for v in meter["ma"]], *meter["managed_ma"])
    heating = message.get("heating")
    if heating is not None:
        states = ["DISABLED", "INACTIVE", "TIER1_ACTIVE", "TIER1_ESCALATED", "TIER2_ACTIVE",
                  "TIER2_ESCALATED", "TIER3_ACTIVE", "TIER3_ESCALATED"]
        inner = bytes([states.index(heating["state"]), len(heating["overrides"])])
        for node, pct in heating["overrides"]:
            inner += _text(node) + bytes([pct])
        body += b"\x02" + struct.pack(">H", len(inner)) + inner
    control = message.get("control")
    if control is not None:
        body += b"\x03" + struct.pack(">Hii", 8, control["target_seq"], control["exposure_ma"])
    room = message.get("room")
    if room is not None:
        flags = int(room["calling"]) | int(room["stale"]) << 1 | int(room["unread"]) << 2
        valve = 255 if room["valve_pct"] is None else room["valve_pct"]
        body += b"\x04" + struct.pack(">HBBiiBBBii", 21, ["auto", "manual", "off"].index(room["mode"]), flags,
                                       _known(room["temp_dc"]), room["temp_age_ms"], room["normal_pct"],
                                       room["command_pct"], valve, _known(room["next_start_in_ms"]),
                                       _known(room["next_target_dc"]))
    boiler = message.get("boiler")
    if boiler is not None:
        flags = int(boiler["on"]) | int(boiler["hold"]) << 1 | int(boiler["cooldown"]) << 2
        fsm = ["OFF", "BLOCKED", "ON", "PENDING_OFF", "PUMP_OVERRUN"].index(boiler["fsm"])
        body += b"\x05" + struct.pack(">HBBi", 6, fsm, flags, boiler["setpoint_dc"])
    return body


def sign(body: bytes, key: bytes = KEY) -> bytes:
    """body followed by its tag: HMAC-SHA256 by CPython's hmac module, first 16 bytes."""
    return body + hmac.new(key, body, hashlib.sha256).digest()[:16]


def independent_encode(message: dict[str, Any], key: bytes = KEY) -> bytes:
    """The wire bytes of message as the documented format defines them."""
    return sign(unsigned_body(message), key)
