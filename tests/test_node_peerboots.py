"""A real node process keeps its peers' boot ids across its own reboot (peerboots.json): older boots stay refused."""

from __future__ import annotations

import gc
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadmesh.companion.sim.runner import free_port
from loadmesh.core import configsync, groupconfig, heartbeat
from loadmesh.node import peerboots, runtime
from loadmesh.node.runtime import SYNC_MS, TICK_MS
from loadmesh.node.store import Store

from . import mpnode
from .test_node_adoption import NodeRun

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

KEY = bytes(range(50, 82))
PADS = heartbeat.prepare_key(KEY)


def member(node: str) -> dict[str, object]:
    return {"id": node, "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}


def config(version: int, nodes: tuple[str, ...]) -> dict[str, object]:
    return groupconfig.parse({
        "group": "home", "version": version, "updated_at": version, "origin": "test", "key_id": "k1",
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100},
        "members": [member(node) for node in nodes]})


ANNOUNCED = groupconfig.announced(config(1, ("a", "b", "c")))  # what members of the first config announce

# The node's ticks, counted from a /status that shows a change of the peers' boot ids (or a config switch), by
# which the write that change makes due has been done or left alone: the sync loop's next turn (SYNC_MS) sets it
# due SETTLE_MS on, and its first turn after that (SYNC_MS) does it. The control loop waits TICK_MS after a tick
# but for catch-up after a stall (runtime._control_loop: never more than TICK_MS behind), so after the tick a
# /status shows, n more ticks take (n - 2) * TICK_MS at least, and the sync loop's turns, due before the last of
# them, have run first (asyncio runs what is due in the order it fell due); 8 ticks more leave the sync loop's own
# turns time. A "nothing written" check waits for these ticks, not for a time: a node held back (a loaded machine,
# SIGSTOP) has not done the work a sleep gave it, and a check after a sleep passed without having been tested.
WRITE_DONE_TICKS = (peerboots.SETTLE_MS + 2 * SYNC_MS) // TICK_MS + 2 + 8
WRITE_DONE_TIMEOUT_S = 60  # for failure only (a node that stopped ticking): they take some 7 s on an idle machine


def genuine(node: str, boot_id: int, seq: int) -> bytes:
    """A heartbeat of node as the group key signs it (what an attacker captured off the air, later replayed)."""
    message = {
        "group": "home", "node": node, "boot_id": boot_id, "seq": seq, "circuit": "site", "phases": "L1",
        "mode": "continuous", "priority": 0, "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
        "target_ma": 0, "applied_ma": 0, "draw_ma": [None, None, None], "config_version": 1,
        "config_hash": ANNOUNCED, "digest": "0011223344556677", "demand": False, "active": False, "failsafe": False,
        "meter": None, "heating": None,
    }
    return heartbeat.encode(PADS, message)


class Site:
    """Node "a" (the real runtime in the node image, on the ESP32's heap) in a folder, adopted, members a, b, c."""

    def __init__(self, device_root: Path, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.mesh_port = free_port(socket.SOCK_DGRAM)
        self.node = NodeRun(device_root, folder, free_port(socket.SOCK_STREAM), KEY)
        self.store = Store(str(folder))
        self.store.write_key(KEY)
        self.store.raise_boot_floor(0)  # its count vouched for, as adoption and node-files leave it
        self.store.write_json("node.json", {
            "id": "a", "http_port": self.node.http_port, "http_host": "127.0.0.1", "mesh_port": self.mesh_port,
            "mesh_host": "127.0.0.1", "mesh_dest_port": free_port(socket.SOCK_DGRAM), "bind_host": "127.0.0.1"})
        self.store.write_json("config.json", config(1, ("a", "b", "c")))
        self.sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, packet: bytes) -> None:
        self.sender.sendto(packet, ("127.0.0.1", self.mesh_port))

    def status(self) -> dict[str, object]:
        code, answer = self.node.request("GET", "/status")
        assert code == 200, answer
        return answer

    def expect(self, accept: Callable[[dict[str, object]], bool], timeout_s: float = 15) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self.status()
            if accept(answer):
                return answer
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)

    def settled(self, since: dict[str, object]) -> dict[str, object]:
        """/status once the node has ticked past any write due by what the answer since shows."""
        return self.expect(lambda answer: ticked_past_write(since, answer), timeout_s=WRITE_DONE_TIMEOUT_S)

    def said(self, text: str) -> list[str]:
        """The lines of the node's log that hold text."""
        return [line for line in (self.folder / "node.log").read_text().splitlines() if text in line]

    def kept(self) -> object:
        return self.store.read_json(peerboots.FILE)

    def close(self) -> None:
        self.sender.close()
        self.node.kill()


