"""The node image: MicroPython's single-precision unix port with the staged library frozen in.

A node cannot afford to load its modules from .mpy files into a 12K-word
heap (the core alone takes about 28 KB that way), so a real ESP32 build
freezes them into flash with firmware/manifest.py. The node image does the
same on the host: tests and the simulator run nodes on it, with the ESP32's
heap size, as a device would run them.

It is built from build/device/py (the staged tree) into build/node-image/,
and rebuilt only when the staged library or the manifest changed (a stamp
holds their hash). The build reuses the MicroPython source and the
single-precision objects that tools/get-micropython left in the cache, so a
rebuild compiles only the frozen content and links.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from .paths import MICROPYTHON_VERSION, SetupError, cache_dir, device_tree, repo_root

BINARY_NAME = "micropython-node-f32"
_MAKE_OPTIONS = ["VARIANT=standard", "MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0", "MICROPY_SSL_MBEDTLS=0",
                 "MICROPY_SSL_AXTLS=0", "MICROPY_PY_SSL=0", "STRIP=true",
                 "CFLAGS_EXTRA=-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT"]


def image_dir(root: Path) -> Path:
    """Where the node image of the checkout at root is built."""
    return root / "build" / "node-image"


def library_hash(staged: Path, manifest: Path) -> str:
    """The hash of what gets frozen: every file under staged/py/lib (path and bytes), and the manifest."""
    digest = hashlib.sha256()
    digest.update(manifest.read_bytes())
    lib = staged / "py" / "lib"
    for path in sorted(p for p in lib.rglob("*") if p.is_file()):
        digest.update(path.relative_to(lib).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _source_tree() -> Path:
    source = cache_dir() / "micropython-src" / "src"
    if not (source / "ports" / "unix" / "Makefile").is_file() or not (source / "mpy-cross" / "build").is_dir():
        raise SetupError(f"the MicroPython {MICROPYTHON_VERSION} source is not in {source}: "
                         "run ./tools/get-micropython --force")
    return source


def build(root: Path, staged: Path) -> Path:
    """Build (or reuse) the node image for the staged tree; the binary's path. SetupError says what failed."""
    manifest = root / "firmware" / "manifest.py"
    if not (staged / "py" / "lib" / "loadmesh").is_dir():
        raise SetupError(f"no staged tree at {staged}: run ./tools/setup (or loadmesh stage)")
    if staged.resolve() != (root / "build" / "device").resolve():
        raise SetupError(f"firmware/manifest.py freezes build/device of the checkout, not {staged}")
    out = image_dir(root)
    binary = out / BINARY_NAME
    stamp = out / "stamp"
    wanted = library_hash(staged, manifest)
    if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return binary
    source = _source_tree()
    objects = out / "obj"
    seed = source / "ports" / "unix" / "build-f32"
    if not objects.is_dir() and seed.is_dir():
        # The single-precision build's objects (their timestamps kept), so
        # that make compiles only the frozen content.
        shutil.copytree(seed, objects, symlinks=True)
    out.mkdir(parents=True, exist_ok=True)
    wrapper = out / "manifest.py"
    wrapper.write_text('include("$(MPY_DIR)/extmod/asyncio")\n'
                       f'include("{manifest}")\n'
                       f'# {staged}\n')
    log = out / "build.log"
    with log.open("w") as log_file:
        result = subprocess.run(["make", "-C", str(source / "ports" / "unix"), "-j2", *_MAKE_OPTIONS,
                                 f"FROZEN_MANIFEST={wrapper}", f"BUILD={objects}"],
                                stdout=log_file, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SetupError(f"building the node image failed; see {log}")
    shutil.copyfile(objects / "micropython", binary)
    binary.chmod(0o755)
    check = subprocess.run([str(binary), "-c", "import loadmesh.node.clock as m; print(m.__file__)"],
                           capture_output=True, text=True, env={"MICROPYPATH": ".frozen"})
    if check.returncode != 0 or check.stdout.strip() != "loadmesh/node/clock.py":
        raise SetupError(f"the node image does not hold the frozen library: {check.stdout}{check.stderr}")
    # The stamp says the binary is current, and no later setup looks at the binary again: it is on the disk
    # before the stamp is written, so that a power cut cannot leave a stamp over an empty binary. (The stamp
    # itself needs no care: one lost or torn only makes the next setup build again.)
    from . import durable

    durable.sync_file(binary)
    stamp.write_text(wanted + "\n")
    return binary


def node_binary(staged: Path, root: Path | None = None) -> Path:
    """The built node image, checked to freeze exactly what staged holds; SetupError otherwise."""
    root = root if root is not None else repo_root()
    binary = image_dir(root) / BINARY_NAME
    stamp = image_dir(root) / "stamp"
    if not binary.is_file() or not stamp.is_file():
        raise SetupError(f"no node image at {binary}: run ./tools/setup")
    if stamp.read_text().strip() != library_hash(staged, root / "firmware" / "manifest.py"):
        raise SetupError(f"the node image at {binary} is older than the firmware: run ./tools/setup")
    return binary


def main() -> int:
    """Build the node image of this checkout if it is stale (tools/setup runs this)."""
    try:
        root = repo_root()
        binary = build(root, device_tree(root))
    except SetupError as exc:
        print(f"node image: {exc}", file=sys.stderr)
        return 1
    print(f"node image: {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
