"""The mesh transport between real MicroPython nodes through the simulator's hub: loss, isolation, forgeries."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadmesh.companion.sim.hub import Hub
from loadmesh.companion.sim.runner import free_port
from loadmesh.core import heartbeat

from . import mpnode

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

KEY = bytes(range(100, 132))
GROUP = "home"
NODES = ("a", "b", "c")
HEARTBEAT_MS = 200
TIMEOUT_MS = 1500


def genuine(node: str, boot_id: int, seq: int, applied_ma: int, key: bytes = KEY, group: str = GROUP) -> bytes:
    """A heartbeat as a node of the group would sign it."""
    message = {
        "group": group, "node": node, "boot_id": boot_id, "seq": seq, "circuit": "site", "phases": "L1",
        "mode": "continuous", "priority": 0, "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
        "target_ma": applied_ma, "applied_ma": applied_ma, "draw_ma": [None, None, None], "config_version": 1,
        "config_hash": "", "digest": "0011223344556677", "demand": True, "active": False, "failsafe": False,
        "meter": None, "heating": None,
    }
    return heartbeat.encode(heartbeat.prepare_key(key), message)


class Site:
    """Three nodes on the hub."""

    def __init__(self, device_root: Path) -> None:
        self.ports = {node: free_port(socket.SOCK_DGRAM) for node in NODES}
        self.hub = Hub(self.ports, seed=7)
        self.hub.start()
        self.nodes = {}
        for index, node in enumerate(NODES):
            config = {"node": node, "port": self.ports[node], "hub_port": self.hub.address[1],
                      "key_hex": KEY.hex(), "group": GROUP, "members": list(NODES), "boot_id": 10 + index,
                      "applied_ma": 6000 + 1000 * index, "heartbeat_ms": HEARTBEAT_MS,
                      "peer_timeout_ms": TIMEOUT_MS}
            self.nodes[node] = mpnode.NodeProcess("mesh_node.py", mpnode.argfile(config), device_root=device_root)

    def expect(self, node: str, accept: object, timeout_s: float = 20) -> dict[str, object]:
        return self.nodes[node].expect(accept, timeout_s)  # type: ignore[arg-type]

    def close(self) -> None:
        for process in self.nodes.values():
            process.close()
        self.hub.stop()


@pytest.fixture
def site(device_root: Path) -> Iterator[Site]:
    running = Site(device_root)
    yield running
    running.close()


def online(line: dict[str, object]) -> list[str]:
    peers = line["peers"]
    assert isinstance(peers, dict)
    return sorted(node for node, peer in peers.items() if peer["online"])


def test_heartbeats_cross_the_hub_and_the_cut(site: Site) -> None:
    for node in NODES:
        line = site.expect(node, lambda r, me=node: online(r) == sorted(set(NODES) - {me}))
        peers = line["peers"]
        assert isinstance(peers, dict)
        # What each node tells the others arrives intact: a's applied limit as a reported it.
        if node != "a":
            assert peers["a"]["applied_ma"] == 6000 and peers["a"]["boot_id"] == 10
    site.hub.isolate("c")
    # Cut off both ways: c hears nobody, and nobody hears c, once the timeout has passed.
    site.expect("c", lambda r: online(r) == [])
    site.expect("a", lambda r: online(r) == ["b"])
    site.expect("b", lambda r: online(r) == ["a"])
    assert site.hub.counts.cut > 0
    site.hub.heal("c")
    for node in NODES:
        site.expect(node, lambda r, me=node: online(r) == sorted(set(NODES) - {me}))


def test_heartbeats_get_through_a_lossy_network(site: Site) -> None:
    site.expect("a", lambda r: online(r) == ["b", "c"])
    site.hub.set_loss(30)
    first = site.expect("a", lambda r: True)
    later = site.expect("a", lambda r: r["peers"]["b"]["seq"] >= first["peers"]["b"]["seq"] + 10)  # type: ignore[index]
    assert later["counts"]["ok"] > first["counts"]["ok"]  # type: ignore[index]
    assert site.hub.counts.lost > 0
    # Gaps in a peer's sequence are fine: nothing the loss causes is counted as a replay.
    counts = later["counts"]
    assert isinstance(counts, dict)
    assert counts.get("old_seq", 0) == 0 and counts.get("duplicate", 0) == 0


def test_forged_and_replayed_heartbeats_are_dropped_and_counted(site: Site) -> None:
    # b's heartbeat 1, replayed, is old only once a holds a later one: a holding 1 counts it a duplicate (b and
    # c started late, as on a loaded machine, so that a's first line with both online came within b's first
    # heartbeat period: the attack was then never all counted).
    before = site.expect("a", lambda r: online(r) == ["b", "c"] and r["peers"]["b"]["seq"] >= 2)  # type: ignore[index]
    b_now = before["peers"]["b"]  # type: ignore[index]
    attacks = [
        # (packet, what a's table counts it as)
        (genuine("b", 11, b_now["seq"] + 1000, 32000, key=bytes(32)), "bad_tag"),  # forged: not the group key
        (genuine("mallory", 1, 1, 32000, key=bytes(32)), "bad_tag"),
        (b"\x00" * 100, "bad_magic"),
        (b"LM" + b"\x01" * 600, "too_long"),  # 602 bytes, truncated to 513 on receipt
        (genuine("b", 11, 1, 32000), "old_seq"),  # b's own, from the start of this boot: a replay
        (genuine("b", 3, 99999, 32000), "old_boot"),  # b's, from an older boot
        (genuine("zed", 1, 1, 32000), "not_member"),  # signed, but not a member
        (genuine("b", 11, 5, 32000, group="other"), "wrong_group"),
        (genuine("a", 10, 99999, 32000), "own"),  # a's own id replayed at it
    ]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for packet, _ in attacks:
            for _ in range(3):
                sender.sendto(packet, ("127.0.0.1", site.ports["a"]))
    finally:
        sender.close()
    expected: dict[str, int] = {}
    for _, reason in attacks:
        expected[reason] = expected.get(reason, 0) + 3
    start = before["counts"]
    assert isinstance(start, dict)

    def all_counted(line: dict[str, object]) -> bool:
        counts = line["counts"]
        assert isinstance(counts, dict)
        return all(counts.get(reason, 0) - start.get(reason, 0) >= n for reason, n in expected.items())

    after = site.expect("a", all_counted)
    # None of it had any effect: the same peers, b's real boot and applied limit.
    peers = after["peers"]
    assert isinstance(peers, dict)
    assert sorted(peers) == ["b", "c"]
    assert peers["b"]["boot_id"] == 11 and peers["b"]["applied_ma"] == 7000
    assert online(after) == ["b", "c"]


def test_a_flood_does_not_stop_the_node(site: Site) -> None:
    first = site.expect("a", lambda r: online(r) == ["b", "c"])
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for index in range(2000):
            sender.sendto(genuine("b", 11, 1, index, key=bytes(32)), ("127.0.0.1", site.ports["a"]))
    finally:
        sender.close()
    # The node carries on ticking and hearing its peers; what it reads per tick is bounded.
    later = site.expect("a", lambda r: r["ticks"] >= first["ticks"] + 20 and online(r) == ["b", "c"])  # type: ignore[operator]
    assert later["counts"]["bad_tag"] > 0  # type: ignore[index]


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_a_tick_with_nothing_queued_allocates_nothing_to_receive(interpreter: str, device_root: Path) -> None:
    # Asking recv() for a datagram that is not there allocated its 513-byte buffer and the EAGAIN error on
    # every idle tick: at a small heap that is where a tick met MemoryError.
    (out,) = mpnode.run_on(interpreter, "idle_receive_check.py", str(free_port(socket.SOCK_DGRAM)),
                           device_root=device_root)
    assert isinstance(out, dict)
    assert out["idle_count"] == 0
    if interpreter != "cpython":  # CPython has no gc.mem_alloc
        assert out["idle_bytes"] == 0
    # What is queued is still read, at most max_packets (3) a call, a datagram over 512 bytes as too_long.
    assert out["reads"] == [3, 2, 0]
    assert out["too_long"] == 1
