"""A node's memory on the ESP32-sized heap: the node image, 16 peers, no MemoryError, nothing kept per tick."""

from __future__ import annotations

import gc
import json
import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from loadmesh.companion.paths import micropython_binary
from loadmesh.companion.sim.runner import free_port

from . import mpnode

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

ROOT = Path(__file__).resolve().parent.parent
MEMORY_SCRIPT = ROOT / "tools" / "node_memory_mp.py"
KEY = bytes(range(32))
HeatingRun = tuple[dict[str, dict[str, object]], dict[str, list[dict[str, object]]]]  # figures, /status answers


def test_the_node_image_freezes_the_staged_library(device_root: Path) -> None:
    # node_image() checks the stamp against this session's staging; a frozen module has a relative path.
    out = mpnode.run("frozen_check.py", device_root=device_root)
    assert out == [{"clock": "loadmesh/node/clock.py", "peers": "loadmesh/core/peers.py"}]


def test_the_steady_tick_keeps_nothing(device_root: Path) -> None:
    port = free_port(socket.SOCK_DGRAM)
    lines = mpnode.run("steady_tick.py", str(port), "1000", "100", device_root=device_root)
    assert [line["tick"] for line in lines] == list(range(100, 1001, 100))  # type: ignore[index]
    assert all(line["peers"] == 16 for line in lines)  # type: ignore[index]
    # Every heartbeat sent got through the mesh socket and was accepted: 5 per tick.
    assert lines[-1]["ok"] == 5 * 1000  # type: ignore[index]
    # After the first hundred ticks (the table filling, dicts reaching their size) what is left after
    # each collection stays the same: a leak of one 16-byte block per tick would add 12.8 KB here.
    kept = [line["mem_alloc"] for line in lines[1:]]  # type: ignore[index]
    assert max(kept) - min(kept) <= 256, kept


def test_a_room_in_a_heartbeat_holds_its_own_dict_and_no_more(device_root: Path) -> None:
    # The boiler node keeps a heartbeat with a room section for each room (the peer table). Its dict is made in
    # one literal with the room among its keys: added after, the room grew the dict's table from 23 slots to 29
    # (96 bytes more per room on this 64-bit host, and a block of 464 in one piece for every heartbeat heard).
    out = mpnode.run("heartbeat_held_check.py", device_root=device_root)
    held = out[0]
    assert isinstance(held, dict) and held["room"] > 0, out
    # At most one GC block (4 words: 32 bytes here) beyond the heartbeat without a room and the room itself.
    assert held["with_room"] - held["plain"] - held["room"] <= 32, held


def test_sixteen_peers_on_a_12k_word_heap(device_root: Path, tmp_path: Path) -> None:
    from tools.node_memory import PEERS, send_peers

    settings = {"port": free_port(socket.SOCK_DGRAM), "http_port": free_port(socket.SOCK_STREAM),
                "key_hex": bytes(range(32)).hex(), "group": "home", "peers": PEERS, "seconds": 8,
                "report_ms": 1000}
    stop = threading.Event()
    sender = threading.Thread(target=send_peers, args=(settings["port"], stop), daemon=True)
    sender.start()
    node = mpnode.NodeProcess(MEMORY_SCRIPT, mpnode.argfile(settings), device_root=device_root)
    try:
        imports = node.expect(lambda line: "imports" in line)
        assert "memory_error" not in imports
        table = node.expect(lambda line: "table" in line)["table"]
        assert table["peers"] == 16  # type: ignore[index]
        full = node.expect(lambda line: line.get("online") == 16)
        done = node.expect(lambda line: "done" in line, timeout_s=30)["done"]
    finally:
        stop.set()
        node.close()
    assert isinstance(done, dict)
    assert done["errors"] == 0 and done["allocations"] == done["ticks"]
    heap = imports["heap"]
    assert isinstance(heap, int) and done["peak"] <= heap and done["live_max"] < heap
    assert isinstance(full["counts"], dict) and full["counts"]["ok"] > 0


