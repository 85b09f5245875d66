"""Canonical JSON matches CPython's json with sorted keys, on every runtime."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.companion.runtimes import Runtime
from loadmesh.core import canon

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**62), max_value=2**62) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _oracle(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_matches_cpython_json(value: object) -> None:
    assert canon.dumps(value) == _oracle(value)


@given(json_values)
@settings(max_examples=100, deadline=None)
def test_encode_is_the_text_in_ascii(core: ModuleType, value: object) -> None:
    # What an HTTP answer sends as it is, pure and compiled: the same bytes as dumps' text.
    assert core.canon.encode(value) == _oracle(value).encode("ascii")


@given(json_values)
@settings(max_examples=60, deadline=None)
def test_same_bytes_on_every_runtime(runtime: Runtime, value: object) -> None:
    assert runtime.respond("canon", value) == _oracle({"ok": value})


# "\ud800" is JSON (RFC 8259 takes any \uXXXX); CPython's json reads it as a lone surrogate, which
# st.text() never draws. MicroPython's json makes an unchecked string of it, which canon escapes alike
# (test_cli_allocate: such a load id is named in the same bytes on every runtime).
LONE_SURROGATES = ["\ud800", "a\udc00b", {"\udfff": "\ud83d"}]


def test_a_lone_surrogate_is_escaped_as_json_escapes_it(core: ModuleType) -> None:
    assert core.canon.encode(LONE_SURROGATES) == _oracle(LONE_SURROGATES).encode("ascii")
    assert core.canon.dumps(LONE_SURROGATES) == _oracle(LONE_SURROGATES)


@pytest.mark.parametrize(
    "value",
    [
        1.5,  # floats never enter canonical output: ESP32 floats are 32-bit
        {1: "key is not a string"},
        {"nested": [object()]},
    ],
)
def test_refuses_what_has_no_canonical_form(value: object) -> None:
    with pytest.raises(TypeError):
        canon.dumps(value)
    with pytest.raises(TypeError):
        canon.encode(value)


def test_error_names_the_path() -> None:
    with pytest.raises(TypeError, match=r"\$\.loads\[1\]"):
        canon.dumps({"loads": [1, 2.5]})
    with pytest.raises(TypeError, match=r"\$\.loads\[1\]"):
        canon.encode({"loads": [1, 2.5]})
