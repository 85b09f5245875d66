"""The group key in the installer's hands: made once per group, kept in a file as hex, read to adopt and configure.

Every node of a group holds the same key (docs/heartbeat.md: it signs the
heartbeats; docs/firmware.md: it seals configs and gives the HTTP API's
token). The installer keeps it in one file, one line of hex, readable by its
owner only; `loadmesh adopt` hands it to a node (under the node's adoption
code), `loadmesh put` signs with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from loadmesh.node.store import MAX_KEY_BYTES, MIN_KEY_BYTES

NEW_KEY_BYTES = 32  # 256 bits, the strength of HMAC-SHA256: a longer key adds nothing


def write_new(path: Path) -> None:
    """A fresh random key into a new file at path, as hex, mode 0600; FileExistsError if the file is there.

    Never over an existing file: that would lose the key a group's nodes hold,
    and a node keeps its key until it is reset to factory."""
    key = os.urandom(NEW_KEY_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key.hex() + "\n")


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


def token(key: bytes) -> str:
    """The bearer token of the group's HTTP APIs, as the node computes it."""
    from loadmesh.node import httpapi

    return str(httpapi.token_for(key))  # typed as Any here: pyproject.toml, the mypy overrides
