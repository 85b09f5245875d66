"""The node's HTTP API, answered by a MicroPython process, to real HTTP requests from CPython."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.companion import nodehttp
from loadmesh.companion.sim.runner import free_port, put_challenge, put_signature
from loadmesh.core import canon
from loadmesh.node import httpapi

from . import mpnode

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

KEY = bytes(range(1, 33))
# Computed here with CPython's own hmac: the documented derivation, not the node's code.
TOKEN = hmac.new(KEY, b"loadmesh http token v1", hashlib.sha256).hexdigest()
TIMEOUT_MS = 600
# For the tests whose steps must all fit in a client's time (a slow client still being served when the next
# one comes; an answer read slowly to its end): a loaded machine can hold this process back for a moment,
# and 600 ms left only ~300 ms for that. The time itself is what the other tests check.
PATIENT_TIMEOUT_MS = 1500
# A dawdling client's time, far longer than a tick or a loaded machine's moment, and less than a request's 10 s.
DAWDLER_TIMEOUT_MS = 8000
MAX_BODY = 2048
BOOT_ID = 7  # the boot a PUT's signature names
NODE_ID = "evse1"  # and the node


class Node:
    def __init__(self, device_root: Path, root: Path, key: bytes | None, send_buffer: int = 0,
                 timeout_ms: int = TIMEOUT_MS, boot_id: int = BOOT_ID, accept_no_memory: int = 0) -> None:
        self.port = free_port(socket.SOCK_STREAM)
        settings = {"port": self.port, "key_hex": None if key is None else key.hex(), "root": str(root),
                    "timeout_ms": timeout_ms, "max_body": MAX_BODY, "send_buffer": send_buffer, "boot_id": boot_id,
                    "node": NODE_ID, "accept_no_memory": accept_no_memory}
        self.process = mpnode.NodeProcess("http_node.py", mpnode.argfile(settings), device_root=device_root)
        self.process.expect(lambda line: "ready" in line)

    def send(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send raw bytes as one request; (status, headers, body) of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(raw)
            return _answer(conn)

    def challenge(self, path: str = "/config") -> tuple[int, int]:
        """(boot, last count taken) from the 401 to a PUT without a signature or a body."""
        status, headers, _ = self.request("PUT", path, body=b"")
        learnt = put_challenge(headers.get("www-authenticate"))
        assert status == 401 and learnt is not None and learnt[0] == NODE_ID, headers
        return learnt[1:]

    def signature(self, path: str, body: bytes) -> str:
        """An Authorization header for a PUT of body to path, signed for the node's challenge and one more."""
        boot, count = self.challenge(path)
        return put_signature(KEY, path, NODE_ID, boot, count + 1, body)

    def request(self, method: str, path: str, body: bytes | None = None, token: str | None = None,
                headers: dict[str, str] | None = None, signed: bool = False) -> tuple[int, dict[str, str], object]:
        """One request; token: as a bearer token; signed: signed with KEY for the node's challenge."""
        lines = [f"{method} {path} HTTP/1.1", "Host: node"]
        if token is not None:
            lines.append("Authorization: Bearer " + token)
        if signed:
            lines.append("Authorization: " + self.signature(path, body or b""))
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        status, answer_headers, answer = self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        return status, answer_headers, json.loads(answer) if answer else None

    def close(self) -> None:
        self.process.close()


