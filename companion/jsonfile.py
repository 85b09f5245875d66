"""The installer's JSON files, read as the node reads them, and what went wrong with one in words."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class _Constant(ValueError):
    """NaN, Infinity or -Infinity in the text (raised inside json.loads; loads says where)."""


def _no_constant(name: str) -> object:
    raise _Constant(name + " is not valid JSON")


class _KeyTwice(ValueError):
    """An object of the text names a key twice (raised inside json.loads; loads says where)."""


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) < len(pairs):
        raise _KeyTwice()
    return value


def loads(text: str, **options: Any) -> Any:  # what json.loads gives
    """json.loads(text, **options), and no key twice in one object, no NaN, Infinity or -Infinity;
    json.JSONDecodeError in jsontext's words.

    Both runtimes' json keep the last of a key named twice in one object,
    silently: the installer who edited the first would run the other. It is
    named as the node names one in a PUT /heating body (loadmesh.node.jsontext:
    keys compared as json decodes them). Text that is not JSON is named in the
    same words ("a comma before '}'", not json's "Expecting property name
    enclosed in double quotes"), the first fault in the text, at the line and
    column an editor shows, as json's own errors give them. NaN and Infinity
    are such faults: CPython's json takes them as floats, MicroPython's (the
    node's) refuses them, and json's parse_constant is told no position.
    """
    options.setdefault("parse_constant", _no_constant)
    try:
        return json.loads(text, object_pairs_hook=_once, **options)
    except (_KeyTwice, _Constant, json.JSONDecodeError) as exc:
        raise _in_words(text, exc) from None


def _in_words(text: str, exc: ValueError) -> json.JSONDecodeError:
    """The first fault of text, which json refused (exc), in jsontext's words at its line and column."""
    from loadmesh.node import jsontext

    if text.startswith("\ufeff"):  # what some editors put first; CPython's json refuses it ("Unexpected UTF-8 BOM")
        return json.JSONDecodeError("a byte order mark (U+FEFF) before the JSON: save the file as UTF-8 "
                                    "without one", text, 0)
    body = text.encode("utf-8", "surrogatepass")
    what, at = jsontext.first_fault(body)
    if not what or what.startswith("more than "):
        # No fault jsontext sees (it nests at most as deep as a node reads, and json reads deeper): json's own.
        if isinstance(exc, _KeyTwice):
            return json.JSONDecodeError("a key twice in one object", text, 0)
        if isinstance(exc, _Constant):  # jsontext sees every constant: not reached, but never without words
            return json.JSONDecodeError(str(exc), text, 0)
        assert isinstance(exc, json.JSONDecodeError)
        return exc
    # jsontext speaks of a PUT's body; here it is a file (or a scenario's text).
    what = what.replace("the body ", "the file ")
    if isinstance(exc, _Constant):
        # json read all before it: the first fault is the constant, which jsontext names by its first byte
        # ("no digit after '-'" for -Infinity).
        what += " (" + str(exc) + ")"
    return json.JSONDecodeError(what, text, len(body[:at].decode("utf-8", "surrogatepass")))


def read_json(path: Path) -> Any:  # what json.loads gives
    """A JSON file as MicroPython's json (the node's) reads it: NaN, Infinity and -Infinity refused, named where
    they are; and no key twice in one object (loads).

    CPython's json takes them as floats; MicroPython's refuses them. Every
    runtime's answer then starts from the same refusal, in the same bytes.
    """
    # As it is: newline="" keeps a CRLF file's "\r", so that the char offset of a fault is the file's, as an
    # editor counts it (read_text() would count one less per line before it); json takes "\r" as white space.
    with path.open(encoding="utf-8", newline="") as file:
        text = file.read()
    if text.startswith("LM1 "):
        refuse_stored()
    return loads(text)


def read_heating_body(path: Path) -> tuple[bytes, Any]:  # Any: what json.loads gives
    """A heating.json as a node takes it in PUT /heating, its bytes and what they hold: refused first as the node
    refuses text that is not JSON.

    The node checks the syntax itself (loadmesh.node.jsontext) because its
    json reads more than JSON, and keeps the body as it came; the same check
    here gives the installer the node's own message for the same file. The
    bytes are returned for the command to send or write: read once, so that
    they are the ones checked (a file read again may have changed since, and
    a pipe, `<(...)`, gives nothing the second time).
    """
    from loadmesh.node import jsontext

    body = path.read_bytes()
    if body.startswith(b"LM1 "):
        refuse_stored()
    try:
        jsontext.check(body, "heating")
    except ValueError as exc:  # a FieldError: the node's words, and for what some editors put first, the fix
        saved_as = _saved_as(body)
        if not saved_as:
            raise
        from loadmesh.core.errors import FieldError

        assert isinstance(exc, FieldError)
        raise FieldError(exc.field, exc.problem + " (" + saved_as + ")") from None
    return body, json.loads(body, parse_constant=_no_constant)


def _saved_as(body: bytes) -> str:
    """What an editor saved instead of plain UTF-8, and the fix, from the file's first bytes; "" if nothing known."""
    if body.startswith(b"\xef\xbb\xbf"):
        return "a byte order mark, U+FEFF: save the file as UTF-8 without one"
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):  # Windows Notepad's "Unicode"
        return "UTF-16 text: save the file as UTF-8"
    return ""


def refuse_stored() -> None:
    """For a file that starts as a node's stored files do (copied off a node or out of a simulator's folder: the
    store's envelope, docs/firmware.md, Persistence), which json would report only as "Expecting value"."""
    raise ValueError("is a file as a node stores it (its first line, LM1 and a hash, is the store's): "
                     "give the JSON on the lines after it")


def why(exc: OSError | ValueError) -> str:
    """What went wrong with a file, for a line that names its path already."""
    if isinstance(exc, UnicodeDecodeError):
        saved_as = _saved_as(exc.object) if isinstance(exc.object, bytes) else ""
        return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})" + (
            f": {saved_as}" if saved_as else "")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # str(exc) repeats the path: "[Errno 2] No such file or directory: 'x.json'"
    return str(exc)


def in_file(path: Path, read: Callable[[Path], T]) -> T:
    """read(path); ValueError naming the file and what is wrong with it (unreadable, not JSON, a field refused)."""
    try:
        return read(path)
    except (OSError, ValueError) as exc:  # a FieldError is a ValueError
        raise ValueError(f"{path}: {why(exc)}") from None
