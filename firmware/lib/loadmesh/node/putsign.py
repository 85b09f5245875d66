"""A PUT's signature to the node's HTTP API: HMAC-SHA256 under the group key of the request, bound to one node, one
boot of it and a counter, so that a request seen on the LAN cannot be sent again, to that node or to another of the
group (docs/firmware.md, "The HTTP API").

    Authorization: LoadMesh-HMAC boot=<boot_id>, n=<count>, mac=<hex>

mac is HMAC-SHA256 under the group key of MESSAGE_LABEL, then the method, the path, the node's member id, boot
and n in decimal and the body's SHA-256 in lowercase hex, each ended by a newline but the last. The node's id
comes to the client in the challenge (WWW-Authenticate: LoadMesh-HMAC node=<id>, boot=<boot_id>, n=<last>):
nodes of one group share the key, and two may run under one boot id (adopted in the same minute). The node
takes a signature only for its own id, its own boot id (the store never hands one out twice) and a count above
the last one it took this boot (kept in RAM: after a reboot every earlier signature names an old boot). The node
imports this module only for a PUT; the companion signs with it.
"""

import hashlib

from loadmesh.core import hmac256

SCHEME = "LoadMesh-HMAC"
MESSAGE_LABEL = b"loadmesh put v2\n"
# boot and n in at most ten digits: a boot id goes up to 2^30 - 1 (adopt --boot-floor), ten digits.
MAX_DIGITS = 10


def message(method: bytes, path: bytes, node: bytes, boot: int, count: int, body: bytes) -> bytes:
    """The bytes the mac signs."""
    digest: bytes = hashlib.sha256(body).digest()
    return (MESSAGE_LABEL + method + b"\n" + path + b"\n" + node + b"\n" + str(boot).encode() + b"\n"
            + str(count).encode() + b"\n" + digest.hex().encode())


def mac(pads: tuple[bytes, bytes], method: bytes, path: bytes, node: bytes, boot: int, count: int,
        body: bytes) -> bytes:
    """The mac of a request in lowercase hex (pads: the group key as hmac256.prepare gives it)."""
    return hmac256.digest(pads, message(method, path, node, boot, count, body)).hex().encode()


def header(pads: tuple[bytes, bytes], method: bytes, path: bytes, node: bytes, boot: int, count: int,
           body: bytes) -> str:
    """The Authorization header's value for a request."""
    return (SCHEME + " boot=" + str(boot) + ", n=" + str(count) + ", mac="
            + mac(pads, method, path, node, boot, count, body).decode())


def challenge(node: str, boot: int, count: int) -> str:
    """The WWW-Authenticate header's value: the node and the boot to sign for and the last count taken (sign with
    one more)."""
    return SCHEME + " node=" + node + ", boot=" + str(boot) + ", n=" + str(count)


def parse(value: bytes | None) -> tuple[int, int, bytes] | None:
    """(boot, n, mac) of an Authorization header's value, or None if it is not a signature of this form.

    The scheme's name is case-insensitive (RFC 9110, 11.1); the parameters are
    boot, n and mac, each once, in any order; boot and n decimal of at most
    MAX_DIGITS digits, mac 64 lowercase hex digits."""
    if value is None or value[:len(SCHEME) + 1].lower() != SCHEME.lower().encode() + b" ":
        return None
    boot = count = -1
    tag = b""
    for part in value[len(SCHEME) + 1:].split(b","):
        name, equals, text = part.strip().partition(b"=")
        if not equals:
            return None
        if name == b"mac":
            if tag or len(text) != 64:
                return None
            for byte in text:
                if not (0x30 <= byte <= 0x39 or 0x61 <= byte <= 0x66):  # 0-9, a-f
                    return None
            tag = text
            continue
        if not text or len(text) > MAX_DIGITS or not text.isdigit():
            return None
        if name == b"boot" and boot < 0:
            boot = int(text)
        elif name == b"n" and count < 0:
            count = int(text)
        else:
            return None
    if boot < 0 or count < 0 or not tag:
        return None
    return boot, count, tag


def parse_challenge(value: str | None) -> tuple[str, int, int] | None:
    """(node, boot, n) of a WWW-Authenticate header's value (challenge()), or None if it is not one (the
    companion's: the node never reads one)."""
    from loadmesh.core.errors import FieldError

    from .settings import member_id

    if value is None:
        return None
    scheme, _, rest = value.strip().partition(" ")
    first, comma, others = rest.partition(",")
    name, equals, node = first.strip().partition("=")
    if scheme.lower() != SCHEME.lower() or name != "node" or not equals or not comma:
        return None
    try:
        member_id(node, "node")
    except FieldError:
        return None
    parsed = parse((SCHEME + " " + others.strip() + ", mac=" + "0" * 64).encode())
    return None if parsed is None else (node, parsed[0], parsed[1])
