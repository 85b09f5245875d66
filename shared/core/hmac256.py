"""HMAC-SHA256 (RFC 2104) on hashlib.sha256 alone, and a constant-time compare."""

import hashlib

# MicroPython has no hmac module, and its sha256 objects cannot be copied, so
# the key is prepared once into its two padded blocks and each tag costs two
# fresh hash objects. The padded keys are secrets: never log or publish them.

BLOCK_BYTES = 64  # SHA-256's block size
DIGEST_BYTES = 32


def prepare(key: bytes) -> tuple[bytes, bytes]:
    """The (inner, outer) padded key blocks for key, as RFC 2104 defines them."""
    if len(key) > BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    inner = bytearray(BLOCK_BYTES)
    outer = bytearray(BLOCK_BYTES)
    for index in range(BLOCK_BYTES):
        byte = key[index] if index < len(key) else 0
        inner[index] = byte ^ 0x36
        outer[index] = byte ^ 0x5C
    return bytes(inner), bytes(outer)


def digest(pads: tuple[bytes, bytes], message: bytes | bytearray | memoryview) -> bytes:
    """HMAC-SHA256 of message under prepared pads (32 bytes)."""
    inner = hashlib.sha256(pads[0])
    inner.update(message)
    outer = hashlib.sha256(pads[1])
    outer.update(inner.digest())
    tag: bytes = outer.digest()
    return tag


def hmac_sha256(key: bytes, message: bytes | bytearray | memoryview) -> bytes:
    """HMAC-SHA256 of message under key (32 bytes)."""
    return digest(prepare(key), message)


def equal(a: bytes | bytearray | memoryview, b: bytes | bytearray | memoryview) -> bool:
    """Whether a and b hold the same bytes, in time independent of where they differ."""
    # Lengths are public (the tag length is fixed by the format); the contents
    # are compared without an early exit so that timing reveals nothing of them.
    if len(a) != len(b):
        return False
    difference = 0
    for index in range(len(a)):
        difference |= a[index] ^ b[index]
    return difference == 0
