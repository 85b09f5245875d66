"""Ctrl-C for a test's child process as a terminal's foreground job has it, however pytest was started."""

import signal


def as_in_a_terminal() -> None:
    """A Popen preexec_fn: SIGINT to its default in the child.

    A background job of a non-interactive shell (`./tools/test &`, nohup) starts with SIGINT ignored, and
    children inherit that: Python then installs no KeyboardInterrupt handler, and a test's Ctrl-C to the child
    would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
