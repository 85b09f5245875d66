"""The node image: MicroPython's single-precision unix port with the staged library frozen in.

A node cannot afford to load its modules from .mpy files into a 12K-word
heap (the core alone takes about 28 KB that way), so a real ESP32 build
freezes them into flash with firmware/manifest.py. The node image does the
same on the host: tests and the simulator run nodes on it, with the ESP32's
heap size, as a device would run them.

It is built from build/device/py (the staged tree) into build/node-image/,
and rebuilt only when the staged library, the tests' fakes or a manifest
changed (a stamp holds their hash). The build reuses the MicroPython source
and the single-precision objects that tools/get-micropython left in the
cache, so a rebuild compiles only the frozen content and links.

The host image also freezes the tests' fakes of the ESP32's C modules
(tests/nodeside/fakes: machine, network, onewire), through a manifest of
their own (tests/nodeside/fakes_manifest.py), never firmware/manifest.py,
which a board's build uses. On a board those modules are C, their code in
flash; compiled from .py into a test node's heap they left it less margin
than a board has (docs/firmware.md, Memory). A second image holding the
fakes was the other way, about as cheap to build (its own 2 to 4 s from the
cached objects, and 47 MB more of them) but a second binary for the tests
to choose between, with ESP32-HAL and simulated nodes no longer on the same
one. Here they are frozen under fakes/, so that only a node with
".frozen/fakes" on its path finds them (tests/mpnode.py); any other still
gets the unix port's machine, and no network or onewire. The stamp covers
them, so that a changed fake rebuilds the image, and a test run on an image
older than it is refused, rather than testing the old fake.
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


def fakes_manifest(root: Path) -> Path:
    """The manifest of the tests' fakes, frozen into the host's node image only (firmware/manifest.py is a board's)."""
    return root / "tests" / "nodeside" / "fakes_manifest.py"


def library_hash(root: Path, staged: Path) -> str:
    """The hash of what gets frozen: every file under staged/py/lib and the fakes' folder (path and bytes), and
    both manifests."""
    digest = hashlib.sha256()
    digest.update((root / "firmware" / "manifest.py").read_bytes())
    fakes = fakes_manifest(root)
    folders = [staged / "py" / "lib"]
    if fakes.is_file():
        digest.update(b"fakes\0" + fakes.read_bytes())
        folders.append(fakes.parent / "fakes")
    for folder in folders:
        digest.update(b"folder\0")
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
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
    fakes = fakes_manifest(root)
    if not (staged / "py" / "lib" / "loadmesh").is_dir():
        raise SetupError(f"no staged tree at {staged}: run ./tools/setup (or loadmesh stage)")
    if staged.resolve() != (root / "build" / "device").resolve():
        raise SetupError(f"firmware/manifest.py freezes build/device of the checkout, not {staged}")
    out = image_dir(root)
    binary = out / BINARY_NAME
    stamp = out / "stamp"
    wanted = library_hash(root, staged)
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
                       + (f'include("{fakes}")\n' if fakes.is_file() else "")
                       + f'# {staged}\n')
    # makemanifest compiles a frozen file again only when it is newer than its cached .mpy: a file changed but
    # dated older (copied with its date kept, unpacked, checked out from a stash) stayed frozen as it was, under
    # a new stamp. Seen with a fake; the library is frozen the same way. All of it is compiled again, which is
    # most of a rebuild's two seconds anyway (staging rewrites the library).
    shutil.rmtree(objects / "frozen_mpy", ignore_errors=True)
    (objects / "frozen_content.c").unlink(missing_ok=True)
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
    # The frozen fakes are found only through ".frozen/fakes": with ".frozen" alone machine is the unix port's.
    check = subprocess.run([str(binary), "-c", "import machine; print(getattr(machine, '__file__', 'built-in'))"],
                           capture_output=True, text=True, env={"MICROPYPATH": ".frozen"})
    if check.returncode != 0 or check.stdout.strip() != "built-in":
        raise SetupError(f"the node image's machine module is not the unix port's: {check.stdout}{check.stderr}")
    # The stamp says the binary is current, and no later setup looks at the binary again: it is on the disk
    # before the stamp is written, so that a power cut cannot leave a stamp over an empty binary. (The stamp
    # itself needs no care: one lost or torn only makes the next setup build again.)
    from . import durable

    durable.sync_file(binary)
    stamp.write_text(wanted + "\n")
    return binary


def node_binary(staged: Path, root: Path | None = None) -> Path:
    """The built node image, checked to freeze exactly what staged (and the fakes' folder) holds; SetupError
    otherwise."""
    root = root if root is not None else repo_root()
    binary = image_dir(root) / BINARY_NAME
    stamp = image_dir(root) / "stamp"
    if not binary.is_file() or not stamp.is_file():
        raise SetupError(f"no node image at {binary}: run ./tools/setup")
    if stamp.read_text().strip() != library_hash(root, staged):
        raise SetupError(f"the node image at {binary} is older than the firmware (or the tests' fakes it freezes): "
                         "run ./tools/setup")
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
