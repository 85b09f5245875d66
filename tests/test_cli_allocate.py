"""loadmesh allocate: the same bytes on every runtime, one-line errors naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadmesh.core import canon

from .conftest import ROOT, VECTORS_DIR

LOADMESH = str(Path(sys.executable).with_name("loadmesh"))
CLI_RUNTIMES = ("cpython", "micropython", "micropython-f32")


def _run(device_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOADMESH_DEVICE_TREE=str(device_root))
    return subprocess.run([LOADMESH, *args], capture_output=True, text=True, cwd=ROOT, env=env)


@pytest.mark.parametrize("vector", ["nested_circuits", "single_phase_loads_on_different_phases",
                                    "solar_modes_in_urgency_order"])
def test_same_bytes_on_every_runtime(device_root: Path, tmp_path: Path, vector: str) -> None:
    loaded = json.loads((VECTORS_DIR / "allocate" / f"{vector}.json").read_text())
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(loaded["input"], indent=2))
    outputs = set()
    for cli_runtime in CLI_RUNTIMES:
        done = _run(device_root, "allocate", "--runtime", cli_runtime, str(scenario))
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        outputs.add(done.stdout)
    # Exactly the contract: {"alloc_ma", "reason", "digest"}, canonical, one line.
    assert outputs == {canon.dumps(loaded["expect"]["ok"]) + "\n"}


@pytest.mark.parametrize("cli_runtime", CLI_RUNTIMES)
@pytest.mark.parametrize(("text", "message"), [
    # a load without its minimum
    ('{"site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}, "loads": [{"id": "a", '
     '"phases": "L1", "max_ma": 16000, "step_ma": 1000, "priority": 0, "mode": "continuous", "demand": true, '
     '"online": true}]}',
     "loads[0].min_ma: is missing"),
    # a load on a circuit that does not exist
    ('{"site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}, "loads": [{"id": "a", '
     '"circuit": "shed", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000, "priority": 0, '
     '"mode": "continuous", "demand": true, "online": true}]}',
     "loads[0].circuit: \"shed\" is not a circuit"),
    # a negative site limit
    ('{"site": {"phases": 3, "voltage_v": 230, "limit_ma": [25000, -1, 25000], "safety_pct": 100}, "loads": []}',
     "site.limit_ma[1]: -1 is below 0"),
])
def test_bad_scenario_is_one_line_naming_the_field(device_root: Path, tmp_path: Path, cli_runtime: str, text: str,
                                                   message: str) -> None:
    scenario = tmp_path / "bad.json"
    scenario.write_text(text)
    done = _run(device_root, "allocate", "--runtime", cli_runtime, str(scenario))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"loadmesh allocate: {scenario}: {message}\n"


@pytest.mark.parametrize("cli_runtime", CLI_RUNTIMES)
def test_broken_json_is_refused_on_every_runtime(device_root: Path, tmp_path: Path, cli_runtime: str) -> None:
    # MicroPython's own json reads a truncated object as {}: the file must be refused before it gets there.
    scenario = tmp_path / "broken.json"
    scenario.write_text('{"site": ')
    done = _run(device_root, "allocate", "--runtime", cli_runtime, str(scenario))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"loadmesh allocate: {scenario}: ")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_alike_on_every_runtime(device_root: Path, tmp_path: Path,
                                                              constant: str) -> None:
    # CPython's json reads them as floats (the core then said "a float is not an integer"); MicroPython's
    # refuses the file. Both now refuse it before the core, in the same bytes, where it is.
    scenario = tmp_path / "constant.json"
    scenario.write_text('{"site": {"phases": 1, "voltage_v": 230, "limit_ma": ' + constant
                        + ', "safety_pct": 100}, "loads": []}')
    fault = "no digit after '-'" if constant == "-Infinity" else f"'{constant[0]}' where a value belongs"
    at = 54 if constant == "-Infinity" else 53
    for cli_runtime in CLI_RUNTIMES:
        done = _run(device_root, "allocate", "--runtime", cli_runtime, str(scenario))
        assert (done.returncode, done.stdout) == (2, ""), cli_runtime
        assert done.stderr == (f"loadmesh allocate: {scenario}: {fault} ({constant} is not valid JSON): "
                               f"line 1 column {at + 1} (char {at})\n"), cli_runtime


def test_an_unknown_key_with_a_newline_is_named_on_one_line(device_root: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "newline.json"
    scenario.write_text('{"site": {"phases": 1, "voltage_v": 230, "limit_ma": 100, "safety_pct": 100, '
                        '"x\\nsecond line": 1}, "loads": []}')
    for cli_runtime in CLI_RUNTIMES:
        done = _run(device_root, "allocate", "--runtime", cli_runtime, str(scenario))
        assert (done.returncode, done.stdout) == (2, ""), cli_runtime
        assert done.stderr == (f'loadmesh allocate: {scenario}: site."x\\nsecond line": is not a known field\n'), \
            cli_runtime


def test_a_lone_surrogate_in_an_id_is_named_on_one_line_on_every_runtime(device_root: Path, tmp_path: Path) -> None:
    # "\\ud800" is JSON; CPython's json reads it as a lone surrogate, which canon once failed to encode
    # (UnicodeEncodeError: a traceback on CPython, where MicroPython named the field).
    scenario = tmp_path / "surrogate.json"
    scenario.write_text('{"site": {"phases": 1, "voltage_v": 230, "limit_ma": 100, "safety_pct": 100}, '
                        '"loads": [{"id": "\\ud800", "phases": "L1", "min_ma": 6000, "max_ma": 16000, '
                        '"step_ma": 1000, "priority": 0, "mode": "continuous", "demand": true, "online": true}]}')
    for cli_runtime in CLI_RUNTIMES:
        done = _run(device_root, "allocate", "--runtime", cli_runtime, str(scenario))
        assert (done.returncode, done.stdout) == (2, ""), cli_runtime
        assert done.stderr == (f'loadmesh allocate: {scenario}: loads[0].id: "\\ud800" is not 1 to 64 letters, digits, '
                               "'-', '_' or '.'\n"), cli_runtime
