"""`loadmesh status HOST[:PORT]`: a real node's /status summarised or as it came, and every way reading it fails."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.companion import cli, nodestatus
from loadmesh.companion.sim.runner import free_port
from loadmesh.core import canon, groupconfig
from loadmesh.node.store import Store

from . import ctrlc, mpnode
from .conftest import ROOT

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

LOADMESH = str(Path(sys.executable).with_name("loadmesh"))
KEY = bytes(range(32))
# A group of two chargers and a boiler and a valve node, the others never switched on: the node runs its config,
# in failsafe for the other charger (the heating nodes draw no current, and cap none).
CONFIG = groupconfig.parse({
    "group": "home", "version": 1, "updated_at": 1, "origin": "test", "key_id": "k1",
    "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100},
    "members": [{"id": "garage", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000},
                {"id": "drive", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000},
                *({"id": node, "kind": kind, "phases": "L1", "min_ma": 0, "max_ma": 0, "step_ma": 1000, "mode": "off"}
                  for node, kind in (("boiler", "boiler"), ("bath", "valve")))]})
UP = {"connected": True, "ifconfig": ["192.168.1.23", "255.255.255.0", "127.0.0.9", "192.168.1.1"]}
PASSWORD = "correct horse battery"


class Node:
    """A node's main.py on the ESP32 HAL (machine and network faked: tests/nodeside/esp32_node.py) in its folder,
    its HTTP API on loopback."""

    def __init__(self, device_root: Path, folder: Path, hw: dict[str, object], station: dict[str, object],
                 adopted: bool, bind_host: str | None = None, http_host: str = "0.0.0.0",
                 counted: bool = True) -> None:
        folder.mkdir()
        self.folder = folder
        self.port = free_port(socket.SOCK_STREAM)
        store = Store(str(folder))
        store.write_json("hw.json", hw)
        # http_host 0.0.0.0 as on a board: 127.0.0.1 is not its station's address, and the node would say so
        # (bind_error); asked on 127.0.0.1 all the same.
        settings: dict[str, object] = {"http_port": self.port, "http_host": http_host}
        if adopted:
            settings.update(id="garage", mesh_port=free_port(socket.SOCK_DGRAM), mesh_host="127.0.0.1",
                            mesh_dest_port=9)  # bind_host 0.0.0.0: its station's address is not 127.0.0.1
            if bind_host is not None:
                settings["bind_host"] = bind_host
            store.write_key(KEY)
            if counted:  # else its key without a count: as a node whose boot counter was lost
                store.raise_boot_floor(0)  # its count vouched for, as adoption and node-files leave it
            store.write_json("config.json", CONFIG)
        store.write_json("node.json", settings)
        (folder / "station.json").write_text(json.dumps(station))
        with (folder / "node.log").open("w") as log:
            self.process = subprocess.Popen(
                mpnode.command(mpnode.node_image(device_root), "esp32_node.py", "station.json"), cwd=folder,
                env=mpnode.environment(None, fakes=True), stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=ctrlc.as_in_a_terminal)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.status()
                return
            except (OSError, AssertionError):  # not listening yet, or not running yet (an answer other than 200)
                if self.process.poll() is not None or time.monotonic() >= deadline:
                    self.kill()  # a node that never answered is not left running past its test
                    raise AssertionError(self.log()) from None
                time.sleep(0.05)

    def status(self) -> dict[str, object]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as client:
            client.sendall(b"GET /status HTTP/1.0\r\n\r\n")
            answer = _read_all(client)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 OK\r\n"), answer
        value = json.loads(body)
        assert isinstance(value, dict)
        return value

    def log(self) -> str:
        return (self.folder / "node.log").read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _read_all(client: socket.socket) -> bytes:
    answer = b""
    while chunk := client.recv(4096):
        answer += chunk
    return answer


@pytest.fixture(scope="module")
def running(device_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node running its config, its Wi-Fi up, its clock not synced yet (nobody answers NTP at the gateway)."""
    hw = {"hal": "esp32", "wifi": {"ssid": "House", "password": PASSWORD, "hostname": "garage-evse"},
          "clock": {"tz": "UTC0"}}
    node = Node(device_root, tmp_path_factory.mktemp("status") / "garage", hw, UP, adopted=True)
    yield node
    node.kill()


def loadmesh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LOADMESH, "status", *args], capture_output=True, text=True, cwd=ROOT, timeout=30)


