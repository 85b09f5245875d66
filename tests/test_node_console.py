"""Ctrl-C at a node's console, as mpremote sends it to copy files: the node stops, its watchdog fed from a timer."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from loadmesh.companion import noderun
from loadmesh.companion.sim.runner import free_port
from loadmesh.node.store import Store

from . import ctrlc, mpnode
from .test_cli_status import UP, Node

pytestmark = pytest.mark.wallclock  # a node process against the wall clock: tools/test runs these in their own lane


def test_ctrl_c_hands_the_board_to_the_console_with_its_watchdog_fed(device_root: Path, tmp_path: Path) -> None:
    # An ESP32's watchdog cannot be stopped: before, the REPL that Ctrl-C reached was reset wdt_ms later,
    # with a copy under way cut off.
    hw = {"hal": "esp32", "wdt_ms": 2000, "wifi": {"ssid": "House", "password": "correct horse battery"}}
    node = Node(device_root, tmp_path / "garage", hw, UP, adopted=True)
    try:
        assert node.status()["state"] == "running"
        node.process.send_signal(signal.SIGINT)
        assert node.process.wait(timeout=10) == 0, node.log()  # main() returned: no traceback
    finally:
        node.kill()
    lines = node.log().splitlines()
    assert "loadmesh node: stopped by Ctrl-C at the console; outputs safe; a reset runs the node again" in lines
    after = json.loads(next(line for line in lines if line.startswith("after main: "))[len("after main: "):])
    assert after["wdt_ms"] == 2000
    assert 0 < after["timer_period_ms"] < 2000  # fed well within the watchdog's time
    assert after["feeds_by_the_timer"] == 3  # each of the timer's calls fed it


def _boot(device_root: Path, cause: str, *hw: str) -> dict[str, object]:
    [out] = mpnode.run("console_check.py", cause, str(device_root / "py" / "boot.py"), *hw, device_root=device_root,
                       fakes=True)
    assert isinstance(out, dict)
    return out


def test_after_a_soft_reset_boot_py_feeds_the_watchdog_until_the_hal_takes_it_over(device_root: Path) -> None:
    # mpremote soft-resets the board before it copies, and main.py does not run then: the watchdog the node
    # started runs on, and the timer of Ctrl-C's hand-over is gone with the soft reset.
    out = _boot(device_root, "soft")
    assert out["wdt_ms"] == 8000
    assert 0 < out["timer_period_ms"] < 8000  # type: ignore[operator]
    assert out["feeds_by_the_timer"] == 3
    # main.py's node (a soft reset at the friendly REPL runs it): its ticks feed the watchdog, not the timer, so
    # that a hung tick still resets it.
    out = _boot(device_root, "soft", json.dumps({"hal": "esp32", "wdt_ms": 2000}))
    assert (out["wdt_ms_of_the_hal"], out["timer_once_the_hal_runs"]) == (2000, False)


def test_at_power_up_boot_py_starts_no_watchdog(device_root: Path) -> None:
    assert _boot(device_root, "power") == {"wdt_ms": None, "timer_period_ms": None, "feeds_by_the_timer": 0}


def test_loadmesh_node_runs_a_node_in_its_folder_until_ctrl_c(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    port = free_port(socket.SOCK_STREAM)
    assert noderun.node_json_warning(folder).startswith("no node.json, so the node's HTTP API is on port 80")
    (folder / "node.json").write_text(json.dumps({"http_port": port}))  # by hand: not in the store's envelope
    assert noderun.node_json_warning(folder).startswith("node.json is not as the node keeps it")
    Store(str(folder)).write_json("node.json", {"http_port": port, "http_host": "127.0.0.1"})  # as node-check writes it
    assert noderun.node_json_warning(folder) == ""
    node = subprocess.Popen([str(Path(sys.executable).parent / "loadmesh"), "node", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                            preexec_fn=ctrlc.as_in_a_terminal)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as answer:
                    status = json.load(answer)
                break
            except OSError:
                assert node.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert status["state"] == "unadopted"
        assert (folder / "adopt").is_file()  # its adoption code, kept in its folder (its file system)
        node.send_signal(signal.SIGINT)
        output, _ = node.communicate(timeout=10)
    finally:
        node.kill()
    assert node.returncode == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("loadmesh node: unadopted; adoption code "), output
    assert lines[-1] == "loadmesh node: stopped by Ctrl-C at the console; outputs safe; a reset runs the node again"


def test_loadmesh_node_names_a_folder_that_is_not_there(tmp_path: Path) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "loadmesh"), "node", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"loadmesh node: {tmp_path / 'nowhere'}: is not a folder (make it, and write its "
                           f"node.json with loadmesh node-check NODE.json --write {tmp_path / 'nowhere'})\n")


# A node stopped by an exception (main(): _failed). A bug while the HAL builds (a machine class raising TypeError)
# is before the watchdog runs: before, main.py ended at the REPL and the board stayed silent until power-cycled.
BOOT_FAILURE_HW = {"hal": "esp32", "pilot": {"pwm_pin": 25, "adc_pin": 36}, "relay": {"pin": 26}, "wdt_ms": 2000}


def _stop_by_error(device_root: Path, tmp_path: Path, chip: dict[str, object], where: str,
                   restart_ms: int) -> subprocess.Popen[str]:
    root = tmp_path / "node"
    root.mkdir()
    (tmp_path / "hw.json").write_text(json.dumps(BOOT_FAILURE_HW))
    (tmp_path / "machine.json").write_text(json.dumps(chip))
    return subprocess.Popen(mpnode.command(mpnode.node_image(device_root), "boot_failure_check.py", str(root),
                                           str(tmp_path / "hw.json"), str(tmp_path / "machine.json"), where,
                                           str(restart_ms)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=mpnode.environment(None, fakes=True), preexec_fn=ctrlc.as_in_a_terminal)


def _ended(process: subprocess.Popen[str]) -> tuple[list[str], dict[str, object]]:
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    lines = output.splitlines()
    return lines, json.loads(lines[-1])


def test_a_bug_before_the_watchdog_runs_resets_the_board_after_a_pause(device_root: Path, tmp_path: Path) -> None:
    lines, out = _ended(_stop_by_error(device_root, tmp_path, {"broken": "PWM"}, "boot", 1000))
    assert (out["ended"], out["resets"], out["wdt_ms"]) == ("reset", 1, None)  # no watchdog would have reset it
    assert "TypeError: a bug" in lines  # the traceback on the console, then why it waits
    assert "loadmesh node: stopped by an error; the board resets in 1 s (Ctrl-C for the REPL)" in lines
    assert out["driven"] == {"25": [["level", 1]]}  # the pilot pin held high (+12 V) from the start, nothing else


def test_ctrl_c_while_a_failed_node_waits_keeps_the_repl(device_root: Path, tmp_path: Path) -> None:
    # mpremote's Ctrl-C reaches a board that failed to boot: the REPL, for the files to be put right.
    process = _stop_by_error(device_root, tmp_path, {"broken": "PWM"}, "boot", 60000)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("loadmesh node: stopped by an error; the board resets in 60 s"):
                break
        process.send_signal(signal.SIGINT)
        lines, out = _ended(process)
    finally:
        process.kill()
    assert (out["ended"], out["resets"]) == ("returned", 0)
    assert "loadmesh node: stopped by Ctrl-C at the console; outputs safe; a reset runs the node again" in lines


def test_a_bug_in_the_loop_makes_the_outputs_safe_at_once_and_resets(device_root: Path, tmp_path: Path) -> None:
    lines, out = _ended(_stop_by_error(device_root, tmp_path, {}, "loop", 1000))
    assert "TypeError: a bug in the loop" in lines
    assert (out["ended"], out["resets"], out["wdt_ms"]) == ("reset", 1, 2000)
    # Made safe once more after the failure: the pilot constant high, the contactor open (before, they held what
    # the loop last drove until the watchdog reset the board, up to wdt_ms later).
    before = out["driven_before_the_failure"]
    assert isinstance(before, dict) and before["25"][-1] == ["duty_u16", 65535]
    assert out["driven"] == {"25": before["25"] + [["duty_u16", 65535]], "26": before["26"] + [["level", 0]]}
