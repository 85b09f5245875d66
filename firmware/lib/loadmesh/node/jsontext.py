"""Strict JSON syntax (RFC 8259) of a body a node keeps as it came, no key twice in an object: the first fault
named, no value built."""

try:
    from micropython import const  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # CPython: importable on the host as well (loadmesh heating-check runs it)

    def const(value: int) -> int:  # type: ignore[misc,unused-ignore]
        return value


from loadmesh.core.errors import FieldError

# Why: PUT /heating and PUT /load_sharing keep the body as it came
# (heatsettings.save), and MicroPython's json reads far more than JSON: a
# trailing comma, a leading zero, `1.`, no comma between values, no colon, a
# non-string key, an unknown escape, a raw control character in a string. A
# node would keep a heating.json that `loadmesh heating-check` (CPython's
# strict json) refuses. The body is checked here first, with the same message
# on the node and in heating-check.
#
# Bytes in (no decoded text: one more copy of the body in the heap), one pass,
# no regex, no recursion and no stack: the open arrays and objects are the bits
# of one small int (1 an object, 0 an array, the innermost lowest), so MAX_DEPTH
# stays below the 31-bit small ints of the ESP32 port. A heating.json nests 5
# deep; deeper text is refused by name (CPython's json would recurse).
# Non-ASCII bytes are taken inside strings when they are UTF-8, as JSON text is;
# anywhere else they are refused. Offsets are 0-based, as CPython's json counts.
#
# RFC 8259 lets an object name a key twice (its names SHOULD be unique), and
# both runtimes' json keep the last silently: an installer who edits the first
# of two "min_off_ms" would run the other. A key twice in one object is
# refused, the keys compared as json decodes them ("a" and "\u0061"; "\u00e9",
# "\u00E9" and the character itself; "/" and "\/"; an astral character and
# its escaped surrogate pair, which CPython joins: MicroPython's json keeps
# those two apart, so refusing them errs on the side of the installer's
# check). Each key of the open objects is kept as two small ints: a 24-bit
# hash of its decoded text with its object's depth in the low 5 bits (below
# 2**29 through the multiply: no long int on the ESP32), and the offset of its
# opening quote; the hashes are also in a set, so a key costs one lookup
# however many keys its object has, and decoded bytes are built and compared
# only when a hash is there already (a key twice, or rarely two keys of one
# hash). A closed object's keys are dropped: what is kept is the keys of the
# objects open at one point, at most 24 deep (for an 8 KB heating.json, a few
# hundred bytes; for 8 KB of one object's keys, less than the dict json.loads
# then builds).

MAX_DEPTH = const(24)

_TAB = const(0x09)
_LF = const(0x0A)
_CR = const(0x0D)
_SPACE = const(0x20)
_QUOTE = const(0x22)
_PLUS = const(0x2B)
_COMMA = const(0x2C)
_MINUS = const(0x2D)
_DOT = const(0x2E)
_ZERO = const(0x30)
_NINE = const(0x39)
_COLON = const(0x3A)
_LBRACKET = const(0x5B)
_BACKSLASH = const(0x5C)
_RBRACKET = const(0x5D)
_LBRACE = const(0x7B)
_RBRACE = const(0x7D)
_LOWER_E = const(0x65)
_UPPER_E = const(0x45)
_LOWER_U = const(0x75)
_HASH_MASK = const(0xFFFFFF)  # 24 bits: the hash times 31 plus a byte stays below 2**29
_DEPTH_BITS = const(5)  # beside it, the depth of the key's object (at most MAX_DEPTH): a small int on the ESP32
_DEPTH_MASK = const(0x1F)
_SHOWN_KEY_BYTES = const(40)  # a key named twice is shown up to this long

# What the parser expects next.
_VALUE = const(0)  # a value: at the start, or after ':'
_FIRST_ITEM = const(1)  # after '[': a value or ']'
_ITEM = const(2)  # after ',' in an array: a value
_FIRST_KEY = const(3)  # after '{': a key or '}'
_KEY = const(4)  # after ',' in an object: a key
_AFTER = const(5)  # a value ended: ',' or the closing bracket, or the end of the body at the top

_ESCAPED = b'"\\/bfnrt'  # what may follow a backslash, besides u and four hex digits
_UNESCAPED = b'"\\/\x08\x0c\n\r\t'  # what each of those stands for


def check(body: bytes, name: str) -> None:
    """Nothing if body is one JSON text, no key twice in an object; else FieldError(name, "the body is not JSON:
    <what> at byte <n>")."""
    what, at = first_fault(body)
    if what:
        raise FieldError(name, "the body is not JSON: " + what + " at byte " + str(at))


