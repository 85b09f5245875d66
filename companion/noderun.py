"""`loadmesh node DIR`: a node on this computer, the folder its file system (README, "Trying it without a board").

The node image (MicroPython's unix port in single precision, the library
frozen in, with the ESP32's heap) runs the firmware's main.py in DIR, as the
simulator runs its nodes: no hardware, so it drives nothing. It replaces
this process, so Ctrl-C and signals reach the node itself (on Ctrl-C it
says so and stops).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import nodeimage
from .paths import SetupError, device_tree, installed_from, repo_root
from .runtimes import SMALL_HEAP

WHAT = ("run a node on this computer: the node image (no hardware: it drives nothing) in DIR, which is its file "
        "system, until Ctrl-C")


def add_arguments(node: argparse.ArgumentParser) -> None:
    """The node subcommand's arguments (cli.py registers it)."""
    node.add_argument("dir", metavar="DIR", help="the node's folder: its node.json (loadmesh node-check --write DIR), "
                                                 "then what adoption and put config leave there")


def main(args: argparse.Namespace) -> int:
    """`loadmesh node`: the node's process in place of this one; 2 with one line on stderr if it cannot start."""
    folder = Path(args.dir)
    if not folder.is_dir():
        print(f"loadmesh node: {args.dir}: is not a folder (make it, and write its node.json with loadmesh node-check "
              f"NODE.json --write {args.dir})", file=sys.stderr)
        return 2
    # From any folder (a try on this computer keeps its files out of the checkout): the checkout around it, or
    # the one this loadmesh was installed from.
    try:
        root = repo_root()
    except SetupError:
        installed = installed_from()
        if installed is None:
            raise
        root = installed
    staged = device_tree(root)
    image = nodeimage.node_binary(staged, root)  # SetupError (cli.main says it) when setup has not built it
    warning = node_json_warning(folder)
    if warning:
        print(f"loadmesh node: {args.dir}: {warning}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.chdir(folder)
        os.execve(str(image), [str(image), "-X", "heapsize=" + SMALL_HEAP, str(staged / "py" / "main.py")],
                  dict(os.environ, MICROPYPATH=".frozen"))
    except OSError as exc:
        print(f"loadmesh node: {args.dir}: could not start {image}: {exc.strerror or exc}", file=sys.stderr)
    return 2  # reached only when execve failed: it replaces this process


def node_json_warning(folder: Path) -> str:
    """What to say of DIR/node.json before the node starts ("" if the node will read it)."""
    from loadmesh.node.store import Store

    # Valid (a node with no node.json, or a damaged one, waits for adoption on port 80), but rarely what a try on
    # a computer wants; a file written by hand is not in the store's envelope, and the node would ignore it.
    fix = f"loadmesh node-check NODE.json --write {folder}"
    if not (folder / "node.json").is_file():
        return f"no node.json, so the node's HTTP API is on port 80 (write one with {fix})"
    if Store(str(folder)).read_json("node.json") is None:
        return ("node.json is not as the node keeps it (a file written by hand?): the node ignores it and its HTTP "
                f"API is on port 80 (write it with {fix})")
    return ""
