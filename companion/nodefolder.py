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

Before its first move a run records, in its folder of new files, the
SHA-256 of each file it moves and the names that held a file
(.loadmesh-moves.json, flushed). The next write into the folder settles
what a stopped run left (settle()), before its own: each file in a
.loadmesh-old-* that is not the file under its name (the same file, or the
same bytes) is put back over it where the file there is the one that run
moved (its recorded hash) or none; a file the run added under a name that
held none is removed. Then the folder is as it was before that run. A file
changed since by hand (or one no record shows to be the run's) is never
undone: it stays, and the old one goes beside it, as NAME.loadmesh-old-*,
which the line it says names. What is left in the .loadmesh-old-*, and every
.loadmesh-write-* and .loadmesh-done-*, is removed. Nothing is deleted
that is the only copy of an old file: a key in .loadmesh-old-* goes back
to its name, or beside it. A program reading the folder while the files are
moved can still see some new beside some old; two writes into one folder
at once are refused (a lock on the folder, where the system has one).
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import hashlib
import json
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


def write_all(folder: Path, names: tuple[str, ...], write: Callable[[str], None],
              say: Callable[[str], None] | None = None) -> list[str]:
    """write(root) writes names into root, which is then moved into folder (made if missing), file by file;
    OSError, its filename the path at fault, and folder as it was if any write or move fails. First, what a run
    that stopped half-way left in folder is settled (settle()): each line given to say as soon as it is done, so
    that it is told even if this write then fails, and all of them returned."""
    if folder.exists() and not folder.is_dir():
        # mkdir's own words would be "File exists", which reads as if the file were the trouble.
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder to write into", str(folder))
    _make_folder(folder)
    settled: list[str] = []

    def tell(line: str) -> None:
        settled.append(line)
        if say is not None:
            say(line)

    with _locked(folder):
        settle(folder, tell)
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
        # What is moved, on the disk before the first move: the next write tells by it a file this one put under
        # its name (put back) from one changed since by hand (kept).
        _record(staging, old, kept, names)
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
        if not keep_old:
            shutil.rmtree(staging, ignore_errors=True)
        else:  # its record stays, for the next write to tell which files this one moved
            for entry in staging.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.name != RECORD:
                    entry.unlink()  # a new file not moved (a key among them): of no use to anyone now
        if old is not None and not keep_old:
            shutil.rmtree(old, ignore_errors=True)


class _NotPutBack(OSError):
    """A move failed, and putting back the files moved before it failed too: the old files are left where kept."""


def settle(folder: Path, say: Callable[[str], None]) -> None:
    """What a write into folder stopped half-way (killed, the machine stopped, a restore that failed) left there,
    settled: the old files it had replaced put back, the files it had added removed, its leftover folders removed;
    a file changed since by hand kept, the old one beside it; then a killed key-new's or get --write's temporary
    files removed (durable.clean_temporaries). say(line) for each leftover once it is settled, naming it and what
    was done; OSError, naming the path, if a file cannot be put back (the rest left as they are)."""
    leftovers = [entry for entry in folder.iterdir() if entry.name.startswith((OLD_PREFIX, NEW_PREFIX, DONE_PREFIX))]
    # The kept old files first, the newest first (a run stopped after another had stopped kept the files that one
    # had written, and its own go back before those); then the rest, by name.
    leftovers.sort(key=lambda entry: (not entry.name.startswith(OLD_PREFIX),
                                      -entry.lstat().st_mtime_ns if entry.name.startswith(OLD_PREFIX) else 0,
                                      entry.name))
    records = _records(leftovers)
    for leftover in leftovers:
        if not leftover.is_dir() or leftover.is_symlink():
            continue  # not one of ours: a folder of those names is all a write makes
        if leftover.name.startswith(OLD_PREFIX):
            lines = _settle_old(folder, leftover, records.get(leftover.name))
            shutil.rmtree(leftover)  # only files that are under their names too are left in it
            durable.sync_folder(folder)
            for line in lines:
                say(line)
        else:
            shutil.rmtree(leftover)
            what = "new files" if leftover.name.startswith(NEW_PREFIX) else "replaced files"
            say(f"{leftover}: removed, the {what} of a write into {folder} that stopped half-way")
    for line in durable.clean_temporaries(folder):  # a key-new's or a get --write's, killed
        say(line)


def _settle_old(folder: Path, old: Path, record: _Record | None) -> list[str]:
    """The files kept in old put back where the write that kept them moved its own over them, those it added
    removed; a file changed since (not the write's, by its hash in record) kept, and the old one moved beside it.
    No record (a write stopped before it moved a file, or one of an older loadmesh): every file that is not the
    old one counts as changed. A kept file that is the file under its name (a link to it, the same bytes) stays
    in old, to remove. The lines to say."""
    stopped = f"a write into {folder} stopped half-way (killed, or the machine stopped)"
    staged, kept = record if record is not None else ({}, None)
    put_back, added, changed = [], [], []
    for name in sorted(os.listdir(old)):
        if _same(old / name, folder / name):
            continue
        if os.path.lexists(folder / name) and _digest(folder / name) != staged.get(name, False):
            # Changed by hand since that write (or not known to be its file): nothing of the user's is lost.
            beside = folder / f"{name}.loadmesh-old-{old.name[len(OLD_PREFIX):]}"
            if os.path.lexists(beside):  # never over a file: it could be the only copy of something
                raise FileExistsError(errno.EEXIST, f"is there already: the file kept in {old / name} is to go "
                                      "there", str(beside))
            _move(old / name, beside, f"the file kept in {old / name} could not be moved beside {folder / name}")
            changed.append(f"{folder / name}: kept as it is, changed since {stopped}; the file it held before that "
                           f"write is beside it, as {beside}: compare the two, and remove the one not wanted")
            continue
        _move(old / name, folder / name, f"the file kept in {old / name} could not be put back there")
        put_back.append(name)
    for name in sorted(staged):
        if kept is None or name in kept or not os.path.lexists(folder / name):
            continue  # it held a file before that write (settled above), or that write did not move it
        if _digest(folder / name) != staged[name]:
            changed.append(f"{folder / name}: kept as it is, added by {stopped} and changed since")
            continue
        os.unlink(folder / name)
        added.append(f"{folder / name}: removed, added by {stopped}: the name held no file before it")
    if not put_back:
        return [f"{old}: removed, left by a write into {folder} stopped before it replaced a file", *added, *changed]
    as_before = "" if changed else ": the folder is as it was before that write"
    return [f"{old}: put back {', '.join(put_back)}, which {stopped} had replaced{as_before}", *added, *changed]


def _move(source: Path, target: Path, what: str) -> None:
    """source renamed to target, flushed; OSError naming target, saying what failed."""
    try:
        os.replace(source, target)
    except OSError as exc:
        raise type(exc)(exc.errno, f"{exc.strerror}: {what}", str(target)) from None
    durable.sync_folder(target.parent)


# A write's record, in its folder of new files: (the hash of each file it moves over its name, the names that held
# a file before it), for the next write to tell the files it moved from those changed since.
_Record = tuple[dict[str, str], list[str]]
RECORD = ".loadmesh-moves.json"


def _record(staging: Path, old: Path, kept: list[str], names: tuple[str, ...]) -> None:
    digests = {name: _digest(staging / name) for name in names}
    staged = {name: digest for name, digest in digests.items() if digest is not None}
    path = staging / RECORD
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"old": old.name, "staged": staged, "kept": kept}, out, sort_keys=True)
    durable.sync_file(path)
    durable.sync_folder(staging)


def _records(leftovers: list[Path]) -> dict[str, _Record]:
    """The records in the folders of new files among leftovers, by the name of their folder of old files. One that
    cannot be read (a power cut before it was on the disk: no file was moved then) is left out."""
    found: dict[str, _Record] = {}
    for leftover in leftovers:
        if not leftover.name.startswith(NEW_PREFIX) or leftover.is_symlink():
            continue  # a link is not one of ours (settle() leaves it): nothing in it to go by
        try:
            record = json.loads((leftover / RECORD).read_text())
            staged, kept = record["staged"], record["kept"]
            if isinstance(record["old"], str) and isinstance(staged, dict) and isinstance(kept, list):
                found[record["old"]] = ({str(name): str(value) for name, value in staged.items()},
                                        [str(name) for name in kept])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def _digest(path: Path) -> str | None:
    """The SHA-256 of the regular file at path, in hex; None for no file, or another kind."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


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
