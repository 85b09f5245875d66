"""Config sync bookkeeping (firmware code on CPython, as the simulator's virtual nodes run it)."""

from __future__ import annotations

from loadmesh.node import groupsync


def test_fetch_tries_are_forgotten_once_no_peer_announces_the_config() -> None:
    # A group that moves through many versions: a node keeps one try per hash still announced, not one per
    # version it ever saw (a 48 KB heap would run out in the end).
    tried_ms: dict[str, int] = {}
    for version in range(500):
        announced_by = {f"{version:016x}": "evse2"}
        for announced, _member in groupsync.wanted({}, tried_ms, announced_by, version * 10000):
            tried_ms[announced] = version * 10000
    assert tried_ms == {f"{499:016x}": 4990000}


def test_a_config_tried_lately_waits_its_retry_time() -> None:
    tried_ms = {"aa": 1000}
    announced_by = {"aa": "evse2", "bb": "evse3"}
    assert groupsync.wanted({}, tried_ms, announced_by, 1000 + groupsync.RETRY_MS - 1) == [("bb", "evse3")]
    assert groupsync.wanted({}, tried_ms, announced_by, 1000 + groupsync.RETRY_MS) == [("aa", "evse2"),
                                                                                      ("bb", "evse3")]
    assert groupsync.wanted({"aa": {}}, tried_ms, announced_by, 10 ** 6) == [("bb", "evse3")]
