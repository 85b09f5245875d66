"""`loadmesh sim`: the trace, the live table, bad scenarios, nodes that cannot start, and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadmesh.companion import cli
from loadmesh.companion.sim import trace
from loadmesh.companion.sim.runner import SimError, Simulation

from . import ctrlc
from .simsite import three_evses

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

ROOT = Path(__file__).resolve().parent.parent
EVSE3 = ROOT / "tools" / "scenarios" / "evse3_32a.yaml"


def node_processes(folder: Path) -> list[int]:
    """The node processes running in a folder below folder (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"micropython-node-f32" in command and cwd.startswith(str(folder)):
            found.append(int(entry.name))
    return found


def test_the_demo_table_and_the_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trace.jsonl"
    workdir = tmp_path / "site"
    assert cli.main(["sim", str(EVSE3), "--live", "--duration", "3", "--trace", str(out),
                     "--workdir", str(workdir)]) == 0
    printed = capsys.readouterr()
    tables = printed.out.split("\n\n")
    last = [table for table in tables if table.strip()][-1].splitlines()
    assert last[0].startswith("loadmesh sim: Three EV chargers on one 32 A single-phase supply  t=")
    assert last[1].split() == ["node", "state", "target", "applied", "draw", "peers", "failsafe"]
    assert [row.split()[0] for row in last[2:]] == ["evse1", "evse2", "evse3"]
    assert "sim: done:" in printed.err and "over a limit: applied 0, drawn 0" in printed.err
    records = trace.read(out)
    assert {record["node"] for record in records} == {"evse1", "evse2", "evse3"}
    assert all(set(trace.REQUIRED) <= set(record) for record in records)
    assert max(record["t_ms"] for record in records) >= 2800  # type: ignore[type-var]
    assert node_processes(workdir) == []


@pytest.mark.parametrize(("text", "error"), [
    # (scenario file, the one line it gives)
    ('{"duration_s": 10, "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}, '
     '"nodes": []}', "nodes: has 0 nodes; 1 to 17 are allowed"),
    ('{"duration_s": 10, "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}, '
     '"nodes": [{"id": "a", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000, '
     '"priority": 0, "mode": "continuous"}], "group": {"peer_timeout_ms": 100}}',
     "group.peer_timeout_ms: 100 is below 1500, three times heartbeat_ms 500"),
    ('{"duration_s": 10, "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}, '
     '"nodes": [{"id": "a", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000, '
     '"priority": 0, "mode": "continuous"}], "group": {"hartbeat_ms": 500}}',
     "group.hartbeat_ms: is not a known field"),
    ('{"duration_s": 10, "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}, '
     '"nodes": [{"id": "a", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000, '
     '"priority": 0, "mode": "continuous"}], "events": [{"at_s": 2.5, "limit_ma": 5000}]}',
     "events: the limit_ma at 2.5 s makes a config the group refuses: failsafe: with every member at its "
     "failsafe current site:L1 carries 6000 mA, above its 5000 mA (limit x safety); lower failsafe.current_ma or "
     "use mode disable"),
])
def test_a_bad_scenario_is_one_line_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     text: str, error: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert cli.main(["sim", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"loadmesh sim: {path}: {error}\n"


def test_a_scenario_that_cannot_be_read_is_named_as_the_other_commands_name_a_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It was "loadmesh sim: [Errno 2] No such file or directory: 'x.yaml'", Python's words, not the one line.
    for path, problem in ((tmp_path / "missing.yaml", "No such file or directory"), (tmp_path, "Is a directory")):
        assert cli.main(["sim", str(path)]) == 2
        assert capsys.readouterr().err == f"loadmesh sim: {path}: {problem}\n"
    # Saved as UTF-16 (Notepad's "Unicode"): it was a UnicodeDecodeError traceback.
    utf16 = tmp_path / "site.yaml"
    utf16.write_text("duration_s: 10\n", encoding="utf-16")
    assert cli.main(["sim", str(utf16)]) == 2
    assert capsys.readouterr().err == (f"loadmesh sim: {utf16}: not UTF-8 text (byte 0xff at offset 0): UTF-16 "
                                       "text: save the file as UTF-8\n")


@pytest.mark.parametrize(("args", "error"), [
    # (the command line, the one line argparse ends with): refused before a node starts
    (["sim", str(EVSE3), "--duration", "-1"], 'sim: error: argument --duration: "-1" is not 0 or more seconds '
                                              "(0: until Ctrl-C)"),
    (["sim", str(EVSE3), "--duration", "soon"], 'sim: error: argument --duration: "soon" is not a number of seconds'),
    (["sim", str(EVSE3), "--duration", "1", "--sample-ms", "0"],
     'sim: error: argument --sample-ms: "0" is not 1 ms or more'),
    (["demo", "--duration", "-5"], 'demo: error: argument --duration: "-5" is not 0 or more seconds '
                                   "(0: until Ctrl-C)"),
])
def test_a_duration_or_sample_period_that_cannot_be_is_refused(capsys: pytest.CaptureFixture[str], args: list[str],
                                                               error: str) -> None:
    # Before, a negative duration started the nodes and stopped them at once, "done";
    # a sample period of 0 sampled the plant as fast as its thread could turn.
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "loadmesh " + error


def test_a_node_that_cannot_start_stops_the_run_with_its_reason(tmp_path: Path, device_root: Path) -> None:
    broken = tmp_path / "main.py"
    broken.write_text("raise ImportError('no module named loadmesh.node.runtime')\n")
    sim = Simulation(three_evses(10, []), tmp_path / "site", device_root=device_root)
    sim.main_py = broken
    try:
        with pytest.raises(SimError, match=r"^node evse1 could not start \(exit 1\): .*ImportError: no module named "
                                           r"loadmesh.node.runtime"):
            sim.start()
    finally:
        sim.close()
    assert node_processes(tmp_path) == []


def _ctrl_c_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup or in a background job


@contextlib.contextmanager
def _sim_until_stopped(workdir: Path, *options: str,
                       preexec_fn: Callable[[], None] = ctrlc.as_in_a_terminal) -> Iterator[subprocess.Popen[str]]:
    """`loadmesh sim` of the three-EVSE site with no end, its nodes in workdir; killed if a test leaves it running."""
    command = [str(Path(sys.executable).parent / "loadmesh"), "sim", str(EVSE3), "--duration", "0",
               "--workdir", str(workdir), *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=preexec_fn)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_until(process: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        if process.poll() is not None or time.monotonic() >= deadline:
            what = "exited " + str(process.returncode) if process.poll() is not None else "not ready in 30 s"
            process.kill()  # communicate() of a run with no end would wait for ever
            raise AssertionError(what + ": " + repr(process.communicate()))
        time.sleep(0.1)


def test_ctrl_c_stops_every_node(tmp_path: Path) -> None:
    out = tmp_path / "trace.jsonl"
    workdir = tmp_path / "site"
    with _sim_until_stopped(workdir, "--trace", str(out)) as process:
        _wait_until(process, lambda: out.exists() and out.stat().st_size > 2000)
        assert len(node_processes(workdir)) == 3
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "sim: interrupted:" in err
    assert node_processes(workdir) == []
    assert json.loads(out.read_text().splitlines()[-1])["node"] == "evse3"


def _table_times_s(lines: list[str]) -> list[float]:
    """The time of each live table printed so far (its latest sample's, on the run's clock)."""
    heads = (re.fullmatch(r"loadmesh sim: .*  t=(\d+\.\d) s  \(Ctrl-C stops\)\n?", line) for line in list(lines))
    return [float(head.group(1)) for head in heads if head is not None]


def test_ctrl_c_ignored_by_the_parent_stays_ignored_and_sigterm_stops_the_run(tmp_path: Path) -> None:
    workdir = tmp_path / "site"
    started_s = time.monotonic()  # before the run's clock started (the plant's origin, on the same clock)
    with _sim_until_stopped(workdir, "--live", preexec_fn=_ctrl_c_ignored) as process:
        lines: list[str] = []
        assert process.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        _wait_until(process, lambda: len(node_processes(workdir)) == 3)
        process.send_signal(signal.SIGINT)
        sent_s = time.monotonic() - started_s  # on the run's clock, the SIGINT came no later than this
        # The run goes on past two tables of samples taken after the SIGINT came: the run loop prints one at a
        # turn, and a handled SIGINT ends the loop at its next turn (sim.stop_requested). Waited for so, not for
        # a fixed time, which a run held back by a loaded machine passed without having looked at the signal.
        deadline = time.monotonic() + 30  # for failure only (the tables stopped): some 2 s on an idle machine
        while len([t_s for t_s in _table_times_s(lines) if t_s > sent_s + 0.1]) < 2:
            # Not process.communicate() (as _wait_until says): the run has no end, and the reader reads stdout.
            assert process.poll() is None and time.monotonic() < deadline, (process.poll(), sent_s, lines[-8:])
            time.sleep(0.1)
        assert process.poll() is None and len(node_processes(workdir)) == 3  # the run goes on
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=10)
        assert process.stderr is not None
        err = process.stderr.read()
    assert process.returncode == 0, err
    assert "sim: interrupted:" in err
    assert node_processes(workdir) == []


def _demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    # The demo keeps its nodes' folders in a temporary folder: TMPDIR puts it where the test can look.
    env = dict(os.environ, TMPDIR=str(tmp_path))
    return subprocess.Popen([str(Path(sys.executable).parent / "loadmesh"), "demo", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrlc.as_in_a_terminal)


def _tables(out: str) -> list[list[str]]:
    """The tables the demo printed (not on a terminal: one after another, a blank line between)."""
    return [block.splitlines() for block in out.split("\n\n") if block.startswith("loadmesh sim:")]


def test_the_demo_runs_the_three_evse_site_with_a_row_per_node_and_stops_after_its_duration(tmp_path: Path) -> None:
    process = _demo(tmp_path, "--duration", "6")
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    tables = _tables(out)
    assert tables, out
    head, columns, *rows = tables[-1]
    assert "Three EV chargers on one 32 A single-phase supply" in head
    assert columns.split() == ["node", "state", "target", "applied", "draw", "peers", "failsafe"]
    assert [row.split()[0] for row in rows] == ["evse1", "evse2", "evse3"]
    assert "over a limit: applied 0, drawn 0" in err
    assert node_processes(tmp_path) == []
    assert list(tmp_path.iterdir()) == []  # the nodes' folders are gone too


def test_ctrl_c_stops_the_demo_and_every_node(tmp_path: Path) -> None:
    process = _demo(tmp_path)
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("evse3 ") for line in lines):  # a whole table is out
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        assert len(node_processes(tmp_path)) == 3
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert process.stderr is not None
    assert "sim: interrupted:" in process.stderr.read()
    assert node_processes(tmp_path) == []
    assert _tables("".join(lines))