def status_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """cli.main of `loadmesh status ARGS` in this process (faster than a process each): (exit, stdout, stderr)."""
    code = cli.main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_summary_of_a_running_node_says_what_it_runs_and_why(running: Node) -> None:
    done = loadmesh(f"127.0.0.1:{running.port}")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    lines = done.stdout.splitlines()
    expected = [
        r"node      garage \(evse\): running, up \d+ s, boot 1",
        r"wifi      up at 192\.168\.1\.23 as garage-evse, -61 dBm, for \d+ s \(tries 0, joins 1, lost 0\)",
        r"clock     not synced( \(.*\))?",  # its requests to the gateway (nothing listens there) counted
        re.escape("current   applied 0.0 A (target), target 0.0 A (no_demand)"),  # no car: no demand
        re.escape("FAILSAFE  yes: not hearing drive"),
        # The heating nodes never heard are named with the charger: the count alone (0 of 1) hid them.
        re.escape("peers     0 of 3 online; never heard: bath, boiler, drive; boot ids kept (0 changes seen, 0 writes "
                  "this boot)"),
        re.escape(f"config    version 1 ({groupconfig.announced(CONFIG)})"),
        r"memory    \d{2},\d{3} bytes in use, \d{1,2},\d{3} free",
        r"ticks     \d+ late of \d+(,\d{3})*, the longest \d+ ms",
    ]
    assert len(lines) == len(expected), lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert PASSWORD not in done.stdout


def test_a_node_whose_boot_counter_was_lost_is_named_so_by_status_and_put_with_the_way_out(
        device_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loadmesh.companion import groupkey

    hw = {"hal": "esp32", "wifi": {"ssid": "House", "password": PASSWORD}, "clock": {"tz": "UTC0"}}
    node = Node(device_root, tmp_path / "garage", hw, UP, adopted=True, counted=False)
    key_file = tmp_path / "house.key"
    key_file.write_text(KEY.hex() + "\n")
    key_file.chmod(0o600)
    try:
        code, out, err = status_in_process(capsys, f"127.0.0.1:{node.port}")
        assert (code, err) == (0, "")
        by_label = {line[:10].strip(): line[10:] for line in out.splitlines()}
        assert by_label["BOOT"] == nodestatus.BOOT_RESET
        assert "adopt it again" in by_label["BOOT"] and "node-files" in by_label["BOOT"]
        assert groupkey.read(key_file) == KEY
        code = cli.main(["put", f"127.0.0.1:{node.port}", "load_sharing", "on", "--key", str(key_file)])
        out, err = capsys.readouterr()
        assert (code, out) == (2, "")
        assert err == (f"loadmesh put: 127.0.0.1:{node.port}: refused: this node's boot counter was lost "
                       "(boot_state reset), so its boot ids may repeat ones a PUT was signed for: it takes no PUT "
                       "until it is adopted again (remove its key file, reset it, loadmesh adopt) or given a boot "
                       "floor above its boot id and its peers' (loadmesh node-files' boot.a); nothing changed\n")
    finally:
        node.kill()
    # A node whose count is vouched for has no such line (the running node above: its lines are all expected).
    assert nodestatus.BOOT_RESET not in "\n".join(nodestatus.summary(
        {"node": "garage", "state": "running", "boot_state": "ok"}))
    assert nodestatus.BOOT_RESET not in "\n".join(nodestatus.summary(  # a fresh node counted nothing yet
        {"node": None, "state": "unadopted", "boot_state": "reset"}))


def test_json_prints_the_nodes_answer_byte_for_byte(running: Node) -> None:
    # Through a relay that keeps what the node sent: the line printed is that body, as it came.
    with _relay(running.port) as (port, answers):
        done = loadmesh(f"127.0.0.1:{port}", "--json")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    (answer,) = answers
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n")
    assert done.stdout == body.decode() + "\n"
    value = json.loads(body)
    assert canon.dumps(value) == body.decode()  # the node's answer is canonical: one line
    assert (value["node"], value["state"], value["hal"]["wifi"]["address"]) == ("garage", "running", "192.168.1.23")


def test_a_node_waiting_for_adoption_and_the_wifi_shows_only_what_it_has(device_root: Path, tmp_path: Path) -> None:
    hw = {"hal": "esp32", "wifi": {"ssid": "House", "password": PASSWORD}}  # the default name, from the chip
    node = Node(device_root, tmp_path / "new", hw, {"connected": False}, adopted=False)
    try:
        done = loadmesh(f"127.0.0.1:{node.port}")
    finally:
        node.kill()
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"node      \(no id yet\): unadopted, waiting to be adopted \(PUT /adopt\); nothing driven, "
                        r"up \d+ s, boot \d+", lines[0]), lines
    assert re.fullmatch(r"wifi      joining as loadmesh-5e1f07, for \d+ s \(tries 1, joins 0, lost 0\)",
                        lines[1]), lines
    # No controller, no config: no current, failsafe, peers or config line.
    assert [line.split()[0] for line in lines] == ["node", "wifi", "memory", "ticks"], lines


