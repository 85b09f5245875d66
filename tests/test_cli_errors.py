"""An installer's mistakes in the files the checks read: one line naming the file, the field and the value (or
where in the text), exit 2, no traceback, nothing written.

Each case is a mistake made by hand in a real file (tmp_path), run through
the command's entry in this process (tests/test_cli_install.py's way).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadmesh.companion import cli

from .conftest import ROOT

EXAMPLES = ROOT / "examples"


def loadmesh(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`loadmesh ARGS` through its entry, in this process: (exit, stdout, stderr)."""
    code = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def example(name: str) -> dict[str, object]:
    value = json.loads((EXAMPLES / name).read_text())
    assert isinstance(value, dict)
    return value


# NaN and Infinity: CPython's json reads them as floats, the node's refuses the file. They were refused without
# a position ("NaN is not valid JSON"); now where they are, in jsontext's words, as any other fault of the text.
@pytest.mark.parametrize(("command", "text", "shown"), [
    ("hw-check", '{\n  "hal": "esp32",\n  "wdt_ms": NaN\n}',
     "'N' where a value belongs (NaN is not valid JSON): line 3 column 13 (char 32)"),
    ("node-check", '{"id": "evse1", "peers_http": {"evse2": ["10.0.0.2", Infinity]}}',
     "'I' where a value belongs (Infinity is not valid JSON): line 1 column 54 (char 53)"),
    ("config-hash", '{"group": "NaN", "version": -Infinity}',
     "no digit after '-' (-Infinity is not valid JSON): line 1 column 30 (char 29)"),
    ("allocate", '{"site": {"limit_ma": [1, 2,\r\n NaN]}}',
     "'N' where a value belongs (NaN is not valid JSON): line 2 column 2 (char 31)"),
])
def test_nan_and_infinity_are_named_where_they_are(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   command: str, text: str, shown: str) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(text.encode())
    assert loadmesh(capsys, command, path) == (2, "", f"loadmesh {command}: {path}: {shown}\n")


def test_nan_in_a_node_check_group_file_is_named_where_it_is(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    node, group = tmp_path / "node.json", tmp_path / "group.json"
    node.write_text(json.dumps(example("node-evse1.json")))
    group.write_text(json.dumps(example("group-evse.json"), indent=1).replace('"version": 1', '"version": NaN'))
    code, out, err = loadmesh(capsys, "node-check", node, "--group", group)
    assert (code, out) == (2, "")
    assert err == (f"loadmesh node-check: {group}: 'N' where a value belongs (NaN is not valid JSON): "
                   "line 3 column 13 (char 34)\n")
