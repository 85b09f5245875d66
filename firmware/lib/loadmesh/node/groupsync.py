"""Config sync on the node: adopt a newer config, find peers on another one, fetch theirs, merge meanwhile."""

import asyncio
import json

from loadmesh.core import configsync, groupconfig
from loadmesh.core.errors import FieldError

from .httpapi import read_exactly

# docs/safety.md ("Config", "Mismatch"). A config reaches a node three ways:
# PUT /config (the companion, or anyone with the token), a fetch from a peer
# whose heartbeats announce another config hash, or the store at boot. Each is
# the sealed transport (configsync): signed with the group key, so only a key
# holder can make one. A config is adopted when it wins (configsync.compare)
# over the adopted one; until every fresh peer announces the adopted config's
# hash, the node runs the conservative merge of every config it knows to be in
# use (its own and those its peers announce), announcing its adopted one.
#
# GET /config answers {"config": the adopted config, "tag": hex, "version",
# "announced"}: the tag is the sealed transport's HMAC over the config's
# canonical text, so a fetching node rebuilds the sealed bytes and checks them
# exactly as it checks a PUT. A fetch needs the peer's HTTP address, which the
# node's settings give (peers_http); a node without it only detects the
# mismatch (GET /status: config_mismatch), and waits for the companion's PUT.
#
# The node imports this module (and with it configsync and groupconfig) only
# when a config arrives or a peer announces another one, and forgets it
# afterwards: on an ESP32-sized heap the modules cost more than they are used.

# A peer's answer is bounded before it is held. The head is read in chunks
# into one buffer of at most FETCH_HEAD bytes (as the node's own server reads
# a request's, httpapi): asyncio's readline() on MicroPython grows its line
# without bound, and anything answering at a peer's address could make it
# take the heap. The body is judged from its Content-Length before one buffer
# of that length is made: a node's GET /config answers the config a PUT
# brought (at most the server's 8192-byte body, sealed) with its tag, the
# version and the hash, a little over the config's text. (20000 bytes, the
# bound before, could never be held on a node's heap: MemoryError even on an
# empty one, with a tick beside it.)
FETCH_HEAD = 1024  # bytes of a peer's answer head: status line and headers
FETCH_BYTES = 8448  # bytes of its body
_CHUNK = 256
RETRY_MS = 2000  # between two fetches of one announced hash


def unseal(pads: tuple[bytes, bytes], group: str | None, body: bytes) -> dict[str, object]:
    """The config of a PUT /config body (the sealed bytes, or their hex); FieldError names why not."""
    data = body
    if data[:len(configsync.SEALED_MAGIC)] != configsync.SEALED_MAGIC:
        try:
            data = bytes.fromhex(body.decode().strip())
        except (ValueError, UnicodeError):
            raise FieldError("config", "is neither sealed bytes nor their hex (loadmesh config-seal)") from None
    if group is None:
        # The first config: the node has no group yet. The body came from a
        # holder of the key (the token), and the tag is checked below.
        group = _peek_group(data)
    reason, config = configsync.open_sealed(pads, group, data)
    if config is None:
        raise FieldError("config", "refused: " + reason)
    return config


def _peek_group(data: bytes) -> str:
    try:
        raw = json.loads(bytes(data[len(configsync.SEALED_MAGIC) + 1:-32]))
    except (ValueError, UnicodeError):
        return ""
    group = raw.get("group") if isinstance(raw, dict) else None
    return group if isinstance(group, str) else ""


def answer(pads: tuple[bytes, bytes], config: dict[str, object] | None) -> object:
    """GET /config: the adopted config and its seal's tag, or null."""
    if config is None:
        return None
    sealed = configsync.seal(pads, config)
    return {"config": config, "tag": sealed[-32:].hex(), "version": config["version"],
            "announced": groupconfig.announced(config)}


