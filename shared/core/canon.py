"""Canonical JSON: one byte sequence for one value, on every runtime."""

# Neither json module can serve here: MicroPython's dumps has no sort_keys and
# formats floats with its own precision. Canonical output is what vectors,
# digests and config hashes compare, so it is written by hand: sorted keys,
# no spaces, ASCII only, and no floats at all (a float in a decision path is a
# bug on ESP32, where floats are 32-bit).
#
# Each value becomes one string and a container joins its children's strings:
# the pieces alive at once are one container's children, never a long list of
# fragments, which matters on a 12K-word heap that may be fragmented.

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
    return _encode(value, "$")


def _encode(value: object, path: str) -> str:
    # bool before int: True is an int on both CPython and MicroPython.
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            items.append(_encode(item, path + "[" + str(index) + "]"))
        return "[" + ",".join(items) + "]"
    if isinstance(value, dict):
        keys = list(value)
        for key in keys:
            if not isinstance(key, str):
                raise TypeError("canonical JSON: key " + repr(key) + " at " + path + " is not a string")
        keys.sort()
        members = []
        for key in keys:
            members.append(_encode_str(key) + ":" + _encode(value[key], path + "." + key))
        return "{" + ",".join(members) + "}"
    raise TypeError("canonical JSON: " + type(value).__name__ + " at " + path + " is not allowed")


def _encode_str(text: str) -> str:
    # Ids, reasons and field names need no escaping: they pass as they are.
    for char in text:
        if not " " <= char <= "~" or char == '"' or char == "\\":
            break
    else:
        return '"' + text + '"'
    parts = ['"']
    for char in text:
        code = ord(char)
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            parts.append(escaped)
        elif 0x20 <= code < 0x7F:
            parts.append(char)
        elif code < 0x10000:
            parts.append(f"\\u{code:04x}")
        else:
            # Outside the BMP: a UTF-16 surrogate pair, as JSON requires.
            code -= 0x10000
            parts.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    parts.append('"')
    return "".join(parts)
