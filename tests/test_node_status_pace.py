"""A running node asked GET /status one request after another, without pause, answers every one, and its heap does
not grow with the count of requests (test_cli_status's node: the node image on the ESP32 HAL, 48K words)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from .test_cli_status import UP, Node, _read_all

pytestmark = pytest.mark.wallclock  # a node process against the wall clock: tools/test runs these in their own lane

REQUESTS = 200  # at 64 bytes kept a request, the 6.8 KB free at boot were gone after about a hundred


def test_a_node_asked_for_its_status_back_to_back_answers_every_time(device_root: Path, tmp_path: Path) -> None:
    hw = {"hal": "esp32", "wifi": {"ssid": "House", "password": "correct horse battery"}}
    node = Node(device_root, tmp_path / "garage", hw, UP, adopted=True)
    codes: dict[str, int] = {}
    refused: dict[str, int] = {}  # each answer other than 200, its status and body as they came: how many
    lives: list[int] = []
    status: dict[str, object] = {}
    try:
        for _ in range(REQUESTS):
            with socket.create_connection(("127.0.0.1", node.port), timeout=5) as client:
                client.sendall(b"GET /status HTTP/1.0\r\n\r\n")
                answer = _read_all(client)
            code = answer[9:12].decode()
            codes[code] = codes.get(code, 0) + 1
            if code == "200":
                status = json.loads(answer.partition(b"\r\n\r\n")[2])
                lives.append(status["memory"]["live"])  # type: ignore[index]
            else:
                said = code + " " + answer.partition(b"\r\n\r\n")[2].decode(errors="replace")
                refused[said] = refused.get(said, 0) + 1
            time.sleep(0.01)
    finally:
        node.kill()
    # Every answer 200. A refused one says why in its body (503: no room to read the request, build the status or
    # its answer, for the moment; 500: a bug), and the node's log what it printed (a tick's MemoryError halts it).
    assert codes == {"200": REQUESTS}, f"answers by status {codes}; refused, as they came: {refused}; " \
                                       f"the node's log ends: {node.log()[-1500:]}"
    assert status["state"] == "running", node.log()  # the last answer's
    assert status["counters"]["http"]["no_memory"] == 0  # type: ignore[index]
    # What is live after the tick's collection is the node's own state and whatever a request or the sync loop
    # holds at that moment (a few KB up and down): its least over fifty requests is the node's own. A status
    # answered and sent leaves nothing behind: that least does not grow with the count (before, 64 bytes a
    # request: 6.4 KB between these two windows).
    assert min(lives[-50:]) - min(lives[20:70]) < 1024, lives[::10]
