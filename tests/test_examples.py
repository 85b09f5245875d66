"""The files in examples/ pass the checks a user runs on them, through the real `loadmesh` command.

A user copies these and edits them; a field renamed or a bound changed in the
code must show up here, not on their node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadmesh.node import settings

from .conftest import ROOT

LOADMESH = str(Path(sys.executable).with_name("loadmesh"))
EXAMPLES = ROOT / "examples"

# Each example and the command a user checks it with (examples/README.md).
CHECKS: dict[str, tuple[str, ...]] = {
    "group-evse.json": ("config-hash",),
    "group-heating.json": ("config-hash",),
    "hw-evse.json": ("hw-check",),
    "hw-valve.json": ("hw-check",),
    "hw-boiler.json": ("hw-check",),
    "heating-boiler.json": ("heating-check", "--group", "group-heating.json"),
    "heating-lounge.json": ("heating-check", "--group", "group-heating.json"),
    "node-evse1.json": ("node-check", "--group", "group-evse.json"),
    "node-boiler.json": ("node-check", "--group", "group-heating.json"),
    "node-lounge.json": ("node-check", "--group", "group-heating.json"),
}
NODE_FILES = sorted(name for name in CHECKS if name.startswith("node-"))
WRITES = {"hw-check": "hw.json", "heating-check": "heating.json", "node-check": "node.json"}  # --write DIR's file


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LOADMESH, *args], capture_output=True, text=True, cwd=EXAMPLES)


def test_every_example_is_checked_and_listed_in_the_readme() -> None:
    files = sorted(path.name for path in EXAMPLES.glob("*.json"))
    assert files == sorted(CHECKS)
    readme = (EXAMPLES / "README.md").read_text()
    for name in files:
        assert "`" + name + "`" in readme, name


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_example_passes_its_check(name: str) -> None:
    command, *extra = CHECKS[name]
    done = _run(command, name, *extra)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "change-me" not in done.stdout  # the Wi-Fi password is shown by its length only


def test_the_heating_files_match_the_group() -> None:
    # The boiler's rooms are exactly the group's valve nodes, the lounge is one of them.
    group = json.loads((EXAMPLES / "group-heating.json").read_text())
    valves = sorted(member["id"] for member in group["members"] if member["kind"] == "valve")
    done = _run("heating-check", "heating-boiler.json", "--group", "group-heating.json")
    assert json.loads(done.stdout)["rooms"] == valves
    assert "lounge" in valves


@pytest.mark.parametrize("name", NODE_FILES)
def test_the_node_json_names_a_member_and_its_peers(name: str) -> None:
    # Every other member of its group, so that a config put to any one of them reaches it (docs/firmware.md,
    # "Config sync").
    node = settings.parse(json.loads((EXAMPLES / name).read_text()))
    group = json.loads((EXAMPLES / CHECKS[name][2]).read_text())
    members = {member["id"] for member in group["members"]}
    peers = node["peers_http"]
    assert isinstance(peers, dict)
    assert node["id"] in members
    assert set(peers) == members - {node["id"]}


def test_the_node_jsons_agree_on_each_nodes_address() -> None:
    # The groups share the house's network: a member has one address in every file that names it, and no two
    # members share one (an installer copies one file to make the next).
    addresses: dict[str, object] = {}
    for name in NODE_FILES:
        for peer, address in json.loads((EXAMPLES / name).read_text())["peers_http"].items():
            assert addresses.setdefault(peer, address) == address, (name, peer)
    shown = [address[0] for address in addresses.values()]  # type: ignore[index]
    assert len(set(shown)) == len(shown), addresses


def test_the_heating_group_has_a_node_json_for_its_boiler_and_a_valve() -> None:
    # Each of its nodes needs one before adoption; the rest of its valve nodes start from the lounge's.
    group = json.loads((EXAMPLES / "group-heating.json").read_text())
    kinds = {member["id"]: member["kind"] for member in group["members"]}
    ids = {json.loads((EXAMPLES / name).read_text())["id"] for name in NODE_FILES}
    assert {kinds[node] for node in ids if node in kinds} == {"boiler", "valve"}


def test_a_broken_field_in_an_example_fails_its_check(tmp_path: Path) -> None:
    # The checks above can fail: the same file with one field wrong is refused, naming it.
    hw = json.loads((EXAMPLES / "hw-evse.json").read_text())
    hw["relay"]["pin"] = 6  # the module's flash
    broken = tmp_path / "hw.json"
    broken.write_text(json.dumps(hw))
    done = _run("hw-check", str(broken))
    assert done.returncode == 2 and "hw.relay.pin" in done.stderr, done.stderr


@pytest.mark.parametrize("name", [name for name, check in CHECKS.items() if check[0] in WRITES])
def test_write_puts_a_checked_file_in_the_form_the_node_reads(tmp_path: Path, name: str) -> None:
    from loadmesh.node import store

    command, *rest = CHECKS[name]
    folder = tmp_path / "node"
    done = _run(command, name, *rest, "--write", str(folder))
    node_name = WRITES[command]
    assert done.returncode == 0, done.stderr
    assert f"wrote {folder / node_name}" in done.stderr and "change-me" not in done.stderr + done.stdout
    kept = store.Store(str(folder))
    assert kept.read_json(node_name) == json.loads((EXAMPLES / name).read_text())
    assert kept.state[node_name] == store.OK
    if command == "heating-check":
        assert kept.read(node_name) == (EXAMPLES / name).read_bytes()  # as PUT /heating keeps it: the bytes as sent
    if command == "hw-check":
        # It holds the Wi-Fi password: the installer's alone, under any umask (this run's is usually 022).
        assert (folder / node_name).stat().st_mode & 0o777 == 0o600
        done = _run(command, name, *rest, "--write", str(folder))  # over a copy already there: still private
        assert done.returncode == 0 and (folder / node_name).stat().st_mode & 0o777 == 0o600


def test_write_writes_nothing_when_the_check_fails(tmp_path: Path) -> None:
    wiring = json.loads((EXAMPLES / "hw-evse.json").read_text())
    wiring["relay"]["pin"] = 6  # the SPI flash's
    broken = tmp_path / "hw.json"
    broken.write_text(json.dumps(wiring))
    done = _run("hw-check", str(broken), "--write", str(tmp_path / "node"))
    assert done.returncode == 2 and "hw.relay.pin" in done.stderr
    assert not (tmp_path / "node").exists()
