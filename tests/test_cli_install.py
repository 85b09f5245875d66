"""The installer's commands up to the network: key-new, node-check, what adopt, put and get check before sending.

No node runs here (tests/test_cli_adopt.py takes a node process the whole
way): each refusal below comes before a byte is sent, names the file, the
field and the value, and leaves nothing behind; the answers get cannot use
come from a listener on loopback that sends one canned answer.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from loadmesh.companion import adopt, cli, durable, groupkey, nodeput
from loadmesh.companion.sim.runner import free_port
from loadmesh.core import configsync, groupconfig, heartbeat
from loadmesh.node import adoption, httpapi, settings
from loadmesh.node.store import OK, Store

from .conftest import ROOT

EXAMPLES = ROOT / "examples"
NOBODY = "127.0.0.1:9"  # never reached: every case here is refused before the network


def loadmesh(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`loadmesh ARGS` through its entry, in this process: (exit, stdout, stderr)."""
    code = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "house.key"
    groupkey.write_new(path)
    return path


def test_key_new_writes_a_fresh_key_readable_by_its_owner_only(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a.key", tmp_path / "b.key"
    assert loadmesh(capsys, "key-new", first) == (0, "", f"loadmesh key-new: wrote a new 32-byte group key to "
                                                         f"{first}, readable by you only; keep it safe: whoever "
                                                         "holds it can command the group's nodes\n")
    assert loadmesh(capsys, "key-new", second)[0] == 0
    text = first.read_text()
    assert len(text) == 65 and text.endswith("\n") and bytes.fromhex(text)  # one line of 64 hex digits
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert groupkey.read(first) != groupkey.read(second)
    assert groupkey.token(groupkey.read(first)) == httpapi.token_for(bytes.fromhex(text))


def test_key_new_never_writes_over_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "house.key"
    path.write_text("the key the nodes hold\n")
    assert loadmesh(capsys, "key-new", path) == (
        2, "", f"loadmesh key-new: {path}: exists already; a group has one key, which its nodes hold: remove the "
               "file first if you mean to replace it (every node then needs adopting again)\n")
    assert path.read_text() == "the key the nodes hold\n"
    missing = tmp_path / "no-such-folder" / "house.key"
    assert loadmesh(capsys, "key-new", missing) == (2, "", f"loadmesh key-new: {missing}: no folder "
                                                           f"{missing.parent} to make it in: make the folder first\n")


def test_node_check_prints_the_settings_the_node_runs_and_writes_them_as_it_keeps_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = EXAMPLES / "node-evse1.json"
    raw = json.loads(example.read_text())
    code, out, err = loadmesh(capsys, "node-check", example, "--write", tmp_path / "node")
    assert code == 0
    assert json.loads(out) == settings.parse(raw)
    assert json.loads(out)["bind_host"] == "0.0.0.0"  # a default, filled in
    node_json = tmp_path / "node" / "node.json"
    # mpremote stops the node's program to copy (it leaves the board at its REPL): the line says to restart it.
    assert err == (f"loadmesh node-check: wrote {node_json} as the node keeps it; copy it to the node's file system "
                   f"as /node.json, then restart the node (e.g. mpremote cp {node_json} :node.json + reset)\n")
    kept = Store(str(tmp_path / "node"))
    assert kept.read_json("node.json") == raw and kept.state["node.json"] == OK


def test_node_check_says_when_a_file_gives_no_member_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "node.json"
    path.write_text('{"http_port": 8080}')
    code, out, err = loadmesh(capsys, "node-check", path)
    assert (code, json.loads(out)["id"]) == (0, None)
    assert err == (f"loadmesh node-check: {path}: no id: a node with this file and no key waits for adoption, "
                   "and loadmesh adopt takes the member id from here\n")


@pytest.mark.parametrize(("change", "group_file", "error"), [
    ({}, "group-heating.json", "node.id: \"evse1\" is not a member of group \"heating\" (its members: bedroom, boiler, "
                               "kitchen, lounge)"),
    ({"evse9": ["10.0.0.9", 80]}, "group-evse.json",
     "node.peers_http.evse9: is not a member of group \"garage\" (its members: evse1, evse2, evse3)"),
    ({"evse1": ["10.0.0.1", 80]}, "group-evse.json",
     "node.peers_http.evse1: is this node itself (a node fetches configs from its peers)"),
])
def test_node_check_with_the_group_refuses_an_id_or_a_peer_that_is_no_member(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], group_file: str,
        error: str) -> None:
    node = json.loads((EXAMPLES / "node-evse1.json").read_text())
    node["peers_http"].update(change)
    path = tmp_path / "node.json"
    path.write_text(json.dumps(node))
    assert loadmesh(capsys, "node-check", path, "--group", EXAMPLES / group_file, "--write", tmp_path / "out") == (
        2, "", f"loadmesh node-check: {path}: {error}\n")
    assert not (tmp_path / "out").exists()
    code, out, _ = loadmesh(capsys, "node-check", EXAMPLES / "node-evse1.json", "--group", EXAMPLES / "group-evse.json")
    assert (code, json.loads(out)["id"]) == (0, "evse1")


