"""The group key in the installer's hands: made once per group, kept in a file as hex, read to adopt and configure.

Every node of a group holds the same key (docs/heartbeat.md: it signs the
heartbeats; docs/firmware.md: it seals configs and gives the HTTP API's
token). The installer keeps it in one file, one line of hex, readable by its
owner only (the commands that read it warn when others may read or write
it); `loadmesh adopt` hands it to a node (under the node's adoption code),
`loadmesh put` seals configs and signs its PUTs with it, `get` derives the HTTP token from it,
`loadmesh node-files` writes it as a node keeps it.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

from loadmesh.node.store import MAX_KEY_BYTES, MIN_KEY_BYTES

from .jsonfile import in_file

NEW_KEY_BYTES = 32  # 256 bits, the strength of HMAC-SHA256: a longer key adds nothing


def write_new(path: Path, command: str = "key-new") -> None:
    """A fresh random key into a new file at path, as hex, mode 0600; FileExistsError if the file is there. What
    was done first with the temporary files of stopped writes in its folder is said on stderr (command: the
    loadmesh command, for the lines).

    Never over an existing file: that would lose the key a group's nodes hold,
    and a node keeps its key until it is reset to factory."""
    from . import durable

    key = os.urandom(NEW_KEY_BYTES)
    # Whole or not at all, also after a power cut: an empty key file where the group's key should be would be
    # the only copy lost, once its nodes hold it.
    for line in durable.write_new(path, (key.hex() + "\n").encode(), 0o600):
        print(f"loadmesh {command}: {line}", file=sys.stderr)


def read(path: Path) -> bytes:
    """The key in a key file; OSError, or ValueError saying what the file holds instead."""
    text = path.read_text()
    if text.startswith("LM1 "):
        raise ValueError("is a key as a node stores it (its first line, LM1 and a hash, is the store's): "
                         "give the hex on the line after it")
    digits = text.strip()
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        raise ValueError("is not a group key: a key file holds the key as one line of hex digits, "
                         "as loadmesh key-new writes it") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"holds a key of {len(key)} bytes: a group key has {MIN_KEY_BYTES} to {MAX_KEY_BYTES} "
                         f"(loadmesh key-new makes {NEW_KEY_BYTES})")
    return key


def read_warned(path: Path, command: str) -> bytes:
    """The key in path, as read() reads it (ValueError naming the file); first a warning on stderr if others than
    its owner may read or write it (command: the loadmesh command, for the warning's line)."""
    key = in_file(path, read)
    loose = open_to_others(path)
    if loose:
        print(f"loadmesh {command}: warning: {loose}", file=sys.stderr)
    return key


def open_to_others(path: Path) -> str:
    """Why the key file at path is open to others than its owner, and the fix ("" if it is not, or cannot be).

    Whoever reads the key commands the group's nodes, and whoever writes it
    can make the installer hand nodes a key of theirs. POSIX modes only: on
    Windows the bits say nothing of who may read the file."""
    if os.name == "nt":
        return ""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:  # read() read it a moment ago; gone now, nothing to say
        return ""
    if not mode & 0o077:
        return ""
    how = " and ".join(word for word, bits in (("readable", 0o044), ("writable", 0o022)) if mode & bits) or "open"
    return (f"{path}: the group key is {how} by others than you (mode {mode:04o}); whoever reads it commands the "
            f"group's nodes: chmod 600 {shlex.quote(str(path))}")


def token(key: bytes) -> str:
    """The bearer token of the group's HTTP APIs (for a GET), as the node computes it."""
    from loadmesh.node import httpapi

    return str(httpapi.token_for(key))  # typed as Any here: pyproject.toml, the mypy overrides
