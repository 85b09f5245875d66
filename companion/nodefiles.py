"""`loadmesh node-files --key --node --config --write DIR`: an adopted node's files, for the way in without a network.

What `loadmesh adopt` and a first `loadmesh put config` leave in a node's
file system, written by the node's own store (the LM1 envelope,
docs/firmware.md, "Persistence") from the same checks: `key` (the group
key as the store keeps it), `node.json` (node.json parsed as adoption keeps
it, the member id in it), `config.json` (the group config as the node keeps
one it took) and `boot.a` (the boot floor, as adoption raises it). Copied
onto a flashed node beside its hw.json, it boots adopted and runs the config.

Only boot.a of the counter's two copies is written: the node takes the
higher of the two, so copying it onto a node that has counted further
raises nothing and lowers nothing (a copy of both could take its count
back, and its peers would refuse its heartbeats as replays).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import fieldhint, nodefolder
from .jsonfile import in_file

WHAT = ("write the files an adopted node keeps (key, node.json, config.json, its boot floor), as the store keeps "
        "them, to copy onto a flashed node: adoption without a network")
BOOT_FILE = "boot.a"


def add_arguments(files: argparse.ArgumentParser) -> None:
    """The node-files subcommand's arguments (cli.py registers it)."""
    from . import adopt

    files.add_argument("--key", required=True, metavar="KEYFILE", help="the group key (loadmesh key-new)")
    files.add_argument("--node", required=True, metavar="NODE.json",
                       help="the node's node.json, with its member id (checked as loadmesh node-check --group does)")
    files.add_argument("--config", required=True, metavar="GROUP.json",
                       help="the group config (checked as loadmesh config-hash does); the node's id must be a member")
    files.add_argument("--write", required=True, metavar="DIR",
                       help="the folder to write key, node.json, config.json and boot.a into (made if missing; "
                            "files of those names in it are replaced)")
    files.add_argument("--boot-floor", type=adopt.boot_floor_argument, metavar="N",
                       help="the node's first boot id is above N (default, as loadmesh adopt's: this computer's "
                            "clock in minutes since 2024)")


def main(args: argparse.Namespace) -> int:
    """`loadmesh node-files`: 0 with where the files went on stderr; 2 with one line on stderr, the folder as it
    was."""
    from loadmesh.core import groupconfig
    from loadmesh.node import store

    from . import adopt, groupkey, membership

    try:
        key = groupkey.read_warned(Path(args.key), "node-files")
        node, node_settings = in_file(Path(args.node), adopt.read_settings)
        config = in_file(Path(args.config), lambda path: fieldhint.read_checked(path, groupconfig.parse))
    except ValueError as exc:
        print(f"loadmesh node-files: {exc}", file=sys.stderr)
        return 2
    # As adoption keeps it: the settings with the member id, parsed (loadmesh.node.adoption.open_request).
    node_settings["id"] = node
    wrong = membership.strangers(node_settings, config)
    if wrong:
        print(f"loadmesh node-files: {args.node}: {wrong}", file=sys.stderr)
        return 2
    floor = adopt.default_boot_floor(time.time()) if args.boot_floor is None else int(args.boot_floor)
    folder = Path(args.write)
    names = ("key", "node.json", store.CONFIG, BOOT_FILE)

    def write(root: str) -> None:
        kept = store.Store(root)
        kept.write_json("node.json", _parsed_settings(node_settings))
        kept.write_json(store.CONFIG, config)
        kept.write(BOOT_FILE, str(floor).encode())
        # The key's file, and its temporary one, readable by the installer only: the store writes with the umask.
        umask = os.umask(0o077)
        try:
            kept.write_key(key)
        finally:
            os.umask(umask)

    def say(line: str) -> None:  # what a node-files stopped half-way had left, put right before these are written
        print(f"loadmesh node-files: {line}", file=sys.stderr)

    try:
        nodefolder.write_all(folder, names, write, say)  # all four or none: a folder never holds half a node
    except OSError as exc:
        print(f"loadmesh node-files: {nodefolder.failed(folder, exc)}", file=sys.stderr)
        return 2
    # mpremote stops the node's program to copy, and leaves the board at its REPL: a reset boots the node again.
    copies = " + ".join([f"cp {folder / name} :{name}" for name in names] + ["reset"])
    print(f"loadmesh node-files: wrote {', '.join(names)} into {folder} as node {node} keeps them once adopted "
          f"(first boot id above {floor}) and given config version {config['version']} "
          f"({groupconfig.announced(config)}); copy them onto its file system beside its hw.json "
          f"(mpremote {copies}), then delete {folder / 'key'}: it holds the group key", file=sys.stderr)
    return 0


def _parsed_settings(node_settings: dict[str, object]) -> dict[str, object]:
    """node.json as adoption keeps it: parsed again with the id, as the node parses the request's settings."""
    from loadmesh.node import settings

    return dict(settings.parse(node_settings))