def _answer(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert int(headers["content-length"]) == len(body)
    return status, headers, body


def _status_past(node: Node, ticks_before: int, within_s: float = 5.0) -> dict[str, object] | None:
    """The first /status that shows more ticks than ticks_before, polled for within_s; None if none did
    (a halted tick never does)."""
    # Polled, not read once after a fixed sleep: a machine that holds the node back for a moment delays
    # its ticks, and only a tick that stops for good is a fault.
    deadline = time.monotonic() + within_s
    while True:
        status, _, body = node.request("GET", "/status")
        assert status == 200 and isinstance(body, dict)
        if body["ticks"] > ticks_before:
            return body
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _ticks_go_on(node: Node, ticks_before: int, within_s: float = 5.0) -> bool:
    """Whether /status answers with more ticks than ticks_before within within_s."""
    return _status_past(node, ticks_before, within_s) is not None


@pytest.fixture
def node(device_root: Path, tmp_path: Path) -> Iterator[Node]:
    running = Node(device_root, tmp_path, KEY)
    yield running
    running.close()


@pytest.fixture
def patient_node(device_root: Path, tmp_path: Path) -> Iterator[Node]:
    running = Node(device_root, tmp_path, KEY, timeout_ms=PATIENT_TIMEOUT_MS)
    yield running
    running.close()


def test_status_needs_no_token(node: Node) -> None:
    status, headers, body = node.request("GET", "/status")
    assert status == 200 and headers["content-type"] == "application/json"
    assert isinstance(body, dict) and body["ticks"] > 0
    status, _, _ = node.request("GET", "/status?verbose=1")
    assert status == 200


def test_config_needs_the_token_derived_from_the_group_key(node: Node) -> None:
    cases = [
        # (token sent, status)
        (None, 401),
        ("", 401),
        ("0" * 64, 401),  # the right length, the wrong value
        (TOKEN[:-1], 401),
        (TOKEN.upper(), 401),  # the token is lowercase hex
        (TOKEN, 200),
    ]
    for token, expected in cases:
        status, headers, body = node.request("GET", "/config", token=token)
        assert status == expected, token
        if expected == 401:
            assert headers["www-authenticate"] == "Bearer" and body == {"error": "a valid token is required"}
    # The scheme's name is case-insensitive (RFC 9110, 11.1); another scheme is refused, even with the token.
    for value, expected in ((f"bearer {TOKEN}", 200), (f"BEARER {TOKEN}", 200), (f"Basic {TOKEN}", 401),
                            (f"Bearer{TOKEN}", 401)):
        status, _, _ = node.request("GET", "/config", headers={"Authorization": value})
        assert status == expected, value
    # Refused without the token, a PUT stores nothing.
    status, headers, _ = node.request("PUT", "/config", body=b'{"version": 9}', token="0" * 64)
    assert status == 401 and headers["www-authenticate"] == f"LoadMesh-HMAC node={NODE_ID}, boot={BOOT_ID}, n=0"
    assert node.request("GET", "/config", token=TOKEN)[2] is None


def test_put_config_stores_what_the_callback_accepts(node: Node, tmp_path: Path) -> None:
    config = {"version": 3, "group": "home"}
    status, _, body = node.request("PUT", "/config", body=json.dumps(config).encode(), signed=True)
    assert (status, body) == (200, {"stored": 3})
    assert node.request("GET", "/config", token=TOKEN)[1:][1] == config
    assert (tmp_path / "config.json").is_file()
    refused = [
        # (body, error)
        (b"{not json", None),
        (b'{"version": "three"}', "config.version: \"three\" is not an integer"),
        (b'{"version": 0}', "config.version: 0 is out of range 1..1000000"),
        (b"[1, 2]", "config: a list is not an object"),
    ]
    for raw, error in refused:
        status, _, body = node.request("PUT", "/config", body=raw, signed=True)
        assert status == 400, raw
        if error is not None:
            assert body == {"error": error}
    assert node.request("GET", "/config", token=TOKEN)[2] == config  # unchanged by the refused ones


def test_heating_settings_and_the_switch_need_the_token_too(node: Node) -> None:
    for path in ("/heating", "/load_sharing"):
        assert node.request("GET", path)[0] == 401, path
        assert node.request("PUT", path, body=b"{}", token="0" * 64)[0] == 401, path
        status, headers, _ = node.request("DELETE", path, token=TOKEN)
        assert status == 405 and headers["allow"] == "GET, PUT", path
    # This Api is the base class's for both: nothing kept, every PUT refused with the reason.
    assert node.request("GET", "/heating", token=TOKEN)[::2] == (200, None)
    status, _, body = node.request("PUT", "/heating", body=b'{"room": {}}', signed=True)
    assert (status, body) == (400, {"error": "heating: this node takes no heating settings"})
    status, _, body = node.request("PUT", "/load_sharing", body=b'{"enabled": false}', signed=True)
    assert (status, body) == (400, {"error": "load_sharing: this node runs no load sharing"})


def test_a_request_that_runs_the_heap_out_gets_503_with_retry_after_and_the_node_runs_on(node: Node) -> None:
    # The next status takes 1 KB at a time until the heap (as on an ESP32) has none left: not too large a request
    # (413), a node short of memory for the moment, which nothing was done for. Asked again, it answers.
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "status_hoard": true}', signed=True)
    assert (status, body) == (200, {"stored": 4})
    status, headers, body = node.request("GET", "/status")
    assert (status, body) == (503, {"error": "this node is short of memory for the moment: the request was not "
                                             "taken; ask again"})
    assert headers["retry-after"] == "1" and headers["connection"] == "close"
    status, _, body = node.request("GET", "/status")
    counts = body["http"]  # type: ignore[index]  # the challenge's 401, the PUT, the 503
    assert status == 200 and {key: counts[key] for key in ("requests", "refused", "no_memory")} \
        == {"requests": 3, "refused": 2, "no_memory": 1}, body
    assert _ticks_go_on(node, body["ticks"])  # type: ignore[index]


