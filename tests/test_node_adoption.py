"""Adoption of a real node process: its one-time code, its key and settings over PUT /adopt, then its config."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadmesh.companion.runtimes import SMALL_HEAP
from loadmesh.companion.sim.runner import free_port, http_token, put_challenge, put_signature
from loadmesh.core import configsync, groupconfig, heartbeat
from loadmesh.node import adoption
from loadmesh.node.store import Store

from . import mpnode

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

KEY = bytes(range(7, 39))
CONFIG = groupconfig.parse({
    "group": "home", "version": 1, "updated_at": 1, "origin": "test", "key_id": "k1",
    "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100},
    "members": [{"id": "solo", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}]})


class NodeRun:
    """The node's main.py in a folder, as a process; killed when the test ends."""

    def __init__(self, device_root: Path, folder: Path, http_port: int, key: bytes = KEY) -> None:
        self.key = key  # the group key its PUTs are signed with (signature(), put())
        self.command = [str(mpnode.node_image(device_root)), "-X", "heapsize=" + SMALL_HEAP,
                        str(device_root / "py" / "main.py")]
        self.folder = folder
        self.http_port = http_port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start it; the first line it prints, once its HTTP API answers."""
        log = self.folder / "node.log"
        with log.open("w") as out:
            self.process = subprocess.Popen(self.command, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT,
                                            env=dict(os.environ, MICROPYPATH=".frozen"))
        deadline = time.monotonic() + 10
        while self.request("GET", "/status")[0] != 200:
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        return log.read_text().splitlines()[0]

    def request(self, method: str, path: str, body: bytes | None = None, token: str | None = None,
                authorization: str | None = None) -> tuple[int, dict[str, object]]:
        """(status, JSON answer); token: a bearer token; authorization: the Authorization header as it is."""
        return self._request(method, path, body, token, authorization)[::2]  # type: ignore[return-value]

    def signature(self, path: str, body: bytes) -> str:
        """The Authorization of a PUT of body to path signed with its key for the node's challenge (learnt from a PUT
        it refuses from the head) and the next count."""
        status, challenge, _ = self._request("PUT", path, b"", None, None)
        learnt = put_challenge(challenge)
        assert status == 401 and learnt is not None, challenge
        return put_signature(self.key, path, learnt[0], learnt[1], learnt[2] + 1, body)

    def put(self, path: str, body: bytes) -> tuple[int, dict[str, object]]:
        """(status, JSON answer) of a PUT of body to path, signed with its key (signature())."""
        return self.request("PUT", path, body, authorization=self.signature(path, body))

    def _request(self, method: str, path: str, body: bytes | None, token: str | None,
                 authorization: str | None) -> tuple[int, str | None, dict[str, object]]:
        import http.client
        import json

        headers = {"Authorization": "Bearer " + token} if token else {}
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read() or b"null")
            connection.close()
        except OSError as exc:
            return 0, None, {"error": str(exc)}
        return response.status, response.getheader("WWW-Authenticate"), answer

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def unadopted_node(device_root: Path, tmp_path: Path, hw: dict[str, object]) -> NodeRun:
    """A node folder as before adoption: its wiring, and where its HTTP API listens."""
    folder = tmp_path / "node"
    folder.mkdir()
    http_port = free_port(socket.SOCK_STREAM)
    store = Store(str(folder))
    store.write_json("hw.json", hw)
    store.write_json("node.json", {"http_port": http_port, "http_host": "127.0.0.1"})
    return NodeRun(device_root, folder, http_port)


@pytest.fixture
def node(device_root: Path, tmp_path: Path) -> Iterator[NodeRun]:
    running = unadopted_node(device_root, tmp_path, {"hal": "none"})
    yield running
    running.kill()


def test_a_node_is_adopted_with_its_code_once_then_runs_its_config_after_a_reboot(node: NodeRun) -> None:
    first = node.start()
    assert first.startswith("loadmesh node: unadopted; adoption code ")
    code = bytes.fromhex(first.rsplit(" ", 1)[1])
    assert len(code) == adoption.CODE_BYTES
    status, answer = node.request("GET", "/status")
    assert (answer["state"], answer["node"]) == ("unadopted", None)
    assert node.request("GET", "/config", token=http_token(KEY))[0] == 401  # no key: no token is valid

    settings = {"http_port": node.http_port, "http_host": "127.0.0.1", "mesh_port": free_port(socket.SOCK_DGRAM),
                "mesh_host": "127.0.0.1", "mesh_dest_port": 9, "bind_host": "127.0.0.1"}
    good = adoption.make_request(code, "solo", KEY, 41, settings, os.urandom(16))
    assert KEY.hex().encode() not in good  # the key does not cross the network in clear
    other_code = bytes(16)
    refused = [
        # (body, error)
        (adoption.make_request(other_code, "solo", KEY, 41, settings, os.urandom(16)),
         "adopt.tag: does not match this node's adoption code"),
        (good.replace(b'"boot_floor":41', b'"boot_floor":42'), "adopt.tag: does not match this node's adoption code"),
        (b"{not json", "adopt: the body is not JSON"),
        (b'{"node": "solo"}', "adopt.tag: null is not hex"),
    ]
    for body, error in refused:
        assert node.request("PUT", "/adopt", body) == (400, {"error": error})
    assert node.request("GET", "/status")[1]["state"] == "unadopted"

    assert node.request("PUT", "/adopt", good) == (200, {"adopted": "solo", "boot_id": 42})
    assert node.request("PUT", "/adopt", good) == (409, {"error": "adopt: this node is adopted already"})
    assert node.request("GET", "/status")[1]["state"] == "no_config"

    sealed = configsync.seal(heartbeat.prepare_key(KEY), CONFIG)
    unsigned = {"error": "a PUT needs a signed request (Authorization: LoadMesh-HMAC boot, n, mac; loadmesh put signs)"}
    assert node.request("PUT", "/config", sealed) == (401, unsigned)
    assert node.request("PUT", "/config", sealed, token=http_token(KEY)) == (401, unsigned)  # the token only reads
    signed = node.signature("/config", sealed)
    assert signed.startswith("LoadMesh-HMAC boot=42, n=1, mac=")  # the boot adoption gave it, its first count
    status, answer = node.request("PUT", "/config", sealed, authorization=signed)
    assert (status, answer) == (200, {"adopted": True, "version": 1, "announced": groupconfig.announced(CONFIG)})
    taken = {"error": "the signature's count was taken already: sign with a count above the last"}
    assert node.request("PUT", "/config", sealed, authorization=signed) == (401, taken)  # sent again
    status, answer = node.request("GET", "/status")
    assert (answer["state"], answer["node"], answer["boot_id"]) == ("running", "solo", 42)
    status, answer = node.request("GET", "/config", token=http_token(KEY))
    assert answer == {"config": CONFIG, "tag": sealed[-32:].hex(), "version": 1,
                      "announced": groupconfig.announced(CONFIG)}

    # What it keeps: the key, its settings and its config; the code is spent.
    store = Store(str(node.folder))
    assert store.read_key() == KEY and store.read(adoption.CODE_FILE) is None
    node.kill()
    assert node.start() == "loadmesh node solo: boot 43, config version 1 " + groupconfig.announced(CONFIG)
    status, answer = node.request("GET", "/status")
    assert (answer["state"], answer["boot_id"]) == ("running", 43)
    # A reboot: the counts start again, and no signature of an earlier boot is taken.
    assert node.request("PUT", "/config", sealed, authorization=signed) == (
        401, {"error": "the signature is for another boot of this node"})
    rebooted = node.signature("/config", sealed)
    assert rebooted.startswith("LoadMesh-HMAC boot=43, n=1, mac=")
    assert node.request("PUT", "/config", sealed, authorization=rebooted)[0] == 200
    assert node.request("PUT", "/adopt", good)[0] == 409


LOST = {"error": "this node's boot counter was lost (boot_state reset), so its boot ids may repeat ones a PUT was "
                 "signed for: it takes no PUT until it is adopted again (remove its key file, reset it, loadmesh "
                 "adopt) or given a boot floor above its boot id and its peers' (loadmesh node-files' boot.a)"}


def test_a_node_whose_boot_counter_was_lost_takes_no_put_until_a_floor_is_vouched_for(node: NodeRun) -> None:
    code = bytes.fromhex(node.start().rsplit(" ", 1)[1])
    settings = _solo_settings(node.http_port)
    del settings["id"]
    # Floor 0, below the boot id it counted unadopted: adoption vouches for that count and keeps it.
    assert node.request("PUT", "/adopt", adoption.make_request(code, "solo", KEY, 0, settings, os.urandom(16))) == (
        200, {"adopted": "solo", "boot_id": 1})
    assert node.request("GET", "/status")[1]["boot_state"] == "ok"
    sealed = configsync.seal(heartbeat.prepare_key(KEY), CONFIG)
    seen = node.signature("/config", sealed)  # a PUT someone on the LAN saw: boot 1, count 1
    assert node.request("PUT", "/config", sealed, authorization=seen)[0] == 200
    node.kill()

    for name in ("boot.a", "boot.b"):  # every copy of the counter lost; the key and the config kept
        (node.folder / name).unlink()
    assert node.start() == "loadmesh node solo: boot 1, config version 1 " + groupconfig.announced(CONFIG)
    # Boot 1 again, its counts from 0: the PUT seen would be taken again. None is, signed or not, before its
    # body is read; the 409 names why and the way out, and no challenge invites a signature.
    assert node.request("PUT", "/config", sealed, authorization=seen) == (409, LOST)
    status, challenge, answer = node._request("PUT", "/config", b"", None, None)
    assert (status, challenge, answer) == (409, None, LOST)
    status, answer = node.request("GET", "/status")
    assert (answer["state"], answer["boot_id"], answer["boot_state"]) == ("running", 1, "reset")
    assert node.request("GET", "/config", token=http_token(KEY))[0] == 200  # reading is no risk
    node.kill()
    # A reboot does not end it: boot 2 may have been used before too.
    node.start()
    assert node.request("PUT", "/config", sealed, authorization=seen) == (409, LOST)
    assert node.request("GET", "/status")[1]["boot_state"] == "reset"
    node.kill()

    # node-files' boot.a above the boot ids it had (plain digits, as nodefiles.py writes it) vouches for the count.
    Store(str(node.folder)).write("boot.a", b"500")
    assert node.start() == "loadmesh node solo: boot 501, config version 1 " + groupconfig.announced(CONFIG)
    assert node.request("GET", "/status")[1]["boot_state"] == "ok"
    assert node.put("/config", sealed)[0] == 200
    node.kill()

    # Adoption does too: lost again, a factory reset (the key removed), and adopted with a floor below its count.
    for name in ("boot.a", "boot.b", "key"):
        (node.folder / name).unlink()
    code = bytes.fromhex(node.start().rsplit(" ", 1)[1])
    assert node.request("GET", "/status")[1]["boot_state"] == "reset"  # unadopted: nothing to refuse yet
    assert node.request("PUT", "/adopt", adoption.make_request(code, "solo", KEY, 0, settings, os.urandom(16))) == (
        200, {"adopted": "solo", "boot_id": 1})
    assert node.request("GET", "/status")[1]["boot_state"] == "ok"
    assert node.put("/config", sealed)[0] == 200


def _solo_settings(http_port: int) -> dict[str, object]:
    return {"id": "solo", "http_port": http_port, "http_host": "127.0.0.1", "mesh_port": free_port(socket.SOCK_DGRAM),
            "mesh_host": "127.0.0.1", "mesh_dest_port": 9, "bind_host": "127.0.0.1"}


def test_an_adopted_node_refuses_adopt_before_reading_a_body(node: NodeRun) -> None:
    # Nobody may make an adopted node hold a body without its token: the
    # refusal comes on the head alone, with 8 KB announced and one byte sent.
    store = Store(str(node.folder))
    store.write_key(KEY)
    store.write_json("node.json", _solo_settings(node.http_port))
    store.write_json("config.json", CONFIG)
    node.start()
    with socket.create_connection(("127.0.0.1", node.http_port), timeout=5) as client:
        client.sendall(b"PUT /adopt HTTP/1.0\r\nContent-Length: 8192\r\n\r\n{")
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 409 Conflict\r\n"), answer
    assert body == b'{"error":"adopt: this node is adopted already"}'
    assert node.request("GET", "/status")[1]["state"] == "running"


def test_a_config_whose_rename_did_not_happen_is_run_after_the_reboot(node: NodeRun) -> None:
    # On FAT the store removes the old file before the rename: power lost in
    # between leaves the config only in its (complete) temp file.
    store = Store(str(node.folder))
    store.write_key(KEY)
    store.write_json("node.json", _solo_settings(node.http_port))
    store.write_json("config.json", CONFIG)
    (node.folder / "config.json").rename(node.folder / "config.json.tmp")
    assert node.start() == "loadmesh node solo: boot 1, config version 1 " + groupconfig.announced(CONFIG)
    assert node.request("GET", "/status")[1]["state"] == "running"
    assert sorted(p.name for p in node.folder.iterdir() if p.name.startswith("config")) == ["config.json"]


def test_a_node_that_cannot_keep_its_code_boots_unadoptable(node: NodeRun) -> None:
    (node.folder / adoption.CODE_FILE).mkdir()  # a folder where the code would go: the write fails
    assert node.start() == ("loadmesh node: unadopted, and the file system cannot keep an adoption code: "
                            "no adoption this boot")
    assert node.request("GET", "/status")[1]["state"] == "unadopted"
    body = adoption.make_request(b"", "solo", KEY, 1, _solo_settings(node.http_port), os.urandom(16))
    assert node.request("PUT", "/adopt", body) == (409, {"error": "adopt: this node could not keep an adoption "
                                                                  "code at boot (its file system refused it)"})


def test_a_node_without_a_config_it_can_run_stays_safe_and_says_why(node: NodeRun) -> None:
    store = Store(str(node.folder))
    store.write_key(KEY)
    store.write_json("node.json", {"id": "ghost", "http_port": node.http_port, "http_host": "127.0.0.1"})
    store.write_json("config.json", CONFIG)
    version = CONFIG["version"]
    assert node.start() == f"loadmesh node ghost: boot 1, no config it can run (config version {version} has no " \
                           "member 'ghost': nothing driven)"
    status, answer = node.request("GET", "/status")
    assert status == 200
    assert answer["state"] == "left_out"
    assert answer["error"] == f"config version {version} has no member 'ghost': nothing driven"
    assert "applied_ma" not in answer


def test_a_node_whose_wiring_is_refused_drives_nothing_and_says_so_once_running(device_root: Path,
                                                                                tmp_path: Path) -> None:
    node = unadopted_node(device_root, tmp_path, {"hal": "spi"})
    try:
        refused = "hw.hal: \"spi\" is not one of esp32, sim, none"
        assert node.start() == "loadmesh node: hw.json refused (" + refused + "); nothing is driven"
        code = bytes.fromhex((node.folder / "node.log").read_text().splitlines()[1].rsplit(" ", 1)[1])
        assert node.request("GET", "/status")[1]["hw_error"] == refused
        settings = {"http_port": node.http_port, "http_host": "127.0.0.1",
                    "mesh_port": free_port(socket.SOCK_DGRAM),
                    "mesh_host": "127.0.0.1", "mesh_dest_port": 9, "bind_host": "127.0.0.1"}
        assert node.request("PUT", "/adopt", adoption.make_request(code, "solo", KEY, 1, settings,
                                                                   os.urandom(16)))[0] == 200
        sealed = configsync.seal(heartbeat.prepare_key(KEY), CONFIG)
        assert node.request("PUT", "/config", sealed, authorization=node.signature("/config", sealed))[0] == 200
        # Running its config (the other nodes go on), and still saying why nothing is driven.
        answer = node.request("GET", "/status")[1]
        assert (answer["state"], answer["error"], answer["hw_error"]) == ("running", None, refused)
    finally:
        node.kill()


def _waits_of(pid: int) -> int:
    """How many times process pid has waited (its voluntary context switches, from /proc): a node's asyncio loop
    waits for the time of each tick, so the count goes up as long as the loop turns."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status: no voluntary_ctxt_switches")


