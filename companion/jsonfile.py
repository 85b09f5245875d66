"""The installer's JSON files, read as the node reads them, and what went wrong with one in words."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _no_constant(name: str) -> object:
    raise ValueError(name + " is not valid JSON")


class _KeyTwice(ValueError):
    """An object of the text names a key twice (raised inside json.loads; loads says where)."""


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) < len(pairs):
        raise _KeyTwice()
    return value


def loads(text: str, **options: Any) -> Any:  # what json.loads gives
    """json.loads(text, **options), and no key twice in one object: json.JSONDecodeError naming the key.

    Both runtimes' json keep the last of a key named twice in one object,
    silently: the installer who edited the first would run the other. It is
    named as the node names one in a PUT /heating body (loadmesh.node.jsontext:
    keys compared as json decodes them), at the line and column json's own
    errors give.
    """
    try:
        return json.loads(text, object_pairs_hook=_once, **options)
    except _KeyTwice:
        from loadmesh.node import jsontext

        body = text.encode()
        what, at = jsontext.first_fault(body)
        if not what.startswith("the key "):  # only past the node's 24 nested arrays and objects
            what, at = "a key twice in one object", 0
        raise json.JSONDecodeError(what, text, len(body[:at].decode())) from None


def read_json(path: Path) -> Any:  # what json.loads gives
    """A JSON file as MicroPython's json (the node's) reads it: NaN, Infinity and -Infinity refused; and no key
    twice in one object (loads).

    CPython's json takes them as floats; MicroPython's refuses them. Every
    runtime's answer then starts from the same refusal, in the same bytes.
    """
    text = path.read_text()
    if text.startswith("LM1 "):
        refuse_stored()
    return loads(text, parse_constant=_no_constant)


def read_heating(path: Path) -> Any:  # what json.loads gives
    """A heating.json as a node takes it in PUT /heating: refused first as the node refuses text that is not JSON.

    The node checks the syntax itself (loadmesh.node.jsontext) because its
    json reads more than JSON, and keeps the body as it came; the same check
    here gives the installer the node's own message for the same file.
    """
    from loadmesh.node import jsontext

    body = path.read_bytes()
    if body.startswith(b"LM1 "):
        refuse_stored()
    jsontext.check(body, "heating")
    return json.loads(body, parse_constant=_no_constant)


def refuse_stored() -> None:
    """For a file that starts as a node's stored files do (copied off a node or out of a simulator's folder: the
    store's envelope, docs/firmware.md, Persistence), which json would report only as "Expecting value"."""
    raise ValueError("is a file as a node stores it (its first line, LM1 and a hash, is the store's): "
                     "give the JSON on the lines after it")


def why(exc: OSError | ValueError) -> str:
    """What went wrong with a file, for a line that names its path already."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # str(exc) repeats the path: "[Errno 2] No such file or directory: 'x.json'"
    return str(exc)


def in_file(path: Path, read: Callable[[Path], T]) -> T:
    """read(path); ValueError naming the file and what is wrong with it (unreadable, not JSON, a field refused)."""
    try:
        return read(path)
    except (OSError, ValueError) as exc:  # a FieldError is a ValueError
        raise ValueError(f"{path}: {why(exc)}") from None