def test_from_mpy_files_the_node_does_not_fit(device_root: Path) -> None:
    # Why the node image exists: the same modules loaded from .mpy files exhaust the heap.
    settings = mpnode.argfile({"port": 1, "http_port": 1, "key_hex": KEY.hex(), "group": "home", "peers": [],
                               "seconds": 0, "report_ms": 1000})
    result = subprocess.run(mpnode.command(micropython_binary(single_precision=True), MEMORY_SCRIPT, settings),
                            capture_output=True, text=True, env=mpnode.environment(device_root), timeout=60)
    first = result.stdout.splitlines()[0]
    assert '"memory_error"' in first, result.stdout + result.stderr


def test_the_node_runtime_with_sixteen_peers_runs_on_a_12k_word_heap(device_root: Path, tmp_path: Path) -> None:
    # The real runtime (controller, HTTP API, config sync) in the node image on the ESP32's heap, its 16
    # peers virtual nodes on CPython, cars coming and going: tools/node_memory_peers.py, 25 s of it.
    from tools.node_memory_peers import run

    # The virtual peers tick in this process, which a long test session fills with millions of objects: a
    # full collection per tick (the node's mid-tick collect, meant for MicroPython's heap) took ~150 ms here
    # and starved them of heartbeats. Count the full collections their thread runs.
    full: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2 and threading.current_thread().name == "virtual-nodes":
            full.append(1)

    gc.callbacks.append(count)
    try:
        figures = run(25, tmp_path / "site", device_root=device_root, quiet=True)
    finally:
        gc.callbacks.remove(count)
    figures["virtual_full_collections"] = len(full)
    shown = json.dumps(figures, sort_keys=True)  # whole, where pytest would cut a dict short
    assert len(full) < 50, shown  # 16 peers x 10 ticks a second: about 2,500 in 25 s when each tick collected
    assert figures["state"] == "running" and figures["error"] is None, shown
    assert figures["resets"] == 0, shown  # a MemoryError would have halted the node: its watchdog resets it
    assert figures["peers_online_end"] == 16, shown
    heap = figures["heap"]
    assert isinstance(heap, int) and isinstance(figures["peak"], int) and figures["peak"] <= heap
    assert figures["violations"] == 0


def test_the_meter_node_with_sixteen_peers_runs_on_a_12k_word_heap(device_root: Path, tmp_path: Path) -> None:
    # The largest group (17 members) with the mains meter the measured node's: a reading a second, its draw
    # minima (meterview) every tick, and the allocation computed again after every reading that moves the
    # house's load. It did not fit (a MemoryError in site.parse, a watchdog reset, every 15 s or so).
    from tools.node_memory_peers import MEASURED, run

    figures = run(25, tmp_path / "site", device_root=device_root, quiet=True, meter=True, meter_node=MEASURED)
    shown = json.dumps(figures, sort_keys=True)
    assert figures["state"] == "running" and figures["error"] is None, shown
    assert figures["resets"] == 0, shown  # a MemoryError would have halted the node: its watchdog resets it
    assert figures["peers_online_end"] == 16, shown
    heap = figures["heap"]
    assert isinstance(heap, int) and isinstance(figures["peak"], int) and figures["peak"] <= heap
    assert figures["violations"] == 0, shown


def test_an_esp32_node_lets_its_wiring_check_go_after_boot(device_root: Path, tmp_path: Path) -> None:
    # hwconfig reads hw.json at boot; kept, it held 2.2 KB of the heap for good (with fieldcheck, which it imports),
    # and test_node_status_pace's node, on the ESP32 HAL, was refused memory for a /status now and then.
    from loadmesh.node.store import Store

    Store(str(tmp_path)).write_json("hw.json", {"hal": "esp32", "wifi": {"ssid": "House",
                                                                        "password": "correct horse battery"}})
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "esp32_modules_check.py"),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), cwd=tmp_path,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == {"hal": "Esp32Hal", "hw_error": None, "kept": [], "let_go_held": []}, result.stdout


