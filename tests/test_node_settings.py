"""node.json, checked (firmware code on CPython, as the simulator's virtual nodes run it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadmesh.companion import cli
from loadmesh.core.errors import FieldError
from loadmesh.node import settings


def test_peers_are_fetched_from_ipv4_addresses_only() -> None:
    parsed = settings.parse({"id": "evse1", "peers_http": {"evse2": ["192.168.1.12", 80]}})
    assert parsed["peers_http"] == {"evse2": ["192.168.1.12", 80]}
    # A name would be looked up in the fetch, which blocks a MicroPython node's loop for as long as DNS takes.
    # No leading zeros: the C library and lwIP read "012" as octal (10), another address than the one checked.
    for host in ("evse2.local", "192.168.1", "192.168.1.256", "1.2.3.4.5", "", 7, "192.168.001.12", "010.0.0.1",
                 "192.168.1.1²", "192.168.1.+1", "192.168..1"):
        with pytest.raises(FieldError) as refused:
            settings.parse({"id": "evse1", "peers_http": {"evse2": [host, 80]}})
        assert refused.value.field == "node.peers_http.evse2[0]"
        assert "is not an IPv4 address" in refused.value.problem


# As an installer writes them wrong: no address, a name, shorthand the C library would widen ("16" is 0.0.0.16,
# "192.168.1" is 192.168.0.1), a URL, a trailing dot. Before, any string of 1 to 64 characters passed, and at boot
# getaddrinfo raised out of the node on a name it could not find.
NOT_ADDRESSES = ("", " ", "16", "999.1.1.1", "192.168.1", "192.168.1.1.", " 192.168.1.1", "http://192.168.1.1",
                 "192.168.1.1:4210", "evse2.local", "localhost", 4210, None, True, ["127.0.0.1"])


@pytest.mark.parametrize("key", ["mesh_host", "bind_host", "http_host"])
def test_every_host_is_an_ipv4_address(key: str) -> None:
    for host in NOT_ADDRESSES:
        with pytest.raises(FieldError) as refused:
            settings.parse({"id": "evse1", key: host})
        assert (refused.value.field, "is not an IPv4 address" in refused.value.problem) == ("node." + key, True), host
    assert settings.parse({"id": "evse1", key: "127.0.0.1"})[key] == "127.0.0.1"


def test_heartbeats_go_somewhere() -> None:
    assert settings.parse({"mesh_host": "192.168.1.255"})["mesh_host"] == "192.168.1.255"  # a subnet's broadcast
    with pytest.raises(FieldError) as refused:
        settings.parse({"mesh_host": "0.0.0.0"})
    assert refused.value.field == "node.mesh_host"


def test_a_node_is_not_its_own_peer() -> None:
    # Before, only node-check --group refused it (companion/membership.py): without the group file it passed, and
    # the node took it.
    with pytest.raises(FieldError) as refused:
        settings.parse({"id": "evse1", "peers_http": {"evse1": ["192.168.1.11", 80], "evse2": ["192.168.1.12", 80]}})
    assert (refused.value.field, refused.value.problem) == ("node.peers_http.evse1", "is this node itself (a node "
                                                                                     "fetches configs from its peers)")
    # No id yet (a node waiting for adoption): any member may be listed.
    assert list(settings.parse({"peers_http": {"evse1": ["192.168.1.11", 80]}})["peers_http"]) == ["evse1"]


@pytest.mark.parametrize("key", ["mesh_port", "mesh_dest_port", "http_port"])
def test_ports_are_integers_1_to_65535(key: str) -> None:
    for port in (0, 65536, -1, "80", 80.0, True, None):
        with pytest.raises(FieldError) as refused:
            settings.parse({key: port})
        assert refused.value.field == "node." + key, port
    assert settings.parse({key: 65535})[key] == 65535


def test_the_http_port_may_be_the_mesh_port() -> None:
    # The HTTP API is TCP, the mesh UDP: one number, two sockets that do not meet.
    parsed = settings.parse({"mesh_port": 4210, "http_port": 4210})
    assert (parsed["mesh_port"], parsed["mesh_dest_port"], parsed["http_port"]) == (4210, 4210, 4210)


def test_an_unknown_or_misspelt_key_is_refused() -> None:
    with pytest.raises(FieldError) as refused:
        settings.parse({"id": "evse1", "http_prot": 80})
    assert refused.value.field == "node.http_prot"


def test_node_check_refuses_a_host_that_is_no_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = tmp_path / "node.json"
    node.write_text(json.dumps({"id": "evse1", "mesh_host": "16"}))
    (tmp_path / "device").mkdir()
    assert cli.main(["node-check", str(node), "--write", str(tmp_path / "device")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f'loadmesh node-check: {node}: node.mesh_host: "16" is not an IPv4 address'), err
    assert list((tmp_path / "device").iterdir()) == []  # nothing written for the node to boot with