BAD_NODE_FILES = [
    # (node.json's text, what node-check and adopt say after the file's name)
    ('{"id": "evse 1"}', "node.id: \"evse 1\" is not a member id (letters, digits, '-', '_', '.')"),
    ('{"id": "evse1", "peers_http": {"evse2": ["evse2.local", 80]}}',
     "node.peers_http.evse2[0]: \"evse2.local\" is not an IPv4 address (a name would block the node while it is "
     "looked up; no leading zeros)"),
    ('{"id": "evse1", "http_prot": 80}', "node.http_prot: is not a known field (did you mean http_port?)"),
    ('{"id": "evse1",}', "a comma before '}': line 1 column 15 (char 14)"),
    ('{"id": "evse1", "id": "evse2"}', 'the key "id" twice in one object: line 1 column 17 (char 16)'),
]


@pytest.mark.parametrize(("text", "error"), BAD_NODE_FILES, ids=[error[:30] for _, error in BAD_NODE_FILES])
def test_a_bad_node_json_is_named_by_node_check_and_adopt_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key_file: Path, text: str, error: str) -> None:
    path = tmp_path / "node.json"
    path.write_text(text)
    assert loadmesh(capsys, "node-check", path, "--write", tmp_path / "node") == (
        2, "", f"loadmesh node-check: {path}: {error}\n")
    assert not (tmp_path / "node").exists()
    assert loadmesh(capsys, "adopt", NOBODY, "--code", "ab" * 16, "--key", key_file, "--node", path) == (
        2, "", f"loadmesh adopt: {path}: {error}\n")


def test_every_command_that_reads_an_installers_json_file_says_what_is_wrong_in_the_same_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key_file: Path) -> None:
    # json's words were its parser's ("Expecting ',' delimiter"); heating-check's are the node's (jsontext), and
    # every other reader says the same, at the line and column an editor shows.
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "id": "evse1"\n  "http_port": 80\n}\n')
    error = f"{broken}: a missing comma: line 3 column 3 (char 20)\n"
    group, node, heating = EXAMPLES / "group-evse.json", EXAMPLES / "node-evse1.json", EXAMPLES / "heating-lounge.json"
    for args in (("node-check", broken), ("node-check", node, "--group", broken),
                 ("adopt", NOBODY, "--code", "ab" * 16, "--key", key_file, "--node", broken),
                 ("put", NOBODY, "config", broken, "--key", key_file),
                 ("node-files", "--key", key_file, "--node", broken, "--config", group, "--write", tmp_path / "out"),
                 ("node-files", "--key", key_file, "--node", node, "--config", broken, "--write", tmp_path / "out"),
                 ("heating-check", heating, "--group", broken)):
        assert loadmesh(capsys, *args) == (2, "", f"loadmesh {args[0]}: {error}"), args
    assert not (tmp_path / "out").exists()


def test_adopt_needs_the_member_id_in_node_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                key_file: Path) -> None:
    path = tmp_path / "node.json"
    path.write_text('{"http_port": 80}')
    assert loadmesh(capsys, "adopt", NOBODY, "--code", "ab" * 16, "--key", key_file, "--node", path) == (
        2, "", f"loadmesh adopt: {path}: node.id: missing: adoption gives the node its member id from here\n")


BAD_KEY_FILES = [
    # (the key file's bytes, what adopt and put say after its name)
    (b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeZZ\n",
     "is not a group key: a key file holds the key as one line of hex digits, as loadmesh key-new writes it"),
    (b"0011223344556677\n", "holds a key of 8 bytes: a group key has 16 to 64 (loadmesh key-new makes 32)"),
    (b"LM1 0123456789abcdef\n" + b"ab" * 32, "is a key as a node stores it (its first line, LM1 and a hash, is the "
                                            "store's): give the hex on the line after it"),
    (b"\xff\xfe", "not UTF-8 text (byte 0xff at offset 0): UTF-16 text: save the file as UTF-8"),
]


