"""The loadmesh command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from loadmesh.core import canon, groupconfig

from . import devtree, fieldhint, membership
from .jsonfile import read_heating_body, read_json, why
from .paths import SetupError, device_tree
from .runtimes import MicroPythonRuntime, Runtime, open_runtime


def _runtime(name: str) -> Runtime:
    """Open runtime name. The default (cpython, the installed core) needs no checkout; the others run its
    staged device tree."""
    return open_runtime(name, None if name == "cpython" else device_tree())


def _stage(args: argparse.Namespace) -> int:
    return devtree.main(["--out", str(args.out)] if args.out else [])


def _run_entry_file(entry: str, args: argparse.Namespace, command: str | None = None, shown: Path | None = None) -> int:
    """Answer a request file on the chosen runtime; print the canonical line. Errors name shown (default: the
    file)."""
    line = _entry_line(entry, args, command or entry, shown)
    if line is None:
        return 2
    # The result's own canonical bytes: the line minus the {"ok": ...} wrapper.
    print(line[len('{"ok":'):-1])
    return 0


STEPS_PER_CHUNK = 4  # what an ESP32-sized heap answers comfortably in one request


def _run_steps_file(entry: str, args: argparse.Namespace) -> int:
    """Answer a steps file on the chosen runtime; print one canonical line per step.

    The whole file is answered on CPython first (errors then name the right
    step). MicroPython gets it in chunks, each starting from the state the
    chunk before ended in and from the inputs merged so far: the answer is
    the same, and a long file fits an ESP32-sized heap.
    """
    cpython = args.runtime
    args.runtime = "cpython"
    line = _entry_line(entry, args, entry)
    if line is None:
        return 2
    if cpython == "cpython":
        for step in json.loads(line)["ok"]["steps"]:
            print(canon.dumps(step))
        return 0
    request = read_json(Path(args.file))
    runtime = _runtime(cpython)
    try:
        state = request.get("state")
        config = request["config"]
        merged: object = {}
        steps = request["steps"]
        for first in range(0, len(steps), STEPS_PER_CHUNK):
            chunk: list[dict[str, object]] = []
            chunk_config = config
            for patch in steps[first:first + STEPS_PER_CHUNK]:
                body = {key: value for key, value in patch.items() if key not in ("now_ms", "config")}
                merged = _merged(merged, body)
                if "config" in patch:
                    # New settings within the file (tiers): the inputs carried
                    # forward keep only the rooms still configured, as the entry does.
                    config = patch["config"]
                    merged = _configured_rooms(merged, config)
                if chunk:
                    chunk.append(dict(patch))
                else:
                    assert isinstance(merged, dict)
                    chunk.append(dict(merged, **{key: patch[key] for key in ("now_ms", "config") if key in patch}))
            part = {"config": chunk_config, "steps": chunk}
            if state is not None:
                part["state"] = state
            answer = json.loads(runtime.respond(entry, part))
            if "ok" not in answer:
                print(f"loadmesh {entry}: {args.file}: {runtime.name}: {answer.get('error') or answer.get('crash')}",
                      file=sys.stderr)
                return 2
            for step in answer["ok"]["steps"]:
                print(canon.dumps(step))
            state = answer["ok"]["state"]
    finally:
        runtime.close()
    return 0


def _configured_rooms(inputs: object, config: dict[str, object]) -> object:
    """A tiers step's inputs without the rooms config does not name (config checked already)."""
    if not isinstance(inputs, dict) or not isinstance(inputs.get("rooms"), dict):
        return inputs
    rooms = config["rooms"]
    assert isinstance(rooms, list)
    known = {room["id"] for room in rooms if isinstance(room, dict)}
    return dict(inputs, rooms={rid: value for rid, value in inputs["rooms"].items() if rid in known})


def _run_controller_file(args: argparse.Namespace) -> int:
    """Answer a controller step file on the chosen runtime; print one canonical line per step."""
    line = _entry_line("controller", args, "controller")
    if line is None:
        return 2
    for step in json.loads(line)["ok"]["steps"]:
        print(canon.dumps(step))
    return 0


