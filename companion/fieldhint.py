"""A misspelt field named with the field it was meant to be: "hw.wdt_mss: is not a known field (did you mean wdt_ms?)".

The core and the node refuse a key they do not know (a misspelt setting must
not silently take its default), in words that name the key alone: the
installer then looks up the right spelling in the docs. The checks here know
more: the same parse, run again without the unknown key, either passes, and
its result (defaults filled in) holds every field that object takes, or
names a required field as missing, often the one misspelt. A name spelt
much like the unknown one (difflib, as Python's own "did you mean")
is offered once the parse is seen to take it in the unknown one's place.
Only on the way to an error message: nothing here runs on a node.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

UNKNOWN = ": is not a known field"
_STEP = re.compile(r"\.?([A-Za-z0-9_-]+)|\[([0-9]+)\]")


def hinted(message: str, raw: object, parse: Callable[[object], object], prefix: str = "") -> str:
    """message, and " (did you mean NAME?)" if it refuses an unknown field of raw that is a known one misspelt.

    parse: the check that refused raw (ValueError naming the field); prefix: the name its field paths start with
    for raw itself ("hw", "node", "heating"; "" for a group config's)."""
    try:
        name = _meant(message, raw, parse, prefix)
        kind = "" if name else _other_kind(message, raw, prefix)
    except Exception:  # a hint must never hide the error it adds to
        name, kind = None, ""
    if name:
        return message + f" (did you mean {name}?)"
    return message + (f" (the file looks like {kind})" if kind else "")


# Each kind of file an installer writes: the prefix its check names fields from, what it is, and the check's command.
_KINDS = (("hw", "an ESP32 node's hw.json, its wiring: loadmesh hw-check checks it"),
          ("node", "a node's node.json: loadmesh node-check checks it"),
          ("", "a group config: loadmesh config-hash checks it"),
          ("heating", "a valve or boiler node's heating.json: loadmesh heating-check checks it"))
HEATING_TOP = ("room", "rooms", "boiler", "load_sharing")  # heatsettings: a valve node's, and the boiler node's


def _top_keys(prefix: str) -> tuple[str, ...]:
    from loadmesh.core import groupconfig
    from loadmesh.node import hwconfig, settings

    keys: dict[str, tuple[str, ...]] = {"hw": hwconfig._TOP, "node": settings._KEYS, "": groupconfig._TOP_KEYS,
                                        "heating": HEATING_TOP}
    return keys[prefix]


def _other_kind(message: str, raw: object, prefix: str) -> str:
    """What raw is, if its top-level keys are another kind of file's and none this check's own: a file given to the
    wrong check ("hw.http_port: is not a known field" for a node.json), in words; "" if not so."""
    top_unknown = message.endswith(UNKNOWN) and len(_steps(message[:-len(UNKNOWN)], prefix)) == 1
    if not isinstance(raw, dict) or not (top_unknown or message.startswith("heating: has neither")):
        return ""
    owners: dict[str, list[str]] = {}  # each key: the kinds whose files have it
    for kind, _ in _KINDS:
        for key in _top_keys(kind):
            owners.setdefault(key, []).append(kind)
    counts = {kind: sum(1 for key in raw if owners.get(key) == [kind]) for kind, _ in _KINDS}
    best = max(counts.values())
    if best == 0 or counts[prefix] > 0 or list(counts.values()).count(best) > 1:
        return ""
    return next(words for kind, words in _KINDS if counts[kind] == best)


def _meant(message: str, raw: object, parse: Callable[[object], object], prefix: str) -> str | None:
    if not message.endswith(UNKNOWN):
        return None
    field = message[:-len(UNKNOWN)]
    steps = _steps(field, prefix)
    if not steps or not isinstance(steps[-1], str):
        return None
    parent_steps, unknown = steps[:-1], steps[-1]
    without = copy.deepcopy(raw)
    parent = _walk(without, parent_steps)
    if not isinstance(parent, dict) or unknown not in parent:
        return None
    value = parent.pop(unknown)
    candidates: list[str] = []
    try:
        result = parse(without)
    except ValueError as exc:
        # A required field missing from the same object ("hw.wifi.ssid: is missing: the network's name"): the one
        # the unknown name was likely meant to be.
        missing, _, problem = str(exc).partition(": ")
        missing_steps = _steps(missing, prefix)
        if (problem == "is missing" or problem.startswith("is missing:")) and missing_steps[:-1] == parent_steps \
                and isinstance(missing_steps[-1], str):
            candidates.append(missing_steps[-1])
    else:
        known = _walk(result, parent_steps)
        if isinstance(known, dict):
            candidates.extend(str(key) for key in known)
    # Compared in lower case: "SSID" is ssid misspelt as surely as "ssdi" is.
    lowered = {name.lower(): name for name in sorted(candidates) if name not in parent}
    for close in difflib.get_close_matches(unknown.lower(), list(lowered), n=3, cutoff=0.6):
        name = lowered[close]
        # Offered only if the parse takes the value under that name: no result key that is no field of the file.
        parent[name] = value
        try:
            parse(without)
        except ValueError as exc:
            if str(exc).startswith(_joined(prefix, parent_steps, name) + UNKNOWN):
                del parent[name]
                continue
        return name
    return None


def _steps(field: str, prefix: str) -> list[str | int]:
    """The keys and indexes of a field path as the checks name it ("hw.ct[1].pin"), the prefix dropped; [] if the
    path is not one of plain names (a quoted key: no hint)."""
    if prefix:
        if field == prefix:
            return []
        if not field.startswith(prefix + ".") and not field.startswith(prefix + "["):
            return []
        field = field[len(prefix) + 1:] if field[len(prefix)] == "." else field[len(prefix):]
    steps: list[str | int] = []
    at = 0
    while at < len(field):
        match = _STEP.match(field, at)
        if match is None or (at == 0 and field.startswith(".")):
            return []
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        at = match.end()
    return steps


def _walk(value: object, steps: list[str | int]) -> object:
    for step in steps:
        if isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
            continue
        if not (isinstance(value, dict) and isinstance(step, str) and step in value):
            return None
        value = value[step]
    return value


def _joined(prefix: str, steps: list[str | int], name: str) -> str:
    path = prefix
    for step in [*steps, name]:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else step)
    return path


def read_checked(path: Path, parse: Callable[[object], T], prefix: str = "") -> T:
    """parse(the JSON file at path), as jsonfile.read_json reads it; OSError, or ValueError naming the field (with a
    hint for a misspelt one), for jsonfile.in_file to name the file."""
    from .jsonfile import read_json

    return checked(read_json(path), parse, prefix)


def checked(raw: object, parse: Callable[[object], T], prefix: str = "") -> T:
    """parse(raw), raw as read_json read it; ValueError naming the field (with a hint for a misspelt one). For a
    command that keeps raw too (--write): the file read once, so what is written is what was checked."""
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(hinted(str(exc), raw, parse, prefix)) from None
