"""The installer's commands against a real node process on loopback: key-new, node-check, adopt, put, get, status.

One unadopted node (the node image's main.py, the "none" HAL) is taken the
whole way, as an installer would, through `loadmesh`'s own entry: adopted with
the code it prints, given its group config, its heating.json and its
load-sharing switch, each read back with get (and the config edited and put
again); and what a node refuses on the way is said in one line.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import stat
import time
from pathlib import Path

import pytest

from loadmesh.companion import adopt, cli
from loadmesh.companion.sim.runner import free_port
from loadmesh.core import groupconfig
from loadmesh.node import adoption, settings
from loadmesh.node.store import Store

from .test_node_adoption import NodeRun, unadopted_node

pytestmark = pytest.mark.wallclock  # a node against the wall clock: tools/test runs these in their own lane

BOILER_FILE = b'{"rooms": [{"id": "bath", "rated_w": 900}], "boiler": {"min_off_ms": 0}}\n'


def _group(version: int) -> dict[str, object]:
    return {"group": "house", "version": version, "updated_at": version, "origin": "test", "key_id": "house",
            "site": {"phases": 1, "voltage_v": 230, "limit_ma": [25000], "safety_pct": 100}, "circuits": [],
            "members": [{"id": node, "kind": kind, "phases": "L1", "min_ma": 0, "max_ma": 0, "step_ma": 1000,
                         "priority": 0, "mode": "off"} for node, kind in (("boiler", "boiler"), ("bath", "valve"))]}


def loadmesh(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`loadmesh ARGS` through its entry, in this process: (exit, stdout, stderr)."""
    code = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_installer_adopts_a_node_then_gives_it_its_config_and_heating(device_root: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    node = unadopted_node(device_root, tmp_path, {"hal": "none"})
    try:
        code = node.start().rsplit(" ", 1)[1]  # "loadmesh node: unadopted; adoption code <hex>"
        host = f"127.0.0.1:{node.http_port}"
        files = tmp_path / "installer"
        files.mkdir()
        key, other_key = files / "house.key", files / "other.key"
        for path in (key, other_key):
            assert loadmesh(capsys, "key-new", path)[0] == 0
        node_json = files / "node.json"
        # Another HTTP port than the one it listens on now: it moves there at its next boot.
        next_port = free_port(socket.SOCK_STREAM)
        node_json.write_text(json.dumps({"id": "boiler", "http_port": next_port, "http_host": "127.0.0.1",
                                         "mesh_port": free_port(socket.SOCK_DGRAM), "mesh_host": "127.0.0.1",
                                         "mesh_dest_port": 9, "bind_host": "127.0.0.1"}))
        checked = settings.parse(json.loads(node_json.read_text()))
        assert loadmesh(capsys, "node-check", node_json) == (0, json.dumps(checked, sort_keys=True,
                                                                           separators=(",", ":")) + "\n", "")
        groups = {}
        for version in (1, 2):
            groups[version] = files / f"group-v{version}.json"
            groups[version].write_text(json.dumps(_group(version)))
        heating = files / "heating.json"
        heating.write_bytes(BOILER_FILE)
        said = f"loadmesh put: {host}: "

        # Before adoption the node has no key: no signature is valid.
        refused = f"refused the signature: {key} is not this node's group key, or the node is not adopted yet " \
                  f"(loadmesh status {host} says which)"
        unadopted = refused + "; the node's words: this node has no group key (it is not adopted yet)\n"
        assert loadmesh(capsys, "put", host, "config", groups[1], "--key", key) == (2, "", said + unadopted)
        assert loadmesh(capsys, "adopt", host, "--code", "00" * 16, "--key", key, "--node", node_json) == (
            2, "", f"loadmesh adopt: {host}: refused the code: it is not this node's adoption code (the node "
                   "prints its code on its console at every boot until it is adopted)\n")
        assert node.request("GET", "/status")[1]["state"] == "unadopted"

        floor_before = adopt.default_boot_floor(time.time())
        spaced = " ".join(code[at:at + 8] for at in range(0, len(code), 8))  # as a label might print it
        exit_code, out, err = loadmesh(capsys, "adopt", host, "--code", spaced, "--key", key, "--node", node_json)
        floor_after = adopt.default_boot_floor(time.time())
        assert (exit_code, err) == (0, ""), err
        found = re.fullmatch(rf"loadmesh adopt: {re.escape(host)}: adopted as boiler, boot (\d+); it runs no config "
                             rf"yet: next, loadmesh put {re.escape(host)} config GROUP\.json "
                             rf"--key {re.escape(str(key))} \(after its next boot on port {next_port}, as node\.json "
                             r"says\)\n", out)
        assert found, out
        boot_id = int(found.group(1))
        assert floor_before + 1 <= boot_id <= floor_after + 1  # above the default floor: the clock's minutes
        assert loadmesh(capsys, "adopt", host, "--code", code, "--key", key, "--node", node_json) == (
            2, "", f"loadmesh adopt: {host}: is adopted already: a node is adopted once, until it is reset to "
                   f"factory (its key removed); loadmesh status {host} shows its id, loadmesh put gives it its "
                   "config\n")
        store = Store(str(node.folder))
        assert store.read_key() == bytes.fromhex(key.read_text())
        assert store.read_json("node.json") == checked  # what node-check printed is what the node keeps

        got = f"loadmesh get: {host}: "
        assert loadmesh(capsys, "get", host, "config", "--key", key) == (
            2, "", got + f"runs no config yet: loadmesh put {host} config GROUP.json --key {key} gives it its first\n")
        assert loadmesh(capsys, "get", host, "heating", "--key", key) == (
            2, "", got + "refused: heating: this node runs no config yet (no_config): its kind is not known\n")

        assert loadmesh(capsys, "put", host, "config", groups[2], "--key", other_key) == (
            2, "", said + refused.replace(str(key), str(other_key))
            + "; the node's words: the signature does not match the request (another node, key, path or body)\n")
        for what in ("config", "heating", "load_sharing"):
            assert loadmesh(capsys, "get", host, what, "--key", other_key) == (
                2, "", got + refused.replace(str(key), str(other_key)).replace("the signature", "the token") + "\n")
        announced = groupconfig.announced(groupconfig.parse(_group(2)))
        assert loadmesh(capsys, "put", host, "config", groups[2], "--key", key) == (
            0, said + f"took config version 2 ({announced}); it runs it from its next tick\n", "")
        assert loadmesh(capsys, "put", host, "config", groups[2], "--key", key) == (
            0, said + f"runs config version 2 ({announced}) already; nothing changed\n", "")
        # The way without a network writes what adoption and this put left in the node's file system, byte for byte.
        written = files / "node-files"
        assert loadmesh(capsys, "node-files", "--key", key, "--node", node_json, "--config", groups[2],
                        "--boot-floor", boot_id - 1, "--write", written)[0] == 0
        for name in ("key", "node.json", "config.json"):
            assert (written / name).read_bytes() == (node.folder / name).read_bytes(), name
        assert Store(str(written)).next_boot_id() == boot_id  # what adoption answered
        assert loadmesh(capsys, "put", host, "config", groups[1], "--key", key) == (
            2, "", said + "refused: config: version 1 does not win over the adopted version 2; "
                          "nothing changed\n")

        # get -> edit -> put: the config as the node runs it, plain, is what put config takes once its version is up.
        config_v2 = groupconfig.parse(_group(2))
        exit_code, out, err = loadmesh(capsys, "get", host, "config", "--key", key)
        assert (exit_code, err) == (0, got + f"runs config version 2 ({announced}); to change it, raise its "
                                             f"version, then loadmesh put {host} config GROUP.json --key {key}\n")
        assert json.loads(out) == config_v2 and out.startswith('{\n  "antiflap_ms": '), out  # readable: indented
        edited = files / "group-got.json"
        assert loadmesh(capsys, "get", host, "config", "--key", key, "--write", edited) == (
            0, "", got + f"wrote {edited}: runs config version 2 ({announced}); to change it, raise its version, "
                         f"then loadmesh put {host} config {edited} --key {key}\n")
        assert json.loads(edited.read_text()) == config_v2
        assert loadmesh(capsys, "put", host, "config", edited, "--key", key) == (
            0, said + f"runs config version 2 ({announced}) already; nothing changed\n", "")
        edited.write_text(edited.read_text().replace('"version": 2,', '"version": 3,'))
        announced_v3 = groupconfig.announced(groupconfig.parse(dict(config_v2, version=3)))
        assert loadmesh(capsys, "put", host, "config", edited, "--key", key) == (
            0, said + f"took config version 3 ({announced_v3}); it runs it from its next tick\n", "")
        assert loadmesh(capsys, "get", host, "config", "--key", key, "--write", edited) == (
            2, "", f"loadmesh get: {edited}: exists already; give another name, or remove it first (get never "
                   "writes over a file: it may hold edits not sent yet)\n")
        assert json.loads(edited.read_text())["version"] == 3
        assert loadmesh(capsys, "put", host, "heating", heating, "--key", key) == (
            0, said + "kept heating.json and runs it: the boiler node of the rooms bath\n", "")
        # A valve node's file sent to the boiler node (heating-lounge.json for heating-boiler.json): the node's own
        # words name only a field it does not know; the line says which kind of file it was and which node took it.
        valve_file = files / "heating-bath.json"
        valve_file.write_text('{"room": {"mode": "auto"}}')
        assert loadmesh(capsys, "put", host, "heating", valve_file, "--key", key) == (
            2, "", said + f"refused: heating.room: is not a known field; nothing changed ({valve_file} is a valve "
                          "node's heating.json, and this node takes a boiler node's: loadmesh status "
                          f"{host} shows which node it is)\n")
        kept_heating = files / "heating-got.json"
        assert loadmesh(capsys, "get", host, "heating", "--key", key) == (
            0, json.dumps(json.loads(BOILER_FILE), indent=2, sort_keys=True) + "\n",
            got + f"keeps this heating.json; to change it, loadmesh put {host} heating HEATING.json --key {key}\n")
        assert loadmesh(capsys, "get", host, "heating", "--key", key, "--write", kept_heating)[0] == 0
        assert loadmesh(capsys, "put", host, "heating", kept_heating, "--key", key) == (
            0, said + "kept heating.json and runs it: the boiler node of the rooms bath\n", "")
        exit_code, out, err = loadmesh(capsys, "put", host, "load_sharing", "off", "--key", key)
        assert (exit_code, err) == (0, "")
        assert out.startswith(said + "switched load sharing off (tier state "), out
        exit_code, out, err = loadmesh(capsys, "get", host, "load_sharing", "--key", key)
        assert (exit_code, err) == (0, got + f"load sharing is off; loadmesh put {host} load_sharing on|off --key "
                                             f"{key} switches it\n")
        assert json.loads(out)["switch"] is False and json.loads(out)["file"] == "ok", out

        exit_code, out, err = loadmesh(capsys, "status", host)
        assert (exit_code, err) == (0, "")
        assert out.startswith("node      boiler (boiler): running, up "), out
        assert f", boot {boot_id}\n" in out
        # As it came (get's copy, put back), as heating-check --write would write it.
        assert store.read("heating.json") == kept_heating.read_bytes()
        assert store.read_json("load_sharing.json") == {"enabled": False}
    finally:
        node.kill()


def test_a_node_boots_adopted_from_the_files_node_files_writes(device_root: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    files = tmp_path / "installer"
    files.mkdir()
    key = files / "house.key"
    assert loadmesh(capsys, "key-new", key)[0] == 0
    http_port = free_port(socket.SOCK_STREAM)
    node_json = files / "node.json"
    node_json.write_text(json.dumps({"id": "bath", "http_port": http_port, "http_host": "127.0.0.1",
                                     "mesh_port": free_port(socket.SOCK_DGRAM), "mesh_host": "127.0.0.1",
                                     "mesh_dest_port": 9, "bind_host": "127.0.0.1"}))
    group = files / "group.json"
    group.write_text(json.dumps(_group(1)))
    folder = tmp_path / "node"  # the flashed node's file system: its wiring, then what node-files wrote
    folder.mkdir()
    Store(str(folder)).write_json("hw.json", {"hal": "none"})
    exit_code, out, err = loadmesh(capsys, "node-files", "--key", key, "--node", node_json, "--config", group,
                                   "--boot-floor", 5000, "--write", folder)
    announced = groupconfig.announced(groupconfig.parse(_group(1)))
    assert (exit_code, out) == (0, ""), err
    assert err.startswith(f"loadmesh node-files: wrote key, node.json, config.json, boot.a into {folder} as node "
                          f"bath keeps them once adopted (first boot id above 5000) and given config version 1 "
                          f"({announced}); copy them onto its file system beside its hw.json (mpremote cp "
                          f"{folder / 'key'} :key + cp "), err
    # mpremote stops the node's program to copy (it leaves the board at its REPL): the line ends by restarting it.
    assert f" + cp {folder / 'boot.a'} :boot.a + reset), then delete {folder / 'key'}: " in err, err
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o600
    node = NodeRun(device_root, folder, http_port)
    try:
        assert node.start() == f"loadmesh node bath: boot 5001, config version 1 {announced}"
        host = f"127.0.0.1:{http_port}"
        exit_code, out, err = loadmesh(capsys, "get", host, "config", "--key", key)
        assert (exit_code, json.loads(out)) == (0, groupconfig.parse(_group(1))), err
        exit_code, out, err = loadmesh(capsys, "status", host)
        assert (exit_code, err) == (0, "")
        assert out.startswith("node      bath (valve): running, up "), out
        assert ", boot 5001\n" in out, out
        boiler_file = files / "heating-boiler.json"  # the boiler node's file, sent to a valve node
        boiler_file.write_bytes(BOILER_FILE)
        exit_code, out, err = loadmesh(capsys, "put", host, "heating", boiler_file, "--key", key)
        assert (exit_code, out) == (2, "")
        assert re.fullmatch(rf"loadmesh put: {re.escape(host)}: refused: heating\.(rooms|boiler): is not a known "
                            rf"field; nothing changed \({re.escape(str(boiler_file))} is a boiler node's "
                            rf"heating\.json, and this node takes a valve node's: loadmesh status {re.escape(host)} "
                            r"shows which node it is\)\n", err), err
    finally:
        node.kill()


def test_a_node_adopted_by_copying_files_deletes_the_code_it_showed_so_a_reset_makes_a_new_one(
        device_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Flashed, it boots unadopted and shows a code; the installer then copies node-files' output in instead.
    node = unadopted_node(device_root, tmp_path, {"hal": "none"})
    try:
        shown = node.start().rsplit(" ", 1)[1]  # "loadmesh node: unadopted; adoption code <hex>"
    finally:
        node.kill()
    code_file = node.folder / adoption.CODE_FILE
    assert Store(str(node.folder)).read(adoption.CODE_FILE) == shown.encode()
    files = tmp_path / "installer"
    files.mkdir()
    key = files / "house.key"
    assert loadmesh(capsys, "key-new", key)[0] == 0
    node_json = files / "node.json"
    node_json.write_text(json.dumps({"id": "bath", "http_port": node.http_port, "http_host": "127.0.0.1",
                                     "mesh_port": free_port(socket.SOCK_DGRAM), "mesh_host": "127.0.0.1",
                                     "mesh_dest_port": 9, "bind_host": "127.0.0.1"}))
    group = files / "group.json"
    group.write_text(json.dumps(_group(1)))
    written = files / "out"
    written.mkdir()
    exit_code, _, err = loadmesh(capsys, "node-files", "--key", key, "--node", node_json, "--config", group,
                                 "--boot-floor", 5000, "--write", written)
    assert exit_code == 0, err
    for name in ("key", "node.json", "config.json", "boot.a"):  # as mpremote cp puts them
        shutil.copyfile(written / name, node.folder / name)
    announced = groupconfig.announced(groupconfig.parse(_group(1)))
    try:
        assert node.start() == f"loadmesh node bath: boot 5001, config version 1 {announced}"
        assert node.request("GET", "/status")[1]["state"] == "running"
        assert not code_file.exists() and not (node.folder / (adoption.CODE_FILE + ".tmp")).exists()
        assert (node.folder / "node.log").read_text().splitlines()[1:] == [
            "loadmesh node bath: adopted, so the adoption code from before is deleted (a factory reset makes a "
            "new one)"]
        node.kill()
        node.start()  # once: nothing left to delete, nothing said
        assert (node.folder / "node.log").read_text().splitlines()[1:] == []
    finally:
        node.kill()
    # A factory reset (the key removed): unadopted again, with a code never shown before.
    (node.folder / "key").unlink()
    try:
        first = node.start()
        assert first.startswith("loadmesh node: unadopted; adoption code "), first
        assert first.rsplit(" ", 1)[1] != shown
    finally:
        node.kill()