def _run_config_hash(args: argparse.Namespace) -> int:
    """Check a group config (a config file, or {"config": ...}); print the config it would run, defaults filled in,
    with its hash."""
    path = Path(args.file)
    try:
        raw = read_json(path)
    except (OSError, ValueError) as exc:
        print(f"loadmesh config-hash: {path}: {why(exc)}", file=sys.stderr)
        return 2
    if isinstance(raw, dict) and "config" not in raw:
        # A config file itself: the entry takes it wrapped.
        with tempfile.TemporaryDirectory() as folder:
            wrapped = Path(folder) / "request.json"
            wrapped.write_text(json.dumps({"config": raw}))
            args.file = str(wrapped)
            line = _entry_line("config_hash", args, "config-hash", shown=path)
    else:
        line = _entry_line("config_hash", args, "config-hash")
    if line is None:
        return 2
    # The entry gives the canonical text as one string, every quote escaped:
    # shown as the object it is, as the other checks show theirs. Its
    # canonical bytes are that text again (canon.dumps of "config"), which
    # "hash" covers.
    result = json.loads(line)["ok"]
    result["config"] = json.loads(result.pop("canonical"))
    print(canon.dumps(result))
    return 0


def _merged(previous: object, patch: object) -> object:
    """The step inputs so far with patch merged in, key by key (as the core's step entries merge)."""
    if not isinstance(previous, dict) or not isinstance(patch, dict):
        return patch
    merged = dict(previous)
    for key, value in patch.items():
        merged[key] = _merged(previous.get(key), value)
    return merged


def _entry_line(entry: str, args: argparse.Namespace, command: str, shown: Path | None = None) -> str | None:
    """The runtime's canonical {"ok": ...} line for the request in args.file; None after a one-line error that
    names the file (shown, if the file is a wrapper made from it), then the field (config_hash: a misspelt field
    with the one meant, fieldhint)."""
    path = Path(args.file)
    shown = shown or path
    runtime = _runtime(args.runtime)
    # The file is read here for every runtime: MicroPython's json accepts some
    # broken text (a truncated object parses as {}), which must not pass; and
    # CPython's accepts NaN and Infinity, which MicroPython's refuses.
    try:
        request = read_json(path)
    except (OSError, ValueError) as exc:
        print(f"loadmesh {command}: {shown}: {why(exc)}", file=sys.stderr)
        return None
    if isinstance(runtime, MicroPythonRuntime):
        done = runtime.run_file(entry, path.resolve())
        if done.returncode != 0:
            print(f"loadmesh {command}: {shown}: {_runtime_failure(runtime, done.stderr)}", file=sys.stderr)
            return None
        line = done.stdout.rstrip("\n")
    else:
        line = runtime.respond(entry, request)
    answer = json.loads(line)
    if "ok" not in answer:
        error = answer.get("error") or answer.get("crash")
        if entry == "config_hash" and "error" in answer and isinstance(request, dict):
            error = fieldhint.hinted(str(error), request.get("config"), groupconfig.parse)
        elif "error" in answer:
            # The other entries' answers are no settings with defaults: a field the entry then names as missing
            # is the hint (loads[0].min_maa for min_ma).
            error = fieldhint.hinted(str(error), request, lambda raw: _core_answer(entry, raw))
        print(f"loadmesh {command}: {shown}: {error}", file=sys.stderr)
        return None
    return line


def _core_answer(entry: str, request: object) -> object:
    """The installed core's answer to request; ValueError with its error if it refuses it."""
    from loadmesh.core import entry as core_entry

    answer = json.loads(core_entry.respond(entry, request))
    if "ok" not in answer:
        raise ValueError(answer.get("error") or answer.get("crash"))
    return answer["ok"]