def from_answer(pads: tuple[bytes, bytes], group: str, text: bytes) -> dict[str, object]:
    """The config in a peer's GET /config answer, checked as a sealed config; FieldError if it is not one."""
    try:
        raw = json.loads(text)
        config = raw["config"]
        tag = bytes.fromhex(raw["tag"])
        canonical = groupconfig.canonical(config)
    except Exception:  # ValueError, KeyError, TypeError: anything that is not such an answer
        raise FieldError("config", "the peer's answer is not a config") from None
    raw = None
    data = configsync.SEALED_MAGIC + bytes([configsync.SEALED_FORMAT]) + canonical.encode() + tag
    reason, checked = configsync.open_sealed(pads, group, data)
    if checked is None:
        raise FieldError("config", "the peer's config is refused: " + reason)
    return checked


async def fetch(host: str, port: int, token: str) -> bytes:
    """The body of a peer's GET /config; OSError or ValueError if there is none."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /config HTTP/1.0\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n")
        await writer.drain()
        # The head within FETCH_HEAD bytes, then the body in one buffer of its announced length.
        lines, rest = await _read_head(reader)
        if not lines[0].startswith(b"HTTP/1.0 200 "):
            raise ValueError("no 200 answer: " + repr(lines[0][:24]))
        length = -1
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if colon and name.strip().lower() == b"content-length":
                text = value.strip()
                length = int(text) if text.isdigit() and len(text) <= 9 else -1
        if not 0 <= length <= FETCH_BYTES:
            raise ValueError("answer without a Content-Length up to " + str(FETCH_BYTES) + " bytes")
        body = await read_exactly(reader, length, rest)
    finally:
        writer.close()
        await writer.wait_closed()
    if body is None:
        raise ValueError("answer shorter than its Content-Length")
    return body


async def _read_head(reader: asyncio.StreamReader) -> tuple[list[bytes], bytes]:
    """(the answer head's lines, the bytes read after it); ValueError if it is over FETCH_HEAD bytes or cut short."""
    head = bytearray()
    while True:
        end = head.find(b"\r\n\r\n")
        skip = 4
        if end < 0:
            end = head.find(b"\n\n")
            skip = 2
        if end >= 0:
            break
        if len(head) >= FETCH_HEAD:
            break
        chunk = await reader.read(_CHUNK)
        if not chunk:
            raise ValueError("answer cut short in its head")
        head += chunk
    if end < 0 or end > FETCH_HEAD:
        raise ValueError("answer head over " + str(FETCH_HEAD) + " bytes")
    return bytes(head[:end]).split(b"\n"), bytes(head[end + skip:])


def wins(config: dict[str, object], adopted: dict[str, object] | None) -> int:
    """1 if config wins over the adopted one (or none is), 0 if it is the same config, -1 if it loses."""
    if adopted is None:
        return 1
    return configsync.compare(config, adopted)


def announced(config: dict[str, object]) -> str:
    """The hash prefix heartbeats carry for config."""
    return groupconfig.announced(config)


def wanted(known: dict[str, dict[str, object]], tried_ms: dict[str, int], announced_by: dict[str, str],
           now_ms: int) -> list[tuple[str, str]]:
    """(announced hash, peer) for each unknown config a peer announces, not tried within RETRY_MS.

    Forgets the tries of configs no peer announces any more (else one entry per version, for good).
    """
    for hash_prefix in sorted(tried_ms):
        if hash_prefix not in announced_by:
            del tried_ms[hash_prefix]
    out = []
    for hash_prefix in sorted(announced_by):
        if hash_prefix in known:
            continue
        tried = tried_ms.get(hash_prefix)
        if tried is None or now_ms - tried >= RETRY_MS:
            out.append((hash_prefix, announced_by[hash_prefix]))
    return out


def merged(adopted: dict[str, object], known: dict[str, dict[str, object]],
           announced_by: dict[str, str]) -> tuple[list[str], dict[str, object] | None]:
    """(the hashes in use besides the adopted one, their conservative merge with it; None: the adopted alone).

    Forgets the known configs no peer announces any more.
    """
    for hash_prefix in sorted(known):
        if hash_prefix not in announced_by:
            del known[hash_prefix]
    in_use = sorted(known)
    if not in_use:
        return in_use, None
    configs = [adopted]
    for hash_prefix in in_use:
        configs.append(known[hash_prefix])
    return in_use, configsync.conservative(configs)