def first_fault(body: bytes) -> tuple[str, int]:
    """("", 0) if body is one JSON text, no key twice in an object; else (what is wrong, its 0-based byte offset),
    the first fault."""
    end = len(body)
    kinds = 0  # the open arrays and objects, one bit each: 1 an object, 0 an array; the innermost lowest
    depth = 0
    key_hashes: list[int] = []  # the keys of the open objects (the innermost last): each key's hash (its
    key_starts: list[int] = []  # text's, and its object's depth), and where its opening quote is
    open_keys: set[int] = set()  # those hashes: one lookup per key, however many keys an object has
    state = _VALUE
    comma = 0  # where the last comma was: a comma before a closing bracket is named there
    i = 0
    while True:
        while i < end and body[i] in (_SPACE, _TAB, _LF, _CR):
            i += 1
        if i == end:
            if state == _AFTER and depth == 0:
                return "", 0
            if depth == 0:
                return "no value", i
            return "the body ends inside " + ("an object" if kinds & 1 else "an array"), i
        byte = body[i]
        if state == _AFTER:
            if depth == 0:
                return "more after the value", i
            closer = _RBRACE if kinds & 1 else _RBRACKET
            if byte == _COMMA:
                state = _KEY if kinds & 1 else _ITEM
                comma = i
                i += 1
            elif byte == closer:
                if kinds & 1:
                    _close_object(depth, open_keys, key_hashes, key_starts)
                kinds >>= 1
                depth -= 1
                i += 1
            elif byte in b'"[{-0123456789tfn':  # the start of another value
                return "a missing comma", i
            else:
                return _shown(byte) + " where ',' or " + ("'}'" if kinds & 1 else "']'") + " belongs", i
            continue
        if state in (_FIRST_KEY, _KEY):
            if byte == _RBRACE:
                if state == _KEY:
                    return "a comma before '}'", comma
                _close_object(depth, open_keys, key_hashes, key_starts)
                kinds >>= 1
                depth -= 1
                state = _AFTER
                i += 1
                continue
            if byte == _COMMA:
                return "a comma where a key belongs", i
            if byte != _QUOTE:
                return "a key that is not a string", i
            start = i
            i = _string_end(body, i, end)
            if i < 0:
                return _fault(body, ~i, end, True)
            # The key's hash, inline (a call per key costs as much): its bytes are its decoded text unless it
            # has an escape (find: a loop in C).
            text_hash = 0
            if body.find(b"\\", start, i) < 0:
                for k in range(start + 1, i - 1):
                    text_hash = (text_hash * 31 + body[k]) & _HASH_MASK
            else:
                text_hash = _escaped_hash(body, start + 1, i - 1)
            text_hash = text_hash << _DEPTH_BITS | depth
            if text_hash in open_keys and _named_before(body, start, i, text_hash, key_hashes, key_starts):
                return "the key \"" + _shown_key(body, start, i) + "\" twice in one object", start
            open_keys.add(text_hash)
            key_hashes.append(text_hash)
            key_starts.append(start)
            while i < end and body[i] in (_SPACE, _TAB, _LF, _CR):
                i += 1
            if i == end or body[i] != _COLON:
                return ("the body ends inside an object" if i == end else "a missing colon"), i
            state = _VALUE
            i += 1
            continue
        # A value: _VALUE, _FIRST_ITEM or _ITEM.
        if byte == _RBRACKET and state != _VALUE:
            if state == _ITEM:
                return "a comma before ']'", comma
            kinds >>= 1
            depth -= 1
            state = _AFTER
            i += 1
        elif byte in (_LBRACKET, _LBRACE):
            if depth == MAX_DEPTH:
                return "more than " + str(MAX_DEPTH) + " arrays and objects nested", i
            depth += 1
            if byte == _LBRACE:
                kinds = kinds << 1 | 1
                state = _FIRST_KEY
            else:
                kinds <<= 1
                state = _FIRST_ITEM
            i += 1
        elif byte == _QUOTE:
            i = _string_end(body, i, end)
            if i < 0:
                return _fault(body, ~i, end, True)
            state = _AFTER
        elif byte == _MINUS or _ZERO <= byte <= _NINE:
            i = _number_end(body, i, end)
            if i < 0:
                return _fault(body, ~i, end, False)
            state = _AFTER
        elif byte in b"tfn":
            word = b"true" if byte == 0x74 else b"false" if byte == 0x66 else b"null"
            for k in range(len(word)):
                if i + k == end or body[i + k] != word[k]:
                    return "not true, false or null", i
            i += len(word)
            state = _AFTER
        elif byte == _COMMA:
            return "a comma where a value belongs", i
        else:
            return _shown(byte) + " where a value belongs", i


