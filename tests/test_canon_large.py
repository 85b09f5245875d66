"""Canonical JSON of large answers (long strings, containers past the join threshold) matches CPython's json."""

from __future__ import annotations

import json
from types import ModuleType

from hypothesis import given, settings
from hypothesis import strategies as st

large_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**62), max_value=2**62) | st.text(max_size=400),
    lambda children: st.lists(children, max_size=15) | st.dictionaries(st.text(max_size=10), children, max_size=15),
    max_leaves=300,
)


@given(large_values)
@settings(max_examples=100)
def test_large_values_match_cpython_json(core: ModuleType, value: object) -> None:
    assert core.canon.dumps(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def test_an_answer_longer_than_the_join_threshold(core: ModuleType) -> None:
    steps = [{"now_ms": i, "log": ["open room" + str(i) + " at 70%: tier 1 schedule_60m"] * 5} for i in range(50)]
    value = {"ok": {"steps": steps, "state": {"rooms": {}}}}
    assert len(json.dumps(value)) > 10000
    assert core.canon.dumps(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))
