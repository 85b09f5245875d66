"""Canonical JSON: one byte sequence for one value, on every runtime."""

# Neither json module can serve here: MicroPython's dumps has no sort_keys and
# formats floats with its own precision. Canonical output is what vectors,
# digests and config hashes compare, so it is written by hand: sorted keys,
# no spaces, ASCII only, and no floats at all (a float in a decision path is a
# bug on ESP32, where floats are 32-bit).

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def dumps(value: object) -> str:
    """Encode value as canonical JSON."""
    parts: list[str] = []
    _encode(value, parts, "$")
    return "".join(parts)


def _encode(value: object, parts: list[str], path: str) -> None:
    # bool before int: True is an int on both CPython and MicroPython.
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, str):
        _encode_str(value, parts)
    elif isinstance(value, (list, tuple)):
        items: list[str] = []
        for index, item in enumerate(value):
            if index:
                items.append(",")
            _encode(item, items, path + "[" + str(index) + "]")
        _close(parts, "[", items, "]")
    elif isinstance(value, dict):
        keys = list(value)
        for key in keys:
            if not isinstance(key, str):
                raise TypeError("canonical JSON: key " + repr(key) + " at " + path + " is not a string")
        keys.sort()
        members: list[str] = []
        for key in keys:
            if members:
                members.append(",")
            _encode_str(key, members)
            members.append(":")
            _encode(value[key], members, path + "." + key)
        _close(parts, "{", members, "}")
    else:
        raise TypeError("canonical JSON: " + type(value).__name__ + " at " + path + " is not allowed")


_JOIN_MAX = 1024  # characters


def _close(parts: list[str], opening: str, inner: list[str], closing: str) -> None:
    # A small container becomes one part, so the part list stays short; a big
    # one hands its parts up, so it is not copied again at every level. An
    # ESP32-sized heap has room for neither a part per token nor several
    # copies of a long answer.
    size = 0
    for piece in inner:
        size += len(piece)
    if size <= _JOIN_MAX:
        parts.append(opening + "".join(inner) + closing)
    else:
        parts.append(opening)
        parts.extend(inner)
        parts.append(closing)


def _encode_str(text: str, parts: list[str]) -> None:
    # Most strings need no escape: one part, not one per character (an
    # ESP32-sized heap cannot hold a part list as long as the output).
    for char in text:
        if not 0x20 <= ord(char) < 0x7F or char == '"' or char == "\\":
            break
    else:
        parts.append('"' + text + '"')
        return
    parts.append('"')
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F:
            escaped = _ESCAPES.get(char)
            parts.append(char if escaped is None else escaped)
        elif code < 0x10000:
            escaped = _ESCAPES.get(char)
            parts.append(escaped if escaped is not None else f"\\u{code:04x}")
        else:
            # Outside the BMP: a UTF-16 surrogate pair, as JSON requires.
            code -= 0x10000
            parts.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    parts.append('"')