# _string_end and _number_end give the offset just past what they read, or ~offset of the fault (negative, so
# no tuple is built per value); _fault names the fault at that offset again, once, from the bytes there.


def _string_end(body: bytes, i: int, end: int) -> int:
    """The end of the string whose opening quote is at i; ~offset of its first fault."""
    i += 1
    while i < end:
        byte = body[i]
        if byte == _QUOTE:
            return i + 1
        if byte < _SPACE:
            return ~i
        if byte == _BACKSLASH:
            if i + 1 == end:
                return ~end
            byte = body[i + 1]
            if byte == _LOWER_U:
                for k in range(i + 2, i + 6):
                    if k >= end or not _is_hex(body[k]):
                        return ~i
                i += 6
            elif byte in _ESCAPED:
                i += 2
            else:
                return ~i
        elif byte < 0x80:
            i += 1
        else:
            length = _utf8_length(body, i, end)
            if length == 0:
                return ~i
            i += length
    return ~end


def _number_end(body: bytes, i: int, end: int) -> int:
    """The end of the number that starts at i; ~offset of its first fault."""
    if body[i] == _MINUS:
        i += 1
    if i == end or not _ZERO <= body[i] <= _NINE:
        return ~i
    if body[i] == _ZERO:
        i += 1
        if i < end and _ZERO <= body[i] <= _NINE:
            return ~(i - 1)
    else:
        while i < end and _ZERO <= body[i] <= _NINE:
            i += 1
    if i < end and body[i] == _DOT:
        i += 1
        if i == end or not _ZERO <= body[i] <= _NINE:
            return ~i
        while i < end and _ZERO <= body[i] <= _NINE:
            i += 1
    if i < end and (body[i] == _LOWER_E or body[i] == _UPPER_E):
        i += 1
        if i < end and (body[i] == _PLUS or body[i] == _MINUS):
            i += 1
        if i == end or not _ZERO <= body[i] <= _NINE:
            return ~i
        while i < end and _ZERO <= body[i] <= _NINE:
            i += 1
    return i


def _fault(body: bytes, at: int, end: int, in_string: bool) -> tuple[str, int]:
    """What is wrong at offset at, where _string_end (in_string) or _number_end stopped (only for a refusal)."""
    if in_string:
        if at == end:
            return "the body ends inside a string", at
        byte = body[at]
        if byte < _SPACE:
            return "a control character in a string", at
        if byte >= 0x80:
            return "a byte that is not UTF-8 in a string", at
        escape = body[at + 1]  # byte is the backslash of an escape
        if escape == _LOWER_U:
            return "a \\u escape without four hex digits", at
        if _SPACE < escape < 0x7F:
            return "an unknown escape \\" + chr(escape), at
        return "a backslash before " + _shown(escape), at
    if at < end and body[at] == _ZERO:  # a digit follows it: _number_end stops at no other digit
        return "a leading zero", at
    before = body[at - 1]  # a number's fault is never at its first byte
    if before == _DOT:
        return "no digit after '.'", at
    if before == _MINUS and (at < 2 or body[at - 2] not in (_LOWER_E, _UPPER_E)):
        return "no digit after '-'", at
    return "no digit in the exponent", at


def _close_object(depth: int, open_keys: set[int], key_hashes: list[int], key_starts: list[int]) -> None:
    """Drop the keys of the innermost open object, at that depth, which closes (pop, not del of a slice:
    MicroPython builds the slice)."""
    while key_hashes and key_hashes[-1] & _DEPTH_MASK == depth:
        open_keys.discard(key_hashes.pop())  # a hash twice in the object (two keys): both go now
        key_starts.pop()


def _escaped_hash(body: bytes, start: int, end: int) -> int:
    """The hash of a key's text from start to end (its closing quote) that has an escape, as json decodes it
    (rare: the decoded bytes are built)."""
    text_hash = 0
    for byte in _decoded(body, start, end):
        text_hash = (text_hash * 31 + byte) & _HASH_MASK
    return text_hash


