"""The loadmesh command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import devtree
from .paths import SetupError, device_tree
from .runtimes import MicroPythonRuntime, open_runtime

DEMO_LIMITS_MA = [0, 5000, 6000, 10000, 16000, 32000, 51000, 52000, 63000, 80000, 100000]


def _demo(_args: argparse.Namespace) -> int:
    tree = device_tree()
    request = {"ma": DEMO_LIMITS_MA}
    cpython = open_runtime("cpython", tree)
    micropython = open_runtime("micropython-f32", tree)
    try:
        lines = {runtime.name: runtime.respond("pilot", request) for runtime in (cpython, micropython)}
    finally:
        micropython.close()
    print("loadmesh demo: the EVSE pilot duty (IEC 61851) for each current limit, computed by")
    print("loadmesh.core on CPython (Cython-compiled) and on MicroPython (single precision, as on ESP32)\n")
    results = {name: json.loads(line)["ok"] for name, line in lines.items()}
    header = ("limit mA", "CPython duty", "car reads mA", "MicroPython duty", "car reads mA")
    print("{:>9} | {:>12} {:>12} | {:>16} {:>12}".format(*header))
    for index, limit_ma in enumerate(DEMO_LIMITS_MA):
        cells = []
        for result in results.values():
            duty = result["duty_permille"][index]
            cells.append((f"{duty / 10:.1f} %", result["signalled_ma"][index]))
        (cd, cr), (md, mr) = cells
        print(f"{limit_ma:>9} | {cd:>12} {cr:>12} | {md:>16} {mr:>12}")
    same = len(set(lines.values())) == 1
    print()
    for name, line in lines.items():
        print(f"{name:>16}: {line}")
    print("\nidentical bytes on both runtimes:", "yes" if same else "NO")
    return 0 if same else 1


def _stage(args: argparse.Namespace) -> int:
    return devtree.main(["--out", str(args.out)] if args.out else [])


def _run_entry_file(entry: str, args: argparse.Namespace, command: str | None = None) -> int:
    """Answer a request file on the chosen runtime; print the canonical line."""
    path = Path(args.file)
    command = command or entry  # how errors name the command
    runtime = open_runtime(args.runtime, device_tree())
    # The file is read here for every runtime: MicroPython's json accepts some
    # broken text (a truncated object parses as {}), which must not pass.
    try:
        request = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"loadmesh {command}: {path}: {exc}", file=sys.stderr)
        return 2
    if isinstance(runtime, MicroPythonRuntime):
        done = runtime.run_file(entry, path.resolve())
        if done.returncode != 0:
            print(f"loadmesh {command}: {runtime.name} failed: {done.stderr.strip()}", file=sys.stderr)
            return 2
        line = done.stdout.rstrip("\n")
    else:
        line = runtime.respond(entry, request)
    answer = json.loads(line)
    if "ok" not in answer:
        print(f"loadmesh {command}: {answer.get('error') or answer.get('crash')}", file=sys.stderr)
        return 2
    # The result's own canonical bytes: the line minus the {"ok": ...} wrapper.
    print(line[len('{"ok":'):-1])
    return 0


# (command, entry, help): the mesh's core entries, each answering one request file.
# Commands that answer one request file through a core entry: (command, entry, help).
_ENTRY_COMMANDS = (
    ("pilot", "pilot", 'pilot duty for the currents in FILE ({"ma": [...]})'),
    ("allocate", "allocate", "target current and reason per load for the scenario in FILE"),
    ("heartbeat-encode", "heartbeat_encode", 'sign a heartbeat: {"key_hex", "heartbeat": {...}} (docs/heartbeat.md)'),
    ("heartbeat-decode", "heartbeat_decode", 'check and decode packets: {"key_hex", "group", "packets": [hex, ...]}'),
    ("peers", "peers", "run heartbeats through a peer table: replays, reboots, liveness"),
    ("sensor", "sensor", "run readings through a sensor channel: range, smoothing, hold, unknown"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadmesh", description="Home loads sharing one limited supply.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a core function on CPython and on MicroPython, print both")
    demo.set_defaults(func=_demo)
    stage = commands.add_parser("stage", help="stage the device tree into build/device (.py and .mpy)")
    stage.add_argument("--out", type=Path, help="destination folder")
    stage.set_defaults(func=_stage)
    for command, entry, what in _ENTRY_COMMANDS:
        sub = commands.add_parser(command, help=what)
        sub.add_argument("file")
        sub.add_argument("--runtime", default="cpython", choices=("cpython", "micropython", "micropython-f32"))
        sub.set_defaults(func=lambda args, entry=entry, command=command: _run_entry_file(entry, args, command))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SetupError as exc:
        print(f"loadmesh: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
