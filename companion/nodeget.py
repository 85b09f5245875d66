"""`loadmesh get HOST[:PORT] config|heating|load_sharing`: what an adopted node runs, read with the token.

The other half of `loadmesh put`: the group config and heating.json come as
files to edit and send back (the config as `put config` takes it, plain, the
node's seal left out; heating.json as `put heating` takes it), the
load-sharing switch as the node reports it. What the node answers besides
(the config's version and hash, a heating.json missing or corrupt) goes to
stderr, so that stdout is the file alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import durable, nodehttp
from .jsonfile import why
from .nodehttp import NodeHttpError

WHAT = ("read what an adopted node runs (GET with the group's token): its group config or heating.json as a file to "
        "edit and send back with loadmesh put, or the boiler node's load-sharing switch")


def add_arguments(get: argparse.ArgumentParser) -> None:
    """The get subcommand's arguments (cli.py registers it)."""
    nodehttp.add_host_argument(get)
    get.add_argument("what", choices=("config", "heating", "load_sharing"),
                     help="config: the group config it runs (plain JSON, as loadmesh put config takes it); "
                          "heating: a valve or boiler node's heating.json; load_sharing: the boiler node's switch, "
                          "its heating.json's setting and the tier state")
    get.add_argument("--key", required=True, metavar="KEYFILE", help="the group key (loadmesh key-new)")
    get.add_argument("--write", metavar="FILE",
                     help="config and heating: write the file to FILE instead of printing it, to edit and send back "
                          "with loadmesh put (for the config, raise its version first: the node takes only a "
                          "config that wins over the one it runs); never over an existing file, which may hold "
                          "edits not sent yet")
    nodehttp.add_timeout_option(get, nodehttp.STATUS_TIMEOUT_S)


def main(args: argparse.Namespace) -> int:
    """`loadmesh get`: 0 with the setting on stdout (or in --write's file); 2 with one line on stderr."""
    from . import groupkey

    where, what, key_file = str(args.host), str(args.what), str(args.key)
    if args.write is not None and what == "load_sharing":
        print("loadmesh get: --write is for config and heating: loadmesh put load_sharing takes on or off, "
              "not a file", file=sys.stderr)
        return 2
    try:
        host, port = nodehttp.parse_address(where)
    except NodeHttpError as exc:
        print(f"loadmesh get: {where}: {exc}", file=sys.stderr)
        return 2
    if args.write is not None and Path(args.write).exists():
        # Before the network, as well as at the write: nothing asked of the node for a file that cannot be written.
        print(f"loadmesh get: {args.write}: exists already; give another name, or remove it first (get never "
              "writes over a file: it may hold edits not sent yet)", file=sys.stderr)
        return 2
    if args.write is not None and not Path(args.write).absolute().parent.is_dir():
        # As the check above: the node was asked, and its answer then had nowhere to go.
        print(f"loadmesh get: {args.write}: no folder {Path(args.write).parent} to write it into: make it first, "
              "or give a file in a folder that is there", file=sys.stderr)
        return 2
    try:
        key = groupkey.read_warned(Path(key_file), "get")
    except ValueError as exc:
        print(f"loadmesh get: {exc}", file=sys.stderr)
        return 2
    try:
        status, reason, body = nodehttp.exchange(host, port, float(args.timeout), "GET", "/" + what, None,
                                                 groupkey.token(key))
        answer = _answer(what, status, reason, body, where, key_file)
        value, note = _setting(what, answer, where, key_file, args.write)
    except NodeHttpError as exc:
        print(f"loadmesh get: {where}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while waiting: the installer knows why it stopped
        return 130
    text = json.dumps(value, indent=2) + "\n"
    if args.write is None:
        print(text, end="")
        print(f"loadmesh get: {where}: {note}", file=sys.stderr)
        return 0
    path = Path(args.write)
    try:
        cleaned = durable.write_new(path, text.encode())  # whole or not at all, also after a power cut
    except OSError as exc:
        print(f"loadmesh get: {path}: {why(exc)}", file=sys.stderr)
        return 2
    for line in cleaned:  # what a write stopped half-way had left beside it
        print(f"loadmesh get: {line}", file=sys.stderr)
    print(f"loadmesh get: {where}: wrote {path}: {note}", file=sys.stderr)
    return 0


def _answer(what: str, status: int, reason: str, body: bytes, where: str, key_file: str) -> dict[str, Any] | None:
    """The node's answer to GET /what (None: JSON null, a config not yet given); NodeHttpError for a refusal."""
    if status == 401:
        raise NodeHttpError(nodehttp.token_refused(where, key_file))
    if status == 400:  # the node's words: a heating.json asked of an EVSE node, a node that runs no config yet
        raise NodeHttpError(f"refused: {nodehttp.node_error(body) or 'no reason given'}")
    if status != 200:
        raise NodeHttpError(nodehttp.answered(status, reason, body))
    if what == "config" and body.strip() == b"null":
        return None
    return nodehttp.decode(body, status, f"a node's answer to GET /{what}")


def _setting(what: str, answer: dict[str, Any] | None, where: str, key_file: str,
             write: str | None) -> tuple[object, str]:
    """(what to print or write, the line for stderr); NodeHttpError if the node has none to give."""
    put = f"loadmesh put {where} {what} {write or ('GROUP.json' if what == 'config' else 'HEATING.json')} " \
          f"--key {key_file}"
    if what == "config":
        if answer is None:
            raise NodeHttpError(f"runs no config yet: loadmesh put {where} config GROUP.json --key {key_file} "
                                "gives it its first")
        config = answer.get("config")
        if not isinstance(config, dict):
            raise NodeHttpError("answered GET /config without a config object: not a loadmesh node")
        return config, (f"runs config version {answer.get('version')} ({answer.get('announced')}); to change it, "
                        f"raise its version, then {put}")
    if what == "heating":
        state = answer.get("file") if answer is not None else None
        if state == "missing":
            raise NodeHttpError(f"keeps no heating.json: loadmesh put {where} heating HEATING.json --key {key_file} "
                                "gives it one")
        if state == "corrupt":
            raise NodeHttpError("its heating.json is corrupt (the file it kept does not match its hash): "
                                f"loadmesh put {where} heating HEATING.json --key {key_file} replaces it")
        if state != "ok" or answer is None or not isinstance(answer.get("heating"), dict):
            raise NodeHttpError("answered GET /heating without a heating.json: not a loadmesh node")
        return answer["heating"], f"keeps this heating.json; to change it, {put}"
    assert answer is not None
    switch = answer.get("switch")
    if not isinstance(switch, bool):
        raise NodeHttpError("answered GET /load_sharing without a switch: not a loadmesh node")
    line = "load sharing is " + ("on" if answer.get("enabled") is True else "off")
    if switch and answer.get("settings") is not True:
        line += " (switched on, but its heating.json has load sharing off)"
    return answer, line + f"; loadmesh put {where} load_sharing on|off --key {key_file} switches it"
