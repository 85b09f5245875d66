"""The four runtimes the core runs on, behind one call: respond(entry, request)."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from . import nodeimage
from .paths import SetupError, micropython_binary

RUNTIME_NAMES = ("cpython-pure", "cpython-compiled", "micropython", "micropython-f32")

# The single-precision runtime stands in for an ESP32: the node image (32-bit
# floats, the library frozen in as a node's firmware holds it, see
# companion/nodeimage.py) with a heap of 12K words. MicroPython's "w" suffix
# means bytes on a 32-bit machine, scaled to the host's word size, so 48wK is
# 12K words (48 KB on an ESP32). Loaded from .mpy files instead, the modules
# would take most of that heap, which no node has to give them.
SMALL_HEAP = "48wK"

_RUNNER = Path(__file__).with_name("core_runner.py")
_PURE_PACKAGE = "_loadmesh_core_pure"


class Runtime:
    """One runtime of the core; respond() returns the canonical response line."""

    name = ""

    def respond(self, entry: str, request: object) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Release the runtime's process, if it has one."""


class InProcessRuntime(Runtime):
    """CPython, calling a loaded copy of loadmesh.core.entry directly."""

    def __init__(self, name: str, entry_module: ModuleType) -> None:
        self.name = name
        self._entry = entry_module

    def respond(self, entry: str, request: object) -> str:
        # Through JSON text, as the MicroPython runner receives it.
        result = self._entry.respond(entry, json.loads(json.dumps(request)))
        assert isinstance(result, str)
        return result


class MicroPythonRuntime(Runtime):
    """MicroPython unix-port processes running the core, one per entry.

    With a device_root, the modules come from its staged .mpy tree; without
    one, only the binary's frozen modules are on the path (the node image).
    One process per entry keeps each entry to the heap a node would give it,
    instead of every entry's modules at once.
    """

    def __init__(self, name: str, binary: Path, device_root: Path | None, heap: str | None) -> None:
        self.name = name
        self.binary = binary
        self.device_root = device_root
        self.heap = heap
        self._processes: dict[str, subprocess.Popen[str]] = {}

    def command(self, *args: str) -> list[str]:
        """The command line that runs the runner with args on this runtime."""
        heap = ["-X", "heapsize=" + self.heap] if self.heap else []
        return [str(self.binary), *heap, str(_RUNNER), *args]

    def environment(self) -> dict[str, str]:
        """MICROPYPATH: the frozen modules, then the device's lib if there is one."""
        env = dict(os.environ)
        env["MICROPYPATH"] = ".frozen" + ("" if self.device_root is None else ":" + str(self.device_root / "lib"))
        return env

    def _start(self, entry: str) -> subprocess.Popen[str]:
        process = self._processes.get(entry)
        if process is None or process.poll() is not None:
            process = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                       env=self.environment())
            self._processes[entry] = process
        return process

    def respond(self, entry: str, request: object) -> str:
        line = self._ask(entry, request)
        if line.startswith('{"crash":"MemoryError'):
            # One long-lived process serves hundreds of requests, which leaves
            # its small heap fragmented as no device would be. A request is
            # judged on a fresh heap: only a MemoryError there is a finding.
            self._stop(entry)
            line = self._ask(entry, request)
        return line

    def _ask(self, entry: str, request: object) -> str:
        process = self._start(entry)
        assert process.stdin is not None and process.stdout is not None
        # Characters as UTF-8, not as \u escapes: MicroPython's json reads an
        # escaped surrogate pair as two lone surrogates, not one character.
        try:
            process.stdin.write(json.dumps({"entry": entry, "input": request}, ensure_ascii=False) + "\n")
            process.stdin.flush()
        except BrokenPipeError:
            pass  # it died: the empty read below reports how
        line = process.stdout.readline()
        if not line:
            stderr = process.stderr.read() if process.stderr is not None else ""
            del self._processes[entry]
            raise RuntimeError(f"{self.name} exited: {stderr.strip()}")
        return line.rstrip("\n")

    def _stop(self, entry: str) -> None:
        process = self._processes.pop(entry, None)
        if process is not None:
            process.kill()
            process.wait()

    def run_file(self, entry: str, path: Path) -> subprocess.CompletedProcess[str]:
        """Answer one request file in a fresh process, the way the CLI does."""
        return subprocess.run(self.command(entry, str(path)), capture_output=True, text=True,
                              env=self.environment())

    def close(self) -> None:
        for entry in sorted(self._processes):
            self._stop(entry)


