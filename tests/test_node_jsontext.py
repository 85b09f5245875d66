"""The strict JSON syntax check of a body a node keeps (loadmesh.node.jsontext), on every runtime that runs it."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadmesh.companion.sim.runner import free_port, http_token
from loadmesh.core import groupconfig
from loadmesh.core.errors import FieldError
from loadmesh.node import jsontext
from loadmesh.node.store import Store

from . import mpnode
from .test_node_adoption import NodeRun

# (body, the fault named, its byte offset): first what MicroPython 1.25's json takes and JSON does not.
FAULTS = [
    (b"[1,2,]", "a comma before ']'", 4),
    (b'{"a":1,}', "a comma before '}'", 6),
    (b"[01]", "a leading zero", 1),
    (b"[-01]", "a leading zero", 2),
    (b"[1.]", "no digit after '.'", 3),
    (b"[1 2]", "a missing comma", 3),
    (b'{"a" 1}', "a missing colon", 5),
    (b"[1,,2]", "a comma where a value belongs", 3),
    (b"[,]", "a comma where a value belongs", 1),
    (b'{"a":1 "b":2}', "a missing comma", 7),
    (b"{1:2}", "a key that is not a string", 1),
    (b'{"a":1,,}', "a comma where a key belongs", 7),
    (b'["a\\q"]', "an unknown escape \\q", 3),
    (b'["a\x01"]', "a control character in a string", 3),
    (b'["a\tb"]', "a control character in a string", 3),
    # What it refuses as well.
    (b"[NaN]", "'N' where a value belongs", 1),
    (b"-Infinity", "no digit after '-'", 1),
    (b"+1", "'+' where a value belongs", 0),
    (b".5", "'.' where a value belongs", 0),
    (b"0x10", "more after the value", 1),
    (b'{"a":1} {}', "more after the value", 8),
    (b"[tru]", "not true, false or null", 1),
    (b"1e+", "no digit in the exponent", 3),
    (b'["\\u12g4"]', "a \\u escape without four hex digits", 2),
    (b'["\\\n"]', "a backslash before byte 0x0a", 2),
    (b'["\xff"]', "a byte that is not UTF-8 in a string", 2),
    (b'["\xc3("]', "a byte that is not UTF-8 in a string", 2),  # a lead byte without its continuation
    (b'["\xc0\xaf"]', "a byte that is not UTF-8 in a string", 2),  # an overlong '/'
    (b'["\xed\xa0\x80"]', "a byte that is not UTF-8 in a string", 2),  # a surrogate, encoded
    (b"\xef\xbb\xbf{}", "byte 0xef where a value belongs", 0),  # a byte order mark
    (b"[\xc3\xa9]", "byte 0xc3 where a value belongs", 1),  # UTF-8 outside a string
    (b"", "no value", 0),
    (b" \r\n", "no value", 3),
    (b'{"a": [1, 2', "the body ends inside an array", 11),
    (b'{"a":', "the body ends inside an object", 5),
    (b'{"a": "b\\"}', "the body ends inside a string", 11),
    # JSON, but a key twice in one object (both runtimes' json keep the last, silently): named at the second, as
    # spelled there; keys compared as json decodes them.
    (b'{"a": 1, "a": 2}', 'the key "a" twice in one object', 9),
    (b'{"a": {"b": 1}, "c": [{"b": 2}, {"b": 3}], "b": 4, "c": 5}', 'the key "c" twice in one object', 51),
    (b'{"a": 1, "b": {"a": {}, "a": {}}}', 'the key "a" twice in one object', 24),
    (b'{"a": 1, "\\u0061": 2}', 'the key "\\u0061" twice in one object', 9),
    (b'{"\\u00e9": 1, "\\u00E9": 2}', 'the key "\\u00E9" twice in one object', 14),
    (b'{"caf\xc3\xa9": 1, "caf\\u00e9": 2}', 'the key "caf\\u00e9" twice in one object', 13),
    (b'{"\\ud83d\\udd25": 1, "\xf0\x9f\x94\xa5": 2}', 'the key "\U0001f525" twice in one object', 20),
    (b'{"a/b": 1, "a\\/b": 2}', 'the key "a\\/b" twice in one object', 11),
    (b'{"\\ud800": 1, "\\uD800": 2}', 'the key "\\uD800" twice in one object', 14),
    (b'{"": 1, "": 2}', 'the key "" twice in one object', 8),
    (b'{"' + b"x" * 39 + b'\xc3\xa9": 1, "' + b"x" * 39 + b'\xc3\xa9": 2}',  # a long key: cut short, between characters
     'the key "' + "x" * 39 + '..." twice in one object', 49),
    (b"[" * 25 + b"]" * 25, "more than 24 arrays and objects nested", 24),
]

# JSON: whitespace of every kind, escapes, UTF-8 of two to four bytes, numbers in every form, the deepest nesting.
VALID = [
    b' \t\r\n{ "room" :\t{"mode":"off", "a\\"b\\\\c\\/d\\b\\f\\n\\r\\t": [ ] } }\r\n',
    b'["caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\xa5", "\xf4\x8f\xbf\xbf", "\\u00e9\\uD83D\\uDD25", "\\ud800"]',
    b"[0, -0, 10, -12, 0.5, -1.25e-3, 1E+2, 3e0, 1e400]",
    b"[true, false, null, {}, [], \"\"]",
    b"[" * 24 + b"]" * 24,
    b"7",
]


def _cpython_takes(body: bytes) -> bool:
    """Whether CPython's json (strict: no NaN or Infinity) reads body as UTF-8 JSON text, no key twice in an
    object (the keys as it decodes them)."""
    def no_constant(name: str) -> object:
        raise ValueError(name)

    def once(pairs: list[tuple[str, object]]) -> object:
        if len({key for key, _value in pairs}) < len(pairs):
            raise ValueError("a key twice")
        return dict(pairs)

    try:
        json.loads(body.decode("utf-8"), parse_constant=no_constant, object_pairs_hook=once)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return True


def _mutants(count: int) -> list[bytes]:
    """JSON texts of every kind of value, laid out in several ways, most with one edit at random (a fixed seed):
    a piece of JSON or a byte around it inserted, a byte dropped or replaced."""
    chosen = random.Random(19)
    strings = ["", "a", "caf\u00e9", "\u20ac\U0001f525", 'q"b\\s/', "\t\n\x01", "\ud7ff\ue000"]
    numbers: list[object] = [0, -1, 12, 1.5, -0.25, 1e21, 3e-7, 123456789012345678901234567890]

    def value(depth: int) -> object:
        kind = chosen.randrange(6 if depth < 4 else 4)
        if kind == 0:
            return chosen.choice(numbers)
        if kind == 1:
            return chosen.choice(strings)
        if kind == 2:
            return chosen.choice([True, False, None])
        if kind == 3:
            return chosen.choice(strings) + chosen.choice(strings)
        if kind == 4:
            return [value(depth + 1) for _ in range(chosen.randrange(4))]
        return {chosen.choice(strings): value(depth + 1) for _ in range(chosen.randrange(4))}

    pieces = [b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"0", b"1", b"-", b".", b"e", b"+", b" ", b"\t",
              b"\n", b"\r", b"x", b"u", b"\xc3", b"\xa9", b"\xed\xa0\x80", b"\xf4\x90", b"\x00", b"\x01", b"\x7f",
              b"\\q", b"\\u12", b"true", b"nul", b"NaN"]
    bodies = []
    for _ in range(count):
        layout = chosen.choice([{}, {"indent": 1}, {"indent": "\t"}, {"separators": (",", ":")},
                                {"separators": (" ,\r\n", " : ")}])
        body = json.dumps(value(0), ensure_ascii=chosen.random() < 0.5, **layout).encode()  # type: ignore[arg-type]
        at = chosen.randrange(len(body) + 1)
        edit = chosen.randrange(5)
        if edit == 1:
            body = body[:at] + chosen.choice(pieces) + body[at:]
        elif edit == 2:
            body = body[:at] + body[at + 1:]
        elif edit == 3:
            body = body[:at] + chosen.choice(pieces) + body[at + 1:]
        bodies.append(body)
    return bodies


def _spelled(text: str, chosen: random.Random) -> str:
    """A JSON string of text, each character spelled one of the ways JSON allows, at random: as it is, a \\u
    escape in either case (a surrogate pair beyond U+FFFF), or a short escape."""
    spelled = []
    for char in text:
        ways = [] if char in '"\\' or char < " " or "\ud800" <= char <= "\udfff" else [char]
        units = [char] if ord(char) < 0x10000 else [chr(0xD800 + (ord(char) - 0x10000 >> 10)),
                                                    chr(0xDC00 + (ord(char) - 0x10000 & 0x3FF))]
        ways += ["".join(f"\\u{ord(unit):04x}" for unit in units), "".join(f"\\u{ord(unit):04X}" for unit in units)]
        short = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                 "\t": "\\t"}
        if char in short:
            ways.append(short[char])
        spelled.append(chosen.choice(ways))
    return '"' + "".join(spelled) + '"'


def _keys_twice(count: int) -> list[bytes]:
    """JSON texts of objects, nested, whose keys come from a few, each spelled at random (a fixed seed): many
    name a key twice in one object, in the same bytes or another spelling; the same key in two objects is not."""
    chosen = random.Random(23)
    keys = ["a", "A", "min_off_ms", "caf\u00e9", "\u20ac", "\U0001f525", "a/b", 'q"\\', "\t\n", "", "\ud83d", "\ude00x",
            "x\ud83d"]

    def value(depth: int) -> str:
        kind = chosen.randrange(4 if depth < 4 else 1)
        if kind == 0:
            return chosen.choice(["1", "null", '"v"', "[]"])
        if kind == 1:
            return "[" + ", ".join(value(depth + 1) for _ in range(chosen.randrange(3))) + "]"
        pool = chosen.sample(keys, chosen.randrange(2, 5))  # a few keys, so one comes twice now and then
        return "{" + ", ".join(_spelled(chosen.choice(pool), chosen) + ": " + value(depth + 1)
                               for _ in range(chosen.randrange(4))) + "}"

    return [value(0).encode() for _ in range(count)]


def _run(interpreter: str, bodies: list[bytes], device_root: Path, tmp_path: Path) -> tuple[list[object], object]:
    path = tmp_path / f"bodies-{interpreter}.txt"
    path.write_text("".join(body.hex() + "\n" for body in bodies))
    out = mpnode.run_on(interpreter, "jsontext_check.py", str(path), device_root=device_root)
    return out[:-1], out[-1]


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_each_fault_is_named_at_its_byte_the_same_everywhere(interpreter: str, device_root: Path,
                                                             tmp_path: Path) -> None:
    faults, error = _run(interpreter, [body for body, _what, _at in FAULTS], device_root, tmp_path)
    assert faults == [[what, at] for _body, what, at in FAULTS]
    # check() raises it as FieldError, on the bytearray the HTTP server reads a body into.
    assert error == "heating: the body is not JSON: more than 24 arrays and objects nested at byte 24"
    for body, _what, _at in FAULTS[:-1]:  # CPython's json refuses them all (but the deep one: it recurses)
        assert not _cpython_takes(body), body


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_json_passes_and_the_verdict_is_cpythons_json(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    mutants = _mutants(3000) + _keys_twice(1000)
    found, error = _run(interpreter, mutants + VALID, device_root, tmp_path)
    assert found[len(mutants):] == [["", 0]] * len(VALID)
    assert error is None  # check() passes the last valid body
    taken = [fault == ["", 0] for fault in found[:len(mutants)]]
    differ = [body for body, ok in zip(mutants, taken, strict=True) if ok != _cpython_takes(body)]
    assert differ == []
    assert 100 < sum(taken) < len(mutants) - 100  # both verdicts well represented, or the comparison says little
    # A key twice is the fault named in those objects (their text is JSON), in both verdicts often enough.
    twice = [what for what, _at in found[3000:len(mutants)]]  # type: ignore[misc]
    assert all(what == "" or what.startswith('the key "') for what in twice), twice
    assert 200 < twice.count("") < len(twice) - 200, twice.count("")


KEY = bytes(range(3, 35))
TOKEN = http_token(KEY)
BOILER_FILE = b'{"rooms": [{"id": "bath", "rated_w": 900}], "boiler": {"min_off_ms": 0}}'
# The boiler node's file, each with one fault MicroPython's json reads past: a node kept the first five, the
# seventh (room 'bqath') and the last two as they came (the second "min_off_ms" in force; a boiler of the one
# room 'kids'), and refused the others by a field, not as text that is not JSON.
LENIENT = [
    (b'{"rooms": [{"id": "bath", "rated_w": 900},], "boiler": {"min_off_ms": 0}}', "a comma before ']' at byte 41"),
    (b'{"rooms": [{"id": "bath", "rated_w": 900}], "boiler": {"min_off_ms": 0},}', "a comma before '}' at byte 71"),
    (b'{"rooms": [{"id": "bath", "rated_w": 0900}], "boiler": {"min_off_ms": 0}}', "a leading zero at byte 37"),
    (b'{"rooms": [{"id": "bath" "rated_w": 900}], "boiler": {"min_off_ms": 0}}', "a missing comma at byte 25"),
    (b'{"rooms" [{"id": "bath", "rated_w": 900}], "boiler": {"min_off_ms": 0}}', "a missing colon at byte 9"),
    (b'{"rooms": [{"id": "bath", "rated_w": 900.}], "boiler": {"min_off_ms": 0}}', "no digit after '.' at byte 41"),
    (b'{"rooms": [{"id": "b\\qath", "rated_w": 900}], "boiler": {"min_off_ms": 0}}',
     "an unknown escape \\q at byte 20"),
    (b'{"rooms": [{"id": "bath\t", "rated_w": 900}], "boiler": {"min_off_ms": 0}}',
     "a control character in a string at byte 23"),
    (b'{"rooms": [{"id": "bath", "rated_w": 900}], "boiler": {"min_off_ms": 0, "min_off_ms": 60000}}',
     'the key "min_off_ms" twice in one object at byte 72'),
    (b'{"rooms": [{"id": "bath", "rated_w": 900}], "boiler": {"min_off_ms": 0}, "rooms": [{"id": "kids"}]}',
     'the key "rooms" twice in one object at byte 73'),
]


@pytest.fixture
def boiler_node(device_root: Path, tmp_path: Path) -> Iterator[NodeRun]:
    """A boiler node's main.py, adopted, running a group of itself and one valve node, its heating.json kept."""
    folder = tmp_path / "boiler"
    folder.mkdir()
    http_port = free_port(socket.SOCK_STREAM)
    store = Store(str(folder))
    store.write_json("hw.json", {"hal": "none"})
    store.write_json("node.json", {"id": "boiler", "http_port": http_port, "http_host": "127.0.0.1",
                                   "mesh_port": free_port(socket.SOCK_DGRAM), "mesh_host": "127.0.0.1",
                                   "mesh_dest_port": 9, "bind_host": "127.0.0.1"})
    store.write_key(KEY)
    store.raise_boot_floor(0)  # its count vouched for, as adoption and node-files leave it
    store.write_json("config.json", groupconfig.parse({
        "group": "house", "version": 1, "updated_at": 1, "origin": "test", "key_id": "house",
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": [25000], "safety_pct": 100}, "circuits": [],
        "members": [{"id": node, "kind": kind, "phases": "L1", "min_ma": 0, "max_ma": 0, "step_ma": 1000,
                     "priority": 0, "mode": "off"} for node, kind in (("boiler", "boiler"), ("bath", "valve"))]}))
    store.write("heating.json", BOILER_FILE)
    node = NodeRun(device_root, folder, http_port, KEY)
    node.start()
    yield node
    node.kill()