def test_a_put_that_runs_the_heap_out_once_acted_on_is_not_said_to_be_untaken(node: Node) -> None:
    # The callback takes 1 KB at a time until the heap has none left, after the PUT's count was taken: the
    # server cannot tell how far the callback went (a node's runtime may have kept the config), so its answer
    # says the PUT may have been taken, with no Retry-After: the client reads back before sending it again.
    status, headers, body = node.request("PUT", "/config", body=b'{"version": 4, "hoard_kb": 100000}', signed=True)
    assert (status, body) == (503, {"error": "this node ran short of memory while acting on the request: it may "
                                             "have been taken; read back what it has before sending it again"})
    assert "retry-after" not in headers
    assert node.challenge() == (BOOT_ID, 1)  # the count was taken: the same PUT sent again is refused (401)
    assert node.request("GET", "/config", token=TOKEN)[2] is None  # nothing kept, this time
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4}', signed=True)
    assert (status, body) == (200, {"stored": 4})
    assert _ticks_go_on(node, node.request("GET", "/status")[2]["ticks"])  # type: ignore[index]


def test_the_prebuilt_answers_are_whole() -> None:
    # Made by hand: each one's Content-Length is its body's, and a 503 that says nothing was done says when to
    # ask again.
    for head, pieces in (httpapi._NO_MEMORY, httpapi._MAYBE_TAKEN):
        assert head.startswith(b"HTTP/1.0 503 Service Unavailable\r\n") and head.endswith(b"\r\n\r\n")
        assert f"\r\nContent-Length: {httpapi._body_length(pieces)}\r\n".encode() in head
        assert isinstance(json.loads(b"".join(pieces))["error"], str)
        assert (b"\r\nRetry-After: 1\r\n" in head) == (pieces is not httpapi._MAYBE_TAKEN[1])


def test_an_answer_is_in_the_heap_once(node: Node) -> None:
    # The next status carries 20 KB of text (the heap has about 80 KB free): it fits beside its canonical bytes,
    # as it did not beside them, their text, its bytes and head and body joined (16 KB did).
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "answer_kb": 20}', signed=True)
    assert (status, body) == (200, {"stored": 4})
    status, headers, body = node.request("GET", "/status")  # Content-Length checked against what arrived
    assert status == 200 and body["pad"] == "x" * 20 * 1024, headers  # type: ignore[index]
    assert headers["connection"] == "close"
    assert node.request("GET", "/status")[2]["http"]["no_memory"] == 0  # type: ignore[index]


def test_an_answer_is_its_canonical_json_byte_for_byte(node: Node) -> None:
    # The body is sent in pieces (one or more top-level keys each): what arrives is the canonical JSON of the
    # answer, as CPython's canon writes it, byte for byte: keys sorted (an empty one first, capitals before
    # lowercase), no spaces, escapes, non-ASCII as \uXXXX escapes (a pair beyond the BMP), nested and empty values.
    extra = {"b": {"z": [1, -2, True, False, None], "a": {}}, "a_b": 'a "quote", a \\ and a\nnew line\t\x07',
             "ab": [], "B": "é ☃ \U0001F600", "a": {"nested": {"y": 1, "x": [{"q": "r"}, []]}}, "zz": 0, "": "",
             "peers": {"p" + str(index): [index, "x" * index] for index in range(12)}, "z": None}
    body = json.dumps({"version": 4, "answer_extra": extra}, ensure_ascii=False).encode()
    status, _, answer = node.request("PUT", "/config", body=body, signed=True)
    assert (status, answer) == (200, {"stored": 4})
    status, _, raw = node.send(b"GET /status HTTP/1.0\r\n\r\n")  # Content-Length checked against what arrived
    assert status == 200
    sent = json.loads(raw)
    assert {key: sent[key] for key in extra} == extra
    assert raw == canon.encode(sent)
    # A single key, a null, an error answer: each its canonical JSON too.
    status, _, raw = node.send(f"GET /config HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert status == 200 and raw == canon.encode({"version": 4})
    status, _, raw = node.send(f"GET /heating HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert (status, raw) == (200, b"null")
    status, _, raw = node.send(b"GET /nowhere HTTP/1.0\r\n\r\n")
    assert (status, raw) == (404, b'{"error":"not found"}')


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=8) | JSON_VALUES)
def test_the_pieces_of_an_answer_are_its_canonical_json(answer: object) -> None:
    # What _write_answer sends of the pieces (each but the last without its last byte), on CPython.
    pieces = httpapi._pieces(answer)
    sent = b"".join([bytes(piece[:-1]) for piece in pieces[:-1]] + [bytes(pieces[-1])])
    assert sent == bytes(canon.encode(answer))
    assert httpapi._body_length(pieces) == len(sent)
    assert max(len(piece) for piece in pieces) <= len(sent)


