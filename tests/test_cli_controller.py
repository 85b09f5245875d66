"""loadmesh controller and the config commands: same bytes on every runtime, one-line errors naming the field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from loadmesh.core import canon

from .conftest import VECTORS_DIR
from .test_cli import _run


def _vector(area: str, name: str) -> dict[str, object]:
    vector: dict[str, object] = json.loads((VECTORS_DIR / area / (name + ".json")).read_text())
    return vector


def test_controller_prints_one_line_per_tick_the_same_on_every_runtime(device_root: Path, tmp_path: Path) -> None:
    vector = _vector("controller", "lower_at_once")
    request = tmp_path / "ticks.json"
    request.write_text(json.dumps(vector["input"]))
    outputs = set()
    for runtime in ("cpython", "micropython", "micropython-f32"):
        done = _run(device_root, "controller", "--runtime", runtime, str(request))
        assert done.returncode == 0, done.stderr
        assert [json.loads(line) for line in done.stdout.splitlines()] == vector["expect"]["ok"]["steps"]  # type: ignore[index]
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_config_hash_takes_the_config_file_itself(device_root: Path, tmp_path: Path) -> None:
    vector = _vector("groupconfig", "hash_garage")
    plain = tmp_path / "group.json"
    plain.write_text(json.dumps(vector["input"]["config"]))  # type: ignore[index]
    wrapped = tmp_path / "request.json"
    wrapped.write_text(json.dumps(vector["input"]))
    # (The single-precision runtime answers the same request through the vectors; run from a file, the
    # parsed request sits where the config modules' bytecode must load, and a 12K-word heap is too tight.)
    # The entry's answer (the vector's), with the canonical text shown as the object it is: it was one string,
    # every quote of the config escaped.
    expected = dict(vector["expect"]["ok"])  # type: ignore[index]
    expected["config"] = json.loads(expected.pop("canonical"))
    outputs = set()
    for runtime in ("cpython", "micropython"):
        for path in (plain, wrapped):
            done = _run(device_root, "config-hash", "--runtime", runtime, str(path))
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout) == expected
            outputs.add(done.stdout)
    assert len(outputs) == 1
    (line,) = outputs
    assert line == canon.dumps(expected) + "\n" and '\\"' not in line
    # The hash covers the config's canonical bytes, which a script gets back from the object printed.
    shown = json.loads(line)
    assert hashlib.sha256(canon.dumps(shown["config"]).encode()).hexdigest() == shown["hash"]
    assert canon.dumps(shown["config"]) == vector["expect"]["ok"]["canonical"]  # type: ignore[index]


def test_config_hash_of_a_config_file_names_that_file_in_an_error(device_root: Path, tmp_path: Path) -> None:
    # A config file itself is wrapped into a request in a temporary folder; the error names the user's file.
    vector = _vector("groupconfig", "bad_failsafe_does_not_fit")
    plain = tmp_path / "group.json"
    plain.write_text(json.dumps(vector["input"]["config"]))  # type: ignore[index]
    done = _run(device_root, "config-hash", str(plain))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"loadmesh config-hash: {plain}: {vector['expect']['error']}\n"  # type: ignore[index]


@pytest.mark.parametrize(("command", "name"), [
    ("config-merge", "resolve_higher_version"),
    ("config-seal", "seal"),
    ("config-open", "open"),
])
def test_config_commands_print_the_entry_result(device_root: Path, tmp_path: Path, command: str, name: str) -> None:
    vector = _vector("groupconfig", name)
    request = tmp_path / "request.json"
    request.write_text(json.dumps(vector["input"]))
    done = _run(device_root, command, str(request))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == vector["expect"]["ok"]  # type: ignore[index]


@pytest.mark.parametrize("cli_runtime", ["cpython", "micropython-f32"])
@pytest.mark.parametrize(("command", "area", "name"), [
    ("controller", "controller", "bad_input"),
    ("config-hash", "groupconfig", "bad_failsafe_does_not_fit"),
])
def test_bad_input_is_one_line_naming_the_field(device_root: Path, tmp_path: Path, cli_runtime: str, command: str,
                                                area: str, name: str) -> None:
    vector = _vector(area, name)
    request = tmp_path / "bad.json"
    request.write_text(json.dumps(vector["input"]))
    done = _run(device_root, command, "--runtime", cli_runtime, str(request))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"loadmesh {command}: {request}: {vector['expect']['error']}\n"  # type: ignore[index]
