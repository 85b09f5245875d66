"""The loadmesh command line: same bytes on every runtime, one-line errors."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loadmesh.companion import cli

from .conftest import ROOT

LOADMESH = str(Path(sys.executable).with_name("loadmesh"))


def _run(device_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOADMESH_DEVICE_TREE=str(device_root))
    return subprocess.run([LOADMESH, *args], capture_output=True, text=True, cwd=ROOT, env=env)


def test_pilot_same_bytes_on_every_runtime(device_root: Path, tmp_path: Path) -> None:
    request = tmp_path / "limits.json"
    request.write_text(json.dumps({"ma": [0, 6000, 16000, 32000, 63000]}))
    outputs = set()
    for runtime in ("cpython", "micropython", "micropython-f32"):
        done = _run(device_root, "pilot", "--runtime", runtime, str(request))
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert outputs == {'{"duty_permille":[1000,100,266,533,892],"signalled_ma":[0,6000,15960,31980,63000]}\n'}


@pytest.mark.parametrize("cli_runtime", ["cpython", "micropython-f32"])
def test_bad_input_is_one_line_naming_the_field(device_root: Path, tmp_path: Path, cli_runtime: str) -> None:
    request = tmp_path / "bad.json"
    request.write_text(json.dumps({"ma": [6000, None]}))
    done = _run(device_root, "pilot", "--runtime", cli_runtime, str(request))
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr == f"loadmesh pilot: {request}: ma[1]: null is not an integer\n"


def test_missing_device_tree_says_how_to_fix(tmp_path: Path) -> None:
    done = _run(tmp_path / "nowhere", "pilot", "--runtime", "micropython", str(tmp_path / "x.json"))
    assert done.returncode != 0
    assert "./tools/setup" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_installed_core_runs_outside_the_checkout_and_the_others_say_where_to_run(tmp_path: Path) -> None:
    # The default runtime is the installed core: a user's site file in their own folder needs no checkout.
    # MicroPython runs the checkout's staged tree, so it says how to reach one.
    request = tmp_path / "site.json"
    request.write_text(json.dumps({"ma": [6000]}))
    env = {key: value for key, value in os.environ.items() if key not in ("LOADMESH_ROOT", "LOADMESH_DEVICE_TREE")}
    done = subprocess.run([LOADMESH, "pilot", str(request)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, '{"duty_permille":[100],"signalled_ma":[6000]}\n', "")
    done = subprocess.run([LOADMESH, "pilot", "--runtime", "micropython", str(request)], capture_output=True,
                          text=True, cwd=tmp_path, env=env)
    assert done.returncode != 0 and "LOADMESH_ROOT" in done.stderr and "Traceback" not in done.stderr


def test_outside_the_checkout_a_command_that_needs_it_names_itself_and_the_checkout_to_use(tmp_path: Path) -> None:
    # `loadmesh demo` from the installer's own folder: the line said "loadmesh: ... run from the checkout", naming
    # neither the command nor where the checkout is; the loadmesh that ./tools/setup installs is in its .venv.
    env = {key: value for key, value in os.environ.items() if key not in ("LOADMESH_ROOT", "LOADMESH_DEVICE_TREE")}
    done = subprocess.run([LOADMESH, "demo", "--duration", "1"], capture_output=True, text=True, cwd=tmp_path,
                          env=env)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"loadmesh demo: {tmp_path} is not inside a loadmesh checkout, which this command runs "
                           f"from: cd {ROOT.resolve()} first, or set LOADMESH_ROOT={ROOT.resolve()}\n")
    done = subprocess.run([LOADMESH, "pilot", "--runtime", "micropython", "site.json"], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(env, LOADMESH_ROOT=str(tmp_path)))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"loadmesh pilot: LOADMESH_ROOT={tmp_path} is not a loadmesh checkout (it has no "
                           "shared/core and firmware/main.py): set it to the folder you cloned loadmesh into\n")


@pytest.mark.parametrize(("content", "problem", "commands"), [
    (None, "No such file or directory", ("allocate", "config-hash", "heating-check", "hw-check")),
    # (heating-check reads the bytes as its node does, and says where they stop being JSON)
    (b"\xff{}", "not UTF-8 text (byte 0xff at offset 0)", ("allocate", "config-hash", "hw-check")),
    # A key twice in one object: json would keep the last, silently (heating-check: tests/test_heating_cli.py).
    (b'{\n  "hal": "none",\n  "hal": "esp32"\n}', 'the key "hal" twice in one object: line 3 column 3 (char 21)',
     ("allocate", "config-hash", "config-seal", "hw-check", "node-check")),
    (b'{"caf\xc3\xa9": {"a": 1, "b": [{"a": 2}]}, "caf\\u00e9": 3}',  # as json decodes it; json's count of chars
     'the key "caf\\u00e9" twice in one object: line 1 column 37 (char 36)', ("allocate", "config-hash", "hw-check")),
    # Text that is not JSON, in jsontext's words (as heating-check says it) where an editor shows the line and
    # column: json's own words were its parser's ("Expecting property name enclosed in double quotes").
    (b'{\n  "hal": "esp32",\n}\n', "a comma before '}': line 2 column 17 (char 18)",
     ("allocate", "config-hash", "config-seal", "config-merge", "controller", "hw-check", "node-check", "pilot",
      "tiers", "heating")),
    (b'{\n  "hal": "esp32"\n  "wdt_ms": 2000\n}', "a missing comma: line 3 column 3 (char 21)",
     ("config-hash", "hw-check")),
    (b'{"hal": "esp32",', "the file ends inside an object: line 1 column 17 (char 16)", ("config-hash", "hw-check")),
    (b"", "no value: line 1 column 1 (char 0)", ("config-hash", "hw-check")),
    (b'\xef\xbb\xbf{"hal": "esp32"}', "a byte order mark (U+FEFF) before the JSON: save the file as UTF-8 without "
     "one: line 1 column 1 (char 0)", ("config-hash", "hw-check")),
])
def test_an_unreadable_file_is_named_once_with_what_is_wrong(device_root: Path, tmp_path: Path, content: bytes | None,
                                                             problem: str, commands: tuple[str, ...]) -> None:
    path = tmp_path / "site.json"
    if content is not None:
        path.write_bytes(content)
    for command in commands:
        done = _run(device_root, command, str(path))
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == f"loadmesh {command}: {path}: {problem}\n"


def test_hw_check_prints_the_wiring_a_node_would_run_or_the_first_error(device_root: Path, tmp_path: Path) -> None:
    # A boiler node: the call relay, a 0-10 V setpoint input at 20..90 C, flow and return sensors.
    wiring = {"hal": "esp32", "boiler": {"pin": 27}, "setpoint": {"pin": 33, "low_dc": 200, "high_dc": 900},
              "onewire": {"pin": 4, "sensors": {"flow": "28ff4a1b03170467", "return": "28ff4a1b03170468"}}}
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(wiring))
    done = _run(device_root, "hw-check", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "hal": "esp32", "wdt_ms": 2000, "mains_hz": 50, "boiler": {"pin": 27, "active_high": True},
        "setpoint": {"pin": 33, "freq_hz": 1000, "low_dc": 200, "high_dc": 900}, "onewire": wiring["onewire"]}
    # The setpoint output moved onto an input-only pin: refused, naming the file, the field and the pin.
    path.write_text(json.dumps({**wiring, "setpoint": {"pin": 34}}))
    done = _run(device_root, "hw-check", str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"loadmesh hw-check: {path}: hw.setpoint.pin: 34 is input only (GPIO 34..39); "
                           "an output needs another pin\n")
    path.write_text("{")
    done = _run(device_root, "hw-check", str(path))
    assert done.returncode == 2 and done.stderr.startswith(f"loadmesh hw-check: {path}:"), done.stderr


def test_hw_check_shows_the_wifi_password_by_its_length_only(device_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "hw.json"
    path.write_text(json.dumps({"hal": "esp32", "wifi": {"ssid": "House", "password": "correct horse battery"}}))
    done = _run(device_root, "hw-check", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["wifi"] == {"ssid": "House", "password": "(21 characters, not shown)",
                                               "hostname": None}
    assert "correct horse" not in done.stdout + done.stderr
    path.write_text(json.dumps({"hal": "esp32", "wifi": {"ssid": "Open house", "password": ""}}))
    done = _run(device_root, "hw-check", str(path))
    assert json.loads(done.stdout)["wifi"]["password"] == ""  # an open network: nothing to hide


@pytest.mark.parametrize(("command", "vector"), [("allocate", "allocate/nested_circuits.json"),
                                                 ("tiers", "tiers/entry.json")])
def test_a_reader_that_stops_reading_gets_no_traceback(device_root: Path, tmp_path: Path, command: str,
                                                       vector: str) -> None:
    # `loadmesh tiers FILE | head -1`: the reader is gone before the output is
    # written (a pipe whose read end is closed), buffered or not.
    request = tmp_path / "request.json"
    request.write_text(json.dumps(json.loads((ROOT / "tests" / "vectors" / vector).read_text())["input"]))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        for unbuffered in ("", "1"):
            env = dict(os.environ, LOADMESH_DEVICE_TREE=str(device_root), PYTHONUNBUFFERED=unbuffered)
            done = subprocess.run([LOADMESH, command, str(request)], stdout=write_end, stderr=subprocess.PIPE,
                                  text=True, cwd=ROOT, env=env)
            assert (done.returncode, done.stderr) == (1, ""), (unbuffered, done.stderr)
    finally:
        os.close(write_end)


def test_each_command_s_own_help_says_what_it_does_and_what_runtime_means() -> None:
    # `loadmesh allocate --help` said only "positional arguments: file" before:
    # what the command does was in `loadmesh --help` alone.
    commands = next(action for action in cli.build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction))
    listed = {action.dest: action.help for action in commands._choices_actions}
    # Every command, and only those, in the README's list of them ("The command line").
    readme = (ROOT / "README.md").read_text()
    assert sorted(listed) == sorted(set(re.findall(r"^\.venv/bin/loadmesh ([a-z-]+)", readme, re.MULTILINE)))
    for name, what in sorted(listed.items()):
        assert what
        own = " ".join(commands.choices[name].format_help().split())
        assert " ".join(what.split()) in own, name
        if "--runtime" in own:
            assert "--runtime {cpython,micropython" in own and "every runtime prints the same bytes" in own, name
            assert "file the request: a JSON file" in own, name


def test_the_overall_help_gives_the_installer_s_commands_in_the_readme_s_order() -> None:
    # `loadmesh --help` listed 26 commands in the order they were added, the installer's among the core's test
    # entries: it now ends with those an installer runs, in the order of the README's "Setting up a node".
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Setting up a node", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    in_order = list(dict.fromkeys(re.findall(r"^loadmesh ([a-z-]+)", block, re.MULTILINE)))
    assert in_order[:4] == ["key-new", "config-hash", "hw-check", "node-check"], in_order
    shown = " ".join(cli.build_parser().format_help().split())
    assert "setting up a node, in this order: " + ", ".join(in_order) + " (README, Setting up a node)" in shown, shown


@pytest.mark.parametrize("command", ["hw-check", "heating-check", "allocate"])
def test_a_file_as_a_node_stores_it_is_named_as_such(device_root: Path, tmp_path: Path, command: str) -> None:
    # A hw.json copied off a node (or a simulator's folder): the store's envelope, not JSON.
    from loadmesh.node import store

    store.Store(str(tmp_path)).write("hw.json", b'{"hal": "esp32"}')
    path = tmp_path / "hw.json"
    done = _run(device_root, command, str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"loadmesh {command}: {path}: is a file as a node stores it (its first line, LM1 and a "
                           "hash, is the store's): give the JSON on the lines after it\n")


@pytest.mark.parametrize(("command", "code"), [
    # `--list | head` ended in a BrokenPipe traceback: a reader that goes away is no error worth one.
    ((sys.executable, "tools/house_sensitivity.py", "--list"), 1),
    ((LOADMESH, "tiers", "-"), 1),  # one JSON line per step (the file: below)
    ((LOADMESH, "config-hash", "examples/group-heating.json"), 1),
    ((LOADMESH, "--help"), 0),  # argparse drops what it cannot write
])
def test_a_list_whose_reader_goes_away_ends_quietly(device_root: Path, tmp_path: Path, command: tuple[str, ...],
                                                    code: int) -> None:
    vector = json.loads((ROOT / "tests" / "vectors" / "tiers" / "exit_b_new_rooms_call.json").read_text())
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps(vector["input"]))
    reader, writer = os.pipe()
    os.close(reader)  # gone before the first line, as `head` is after its last
    try:
        done = subprocess.run([str(steps) if part == "-" else part for part in command], stdout=writer,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env=dict(os.environ, LOADMESH_DEVICE_TREE=str(device_root)))
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (code, "")
