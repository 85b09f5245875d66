"""The PUT body's JSON syntax check (loadmesh.node.jsontext) on an 8 KB heating.json: µs, beside json.loads of it.

    .venv/bin/python tools/bench_jsontext.py [--rounds N] [--kb K]

Runs on the staged device tree (build/device, from ./tools/setup): in-process
on CPython, as a script on the unix ports (micropython-f32 with the ESP32's
heap). A script that prints figures, never a test: timings on a shared
machine are noise.
"""

from __future__ import annotations

import argparse
import sys

from benchkit import TIMING, run_on_micropython

from loadmesh.companion.runtimes import SMALL_HEAP

# A valve node's heating.json of one-hour blocks, each day on its own, grown to the size asked for (the HTTP
# server's max_body is 8192): the text a node checks before it keeps it. The same code on every runtime.
BENCH = r'''
import json

from loadmesh.node import jsontext


def body_of(size):
    head = '{"room": {"mode": "auto", "schedule": {"default_target_dc": 170, "blocks": ['
    tail = "]}}}"
    blocks = []
    length = len(head) + len(tail)
    while True:
        start = 300 + 60 * (len(blocks) // 7) % 1080
        block = json.dumps({"days": [len(blocks) % 7], "start_min": start, "end_min": start + 60,
                            "target_dc": 205})
        if length + len(block) + 2 > size:
            return bytearray((head + ", ".join(blocks) + tail).encode())
        length += len(block) + (2 if blocks else 0)
        blocks.append(block)


def run(size, rounds):
    body = body_of(size)
    assert jsontext.first_fault(body) == ("", 0) and len(body) <= size
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    jsontext.check(body, "heating")
    allocated = (gc.mem_alloc() - before) if hasattr(gc, "mem_alloc") else "n/a"
    return {"bytes": len(body), "check_us": int(best(lambda: jsontext.check(body, "heating"), rounds)),
            "json_loads_us": int(best(lambda: json.loads(body), rounds)), "check_allocated_bytes": allocated}
'''

MICROPYTHON_MAIN = r'''
import sys
print(run(int(sys.argv[1]), int(sys.argv[2])))
'''


def _in_process(size: int, rounds: int) -> str:
    namespace: dict[str, object] = {}
    exec(TIMING + BENCH, namespace)
    run = namespace["run"]
    assert callable(run)
    return str(run(size, rounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kb", type=int, default=8)
    args = parser.parse_args()
    size = args.kb * 1024
    print(f"jsontext.check of a heating.json of at most {size} bytes, best of 5 x {args.rounds} rounds; "
          f"micropython-f32 runs with a {SMALL_HEAP} heap")
    print(f"{'cpython':>17}: {_in_process(size, args.rounds)}")
    for name in ("micropython", "micropython-f32"):
        ok, output, note = run_on_micropython(name, BENCH + MICROPYTHON_MAIN, [str(size), str(args.rounds)])
        print(f"{name:>17}: {output if ok else 'failed: ' + output} {note}".rstrip())
    return 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