def core_module_names(core_dir: Path) -> list[str]:
    """The core's modules, __init__ excepted (it stays pure in every build)."""
    return sorted(p.stem for p in core_dir.glob("*.py") if p.name != "__init__.py")


def load_pure_core(core_dir: Path) -> ModuleType:
    """Import the .py files of core_dir as a private package, beside the installed one."""
    for name in [n for n in sys.modules if n == _PURE_PACKAGE or n.startswith(_PURE_PACKAGE + ".")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        _PURE_PACKAGE, core_dir / "__init__.py", submodule_search_locations=[str(core_dir)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[_PURE_PACKAGE] = package
    keep = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # the staged tree holds only what a device gets
    try:
        spec.loader.exec_module(package)
        for name in core_module_names(core_dir):
            module = importlib.import_module(_PURE_PACKAGE + "." + name)
            if not str(module.__file__).endswith(".py"):
                raise SetupError(f"pure core module {name} loaded from {module.__file__}, not a .py file")
    finally:
        sys.dont_write_bytecode = keep
    return package


def load_compiled_core(source_dir: Path | None) -> ModuleType:
    """The installed loadmesh.core, checked to be Cython-compiled and (given source_dir) current."""
    package = importlib.import_module("loadmesh.core")
    installed = Path(str(package.__file__)).parent
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for name in core_module_names(installed):
        module = importlib.import_module("loadmesh.core." + name)
        if not str(module.__file__).endswith(suffixes):
            raise SetupError(f"loadmesh.core.{name} is not compiled ({module.__file__}): "
                             "run ./tools/setup without LOADMESH_PURE")
    if source_dir is not None:
        for source in sorted(source_dir.glob("*.py")) + sorted(source_dir.glob("*.pxd")):
            copy = installed / source.name
            if not copy.is_file() or copy.read_bytes() != source.read_bytes():
                raise SetupError(f"the installed loadmesh.core is older than {source}: run ./tools/setup")
    return package


def open_runtime(name: str, device_root: Path | None, source_dir: Path | None = None) -> Runtime:
    """Open runtime name on the staged tree device_root (build/device/<py|mpy>'s parent).

    cpython, the installed core, needs no tree (device_root may be None).
    """
    if name == "cpython":
        # The installed core as it is: compiled, or pure where pip fell back (README, LOADMESH_REQUIRE_CYTHON).
        return InProcessRuntime(name, importlib.import_module("loadmesh.core.entry"))
    if device_root is None or not (device_root / "mpy" / "lib" / "loadmesh" / "core").is_dir():
        raise SetupError(f"no staged device tree at {device_root}: run ./tools/setup (or loadmesh stage)")
    if name == "cpython-pure":
        load_pure_core(device_root / "py" / "lib" / "loadmesh" / "core")
        return InProcessRuntime(name, importlib.import_module(_PURE_PACKAGE + ".entry"))
    if name == "cpython-compiled":
        load_compiled_core(source_dir)
        return InProcessRuntime(name, importlib.import_module("loadmesh.core.entry"))
    if name == "micropython":
        return MicroPythonRuntime(name, micropython_binary(single_precision=False), device_root / "mpy", None)
    if name == "micropython-f32":
        # node_binary checks that the image freezes exactly this staged tree.
        return MicroPythonRuntime(name, nodeimage.node_binary(device_root), None, SMALL_HEAP)
    from loadmesh.core.errors import quoted  # only for an error

    raise SetupError(f"unknown runtime {quoted(name)}; choose one of {', '.join(RUNTIME_NAMES)}")
