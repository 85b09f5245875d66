"""Config sync: its bookkeeping (firmware code on CPython, as the simulator's virtual nodes run it), and a
peer's answer read on the node image."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from loadmesh.companion.sim.runner import free_port
from loadmesh.core import configsync, groupconfig, heartbeat
from loadmesh.node import groupsync, runtime
from loadmesh.node.store import Store

from . import heartbeats, mpnode

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane


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


class Answers:
    """A 'peer' at an HTTP address: each connection gets the next scripted answer (a list of writes)."""

    def __init__(self, answers: list[list[bytes] | str]) -> None:
        self.answers = answers
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.sent: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for answer in self.answers:
            conn, _ = self.server.accept()
            sent = 0
            with conn:
                try:
                    conn.recv(4096)
                    if isinstance(answer, str):  # "endless line"
                        # A header line that never ends, 1 KB every 5 ms, for as long as the client reads.
                        conn.sendall(b"HTTP/1.0 200 OK\r\nX-Junk: ")
                        for _ in range(400):
                            conn.sendall(b"a" * 1000)
                            sent += 1000
                            time.sleep(0.005)
                    else:
                        for part in answer:
                            conn.sendall(part)
                            sent += len(part)
                            time.sleep(0.01)
                except OSError:  # the node closed the connection
                    pass
            self.sent.append(sent)

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)


def _answer(body: bytes, extra: bytes = b"") -> list[bytes]:
    head = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n" + extra
    return [head, b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n", body]


def _fetch_on_node(device_root: Path, answers: list[list[bytes] | str],
                   live_kb: int) -> tuple[list[Any], list[int]]:
    """Each answer fetched in turn on the node image, a tick beside it and live_kb held; (lines, bytes sent)."""
    peer = Answers(answers)
    try:
        settings = {"port": peer.port, "fetches": len(answers), "live_kb": live_kb}
        lines: list[Any] = mpnode.run("fetch_check.py", mpnode.argfile(settings), device_root=device_root)
    finally:
        peer.close()
    return lines, peer.sent


def test_a_peer_answering_with_an_endless_or_long_head_is_refused_and_the_node_ticks_on(device_root: Path) -> None:
    # On the node image, with a node's live set and a tick beside the fetch. asyncio's readline() on
    # MicroPython grows one line without bound: before the head had a byte budget, the endless line
    # took the heap (MemoryError in the fetch, or in the tick).
    many_lines = b"".join(b"X-Line-%03d: y\r\n" % index for index in range(80))  # short lines, 1,280 bytes
    lines, sent = _fetch_on_node(device_root, [
        "endless line",
        _answer(b"{}", many_lines),
        [f"HTTP/1.0 200 OK\r\nContent-Length: {groupsync.FETCH_BYTES + 1}\r\n\r\n".encode(), b"{}"],
        _answer(b'{"config":1}', b"X-Pad: " + b"p" * 900 + b"\r\n"),  # a head just within the budget
    ], live_kb=30)
    endless, long_head, long_body, within, end = lines
    assert (endless["error"], endless["message"]) == ("ValueError", "answer head over 1024 bytes")
    assert sent[0] < 100000  # the node stopped reading: it does not drain what the peer sends
    assert (long_head["error"], long_head["message"]) == ("ValueError", "answer head over 1024 bytes")
    assert (long_body["error"], long_body["message"]) == (
        "ValueError", "answer without a Content-Length up to " + str(groupsync.FETCH_BYTES) + " bytes")
    assert within["bytes"] == len(b'{"config":1}')  # and after all that, a fetch still works
    # The node kept ticking throughout, without a MemoryError.
    assert end["tick_error"] is None
    assert isinstance(end["ticks"], int) and end["ticks"] >= 2


def test_the_largest_answer_body_taken_fits_the_node_heap(device_root: Path) -> None:
    # FETCH_BYTES is what a node can hold, read into one buffer and copied once (20000, the bound
    # before, did not fit beside a tick even on an otherwise empty heap).
    body = b'{"config":' + b"x" * (groupsync.FETCH_BYTES - 10)
    lines, _sent = _fetch_on_node(device_root, [_answer(body)], live_kb=0)
    assert (lines[0].get("bytes"), lines[0].get("head")) == (groupsync.FETCH_BYTES, '{"config'), lines[0]
    assert lines[1]["tick_error"] is None


def _evse(node_id: str) -> dict[str, object]:
    return {"id": node_id, "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}


def _config(version: int, limit_ma: int) -> dict[str, object]:
    return groupconfig.parse({
        "group": "house", "version": version, "updated_at": version, "origin": "test", "key_id": "k",
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": limit_ma, "safety_pct": 100},
        "circuits": [], "members": [_evse("a"), _evse("b"), _evse("c")]})


def test_a_config_adopted_while_a_fetch_waits_stays_merged_while_peers_run_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Node c runs version 1 (20 A) with peer a; peer b announces a config c does not know, so sync()
    # fetches it, and while that fetch waits, a PUT brings version 2 (32 A). Version 1 is now the
    # old config, still in use by a: the node must run the merge of both (20 A) until a moves on.
    # sync() once kept who announced what from before the fetch (nobody announced version 1 then:
    # it was c's own), and the merge forgot version 1: 32 A while a still ran 20 A.
    key = bytes(range(32))
    pads = heartbeat.prepare_key(key)
    version_1, version_2 = _config(1, 20000), _config(2, 32000)
    unknown = "00112233445566ff"
    store = Store(str(tmp_path))
    store.write_json("hw.json", {"hal": "none"})
    store.write_json("node.json", {"id": "c", "mesh_port": free_port(socket.SOCK_DGRAM), "mesh_host": "127.0.0.1",
                                   "bind_host": "127.0.0.1", "http_host": "127.0.0.1", "http_port": 8080,
                                   "peers_http": {"b": ["127.0.0.1", 9]}})
    store.write_key(key)
    store.raise_boot_floor(0)  # its count vouched for, as adoption and node-files leave it
    store.write_json("config.json", version_1)
    clock = FixedClock()
    node = runtime.Node(str(tmp_path), clock=clock)  # type: ignore[arg-type]
    try:
        assert node.mode == "running" and node.announced == groupconfig.announced(version_1)
        assert node.table is not None
        now_ms = clock.now_ms()
        for seq, (peer, announced) in enumerate((("a", groupconfig.announced(version_1)), ("b", unknown))):
            message = dict(heartbeats.CONTROLLED, group="house", node=peer, seq=seq, circuit="site", phases="L1",
                           max_ma=16000, config_version=1, config_hash=announced)
            assert node.table.accept_decoded(message, now_ms) == "ok"

        async def fetch_meanwhile_put(host: str, port: int, token: str) -> bytes:
            assert node.put_config(configsync.seal(pads, version_2))["adopted"] is True
            raise OSError("peer b gone")

        monkeypatch.setattr(groupsync, "fetch", fetch_meanwhile_put)
        asyncio.run(node.sync())
        assert node.sync_error == "b: peer b gone"
        assert node.adopted is not None and node.adopted["version"] == 2
        assert node.in_use == [groupconfig.announced(version_1)]
        assert node.plan is not None and node.plan.scenario["site"]["limit_ma"] == [20000]  # type: ignore[index]
    finally:
        if node.mesh is not None:
            node.mesh.close()


class FixedClock:
    def now_ms(self) -> int:
        return 1000
