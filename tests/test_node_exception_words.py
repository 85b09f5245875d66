"""An exception in a node's words (hal.exception_words): its kind and message as a traceback ends, the same on
CPython and both unix ports; never repr(), which reads as code and differs between them ("OSError(113,)")."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import mpnode


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_an_exception_is_said_as_its_kind_and_message_on_every_runtime(interpreter: str, device_root: Path) -> None:
    out = mpnode.run_on(interpreter, "exception_words_check.py", device_root=device_root)
    assert out[:3] == ["MemoryError", "ValueError: no 200 answer: 'HTTP/1.0 404'", "OSError 113"]
    # The message of a built-in error is the interpreter's own; its kind comes first on each.
    assert isinstance(out[3], str) and out[3].startswith("IndexError: "), out
