"""A longer run of the mesh state machine (tests/test_controller_mesh.py): counts and the worst convergence.

    .venv/bin/python tools/soak_controller.py [--runs 20] [--compiled] [--members] [--seed N]

Runs the same hypothesis state machine as ./tools/test, with --runs times its
examples, on the pure core (or the compiled one), and prints what it ran:
scenarios, rule steps, controller ticks, simulated time, convergences and the
worst convergence time seen; with --members, the machine with configs that
remove and add members (tests/test_controller_mesh_members.py), and what
those did. Exits non-zero on the first violation, with the
failing sequence as hypothesis reports it (LOADMESH_NOSHRINK=1 skips shrinking).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="times the examples ./tools/test runs")
    parser.add_argument("--compiled", action="store_true", help="the Cython-compiled core instead of the pure one")
    parser.add_argument("--members", action="store_true", help="the machine with member changes")
    parser.add_argument("--seed", type=int, help="hypothesis seed")
    args = parser.parse_args()
    env = dict(os.environ, LOADMESH_SOAK=str(args.runs))
    core = "compiled" if args.compiled else "pure"
    if args.members:
        tests, select = "tests/test_controller_mesh_members.py", "never_exceeds and " + core
    else:
        tests, select = "tests/test_controller_mesh.py", core
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", tests, "-k", select]
    if args.seed is not None:
        command.append(f"--hypothesis-seed={args.seed}")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        told = line.startswith(("mesh stateful test:", "mesh members test:"))
        if told or "Violation" in line or "not converged" in line:
            print(line)
    if done.returncode != 0:
        print(done.stdout[-6000:])
    return done.returncode


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
