"""A tick that runs out of memory once is skipped, and the node runs on; one in the middle of driving its outputs,
or a second in a row, halts it (docs/firmware.md, "A tick out of memory"). The node image on the ESP32 HAL (machine
faked), its heap locked where the tick is to meet a real MemoryError."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from . import mpnode
from .test_node_hal_esp32 import EVSE, cp_uv
from .test_node_tick_state import write_store

CAR_ASKING = [cp_uv(6)] * 3 + [cp_uv(-12)] * 7  # state C: a car asking for current (with the diode)
GOOD = ["good"] * 12  # boot at 0 A; the car's state C heard; then a raise, one group member agreeing with itself


def _store(root: Path) -> None:
    """A one-member group's EV charger on the ESP32 HAL: its key, config, node.json and hw.json."""
    root.mkdir(parents=True)
    write_store(root, ("a",), {"hw.json": EVSE})


def _run(device_root: Path, tmp_path: Path, ticks: list[str]) -> tuple[list[dict[str, Any]], str]:
    root = tmp_path / "node"
    _store(root)
    script = mpnode.argfile({"adc_uv": CAR_ASKING, "ticks": ticks})
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "tick_memory_check.py", str(root), script),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(ticks), result.stdout
    return lines, result.stdout


def _charging(lines: list[dict[str, Any]]) -> dict[str, Any]:
    last = lines[len(GOOD) - 1]
    assert last["ticked"] and last["mode"] == "running" and last["applied_ma"] == 16000, last
    return last


def test_a_tick_out_of_memory_is_skipped_and_the_car_charges_on(device_root: Path, tmp_path: Path) -> None:
    # Before, any MemoryError in a tick halted the node: the pilot to its safe level (the car stopped charging), the
    # watchdog unfed, the node reset a second or two later. A heap cut up for a moment is not a fault of the node's.
    lines, said = _run(device_root, tmp_path, [*GOOD, "locked", "good", "locked", "good"])
    charging = _charging(lines)
    skipped, good, again, last = lines[len(GOOD):]
    for line in (skipped, again):
        assert line["ticked"] is True and (line["mode"], line["error"]) == ("running", None), line
        assert line["pilot"] == [] and line["relay"] == [] and line["heartbeats_sent"] == 0, line  # nothing driven
    # Nothing of the failed tick is kept: the controller's state is that of the tick before; not fed, not counted.
    assert skipped["state"] == charging["state"]
    assert skipped["feeds"] == charging["feeds"] and skipped["ticks"]["count"] == charging["ticks"]["count"]
    assert skipped["ticks"]["skipped"] == 1 and again["ticks"]["skipped"] == 2
    # The next tick runs as ever: the pilot driven at the same current, the watchdog fed.
    for line in (good, last):
        assert line["ticked"] is True and line["pilot"] == charging["pilot"] and line["applied_ma"] == 16000, line
    assert good["feeds"] == charging["feeds"] + 1 and good["ticks"]["count"] == charging["ticks"]["count"] + 1
    assert "loadmesh node: a tick ran out of memory; skipped, the next one runs (two in a row halt the node)" in said
    assert "MemoryError: memory allocation failed, heap is locked" in said  # where, for whoever reads the console


def test_two_ticks_in_a_row_out_of_memory_halt_the_node_safe(device_root: Path, tmp_path: Path) -> None:
    lines, _ = _run(device_root, tmp_path, [*GOOD, "locked", "locked", "good"])
    charging = _charging(lines)
    skipped, halted, after = lines[len(GOOD):]
    assert skipped["ticked"] is True and skipped["mode"] == "running"
    assert halted["ticked"] is False and halted["mode"] == "halted", halted
    assert halted["error"] == "tick: MemoryError: memory allocation failed, heap is locked"
    assert halted["pilot"] == [["duty_u16", 65535]] and halted["relay"] == [["level", 0]]  # +12 V constant: no charge
    assert after["ticked"] is False and after["feeds"] == halted["feeds"] == charging["feeds"]  # the watchdog resets it