@pytest.mark.parametrize(("data", "error"), BAD_KEY_FILES, ids=[error[:30] for _, error in BAD_KEY_FILES])
def test_a_bad_key_file_is_named_by_adopt_and_put(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes,
                                                  error: str) -> None:
    key = tmp_path / "house.key"
    key.write_bytes(data)
    node_json = EXAMPLES / "node-evse1.json"
    assert loadmesh(capsys, "adopt", NOBODY, "--code", "ab" * 16, "--key", key, "--node", node_json) == (
        2, "", f"loadmesh adopt: {key}: {error}\n")
    assert loadmesh(capsys, "put", NOBODY, "config", EXAMPLES / "group-evse.json", "--key", key) == (
        2, "", f"loadmesh put: {key}: {error}\n")
    missing = tmp_path / "missing.key"
    assert loadmesh(capsys, "put", NOBODY, "load_sharing", "on", "--key", missing) == (
        2, "", f"loadmesh put: {missing}: No such file or directory\n")


def test_the_code_is_taken_as_the_console_prints_it_or_grouped() -> None:
    code = bytes(range(16))
    printed = code.hex()
    assert adopt.parse_code(printed) == code
    assert adopt.parse_code(printed.upper()) == code
    assert adopt.parse_code(" ".join(printed[at:at + 4] for at in range(0, 32, 4))) == code
    assert adopt.parse_code("-".join(printed[at:at + 8] for at in range(0, 32, 8))) == code
    for wrong in (printed[:-2], printed + "00", printed[:-1] + "g", ""):
        with pytest.raises(ValueError, match="is not an adoption code: 32 hex digits, as the node's console prints"):
            adopt.parse_code(wrong)


def test_a_wrong_code_or_boot_floor_is_refused_before_the_network(capsys: pytest.CaptureFixture[str],
                                                                   key_file: Path) -> None:
    node_json = EXAMPLES / "node-evse1.json"
    assert loadmesh(capsys, "adopt", NOBODY, "--code", "ab" * 15, "--key", key_file, "--node", node_json) == (
        2, "", f"loadmesh adopt: \"{'ab' * 15}\" is not an adoption code: 32 hex digits, as the node's console prints "
               "them\n")
    with pytest.raises(SystemExit):
        cli.main(["adopt", NOBODY, "--code", "ab" * 16, "--key", str(key_file), "--node", str(node_json),
                  "--boot-floor", str(adoption.MAX_BOOT_ID)])
    assert capsys.readouterr().err.endswith(f"loadmesh adopt: error: argument --boot-floor: \"{adoption.MAX_BOOT_ID}\" "
                                            f"is not a number 0..{adoption.MAX_BOOT_ID - 1}\n")


def test_the_default_boot_floor_is_the_clocks_minutes_since_2024() -> None:
    assert adopt.default_boot_floor(1704067200) == 0  # 2024-01-01T00:00:00Z
    assert adopt.default_boot_floor(1704067200 + 59.9) == 0
    assert adopt.default_boot_floor(1704067200 + 60) == 1
    assert adopt.default_boot_floor(1735689600) == 366 * 24 * 60  # 2025-01-01: 2024 had 366 days
    assert adopt.default_boot_floor(0) == 0  # a clock before 2024 (a board without one): no floor at all


def test_put_config_seals_the_plain_config_as_config_seal_does(tmp_path: Path, key_file: Path) -> None:
    path = EXAMPLES / "group-evse.json"
    key = groupkey.read(key_file)
    sealed = nodeput.sealed_config(path, key)
    config = groupconfig.parse(json.loads(path.read_text()))
    assert configsync.open_sealed(heartbeat.prepare_key(key), config["group"], sealed) == (configsync.OK, config)
    assert sealed == configsync.seal(heartbeat.prepare_key(key), config)


