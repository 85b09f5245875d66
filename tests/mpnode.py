"""Run node-side scripts (tests/nodeside) on the MicroPython unix port, as one-shot runs or live processes."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from loadmesh.companion import nodeimage
from loadmesh.companion.paths import micropython_binary
from loadmesh.companion.runtimes import SMALL_HEAP

ROOT = Path(__file__).resolve().parent.parent
NODESIDE = ROOT / "tests" / "nodeside"
FAKES = NODESIDE / "fakes"


_ARG_FILES = tempfile.TemporaryDirectory(prefix="loadmesh-nodeside-")

# Whether the running test is marked wallclock (conftest sets it before each test). tools/test runs
# the other tests two at a time at the lowest priority: a node sampled against the wall clock there
# would share a core with a property test and could miss its sampling.
in_wallclock_test = False


def require_wallclock(what: str) -> None:
    """Fail a test that runs a live node or the simulator outside a wallclock module."""
    if not in_wallclock_test:
        raise RuntimeError(f"{what} runs against the wall clock: its test module needs "
                           "pytestmark = pytest.mark.wallclock (README, What the tests run)")


def argfile(value: object) -> str:
    """value as a JSON file, for a node-side script: the unix port crashes on an argument of 256+ characters."""
    handle, path = tempfile.mkstemp(suffix=".json", dir=_ARG_FILES.name)
    with os.fdopen(handle, "w") as out:
        json.dump(value, out)
    return path


def node_image(device_root: Path) -> Path:
    """The frozen node image, checked to hold exactly the staged library (SetupError if stale)."""
    return nodeimage.node_binary(device_root, ROOT)


def command(binary: Path, script: str | Path, *args: str) -> list[str]:
    """The command line that runs a script (a name in tests/nodeside, or a path) with the ESP32's heap."""
    path = script if isinstance(script, Path) else NODESIDE / script
    return [str(binary), "-X", "heapsize=" + SMALL_HEAP, str(path), *args]


def environment(device_root: Path | None, fakes: bool = False) -> dict[str, str]:
    """MICROPYPATH: frozen modules first; then the staged .mpy tree (when device_root is given); fakes last.

    fakes: the ESP32's machine, network and onewire faked (tests/nodeside/fakes). The node image (device_root None)
    holds them frozen under fakes/ (tests/nodeside/fakes_manifest.py), found through ".frozen/fakes": their code
    stays out of the node's heap, as a board's C modules' does, where compiled from the .py files they took 17 KB
    of it (docs/firmware.md, Memory). The plain unix port (with the .mpy tree) has no frozen fakes: it reads the
    folder. Either way they come before the unix port's own machine, which MicroPython 1.25 lets a module on
    the path override (an extensible built-in); without fakes a node gets that one, and no network or onewire."""
    paths = [".frozen"]
    if device_root is not None:
        paths.append(str(device_root / "mpy" / "lib"))
    if fakes:
        paths.append(".frozen/fakes" if device_root is None else str(FAKES))
    paths.append(str(NODESIDE))
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(paths)
    return env


def run(script: str, *args: str, device_root: Path, frozen: bool = True, fakes: bool = False,
        cwd: Path | None = None, timeout_s: float = 60, single_precision: bool = True) -> list[object]:
    """Run a script to its end; its stdout JSON lines, decoded. AssertionError with stderr if it failed.

    frozen: the node image (single precision, the library frozen in); else the unix port of the
    given precision with the staged .mpy tree."""
    if frozen:
        binary, env = node_image(device_root), environment(None, fakes)
    else:
        binary, env = micropython_binary(single_precision=single_precision), environment(device_root, fakes)
    result = subprocess.run(command(binary, script, *args), capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=timeout_s)
    assert result.returncode == 0, f"{script} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# The node's pure modules run the same on each: CPython (the installed loadmesh), the unix port in
# double precision (the staged .mpy tree), and the node image (single precision, frozen, the ESP32's heap).
SCRIPT_RUNTIMES = ("cpython", "micropython", "micropython-f32")


def run_on(runtime: str, script: str, *args: str, device_root: Path, timeout_s: float = 60) -> list[object]:
    """run() of a script that needs no fakes, on one of SCRIPT_RUNTIMES."""
    if runtime == "micropython-f32":
        return run(script, *args, device_root=device_root, timeout_s=timeout_s)
    if runtime == "micropython":
        return run(script, *args, device_root=device_root, frozen=False, single_precision=False,
                   timeout_s=timeout_s)
    assert runtime == "cpython", runtime
    result = subprocess.run([sys.executable, str(NODESIDE / script), *args], capture_output=True, text=True,
                            timeout=timeout_s)
    assert result.returncode == 0, f"{script} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class NodeProcess:
    """A node-side script running as its own process; its stdout JSON lines arrive in a queue."""

    def __init__(self, script: str | Path, *args: str, device_root: Path, cwd: Path | None = None,
                 fakes: bool = False) -> None:
        self.args = command(node_image(device_root), script, *args)
        self.env = environment(None, fakes)
        self.cwd = cwd
        self.lines: queue.Queue[dict[str, object]] = queue.Queue()  # this life's lines: see start()
        self.stderr = ""
        self._process: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        """Start (or restart) the process. expect() then sees only the new life's lines: a line the killed
        process printed but nobody read yet must not pass for the new one's."""
        require_wallclock("a live node process")
        self._process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env=self.env, cwd=self.cwd)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self._process, self.lines), daemon=True).start()
        # stderr has a reader of its own: left in its pipe until stdout ends, a node that wrote more than the
        # pipe holds (64 KB) would block there, and look hung.
        threading.Thread(target=self._read_stderr, args=(self._process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str], lines: queue.Queue[dict[str, object]]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip():
                lines.put(json.loads(line))

    def _read_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.stderr += line

    def expect(self, accept: Callable[[dict[str, object]], bool], timeout_s: float = 20) -> dict[str, object]:
        """The first line of this life not taken yet that accept() takes; AssertionError after timeout_s.

        Not only lines printed from now on: a line printed before the call and not yet read by an expect()
        counts too. After an event (a cut, a PUT, a stopped plant) ask for something only a line printed
        after it can show (drain() forgets the lines read so far, not one still on its way from the process)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no accepted line from {self.args[-1]} in {timeout_s} s; "
                                     f"exit {self.poll()}; stderr: {self.stderr}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if accept(line):
                return line

    def drain(self) -> None:
        """Forget the lines received so far."""
        while not self.lines.empty():
            self.lines.get_nowait()

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        assert self._process is not None
        return self._process.poll()

    def kill(self) -> None:
        """kill -9, as the simulator kills a node."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def close(self) -> None:
        """Stop it if it still runs."""
        self.kill()
