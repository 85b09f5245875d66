"""`loadmesh adopt HOST[:PORT]`: give an unadopted node its member id, settings and group key over PUT /adopt.

The node prints a one-time adoption code on its console until it is adopted
(docs/firmware.md, "Adoption"). The body is the firmware's own
(`loadmesh.node.adoption.make_request`): authenticated by the code, the key
xor a stream derived from the code and a fresh nonce, so the key never
crosses the LAN in clear. The member id is node.json's `id`, the rest of
node.json goes with it, checked first as the node parses it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from loadmesh.core.errors import quoted

from . import fieldhint, nodehttp
from .jsonfile import in_file
from .nodehttp import NodeHttpError

WHAT = ("adopt an unadopted node over the network (PUT /adopt): its member id and settings from node.json, the "
        "group key, sealed with the one-time code the node prints on its console")

# The boot floor. A node's boot id only rises (its peers refuse a lower one as
# old_boot, docs/heartbeat.md); a node whose flash was wiped, or a new board
# under the same member id, starts its count again, so adoption raises it above
# the floor. By default the floor is this computer's clock in minutes since
# 2024: above every boot id the member had before (when that adoption took the
# default too) unless it booted more than once a minute on average since, which
# only a node resetting in a loop does. Its peers then take it at once, with no
# need to read the highest boot id they saw (--boot-floor, for that case).
FLOOR_EPOCH_S = 1704067200  # 2024-01-01T00:00:00Z
FLOOR_UNIT_S = 60


def add_arguments(adopt: argparse.ArgumentParser) -> None:
    """The adopt subcommand's arguments (cli.py registers it)."""
    nodehttp.add_host_argument(adopt)
    adopt.add_argument("--code", required=True, help="the node's adoption code, as its console prints it "
                                                     "(32 hex digits)")
    adopt.add_argument("--key", required=True, metavar="KEYFILE", help="the group key (loadmesh key-new)")
    adopt.add_argument("--node", required=True, metavar="NODE.json",
                       help="the node's node.json, with its member id (checked first, as loadmesh node-check does)")
    adopt.add_argument("--boot-floor", type=boot_floor_argument, metavar="N",
                       help="raise the node's boot id above N: above what its peers last heard from this member id "
                            "(default: this computer's clock in minutes since 2024, above it unless the member "
                            "booted more than once a minute)")
    nodehttp.add_timeout_option(adopt, nodehttp.WRITE_TIMEOUT_S)


def boot_floor_argument(text: str) -> int:
    from loadmesh.node import adoption

    if not (text.isascii() and text.isdigit() and int(text) < adoption.MAX_BOOT_ID):
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not a number 0..{adoption.MAX_BOOT_ID - 1}")
    return int(text)


def default_boot_floor(now_s: float) -> int:
    """The boot floor at wall-clock time now_s (seconds since 1970)."""
    from loadmesh.node import adoption

    return min(max(0, int(now_s - FLOOR_EPOCH_S) // FLOOR_UNIT_S), adoption.MAX_BOOT_ID - 1)


def parse_code(text: str) -> bytes:
    """The adoption code as typed: hex, spaces and dashes between groups allowed; ValueError if it is not one."""
    from loadmesh.node import adoption

    digits = "".join(text.split()).replace("-", "")
    try:
        code = bytes.fromhex(digits)
    except ValueError:
        code = b""
    if len(code) != adoption.CODE_BYTES:
        raise ValueError(f"{quoted(text)} is not an adoption code: {2 * adoption.CODE_BYTES} hex digits, as the node's "
                         "console prints them")
    return code


def read_settings(path: Path) -> tuple[str, dict[str, object]]:
    """(member id, the rest of node.json with defaults) as PUT /adopt carries them; ValueError naming the field."""
    from loadmesh.core.errors import FieldError
    from loadmesh.node import settings

    parsed = fieldhint.read_checked(path, settings.parse, "node")
    node = parsed.pop("id")
    if node is None:
        raise FieldError("node.id", "missing: adoption gives the node its member id from here")
    return str(node), parsed


def main(args: argparse.Namespace) -> int:
    """`loadmesh adopt`: 0 with what the node answered on stdout; 2 with one line on stderr."""
    from loadmesh.node import adoption

    from . import groupkey

    where = str(args.host)
    try:
        host, port = nodehttp.parse_address(where)
    except NodeHttpError as exc:
        print(f"loadmesh adopt: {where}: {exc}", file=sys.stderr)
        return 2
    try:
        code = parse_code(args.code)
        key = groupkey.read_warned(Path(args.key), "adopt")
        node, node_settings = in_file(Path(args.node), read_settings)
    except ValueError as exc:
        print(f"loadmesh adopt: {exc}", file=sys.stderr)
        return 2
    boot_floor = default_boot_floor(time.time()) if args.boot_floor is None else int(args.boot_floor)
    body = adoption.make_request(code, node, key, boot_floor, node_settings, os.urandom(adoption.NONCE_BYTES))
    try:
        status, reason, answer = nodehttp.exchange(host, port, float(args.timeout), "PUT", "/adopt", body)
        line = _answer(status, reason, answer, where, str(args.key))
        if node_settings["http_port"] != port:
            # The node listens where its node.json said at boot: the new one's port counts from its next boot.
            line += f" (after its next boot on port {node_settings['http_port']}, as node.json says)"
    except NodeHttpError as exc:
        print(f"loadmesh adopt: {where}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while waiting: the installer knows why it stopped
        return 130
    print(f"loadmesh adopt: {where}: {line}")
    return 0


def _answer(status: int, reason: str, body: bytes, where: str, key_file: str) -> str:
    """The node's answer in words; NodeHttpError for a refusal."""
    if status == 200:
        answer = nodehttp.decode(body, status, "a node's answer to PUT /adopt")
        node, boot_id = answer.get("adopted"), answer.get("boot_id")
        return (f"adopted as {node}, boot {boot_id}; it runs no config yet: next, "
                f"loadmesh put {where} config GROUP.json --key {key_file}")
    error = nodehttp.node_error(body) or ""
    if status == 400 and error.startswith("adopt.tag:"):
        raise NodeHttpError("refused the code: it is not this node's adoption code (the node prints its code on "
                            "its console at every boot until it is adopted)")
    if status == 409 and "adopted already" in error:
        raise NodeHttpError("is adopted already: a node is adopted once, until it is reset to factory (its key "
                            f"removed); loadmesh status {where} shows its id, loadmesh put gives it its config")
    if status == 503:  # busy or short of memory: its words say whether it may have taken the request
        raise NodeHttpError(nodehttp.answered(status, reason, body) + f"; loadmesh status {where} says whether it "
                            "was adopted: if it still waits for adoption, adopt it again")
    raise NodeHttpError(nodehttp.answered(status, reason, body))