def test_an_answer_needs_no_block_of_its_length(node: Node) -> None:
    # The next status carries six parts of 800 bytes, and the node leaves its free memory in blocks of about
    # 1 KB (the heap filled with 1 KB blocks, every other one let go) before it is encoded: a full node's heap,
    # with room in small blocks only. Each part is a piece of its own; the whole answer (4.9 KB) found no block
    # and was answered 503.
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "answer_parts": [6, 800, 1024]}',
                                   signed=True)
    assert (status, body) == (200, {"stored": 4})
    status, _, body = node.request("GET", "/status")  # Content-Length checked against what arrived
    assert status == 200, body
    assert [body["part" + str(index)] for index in range(6)] == [["x" * 800]] * 6  # type: ignore[index]
    assert node.request("GET", "/status")[2]["http"]["no_memory"] == 0  # type: ignore[index]


def test_an_answer_the_socket_does_not_take_at_once_arrives_whole(device_root: Path, tmp_path: Path) -> None:
    # The node's socket takes about 5 KB at once (SO_SNDBUF 4096: an ESP32's TCP send buffer is a few KB) and
    # the client, with a small receive window, reads only after a while: the stream keeps the rest of the 20 KB
    # body and sends it as the client reads.
    node = Node(device_root, tmp_path, KEY, send_buffer=4096, timeout_ms=PATIENT_TIMEOUT_MS)
    try:
        status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "answer_kb": 20}', signed=True)
        assert (status, body) == (200, {"stored": 4})
        with socket.socket() as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            conn.settimeout(10)
            conn.connect(("127.0.0.1", node.port))
            conn.sendall(b"GET /status HTTP/1.0\r\n\r\n")
            time.sleep(0.2)
            status, headers, raw = _answer(conn)  # Content-Length checked against what arrived
        assert status == 200 and json.loads(raw)["pad"] == "x" * 20 * 1024, headers
    finally:
        node.close()


def test_an_answer_too_big_for_the_heap_gets_503_and_the_server_runs_on(node: Node) -> None:
    # The next status carries 40 KB: the text fits in the heap, not beside its canonical bytes.
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "answer_kb": 40}', signed=True)
    assert (status, body) == (200, {"stored": 4})
    status, headers, body = node.request("GET", "/status")
    assert (status, body) == (503, {"error": "this node is short of memory for the moment: the request was not "
                                             "taken; ask again"})
    assert headers["connection"] == "close" and headers["retry-after"] == "1"
    status, _, body = node.request("GET", "/status")
    # The counts as they were before this request: the PUT that learnt the challenge (401), the signed PUT, and
    # the GET answered 503 (a status it asked for that did not fit), refused as any 4xx or 5xx is (it was not:
    # no_memory alone said so).
    counts = body["http"]  # type: ignore[index]
    assert status == 200 and {key: counts[key] for key in ("requests", "refused", "busy", "timeouts", "no_memory")} \
        == {"requests": 3, "refused": 2, "busy": 0, "timeouts": 0, "no_memory": 1}, body


def test_an_answer_json_cannot_carry_gets_500_counted_as_refused(node: Node) -> None:
    # A callback's bug: the next status carries bytes.
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "answer_bytes": true}', signed=True)
    assert (status, body) == (200, {"stored": 4})
    assert node.request("GET", "/status")[::2] == (500, {"error": "internal"})
    status, _, body = node.request("GET", "/status")
    counts = body["http"]  # type: ignore[index]  # the challenge's 401, the PUT, the 500
    assert status == 200 and {key: counts[key] for key in ("requests", "refused", "busy", "timeouts", "no_memory")} \
        == {"requests": 3, "refused": 2, "busy": 0, "timeouts": 0, "no_memory": 0}, body


def test_wrong_paths_methods_and_sizes(node: Node) -> None:
    assert node.request("GET", "/")[0] == 404
    assert node.request("GET", "/status/x")[0] == 404
    status, headers, _ = node.request("POST", "/status", body=b"{}")
    assert status == 405 and headers["allow"] == "GET"
    status, headers, _ = node.request("DELETE", "/config", token=TOKEN)
    assert status == 405 and headers["allow"] == "GET, PUT"
    # A body over the bound is refused from its Content-Length, before it is read.
    status, _, body = node.request("PUT", "/config", signed=True, headers={"Content-Length": "100000"})
    assert status == 413 and body == {"error": "body over 2048 bytes"}
    assert node.request("PUT", "/config", signed=True)[0] == 411
    assert node.request("PUT", "/config", signed=True, headers={"Transfer-Encoding": "chunked"})[0] == 501
    assert node.request("PUT", "/config", signed=True, headers={"Content-Length": "-1"})[0] == 400
    # A request head over 1024 bytes.
    status, _, _ = node.send(b"GET /status HTTP/1.1\r\nX-Padding: " + b"x" * 2000 + b"\r\n\r\n")
    assert status == 413


