"""Heartbeat codec figures on each runtime: µs per encode, decode, rejected forgery; heap of 16 peers.

    .venv/bin/python tools/bench_heartbeat.py [--rounds N]

Runs on the staged device tree (build/device, from ./tools/setup). A script
that prints figures, never a test: timings on a shared machine are noise.
"""

from __future__ import annotations

import argparse
import sys

from benchkit import run_in_process, run_on_micropython

from loadmesh.companion.runtimes import SMALL_HEAP

# The same code runs in-process on CPython and as a script on MicroPython
# (benchkit.TIMING gives both best()).
BENCH = r'''
import gc


def run(core, rounds):
    heartbeat = core.heartbeat
    pads = heartbeat.prepare_key(b"0123456789abcdef0123456789abcdef")
    message = {"group": "house", "node": "evse-1", "boot_id": 7, "seq": 42, "circuit": "garage",
               "phases": "L123", "mode": "continuous", "priority": 1, "min_ma": 6000, "max_ma": 32000,
               "step_ma": 1000, "demand": True, "active": True, "failsafe": False,
               "draw_ma": [15800, 15900, 15700], "target_ma": 16000, "applied_ma": 16000,
               "config_version": 3, "config_hash": "a1b2c3d4e5f60718", "digest": "00ff" * 8,
               "meter": None, "heating": None}
    buffer = heartbeat.new_buffer()
    size = heartbeat.encode_into(buffer, pads, message)
    data = bytes(buffer[:size])
    forged = data[:-1] + bytes([data[-1] ^ 1])
    view = memoryview(data)
    results = {"bytes": size}
    results["encode_us"] = int(best(lambda: heartbeat.encode_into(buffer, pads, message), rounds))
    results["decode_us"] = int(best(lambda: heartbeat.decode(pads, "house", view), rounds))
    results["forged_us"] = int(best(lambda: heartbeat.decode(pads, "house", forged), rounds))
    # A full table: 16 peers, each heard once; what it holds once garbage is gone.
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    table = core.peers.PeerTable(pads, "house", "evse-0")
    packets = []
    for index in range(16):
        message["node"] = "evse-" + str(index + 1)
        packets.append(heartbeat.encode(pads, message))
    for packet in packets:
        table.receive(packet, 0)
    packets = None
    gc.collect()
    results["table_16_bytes"] = (gc.mem_alloc() - before) if hasattr(gc, "mem_alloc") else "n/a"
    return results
'''

MICROPYTHON_MAIN = r'''
import sys
import loadmesh.core.heartbeat
import loadmesh.core.peers
import loadmesh.core as core
print(run(core, int(sys.argv[1])))
'''


def _in_process(name: str, rounds: int) -> str:
    return str(run_in_process(name, BENCH, "run", rounds))


def _micropython(name: str, rounds: int) -> str:
    ok, output, _ = run_on_micropython(name, BENCH + MICROPYTHON_MAIN, [str(rounds)])
    return output if ok else "failed: " + output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(f"heartbeat codec, {args.rounds} rounds; micropython-f32 runs with a {SMALL_HEAP} heap")
    for name in ("cpython-pure", "cpython-compiled"):
        print(f"{name:>17}: {_in_process(name, args.rounds)}")
    for name in ("micropython", "micropython-f32"):
        print(f"{name:>17}: {_micropython(name, args.rounds)}")
    return 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