def test_what_a_node_may_also_say_is_summarised_in_its_words(running: Node) -> None:
    # The running node's answer, with what a real site adds (values as docs/firmware.md describes them).
    status = running.status()
    hal = status["hal"]
    assert isinstance(hal, dict)
    bind_error = ('node.json bind_host: "192.168.1.23" is not this node\'s address (192.168.1.57): every heartbeat '
                  "it sends is dropped (counters.mesh.send_errors); 0.0.0.0 binds any")
    status.update(error="tick: MemoryError", hw_error="hw.relay.pin: 15 is pulled up at reset", departed=["shed"],
                  bind_error=bind_error,
                  config_mismatch=["drive"], disagree=["drive"], failsafe=False, silent=[], peers_online=1,
                  peer_boots_writes=1, peers_unheard=["bath", "boiler"],
                  applied_ma=10950, target_ma=16000, reason="agreement", alloc_reason="max",
                  peers={"drive": [120, True, 6000, 6000, False, 3]})
    hal["wifi"] = {"state": "down", "for_ms": 125_000, "reason": "wrong_password", "tries": 4, "joins": 0, "lost": 0,
                   "hostname": "garage-evse", "address": None, "rssi_dbm": None}
    hal["clock"] = {"week_ms": None, "unix_s": 1_780_000_000, "synced_ago_ms": 49 * 3_600_000 + 61_000,
                    "source": "192.168.1.1", "waiting": True, "counts": {"sent": 3, "good": 1, "timeout": 2},
                    "denied": ["10.0.0.2"]}
    config = status["config"]
    assert isinstance(config, dict)
    config.update(merged_with=["1234abcd"], last_error="sync: OSError 113")
    counters = status["counters"]
    assert isinstance(counters, dict) and counters["boot_changes"] == 0  # the live node's: no peer heard
    counters["boot_changes"] = 3
    by_label = {line[:10].strip(): line[10:] for line in nodestatus.summary(status)}
    assert by_label["ERROR"] == "tick: MemoryError"
    assert by_label["HW ERROR"] == "hw.relay.pin: 15 is pulled up at reset"
    assert by_label["BIND ERROR"] == bind_error
    assert by_label["wifi"] == ("down as garage-evse, for 2 min 5 s, last failure: wrong_password "
                                "(tries 4, joins 0, lost 0)")
    assert by_label["clock"] == ("synced 2 d 1 h ago from 192.168.1.1; too long ago to trust: no time of week "
                                 "(schedules hold their setback) (good 1, sent 3, timeout 2); denied by 10.0.0.2")
    assert by_label["current"] == "applied 11.0 A (agreement), target 16.0 A (max)"
    assert by_label["failsafe"] == "no"
    assert by_label["peers"] == ("1 of 3 online; never heard: bath, boiler; not agreeing yet: drive; boot ids kept "
                                 "(3 changes seen, 1 write this boot)")
    assert by_label["config"] == (f"version 1 ({groupconfig.announced(CONFIG)}), merged with 1 other; another "
                                  "config announced by drive; last sync error: sync: OSError 113")
    assert by_label["departed"] == "shed (removed from the config, may still draw: no raise until gone)"


def test_ticks_skipped_for_want_of_memory_are_counted_on_the_ticks_line() -> None:
    status = {"node": "garage", "kind": "evse", "state": "running",
              "ticks": {"count": 12000, "late": 3, "max_ms": 41, "skipped": 2}}
    by_label = {line[:10].strip(): line[10:] for line in nodestatus.summary(status)}
    assert by_label["ticks"] == "3 late of 12,000, the longest 41 ms; 2 skipped for want of memory"
    status["ticks"] = {"count": 12000, "late": 3, "max_ms": 41, "skipped": 0}  # none: as before
    by_label = {line[:10].strip(): line[10:] for line in nodestatus.summary(status)}
    assert by_label["ticks"] == "3 late of 12,000, the longest 41 ms"


