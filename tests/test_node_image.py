"""The node image's frozen fakes of the ESP32's C modules: found only by a node run against them, out of its heap,
and never stale."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from loadmesh.companion import nodeimage
from loadmesh.companion.paths import SetupError, micropython_binary

from . import mpnode

ROOT = mpnode.ROOT
FAKE_NAMES = ("machine", "network", "onewire")

# Which module each name gives, and the heap the three took (bytes after a collection, less before).
_WHICH = """import gc, json
gc.collect()
before = gc.mem_alloc()
found = {}
for name in ("machine", "network", "onewire"):
    try:
        found[name] = getattr(__import__(name), "__file__", "built-in")
    except ImportError:
        found[name] = "none"
gc.collect()
print(json.dumps({"found": found, "heap": gc.mem_alloc() - before}))
"""


def _which(tmp_path: Path, binary: Path, env: dict[str, str]) -> dict[str, object]:
    script = tmp_path / "which.py"
    script.write_text(_WHICH)
    result = subprocess.run(mpnode.command(binary, script), capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert isinstance(out, dict)
    return out


def test_a_node_run_against_the_fakes_gets_them_frozen_and_any_other_node_the_ports_own(device_root: Path,
                                                                                       tmp_path: Path) -> None:
    image = mpnode.node_image(device_root)
    # Frozen: named by their path in the image, not by a file's (before, compiled from tests/nodeside/fakes into
    # the heap: 17,280 bytes kept of the three here, 7,904 frozen, and the compiler's peak while importing them).
    faked = _which(tmp_path, image, mpnode.environment(None, fakes=True))
    assert faked["found"] == {name: "fakes/" + name + ".py" for name in FAKE_NAMES}, faked
    assert faked["heap"] < 10000, faked  # frozen: 7,904 (their globals, classes, functions)
    # A node without them (a simulated one) finds what it found before the fakes were frozen in: the unix
    # port's own machine, and no network or onewire.
    plain = _which(tmp_path, image, mpnode.environment(None))
    assert plain["found"] == {"machine": "built-in", "network": "none", "onewire": "none"}, plain
    # The plain unix port has no frozen fakes: it reads them from their folder.
    unfrozen = _which(tmp_path, micropython_binary(single_precision=True),
                      mpnode.environment(device_root, fakes=True))
    assert unfrozen["found"] == {name: str(mpnode.FAKES / (name + ".py")) for name in FAKE_NAMES}, unfrozen


def _checkout_copy(tmp_path: Path, device_root: Path) -> Path:
    """What the node image is built from, copied: the manifests, the fakes and the staged tree."""
    root = tmp_path / "checkout"
    (root / "firmware").mkdir(parents=True)
    shutil.copy(ROOT / "firmware" / "manifest.py", root / "firmware" / "manifest.py")
    shutil.copytree(mpnode.FAKES, root / "tests" / "nodeside" / "fakes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "nodeside" / "fakes_manifest.py", root / "tests" / "nodeside" / "fakes_manifest.py")
    shutil.copytree(device_root / "py", root / "build" / "device" / "py")
    return root


def test_a_node_image_older_than_a_fake_is_refused(device_root: Path, tmp_path: Path) -> None:
    # Before, the stamp covered the staged library and firmware/manifest.py only: a test ran a changed fake's
    # old frozen code, and passed or failed for it.
    root = _checkout_copy(tmp_path, device_root)
    staged = root / "build" / "device"
    binary = nodeimage.build(root, staged)
    assert nodeimage.node_binary(staged, root) == binary
    fake = root / "tests" / "nodeside" / "fakes" / "network.py"
    fake.write_text(fake.read_text() + "\n# changed\n")
    with pytest.raises(SetupError, match=r"older than the firmware \(or the tests' fakes it freezes\)"):
        nodeimage.node_binary(staged, root)


def test_a_rebuilt_image_holds_a_changed_fake_whatever_the_files_date(device_root: Path, tmp_path: Path) -> None:
    # A fake changed but dated before the image's last build (copied with its date kept, unpacked): before, the
    # rebuild kept the old frozen .mpy (compiled again only when newer) under a new stamp.
    root = _checkout_copy(tmp_path, device_root)
    staged = root / "build" / "device"
    binary = nodeimage.build(root, staged)
    fake = root / "tests" / "nodeside" / "fakes" / "onewire.py"
    dated = fake.stat()
    fake.write_text(fake.read_text() + "\nCHANGED_AT_US = 1\n")
    os.utime(fake, (dated.st_atime - 3600, dated.st_mtime - 3600))
    assert nodeimage.build(root, staged) == binary
    script = tmp_path / "changed.py"
    script.write_text("import onewire\nprint(hasattr(onewire, 'CHANGED_AT_US'))\n")
    result = subprocess.run([str(binary), str(script)], capture_output=True, text=True,
                            env=dict(os.environ, MICROPYPATH=".frozen/fakes"), timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "True"), result.stderr