def test_a_heating_node_keeps_only_its_own_heating_modules(device_root: Path, tmp_path: Path) -> None:
    # heatsettings imports every heating module; each role lets go those it needs only to read its settings
    # (Role.occasional), after its boot and after a PUT /heating alike: 6.4 KB on a valve node, 2.3 KB on a
    # boiler node (docs/heating.md, "Memory of a heating group"); the runtime lets go its own (fieldcheck among them).
    from loadmesh.core import groupconfig
    from loadmesh.node.store import Store

    config = groupconfig.parse({
        "group": "house", "version": 1, "updated_at": 1, "origin": "test", "key_id": "house",
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": [25000], "safety_pct": 100}, "circuits": [],
        "members": [{"id": node, "kind": kind, "phases": "L1", "min_ma": 0, "max_ma": 0, "step_ma": 1000,
                     "priority": 0, "mode": "off"} for node, kind in (("boiler", "boiler"), ("bath", "valve"))]})
    files = {"bath": {"room": {"mode": "auto", "schedule": {"default_target_dc": 160, "blocks": []}}},
             "boiler": {"rooms": [{"id": "bath", "rated_w": 900}], "boiler": {"min_off_ms": 0}}}
    found = {}
    for node, heating in files.items():
        folder = tmp_path / node
        folder.mkdir()
        store = Store(str(folder))
        store.write_json("node.json", {"id": node, "mesh_port": free_port(socket.SOCK_DGRAM), "mesh_host": "127.0.0.1",
                                       "mesh_dest_port": free_port(socket.SOCK_DGRAM), "bind_host": "127.0.0.1",
                                       "http_host": "127.0.0.1", "http_port": free_port(socket.SOCK_STREAM),
                                       "peers_http": {}})
        store.write_key(KEY)
        store.raise_boot_floor(0)  # its count vouched for, as adoption and node-files leave it
        store.write_json("config.json", config)
        store.write_json("heating.json", heating)
        body = folder / "put.json"
        body.write_text(json.dumps(heating))
        # Not mpnode.run: the node prints its boot line before the script's JSON.
        result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "heating_modules_check.py", str(body)),
                                capture_output=True, text=True, env=mpnode.environment(None), cwd=folder, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        found[node] = json.loads(result.stdout.splitlines()[-1])
    valve_modules = ["loadmesh.core.roomctl", "loadmesh.core.schedule"]
    boiler_modules = ["loadmesh.core.boiler", "loadmesh.core.radiator", "loadmesh.core.tiers", "loadmesh.core.valves"]
    # let_go_held: a module let go is out of the heap only when no kept module holds it at its top (fieldcheck was
    # held by the heating modules and the boiler role, 1.1 KB).
    assert found["bath"] == {"mode": "running", "kind": "valve", "error": None, "booted": valve_modules,
                             "saved": True, "after_put": valve_modules, "let_go_held": []}, found
    assert found["boiler"] == {"mode": "running", "kind": "boiler", "error": None, "booted": boiler_modules,
                               "saved": True, "after_put": boiler_modules, "let_go_held": []}, found


@pytest.fixture(scope="module")
def heating_group(device_root: Path, tmp_path_factory: pytest.TempPathFactory) -> HeatingRun:
    """The boiler node and a valve node of a group of heatsettings.MAX_ROOMS rooms, each a process of the node
    image on the ESP32's heap, the other valve nodes virtual (real heartbeats: digests, config hash, room
    sections); load sharing forced to open every room it may at every tick, the boiler cycling, /status
    asked of both every second: tools/node_memory_rooms.py, 15 s of it. Its figures, and the /status answers
    by node."""
    from loadmesh.node.heatsettings import MAX_ROOMS
    from tools.node_memory_rooms import run

    answers: dict[str, list[dict[str, object]]] = {}
    figures = run(MAX_ROOMS, 15, tmp_path_factory.mktemp("rooms") / "site", device_root=device_root, answers=answers)
    return figures, answers


