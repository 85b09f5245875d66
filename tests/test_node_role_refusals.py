"""A role's refusal of the heating endpoints names its kind as the config's JSON writes it."""

from __future__ import annotations

import pytest

from loadmesh.core import controller, groupconfig
from loadmesh.core.errors import FieldError
from loadmesh.node.roles import open_role

CONFIG = groupconfig.parse({
    "group": "house", "version": 1, "updated_at": 1, "origin": "test", "key_id": "house",
    "site": {"phases": 1, "voltage_v": 230, "limit_ma": [25000], "safety_pct": 100},
    "circuits": [], "heartbeat_ms": 500, "peer_timeout_ms": 3000,
    "members": [{"id": "garage", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000,
                 "step_ma": 1000, "priority": 0, "mode": "continuous"}],
})


@pytest.mark.parametrize(("call", "field", "problem"), [
    ("heating", "heating", "is for valve and boiler nodes; this node's kind is \"evse\""),
    ("load_sharing", "load_sharing", "is the boiler node's switch; this node's kind is \"evse\""),
])
def test_an_evse_refuses_the_heating_endpoints_naming_its_kind(call: str, field: str, problem: str) -> None:
    role = open_role(controller.prepare(CONFIG, "garage"))
    with pytest.raises(FieldError) as refused:
        getattr(role, call)()
    # In the words of the JSON (a string in double quotes), as every other refusal: not Python's 'evse'.
    assert (refused.value.field, refused.value.problem) == (field, problem)