def test_garbage_gets_400_and_the_server_carries_on(node: Node) -> None:
    for raw in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET\r\n\r\n", b"GET /status\r\n\r\n",
                b"GET status HTTP/1.1\r\n\r\n", b"GET /\xff\xfe HTTP/1.1\r\n\r\n", b"\r\n\r\n",
                b"GET /status SMTP/1.0\r\n\r\n"):
        status, _, _ = node.send(raw)
        assert status == 400, raw
    # Closed before a whole request: no answer, no harm.
    with socket.create_connection(("127.0.0.1", node.port)) as conn:
        conn.sendall(b"GET /sta")
    assert node.request("GET", "/status")[0] == 200


def test_slow_clients_time_out(patient_node: Node) -> None:
    node = patient_node  # the third request must come while the slow ones are still served
    slow = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(2)]
    try:
        for conn in slow:
            conn.sendall(b"GET /sta")  # and nothing more
        time.sleep(0.2)
        # Both client slots are taken: a third is turned away at once, not queued.
        status, headers, body = node.request("GET", "/status")
        assert (status, body) == (503, {"error": "busy"}) and headers["retry-after"] == "1"
        # The slow ones are closed once their time is up, unanswered.
        for conn in slow:
            conn.settimeout(10)
            assert conn.recv(100) == b""
    finally:
        for conn in slow:
            conn.close()
    status, _, body = node.request("GET", "/status")
    assert status == 200 and isinstance(body, dict)
    assert body["http"]["timeouts"] == 2 and body["http"]["busy"] == 1


def test_a_dawdling_client_never_holds_up_the_tick(device_root: Path, tmp_path: Path) -> None:
    # While one client dawdles, the tick goes on and others are answered. The node gives it 8 s, and its clock
    # starts after the client connected: a /status that shows the tick gone on, read within 8 s of connecting,
    # was answered while the dawdler was still held. A loop the dawdler held up answers only once those 8 s are
    # up. (A patient node's 1.5 s, looked at for 0.3 s + 1.5 s, let such a loop pass: it went on within that.)
    node = Node(device_root, tmp_path, KEY, timeout_ms=DAWDLER_TIMEOUT_MS)
    try:
        status, _, body = node.request("GET", "/status")
        assert status == 200 and isinstance(body, dict) and body["http"]["timeouts"] == 0
        before = body["ticks"]
        with socket.create_connection(("127.0.0.1", node.port)) as conn:
            connected = time.monotonic()
            conn.sendall(b"PUT /config HTTP/1.1\r\nContent-Length: 50\r\n")
            time.sleep(0.3)  # the node has read what it sent, and waits for the rest
            shown = _status_past(node, before, within_s=5)
            took_s = time.monotonic() - connected
        assert shown is not None and shown["http"]["timeouts"] == 0, shown  # type: ignore[index]
        assert took_s < DAWDLER_TIMEOUT_MS / 1000, took_s
    finally:
        node.close()


def test_a_client_the_accept_loop_has_no_room_for_is_told_503_and_the_next_is_served(device_root: Path,
                                                                                      tmp_path: Path) -> None:
    # Out of memory where the accept loop makes a client's stream: before, the MemoryError ended the loop, and the
    # node answered no one until its next reset (its ticks went on).
    node = Node(device_root, tmp_path, KEY, accept_no_memory=2)
    try:
        for _ in range(2):
            # The constant 503 is sent, and the socket closed at once with the request unread: the kernel may then
            # reset the connection before the client reads the answer (the server has no heap to read it first).
            try:
                status, headers, body = node.request("GET", "/status")
            except (ConnectionResetError, IndexError):  # reset, or closed with nothing read
                continue
            assert (status, headers.get("retry-after")) == (503, "1"), (status, headers, body)
        status, _, body = node.request("GET", "/status")
        assert status == 200 and isinstance(body, dict), (status, body)
        assert body["http"]["no_memory"] == 2 and body["http"]["refused"] == 2  # type: ignore[index]
    finally:
        node.close()