def _named_before(body: bytes, start: int, end: int, text_hash: int, key_hashes: list[int],
                  key_starts: list[int]) -> bool:
    """Whether the key whose quotes are at start and end - 1, of that hash (with its depth), is one of its
    object's keys before it, compared as json decodes them (only when one of them has that hash: rare, but for a
    key twice)."""
    text = None
    depth = text_hash & _DEPTH_MASK
    k = len(key_hashes) - 1
    while k >= 0 and key_hashes[k] & _DEPTH_MASK == depth:  # the object's keys, the last first
        if key_hashes[k] == text_hash:
            if text is None:
                text = _decoded(body, start + 1, end - 1)
            other = key_starts[k]
            if _decoded(body, other + 1, _string_end(body, other, len(body)) - 1) == text:
                return True
        k -= 1
    return False


def _decoded(body: bytes, i: int, end: int) -> bytearray:
    """A string's text from i to end (its closing quote), checked already, as UTF-8 after json decodes it.

    As CPython's json: an escaped surrogate pair is the one character; a lone surrogate stays one, in three
    bytes (no UTF-8 in the body spells it: it is refused there)."""
    text = bytearray()
    while i < end:
        byte = body[i]
        if byte != _BACKSLASH:
            text.append(byte)
            i += 1
            continue
        escape = body[i + 1]
        if escape != _LOWER_U:
            k = 0
            while _ESCAPED[k] != escape:  # MicroPython's bytes.index takes no int
                k += 1
            text.append(_UNESCAPED[k])
            i += 2
            continue
        point = _hex4(body, i + 2)
        i += 6
        if 0xD800 <= point <= 0xDBFF and i + 6 <= end and body[i] == _BACKSLASH and body[i + 1] == _LOWER_U:
            low = _hex4(body, i + 2)
            if 0xDC00 <= low <= 0xDFFF:
                point = 0x10000 + ((point - 0xD800) << 10) + low - 0xDC00
                i += 6
        if point < 0x80:
            text.append(point)
        elif point < 0x800:
            text.append(0xC0 | point >> 6)
            text.append(0x80 | point & 0x3F)
        elif point < 0x10000:
            text.append(0xE0 | point >> 12)
            text.append(0x80 | point >> 6 & 0x3F)
            text.append(0x80 | point & 0x3F)
        else:
            text.append(0xF0 | point >> 18)
            text.append(0x80 | point >> 12 & 0x3F)
            text.append(0x80 | point >> 6 & 0x3F)
            text.append(0x80 | point & 0x3F)
    return text


def _hex4(body: bytes, i: int) -> int:
    """The value of the four hex digits at i (checked already)."""
    value = 0
    for k in range(i, i + 4):
        byte = body[k] | 0x20  # a letter in lower case; digits keep their value
        value = value << 4 | (byte - _ZERO if byte <= _NINE else byte - 0x61 + 10)
    return value


def _shown_key(body: bytes, start: int, end: int) -> str:
    """The key whose quotes are at start and end - 1 as it is spelled there, cut short if long (only for a
    refusal)."""
    cut = end - 1
    if cut - start - 1 > _SHOWN_KEY_BYTES:
        cut = start + 1 + _SHOWN_KEY_BYTES
        while 0x80 <= body[cut] <= 0xBF:  # not inside a UTF-8 character
            cut -= 1
    text = str(bytes(body[start + 1:cut]), "utf-8")
    return text if cut == end - 1 else text + "..."


def _is_hex(byte: int) -> bool:
    return _ZERO <= byte <= _NINE or 0x41 <= byte <= 0x46 or 0x61 <= byte <= 0x66


def _utf8_length(body: bytes, i: int, end: int) -> int:
    """The length of the UTF-8 sequence of a non-ASCII character at i (2 to 4); 0 if it is not one.

    RFC 3629: no overlong form, no surrogate, nothing above U+10FFFF."""
    lead = body[i]
    if 0xC2 <= lead <= 0xDF:
        length, low, high = 2, 0x80, 0xBF
    elif 0xE0 <= lead <= 0xEF:
        length = 3
        low = 0xA0 if lead == 0xE0 else 0x80
        high = 0x9F if lead == 0xED else 0xBF
    elif 0xF0 <= lead <= 0xF4:
        length = 4
        low = 0x90 if lead == 0xF0 else 0x80
        high = 0x8F if lead == 0xF4 else 0xBF
    else:
        return 0
    if i + length > end or not low <= body[i + 1] <= high:
        return 0
    for k in range(i + 2, i + length):
        if not 0x80 <= body[k] <= 0xBF:
            return 0
    return length


def _shown(byte: int) -> str:
    """A byte as a message shows it: 'x' when printable ASCII, else its value in hex."""
    if _SPACE < byte < 0x7F:
        return "'" + chr(byte) + "'"
    return "byte 0x" + "0123456789abcdef"[byte >> 4] + "0123456789abcdef"[byte & 15]
