"""Files a --write puts into a folder as a node keeps them: all of them or none, and a refusal that names the path.

`loadmesh node-files` writes four files, and a check's --write one. Each
is written by the node's store (NAME.tmp, renamed over NAME), but a failure
half-way through node-files (its third file's name taken by a folder, the
disk full) left the files before it written over: the folder then held a
new node.json beside an old config.json, and the old ones were lost. Now
every file is written into a new folder inside the target first, each
name is checked to be free of a folder, and only then is each moved over
its name, a rename within one file system.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_all(folder: Path, names: tuple[str, ...], write: Callable[[str], None]) -> None:
    """write(root) writes names into root, which is then moved into folder (made if missing), file by file;
    OSError, its filename the path at fault, and folder as it was if any write fails."""
    if folder.exists() and not folder.is_dir():
        # mkdir's own words would be "File exists", which reads as if the file were the trouble.
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder to write into", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (folder / name).is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, where the node's file goes", str(folder / name))
    # Inside folder: one file system, so each move is a rename (mode 0700: a key is in it for a moment).
    try:
        staging = Path(tempfile.mkdtemp(prefix=".loadmesh-write-", dir=folder))
    except OSError as exc:  # named as the folder, not as the made-up name tried in it
        raise type(exc)(exc.errno, exc.strerror, str(folder)) from None
    try:
        write(str(staging))
        for name in names:
            os.replace(staging / name, folder / name)
    except OSError as exc:
        if isinstance(exc.filename, str) and exc.filename.startswith(str(staging)):
            raise type(exc)(exc.errno, exc.strerror, str(folder)) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def failed(folder: Path, exc: OSError) -> str:
    """A failed write_all in words, for `loadmesh COMMAND: --write ...`: the path at fault, then what is wrong."""
    from .jsonfile import why

    where = exc.filename if isinstance(exc.filename, str) and exc.filename else str(folder)
    return f"--write {where}: {why(exc)}"