@pytest.fixture
def site(device_root: Path, tmp_path: Path) -> Iterator[Site]:
    mpnode.require_wallclock("a node process")
    running = Site(device_root, tmp_path / "node")
    yield running
    running.close()


def counted(answer: dict[str, object], reason: str) -> int:
    counters = answer["counters"]
    assert isinstance(counters, dict)
    count = counters["heartbeats"].get(reason, 0)
    assert isinstance(count, int)
    return count


def ticked_past_write(since: dict[str, object], answer: dict[str, object]) -> bool:
    """Whether answer, a later /status than since, shows WRITE_DONE_TICKS more ticks."""
    then, now = since["ticks"], answer["ticks"]
    assert isinstance(then, dict) and isinstance(now, dict)
    return bool(now["count"] >= then["count"] + WRITE_DONE_TICKS)


def boot_of(answer: dict[str, object], node: str) -> int | None:
    peers = answer.get("peers")
    assert isinstance(peers, dict)
    if node not in peers:
        return None
    boot_id = peers[node][5]  # PEER_FIELDS: ..., boot_id
    assert isinstance(boot_id, int)
    return boot_id


def test_a_replay_of_an_older_boot_of_a_peer_is_refused_after_this_node_reboots(site: Site) -> None:
    site.node.start()
    old = genuine("b", 6, 40)  # b's heartbeat from its boot 6, captured then
    site.send(old)
    site.expect(lambda r: boot_of(r, "b") == 6)
    for seq in range(1, 4):  # b reboots: boot 7 (and c is heard for the first time: one write for both)
        site.send(genuine("b", 7, seq))
    site.send(genuine("c", 3, 1))
    heard_before = site.expect(lambda r: boot_of(r, "b") == 7 and boot_of(r, "c") == 3)
    assert heard_before["counters"]["boot_changes"] == 3  # b first heard, b's reboot, c first heard
    site.expect(lambda r: r["peer_boots_writes"] == 1)
    assert site.kept() == {"b": 7, "c": 3}
    mtime_ns = (site.folder / peerboots.FILE).stat().st_mtime_ns

    site.node.kill()
    site.node.start()
    # After the reboot, b's boot 6 is refused: before peerboots.json, the fresh table took it as b's latest.
    site.send(old)
    site.send(genuine("c", 2, 1))
    refused = site.expect(lambda r: counted(r, "old_boot") >= 2)
    assert boot_of(refused, "b") is None and boot_of(refused, "c") is None
    assert counted(refused, "ok") == 0
    # b's genuine heartbeats of its current boot are taken; the same boot ids are not written again, however many
    # packets and for however long (past the time a change would have been written). Looked at after the reboot:
    # before it, GAP_MS after the first write kept any other write off for a minute, and the check could not fail.
    site.send(genuine("b", 7, 200))
    site.send(genuine("c", 3, 50))
    heard = site.expect(lambda r: boot_of(r, "b") == 7 and boot_of(r, "c") == 3)
    seqs = iter(range(201, 1 << 20))

    def sent_past_write(answer: dict[str, object]) -> bool:
        site.send(genuine("b", 7, next(seqs)))  # one more between the looks at /status
        return ticked_past_write(heard, answer) and counted(answer, "ok") >= counted(heard, "ok") + 60

    later = site.expect(sent_past_write, timeout_s=WRITE_DONE_TIMEOUT_S)
    # No change counted: a write made due by a change the table counted wrongly would find these bytes and be left
    # alone, so peer_boots_writes alone could not tell (before boot_changes was in /status, only
    # test_a_reboot_that_hears_its_peers_in_the_boots_on_file_counts_no_boot_change, on CPython, could).
    assert later["counters"]["boot_changes"] == 0, later
    assert later["peer_boots_writes"] == 0, heard
    assert site.kept() == {"b": 7, "c": 3}
    assert (site.folder / peerboots.FILE).stat().st_mtime_ns == mtime_ns


class _Clock:
    """The runtime's now_ms(), set by the test."""

    def __init__(self) -> None:
        self.ms = 0

    def now_ms(self) -> int:
        return self.ms