def test_put_checks_the_file_before_the_network(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                key_file: Path) -> None:
    group = json.loads((EXAMPLES / "group-evse.json").read_text())
    group["members"][0]["kind"] = "heater"
    bad_group = tmp_path / "group.json"
    bad_group.write_text(json.dumps(group))
    code, out, err = loadmesh(capsys, "put", NOBODY, "config", bad_group, "--key", key_file)
    assert (code, out, err) == (2, "", f"loadmesh put: {bad_group}: members[0].kind: \"heater\" is not one of "
                                       "evse|valve|boiler|relay\n")
    heating = tmp_path / "heating.json"
    heating.write_text('{"room": {"mode": "auto",}}')
    assert loadmesh(capsys, "put", NOBODY, "heating", heating, "--key", key_file) == (
        2, "", f"loadmesh put: {heating}: heating: the body is not JSON: a comma before '}}' at byte 24\n")
    heating.write_text('{"room": {"mode": "warm"}}')
    code, out, err = loadmesh(capsys, "put", NOBODY, "heating", heating, "--key", key_file)
    assert (code, out) == (2, "")
    assert err.startswith(f"loadmesh put: {heating}: heating.room.mode: \"warm\" "), err
    assert loadmesh(capsys, "put", NOBODY, "load_sharing", "yes", "--key", key_file) == (
        2, "", "loadmesh put: load_sharing: \"yes\" is not on or off\n")


def test_a_node_not_listening_is_named_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   key_file: Path) -> None:
    port = free_port(socket.SOCK_STREAM)  # free: nobody listens there
    host = f"127.0.0.1:{port}"
    refused = f"refused the connection: nothing listens on port {port} there\n"
    node_json = EXAMPLES / "node-evse1.json"
    assert loadmesh(capsys, "adopt", host, "--code", os.urandom(16).hex(), "--key", key_file,
                    "--node", node_json) == (2, "", f"loadmesh adopt: {host}: {refused}")
    assert loadmesh(capsys, "put", host, "load_sharing", "off", "--key", key_file) == (
        2, "", f"loadmesh put: {host}: {refused}")
    assert loadmesh(capsys, "put", "http://garage.local/", "load_sharing", "off", "--key", key_file) == (
        2, "", "loadmesh put: http://garage.local/: give the node's name or address, and :PORT if not 80 "
               "(not a URL)\n")


def test_a_local_name_not_resolved_says_what_resolves_one(capsys: pytest.CaptureFixture[str], key_file: Path) -> None:
    # The README's commands name nodes by their mDNS names (garage-evse1.local); a Debian without libnss-mdns
    # resolves none, and the line said only "Name or service not known".
    host = "loadmesh-nobody-here.local"
    hint = ("; a .local name needs mDNS in this computer's resolver (Debian: apt-get install libnss-mdns), or give "
            "the node's address: its console prints it when it joins the Wi-Fi\n")
    for command in (("status", host, "--timeout", "1"), ("get", host, "config", "--key", key_file, "--timeout", "1")):
        code, out, err = loadmesh(capsys, *command)
        assert (code, out) == (2, "")
        assert err.startswith(f"loadmesh {command[0]}: {host}: the name \"{host}\" is not resolved "), err
        assert err.endswith(hint), err
    code, out, err = loadmesh(capsys, "status", "garage-evse.invalid", "--timeout", "1")
    assert code == 2 and "mDNS" not in err, err  # not a .local name: no word of mDNS


def test_get_refuses_what_it_cannot_do_before_the_network(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          key_file: Path) -> None:
    assert loadmesh(capsys, "get", NOBODY, "load_sharing", "--key", key_file, "--write", tmp_path / "switch.json") == (
        2, "", "loadmesh get: --write is for config and heating: loadmesh put load_sharing takes on or off, not a "
               "file\n")
    edited = tmp_path / "group.json"
    edited.write_text('{"version": 7}')  # edits not sent yet
    assert loadmesh(capsys, "get", NOBODY, "config", "--key", key_file, "--write", edited) == (
        2, "", f"loadmesh get: {edited}: exists already; give another name, or remove it first (get never writes "
               "over a file: it may hold edits not sent yet)\n")
    assert edited.read_text() == '{"version": 7}'
    assert loadmesh(capsys, "get", "http://garage.local/", "config", "--key", key_file) == (
        2, "", "loadmesh get: http://garage.local/: give the node's name or address, and :PORT if not 80 (not a URL)\n")
    for wrong in (["get", NOBODY, "status", "--key", str(key_file)], ["get", NOBODY, "config"]):
        with pytest.raises(SystemExit):
            cli.main(wrong)
        assert "loadmesh get: error: " in capsys.readouterr().err
    missing = tmp_path / "missing.key"
    assert loadmesh(capsys, "get", NOBODY, "heating", "--key", missing) == (
        2, "", f"loadmesh get: {missing}: No such file or directory\n")
    bad = tmp_path / "bad.key"
    bad.write_bytes(BAD_KEY_FILES[1][0])
    assert loadmesh(capsys, "get", NOBODY, "heating", "--key", bad) == (
        2, "", f"loadmesh get: {bad}: {BAD_KEY_FILES[1][1]}\n")