def test_members_never_heard_are_counted_and_named_on_the_peers_line() -> None:
    # drive heard and lost (in peers, and silent: it draws current); the boiler and bath's valve nodes never heard.
    status = {"node": "garage", "kind": "evse", "state": "running", "failsafe": True, "silent": ["drive"],
              "peers_online": 1,
              "peers": {"drive": [9000, False, 0, 0, False, 3], "kids": [200, True, 0, 0, False, 5]},
              "peers_unheard": ["boiler", "bath"]}
    by_label = {line[:10].strip(): line[10:] for line in nodestatus.summary(status)}
    assert by_label["peers"] == "1 of 4 online; never heard: boiler, bath"
    assert by_label["FAILSAFE"] == "yes: not hearing drive"


def test_a_removed_member_still_listened_to_is_not_counted_among_the_peers() -> None:
    # shed, removed by the config in force, is in the table while the node holds for it: its own line says so.
    status = {"node": "garage", "kind": "evse", "state": "running", "failsafe": False, "silent": [],
              "peers_online": 1, "departed": ["shed"],
              "peers": {"drive": [200, True, 6000, 6000, False, 3], "shed": [300, True, 10000, 10000, False, 7]}}
    by_label = {line[:10].strip(): line[10:] for line in nodestatus.summary(status)}
    assert by_label["peers"] == "1 of 1 online"
    assert by_label["departed"].startswith("shed (removed from the config")


def test_the_peers_boot_ids_kept_are_said_on_the_peers_line_when_the_node_counts_their_writes() -> None:
    charger = {"node": "garage", "kind": "evse", "state": "running", "peers": {}, "peers_online": 0, "silent": []}
    # A node before peers_unheard: the silent chargers count, the never-heard heating nodes cannot.
    assert [line for line in nodestatus.summary(dict(charger, silent=["drive"])) if line.startswith("peers")] == [
        "peers     0 of 1 online"]

    def peers(status: dict[str, object]) -> list[str]:
        return [line for line in nodestatus.summary(status) if line.startswith("peers")]

    assert peers(dict(charger, peer_boots_writes=12)) == [  # a node before counters.boot_changes
        "peers     0 of 0 online; boot ids kept (12 writes this boot)"]
    # The changes of the peers' boot ids it counted (a peer first heard, a peer's reboot, a member forgotten):
    # what makes a write due; a burst of them is one write, and one that finds the file as it is is left out.
    assert peers(dict(charger, peer_boots_writes=1, counters={"boot_changes": 1, "heartbeats": {}})) == [
        "peers     0 of 0 online; boot ids kept (1 change seen, 1 write this boot)"]
    assert peers(dict(charger, peer_boots_writes=2, counters={"boot_changes": 1234})) == [
        "peers     0 of 0 online; boot ids kept (1,234 changes seen, 2 writes this boot)"]
    assert peers(dict(charger, peer_boots_writes=0, counters={"boot_changes": True})) == [  # not a count: left out
        "peers     0 of 0 online; boot ids kept (0 writes this boot)"]
    assert peers(charger) == ["peers     0 of 0 online"]  # a node before peer_boots_writes
    # A heating node has no peers count (docs/heating.md): its peers line is the boot ids kept alone.
    for kind in ("boiler", "valve"):
        heating = dict(charger, kind=kind, peers_online=1, role={})
        assert peers(dict(heating, peer_boots_writes=1)) == ["peers     boot ids kept (1 write this boot)"]
        assert peers(dict(heating, peer_boots_writes=0, counters={"boot_changes": 2})) == [
            "peers     boot ids kept (2 changes seen, 0 writes this boot)"]
        assert peers(heating) == []


JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
JSON = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["state", "for_ms", "reason", "address", "rssi_dbm", "synced_ago_ms", "week_ms", "counts",
                     "source", "version", "alloc", "late", "boot_changes", "x"]), inner, max_size=4), max_leaves=8)
STATUS_KEYS = ["node", "kind", "error", "hw_error", "bind_error", "counters", "boot_id", "uptime_ms", "hal", "memory",
               "ticks",
               "applied_ma", "target_ma", "reason", "alloc_reason", "failsafe", "silent", "disagree",
               "config_mismatch", "departed", "config", "peers", "peers_online", "peers_unheard", "peer_boots_writes",
               "unknown"]


