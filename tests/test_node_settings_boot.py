"""A node that boots with a node.json written wrong (by hand, or by a loadmesh older than its check) on the node
image: it boots safe, runs no config, and says why."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from loadmesh.core import configsync, groupconfig, heartbeat
from loadmesh.node.store import Store

from . import mpnode

KEY = bytes(range(32))
CONFIG = groupconfig.parse({
    "group": "home", "version": 1, "updated_at": 1, "origin": "test", "key_id": "k1",
    "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100},
    "members": [{"id": "garage", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}]})


def _boot(device_root: Path, tmp_path: Path, node_json: dict[str, object], adopted: bool = True) -> tuple[dict, str]:
    """A node booted from its store with node_json, one tick: its /status, and all it printed."""
    root = tmp_path / "node"
    root.mkdir()
    store = Store(str(root))
    if adopted:
        store.write_key(KEY)
        store.write_json("config.json", CONFIG)
    store.write_json("node.json", node_json)
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"hal": "esp32"}))
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "esp32_node_check.py", str(root), str(hw)),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr  # before: OSError out of Mesh() for a name
    out = json.loads(result.stdout.splitlines()[-1])
    return out, result.stdout


# Loopback, so that a node that did take the file would bind and run.
GOOD = {"id": "garage", "mesh_port": 14299, "mesh_host": "127.0.0.1", "bind_host": "127.0.0.1"}


@pytest.mark.parametrize("wrong", [{"mesh_host": "http://127.0.0.1"}, {"bind_host": "node.local."},
                                   {"mesh_host": "16"}, {"mesh_host": "127.0.1"}])
def test_a_host_that_is_no_address_boots_the_node_safe_with_no_config(device_root: Path, tmp_path: Path,
                                                                       wrong: dict[str, object]) -> None:
    # Before: the names raised OSError out of boot (getaddrinfo found nothing), and "16" and "127.0.1" ran the
    # mesh to 0.0.0.16 and 127.0.0.1, widened by the C library.
    out, console = _boot(device_root, tmp_path, {**GOOD, **wrong})
    status = out["status"]
    assert (status["state"], out["ticked"]) == ("no_config", True)
    # Why, in /status and on the console: before, "config.json: node.id: this node has no member id (node.json)",
    # which blamed the config and hid the field.
    [key] = wrong
    assert status["error"].startswith("node.json: node." + key + ": "), status["error"]
    assert "is not an IPv4 address" in status["error"]
    lines = console.splitlines()
    assert lines[0].startswith("loadmesh node: node.json refused (node." + key + ": "), console
    assert lines[0].endswith("); no member id, so no config runs, and the HTTP API is on port 80"), console
    assert lines[1] == "loadmesh node ?: boot 1, no config it can run (" + status["error"] + ")", console


def test_an_unadopted_node_says_its_node_json_was_refused(device_root: Path, tmp_path: Path) -> None:
    out, console = _boot(device_root, tmp_path, {"http_host": "", "http_port": 8080}, adopted=False)
    status = out["status"]
    assert status["state"] == "unadopted"
    assert status["error"].startswith("node.json: node.http_host: "), status["error"]
    assert console.splitlines()[0].startswith('loadmesh node: node.json refused (node.http_host: ""'), console


def test_a_mesh_port_it_cannot_have_leaves_the_node_safe_and_saying_why(device_root: Path, tmp_path: Path) -> None:
    # node.json passes, and the stack refuses the socket: another program holds the port (two nodes on one computer
    # given one mesh_port), or bind_host is no address of this node. Before, OSError out of boot: a traceback, the
    # node halted half switched, with no API to say why.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        out, console = _boot(device_root, tmp_path, {**GOOD, "mesh_port": holder.getsockname()[1]})
    status = out["status"]
    assert (status["state"], out["ticked"]) == ("no_config", True)
    assert status["error"].startswith("node.json: the mesh cannot listen on 127.0.0.1 port "), status["error"]
    assert "EADDRINUSE" in status["error"], status["error"]
    assert console.splitlines()[0] == "loadmesh node garage: boot 1, no config it can run (" + status["error"] + ")"


def test_a_bind_host_that_is_not_the_nodes_leaves_it_safe_and_saying_why(device_root: Path, tmp_path: Path) -> None:
    out, _ = _boot(device_root, tmp_path, {**GOOD, "bind_host": "192.0.2.1"})  # TEST-NET-1: no machine's address
    status = out["status"]
    assert (status["state"], out["ticked"]) == ("no_config", True)
    assert status["error"].startswith("node.json: the mesh cannot listen on 192.0.2.1 port 14299 ("), status["error"]


# A node with its key and no config yet, the mesh port held: PUT /config (as NodeApi hands it the body) is refused,
# and the config is not kept for the next boot.
PUT_SCRIPT = """
import json, sys
from loadmesh.core.errors import FieldError
from loadmesh.node import runtime
node = runtime.Node(sys.argv[1])
with open(sys.argv[2], "rb") as source:
    body = source.read()
try:
    answer = node.put_config(body)
except FieldError as exc:
    answer = "refused: " + str(exc)
print(json.dumps({"answer": answer, "state": node.mode, "error": node.error}))
"""


def test_a_config_put_while_the_mesh_port_is_held_is_refused_and_not_kept(device_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "node"
    root.mkdir()
    store = Store(str(root))
    store.write_key(KEY)
    script = tmp_path / "put_config.py"
    script.write_text(PUT_SCRIPT)
    sealed = tmp_path / "config.sealed"
    sealed.write_bytes(configsync.seal(heartbeat.prepare_key(KEY), CONFIG))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        store.write_json("node.json", {**GOOD, "mesh_port": holder.getsockname()[1]})
        result = subprocess.run(mpnode.command(mpnode.node_image(device_root), script, str(root), str(sealed)),
                                capture_output=True, text=True, env=mpnode.environment(None), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["answer"].startswith("refused: node.json: the mesh cannot listen on 127.0.0.1 port "), out
    assert out["state"] == "no_config"
    assert not (root / "config.json").exists()  # before the mesh was opened first, the refused config was kept