def test_a_reboot_that_hears_its_peers_in_the_boots_on_file_counts_no_boot_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check after the reboot above (nothing written) cannot see a boot change the table counts wrongly:
    # a write it makes due reads the file first and leaves it alone when it holds those bytes, so the writes stay
    # at 0 whatever the count. The count is what the node acts on (each change due costs the module's import and
    # a read of the file), so it is looked at here, as the node keeps it: the node runtime (on CPython, on a fake
    # clock, its mesh on loopback) rebooted over the file the first test's node wrote.
    folder = tmp_path / "a"
    folder.mkdir()
    mesh_port = free_port(socket.SOCK_DGRAM)
    store = Store(str(folder))
    store.write_key(KEY)
    store.raise_boot_floor(0)  # its count vouched for, as adoption and node-files leave it
    store.write_json("config.json", config(1, ("a", "b", "c")))
    store.write_json("node.json", {"id": "a", "mesh_port": mesh_port, "mesh_host": "127.0.0.1",
                                   "mesh_dest_port": free_port(socket.SOCK_DGRAM), "bind_host": "127.0.0.1"})
    store.write_json(peerboots.FILE, {"b": 7, "c": 3})
    # /status reports MicroPython's heap, which CPython's gc does not have.
    monkeypatch.setattr(gc, "mem_alloc", lambda: 0, raising=False)
    monkeypatch.setattr(gc, "mem_free", lambda: 0, raising=False)
    clock = _Clock()
    node = runtime.Node(str(folder), clock=clock)
    assert node.mode == "running", node.error
    assert node.mesh is not None and node.table is not None
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def hear(*packets: bytes) -> None:
        """Send packets to the node and tick it once they are all in its socket (none is left for later)."""
        assert node.mesh is not None
        received = node.mesh.received
        for packet in packets:
            sender.sendto(packet, ("127.0.0.1", mesh_port))
        deadline = time.monotonic() + 30  # for failure only
        while node.mesh.received < received + len(packets):
            # Not ticked before a packet is there: a tick with none would tell nothing.
            select.select([node.mesh._sock], [], [], max(0.0, deadline - time.monotonic()))
            assert time.monotonic() < deadline, "packets never arrived"
            clock.ms += TICK_MS
            node.tick()
        clock.ms += SYNC_MS
        node._keep_peer_boots()  # the sync loop's turn

    try:
        hear(genuine("b", 6, 40), genuine("c", 2, 1))  # older boots: refused
        hear(genuine("b", 7, 200), genuine("c", 3, 50), genuine("b", 7, 201))  # the boots on file
        assert (boot_of(node.status(), "b"), boot_of(node.status(), "c")) == (7, 3)
        assert node.table.counts.get("old_boot") == 2
        assert node.table.boot_changes == 0, node.table.boot_ids()
        assert node.peer_boots[peerboots.DUE_MS] == -1  # no write due, so nothing read or imported either
        # A reboot of b is a change: counted, and its write due SETTLE_MS on (the count is seen where it is).
        hear(genuine("b", 8, 1))
        assert node.table.boot_changes == 1
        assert node.peer_boots[peerboots.DUE_MS] == clock.ms + peerboots.SETTLE_MS
    finally:
        sender.close()
        node.mesh.close()


def test_a_corrupt_file_is_ignored_with_one_line_and_the_node_runs(site: Site) -> None:
    (site.folder / peerboots.FILE).write_bytes(b"LM1 0000000000000000\n{\"b\": 9}")
    site.node.start()
    site.send(genuine("b", 6, 1))  # today's window: the first packet of a peer is taken
    answer = site.expect(lambda r: boot_of(r, "b") == 6)
    assert answer["state"] == "running"
    log = (site.folder / "node.log").read_text()
    assert [line for line in log.splitlines() if peerboots.FILE in line] == [
        "loadmesh node: peerboots.json ignored (corrupt): peers' older boots are refused only once each is heard"]
    # The next write replaces it with what the table holds.
    site.expect(lambda r: r["peer_boots_writes"] == 1)
    assert site.kept() == {"b": 6}


