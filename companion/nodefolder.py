"""Files a --write puts into a folder as a node keeps them: all of them or none, and a refusal that names the path.

`loadmesh node-files` writes four files, and a check's --write one. Each
is written by the node's store (NAME.tmp, renamed over NAME), but a failure
half-way through node-files (its third file's name taken by a folder, the
disk full) left the files before it written over: the folder then held a
new node.json beside an old config.json, and the old ones were lost. Now
every file is written into a new folder inside the target first, each
name is checked to be free of a folder, and only then is each moved over
its name, a rename within one file system.

The moves are one rename per file, and POSIX has no rename of several
files at once: a move can still fail after another has been made (a folder
put in the way after the check, a file the write did not make). So the old
files are kept first, as hard links (a copy where the file system has none)
in a folder of their own beside the new ones, and a failed move puts each
file already moved back: the target's files are then as they were. What
stays not atomic: a program reading the folder while the files are moved
can see some new beside some old; and a process killed, or a machine that
stops, between two moves leaves that mix, with the old files still in
DIR/.loadmesh-old-* (and the new ones in DIR/.loadmesh-write-*): nothing is
lost, but it is put right by hand. A restore that fails itself (the file
system gone read-only) is said with where the old files are kept.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

NEW_PREFIX = ".loadmesh-write-"  # the new files, written before any is moved into place
OLD_PREFIX = ".loadmesh-old-"  # the old files, kept until every new one is in place


def write_all(folder: Path, names: tuple[str, ...], write: Callable[[str], None]) -> None:
    """write(root) writes names into root, which is then moved into folder (made if missing), file by file;
    OSError, its filename the path at fault, and folder as it was if any write or move fails."""
    if folder.exists() and not folder.is_dir():
        # mkdir's own words would be "File exists", which reads as if the file were the trouble.
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder to write into", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (folder / name).is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, where the node's file goes", str(folder / name))
    # Inside folder: one file system, so each move is a rename (mode 0700: a key is in it for a moment).
    staging = _new_folder(folder, NEW_PREFIX)
    old: Path | None = None
    keep_old = False
    try:
        old = _new_folder(folder, OLD_PREFIX)
        kept = _keep(folder, old, names)
        write(str(staging))
        _move_all(folder, staging, old, names, kept)
    except _NotPutBack:
        keep_old = True  # the only copy of some of the old files
        raise
    except OSError as exc:
        if isinstance(exc.filename, str) and exc.filename.startswith(str(staging)):
            raise type(exc)(exc.errno, exc.strerror, str(folder)) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not keep_old:
            shutil.rmtree(old, ignore_errors=True)


class _NotPutBack(OSError):
    """A move failed, and putting back the files moved before it failed too: the old files are left where kept."""


def _new_folder(folder: Path, prefix: str) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    except OSError as exc:  # named as the folder, not as the made-up name tried in it
        raise type(exc)(exc.errno, exc.strerror, str(folder)) from None


def _keep(folder: Path, old: Path, names: tuple[str, ...]) -> list[str]:
    """Each of names that folder holds, kept in old (a hard link: the same file, no second copy of a key to
    remove); the names kept."""
    kept = []
    for name in names:
        if not os.path.lexists(folder / name):
            continue
        try:
            os.link(folder / name, old / name, follow_symlinks=False)  # a symbolic link kept as one
        except OSError:  # a file system without hard links (FAT): a copy, in old's 0700 folder
            shutil.copy2(folder / name, old / name, follow_symlinks=False)
        kept.append(name)
    return kept


def _move_all(folder: Path, staging: Path, old: Path, names: tuple[str, ...], kept: list[str]) -> None:
    """Each new file moved over its name. If a move fails: the files moved so far put back as they were (a file
    that was not there removed again), then OSError naming the path that failed; if putting back fails too,
    _NotPutBack, which says so and where the old files are."""
    moved: list[str] = []
    for name in names:
        try:
            os.replace(staging / name, folder / name)
        except OSError as exc:
            failure = type(exc)(exc.errno, exc.strerror, str(folder / name))
            try:
                for done in reversed(moved):
                    if done in kept:
                        os.replace(old / done, folder / done)
                    else:
                        os.unlink(folder / done)
            except OSError as restore:
                raise _NotPutBack(failure.errno, f"{failure.strerror}; and putting back the files moved before it "
                                             f"failed ({restore.strerror}): the old files are in {old}",
                              str(folder / name)) from None
            raise failure from None
        moved.append(name)


def failed(folder: Path, exc: OSError) -> str:
    """A failed write_all in words, for `loadmesh COMMAND: --write ...`: the path at fault, then what is wrong."""
    from .jsonfile import why

    where = exc.filename if isinstance(exc.filename, str) and exc.filename else str(folder)
    return f"--write {where}: {why(exc)}"
