"""node.json, checked (firmware code on CPython, as the simulator's virtual nodes run it)."""

from __future__ import annotations

import pytest

from loadmesh.core.errors import FieldError
from loadmesh.node import settings


def test_peers_are_fetched_from_ipv4_addresses_only() -> None:
    parsed = settings.parse({"id": "evse1", "peers_http": {"evse2": ["192.168.1.12", 80]}})
    assert parsed["peers_http"] == {"evse2": ["192.168.1.12", 80]}
    # A name would be looked up in the fetch, which blocks a MicroPython node's loop for as long as DNS takes.
    # No leading zeros: the C library and lwIP read "012" as octal (10), another address than the one checked.
    for host in ("evse2.local", "192.168.1", "192.168.1.256", "1.2.3.4.5", "", 7, "192.168.001.12", "010.0.0.1",
                 "192.168.1.1²", "192.168.1.+1", "192.168..1"):
        with pytest.raises(FieldError) as refused:
            settings.parse({"id": "evse1", "peers_http": {"evse2": [host, 80]}})
        assert refused.value.field == "node.peers_http.evse2[0]"
        assert "is not an IPv4 address" in refused.value.problem