def answering_once(answer: bytes) -> tuple[int, threading.Thread]:
    """A listener on loopback that takes one request's head, sends answer and closes; its port and its thread."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            client, _ = listener.accept()
            with client:
                request = b""
                while b"\r\n\r\n" not in request and (chunk := client.recv(4096)):
                    request += chunk
                client.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def _http(status: str, body: bytes) -> bytes:
    return f"HTTP/1.0 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


GET_ANSWERS = [
    # (setting, what the other end sends, what loadmesh get says after "loadmesh get: HOST:PORT: ")
    ("heating", _http("400 Bad Request", b'{"error":"heating: is for valve and boiler nodes; this node\'s kind is '
                                         b'\\"evse\\""}'),
     'refused: heating: is for valve and boiler nodes; this node\'s kind is "evse"'),  # the node's words
    ("heating", _http("200 OK", b'{"file":"missing","heating":null}'),
     "keeps no heating.json: loadmesh put {host} heating HEATING.json --key {key} gives it one"),
    ("heating", _http("200 OK", b'{"file":"corrupt","heating":null}'),
     "its heating.json is corrupt (the file it kept does not match its hash): loadmesh put {host} heating "
     "HEATING.json --key {key} replaces it"),
    ("config", _http("404 Not Found", b"no such page"), "answered 404 Not Found: no such page"),
    ("config", _http("200 OK", b"<html>router login</html>"),
     "answered 200, but not JSON (Expecting value: line 1 column 1 (char 0)): \"<html>router login</html>\""),
    ("config", _http("200 OK", b'{"version":3}'), "answered GET /config without a config object: not a loadmesh "
                                                  "node"),
    ("load_sharing", _http("200 OK", b"[]"),
     "answered 200 with JSON that is not a node's answer to GET /load_sharing (a list, not an object)"),
]


@pytest.mark.parametrize(("what", "answer", "error"), GET_ANSWERS, ids=[error[:30] for _, _, error in GET_ANSWERS])
def test_get_names_an_answer_that_is_no_setting_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key_file: Path, what: str, answer: bytes,
        error: str) -> None:
    port, server = answering_once(answer)
    host = f"127.0.0.1:{port}"
    written = tmp_path / "got.json"
    args = ["--write", written] if what != "load_sharing" else []
    assert loadmesh(capsys, "get", host, what, "--key", key_file, *args) == (
        2, "", f"loadmesh get: {host}: " + error.format(host=host, key=key_file) + "\n")
    server.join(5)
    assert list(tmp_path.iterdir()) == [key_file]  # neither the file nor a temporary one


def test_put_to_a_node_from_before_signed_puts_says_its_firmware_is_older(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key_file: Path) -> None:
    # Such a node answers the challenge's PUT with a 401 that asks for its bearer token: not "the key is wrong".
    port, server = answering_once(b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 39"
                                  b"\r\n\r\n" + b'{"error":"a valid token is required"}\n\n')
    host = f"127.0.0.1:{port}"
    assert loadmesh(capsys, "put", host, "load_sharing", "on", "--key", key_file) == (
        2, "", f"loadmesh put: {host}: asks for a bearer token for a PUT: its firmware is older than this loadmesh, "
               "whose PUTs are signed (docs/firmware.md, \"The HTTP API\"); update the node's firmware\n")
    server.join(5)


def test_get_writes_a_new_file_whole_and_never_over_one(tmp_path: Path) -> None:
    path = tmp_path / "group.json"
    durable.write_new(path, b'{"version": 2}\n')
    assert path.read_bytes() == b'{"version": 2}\n'
    with pytest.raises(FileExistsError):
        durable.write_new(path, b"{}\n")
    assert path.read_bytes() == b'{"version": 2}\n'
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


@pytest.mark.parametrize(("mode", "how"), [(0o644, "readable"), (0o640, "readable"), (0o604, "readable"),
                                           (0o620, "writable"), (0o666, "readable and writable"),
                                           (0o601, "open")])
def test_a_key_file_open_to_others_is_warned_of_by_every_command_that_reads_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key_file: Path, mode: int, how: str) -> None:
    key_file.chmod(mode)
    warning = (f"warning: {key_file}: the group key is {how} by others than you (mode {mode:04o}); whoever reads "
               f"it commands the group's nodes: chmod 600 {key_file}\n")
    bad_node = tmp_path / "node.json"
    bad_node.write_text('{"http_port": 80}')
    # Each goes on to its next check, or to the network: the warning does not stop it.
    assert loadmesh(capsys, "adopt", NOBODY, "--code", "ab" * 16, "--key", key_file, "--node", bad_node) == (
        2, "", "loadmesh adopt: " + warning + f"loadmesh adopt: {bad_node}: node.id: missing: adoption gives the "
                                              "node its member id from here\n")
    assert loadmesh(capsys, "put", NOBODY, "load_sharing", "maybe", "--key", key_file) == (
        2, "", "loadmesh put: " + warning + "loadmesh put: load_sharing: \"maybe\" is not on or off\n")
    port = free_port(socket.SOCK_STREAM)  # free: nobody listens there
    assert loadmesh(capsys, "get", f"127.0.0.1:{port}", "config", "--key", key_file) == (
        2, "", "loadmesh get: " + warning + f"loadmesh get: 127.0.0.1:{port}: refused the connection: nothing "
                                            f"listens on port {port} there\n")


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_key_file_for_its_owner_only_gets_no_warning(capsys: pytest.CaptureFixture[str], key_file: Path,
                                                       mode: int) -> None:
    key_file.chmod(mode)
    assert loadmesh(capsys, "put", NOBODY, "load_sharing", "maybe", "--key", key_file) == (
        2, "", "loadmesh put: load_sharing: \"maybe\" is not on or off\n")
    assert groupkey.open_to_others(key_file) == ""


@pytest.mark.parametrize(("counted", "floor", "first"), [(None, 100, 101), (50, 100, 101), (9000, 100, 9001)])
def test_node_files_raise_the_boot_counter_and_never_lower_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              key_file: Path, counted: int | None, floor: int,
                                                              first: int) -> None:
    folder = tmp_path / "node"  # a node's file system, as copying onto it leaves it
    folder.mkdir()
    if counted is not None:
        Store(str(folder)).raise_boot_floor(counted)  # both copies, as the node keeps its count
    exit_code, _, err = loadmesh(capsys, "node-files", "--key", key_file, "--node", EXAMPLES / "node-evse1.json",
                                 "--config", EXAMPLES / "group-evse.json", "--boot-floor", floor, "--write", folder)
    assert exit_code == 0, err
    kept = Store(str(folder))
    assert kept.next_boot_id() == first  # the store's own count, as the node's boot takes it
    assert kept.read_key() == groupkey.read(key_file)
    assert kept.read_json("node.json") == settings.parse(json.loads((EXAMPLES / "node-evse1.json").read_text()))
    config = groupconfig.parse(json.loads((EXAMPLES / "group-evse.json").read_text()))
    assert kept.read_json("config.json") == config
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o600


def test_node_files_refuse_what_adoption_would_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  key_file: Path) -> None:
    out = tmp_path / "out"
    node = tmp_path / "node.json"
    evse = EXAMPLES / "node-evse1.json"
    group = EXAMPLES / "group-evse.json"
    cases = [
        ('{"http_port": 80}', group, f"{node}: node.id: missing: adoption gives the node its member id from here"),
        ('{"id": "evse1"}', EXAMPLES / "group-heating.json",
         f"{node}: node.id: \"evse1\" is not a member of group \"heating\" (its members: bedroom, boiler, kitchen, "
         "lounge)"),
        # a node.json as the config
        ('{"id": "evse1"}', evse, f"{evse}: http_port: is not a known field (the file looks like a node's "
                                  "node.json: loadmesh node-check checks it)"),
    ]
    for text, config, error in cases:
        node.write_text(text)
        assert loadmesh(capsys, "node-files", "--key", key_file, "--node", node, "--config", config,
                        "--write", out) == (2, "", f"loadmesh node-files: {error}\n")
    assert not out.exists()
    with pytest.raises(SystemExit):
        cli.main(["node-files", "--key", str(key_file), "--node", str(evse), "--write", str(out)])
    assert "the following arguments are required: --config" in capsys.readouterr().err
