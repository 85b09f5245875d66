"""Each runtime is what its name says: compiled is compiled, f32 is single precision."""

from __future__ import annotations

import importlib
import importlib.machinery
import subprocess
from pathlib import Path

from loadmesh.companion import nodeimage
from loadmesh.companion.paths import micropython_binary
from loadmesh.companion.runtimes import SMALL_HEAP, MicroPythonRuntime, Runtime, core_module_names

from .conftest import ROOT

CORE_SOURCES = ROOT / "shared" / "core"


def test_compiled_core_is_really_compiled(all_runtimes: list[Runtime]) -> None:
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    names = core_module_names(CORE_SOURCES)
    assert names, "no core modules found"
    for name in names:
        module = importlib.import_module("loadmesh.core." + name)
        assert str(module.__file__).endswith(suffixes), module.__file__


def test_pure_core_comes_from_the_staged_tree(all_runtimes: list[Runtime], device_root: Path) -> None:
    for name in core_module_names(CORE_SOURCES):
        module = importlib.import_module("_loadmesh_core_pure." + name)
        path = Path(str(module.__file__))
        assert path.suffix == ".py"
        assert path.is_relative_to(device_root / "py")


def _probe(runtime: MicroPythonRuntime, code: str) -> str:
    heap = ["-X", "heapsize=" + runtime.heap] if runtime.heap else []
    done = subprocess.run([str(runtime.binary), *heap, "-c", code], capture_output=True, text=True,
                          env=runtime.environment(), check=True)
    return done.stdout.strip()


def _micropython(all_runtimes: list[Runtime], name: str) -> MicroPythonRuntime:
    found = [r for r in all_runtimes if r.name == name]
    assert len(found) == 1 and isinstance(found[0], MicroPythonRuntime)
    return found[0]


def test_micropython_runs_the_staged_mpy_files(all_runtimes: list[Runtime]) -> None:
    runtime = _micropython(all_runtimes, "micropython")
    assert runtime.device_root is not None
    out = _probe(runtime, "import sys, loadmesh.core.pilot as p; print(sys.implementation.name, p.__file__)")
    assert out == "micropython " + str(runtime.device_root / "lib" / "loadmesh" / "core" / "pilot.mpy")


def test_f32_runtime_runs_the_frozen_library_of_the_node_image(all_runtimes: list[Runtime],
                                                                device_root: Path) -> None:
    runtime = _micropython(all_runtimes, "micropython-f32")
    assert runtime.device_root is None  # nothing but the frozen modules on its path
    assert runtime.binary == nodeimage.node_binary(device_root)
    out = _probe(runtime,
                 "import loadmesh.core.pilot as p, loadmesh.core.controller as c; print(p.__file__, c.__file__)")
    assert out == "loadmesh/core/pilot.py loadmesh/core/controller.py"  # frozen modules' names


def test_float_precision_per_build(all_runtimes: list[Runtime]) -> None:
    assert _probe(_micropython(all_runtimes, "micropython"), "print(1/3)") == "0.3333333333333333"
    assert _probe(_micropython(all_runtimes, "micropython-f32"), "print(1/3)") == "0.3333333"


def test_f32_runtime_has_the_esp32_sized_heap(all_runtimes: list[Runtime]) -> None:
    runtime = _micropython(all_runtimes, "micropython-f32")
    assert runtime.heap == SMALL_HEAP
    total = int(_probe(runtime, "import gc; gc.collect(); print(gc.mem_free() + gc.mem_alloc())"))
    # 12K words: 48 KB on a 32-bit ESP32, 96 KB on this 64-bit host.
    word = 8
    assert 12 * 1024 * word * 0.9 <= total <= 12 * 1024 * word


def test_micropython_binaries_come_from_the_cache() -> None:
    for single in (False, True):
        assert micropython_binary(single).is_file()


def test_f32_runtime_still_reports_a_request_too_big_for_its_heap(all_runtimes: list[Runtime]) -> None:
    # A MemoryError is retried once on a fresh heap; one that recurs there is a finding.
    runtime = _micropython(all_runtimes, "micropython-f32")
    assert runtime.respond("canon", [{"id": "evse" + str(n)} for n in range(4000)]).startswith('{"crash":"MemoryError')
    assert runtime.respond("canon", [1, 2]) == '{"ok":[1,2]}'  # and the runtime serves on