@settings(max_examples=60)  # the shapes are few; CI time is tight
@given(st.fixed_dictionaries({"state": st.text(max_size=12)},
                             optional={key: JSON | st.dictionaries(st.sampled_from(["wifi", "clock"]), JSON)
                                       for key in STATUS_KEYS}))
def test_any_answer_of_the_shape_is_summarised_without_failing(status: dict[str, object]) -> None:
    # Another firmware version, or another device at that address: what it holds is summarised, the rest left out.
    lines = nodestatus.summary(status)
    assert lines[0].startswith("node      ")
    assert all(line.isprintable() for line in lines)


class _Server:
    """A TCP server on loopback that does what a test tells with each connection (one thread per connection)."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.serve = serve
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.open.append(client)
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def close(self) -> None:
        self.listener.close()
        for client in self.open:
            client.close()


@contextlib.contextmanager
def _answering(answer: bytes) -> Iterator[int]:
    """A server that reads the request's head, then sends answer and closes; its port."""
    def serve(client: socket.socket) -> None:
        with client:
            request = b""
            while b"\r\n\r\n" not in request and (chunk := client.recv(4096)):
                request += chunk
            client.sendall(answer)

    server = _Server(serve)
    try:
        yield server.port
    finally:
        server.close()


@contextlib.contextmanager
def _relay(node_port: int) -> Iterator[tuple[int, list[bytes]]]:
    """A server that passes a request to the node and its answer back, keeping the answer; (port, answers)."""
    answers: list[bytes] = []

    def serve(client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", node_port), timeout=5) as upstream:
            request = b""
            while b"\r\n\r\n" not in request and (chunk := client.recv(4096)):
                request += chunk
            upstream.sendall(request)
            answer = _read_all(upstream)
            answers.append(answer)
            client.sendall(answer)

    server = _Server(serve)
    try:
        yield server.port, answers
    finally:
        server.close()


def test_nothing_listening_is_named_as_refused(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port(socket.SOCK_STREAM)  # free: nobody listens there
    assert status_in_process(capsys, f"127.0.0.1:{port}") == (
        2, "", f"loadmesh status: 127.0.0.1:{port}: refused the connection: nothing listens on port {port} there\n")


def test_a_listener_that_never_answers_is_given_up_on_at_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    # The kernel accepts the connection (the backlog); the program behind never reads nor writes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = status_in_process(capsys, f"127.0.0.1:{port}", "--timeout", "0.4")
        took_s = time.monotonic() - started
    assert result == (2, "", f"loadmesh status: 127.0.0.1:{port}: accepted the connection but did not answer "
                             "within 0.4 s\n")
    # Without the time limit the call would wait for ever: the upper bound only has to tell the two apart,
    # with room for a slow machine.
    assert 0.4 <= took_s < 3.0, took_s


def test_an_answer_that_trickles_is_given_up_on_at_the_timeout_not_at_each_byte(
        capsys: pytest.CaptureFixture[str]) -> None:
    def serve(client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            client.sendall(b"HTTP/1.0 200 OK\r\n")
            for _ in range(40):  # a header byte every 0.1 s: 4 s in all
                time.sleep(0.1)
                client.sendall(b"X")

    server = _Server(serve)
    try:
        started = time.monotonic()
        result = status_in_process(capsys, f"127.0.0.1:{server.port}", "--timeout", "0.5")
        took_s = time.monotonic() - started
    finally:
        server.close()
    assert result == (2, "", f"loadmesh status: 127.0.0.1:{server.port}: accepted the connection but did not "
                             "answer within 0.5 s\n")
    # A limit per byte would read on for the whole 4 s of the trickle.
    assert 0.5 <= took_s < 3.0, took_s


def _http(status: str, body: bytes) -> bytes:
    return f"HTTP/1.0 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


ANSWERS = [
    # (what the other end sends, what loadmesh status says after "loadmesh status: HOST:PORT: ")
    (_http("503 Service Unavailable", b'{"error":"too many connections"}'),
     "answered 503 Service Unavailable: too many connections"),  # the node's error, in its words
    (_http("404 Not Found", b"no\tsuch\n"), "answered 404 Not Found: no such"),
    (b"HTTP/1.1 500 Internal Server Error\r\n\r\n" + b"<p>trace</p>" * 40,
     "answered 500 Internal Server Error (480 bytes)"),
    (b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>router login</body></html>",
     "answered 200, but not JSON (Expecting value: line 1 column 1 (char 0)): \"<html><body>router login</body>"
     "</html>\""),
    (b'HTTP/1.0 200 OK\r\n\r\n{"uptime_ms": NaN}',
     "answered 200, but not JSON (NaN is not JSON): \"{\\\"uptime_ms\\\": NaN}\""),
    (b'HTTP/1.0 200 OK\r\n\r\n["running"]',
     "answered 200 with JSON that is not a node's /status (a list, not an object)"),
    (b'HTTP/1.0 200 OK\r\n\r\n{"ok": true}', "answered JSON without a \"state\": not a loadmesh node's /status"),
    (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "answered, but not in HTTP: SSH-2.0-OpenSSH_9.2p1 Debian-2"),
    (b"", "closed the connection without an answer"),
]


@pytest.mark.parametrize(("answer", "error"), ANSWERS, ids=[error[:40] for _, error in ANSWERS])
def test_an_answer_that_is_not_a_nodes_status_is_named_as_such(capsys: pytest.CaptureFixture[str], answer: bytes,
                                                               error: str) -> None:
    with _answering(answer) as port:
        assert status_in_process(capsys, f"127.0.0.1:{port}") == (2, "", f"loadmesh status: 127.0.0.1:{port}: "
                                                                          f"{error}\n")


@contextlib.contextmanager
def _answering_in_turn(answers: list[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """A server that reads each request's head and sends the next of answers (the last again once they are
    used up), then closes; (its port, the request lines it was sent)."""
    asked: list[bytes] = []

    def serve(client: socket.socket) -> None:
        with client:
            request = b""
            while b"\r\n\r\n" not in request and (chunk := client.recv(4096)):
                request += chunk
            asked.append(request.partition(b"\r\n")[0])
            client.sendall(answers[min(len(asked), len(answers)) - 1])

    server = _Server(serve)
    try:
        yield server.port, asked
    finally:
        server.close()


SHORT = b'{"error":"this node is short of memory for the moment: the request was not taken; ask again"}'
SHORT_ANSWER = (b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: "
                + str(len(SHORT)).encode() + b"\r\n\r\n" + SHORT)


def test_a_status_refused_for_a_moment_is_asked_for_again_and_nothing_said_of_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    # 503 with Retry-After (docs/firmware.md, "The HTTP API"): waited out, within the command's time.
    body = b'{"state":"running"}'
    with _answering_in_turn([SHORT_ANSWER, _http("200 OK", body)]) as (port, asked):
        assert status_in_process(capsys, f"127.0.0.1:{port}", "--json") == (0, body.decode() + "\n", "")
    assert asked == [b"GET /status HTTP/1.1"] * 2


def test_a_status_refused_every_time_is_named_with_the_nodes_words_after_a_few_tries(
        capsys: pytest.CaptureFixture[str]) -> None:
    with _answering_in_turn([SHORT_ANSWER]) as (port, asked):
        assert status_in_process(capsys, f"127.0.0.1:{port}", "--timeout", "20") == (
            2, "", f"loadmesh status: 127.0.0.1:{port}: answered 503 Service Unavailable: this node is short of "
                   "memory for the moment: the request was not taken; ask again\n")
    assert len(asked) == 3  # nodehttp.TRIES, not as many as 20 s would hold


MAYBE = (b'{"error":"this node ran short of memory while acting on the request: it may have been taken; read back '
         b'what it has before sending it again"}')
CHALLENGE = (b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: LoadMesh-HMAC node=garage, boot=7, n=%d\r\n"
             b"Content-Length: 2\r\n\r\n{}")
PUT_ANSWERS = [
    # (what the node answers in turn, how many requests the companion sends)
    ([CHALLENGE % 0, _http("503 Service Unavailable", MAYBE)], 2),  # no Retry-After: not sent again
    # With Retry-After, but the challenge asked for again shows the count taken: it may have been acted on.
    ([CHALLENGE % 0, _http("503 Service Unavailable\r\nRetry-After: 1", MAYBE), CHALLENGE % 1], 3),
]


@pytest.mark.parametrize(("answers", "sent"), PUT_ANSWERS)
def test_a_put_the_node_may_have_taken_is_not_sent_again_and_its_answer_says_what_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], answers: list[bytes], sent: int) -> None:
    key_file = tmp_path / "house.key"
    key_file.write_text(KEY.hex() + "\n")
    key_file.chmod(0o600)
    with _answering_in_turn([*answers, _http("200 OK", b'{"enabled":true}')]) as (port, asked):
        code = cli.main(["put", f"127.0.0.1:{port}", "load_sharing", "on", "--key", str(key_file)])
        out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == (f"loadmesh put: 127.0.0.1:{port}: answered 503 Service Unavailable: this node ran short of "
                   "memory while acting on the request: it may have been taken; read back what it has before "
                   f"sending it again; loadmesh get 127.0.0.1:{port} load_sharing --key {key_file} shows what it "
                   "has now: put it again if that is not it\n")
    assert asked == [b"PUT /load_sharing HTTP/1.1"] * sent  # the challenge(s) and the PUT, and no PUT again


def test_an_adoption_the_node_may_have_taken_is_not_sent_again_and_its_answer_says_what_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "house.key"
    key_file.write_text(KEY.hex() + "\n")
    key_file.chmod(0o600)
    node_json = tmp_path / "node.json"
    node_json.write_text('{"id": "garage"}')
    with _answering_in_turn([_http("503 Service Unavailable", MAYBE), _http("200 OK", b"{}")]) as (port, asked):
        code = cli.main(["adopt", f"127.0.0.1:{port}", "--code", "00" * 16, "--key", str(key_file), "--node",
                         str(node_json)])
        out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == (f"loadmesh adopt: 127.0.0.1:{port}: answered 503 Service Unavailable: this node ran short of "
                   "memory while acting on the request: it may have been taken; read back what it has before "
                   f"sending it again; loadmesh status 127.0.0.1:{port} says whether it was adopted: if it still "
                   "waits for adoption, adopt it again\n")
    assert asked == [b"PUT /adopt HTTP/1.1"]


@pytest.mark.parametrize(("host", "error"), [
    ("http://garage-evse.local/status", "give the node's name or address, and :PORT if not 80 (not a URL)"),
    ("garage-evse.local:http", "the port \"http\" is not a number 1..65535"),
    ("garage-evse.local:65536", "the port \"65536\" is not a number 1..65535"),
    ("[fe80::1", "an IPv6 address in brackets is written [ADDRESS] or [ADDRESS]:PORT"),
    ("[::1]:", "the port \"\" is not a number 1..65535"),
    (":8080", "no host before the port"),
])
def test_a_host_that_is_not_one_is_refused_before_any_lookup(capsys: pytest.CaptureFixture[str], host: str,
                                                             error: str) -> None:
    assert status_in_process(capsys, host) == (2, "", f"loadmesh status: {host}: {error}\n")


def test_addresses_and_ports_are_read_as_written() -> None:
    assert nodestatus.parse_address("garage-evse.local") == ("garage-evse.local", 80)
    assert nodestatus.parse_address("192.168.1.23:8080") == ("192.168.1.23", 8080)
    assert nodestatus.parse_address("fe80::1") == ("fe80::1", 80)
    assert nodestatus.parse_address("[::1]:8080") == ("::1", 8080)


def test_a_name_nobody_has_is_named_as_not_resolved(capsys: pytest.CaptureFixture[str]) -> None:
    # .invalid is never a name (RFC 6761): refused at once by a resolver, or not answered within the timeout.
    code, out, err = status_in_process(capsys, "garage-evse.invalid", "--timeout", "1")
    assert (code, out) == (2, "")
    assert re.fullmatch(r'loadmesh status: garage-evse\.invalid: the name "garage-evse\.invalid" is not resolved '
                        r"(\(.+\)|within 1 s)\n", err), err


def test_a_reader_that_stops_reading_and_a_ctrl_c_get_no_traceback(running: Node) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([LOADMESH, "status", f"127.0.0.1:{running.port}"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")
    with socket.create_server(("127.0.0.1", 0)) as silent:
        waiting = subprocess.Popen([LOADMESH, "status", f"127.0.0.1:{silent.getsockname()[1]}", "--timeout", "20"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=ctrlc.as_in_a_terminal)
        with silent.accept()[0]:  # it has connected: it waits for the answer
            waiting.send_signal(signal.SIGINT)
            out, err = waiting.communicate(timeout=10)
    assert (waiting.returncode, out, err) == (130, "", "")
