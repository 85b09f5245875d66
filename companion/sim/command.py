"""`loadmesh sim`: run a scenario on real node processes, write the trace, show the live table."""

from __future__ import annotations

import argparse
import math
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from loadmesh.core.errors import FieldError, quoted

from .. import jsonfile
from ..paths import repo_root
from . import scenario as sc
from . import trace
from .runner import SimError, Simulation

TABLE_EVERY_S = 1.0
TITLE_CHARS = 60  # the live table's head: the title, the time and the hint fit 100 columns
DEMO_SCENARIO = Path("tools") / "scenarios" / "evse3_32a.yaml"  # in the checkout
# A lowered limit holds once every node has the new config and has ticked with it: the check
# starts GRACE_MS after the event (the delivery to every node, and a tick, with room to spare).
GRACE_MS = 2000


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The sim subcommand's arguments."""
    what = "run a scenario on MicroPython node processes, a plant and a hub; write the trace"
    sim = commands.add_parser("sim", help=what, description=what)
    sim.add_argument("scenario", type=Path, help="scenario file (YAML or JSON), e.g. tools/scenarios/evse3_32a.yaml")
    sim.add_argument("--trace", type=Path, metavar="OUT", help="write the trace (JSON lines) here")
    sim.add_argument("--live", action="store_true", help="print a table of the nodes every second")
    sim.add_argument("--duration", type=_duration_s, metavar="SECONDS",
                     help="run this long instead of the scenario's duration_s (0: until Ctrl-C)")
    sim.add_argument("--workdir", type=Path, metavar="DIR", help="keep the nodes' folders (file systems, logs) here")
    sim.add_argument("--seed", type=int, default=1, metavar="N", help="the network's random seed (packet loss)")
    sim.add_argument("--sample-ms", type=_sample_ms, default=100, metavar="MS",
                     help="trace sample period (default 100)")
    sim.set_defaults(func=main)


def _duration_s(text: str) -> float:
    """--duration: seconds, 0 or more (a negative one ended the run at once, saying it was done)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not a number of seconds") from None
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not 0 or more seconds (0: until Ctrl-C)")
    return seconds


def _sample_ms(text: str) -> int:
    """--sample-ms: 1 or more (at 0 or below the plant's thread samples on every turn, as fast as it can)."""
    try:
        period_ms = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not a whole number of ms") from None
    if period_ms < 1:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not 1 ms or more")
    return period_ms


def add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The demo subcommand (./tools/run): the bundled 3-EVSE site with the live table."""
    what = "run the bundled site of 3 EVSEs on 32 A on node processes and show a live table of the nodes until Ctrl-C"
    demo = commands.add_parser("demo", help=what, description=what)
    demo.add_argument("--duration", type=_duration_s, default=0.0, metavar="SECONDS",
                      help="stop after this long (default 0: until Ctrl-C)")
    demo.add_argument("--trace", type=Path, metavar="OUT", help="write the trace (JSON lines) here as well")
    demo.set_defaults(func=demo_main)


def demo_main(args: argparse.Namespace) -> int:
    """`loadmesh demo`: `loadmesh sim` of DEMO_SCENARIO with the live table."""
    sim_args = argparse.Namespace(scenario=repo_root() / DEMO_SCENARIO, trace=args.trace, live=True,
                                  duration=args.duration, workdir=None, seed=1, sample_ms=100)
    return main(sim_args)


def main(args: argparse.Namespace) -> int:
    """Run the simulation; 0 when it ran to its end (or Ctrl-C), 1 if it could not, 2 for a bad scenario."""
    try:
        scenario = sc.load(args.scenario)
    except FieldError as exc:
        print(f"loadmesh sim: {args.scenario}: {exc}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as exc:  # unreadable, or not UTF-8 (saved as UTF-16, say)
        print(f"loadmesh sim: {args.scenario}: {jsonfile.why(exc)}", file=sys.stderr)
        return 2
    duration_ms = None if args.duration is None else round(args.duration * 1000)
    temporary = None
    workdir = args.workdir
    if workdir is None:
        temporary = tempfile.mkdtemp(prefix="loadmesh-sim-")
        workdir = Path(temporary)
    writer = trace.TraceWriter(args.trace) if args.trace is not None else None
    try:
        sim = Simulation(scenario, workdir, trace=writer, sample_ms=args.sample_ms, seed=args.seed,
                         progress=_progress, keep_records=True)
    except FieldError as exc:  # the group config refuses the `group` section or a limit event
        print(f"loadmesh sim: {args.scenario}: {exc}", file=sys.stderr)
        if writer is not None:
            writer.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        return 2
    live = LiveTable(sys.stdout) if args.live else None
    interrupted = False
    phase = "starting"

    def interrupt(_signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        if phase == "starting":
            raise KeyboardInterrupt  # stop where it is; close() takes down what started
        # Running: the run loop ends at its next turn (an exception raised in the
        # middle of its work could leave a lock held that close() then waits on).
        # Closing: it is stopping already.
        sim.stop_requested = True

    # Ctrl-C and SIGTERM stop the run; a SIGINT ignored by whoever started us
    # (a background job, nohup) stays ignored.
    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        handled.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, interrupt) for signum in handled}
    try:
        sim.start()
        phase = "running"
        sim.run(duration_ms, on_tick=live.update if live is not None else None)
    except SimError as exc:
        print(f"loadmesh sim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        interrupted = True
    finally:
        phase = "closing"
        sim.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    _summary(sim, interrupted)
    return 0


def _progress(line: str) -> None:
    print(f"sim: {line}", file=sys.stderr, flush=True)


def _summary(sim: Simulation, interrupted: bool) -> None:
    records = sim.records
    # A lowered limit's grace counts from when the run played it: a loaded machine can hold the run back.
    scenario = sim.scenario_as_played()
    applied = trace.violations(records, scenario, grace_ms=GRACE_MS)
    # The cars follow a lowered pilot within their lag: the drawn check waits that long too.
    lag_ms = sim.config["ev_lag_ms"]
    assert isinstance(lag_ms, int)
    drawn = trace.violations(records, scenario, field="draw_ma", grace_ms=GRACE_MS + lag_ms)
    resets = {node.id: node.resets for node in sim.nodes.values() if node.resets}
    ended = "interrupted" if interrupted else "done"
    samples = len({record["t_ms"] for record in records})
    _progress(f"{ended}: {samples} samples; over a limit: applied {trace.samples_over(applied)}, "
              f"drawn {trace.samples_over(drawn)}"
              + (f"; watchdog resets {resets}" if resets else ""))


def title(about: str, width: int = TITLE_CHARS) -> str:
    """The scenario's first sentence for the live table's head, cut at a word (with …) when longer than width."""
    first = about.split(". ")[0].strip().rstrip(".")
    if len(first) <= width:
        return first
    cut = first[:width - 1]
    if " " in cut:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


class LiveTable:
    """The demo's table, redrawn in place on a terminal, printed every second otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.shown_s = 0.0

    def update(self, sim: Simulation) -> None:
        """Show the latest sample if a second has passed."""
        now_s = time.monotonic()
        if now_s - self.shown_s < TABLE_EVERY_S:
            return
        latest = sim.snapshot()
        if not latest:
            return
        self.shown_s = now_s
        t_ms = next(iter(latest.values()))["t_ms"]
        assert isinstance(t_ms, int)
        rows = trace.table(latest)
        head = f"loadmesh sim: {title(sim.scenario.about)}  t={t_ms / 1000:.1f} s  (Ctrl-C stops)"
        text = "\n".join([head, *rows])
        if self.tty:
            self.out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            self.out.write(text + "\n\n")
        self.out.flush()
