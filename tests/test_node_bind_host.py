"""A running node whose node.json bind_host or http_host is not the address DHCP gave it says so, on its console and
in /status."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .test_cli_status import UP, Node

pytestmark = pytest.mark.wallclock  # a node process against the wall clock: tools/test runs these in their own lane


def test_the_sync_loop_flags_hosts_the_node_has_not(device_root: Path, tmp_path: Path) -> None:
    # test_cli_status's node, its mesh bound and its HTTP API listening on 127.0.0.1, while its faked station has
    # 192.168.1.23 from DHCP: on a board every heartbeat it sent would be dropped, and nobody could reach its API.
    hw = {"hal": "esp32", "wifi": {"ssid": "House", "password": "correct horse battery"}}
    node = Node(device_root, tmp_path / "garage", hw, UP, adopted=True, bind_host="127.0.0.1", http_host="127.0.0.1")
    try:
        deadline = time.monotonic() + 10
        while (status := node.status())["bind_error"] is None:  # the sync loop checks every 500 ms
            assert time.monotonic() < deadline, node.log()
            time.sleep(0.1)
        time.sleep(1.2)  # two more checks: the same address, nothing said again
    finally:
        node.kill()
    bind_wrong = 'node.json bind_host: "127.0.0.1" is not this node\'s address (192.168.1.23): every heartbeat it ' \
                 'sends is dropped (counters.mesh.send_errors); 0.0.0.0 binds any'
    http_wrong = 'node.json http_host: "127.0.0.1" is not this node\'s address (192.168.1.23): its HTTP API is ' \
                 'refused to every client (no /status, no config for its peers); 0.0.0.0 listens on any'
    assert status["bind_error"] == bind_wrong + "; " + http_wrong  # both, from one check
    assert status["state"] == "running"  # flagged, not refused: the node runs on
    lines = node.log().splitlines()
    assert [lines.count("loadmesh node: " + wrong) for wrong in (bind_wrong, http_wrong)] == [1, 1]  # once each