def _runtime_failure(runtime: MicroPythonRuntime, stderr: str) -> str:
    """A MicroPython process's failure in one line: its traceback's last line (the error), and what a MemoryError
    means here."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    error = lines[-1] if lines else "ended without an answer"
    if error.startswith("MemoryError") and runtime.heap:
        # micropython-f32 runs with a node's heap: a request far larger than a node gets does not fit.
        return (f"{runtime.name}: {error}: the request does not fit the {runtime.heap} heap a node has "
                "(--runtime micropython or cpython take it)")
    return f"{runtime.name} failed: {error}"


def _heating_check(args: argparse.Namespace) -> int:
    """Check a heating.json as its node would (with --group, against the group's nodes); print what it would run."""
    from loadmesh.core.errors import FieldError

    from . import heatcheck

    raws: list[object] = []
    body = b""  # heating.json's bytes, read once: --write writes them as they came, the ones checked
    for number, path in enumerate((args.file, args.group)):
        if path is None:
            raws.append(heatcheck.NO_GROUP)  # only --group is optional
            continue
        try:
            if number == 0:
                body, raw = read_heating_body(Path(path))
            else:
                raw = read_json(Path(path))
        except (OSError, ValueError) as exc:
            print(f"loadmesh heating-check: {path}: {why(exc)}", file=sys.stderr)
            return 2
        raws.append(raw)
    try:
        settings = heatcheck.check(raws[0], raws[1])
    except FieldError as exc:
        # The node's loaders name their fields from "heating"; the rest is the group config's.
        if args.group is not None and not exc.field.startswith("heating"):
            shown = fieldhint.hinted(str(exc), raws[1], groupconfig.parse)
            where = args.group
        else:
            shown = fieldhint.hinted(str(exc), raws[0], lambda raw: heatcheck.check(raw, raws[1]), "heating")
            where = args.file
        print(f"loadmesh heating-check: {where}: {shown}", file=sys.stderr)
        return 2
    print(canon.dumps(settings))
    if args.write is not None:
        from loadmesh.node import heatsettings

        # The bytes as they came, as PUT /heating keeps them.
        return _write_node_file(args, "heating-check", heatsettings.HEATING,
                                lambda root: heatsettings.save(root, body))
    return 0


def _write_node_file(args: argparse.Namespace, command: str, name: str, write: Callable[[str], None],
                     private: bool = False) -> int:
    """Write a checked file into args.write as the node keeps it (the store's LM1 envelope); say where. A private
    file (one with a password in it) is made readable by its owner only, whatever the umask."""
    from . import nodefolder

    folder = Path(args.write)

    def write_private(root: str) -> None:
        umask = os.umask(0o077) if private else None  # the store writes a new file and renames it over the old
        try:
            write(root)
        finally:
            if umask is not None:
                os.umask(umask)

    def say(line: str) -> None:  # what a write stopped half-way had left, put right before this one
        print(f"loadmesh {command}: {line}", file=sys.stderr)

    try:
        nodefolder.write_all(folder, (name,), write_private, say)
    except OSError as exc:
        print(f"loadmesh {command}: {nodefolder.failed(folder, exc)}", file=sys.stderr)
        return 2
    # mpremote stops the node's program to copy, and leaves the board at its REPL: a reset boots the node again.
    print(f"loadmesh {command}: wrote {folder / name} as the node keeps it; copy it to the node's file "
          f"system as /{name}, then restart the node (e.g. mpremote cp {folder / name} :{name} + reset)",
          file=sys.stderr)
    return 0


def _hw_check(args: argparse.Namespace) -> int:
    """Check an ESP32 node's hw.json as the node would; print the wiring it would run, defaults filled in."""
    from loadmesh.node import hwconfig

    try:
        raw = read_json(Path(args.file))  # as it came, for --write: read once, so that what is written was checked
        wiring = fieldhint.checked(raw, hwconfig.parse, "hw")
    except (OSError, ValueError) as exc:  # unreadable, not JSON, or refused (a FieldError is a ValueError)
        print(f"loadmesh hw-check: {args.file}: {why(exc)}", file=sys.stderr)
        return 2
    wifi = wiring.get("wifi")
    if isinstance(wifi, dict) and wifi["password"]:
        # A terminal, a log or a pasted bug report is no place for it; its length is what can be wrong.
        wifi["password"] = f"({len(str(wifi['password']))} characters, not shown)"
    print(canon.dumps(wiring))
    if args.write is not None:
        from loadmesh.node import store

        return _write_node_file(args, "hw-check", store.HARDWARE,
                                lambda root: store.Store(root).write_json(store.HARDWARE, raw), private=True)
    return 0


def _key_new(args: argparse.Namespace) -> int:
    """Make a group key in a new file (never over one: its nodes hold the key that is there)."""
    from . import groupkey

    path = Path(args.file)
    if path.is_dir():
        # O_EXCL says only "exists", and the advice for a file (remove it first) would be wrong for a folder.
        print(f"loadmesh key-new: {path}: is a folder: give the key file's name, e.g. "
              f"{path / 'group.key'}", file=sys.stderr)
        return 2
    try:
        groupkey.write_new(path)
    except FileExistsError:
        print(f"loadmesh key-new: {path}: exists already; a group has one key, which its nodes hold: "
              "remove the file first if you mean to replace it (every node then needs adopting again)",
              file=sys.stderr)
        return 2
    except FileNotFoundError:  # "No such file or directory", of a file that is to be made: its folder is missing
        print(f"loadmesh key-new: {path}: no folder {path.parent} to make it in: make the folder first",
              file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"loadmesh key-new: {path}: {why(exc)}", file=sys.stderr)
        return 2
    print(f"loadmesh key-new: wrote a new {groupkey.NEW_KEY_BYTES}-byte group key to {path}, readable by you only; "
          "keep it safe: whoever holds it can command the group's nodes", file=sys.stderr)
    return 0


def _node_check(args: argparse.Namespace) -> int:
    """Check a node's node.json as the node would; print the settings it would run, defaults filled in."""
    from loadmesh.node import settings

    try:
        raw = read_json(Path(args.file))  # as it came, for --write: read once, so that what is written was checked
        parsed = fieldhint.checked(raw, settings.parse, "node")
    except (OSError, ValueError) as exc:  # unreadable, not JSON, or refused (a FieldError is a ValueError)
        print(f"loadmesh node-check: {args.file}: {why(exc)}", file=sys.stderr)
        return 2
    if args.group is not None:
        try:
            group = fieldhint.read_checked(Path(args.group), groupconfig.parse)
        except (OSError, ValueError) as exc:
            print(f"loadmesh node-check: {args.group}: {why(exc)}", file=sys.stderr)
            return 2
        wrong = membership.strangers(parsed, group)
        if wrong:
            print(f"loadmesh node-check: {args.file}: {wrong}", file=sys.stderr)
            return 2
    print(canon.dumps(parsed))
    if parsed["id"] is None:
        # Valid (an unadopted node's file says only where its HTTP API listens), but neither way in runs it.
        print(f"loadmesh node-check: {args.file}: no id: a node with this file and no key waits for adoption, "
              "and loadmesh adopt takes the member id from here", file=sys.stderr)
    if args.write is not None:
        from loadmesh.node import store

        return _write_node_file(args, "node-check", settings.FILE,
                                lambda root: store.Store(root).write_json(settings.FILE, raw))
    return 0


def _house_bench(args: argparse.Namespace) -> int:
    import difflib

    from loadmesh.core import tiers

    from . import house, housebench

    core = housebench.installed_core()
    sharing: dict[str, object] = {}
    for setting in args.set:
        key, _, value = setting.partition("=")
        if not key or not value.lstrip("-").isdigit():
            print(f"loadmesh house-bench: --set {setting}: expected NAME=INTEGER", file=sys.stderr)
            return 2
        if key == "enabled":
            # Each run sets it (off, then on): taken, the setting would be dropped without a word.
            print(f"loadmesh house-bench: --set {setting}: load sharing is off in one run and on in the other; "
                  "set the other load-sharing settings", file=sys.stderr)
            return 2
        if key not in tiers.SETTINGS:
            # Refused by the core too, but as load_sharing.KEY: neither the option nor the name meant.
            close = difflib.get_close_matches(key, sorted(tiers.SETTINGS), n=1)
            hint = f"did you mean {close[0]}?" if close else 'docs/heating.md, "`tiers`: load sharing", names them'
            print(f"loadmesh house-bench: --set {setting}: {key} is not a load-sharing setting ({hint})",
                  file=sys.stderr)
            return 2
        sharing[key] = int(value)
    try:
        # The settings as each run's start takes them, checked before either run starts: one line, the --set that
        # gave the value first (the core's FieldError names it as load_sharing.KEY).
        core.heating.load_config(house.controller_config(house.reference_house(), True, sharing=sharing))
    except ValueError as exc:
        given = [f"--set {setting}: " for setting in args.set
                 if str(exc).startswith("load_sharing." + setting.partition("=")[0] + ":")]
        print(f"loadmesh house-bench: {''.join(given[-1:])}{exc}", file=sys.stderr)
        return 2
    results = []
    for load_sharing in (False, True):
        label = "load sharing " + ("on " if load_sharing else "off")
        try:
            results.append(housebench.run(core, load_sharing, days=args.days, sharing=sharing,
                                          progress=housebench.stderr_progress(label)))
        except ValueError as exc:  # the core's FieldError names the setting
            print(f"\nloadmesh house-bench: {exc}", file=sys.stderr)
            return 2
    print(file=sys.stderr)
    off, on = results
    if args.json:
        print(json.dumps(housebench.summary(off, on)))
    else:
        print(housebench.report(off, on))
    return 0


# Commands that answer one request file through a core entry: (command, entry, help).
_ENTRY_COMMANDS = (
    ("pilot", "pilot", 'pilot duty for the currents in FILE ({"ma": [...]})'),
    ("allocate", "allocate", "target current and reason per load for the scenario in FILE"),
    ("heartbeat-encode", "heartbeat_encode", 'sign a heartbeat: {"key_hex", "heartbeat": {...}} (docs/heartbeat.md)'),
    ("heartbeat-decode", "heartbeat_decode", 'check and decode packets: {"key_hex", "group", "packets": [hex, ...]}'),
    ("peers", "peers", "run heartbeats through a peer table: replays, reboots, liveness"),
    ("sensor", "sensor", "run readings through a sensor channel: range, smoothing, hold, unknown"),
    ("config-merge", "config_merge", 'which of {"configs": [...]} wins, and the conservative merge of them all'),
    ("config-seal", "config_seal", 'sign a group config for PUT /config: {"key_hex", "config"}'),
    ("config-open", "config_open", 'check sealed configs: {"key_hex", "group", "blobs": [hex, ...]}'),
)


def _command(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             what: str) -> argparse.ArgumentParser:
    """A subcommand whose own --help says what it does, as the list of commands does."""
    return commands.add_parser(name, help=what, description=what)


def _request_options(sub: argparse.ArgumentParser,
                     runtimes: tuple[str, ...] = ("cpython", "micropython", "micropython-f32")) -> None:
    sub.add_argument("file", help="the request: a JSON file")
    sub.add_argument("--runtime", default="cpython", choices=runtimes,
                     help="the runtime that answers (default cpython); every runtime prints the same bytes")


def build_parser() -> argparse.ArgumentParser:
    # The epilog as written: argparse's wrapping would break a command's name at its hyphen.
    parser = argparse.ArgumentParser(
        prog="loadmesh", description="Home loads sharing one limited supply.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="a first try: loadmesh demo (./tools/run)\n"
               "setting up a node, in this order: key-new, config-hash, hw-check, node-check,\n"
               "  status, adopt, put, get, node-files (README, Setting up a node)\n"
               "a valve or boiler node's heating.json: heating-check, then put\n"
               "each command's --help says what it takes")
    commands = parser.add_subparsers(dest="command", required=True)
    stage = _command(commands, "stage", "stage the device tree into build/device (.py and .mpy)")
    stage.add_argument("--out", type=Path, help="destination folder")
    stage.set_defaults(func=_stage)
    for command, entry, what in _ENTRY_COMMANDS:
        sub = _command(commands, command, what)
        _request_options(sub)
        sub.set_defaults(func=lambda args, entry=entry, command=command: _run_entry_file(entry, args, command))
    controller = _command(commands, "controller", "run one node's controller ticks in FILE (the heartbeats it "
                                                  "hears, its inputs), one JSON line per tick")
    _request_options(controller)
    controller.set_defaults(func=_run_controller_file)
    config_hash = _command(commands, "config-hash", "check a group config (FILE: the config, or "
                                                    '{"config": ...}) as a node would; print the config it '
                                                    "would run, defaults filled in, with its SHA-256 (the hash of "
                                                    "its canonical text), the hash its heartbeats announce and "
                                                    "its version")
    _request_options(config_hash)
    config_hash.set_defaults(func=_run_config_hash)
    tiers = _command(commands, "tiers", "run heating steps in FILE through the load-sharing tiers, "
                                        "one JSON line per step")
    _request_options(tiers)
    tiers.set_defaults(func=lambda args: _run_steps_file("tiers", args))
    heating = _command(commands, "heating", "run heating steps in FILE through the whole control chain "
                                            "(rooms, boiler, tiers, valves), one JSON line per step")
    # Not micropython-f32: the whole chain's modules do not fit an ESP32-sized heap at once (no node runs it).
    _request_options(heating, ("cpython", "micropython"))
    heating.set_defaults(func=lambda args: _run_steps_file("heating", args))
    check = _command(commands, "heating-check", "check a node's heating.json as the node would; print the "
                                                "settings it would run, defaults filled in")
    check.add_argument("file", help="the node's heating.json")
    check.add_argument("--group", metavar="CONFIG", help="the group config (as in a node's config.json): the boiler's "
                                                        "rooms must be its valve nodes, and every valve node a room")
    check.add_argument("--write", metavar="DIR", help="once it passes, write DIR/heating.json as the node keeps "
                                                       "it, to copy into the node's file system")
    check.set_defaults(func=_heating_check)
    hw_check = _command(commands, "hw-check", "check an ESP32 node's hw.json (the wiring) as the node would; "
                                              "print the wiring it would run, defaults filled in (the Wi-Fi "
                                              "password shown by its length only)")
    hw_check.add_argument("file", help="the node's hw.json")
    hw_check.add_argument("--write", metavar="DIR", help="once it passes, write DIR/hw.json as the node keeps it, "
                                                         "to copy into the node's file system")
    hw_check.set_defaults(func=_hw_check)
    key_new = _command(commands, "key-new", "make a group key: 32 random bytes as hex, in a new file readable by "
                                            "you only (never over an existing one)")
    key_new.add_argument("file", help="the key file to create")
    key_new.set_defaults(func=_key_new)
    node_check = _command(commands, "node-check", "check a node's node.json (its member id, ports, peers' HTTP "
                                                  "APIs) as the node would; print the settings it would run, "
                                                  "defaults filled in")
    node_check.add_argument("file", help="the node's node.json")
    node_check.add_argument("--group", metavar="CONFIG", help="the group config: the node's id and every peer in "
                                                            "peers_http must be its members")
    node_check.add_argument("--write", metavar="DIR", help="once it passes, write DIR/node.json as the node keeps "
                                                           "it, to copy into the node's file system")
    node_check.set_defaults(func=_node_check)
    # The commands in a module of their own: WHAT, add_arguments() and main().
    from . import adopt, nodefiles, nodeget, nodeput, noderun, nodestatus

    for name, module in (("node-files", nodefiles), ("node", noderun), ("status", nodestatus), ("adopt", adopt),
                         ("put", nodeput), ("get", nodeget)):
        sub = _command(commands, name, module.WHAT)
        module.add_arguments(sub)
        sub.set_defaults(func=module.main)
    bench = _command(commands, "house-bench", "the reference house over a cold week, load sharing off and on")
    bench.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    bench.add_argument("--days", type=int, default=7, choices=range(1, 8), metavar="1..7",
                       help="simulated days after a day of warm-up (default 7)")
    bench.add_argument("--set", action="append", default=[], metavar="NAME=INTEGER",
                       help="a load-sharing setting for both runs (e.g. tier_3_rest_ms=900000); repeatable")
    bench.set_defaults(func=_house_bench)
    from .sim import command as sim_command

    sim_command.add_parser(commands)
    sim_command.add_demo_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .pipes import quiet_when_unread

    return quiet_when_unread(lambda: _main(argv))


TRACEBACK = "LOADMESH_TRACEBACK"  # set (not to 0): the errors shortened below keep their traceback


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SetupError as exc:
        if _traceback_wanted():
            raise
        print(f"loadmesh {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # A path a command did not check before using it (sim --trace into a folder that is not there): the path
        # and what is wrong, not a traceback. One without a path is not the installer's (a closed pipe: main).
        # Only an OSError: any other exception is a bug, and keeps its traceback; so does a bug that fails on a
        # path, for whoever sets LOADMESH_TRACEBACK to find where.
        if exc.filename is None or _traceback_wanted():
            raise
        print(f"loadmesh {args.command}: {exc.filename}: {why(exc)}", file=sys.stderr)
        return 2
    return result


def _traceback_wanted() -> bool:
    return os.environ.get(TRACEBACK, "0") not in ("", "0")


if __name__ == "__main__":
    sys.exit(main())
