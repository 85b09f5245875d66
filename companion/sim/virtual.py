"""Virtual nodes: the node runtime's own tick run on CPython, in-process, for sites larger than the machine.

A virtual node is loadmesh.node.runtime.Node, built from its folder exactly
as a node process builds itself (the simulated HAL to the plant, its mesh
socket through the hub, its store), ticked every 100 ms by one thread, with
the core on CPython. Its heartbeats are the bytes a MicroPython node sends,
so the node processes beside it cannot tell. What it does not have is the
MicroPython heap and the HTTP API: it stands in for peers (the 16-peer
memory run) whose own memory is not what is measured.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import threading
import time
from collections.abc import Callable
from types import ModuleType

TICK_MS = 100


def _runtime() -> ModuleType:
    # Imported by name: the runtime is firmware (MicroPython-typed), not companion code.
    return importlib.import_module("loadmesh.node.runtime")


class PlantClock:
    """now_ms() from the plant's clock: monotonic, from the run's start."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        """Milliseconds since the run started."""
        return self._now_ms()


class VirtualNodes:
    """Runtime nodes on CPython, ticked together by one thread; start(), stop()."""

    def __init__(self, now_ms: Callable[[], int], progress: Callable[[str], None]) -> None:
        self._clock = PlantClock(now_ms)
        self._progress = progress
        self.nodes: dict[str, object] = {}
        self.folders: dict[str, str] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: dict[str, str] = {}

    def boot(self, node_id: str, folder: str) -> None:
        """Boot (or reboot) the node kept in folder."""
        self.folders[node_id] = folder
        with contextlib.redirect_stdout(io.StringIO()), self.lock:
            old = self.nodes.pop(node_id, None)
            if old is not None:
                _close(old)
            self.errors.pop(node_id, None)
            self.nodes[node_id] = _runtime().Node(folder, clock=self._clock)

    def kill(self, node_id: str) -> None:
        """Stop ticking the node (its last commands stay in force until the plant's watchdog)."""
        with self.lock:
            node = self.nodes.pop(node_id, None)
            if node is not None:
                _close(node)

    def mode(self, node_id: str) -> str | None:
        """The node's state (running, no_config, ...), None when it is not running."""
        with self.lock:
            node = self.nodes.get(node_id)
            return None if node is None else str(node.mode)  # type: ignore[attr-defined]

    def put_config(self, node_id: str, sealed: bytes) -> dict[str, object]:
        """What PUT /config would answer."""
        with self.lock:
            node = self.nodes.get(node_id)
            if node is None:
                return {"error": "not running"}
            try:
                answer = node.put_config(sealed)  # type: ignore[attr-defined]
            except ValueError as exc:  # FieldError is one
                return {"error": str(exc)}
        assert isinstance(answer, dict)
        return answer

    def start(self) -> None:
        """Tick every node every TICK_MS until stop()."""
        self._thread = threading.Thread(target=self._serve, name="virtual-nodes", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            with self.lock:
                for node_id in sorted(self.nodes):
                    node = self.nodes[node_id]
                    if node_id in self.errors:
                        continue
                    if node.halted:  # type: ignore[attr-defined]  # it stopped itself (a config switch failed)
                        self.errors[node_id] = str(node.error)  # type: ignore[attr-defined]
                        continue
                    try:
                        node.tick()  # type: ignore[attr-defined]
                        node.hal.feed_watchdog()  # type: ignore[attr-defined]
                    except Exception as exc:  # as on a device: safe, and no more feeds
                        self.errors[node_id] = failure_words(exc)
                        node.hal.safe()  # type: ignore[attr-defined]
                        self._progress(f"virtual node {node_id} failed: {self.errors[node_id]}; its outputs are "
                                       "safe and it is ticked no more")
            due += TICK_MS / 1000
            self._stop.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        """Stop ticking and release every node's sockets."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self.lock:
            for node in self.nodes.values():
                _close(node)
            self.nodes.clear()


def failure_words(exc: BaseException) -> str:
    """An exception a virtual node's tick raised, in words: its kind and message as Python's traceback ends
    ("ZeroDivisionError: division by zero"; a driver's OSError as the node says one, "OSError 113"), and the
    line of loadmesh it was raised at. Not repr(), which reads as code ("ZeroDivisionError('division by zero')")."""
    from loadmesh.node import hal

    said = hal.exception_words(exc)
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        at = frames[-1]
        parts = at.filename.replace("\\", "/").split("/")
        # From the package on ("loadmesh/node/runtime.py"): the same wherever it is installed.
        where = "/".join(parts[parts.index("loadmesh"):] if "loadmesh" in parts else parts[-1:])
        said += f" (at {where} line {at.lineno}, in {at.name})"
    return said


def _close(node: object) -> None:
    mesh = node.mesh  # type: ignore[attr-defined]
    if mesh is not None:
        mesh.close()
    node.hal.close()  # type: ignore[attr-defined]