def test_a_driver_out_of_memory_halts_the_node(device_root: Path, tmp_path: Path) -> None:
    # Between keeping the tick's new state and driving the outputs to it, a MemoryError is no skip: the state would
    # say the pilot moved (a lowered limit's car lag counted from this tick) while it held the old current.
    lines, _ = _run(device_root, tmp_path, [*GOOD, "driver"])
    _charging(lines)
    halted = lines[-1]
    assert halted["ticked"] is False and halted["mode"] == "halted", halted
    assert halted["error"] == "tick: MemoryError: memory allocation failed, allocating 64 bytes"
    assert halted["pilot"] == [["duty_u16", 65535]] and halted["relay"] == [["level", 0]]


def test_a_heartbeat_out_of_memory_is_a_lost_one(device_root: Path, tmp_path: Path) -> None:
    # After the outputs are driven, a heartbeat the heap had no room to sign and send is lost, as a packet can be.
    lines, _ = _run(device_root, tmp_path, GOOD + ["locked_send"] + ["good"] * 12)
    charging = _charging(lines)
    tail = lines[len(GOOD):]
    failed = [line for line in tail if line["ticks"]["skipped"] == 1]
    assert failed, tail
    first = failed[0]
    at = tail.index(first)
    before = tail[at - 1] if at else charging
    assert first["ticked"] is True and first["mode"] == "running" and first["heartbeats_sent"] == 0, first
    assert first["pilot"] == charging["pilot"]  # driven before the heartbeat
    assert first["feeds"] == before["feeds"]  # not fed
    assert any(line["heartbeats_sent"] == 1 for line in tail[at + 1:]), tail  # the next one is sent
    assert all(line["mode"] == "running" for line in tail)


def test_a_first_tick_out_of_memory_half_way_through_its_allocation(device_root: Path, tmp_path: Path) -> None:
    # The first tick computes the allocation of the node's first view; out of memory there, the plan's memo is left
    # without a view, and the next tick computes it again: the same digest and current as a node that never failed.
    failed, _ = _run(device_root, tmp_path / "failed", ["locked_allocation", *GOOD])
    clean, _ = _run(device_root, tmp_path / "clean", GOOD)
    assert failed[0]["ticked"] is True and failed[0]["ticks"] == {"count": 0, "late": 0, "max_ms": 0, "skipped": 1}
    assert failed[0]["pilot"] == []
    for mine, theirs in zip(failed[1:], clean, strict=True):
        assert mine["applied_ma"] == theirs["applied_ma"] and mine["pilot"] == theirs["pilot"]
        assert json.loads(mine["state"])["sent"] == json.loads(theirs["state"])["sent"]  # the digest and what it told
    assert failed[-1]["applied_ma"] == 16000


def test_a_tick_out_of_memory_at_a_new_view_lets_go_of_the_view_before(device_root: Path, tmp_path: Path) -> None:
    # The next tick computes the new view's allocation on the same heap, from the same table: it failed again,
    # and halted the node, for as long as the view stayed as it was. The skip makes room for it: the targets and
    # digests of the view before, which the failed tick had let go of the key of and the next one replaces.
    lines, _ = _run(device_root, tmp_path, ["good", "locked_allocation", *GOOD])
    tail = lines[1:]
    failed = [line for line in tail if line["ticks"]["skipped"] == 1]
    assert failed, tail
    at = tail.index(failed[0])
    before = tail[at - 1] if at else lines[0]
    assert before["memo"] == [True, 1, True]  # a view's, whole, before the tick that failed at the next view
    assert failed[0]["ticked"] is True and failed[0]["mode"] == "running" and failed[0]["pilot"] == []
    assert failed[0]["memo"] == [False, 0, False]  # nothing of the view before left
    after = tail[at + 1]
    assert after["ticked"] is True and after["memo"] == [True, 1, True] and after["feeds"] == failed[0]["feeds"] + 1
    assert tail[-1]["applied_ma"] == 16000 and tail[-1]["mode"] == "running" and tail[-1]["ticks"]["skipped"] == 1


def test_config_sync_goes_on_when_the_words_for_its_failure_do_not_fit(device_root: Path, tmp_path: Path) -> None:
    # The sync loop (a task beside the ticks) catches what a round raises and words it for /status. Out of memory
    # there, the MemoryError ended the task: no config fetched or taken from a peer until the next reset.
    root = tmp_path / "node"
    _store(root)
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "sync_memory_check.py", str(root)),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["rounds"] >= 2 and out["sync_error"] == "sync: out of memory", result.stdout  # a round after the first
