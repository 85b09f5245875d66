"""loadmesh tiers, heating and house-bench: one line per step, same bytes everywhere, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadmesh.core import entry

from .conftest import ROOT, VECTORS_DIR

LOADMESH = str(Path(sys.executable).with_name("loadmesh"))


def _run(device_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOADMESH_DEVICE_TREE=str(device_root))
    return subprocess.run([LOADMESH, *args], capture_output=True, text=True, cwd=ROOT, env=env)


def _long_steps(tmp_path: Path, count: int) -> Path:
    # A vector's house, called on and off for `count` minutes: longer than one MicroPython chunk.
    vector = json.loads((VECTORS_DIR / "tiers" / "exit_b_new_rooms_call.json").read_text())
    steps = [vector["input"]["steps"][0]]
    for minute in range(1, count):
        steps.append({"now_ms": minute * 60000, "rooms": {"bedroom": {"calling": minute % 7 < 3},
                                                          "bath": {"temp_dc": 150 + minute % 5}}})
    path = tmp_path / "steps.json"
    path.write_text(json.dumps({"config": vector["input"]["config"], "steps": steps}))
    return path


def test_tiers_prints_one_line_per_step_the_same_on_every_runtime(device_root: Path, tmp_path: Path) -> None:
    path = _long_steps(tmp_path, 30)
    expected = json.loads(entry.respond("tiers", json.loads(path.read_text())))["ok"]["steps"]
    outputs = set()
    for runtime in ("cpython", "micropython", "micropython-f32"):
        done = _run(device_root, "tiers", "--runtime", runtime, str(path))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert [json.loads(line) for line in lines] == expected
        # The fields docs/heating.md lists for a tiers line.
        assert set(json.loads(lines[0])) == {"now_ms", "state", "valve_pct", "reasons", "calling_w", "total_w",
                                             "stale", "log"}
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_tiers_settings_change_within_a_file_the_same_on_every_runtime(device_root: Path, tmp_path: Path) -> None:
    # The vector's settings change falls inside MicroPython's first chunk; a second
    # one (kids back, study dropped) opens the second chunk, so that chunk starts under
    # the settings in force and from inputs that no longer name study.
    vector = json.loads((VECTORS_DIR / "tiers" / "settings_change_keeps_rests.json").read_text())
    request = vector["input"]
    first_config = request["config"]
    kids = request["steps"][0]["rooms"]["kids"]
    request["steps"].append({"now_ms": 1500000, "config": first_config, "rooms": {"kids": kids}})
    for minute in range(26, 31):
        request["steps"].append({"now_ms": minute * 60000, "rooms": {"bath": {"calling": minute < 29}}})
    path = tmp_path / "steps.json"
    path.write_text(json.dumps(request))
    expected = json.loads(entry.respond("tiers", request))["ok"]["steps"]
    assert len(expected) == 10
    assert "study" not in expected[4]["valve_pct"]
    for runtime in ("cpython", "micropython", "micropython-f32"):
        done = _run(device_root, "tiers", "--runtime", runtime, str(path))
        assert done.returncode == 0, done.stderr
        assert [json.loads(line) for line in done.stdout.splitlines()] == expected


@pytest.mark.parametrize("cli_runtime", ["cpython", "micropython-f32"])
def test_tiers_bad_input_is_one_line_naming_the_step(device_root: Path, tmp_path: Path, cli_runtime: str) -> None:
    path = _long_steps(tmp_path, 10)
    request = json.loads(path.read_text())
    request["steps"][7]["rooms"]["bath"]["temp_dc"] = 15.5
    path.write_text(json.dumps(request))
    done = _run(device_root, "tiers", "--runtime", cli_runtime, str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"loadmesh tiers: {path}: steps[7].rooms.bath.temp_dc: a float is not an integer\n"


def test_heating_runs_the_whole_chain(device_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "house.json"
    path.write_text(json.dumps({
        "config": {"rooms": [{"id": "bath", "rated_w": 600, "schedule": {"default_target_dc": 210}}]},
        "steps": [{"now_ms": 0, "rooms": {"bath": {"mode": "auto", "temp_dc": 200, "confirmed_pct": 0}},
                   "boiler": {"flame": False, "flow_dc": 400, "return_dc": 380}},
                  {"now_ms": 30000, "rooms": {"bath": {"confirmed_pct": 100}}}]}))
    outputs = []
    for runtime in ("cpython", "micropython"):
        done = _run(device_root, "heating", "--runtime", runtime, str(path))
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    first, second = (json.loads(line) for line in outputs[0].splitlines())
    # The fields docs/heating.md lists for a heating line.
    assert set(first) == {"now_ms", "calling", "valve_pct", "source", "boiler_fsm", "boiler_on", "setpoint_dc",
                          "cooldown", "interlock", "tiers_state", "load_sharing", "log"}
    # Bath calls at 20.0 for 21.0: the valve opens, the boiler waits for it, then fires.
    assert first["calling"] == {"bath": True} and first["valve_pct"] == {"bath": 100}
    assert (first["boiler_fsm"], second["boiler_fsm"]) == ("BLOCKED", "ON")


def test_house_bench_json_has_the_contract_keys(device_root: Path) -> None:
    done = _run(device_root, "house-bench", "--json", "--days", "1")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    for key in ("short_cycles_per_day_off", "short_cycles_per_day_on", "energy_kwh_off", "energy_kwh_on",
                "off_mode_room_heated_minutes"):
        assert isinstance(figures[key], (int, float)), key
    assert figures["off_mode_room_heated_minutes"] == 0
    assert figures["energy_kwh_off"] > 0 and figures["short_cycles_per_day_off"] > 0
    assert "house-bench: load sharing" in done.stderr  # progress, on stderr only


def test_house_bench_refuses_a_bad_setting(device_root: Path) -> None:
    done = _run(device_root, "house-bench", "--days", "1", "--set", "tier_3_max_pct=75")
    assert done.returncode == 2
    message = "loadmesh house-bench: --set tier_3_max_pct=75: load_sharing.tier_3_max_pct: 75 is not a multiple of 10"
    assert done.stderr.splitlines()[-1] == message


@pytest.mark.parametrize(("setting", "message"), [
    # The runs set it themselves (off, then on): it used to be dropped without a word.
    ("enabled=0", "--set enabled=0: load sharing is off in one run and on in the other; "
                  "set the other load-sharing settings"),
    ("=5", "--set =5: expected NAME=INTEGER"),
])
def test_house_bench_refuses_a_setting_it_cannot_take(device_root: Path, setting: str, message: str) -> None:
    done = _run(device_root, "house-bench", "--days", "1", "--set", setting)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"loadmesh house-bench: {message}\n"


def _house_files(tmp_path: Path) -> tuple[dict[str, dict[str, object]], Path]:
    """The bundled house's heating.json per node (as the simulator installs them), and its group config file."""
    from loadmesh.companion.sim import groupcfg, heatcfg, scenario

    house = scenario.load(ROOT / "tools" / "scenarios" / "house6_boiler.yaml")
    group = tmp_path / "config.json"
    group.write_text(json.dumps(groupcfg.raw_config(house)))
    return heatcfg.heating_files(house), group