def test_a_node_that_cannot_listen_says_so_on_its_console(node: NodeRun) -> None:
    # Another program holds the node's HTTP port: /status, where the error shows, is that API, so only the
    # console can tell the installer why nobody answers.
    with socket.create_server(("127.0.0.1", node.http_port)):
        log = node.folder / "node.log"
        with log.open("w") as out:
            node.process = subprocess.Popen(node.command, cwd=node.folder, stdout=out, stderr=subprocess.STDOUT,
                                            env=dict(os.environ, MICROPYPATH=".frozen"))
        said = f"loadmesh node: http: cannot listen on port {node.http_port} ("
        deadline = time.monotonic() + 10
        while not any(line.startswith(said) for line in log.read_text().splitlines()):
            assert node.process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        line = next(line for line in log.read_text().splitlines() if line.startswith(said))
        assert line.endswith("); no HTTP API, the node runs on without it"), line
        assert "EADDRINUSE" in line, line
        # The node runs on: its control loop goes on waiting for each tick's time. Counted so, not by a fixed
        # time, which a node held back by a loaded machine passed without having run past the line.
        waits = _waits_of(node.process.pid)
        deadline = time.monotonic() + 10
        while _waits_of(node.process.pid) < waits + 5:
            assert node.process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert node.process.poll() is None