def test_a_body_that_is_not_json_is_refused_by_name_and_nothing_is_kept(boiler_node: NodeRun) -> None:
    node = boiler_node
    kept = node.request("GET", "/heating", token=TOKEN)
    assert kept == (200, {"heating": json.loads(BOILER_FILE), "file": "ok"})
    for body, fault in LENIENT:
        error = "heating: the body is not JSON: " + fault
        assert node.put("/heating", body) == (400, {"error": error}), body
        # The installer's check (loadmesh heating-check, CPython) says the same of the same file.
        with pytest.raises(FieldError) as refused:
            jsontext.check(body, "heating")
        assert str(refused.value) == error
    assert node.request("GET", "/heating", token=TOKEN) == kept
    assert Store(str(node.folder)).read("heating.json") == BOILER_FILE
    switch = node.request("GET", "/load_sharing", token=TOKEN)
    assert switch[0] == 200 and switch[1]["switch"] is True
    for body, fault in ((b'{"enabled": false,}', "a comma before '}' at byte 17"),
                        (b'{"enabled" false}', "a missing colon at byte 11"),
                        (b'{"enabled": true, "enabled": false}', 'the key "enabled" twice in one object at byte 18')):
        error = "load_sharing: the body is not JSON: " + fault
        assert node.put("/load_sharing", body) == (400, {"error": error}), body
    assert node.request("GET", "/load_sharing", token=TOKEN) == switch
    assert not (node.folder / "load_sharing.json").exists()
    assert node.request("GET", "/status")[1]["state"] == "running"


def test_json_with_whitespace_escapes_and_utf8_is_still_taken(boiler_node: NodeRun) -> None:
    node = boiler_node
    # UTF-8 in a string is JSON: the loader, not the syntax check, refuses this room id.
    status, answer = node.put("/heating", '{"rooms": [{"id": "b\u00e4th\u20ac"}]}'.encode())
    assert status == 400 and "not JSON" not in answer["error"], answer
    assert answer["error"].startswith("heating.rooms[0].id: "), answer
    body = (b' \t\r\n{ "rooms" :\t[ {"id" : "b\\u0061th", "rated_w": 1200,\n"load_sharing": {}} ] ,\r\n'
            b'  "boiler": {"min_\\u006fff_ms": 0}, "load_sharing" : {"enabled":true} }\r\n')
    assert node.put("/heating", body) == (200, {"saved": True, "kind": "boiler",
                                                                           "rooms": ["bath"]})
    assert Store(str(node.folder)).read("heating.json") == body  # as it came
    assert node.request("GET", "/heating", token=TOKEN)[1]["heating"] == json.loads(body)
    status, answer = node.put("/load_sharing", b'\n{ "enabled" : false }\n')
    assert (status, answer["switch"]) == (200, False), answer