def test_a_removed_member_and_ids_of_no_member_are_dropped_at_the_next_write(site: Site) -> None:
    site.store.write_json(peerboots.FILE, {"b": 7, "c": 4, "zed": 9, "d": "x", "e": -1})
    site.node.start()
    # c's older boot is refused (its entry was restored), and nothing is written while nothing changes.
    site.send(genuine("c", 3, 1))
    refused = site.expect(lambda r: counted(r, "old_boot") == 1)
    settled = site.settled(refused)
    assert (settled["counters"]["boot_changes"], settled["peer_boots_writes"]) == (0, 0), settled
    # c leaves the group: forgotten, and its entry goes (zed, d and e, no members, with it).
    sealed = configsync.seal(PADS, config(2, ("a", "b")))
    code, answer = site.node.put("/config", sealed)
    assert code == 200, answer
    site.expect(lambda r: r["peer_boots_writes"] == 1)
    assert site.kept() == {"b": 7}
    # b's older boot is still refused.
    site.send(genuine("b", 6, 1))
    answer = site.expect(lambda r: counted(r, "old_boot") == 2)
    assert boot_of(answer, "b") is None


def test_a_write_the_file_system_refuses_is_said_once_and_the_node_runs_on(site: Site) -> None:
    site.node.start()
    (site.folder / (peerboots.FILE + ".tmp")).mkdir()  # after the boot's clean(): no temp file can be opened
    site.send(genuine("b", 6, 1))
    site.send(genuine("c", 2, 1))
    site.expect(lambda r: boot_of(r, "b") == 6 and boot_of(r, "c") == 2)
    # The write is tried SETTLE_MS after the change, at the sync loop's next turn: waited for by what the node says,
    # not by a fixed sleep, which a node held back by a loaded machine overran (b's reboot then came while the
    # first write was still pending, and no line had been said yet).
    deadline = time.monotonic() + 15
    while not site.said(peerboots.FILE):
        assert time.monotonic() < deadline, site.said("")
        time.sleep(0.1)
    for seq in range(2, 12):  # a reboot of b after the failed write: pending, not written before GAP_MS
        site.send(genuine("b", 7, seq))
    answer = site.expect(lambda r: boot_of(r, "b") == 7)
    assert answer["state"] == "running" and answer["peer_boots_writes"] == 0
    lines = site.said(peerboots.FILE)
    assert len(lines) == 1 and lines[0].startswith("loadmesh node: peerboots.json not written ("), lines
    assert not (site.folder / peerboots.FILE).exists()


def test_a_config_switch_that_changes_no_kept_boot_id_writes_nothing(site: Site) -> None:
    site.store.write_json(peerboots.FILE, {"b": 7, "c": 3})
    mtime_ns = (site.folder / peerboots.FILE).stat().st_mtime_ns
    site.node.start()
    site.send(genuine("b", 7, 1))
    site.send(genuine("c", 3, 1))
    site.expect(lambda r: boot_of(r, "b") == 7 and boot_of(r, "c") == 3)
    # A new version with the same members: the boot ids to keep are those on file, so the file is not written
    # (before, the switch wrote the same bytes again, once per switch).
    sealed = configsync.seal(PADS, config(2, ("a", "b", "c")))
    code, answer = site.node.put("/config", sealed)
    assert code == 200, answer
    switched = site.expect(lambda r: r["config"]["version"] == 2)
    settled = site.settled(switched)
    # Not even counted as a change (which would read the file to find it holds these bytes already).
    assert (settled["counters"]["boot_changes"], settled["peer_boots_writes"]) == (0, 0), settled
    assert (site.folder / peerboots.FILE).stat().st_mtime_ns == mtime_ns
    assert site.kept() == {"b": 7, "c": 3}
    # A switch that drops a kept member still writes, at once (no write before it set a wait).
    sealed = configsync.seal(PADS, config(3, ("a", "b")))
    code, answer = site.node.put("/config", sealed)
    assert code == 200, answer
    site.expect(lambda r: r["peer_boots_writes"] == 1)
    assert site.kept() == {"b": 7}


def test_a_node_that_heard_no_peer_writes_no_empty_file_at_a_config_switch(site: Site) -> None:
    site.node.start()
    sealed = configsync.seal(PADS, config(2, ("a", "b", "c")))
    code, answer = site.node.put("/config", sealed)
    assert code == 200, answer
    switched = site.expect(lambda r: r["config"]["version"] == 2)
    assert site.settled(switched)["peer_boots_writes"] == 0, switched
    assert not (site.folder / peerboots.FILE).exists()