def test_a_full_server_accepts_no_more_connections_than_it_has_room_for(node: Node) -> None:
    # Two slow clients fill the server; of four more, two are told 503 and two
    # wait in the kernel's queue until there is room, instead of each costing
    # the node a task and buffers at once (a flood ran a node out of memory so).
    slow = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(2)]
    more: list[socket.socket] = []
    try:
        for conn in slow:
            conn.sendall(b"GET /sta")
        time.sleep(0.1)
        for _ in range(4):
            conn = socket.create_connection(("127.0.0.1", node.port), timeout=10)
            conn.sendall(b"GET /status HTTP/1.0\r\n\r\n")
            more.append(conn)
        answers = sorted(_answer(conn)[0] for conn in more)
    finally:
        for conn in slow + more:
            conn.close()
    assert len(answers) == 4 and set(answers) <= {200, 503}  # each answered in turn
    status, _, body = node.request("GET", "/status")
    assert status == 200
    assert body["http"]["open_max"] <= 4  # type: ignore[index]  # 2 served and 2 told 503, never more


def test_one_body_at_a_time(patient_node: Node) -> None:
    # Two clients with the token could otherwise make the node hold two bodies
    # of max_body at once; the second is turned away while the first is read.
    node = patient_node  # the second must come while the first's body is still awaited
    body = b'{"version": 2}'
    # Its challenge learnt first: only the PUT itself need come within the first one's time on a loaded machine.
    authorization = node.signature("/config", body)
    with socket.create_connection(("127.0.0.1", node.port)) as first:
        # A signature of this boot's and a fresh count: its mac is checked only once the body has come.
        first.sendall(f"PUT /config HTTP/1.1\r\nAuthorization: LoadMesh-HMAC boot={BOOT_ID}, n=1, mac={'0' * 64}\r\n"
                      f"Content-Length: {MAX_BODY}\r\n\r\n{{".encode())
        time.sleep(0.2)
        status, headers, answer = node.request("PUT", "/config", body=body, headers={"Authorization": authorization})
        assert (status, answer) == (503, {"error": "busy: another request's body is being read"})
        assert headers["retry-after"] == "1"
        first.settimeout(10)
        assert first.recv(100) == b""  # its time is up, unanswered
    # Once it is gone, a body is read again.
    assert node.request("PUT", "/config", body=b"{not json", signed=True)[0] == 400


def test_an_unadopted_node_refuses_every_config_request(device_root: Path, tmp_path: Path) -> None:
    unadopted = Node(device_root, tmp_path, None)
    try:
        assert unadopted.request("GET", "/config", token=TOKEN)[0] == 401
        assert unadopted.request("PUT", "/config", body=b'{"version": 1}', token=TOKEN)[0] == 401
        assert unadopted.request("GET", "/status")[0] == 200
    finally:
        unadopted.close()


def _stored(node: Node) -> object:
    status, _, body = node.request("GET", "/config", token=TOKEN)
    assert status == 200
    return body


def test_the_token_reads_but_a_put_needs_a_signature(node: Node) -> None:
    # The bearer token, sent in clear, would let whoever saw one request change the node's settings for ever.
    for path in ("/config", "/heating", "/load_sharing"):
        status, headers, body = node.request("PUT", path, body=b'{"version": 9}', token=TOKEN)
        assert status == 401, path
        assert headers["www-authenticate"] == f"LoadMesh-HMAC node={NODE_ID}, boot={BOOT_ID}, n=0"
        assert body == {"error": "a PUT needs a signed request (Authorization: LoadMesh-HMAC boot, n, mac; "
                                 "loadmesh put signs)"}
        assert node.request("GET", path, token=TOKEN)[0] == 200, path
    assert _stored(node) is None
    # Signed, the same PUT is taken.
    assert node.request("PUT", "/config", body=b'{"version": 9}', signed=True)[::2] == (200, {"stored": 9})
    assert _stored(node) == {"version": 9}


@pytest.mark.parametrize("boot", [1, 999999999, (1 << 30) - 1])  # adopt --boot-floor goes up to 2^30 - 2
def test_a_signature_for_any_boot_id_the_node_can_have_is_read_as_the_simulator_signs_it(boot: int) -> None:
    from loadmesh.core import hmac256
    from loadmesh.node import putsign

    authorization = put_signature(KEY, "/config", NODE_ID, boot, 12, b"{}")  # the simulator's own code
    parsed = putsign.parse(authorization.encode())
    assert parsed is not None and parsed[:2] == (boot, 12)
    assert parsed[2] == putsign.mac(hmac256.prepare(KEY), b"PUT", b"/config", NODE_ID.encode(), boot, 12, b"{}")
    assert put_challenge(putsign.challenge(NODE_ID, boot, 12)) == (NODE_ID, boot, 12)
    assert putsign.parse_challenge(putsign.challenge(NODE_ID, boot, 12)) == (NODE_ID, boot, 12)