def _write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def test_heating_check_prints_the_settings_a_node_would_run(device_root: Path, tmp_path: Path) -> None:
    files, group = _house_files(tmp_path)
    done = _run(device_root, "heating-check", str(_write(tmp_path, "boiler.json", files["boiler"])),
                "--group", str(group))
    assert done.returncode == 0, done.stderr
    boiler = json.loads(done.stdout)
    assert boiler["kind"] == "boiler"
    assert boiler["rooms"] == sorted(room["id"] for room in files["boiler"]["rooms"])  # type: ignore[union-attr]
    # What the file leaves out is the default.
    assert boiler["boiler"]["min_valve_open_pct"] == 100 and boiler["boiler"]["pump_overrun_ms"] == 180000
    assert boiler["load_sharing"]["min_calling_capacity_w"] == 3500
    assert boiler["load_sharing"]["tier_3_max_duration_ms"] == 900000

    kids = {"room": {"mode": "manual", "manual_target_dc": 180}}
    done = _run(device_root, "heating-check", str(_write(tmp_path, "kids.json", kids)), "--group", str(group))
    assert done.returncode == 0, done.stderr
    valve = json.loads(done.stdout)
    assert (valve["kind"], valve["room"]["mode"], valve["room"]["manual_target_dc"]) == ("valve", "manual", 180)
    assert valve["room"]["control"]["on_delta_dc"] == 3 and valve["room"]["control"]["frost_dc"] == 80


