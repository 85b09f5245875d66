"""Config sync: its bookkeeping (firmware code on CPython, as the simulator's virtual nodes run it), and a
peer's answer read on the node image."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from loadmesh.node import groupsync

from . import mpnode


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
