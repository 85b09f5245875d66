"""A simulated site: a node image process per node, the plant, the hub, the scenario's events, the trace.

Simulation(scenario, workdir).start() builds everything, run() plays the
events until the scenario's end, close() stops everything (every node
process is killed, also when the caller fails: use it as a context manager).
Each node runs the frozen single-precision node image with the ESP32's heap
(-X heapsize=48wK) in its own folder, which holds what an installer writes
when flashing (hw.json: the simulated HAL; node.json: its id and ports; the
group key; the group config) and what the node keeps (boot counter, RTC
memory): its file system. Its output goes to node.log there.

The plant's clock starts when start() does, so trace t_ms and the events'
at_s share an origin (the nodes' boot is part of the run, as on a real site).
Events: kill (SIGKILL: the node's last commands stay in force until its
watchdog would fire, which the plant models), restart (a new process in the
same folder), isolate / heal / loss_pct (the hub), plug / unplug /
meter_stale_s (the plant), limit_ma (a new config version, sealed with the
group key and PUT to every node's /config at once; a node that cannot take
it then gets it again every second, as the companion would retry).

The simulator also plays the watchdog's reset: a node process that exited,
or that stopped feeding for wdt_ms (hung), is killed and started again once
the plant sees its watchdog fire, unless the scenario killed it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from loadmesh.core import configsync, heartbeat
from loadmesh.node import settings as node_settings
from loadmesh.node.store import CONFIG, HARDWARE, Store

from .. import nodeimage
from ..paths import device_tree, repo_root
from ..runtimes import SMALL_HEAP
from . import groupcfg, heatcfg
from .hub import Hub
from .plant import Plant, PlantServer
from .scenario import Event, Scenario
from .trace import TraceWriter
from .virtual import VirtualNodes

START_TIMEOUT_S = 20.0  # a loaded machine can take a while to start a dozen processes
PUT_TIMEOUT_S = 5.0
RETRY_MS = 1000
MAX_RESETS = 20  # watchdog resets of one node before the simulator stops restarting it


class SimError(RuntimeError):
    """The simulation cannot go on (a node that does not start); the message says which and why."""


@dataclass
class SimNode:
    """One node: its folder, ports and process."""

    id: str
    folder: Path
    mesh_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None
    killed: bool = False  # by the scenario: stays down until restarted by it
    starts: int = 0
    resets: int = 0  # watchdog resets the simulator played
    pending: bytes | None = None  # a sealed config it has yet to take
    tried_ms: int = 0  # when it was last offered
    started_ms: int = 0  # when its current process started (the plant's clock)
    answers: list[dict[str, object]] = field(default_factory=list)

    def running(self) -> bool:
        """Whether its process runs."""
        return self.process is not None and self.process.poll() is None


# Ports for nodes are taken below the kernel's ephemeral range, one after the
# other: a port probed with bind(0) and released could be handed out again to
# the next bind(0) (the hub, the plant, another probe, a client's own end)
# before its node binds it, and the node then fails with EADDRINUSE.
_PORT_LOW = 20000
_next_port = [0]


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as source:
            return int(source.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(kind: int) -> int:
    """A port nobody listens on now, on loopback, not handed out before by this process, that no bind(0) takes."""
    high = _ephemeral_low()
    if high - _PORT_LOW < 1000:  # no room below the ephemeral range: let the kernel choose
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            chosen: int = probe.getsockname()[1]
            return chosen
    if not _next_port[0]:
        _next_port[0] = _PORT_LOW + (os.getpid() * 7919) % (high - _PORT_LOW)  # apart from a parallel run
    for _ in range(high - _PORT_LOW):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < high else _PORT_LOW
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port below " + str(high))


def _parent_death_signal() -> Callable[[], None]:
    """A preexec_fn that makes a child die with the simulator, even one killed with SIGKILL (Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return arm


def http_token(key: bytes) -> str:
    """The bearer token of a node's GET /config for a group key (docs/firmware.md, the HTTP API)."""
    return hmac.new(key, b"loadmesh http token v1", hashlib.sha256).hexdigest()


def put_signature(key: bytes, path: str, node: str, boot: int, count: int, body: bytes) -> str:
    """The Authorization header of a PUT signed for a node, its boot and a count (docs/firmware.md, the HTTP API):
    computed here with CPython's hmac from the documented form, not with the node's code."""
    signed = "\n".join(("loadmesh put v2", "PUT", path, node, str(boot), str(count), hashlib.sha256(body).hexdigest()))
    mac = hmac.new(key, signed.encode(), hashlib.sha256).hexdigest()
    return f"LoadMesh-HMAC boot={boot}, n={count}, mac={mac}"


def put_challenge(value: str | None) -> tuple[str, int, int] | None:
    """(node, boot, last count) of a node's WWW-Authenticate: LoadMesh-HMAC node=<id>, boot=<id>, n=<count>; None
    if not one."""
    scheme, _, rest = (value or "").partition(" ")
    if scheme.lower() != "loadmesh-hmac":
        return None
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    try:
        return fields["node"], int(fields["boot"]), int(fields["n"])
    except (KeyError, ValueError):
        return None


class Simulation:
    """Nodes, plant and hub of one scenario; start(), run(), close()."""

    def __init__(self, scenario: Scenario, workdir: Path, trace: TraceWriter | None = None,
                 device_root: Path | None = None, sample_ms: int = 100, seed: int = 1,
                 progress: Callable[[str], None] | None = None,
                 on_sample: Callable[[list[dict[str, object]]], None] | None = None,
                 keep_records: bool = False, extra_hub_ports: dict[str, int] | None = None,
                 virtual: tuple[str, ...] = (), heap: str = SMALL_HEAP) -> None:
        self.scenario = scenario
        self.workdir = workdir
        self.trace = trace
        self.sample_ms = sample_ms
        self.seed = seed
        self.progress = progress or (lambda _line: None)
        self.user_on_sample = on_sample
        self.keep_records = keep_records
        self.records: list[dict[str, object]] = []
        self.latest: dict[str, dict[str, object]] = {}
        self.extra_hub_ports = dict(extra_hub_ports or {})
        self.virtual_ids = tuple(sorted(virtual))
        self.heap = heap  # MicroPython's -X heapsize: the ESP32's unless a measurement needs more
        self.virtual: VirtualNodes | None = None
        root = repo_root()
        staged = device_root if device_root is not None else device_tree(root)
        self.image = nodeimage.node_binary(staged, root)
        self.main_py = staged / "py" / "main.py"
        self.configs = groupcfg.configs(scenario)  # every version the scenario will run, checked now
        self.config = self.configs[0][1]
        self.heating = heatcfg.heating_files(scenario)  # valve and boiler nodes' heating.json, checked now
        self.key = secrets.token_bytes(32)
        self.pads = heartbeat.prepare_key(self.key)
        self.token = http_token(self.key)
        self.nodes: dict[str, SimNode] = {}
        self.hub: Hub | None = None
        self.plant: PlantServer | None = None
        self._lock = threading.Lock()
        self._next_event = 0
        # (t_ms, event) as each event was played: run() plays one at its first turn at or after the event's
        # at_ms, and a turn held back (a loaded machine, an on_tick that waited for a node) plays it later.
        self.played: list[tuple[int, Event]] = []
        self._limit_changes = 0
        self._closed = False
        self.stop_requested = False  # set (from a signal handler, say) to end run() at its next turn
        self._arm = _parent_death_signal()

    # Setting up.

    def start(self) -> None:
        """Start the hub, the plant (time 0 of the run) and every node; SimError if a node cannot start."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for spec in self.scenario.nodes:
            self.nodes[spec.id] = SimNode(spec.id, self.workdir / spec.id, free_port(socket.SOCK_DGRAM),
                                          free_port(socket.SOCK_STREAM))
        ports = {node_id: node.mesh_port for node_id, node in self.nodes.items()}
        ports.update(self.extra_hub_ports)
        self.hub = Hub(ports, seed=self.seed)
        self.hub.start()
        wdt_ms = self.config["wdt_ms"]
        assert isinstance(wdt_ms, int)
        self.plant = PlantServer(Plant(self.scenario, wdt_ms=wdt_ms), sample_ms=self.sample_ms,
                                 on_sample=self._on_sample)
        self.plant.start()
        for node in self.nodes.values():
            self._write_folder(node, wdt_ms)
        processes = [node for node in self.nodes.values() if node.id not in self.virtual_ids]
        self.progress(f"starting {len(processes)} nodes ({self.image.name}, heap {self.heap}) in {self.workdir}"
                      + (f", and {len(self.virtual_ids)} virtual ones" if self.virtual_ids else ""))
        if self.virtual_ids:
            self.virtual = VirtualNodes(self.now_ms, self.progress)
            for node_id in self.virtual_ids:
                self.virtual.boot(node_id, str(self.nodes[node_id].folder))
                if self.virtual.mode(node_id) != "running":
                    raise SimError(f"virtual node {node_id} could not start")
            self.virtual.start()
        for node in processes:
            self._start_node(node)
        deadline = time.monotonic() + START_TIMEOUT_S
        for node in processes:
            self._wait_running(node, deadline)
        self.progress(f"{len(self.nodes)} nodes running at t={self.now_ms() / 1000:.1f} s")

    def _write_folder(self, node: SimNode, wdt_ms: int) -> None:
        assert self.plant is not None and self.hub is not None
        node.folder.mkdir(parents=True, exist_ok=True)
        store = Store(str(node.folder))
        hw: dict[str, object] = {"hal": "sim", "node": node.id, "plant_port": self.plant.address[1], "wdt_ms": wdt_ms}
        if node.id in self.virtual_ids:
            hw["rtc_file"] = str(node.folder / "rtc.mem")  # a virtual node does not run in its folder
        store.write_json(HARDWARE, hw)
        peers = {other.id: ["127.0.0.1", other.http_port] for other in self.nodes.values() if other.id != node.id}
        store.write_json(node_settings.FILE, {
            "id": node.id, "mesh_port": node.mesh_port, "mesh_host": "127.0.0.1",
            "mesh_dest_port": self.hub.address[1], "bind_host": "127.0.0.1", "http_host": "127.0.0.1",
            "http_port": node.http_port, "peers_http": peers})
        store.write_key(self.key)
        store.raise_boot_floor(0)  # its count vouched for, as adoption does: a key with no count reads as one lost
        store.write_json(CONFIG, self.config)
        if node.id in self.heating:
            store.write_json(heatcfg.HEATING, self.heating[node.id])

    def _start_node(self, node: SimNode) -> None:
        env = dict(os.environ, MICROPYPATH=".frozen")
        with (node.folder / "node.log").open("ab") as log:
            # Its own session: a Ctrl-C at the terminal reaches the simulator, which stops the nodes.
            node.process = subprocess.Popen([str(self.image), "-X", "heapsize=" + self.heap, str(self.main_py)],
                                            cwd=node.folder, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=self._arm)
        node.starts += 1
        node.killed = False
        node.started_ms = self.now_ms()

    def _wait_running(self, node: SimNode, deadline: float) -> None:
        while True:
            if not node.running():
                raise SimError(f"node {node.id} could not start (exit {self._exit(node)}): {self.log_tail(node)}")
            status = self.status(node.id)
            if status is not None and status.get("state") == "running":
                return
            if time.monotonic() > deadline:
                state = status.get("state") if status else "no answer on its HTTP API"
                raise SimError(f"node {node.id} did not start within {START_TIMEOUT_S:.0f} s ({state}): "
                               f"{self.log_tail(node)}")
            time.sleep(0.05)

    @staticmethod
    def _exit(node: SimNode) -> int | None:
        return node.process.poll() if node.process is not None else None

    def log_tail(self, node: SimNode | str, lines: int = 6) -> str:
        """The last lines a node printed."""
        sim_node = self.nodes[node] if isinstance(node, str) else node
        try:
            text = (sim_node.folder / "node.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    # Running.

    def now_ms(self) -> int:
        """Milliseconds since the run started (the trace's clock)."""
        assert self.plant is not None
        return self.plant.now_ms()

    def scenario_as_played(self) -> Scenario:
        """The scenario with each event played so far at when it was played (played), the rest as written.

        For trace.violations: a lowered limit counts from when the nodes could have it, not from a time the
        run loop (held back by a loaded machine) had not reached yet."""
        done = [replace(event, at_ms=t_ms) for t_ms, event in self.played]
        assert [event for _t_ms, event in self.played] == list(self.scenario.events[:len(done)]), self.played
        return replace(self.scenario, events=(*done, *self.scenario.events[len(done):]))

    def run(self, duration_ms: int | None = None, on_tick: Callable[[Simulation], None] | None = None) -> None:
        """Play the scenario's events until duration_ms (default the scenario's; 0: until interrupted).

        Ends early once stop_requested is set."""
        end_ms = self.scenario.duration_ms if duration_ms is None else duration_ms
        events = self.scenario.events
        while not self.stop_requested:
            now_ms = self.now_ms()
            if end_ms and now_ms >= end_ms:
                return
            while self._next_event < len(events) and events[self._next_event].at_ms <= now_ms:
                self.apply(events[self._next_event])
                self._next_event += 1
            self.supervise()
            if on_tick is not None:
                on_tick(self)
            time.sleep(0.02)

    def apply(self, event: Event) -> None:
        """Play one event now (played says when)."""
        assert self.hub is not None and self.plant is not None
        action = event.action
        value = event.value
        now_ms = self.now_ms()
        self.played.append((now_ms, event))
        self.progress(f"t={now_ms / 1000:.1f} s: {action} {value}"
                      + (f" on {event.circuit}" if event.circuit else ""))
        if action == "kill":
            self.kill(str(value))
        elif action == "restart":
            self.restart(str(value))
        elif action == "isolate":
            self.hub.isolate(str(value))
        elif action == "heal":
            self.hub.heal(str(value))
        elif action == "loss_pct":
            assert isinstance(value, int)
            self.hub.set_loss(value)
        elif action == "plug":
            self.plant.plug(str(value))
        elif action == "unplug":
            self.plant.unplug(str(value))
        elif action == "meter_stale_s":
            assert isinstance(value, int)
            self.plant.meter_stale(value)
        elif action == "limit_ma":
            self._limit_changes += 1
            config = self.configs[self._limit_changes][1]
            self.config = config
            version = config["version"]
            answers = self.put_config(config)
            refused = {node: answer for node, answer in answers.items() if "error" in answer}
            if refused:
                self.progress(f"  config version {version} not taken yet by {', '.join(sorted(refused))}; retrying")

    def kill(self, node_id: str) -> None:
        """kill -9 a node (it stays down until restart())."""
        node = self.nodes[node_id]
        node.killed = True
        if self.virtual is not None and node_id in self.virtual_ids:
            self.virtual.kill(node_id)
            if self.plant is not None:
                self.plant.end_life(node_id)
            return
        self._kill(node)

    def _kill(self, node: SimNode) -> None:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()
        if self.plant is not None:
            # Gone: what it sent and the plant has not taken yet was sent before now (see Plant.command).
            self.plant.end_life(node.id)

    def restart(self, node_id: str) -> None:
        """Start a node again in its folder (kill it first if it runs)."""
        node = self.nodes[node_id]
        if self.virtual is not None and node_id in self.virtual_ids:
            node.killed = False
            self.virtual.kill(node_id)  # the old life ends before the new one can command
            if self.plant is not None:
                self.plant.end_life(node_id)
            self.virtual.boot(node_id, str(node.folder))
            return
        self._kill(node)
        self._start_node(node)

    def supervise(self) -> None:
        """Play the watchdog's reset for a node that exited or hung; deliver configs not taken yet."""
        assert self.plant is not None
        now_ms = self.now_ms()
        # Judged at the time up to which the plant has taken the nodes' datagrams: a feed that waits in its
        # socket while its thread is held back is not a hung node.
        heard_ms = self.plant.heard_until_ms(now_ms)
        for node in self.nodes.values():
            if node.killed or node.process is None or node.resets >= MAX_RESETS:
                continue
            with self.plant.lock:
                state = self.plant.plant.nodes[node.id]
                fed_ms = state.fed_ms
                alive = state.alive(heard_ms)
            fed_this_life = fed_ms is not None and fed_ms >= node.started_ms
            if node.running():
                # Hung: it fed, then stopped for wdt_ms; or it never fed in this life.
                reset = not alive if fed_this_life else now_ms - node.started_ms > START_TIMEOUT_S * 1000
            else:
                reset = not alive  # exited: the watchdog fires wdt_ms after its last feed
            if reset:
                node.resets += 1
                self.progress(f"t={now_ms / 1000:.1f} s: {node.id}'s watchdog fired "
                              f"({'hung' if node.running() else 'exited'}); restarting it: {self.log_tail(node, 2)}")
                self._kill(node)
                self._start_node(node)
        for node in self.nodes.values():
            if node.pending is not None and node.running() and now_ms - node.tried_ms >= RETRY_MS:
                self._deliver(node, node.pending)

    # Configs and status over the nodes' HTTP APIs.

    def put_config(self, config: dict[str, object], nodes: list[str] | None = None) -> dict[str, dict[str, object]]:
        """PUT a config to nodes (default all), at once; each node's answer ({"error": ...} if none)."""
        sealed = configsync.seal(self.pads, config)
        targets = [self.nodes[node_id] for node_id in (nodes if nodes is not None else sorted(self.nodes))]
        answers: dict[str, dict[str, object]] = {}
        threads = [threading.Thread(target=lambda n=node: answers.__setitem__(n.id, self._deliver(n, sealed)))
                   for node in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def _deliver(self, node: SimNode, sealed: bytes) -> dict[str, object]:
        node.tried_ms = self.now_ms()
        if self.virtual is not None and node.id in self.virtual_ids:
            answer = self.virtual.put_config(node.id, sealed)
            status = 400 if "error" in answer else 200
        else:
            status, answer = self.request(node.id, "PUT", "/config", sealed)
        if status == 200 or (status == 400 and "does not win" in str(answer.get("error"))):
            node.pending = None  # taken (or a newer one is there already)
        else:
            node.pending = sealed
        node.answers.append(answer)
        return answer

    def request(self, node_id: str, method: str, path: str, body: bytes | None = None,
                token: bool = True) -> tuple[int, dict[str, object]]:
        """One request to a node's HTTP API: (status, JSON answer); (0, {"error"}) if it does not answer.

        token: a GET with the group's bearer token, a PUT signed with the group
        key (the challenge first, from a PUT the node refuses from its head;
        signed again once if another PUT took the count meanwhile)."""
        node = self.nodes[node_id]
        try:
            if method != "PUT" or not token:
                headers = {"Authorization": "Bearer " + self.token} if token else {}
                status, _, answer = self._exchange(node.http_port, method, path, body, headers)
            else:
                status, challenge, answer = self._exchange(node.http_port, method, path, b"", {})
                signed = 0
                for attempt in range(2):
                    learnt = put_challenge(challenge) if status == 401 else None
                    if learnt is None or (attempt and learnt[2] < signed):
                        break
                    signed = learnt[2] + 1
                    headers = {"Authorization": put_signature(self.key, path, learnt[0], learnt[1], signed,
                                                              body or b"")}
                    status, challenge, answer = self._exchange(node.http_port, method, path, body or b"", headers)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return 0, {"error": f"{type(exc).__name__}: {exc}"}
        return status, answer if isinstance(answer, dict) else {"answer": answer}

    @staticmethod
    def _exchange(port: int, method: str, path: str, body: bytes | None,
                  headers: dict[str, str]) -> tuple[int, str | None, object]:
        """(status, WWW-Authenticate, JSON answer) of one request."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PUT_TIMEOUT_S)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("WWW-Authenticate"), json.loads(response.read() or b"null")
        finally:
            connection.close()

    def status(self, node_id: str) -> dict[str, object] | None:
        """A node's GET /status, or None if it does not answer."""
        if self.virtual is not None and node_id in self.virtual_ids:
            mode = self.virtual.mode(node_id)
            return None if mode is None else {"state": mode, "virtual": True}
        status, answer = self.request(node_id, "GET", "/status", token=False)
        return answer if status == 200 else None

    # The trace.

    def _on_sample(self, records: list[dict[str, object]]) -> None:
        if self.trace is not None:
            self.trace.write(records)
        with self._lock:
            self.latest = {str(record["node"]): record for record in records}
            if self.keep_records:
                self.records.extend(records)
        if self.user_on_sample is not None:
            self.user_on_sample(records)

    def snapshot(self) -> dict[str, dict[str, object]]:
        """The latest sample, by node."""
        with self._lock:
            return dict(self.latest)

    # Stopping.

    def close(self) -> None:
        """Kill every node and stop the plant and the hub (again: nothing)."""
        if self._closed:
            return
        self._closed = True
        for node in self.nodes.values():
            with contextlib.suppress(OSError):
                self._kill(node)
        if self.virtual is not None:
            self.virtual.stop()
        if self.plant is not None:
            self.plant.stop()
            if self.plant.held_back_ms >= self.sample_ms:
                # Said, so that a bound missed on a loaded machine shows whether the machine held the simulator
                # back around then (samples missed; the hub's forwarding and the events late too) or a node was late.
                self.progress(f"the simulator was held back up to {self.plant.held_back_ms} ms (the sample due at "
                              f"t={self.plant.held_back_at_ms / 1000:.1f} s)")
        if self.hub is not None:
            self.hub.stop()
            if self.hub.held_back_ms >= self.sample_ms and self.plant is not None:
                # The hub held every heartbeat that long: held peer_timeout (less a heartbeat period), the nodes
                # heard silence and went failsafe, rightly, for the machine's stall, not for a node's failure.
                self.progress(f"the hub was held back up to {self.hub.held_back_ms} ms (at "
                              f"t={self.plant.ms_of(self.hub.held_back_at_s) / 1000:.1f} s): the heartbeats "
                              "sent meanwhile waited that long")
        if self.trace is not None:
            self.trace.close()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
