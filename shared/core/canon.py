"""Canonical JSON: one byte sequence for one value, on every runtime."""

# Neither json module can serve here: MicroPython's dumps has no sort_keys and
# formats floats with its own precision. Canonical output is what vectors,
# digests and config hashes compare, so it is written by hand: sorted keys,
# no spaces, ASCII only, and no floats at all (a float in a decision path is a
# bug on ESP32, where floats are 32-bit).
#
# Memory: a node's GET /status is this text, made on a 12K-word heap where
# little is left in one piece. encode() measures the text first (_size), then
# writes it into one buffer of exactly that size (_write) and hands over that
# buffer: the answer once, which a socket or a file takes as it is. dumps()
# makes a str of it: the buffer and its text at once, twice the answer.
# Joining a part per token took ten times the answer (a 1.9 KB /status
# needed 20 KB free: a small string costs 64 bytes on a 64-bit host, 32 on
# an ESP32). Only a value that has no canonical form is walked a third time
# (_refuse), for the path its error names.

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_QUOTE = 0x22
_COMMA = 0x2C
_COLON = 0x3A


class _Unencodable(Exception):
    """A value with no canonical form: encode() finds where (_refuse) and raises TypeError naming it."""


def encode(value: object) -> bytearray:
    """value's canonical JSON (ASCII) in one buffer of its exact size; TypeError (naming the path) for what has no
    canonical form."""
    try:
        size = _size(value)
    except _Unencodable:
        _refuse(value, "$")  # raises, naming where
        raise TypeError("canonical JSON: no canonical form") from None
    buffer = bytearray(size)
    _write(value, buffer, 0)
    return buffer


def dumps(value: object) -> str:
    """Encode value as canonical JSON text; TypeError (naming the path) for what has no canonical form."""
    return encode(value).decode()


def _size(value: object) -> int:
    """The length of value's canonical text."""
    # bool before int: True is an int on both CPython and MicroPython.
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    if isinstance(value, int):
        return len(str(value))
    if isinstance(value, str):
        return _str_size(value)
    if isinstance(value, (list, tuple)):
        total = 2 + len(value) - 1 if value else 2  # brackets and commas
        for item in value:
            total += _size(item)
        return total
    if isinstance(value, dict):
        total = 2 + 2 * len(value) - 1 if value else 2  # braces, colons and commas
        for key in value:
            if not isinstance(key, str):
                raise _Unencodable()
            total += _str_size(key) + _size(value[key])
        return total
    raise _Unencodable()


def _plain(data: bytes, length: int) -> bool:
    """Whether a text of length characters, encoded as data, needs no escape (its bytes, not its characters, are
    looked at: MicroPython makes a string of each character an iteration yields).

    Callers encode with "surrogatepass": CPython's json reads "\\ud800" as a lone surrogate, which a plain
    encode() refuses (UnicodeEncodeError) where MicroPython, whose strings are not checked, writes \\ud800;
    passed through, it is three bytes for one character, so it is escaped as every other non-ASCII one."""
    if len(data) != length:
        return False  # beyond ASCII
    for byte in data:  # noqa: SIM110 (all() of a generator: a generator object on the heap, for each string)
        if byte < 0x20 or byte >= 0x7F or byte == 0x22 or byte == 0x5C:
            return False
    return True


def _str_size(text: str) -> int:
    total = 2 + len(text)
    if _plain(text.encode("utf-8", "surrogatepass"), len(text)):
        return total
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F:
            if char == '"' or char == "\\":
                total += 1
        elif code >= 0x10000:
            total += 11  # a UTF-16 surrogate pair, as JSON requires: two \uXXXX
        elif char in _ESCAPES:
            total += 1
        else:
            total += 5  # \uXXXX
    return total


def _put(buffer: bytearray, offset: int, text: str) -> int:
    """Write ASCII text at offset; the offset after it."""
    end = offset + len(text)
    buffer[offset:end] = text.encode()
    return end


def _write(value: object, buffer: bytearray, offset: int) -> int:
    """Write value's canonical text at offset; the offset after it."""
    if value is None:
        return _put(buffer, offset, "null")
    if value is True:
        return _put(buffer, offset, "true")
    if value is False:
        return _put(buffer, offset, "false")
    if isinstance(value, int):
        return _put(buffer, offset, str(value))
    if isinstance(value, str):
        return _write_str(value, buffer, offset)
    if isinstance(value, (list, tuple)):
        buffer[offset] = 0x5B  # [
        offset += 1
        for index in range(len(value)):
            if index:
                buffer[offset] = _COMMA
                offset += 1
            offset = _write(value[index], buffer, offset)
        buffer[offset] = 0x5D  # ]
        return offset + 1
    assert isinstance(value, dict)
    keys = list(value)
    keys.sort()
    buffer[offset] = 0x7B  # {
    offset += 1
    for index in range(len(keys)):
        if index:
            buffer[offset] = _COMMA
            offset += 1
        key = keys[index]
        offset = _write_str(key, buffer, offset)
        buffer[offset] = _COLON
        offset = _write(value[key], buffer, offset + 1)
    buffer[offset] = 0x7D  # }
    return offset + 1


def _write_str(text: str, buffer: bytearray, offset: int) -> int:
    buffer[offset] = _QUOTE
    offset += 1
    # Most strings need no escape: written in one piece, not a character at a time.
    data = text.encode("utf-8", "surrogatepass")
    if _plain(data, len(text)):
        end = offset + len(data)
        buffer[offset:end] = data
        buffer[end] = _QUOTE
        return end + 1
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F:
            escaped = _ESCAPES.get(char)
            if escaped is None:
                buffer[offset] = code
                offset += 1
            else:
                offset = _put(buffer, offset, escaped)
        elif code < 0x10000:
            escaped = _ESCAPES.get(char)
            offset = _put(buffer, offset, escaped if escaped is not None else f"\\u{code:04x}")
        else:
            # Outside the BMP: a UTF-16 surrogate pair, as JSON requires.
            code -= 0x10000
            offset = _put(buffer, offset, f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    buffer[offset] = _QUOTE
    return offset + 1


def _refuse(value: object, path: str) -> None:
    """Raise TypeError for the first thing in value (in the order it would be written) with no canonical form."""
    if value is None or value is True or value is False or isinstance(value, (int, str)):
        return
    if isinstance(value, (list, tuple)):
        for index in range(len(value)):
            _refuse(value[index], path + "[" + str(index) + "]")
        return
    if isinstance(value, dict):
        keys = list(value)
        for key in keys:
            if not isinstance(key, str):
                raise TypeError("canonical JSON: key " + repr(key) + " at " + path + " is not a string")
        keys.sort()
        for key in keys:
            _refuse(value[key], path + "." + key)
        return
    raise TypeError("canonical JSON: " + type(value).__name__ + " at " + path + " is not allowed")
