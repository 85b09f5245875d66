"""A user's file written so that a power cut at any instant leaves it whole: the old content or the new, never
empty or half.

A rename (or a link) puts a file under its name at once, but only in the
folder as the kernel holds it: after a power cut the file system may come
back with the name and not the data (ext4 and XFS write data late, and
ext4's auto_da_alloc flushes only for a rename over an existing file, by
heuristic; other file systems do nothing of the kind), or without the
rename. So the file's data is flushed to the disk (fsync) before the rename
that names it, and the folder after it: only then is the new name on the
disk. companion/nodefolder.py does its own renames, with these calls.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path


def _sync(descriptor: int) -> None:
    """descriptor's data and metadata on the disk. On macOS fsync stops at the drive's cache: F_FULLFSYNC
    flushes that too."""
    try:
        import fcntl

        full = getattr(fcntl, "F_FULLFSYNC", None)
    except ImportError:  # Windows
        full = None
    if full is not None:
        with contextlib.suppress(OSError):  # a file system without it (some network mounts): fsync, below
            fcntl.fcntl(descriptor, full)
            return
    os.fsync(descriptor)


def sync_file(path: Path | str) -> None:
    """The file at path flushed to the disk (opened to read: fsync flushes every write to the file, whoever
    made it; Windows flushes only a file opened to write)."""
    descriptor = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        _sync(descriptor)
    finally:
        os.close(descriptor)


def sync_folder(path: Path | str) -> None:
    """The names in the folder at path (made, renamed, removed) flushed to the disk. Windows cannot open a folder
    to flush it (its file systems journal the names themselves): nothing to do there."""
    if os.name == "nt":
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        _sync(descriptor)
    finally:
        os.close(descriptor)


def write_new(path: Path, data: bytes, mode: int = 0o666) -> None:
    """data as a new file at path (mode, less the umask), whole or not at all, also after a power cut;
    FileExistsError if a file is there, which is never written over.

    Written to a temporary file in the same folder (a rename across file
    systems would be a copy), flushed, then linked to its name: a link fails
    if the name exists, where a rename would replace it. A file system
    without hard links (FAT on a USB stick) gets a rename once the name is
    checked free: a file made under that name in the instant between the
    two would be replaced, but the name never holds half of data. A run
    killed half-way leaves the temporary file (.NAME.PID.XXXXXXXX.tmp),
    never a part of data under the name."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            _sync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
            os.rename(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    sync_folder(path.absolute().parent)