def test_heating_check_refuses_with_the_file_the_field_and_the_value(device_root: Path, tmp_path: Path) -> None:
    files, group = _house_files(tmp_path)
    boiler = json.loads(json.dumps(files["boiler"]))
    cases = []
    # A rating that is not a number.
    bad = json.loads(json.dumps(boiler))
    bad["rooms"][1]["rated_w"] = "1400 W"
    cases.append((bad, None, "boiler.json: heating.rooms[1].rated_w: \"1400 W\""))
    # A room the group has no valve node for (a misspelt id), against the group config.
    bad = json.loads(json.dumps(boiler))
    bad["rooms"][0]["id"] = "bathroom"
    cases.append((bad, group, "boiler.json: heating.rooms[0].id: \"bathroom\" is not a valve node of group \"sim\""))
    # A valve node the boiler would never hear.
    bad = json.loads(json.dumps(boiler))
    missing = bad["rooms"].pop()["id"]
    cases.append((bad, group, f"boiler.json: heating.rooms: has no room for the valve node \"{missing}\""))
    # Neither a valve node's file nor a boiler node's (empty, or the key misspelt).
    cases.append(({}, None, "boiler.json: heating: has neither room (a valve node's settings) nor rooms "
                            "(the boiler node's)"))
    cases.append(({"Rooms": boiler["rooms"]}, None, "boiler.json: heating: has neither room"))
    # A manual room without its target.
    cases.append(({"room": {"mode": "manual"}}, None, "boiler.json: heating.room.manual_target_dc: is missing"))
    # More rooms than a boiler node takes (heatsettings.MAX_ROOMS: what its heap holds with room to spare).
    bad = json.loads(json.dumps(boiler))
    bad["rooms"] = [{"id": f"room{number}", "rated_w": 800} for number in range(9)]
    cases.append((bad, None, "boiler.json: heating.rooms: has 9 rooms; a boiler node commands at most 8 valves"))
    # A load-sharing setting, and a room's own load-sharing fact, named where they are in the file.
    bad = json.loads(json.dumps(boiler))
    bad["load_sharing"] = {"tier_1_initial_pct": 75}
    cases.append((bad, None, "boiler.json: heating.load_sharing.tier_1_initial_pct: 75 is not a multiple of 10"))
    bad = json.loads(json.dumps(boiler))
    bad["rooms"][0]["load_sharing"] = {"lookahead_ms": -1}
    cases.append((bad, None, "boiler.json: heating.rooms[0].load_sharing.lookahead_ms: -1 is out of range 0..86400000"))
    # The interlock: off (0 %) is refused, and so is a minimum the rooms' valves cannot reach all open.
    bad = json.loads(json.dumps(boiler))
    bad["boiler"]["min_valve_open_pct"] = 0
    cases.append((bad, None, "boiler.json: heating.boiler.min_valve_open_pct: 0 is out of range 10..1000"))
    bad = json.loads(json.dumps(boiler))
    bad["rooms"] = bad["rooms"][:2]
    bad["boiler"]["min_valve_open_pct"] = 300
    cases.append((bad, None, "boiler.json: heating.boiler.min_valve_open_pct: 300 is more than the 2 rooms' valves "
                             "open together (200)"))
    for content, group_file, expected in cases:
        path = _write(tmp_path, "boiler.json", content)
        args = ["heating-check", str(path)] + (["--group", str(group_file)] if group_file is not None else [])
        done = _run(device_root, *args)
        assert done.returncode == 2 and done.stdout == "", (expected, done)
        assert expected in done.stderr and len(done.stderr.splitlines()) == 1, (expected, done.stderr)

    # A group config with no boiler node: a valve node's room would never be heated.
    lonely = json.loads(group.read_text())
    lonely["members"] = [member for member in lonely["members"] if member["kind"] != "boiler"]
    done = _run(device_root, "heating-check", str(_write(tmp_path, "kids.json", json.loads(json.dumps(files["kids"])))),
                "--group", str(_write(tmp_path, "lonely.json", lonely)))
    assert done.returncode == 2, done.stderr
    assert done.stderr.endswith('lonely.json: members: has no boiler node in group "sim": no room is heated\n'), \
        done.stderr
    # Not JSON: named as the node names it in its answer to PUT /heating (loadmesh.node.jsontext), a trailing
    # comma too, which the node's own json reads past, and a key twice in one object, which json takes (the last).
    broken = tmp_path / "broken.json"
    for text, fault in (('{"room": {"mode": "auto"', "the body ends inside an object at byte 24"),
                        ('{"room": {"mode": "off",}}', "a comma before '}' at byte 23"),
                        ('{"room": {"mode": "off", "mode": "auto"}}', 'the key "mode" twice in one object at byte 25')):
        broken.write_text(text)
        done = _run(device_root, "heating-check", str(broken))
        expected = f"loadmesh heating-check: {broken}: heating: the body is not JSON: {fault}\n"
        assert (done.returncode, done.stderr) == (2, expected)