def test_a_replayed_put_is_refused_and_changes_nothing(node: Node) -> None:
    first = b'{"version": 1}'
    replayed = (f"PUT /config HTTP/1.1\r\nAuthorization: {node.signature('/config', first)}\r\n"
                f"Content-Length: {len(first)}\r\n\r\n").encode() + first
    status, _, body = node.send(replayed)
    assert (status, json.loads(body)) == (200, {"stored": 1})
    assert node.request("PUT", "/config", body=b'{"version": 2}', signed=True)[0] == 200
    # The first request, byte for byte, once more: it would put version 1 back.
    status, headers, body = node.send(replayed)
    assert status == 401 and headers["www-authenticate"] == f"LoadMesh-HMAC node={NODE_ID}, boot={BOOT_ID}, n=2"
    assert json.loads(body) == {"error": "the signature's count was taken already: sign with a count above the last"}
    assert _stored(node) == {"version": 2}
    status_now = node.request("GET", "/status")[2]
    assert status_now["http"]["refused"] >= 1  # type: ignore[index]
    # What checked it is not left in the heap by a refused PUT (a stranger's could otherwise keep it there).
    assert status_now["putsign"] is False  # type: ignore[index]


def test_a_signature_for_another_boot_count_path_body_or_key_is_refused(node: Node) -> None:
    assert node.request("PUT", "/config", body=b'{"version": 1}', signed=True)[0] == 200  # count 1 taken
    body = b'{"version": 5}'
    other_key = bytes(range(2, 34))
    cases = [
        # (path sent to, Authorization, the node's words)
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID + 1, 2, body),
         "the signature is for another boot of this node"),
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID - 1, 2, body),
         "the signature is for another boot of this node"),
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID, 1, body),
         "the signature's count was taken already: sign with a count above the last"),
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID, 0, body),
         "the signature's count was taken already: sign with a count above the last"),
        ("/config", put_signature(KEY, "/heating", NODE_ID, BOOT_ID, 2, body),
         "the signature does not match the request (another node, key, path or body)"),
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID, 2, b'{"version": 6}'),  # one byte changed
         "the signature does not match the request (another node, key, path or body)"),
        ("/config", put_signature(other_key, "/config", NODE_ID, BOOT_ID, 2, body),
         "the signature does not match the request (another node, key, path or body)"),
        # Another node of the group, under the same boot id (adopted in the same minute): not this one's.
        ("/config", put_signature(KEY, "/config", "evse2", BOOT_ID, 2, body),
         "the signature does not match the request (another node, key, path or body)"),
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID, 2, body).upper(),  # the mac is lowercase hex
         "a PUT needs a signed request (Authorization: LoadMesh-HMAC boot, n, mac; loadmesh put signs)"),
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID, 2, body).replace(", n=2", ""),
         "a PUT needs a signed request (Authorization: LoadMesh-HMAC boot, n, mac; loadmesh put signs)"),
        ("/config", put_signature(KEY, "/config", NODE_ID, BOOT_ID, 2, body) + ", n=3",
         "a PUT needs a signed request (Authorization: LoadMesh-HMAC boot, n, mac; loadmesh put signs)"),
    ]
    for path, authorization, words in cases:
        status, headers, answer = node.request("PUT", path, body=body, headers={"Authorization": authorization})
        assert (status, answer) == (401, {"error": words}), authorization
        # None of them took a count.
        assert headers["www-authenticate"] == f"LoadMesh-HMAC node={NODE_ID}, boot={BOOT_ID}, n=1"
    assert _stored(node) == {"version": 1}
    # The scheme's name is case-insensitive; the count need not be the next one, only above the last.
    authorization = put_signature(KEY, "/config", NODE_ID, BOOT_ID, 40, body).replace("LoadMesh-HMAC", "loadmesh-hmac")
    status, _, answer = node.request("PUT", "/config", body=body, headers={"Authorization": authorization})
    assert (status, answer) == (200, {"stored": 5})
    assert node.challenge() == (BOOT_ID, 40)