def test_a_heating_group_of_the_most_rooms_runs_on_a_12k_word_heap(heating_group: HeatingRun) -> None:
    # With 12 rooms the boiler node halted within seconds (a MemoryError in its tick, or a /status it could not
    # build).
    from loadmesh.node.heatsettings import MAX_ROOMS
    from tools.node_memory_rooms import BOILER, VALVE

    figures, _ = heating_group
    shown = json.dumps(figures, sort_keys=True)
    for node in (BOILER, VALVE):
        found = figures[node]
        assert found["state"] == "running" and found["error"] is None, shown
        assert found["resets"] == 0, shown  # a MemoryError in a tick halts the node: its watchdog resets it
        assert isinstance(found["polls"], int) and found["polls"] >= 10 and found["polls_unanswered"] == 0, shown
        assert found["peers_online_end"] == MAX_ROOMS, shown  # the boiler node's rooms; the valve node's 6 and it
        heap = found["heap"]
        assert isinstance(heap, int) and isinstance(found["peak"], int) and found["peak"] <= heap, shown
    # Load sharing ran: rooms opened and held for the valve nodes, which followed the boiler node.
    boiler = figures[BOILER]
    assert isinstance(boiler["tiers"], list) and any(state.startswith("TIER") for state in boiler["tiers"]), shown
    assert isinstance(boiler["overrides_max"], int) and boiler["overrides_max"] > 0, shown
    assert isinstance(figures[VALVE]["override_ticks"], int) and figures[VALVE]["override_ticks"] > 0, shown


