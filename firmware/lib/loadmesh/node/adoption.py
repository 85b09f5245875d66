"""Adoption: an unadopted node takes its group key and identity from whoever holds its one-time code."""

import json
import os

from loadmesh.core import canon, hmac256
from loadmesh.core import fieldcheck as fc
from loadmesh.core.errors import FieldError

from . import settings
from .store import ADOPTION_CODE, Store

# A node without a group key makes a one-time adoption code (16 random bytes)
# at its first boot, keeps it in its store (so that it survives reboots until
# used) and prints it on its console: the installer reads it there (serial,
# or the label a production line prints from it). Whoever holds the code can
# adopt the node, once, over its HTTP API:
#
#   PUT /adopt   {"node": member id, "nonce": 16 bytes hex, "key": the group
#                 key (16 to 64 bytes) xor a key stream, hex, "boot_floor": n,
#                 "settings": node.json without "id" (optional), "tag": hex}
#
# tag = HMAC-SHA256(code, TAG_LABEL + canonical JSON of the body without
# "tag"); key stream = HMAC-SHA256(code, STREAM_LABEL + nonce + counter byte)
# for counter 1, 2 (as many 32-byte blocks as the key needs). The code
# authenticates the request and keeps the key secret on the way (the LAN sees
# only the xor); the nonce keeps two requests with the same code from sharing
# a key stream. The tag is checked before anything else of the request is
# used. The node then writes node.json, raises its boot counter above
# boot_floor (a re-adopted node whose flash was wiped must not reuse boot ids
# its peers have seen: docs/heartbeat.md), writes the key, and deletes the
# code: the next adoption needs a factory reset (the key removed) and a new
# code. The first config then comes by PUT /config with the token the key
# gives, as every later one does.
#
# The other path needs no network: an installer who flashes the node writes
# key, node.json and config.json into its file system (the store's format),
# as the simulator does for its nodes. A node that booted unadopted before
# keeps the code it printed then; the runtime deletes it at the first boot
# with a key (as PUT /adopt does), so that a factory reset makes a new one
# rather than bringing back a code that was shown.

CODE_FILE = ADOPTION_CODE
CODE_BYTES = 16
NONCE_BYTES = 16
TAG_LABEL = b"loadmesh adopt v1\n"
STREAM_LABEL = b"loadmesh adopt key v1\n"
MAX_BOOT_ID = (1 << 30) - 1
_KEYS = ("node", "nonce", "key", "boot_floor", "settings", "tag")


def code(store: Store) -> bytes:
    """This node's adoption code: the one kept in the store, else a new one, kept before it is shown."""
    payload = store.read(CODE_FILE)
    if payload is not None and len(payload) == 2 * CODE_BYTES:
        try:
            return bytes.fromhex(payload.decode())
        except ValueError:
            pass
    made: bytes = os.urandom(CODE_BYTES)
    store.write(CODE_FILE, made.hex().encode())
    return made


def key_stream(code_bytes: bytes, nonce: bytes, size: int) -> bytes:
    """size bytes of the key stream for one request."""
    out = b""
    counter = 1
    while len(out) < size:
        out += hmac256.hmac_sha256(code_bytes, STREAM_LABEL + nonce + bytes([counter]))
        counter += 1
    return out[:size]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes([data[index] ^ stream[index] for index in range(len(data))])


def _tag(code_bytes: bytes, body: dict[str, object]) -> bytes:
    return hmac256.hmac_sha256(code_bytes, TAG_LABEL + canon.encode(body))


def make_request(code_bytes: bytes, node: str, key: bytes, boot_floor: int, node_settings: dict[str, object],
                 nonce: bytes) -> bytes:
    """The body of PUT /adopt (what the companion or the installer's tool sends)."""
    body: dict[str, object] = {"node": node, "nonce": nonce.hex(),
                               "key": _xor(key, key_stream(code_bytes, nonce, len(key))).hex(),
                               "boot_floor": boot_floor, "settings": node_settings}
    body["tag"] = _tag(code_bytes, body).hex()
    return canon.dumps(body).encode()


def open_request(code_bytes: bytes, data: bytes) -> tuple[str, bytes, int, dict[str, object]]:
    """(node id, group key, boot floor, settings with the id) from a PUT /adopt body; FieldError if refused."""
    try:
        raw = json.loads(data)
    except ValueError:
        raise FieldError("adopt", "the body is not JSON") from None
    top = fc.obj(raw, "adopt")
    fc.only(top, _KEYS, "adopt")
    tag = _hex(top.get("tag"), "adopt.tag", 32, 32)
    unsigned = {}
    for name in top:
        if name != "tag":
            unsigned[name] = top[name]
    try:
        expected = _tag(code_bytes, unsigned)
    except (TypeError, ValueError):  # a float or another value canonical JSON cannot carry
        raise FieldError("adopt", "the body holds a value canonical JSON cannot carry") from None
    if not hmac256.equal(expected, tag):
        raise FieldError("adopt.tag", "does not match this node's adoption code")
    # From here on the body comes from the code's holder.
    node = settings.member_id(top.get("node"), "adopt.node")
    nonce = _hex(top.get("nonce"), "adopt.nonce", NONCE_BYTES, NONCE_BYTES)
    sealed_key = _hex(top.get("key"), "adopt.key", 16, 64)
    key = _xor(sealed_key, key_stream(code_bytes, nonce, len(sealed_key)))
    boot_floor = fc.int_field(top, "boot_floor", "adopt", 0, MAX_BOOT_ID - 1, 0)
    given = fc.obj(top.get("settings", {}), "adopt.settings")
    if "id" in given:
        raise FieldError("adopt.settings.id", "is the request's node")
    merged = dict(given)
    merged["id"] = node
    return node, key, boot_floor, settings.parse(merged)


def _hex(value: object, path: str, low: int, high: int) -> bytes:
    if not isinstance(value, str):
        raise FieldError(path, fc.describe(value) + " is not hex")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise FieldError(path, "is not hex") from None
    if not low <= len(data) <= high:
        raise FieldError(path, "has " + str(len(data)) + " bytes; " + str(low) + ".." + str(high) + " are needed")
    return data
