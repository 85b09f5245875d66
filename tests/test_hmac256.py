"""HMAC-SHA256 on hashlib alone agrees with CPython's hmac; the compare has no shortcut answer."""

from __future__ import annotations

import hashlib
import hmac
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_agrees_with_cpython_hmac(core: ModuleType, key: bytes, message: bytes) -> None:
    # Keys shorter than, equal to and longer than the 64-byte block all occur.
    assert core.hmac256.hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).digest()


@given(key=st.binary(max_size=100), message=st.binary(max_size=100))
def test_prepared_key_and_buffer_types_give_the_same_tag(core: ModuleType, key: bytes, message: bytes) -> None:
    pads = core.hmac256.prepare(key)
    expected = hmac.new(key, message, hashlib.sha256).digest()
    for data in (message, bytearray(message), memoryview(message)):
        assert core.hmac256.digest(pads, data) == expected


@pytest.mark.parametrize(("a", "b", "same"), [
    (b"", b"", True),  # empty
    (b"\x00" * 16, b"\x00" * 16, True),  # equal
    (b"\x00" * 16, b"\x00" * 15 + b"\x01", False),  # last byte differs
    (b"\x80" + b"\x00" * 15, b"\x00" * 16, False),  # first byte, top bit
    (b"\x00" * 16, b"\x00" * 17, False),  # lengths differ
    (b"abc", bytearray(b"abc"), True),  # bytes against bytearray
    (memoryview(b"xyz")[1:], b"yz", True),  # a slice of a view
])
def test_equal(core: ModuleType, a: bytes, b: bytes, same: bool) -> None:
    assert core.hmac256.equal(a, b) is same


@given(st.binary(min_size=1, max_size=40), st.data())
def test_equal_sees_any_single_bit(core: ModuleType, value: bytes, data: st.DataObject) -> None:
    bit = data.draw(st.integers(0, len(value) * 8 - 1))
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert core.hmac256.equal(value, bytes(value))
    assert not core.hmac256.equal(value, bytes(flipped))
