"""What the benchmark and fuzz scripts under tools/ share: the core on each runtime, timing, mutation.

Not part of ./tools/test: these scripts print figures, and timings on a
shared machine are noise.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.heartbeats and friends, for the fuzzers

from loadmesh.companion.paths import device_tree  # noqa: E402
from loadmesh.companion.runtimes import (  # noqa: E402
    MicroPythonRuntime,
    load_compiled_core,
    load_pure_core,
    open_runtime,
)

# Timing that runs unchanged in-process on CPython and as a script on
# MicroPython (ticks_us is MicroPython's, perf_counter CPython's). Benchmarks
# prepend it to their own code.
TIMING = r'''
import gc
try:
    from time import ticks_us, ticks_diff
except ImportError:
    from time import perf_counter
    def ticks_us():
        return int(perf_counter() * 1000000)
    def ticks_diff(a, b):
        return a - b


def best(action, rounds):
    # The fastest of five runs: on a shared machine the rest is someone else's time.
    fastest = None
    for _ in range(5):
        start = ticks_us()
        for _ in range(rounds):
            action()
        spent = ticks_diff(ticks_us(), start)
        fastest = spent if fastest is None or spent < fastest else fastest
    return fastest / rounds
'''


def cpython_core(name: str, modules: tuple[str, ...] = ()) -> ModuleType:
    """loadmesh.core as cpython-pure (the staged .py files) or cpython-compiled, with modules imported."""
    if name == "cpython-pure":
        package = load_pure_core(device_tree() / "py" / "lib" / "loadmesh" / "core")
    elif name == "cpython-compiled":
        package = load_compiled_core(None)
    else:
        raise ValueError(f"not a CPython runtime: {name}")
    for module in modules:
        __import__(package.__name__ + "." + module)
    return package


def run_in_process(name: str, code: str, function: str, *args: object) -> object:
    """Execute code (TIMING prepended) and call its function(core, *args) on the CPython runtime name."""
    namespace: dict[str, object] = {}
    exec(TIMING + code, namespace)
    call = namespace[function]
    assert callable(call)
    return call(cpython_core(name), *args)


def run_on_micropython(name: str, code: str, args: list[str],
                       larger_heap: str | None = None) -> tuple[bool, str, str]:
    """Run code (TIMING prepended) as a script on the MicroPython runtime name.

    Returns (ok, its output or its last error line, a note). With larger_heap,
    a run that fails in the runtime's own heap is tried again in that one, and
    the note says so.
    """
    runtime = open_runtime(name, device_tree())
    assert isinstance(runtime, MicroPythonRuntime)
    heaps: list[str | None] = [runtime.heap] if runtime.heap else [None]
    if runtime.heap and larger_heap:
        heaps.append(larger_heap)
    failure = "failed"
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bench.py"
        script.write_text(TIMING + code)
        for heap in heaps:
            flags = ["-X", "heapsize=" + heap] if heap else []
            done = subprocess.run([str(runtime.binary), *flags, str(script), *args], capture_output=True,
                                  text=True, env=runtime.environment())
            if done.returncode == 0:
                note = "" if heap == runtime.heap else f"heap {heap}: does not fit in {runtime.heap} ({failure})"
                return True, done.stdout.strip(), note
            lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
            failure = lines[-1] if lines else "failed"
    return False, failure, ""


def mutate(data: bytes, rng: random.Random, seeds: list[bytes] | None = None) -> bytes:
    """One to four random edits of data: bit flips, byte changes, cuts, extensions, splices, runs of edge bytes."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(6)
        if action == 0 and buffer:
            bit = rng.randrange(len(buffer) * 8)
            buffer[bit // 8] ^= 1 << (bit % 8)
        elif action == 1 and buffer:
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
        elif action == 2 and buffer:
            del buffer[rng.randrange(len(buffer)):]
        elif action == 3:
            buffer += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        elif action == 4 and seeds:
            other = rng.choice(seeds)
            cut = rng.randrange(len(other))
            buffer = buffer[:cut] + bytearray(other[cut:])
        else:
            # Printable characters or edge bytes, inserted: what a text parser and a length field trip on.
            position = rng.randrange(len(buffer) + 1)
            if rng.randrange(2):
                inserted = bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 8)))
            else:
                inserted = bytes([rng.choice((0, 1, 2, 0x7F, 0x80, 0xFF))] * rng.randint(1, 4))
            buffer[position:position] = inserted
    return bytes(buffer)
