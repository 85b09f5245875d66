"""Files a --write puts into a folder as a node keeps them: all of them or none, also after a power cut or a kill,
and a refusal that names the path.

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
file already moved back: the target's files are then as they were. A
restore that fails itself (the file system gone read-only) is said with
where the old files are kept.

A power cut: each new file is flushed to the disk before its rename, the
kept old ones (and their folder's name) before the first rename, and the
folder after the last (companion/durable.py says why). A file is then
never empty or half, and a cut, or a kill, between two moves leaves the
old files in DIR/.loadmesh-old-*, the only copy of those already replaced.
When every move is made, that folder is renamed DIR/.loadmesh-done-* (one
rename, flushed) before it is removed: a .loadmesh-old-* is left only by a
run that did not finish, never by one that said it wrote.

The next write into the folder settles what such a run left (settle()),
before its own: each file in a .loadmesh-old-* that is not the file under
its name (the same file, or the same bytes) is put back over it, the folder
then as it was before that run; what is left there, and every
.loadmesh-write-* and .loadmesh-done-*, is removed. A file the stopped run
added under a name that held none stays. Nothing is deleted that is the
only copy of an old file: a key in .loadmesh-old-* goes back to its name. A
program reading the folder while the files are moved can still see some
new beside some old; two writes into one folder at once are refused (a
lock on the folder, where the system has one).
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from . import durable

NEW_PREFIX = ".loadmesh-write-"  # the new files, written before any is moved into place
OLD_PREFIX = ".loadmesh-old-"  # the old files, kept until every new one is in place
DONE_PREFIX = ".loadmesh-done-"  # the old files once every new one is in place: to remove, never to put back


def write_all(folder: Path, names: tuple[str, ...], write: Callable[[str], None]) -> list[str]:
    """write(root) writes names into root, which is then moved into folder (made if missing), file by file;
    OSError, its filename the path at fault, and folder as it was if any write or move fails. Returns what was
    done first with what a run that stopped half-way left in folder (settle()'s lines)."""
    if folder.exists() and not folder.is_dir():
        # mkdir's own words would be "File exists", which reads as if the file were the trouble.
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder to write into", str(folder))
    _make_folder(folder)
    with _locked(folder):
        settled = settle(folder)
        for name in names:
            if (folder / name).is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a folder, where the node's file goes", str(folder / name))
        _write_all(folder, names, write)
    return settled


def _write_all(folder: Path, names: tuple[str, ...], write: Callable[[str], None]) -> None:
    # Inside folder: one file system, so each move is a rename (mode 0700: a key is in it for a moment).
    staging = _new_folder(folder, NEW_PREFIX)
    old: Path | None = None
    keep_old = False
    try:
        old = _new_folder(folder, OLD_PREFIX)
        kept = _keep(folder, old, names)
        # On the disk before any file is replaced: after a power cut during the moves, the only copy of those
        # replaced is there, for the next write to put back.
        durable.sync_folder(old)
        durable.sync_folder(folder)
        write(str(staging))
        for name in names:
            if (staging / name).is_file():  # one not written fails at its move, below
                durable.sync_file(staging / name)  # its data on the disk before its name is
        _move_all(folder, staging, old, names, kept)
        durable.sync_folder(folder)  # the new names on the disk
        # The old files are no longer to be put back: one rename says so, on the disk before the command says
        # it wrote (a power cut could otherwise bring back a .loadmesh-old-*, which the next write would undo).
        done = folder / (DONE_PREFIX + old.name[len(OLD_PREFIX):])
        os.rename(old, done)
        old = done
        durable.sync_folder(folder)
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


def settle(folder: Path) -> list[str]:
    """What a write into folder stopped half-way (killed, the machine stopped, a restore that failed) left there,
    settled: the old files it had replaced put back, its leftover folders removed. One line per leftover, naming
    it and what was done; OSError, naming the path, if a file cannot be put back (the rest left as they are)."""
    said = []
    leftovers = [entry for entry in folder.iterdir() if entry.name.startswith((OLD_PREFIX, NEW_PREFIX, DONE_PREFIX))]
    # The kept old files first, the newest first (a run stopped after another had stopped kept the files that one
    # had written, and its own go back before those); then the rest, by name.
    leftovers.sort(key=lambda entry: (not entry.name.startswith(OLD_PREFIX),
                                      -entry.lstat().st_mtime_ns if entry.name.startswith(OLD_PREFIX) else 0,
                                      entry.name))
    for leftover in leftovers:
        if not leftover.is_dir() or leftover.is_symlink():
            continue  # not one of ours: a folder of those names is all a write makes
        if leftover.name.startswith(OLD_PREFIX):
            put_back = _put_back(folder, leftover)
            shutil.rmtree(leftover)  # only files that are under their names too are left in it
            durable.sync_folder(folder)
            if put_back:
                said.append(f"{leftover}: put back {', '.join(put_back)}, which a write into {folder} stopped "
                            "half-way (killed, or the machine stopped) had replaced: the folder is as it was "
                            "before that write")
            else:
                said.append(f"{leftover}: removed, left by a write into {folder} stopped before it replaced a file")
        else:
            shutil.rmtree(leftover)
            what = "new files" if leftover.name.startswith(NEW_PREFIX) else "replaced files"
            said.append(f"{leftover}: removed, the {what} of a write into {folder} that stopped half-way")
    return said


def _put_back(folder: Path, old: Path) -> list[str]:
    """Each file kept in old that is not the file under its name in folder moved back over it; the names moved.
    A kept file that is (a link to the same file, or a copy of the same bytes) is left in old, to remove."""
    put_back = []
    for name in sorted(os.listdir(old)):
        if _same(old / name, folder / name):
            continue
        try:
            os.replace(old / name, folder / name)
        except OSError as exc:
            raise type(exc)(exc.errno, f"{exc.strerror}: the file kept in {old / name} could not be put back "
                                       "there", str(folder / name)) from None
        put_back.append(name)
    if put_back:
        durable.sync_folder(folder)
    return put_back


def _same(kept: Path, current: Path) -> bool:
    """Whether current is the file kept (a hard link to it) or holds the same (the same bytes, the same link)."""
    try:
        a, b = os.lstat(kept), os.lstat(current)
    except FileNotFoundError:
        return False
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
        return True
    if stat.S_ISLNK(a.st_mode) and stat.S_ISLNK(b.st_mode):
        return os.readlink(kept) == os.readlink(current)
    return stat.S_ISREG(a.st_mode) and stat.S_ISREG(b.st_mode) and filecmp.cmp(kept, current, shallow=False)


def _make_folder(folder: Path) -> None:
    """folder made, with any folder above it missing, each on the disk (its name flushed in its parent)."""
    missing = []
    above = folder.absolute()
    while not above.exists() and above.parent != above:
        missing.append(above)
        above = above.parent
    folder.mkdir(parents=True, exist_ok=True)
    for made in reversed(missing):
        durable.sync_folder(made.parent)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """folder locked for one write at a time (flock): a second would take the first's folders for leftovers.
    No lock where the system has none (Windows, some network file systems)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BlockingIOError(errno.EAGAIN, "another loadmesh is writing into this folder: try again once it "
                                  "is done", str(folder)) from None
        except OSError:
            pass  # no locks here (ENOLCK): written without one
        yield
    finally:
        os.close(descriptor)


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
            if not os.path.islink(old / name):
                durable.sync_file(old / name)  # on the disk before the original is replaced
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
                durable.sync_folder(folder)
            except OSError as restore:
                raise _NotPutBack(failure.errno, f"{failure.strerror}; and putting back the files moved before it "
                                             f"failed ({restore.strerror}): the old files are in {old}, and the "
                                             f"next --write into {folder} puts them back",
                                  str(folder / name)) from None
            raise failure from None
        moved.append(name)


def failed(folder: Path, exc: OSError) -> str:
    """A failed write_all in words, for `loadmesh COMMAND: --write ...`: the path at fault, then what is wrong."""
    from .jsonfile import why

    where = exc.filename if isinstance(exc.filename, str) and exc.filename else str(folder)
    return f"--write {where}: {why(exc)}"
