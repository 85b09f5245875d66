"""Fuzzing the heartbeat decoder: nothing escapes as an exception, nothing forged is accepted."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.companion.runtimes import Runtime
from loadmesh.core import canon

from .heartbeats import KEY, OTHER_KEY, SAMPLE, heartbeats, independent_encode, minimal, sign

# Reasons an attacker without the key can cause: every one is decided before
# the parser sees a byte, so unsigned bytes never reach it.
PRE_AUTH = {"not_bytes", "too_long", "truncated", "bad_magic", "bad_version", "bad_tag"}
HEADER = b"LM\x01"


def _decode(core: ModuleType, data: object, group: str = "house") -> tuple[str, Any]:
    result: tuple[str, Any] = core.heartbeat.decode(core.heartbeat.prepare_key(KEY), group, data)
    return result


@settings(max_examples=1500)
@given(st.binary(max_size=600))
def test_random_bytes_are_rejected_before_parsing(core: ModuleType, data: bytes) -> None:
    reason, message = _decode(core, data)
    assert reason in PRE_AUTH and message is None


@settings(max_examples=1000)
@given(st.binary(min_size=16, max_size=520))
def test_random_bytes_behind_a_valid_header_fail_the_tag(core: ModuleType, rest: bytes) -> None:
    reason, message = _decode(core, HEADER + rest)
    assert reason == ("too_long" if len(rest) > 509 else "bad_tag")
    assert message is None


@settings(max_examples=600)
@given(heartbeats, st.data())
def test_any_single_bit_flip_is_rejected(core: ModuleType, message: dict[str, Any], data: st.DataObject) -> None:
    good = independent_encode(message)
    bit = data.draw(st.integers(0, len(good) * 8 - 1), label="bit")
    reason, decoded = _decode(core, _flip(good, bit), message["group"])
    # The magic and version are read before the tag; everything else is covered by it.
    expected = "bad_magic" if bit < 16 else "bad_version" if bit < 24 else "bad_tag"
    assert (reason, decoded) == (expected, None)


def test_every_single_bit_flip_of_the_sample_is_rejected(core: ModuleType) -> None:
    # Exhaustively, on the message with every field and both sections (1424 flips).
    good = independent_encode(SAMPLE)
    pads = core.heartbeat.prepare_key(KEY)
    accepted = []
    for bit in range(len(good) * 8):
        reason, _ = core.heartbeat.decode(pads, "house", _flip(good, bit))
        if reason not in ("bad_magic", "bad_version", "bad_tag"):
            accepted.append((bit, reason))
    assert accepted == []


@settings(max_examples=300)
@given(heartbeats, st.data())
def test_truncated_or_extended_messages_are_rejected(core: ModuleType, message: dict[str, Any],
                                                     data: st.DataObject) -> None:
    good = independent_encode(message)
    cut = data.draw(st.integers(0, len(good) - 1), label="cut")
    assert _decode(core, good[:cut], message["group"])[0] in PRE_AUTH
    tail = data.draw(st.binary(min_size=1, max_size=600), label="tail")
    reason, decoded = _decode(core, good + tail, message["group"])
    assert reason == ("too_long" if len(good) + len(tail) > 512 else "bad_tag") and decoded is None


@settings(max_examples=200)
@given(heartbeats)
def test_a_message_signed_with_another_key_is_rejected(core: ModuleType, message: dict[str, Any]) -> None:
    assert _decode(core, independent_encode(message, OTHER_KEY), message["group"]) == ("bad_tag", None)


@settings(max_examples=600)
@given(st.binary(max_size=500))
def test_any_signed_body_decodes_without_raising(core: ModuleType, body: bytes) -> None:
    # What a buggy key holder might send: random bytes, correctly signed.
    reason, message = _decode(core, sign(HEADER + body))
    assert reason in ("ok", "truncated", "bad_field", "wrong_group", "too_long")
    assert (message is not None) == (reason == "ok")


@settings(max_examples=600)
@given(heartbeats, st.data())
def test_signed_mutations_of_valid_bodies_decode_without_raising(core: ModuleType, message: dict[str, Any],
                                                                 data: st.DataObject) -> None:
    body = bytearray(independent_encode(message)[:-16])
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        index = data.draw(st.integers(3, len(body) - 1), label="index")
        body[index] = data.draw(st.integers(0, 255), label="byte")
    reason, decoded = _decode(core, sign(bytes(body)), message["group"])
    assert (decoded is not None) == (reason == "ok")
    if decoded is not None:
        # Whatever is accepted is a valid heartbeat: it encodes, and decodes to itself.
        again = core.heartbeat.encode(core.heartbeat.prepare_key(KEY), decoded)
        assert _decode(core, again, message["group"]) == ("ok", decoded)


# The same decoding on all four runtimes: fuzzed packets in small batches
# (MicroPython's 12K-word heap bounds a response to about a kilobyte).

def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _fuzz_packets() -> st.SearchStrategy[list[bytes]]:
    good = independent_encode(minimal())
    packets = st.one_of(
        st.binary(max_size=80),
        st.binary(max_size=300).map(lambda rest: HEADER + rest),
        st.binary(max_size=200).map(lambda body: sign(HEADER + body)),  # signed garbage
        st.integers(0, len(good) * 8 - 1).map(lambda bit: _flip(good, bit)),
        st.integers(0, len(good)).map(lambda cut: good[:cut]),
    )
    return st.lists(packets, min_size=1, max_size=8)


@settings(max_examples=60)
@given(_fuzz_packets())
def test_fuzzed_packets_decode_alike_on_every_runtime(core: ModuleType, all_runtimes: list[Runtime],
                                                      packets: list[bytes]) -> None:
    request = {"key_hex": KEY.hex(), "group": "house", "packets": [packet.hex() for packet in packets]}
    pads = core.heartbeat.prepare_key(KEY)
    expected = canon.dumps({"ok": {"results": [
        dict(zip(("reason", "heartbeat"), core.heartbeat.decode(pads, "house", packet), strict=True))
        for packet in packets]}})
    for runtime in all_runtimes:
        assert runtime.respond("heartbeat_decode", request) == expected, runtime.name


@settings(max_examples=25)
@given(heartbeats)
def test_valid_heartbeats_encode_and_decode_alike_on_every_runtime(all_runtimes: list[Runtime],
                                                                   message: dict[str, Any]) -> None:
    data = independent_encode(message)
    encode_request = {"key_hex": KEY.hex(), "heartbeat": message}
    decode_request = {"key_hex": KEY.hex(), "group": message["group"], "packets": [data.hex()]}
    for runtime in all_runtimes:
        encoded = json.loads(runtime.respond("heartbeat_encode", encode_request))
        assert encoded == {"ok": {"hex": data.hex(), "bytes": len(data)}}, runtime.name
        decoded = json.loads(runtime.respond("heartbeat_decode", decode_request))
        assert decoded == {"ok": {"results": [{"reason": "ok", "heartbeat": message}]}}, runtime.name