def test_loadmesh_status_says_what_the_heating_group_does(heating_group: HeatingRun) -> None:
    # The same run's /status answers, as `loadmesh status` prints them (companion/heatstatus.py; the wording of
    # each state: tests/test_heatstatus.py). The baths and the kids' room call; load sharing opens the bedroom,
    # the measured valve node, which then follows the boiler node.
    from loadmesh.companion import nodestatus
    from loadmesh.node.heatsettings import MAX_ROOMS
    from tools.node_memory_rooms import BOILER, VALVE

    _, answers = heating_group
    boiler = [_by_label(nodestatus.summary(status)) for status in answers[BOILER]]
    valve = [_by_label(nodestatus.summary(status)) for status in answers[VALVE]]
    # Each failure names the answer and line at fault, then every answer's lines: a CI log shows the whole run.
    seen = _seen({BOILER: boiler, VALVE: valve})
    assert len(boiler) >= 10 and len(valve) >= 10, f"{len(boiler)} and {len(valve)} answers{seen}"
    states = "(firing|firing, held on|off, pump overrun|off, blocked|off)"
    for index, lines in enumerate(boiler):
        at = f"{BOILER} answer {index}"
        _expect(states + r"(: .+)?; setpoint 70\.0 °C; fired \d+ times? since its boot", lines, "boiler", at, seen)
        _expect(r"\d+ % confirmed open in all \(what the interlock counts\)(; .+)?", lines, "valves", at, seen)
        _expect(rf"\d of {MAX_ROOMS} heard; (calling: [\w, ]+|none calling)", lines, "rooms", at, seen)
        assert all(line.isprintable() for line in lines.values()), f"{at}: {lines}{seen}"
    # Before its first reading a valve node's heartbeats say stale (no temperature) and unread, and the boiler node
    # names the room `starting`, not STALE: on a board too (the DS18B20's first conversion). Here the reading is the
    # plant's answer (this process): loaded, it came after the measured valve node's first tick. A reading once had
    # is held a minute (role_valve.TEMP_HOLD_MS), longer than the run: from the first answer with every room heard
    # and each with a temperature on, none may be stale.
    settled = next((index for index, lines in enumerate(boiler) if lines["rooms"].startswith(f"{MAX_ROOMS} of ")
                    and "STALE" not in lines and "starting" not in lines), len(boiler))
    assert settled < len(boiler), f"no {BOILER} answer: every room heard, none STALE or starting{seen}"
    for index, lines in enumerate(boiler[settled:], settled):
        assert "STALE" not in lines, f"{BOILER} answer {index}, after answer {settled} had none: STALE " \
                                     f"{lines['STALE']!r}{seen}"
    calling = f"{MAX_ROOMS} of {MAX_ROOMS} heard; calling: bath, bath2, kids"
    assert any(lines.get("rooms") == calling for lines in boiler), f"no {BOILER} answer: rooms {calling!r}{seen}"
    opened = r"TIER\d_[A-Z]+: opened (\w+ \d+ %, )*bedroom [1-9]0 %(, \w+ \d+ %)*"
    assert any(re.fullmatch(opened, lines.get("sharing", "")) for lines in boiler), \
        f"no {BOILER} answer: load sharing opened the bedroom{seen}"
    for index, lines in enumerate(valve):
        at = f"{VALVE} answer {index}"
        _expect(r"auto, (\d+\.\d °C|no temperature|no temperature yet), target \d+\.\d °C: (satisfied, not calling|"
                r"calling for heat|not calling: no recent temperature|not calling: sensor not read yet since the boot)",
                lines, "room", at, seen)
        # Held (role_valve.py): the boiler node let its override go while the boiler fired, and the valve keeps the
        # opening until the boiler node answers. Not in a run at the normal pace; seen with a node, or this process
        # (hub, plant, virtual nodes), stopped for 2-3 s at a time: rooms fell silent (peer timeout 3 s), the pump
        # overrun held every valve, and load sharing started again without the bedroom at first.
        _expect(r"commanded \d+ % (by its own control|by the boiler node \(load sharing or safety; its own control: "
                r"\d+ %\)|held for the firing boiler \(its own control: \d+ %, once the boiler node answers\)); "
                r"(feedback \d+ %|no feedback \(.+\))(; .+)?", lines, "valve", at, seen)
    # Heard under load sharing: the boiler node's opening, over its own (satisfied, closed); after such a stop,
    # also the times the valve node dropped it, the boiler node silent.
    under = [index for index, lines in enumerate(valve) if "by the boiler node" in lines["valve"]]
    assert under, f"no {VALVE} answer: commanded by the boiler node{seen}"
    for index in under:
        _expect(r"heard \([\d,]+ ticks? under its override(, its override dropped [\d,]+ times? when it fell "
                r"silent)?\)", valve[index], "boiler", f"{VALVE} answer {index}", seen)


def _expect(pattern: str, lines: dict[str, str], label: str, at: str, seen: str) -> None:
    """The answer's line of that label is the pattern, whole; else a failure that shows it, then every answer."""
    line = lines.get(label)
    assert line is not None and re.fullmatch(pattern, line), f"{at}: {label} {line!r}, not /{pattern}/{seen}"


def _seen(by_node: dict[str, list[dict[str, str]]]) -> str:
    """Every answer's lines by node, as `loadmesh status` prints them, one answer a line (the memory, peers and
    config lines left out: the memory test shows those figures)."""
    shown = ["", "the answers:"]
    for node, answers in by_node.items():
        for index, lines in enumerate(answers):
            heating = [label + ": " + line for label, line in lines.items() if label not in _NOT_SHOWN]
            shown.append(f"{node} {index}: " + " | ".join(heating))
    return "\n".join(shown)


_NOT_SHOWN = ("memory", "peers", "config", "ticks")


def _by_label(lines: list[str]) -> dict[str, str]:
    return {line[:10].rstrip(): line[10:] for line in lines}
