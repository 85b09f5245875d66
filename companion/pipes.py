"""A command whose reader goes away (`loadmesh tiers FILE | head`, `tools/house_sensitivity.py --list | head`)
ends quietly."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def quiet_when_unread(main: Callable[[], int]) -> int:
    """main()'s exit code; 1 without a traceback when stdout's reader stopped reading.

    The rest is not wanted, and is no error worth a traceback. Stdout is
    flushed here, where the failure is caught, not at the interpreter's exit;
    after one, stdout goes to /dev/null so that the exit's own flush fails no
    more (as Python's documentation of SIGPIPE advises).
    """
    try:
        try:
            return main()
        finally:  # after a SystemExit too: argparse's --help prints, then exits
            sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
