"""`loadmesh put HOST[:PORT] config|heating|load_sharing ...`: change what an adopted node runs, in a PUT signed with
the group key for the node's boot (nodehttp.signed_put).

Each is checked here first as the node checks it, so that a mistake is named
in the installer's file rather than in the node's answer: the group config
as `loadmesh config-hash` checks it, then sealed with the group key by the
core entry `loadmesh config-seal` runs; heating.json as `loadmesh
heating-check` checks it, sent as it is (the node keeps the bytes as they
came); the boiler node's load-sharing switch as on or off. The node still
checks everything itself, and says why it refuses (docs/firmware.md, "The
HTTP API").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loadmesh.core import canon

from . import fieldhint, nodehttp
from .jsonfile import in_file, read_heating_body, read_json
from .nodehttp import NodeHttpError

WHAT = ("send an adopted node its group config (sealed here with the group key), a valve or boiler node its "
        "heating.json, or the boiler node its load-sharing switch (a PUT signed with the group key)")
SWITCH = {"on": True, "off": False}


def add_arguments(put: argparse.ArgumentParser) -> None:
    """The put subcommand's arguments (cli.py registers it)."""
    nodehttp.add_host_argument(put)
    put.add_argument("what", choices=("config", "heating", "load_sharing"),
                     help="config: the group config; heating: the node's heating.json; load_sharing: the boiler "
                          "node's switch")
    put.add_argument("value", metavar="FILE|on|off",
                     help="config: the group config as a file (as loadmesh config-hash takes it); heating: the "
                          "node's heating.json; load_sharing: on or off")
    put.add_argument("--key", required=True, metavar="KEYFILE", help="the group key (loadmesh key-new)")
    nodehttp.add_timeout_option(put, nodehttp.WRITE_TIMEOUT_S)


def sealed_config(path: Path, key: bytes) -> bytes:
    """The bytes of PUT /config for the group config in path: checked and sealed as config-seal does; ValueError
    naming the file and the field."""
    from loadmesh.core import entry

    raw = in_file(path, read_json)
    answer = json.loads(entry.respond("config_seal", {"key_hex": key.hex(), "config": raw}))
    if "ok" not in answer:
        from loadmesh.core import groupconfig

        raise ValueError(f"{path}: {fieldhint.hinted(str(answer['error']), raw, groupconfig.parse)}")
    return bytes.fromhex(answer["ok"]["hex"])


def heating_file(path: Path) -> tuple[bytes, str]:
    """The bytes of PUT /heating, the file as it is, once it passes heating-check's check, and the kind of node it is
    for (valve or boiler); ValueError if not."""
    from loadmesh.core.errors import FieldError

    from . import heatcheck

    body, raw = in_file(path, read_heating_body)  # read once: the bytes sent are the ones checked
    try:
        kind = str(heatcheck.check(raw)["kind"])
    except FieldError as exc:
        raise ValueError(f"{path}: {fieldhint.hinted(str(exc), raw, heatcheck.check, 'heating')}") from None
    return body, kind


# The top-level fields of each kind's heating.json: the other kind's node refuses them as "not a known field".
KIND_FIELDS = {"valve": ("room",), "boiler": ("rooms", "boiler", "load_sharing")}


def wrong_kind(error: str, path: str, file_kind: str, where: str) -> str:
    """What to add to the node's refusal of a heating.json made for the other kind of node: its words name only a field
    it does not know (heating.room, for a valve node's file sent to the boiler node)."""
    for field in KIND_FIELDS.get(file_kind, ()):
        if error.startswith(f"heating.{field}: is not a known field"):
            node_kind = "boiler" if file_kind == "valve" else "valve"
            return (f" ({path} is a {file_kind} node's heating.json, and this node takes a {node_kind} node's: "
                    f"loadmesh status {where} shows which node it is)")
    return ""


def switch(text: str) -> bytes:
    """The body of PUT /load_sharing for on or off."""
    if text not in SWITCH:
        from loadmesh.core.errors import quoted  # only for an error

        raise ValueError("load_sharing: " + quoted(text) + " is not on or off")
    return canon.dumps({"enabled": SWITCH[text]}).encode()


def main(args: argparse.Namespace) -> int:
    """`loadmesh put`: 0 with what the node answered on stdout; 2 with one line on stderr."""
    from . import groupkey

    where, what = str(args.host), str(args.what)
    file_kind = ""
    try:
        host, port = nodehttp.parse_address(where)
    except NodeHttpError as exc:
        print(f"loadmesh put: {where}: {exc}", file=sys.stderr)
        return 2
    try:
        key = groupkey.read_warned(Path(args.key), "put")
        if what == "config":
            body = sealed_config(Path(args.value), key)
        elif what == "heating":
            body, file_kind = heating_file(Path(args.value))
        else:
            body = switch(str(args.value))
    except ValueError as exc:
        print(f"loadmesh put: {exc}", file=sys.stderr)
        return 2
    hint = ""
    try:
        status, reason, answer = nodehttp.signed_put(host, port, float(args.timeout), "/" + what, body, key)
        if status == 400 and file_kind:
            hint = wrong_kind(nodehttp.node_error(answer) or "", str(args.value), file_kind, where)
        line = _answer(what, status, reason, answer, where, str(args.key))
    except NodeHttpError as exc:
        print(f"loadmesh put: {where}: {exc}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while waiting: the installer knows why it stopped
        return 130
    print(f"loadmesh put: {where}: {line}")
    return 0


def _answer(what: str, status: int, reason: str, body: bytes, where: str, key_file: str) -> str:
    """The node's answer in words; NodeHttpError for a refusal."""
    if status == 401:
        words = nodehttp.node_error(body)
        said = f"; the node's words: {words}" if words else ""
        raise NodeHttpError(nodehttp.token_refused(where, key_file, "signature") + said)
    if status in (400, 409):  # 409: no PUT is taken now (a lost boot counter), and the node's words say the way out
        raise NodeHttpError(f"refused: {nodehttp.node_error(body) or 'no reason given'}; nothing changed")
    if status == 503:  # busy or short of memory, and not shown untaken (signed_put): its words say which
        raise NodeHttpError(nodehttp.answered(status, reason, body) + f"; loadmesh get {where} {what} --key "
                            f"{key_file} shows what it has now: put it again if that is not it")
    if status != 200:
        raise NodeHttpError(nodehttp.answered(status, reason, body))
    answer = nodehttp.decode(body, status, f"a node's answer to PUT /{what}")
    if what == "config":
        return _config(answer)
    if what == "heating":
        return _heating(answer)
    return _load_sharing(answer)


def _config(answer: dict[str, Any]) -> str:
    version, announced = answer.get("version"), answer.get("announced")
    if answer.get("adopted") is True:
        return f"took config version {version} ({announced}); it runs it from its next tick"
    return f"runs config version {version} ({announced}) already; nothing changed"


def _heating(answer: dict[str, Any]) -> str:
    if answer.get("kind") == "boiler":
        rooms = answer.get("rooms")
        named = ", ".join(str(room) for room in rooms) if isinstance(rooms, list) else "?"
        return f"kept heating.json and runs it: the boiler node of the rooms {named}"
    return f"kept heating.json and runs it: the {answer.get('kind')} node's room, mode {answer.get('mode')}"


def _load_sharing(answer: dict[str, Any]) -> str:
    line = "switched load sharing " + ("on" if answer.get("switch") is True else "off")
    if answer.get("switch") is True and answer.get("settings") is not True:
        return line + "; its heating.json has load sharing off, so it stays off"
    return line + f" (tier state {answer.get('state')})"
