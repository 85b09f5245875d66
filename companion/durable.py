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
import re
import stat
import sys
import time
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


def write_new(path: Path, data: bytes, mode: int = 0o666) -> list[str]:
    """data as a new file at path (mode, less the umask), whole or not at all, also after a power cut;
    FileExistsError if a file is there, which is never written over. Returns what was done then with the
    temporary files a write stopped half-way left in path's folder (clean_temporaries()'s lines).

    Written to a temporary file in the same folder (a rename across file
    systems would be a copy), flushed, then linked to its name: a link fails
    if the name exists, where a rename would replace it. A file system
    without hard links (FAT on a USB stick) gets a rename that never
    replaces a file (_rename_new). The name never holds half of data. A run
    killed half-way leaves the temporary file (.NAME.PID.XXXXXXXX.tmp),
    never a part of data under the name; the next write into the folder
    removes it. The temporary file is locked while it is written (flock), so
    that no other run takes it for a stopped one's."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        _hold(descriptor)
        with os.fdopen(descriptor, "wb", closefd=False) as out:
            out.write(data)
            out.flush()
            _sync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here
            _rename_new(temporary, path)
    finally:
        if os.name == "nt":
            os.close(descriptor)  # Windows removes no file that is open
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if os.name != "nt":
            os.close(descriptor)  # the lock held until the name is gone
    sync_folder(path.absolute().parent)
    # Once written (a write that fails removes nothing, unsaid); never this one's, whose name is gone.
    return clean_temporaries(path.absolute().parent)


def _rename_new(source: Path, target: Path) -> None:
    """source renamed to target, which is never replaced: FileExistsError if a file is there.

    Where the system can, the rename itself refuses a name that is taken:
    Linux's renameat2 with RENAME_NOREPLACE (FAT's driver, vfat, has it),
    Windows' rename (it never replaces). Elsewhere (macOS, the BSDs; Linux
    before 3.15, or a file system without it) the name is checked free
    first, and a file made under it in the instant between the check and
    the rename would be replaced. Creating the name first (O_EXCL), then
    renaming over that, would close the instant but leave an empty file
    under the name after a power cut in between: a worse trade."""
    if os.name == "nt":
        os.rename(source, target)
        return
    if _renamed_no_replace(source, target):
        return
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def _renamed_no_replace(source: Path, target: Path) -> bool:
    """Whether source was renamed to target by renameat2(RENAME_NOREPLACE) (OSError naming target if it failed,
    FileExistsError if target is there); False where Linux or its file system has no such rename."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library without it (glibc before 2.28)
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    at_cwd, no_replace = -100, 1  # AT_FDCWD, RENAME_NOREPLACE
    if renameat2(at_cwd, os.fsencode(source), at_cwd, os.fsencode(target), no_replace) == 0:
        return True
    failure = ctypes.get_errno()
    if failure in (errno.ENOSYS, errno.EINVAL):  # a kernel before 3.15, or a file system without the flag
        return False
    raise OSError(failure, os.strerror(failure), str(target))  # EEXIST makes it a FileExistsError


# write_new's temporary file: .NAME.PID.XXXXXXXX.tmp
_TEMPORARY = re.compile(r"\.(.+)\.([0-9]+)\.[0-9a-f]{8}\.tmp")
# A temporary file this old is a stopped run's whatever its PID (taken since by another process): write_new holds
# one for as long as it takes to write and flush a few kilobytes.
STALE_TEMPORARY_S = 3600


def clean_temporaries(folder: Path) -> list[str]:
    """The temporary files write_new left in folder when it stopped half-way (killed, the machine stopped) removed:
    one whose process is gone (on this machine), or older than STALE_TEMPORARY_S, and not locked by a writer; one
    line for each, naming it and why it went. A live writer's is never removed."""
    said: list[str] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:  # no folder, or not readable: the write itself says so
        return said
    for name in names:
        found = _TEMPORARY.fullmatch(name)
        if found is None:
            continue
        path = folder / name
        try:
            status = os.lstat(path)
        except FileNotFoundError:
            continue  # its writer done with it meanwhile
        if not stat.S_ISREG(status.st_mode):
            continue
        age_s = time.time() - status.st_mtime
        if _gone(int(found.group(2))):
            why = f"its process ({found.group(2)}) is gone"
        elif age_s > STALE_TEMPORARY_S:
            why = f"written {int(age_s // 60)} minutes ago"
        else:
            continue  # maybe a live writer's
        if _removed_unless_held(path):
            said.append(f"{path}: removed, the temporary file of a write of {folder / found.group(1)} that stopped "
                        f"half-way ({why}, killed or the machine stopped)")
    if said:
        with contextlib.suppress(OSError):  # the write's own flush of the folder went well a moment ago
            sync_folder(folder)
    return said


def _gone(pid: int) -> bool:
    """Whether no process of that PID runs here. Windows: never said (os.kill would stop the process)."""
    if os.name == "nt" or pid in (0, os.getpid()):
        return False
    try:
        os.kill(pid, 0)  # signal 0: only whether it could be sent
    except ProcessLookupError:
        return True
    except OverflowError:
        return True  # no PID that large
    except OSError:  # PermissionError: another user's process
        return False
    return False


def _hold(descriptor: int) -> None:
    """The file of descriptor locked (flock, exclusive) for as long as it is open, where the system has locks."""
    try:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):  # no locks here (Windows, ENOLCK), or a cleaner on it for an instant
        pass


def _removed_unless_held(path: Path) -> bool:
    """path removed unless a writer holds its lock (_hold); whether it was removed."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # gone meanwhile; or not ours to read, and then not ours to judge
        return False
    try:
        if _held(descriptor):
            return False
        try:
            os.unlink(path)  # while locked: a writer cannot take it up meanwhile
        except OSError:  # gone meanwhile, or not ours to remove: left, unsaid (the write itself went well)
            return False
        return True
    finally:
        os.close(descriptor)


def _held(descriptor: int) -> bool:
    """Whether another holds the lock of descriptor's file; if not, it is this one's (shared: a lock that needs no
    write access, as NFS wants for an exclusive one) until descriptor is closed. No locks here: False."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # ENOLCK: its PID and age decide alone
        return False
    return False