def test_a_reboot_invalidates_every_earlier_signature(device_root: Path, tmp_path: Path) -> None:
    body = b'{"version": 3}'
    node = Node(device_root, tmp_path, KEY)
    try:
        raw = (f"PUT /config HTTP/1.1\r\nAuthorization: {node.signature('/config', body)}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        assert node.send(raw)[0] == 200
    finally:
        node.close()
    (tmp_path / "config.json").unlink()
    rebooted = Node(device_root, tmp_path, KEY, boot_id=BOOT_ID + 1)  # the store's next boot id
    try:
        status, headers, answer = rebooted.send(raw)
        assert status == 401 and headers["www-authenticate"] == f"LoadMesh-HMAC node={NODE_ID}, boot={BOOT_ID + 1}, n=0"
        assert json.loads(answer) == {"error": "the signature is for another boot of this node"}
        assert _stored(rebooted) is None
    finally:
        rebooted.close()


def test_the_companion_signs_a_put_and_learns_the_challenge(node: Node) -> None:
    for version in (1, 2):  # the second: a count above the first's, learnt from the node
        body = json.dumps({"version": version}).encode()
        status, _, answer = nodehttp.signed_put("127.0.0.1", node.port, 10, "/config", body, KEY)
        assert (status, json.loads(answer)) == (200, {"stored": version})
    assert node.challenge() == (BOOT_ID, 2)
    # Another key: refused, once the challenge is known, and nothing changes.
    status, _, answer = nodehttp.signed_put("127.0.0.1", node.port, 10, "/config", b'{"version": 3}',
                                            bytes(range(2, 34)))
    assert status == 401 and json.loads(answer)["error"].startswith("the signature does not match")
    assert _stored(node) == {"version": 2}


def test_two_clients_racing_for_a_count_each_get_theirs_taken_once(node: Node) -> None:
    # Between the companion's challenge and its signed PUT another client takes the same count: the node refuses
    # the companion's with the new count in its challenge, and the companion signs again once. A relay in front
    # of the node plays the other client, at the moment the companion's signed PUT comes through.
    import threading

    raced: list[int] = []
    relay = socket.create_server(("127.0.0.1", 0))
    relay.settimeout(10)

    def serve() -> None:
        for _ in range(3):  # the challenge, the signed PUT refused, the one signed again
            try:
                client, _ = relay.accept()
            except OSError:
                return
            with client:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += client.recv(4096)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), b"0"))
                while len(body) < length:
                    body += client.recv(4096)
                if b"LoadMesh-HMAC" in head and not raced:
                    boot, count = node.challenge()
                    other = b'{"version": 7}'
                    raced.append(node.request("PUT", "/config", body=other, headers={
                        "Authorization": put_signature(KEY, "/config", NODE_ID, boot, count + 1, other)})[0])
                with socket.create_connection(("127.0.0.1", node.port), timeout=10) as upstream:
                    upstream.sendall(head + b"\r\n\r\n" + body)
                    client.sendall(b"".join(iter(lambda conn=upstream: conn.recv(4096), b"")))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        status, _, answer = nodehttp.signed_put("127.0.0.1", relay.getsockname()[1], 10, "/config",
                                                b'{"version": 8}', KEY)
    finally:
        relay.close()
        thread.join(10)
    assert raced == [200]  # the other client's PUT, with the count the companion had signed for
    assert (status, json.loads(answer)) == (200, {"stored": 8})  # the companion's, signed again with one more
    assert node.challenge() == (BOOT_ID, 2) and _stored(node) == {"version": 8}


def test_the_companion_asks_again_for_a_status_a_node_short_of_memory_refused(node: Node) -> None:
    # The next status runs out of the heap: 503 with Retry-After: 1. The companion waits and asks again, within
    # its deadline, and gets the status, saying nothing of the first answer.
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "status_hoard": true}', signed=True)
    assert (status, body) == (200, {"stored": 4})
    status, _, answer = nodehttp.exchange("127.0.0.1", node.port, 10, "GET", "/status")
    assert status == 200, answer
    assert json.loads(answer)["http"]["no_memory"] == 1  # the first answer was the 503


def test_the_companion_sends_a_put_again_only_once_the_node_shows_it_did_not_take_it(node: Node) -> None:
    # The second PUT from now runs out of the heap while its head is judged, before its count is taken: the
    # companion's challenge is the first, its signed PUT the second (503, Retry-After: 1). The challenge asked for
    # again shows its count not taken, and the PUT signed again is taken.
    status, _, body = node.request("PUT", "/config", body=b'{"version": 4, "put_hoard": 2}', signed=True)
    assert (status, body) == (200, {"stored": 4})
    status, _, answer = nodehttp.signed_put("127.0.0.1", node.port, 10, "/config", b'{"version": 5}', KEY)
    assert (status, json.loads(answer)) == (200, {"stored": 5})
    assert node.challenge() == (BOOT_ID, 2) and _stored(node) == {"version": 5}
    # One that runs out of the heap once its count is taken may have been acted on: the companion leaves it as the
    # node answered it, and sends nothing more (the count the node took is its one signature).
    status, _, answer = nodehttp.signed_put("127.0.0.1", node.port, 10, "/config",
                                            b'{"version": 6, "hoard_kb": 100000}', KEY)
    assert (status, json.loads(answer)["error"]) == (503, "this node ran short of memory while acting on the request: "
                                                          "it may have been taken; read back what it has before "
                                                          "sending it again")
    assert node.challenge() == (BOOT_ID, 3) and _stored(node) == {"version": 5}
