"""Print what a node's modules and a full peer table cost in heap, frozen and from .mpy, and a node's heap over a run.

    .venv/bin/python tools/node_memory.py [--seconds 60]

The run is the single-precision node image with the ESP32's 12K-word heap
(-X heapsize=48wK), 16 peers sending heartbeats every 500 ms over loopback,
its own heartbeat, the HTTP API, and an allocation over everyone at every
100 ms tick (node_memory_mp.py). Figures are bytes on this 64-bit host,
where objects take about twice what they take on a 32-bit ESP32 and the
"w" heap size is scaled to match: compare them with the heap size printed,
not with 48 KB. Not a test: run it by hand (--seconds 600 is the issue's
ten-minute run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from loadmesh.companion import nodeimage
from loadmesh.companion.paths import device_tree, micropython_binary, repo_root
from loadmesh.companion.runtimes import SMALL_HEAP
from loadmesh.core import heartbeat

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "node_memory_mp.py"
KEY = bytes(range(32))
GROUP = "home"
PEERS = [f"peer{index:02d}" for index in range(16)]


def peer_heartbeat(node: str, seq: int, applied_ma: int) -> bytes:
    """A genuine heartbeat of one of the 16 peers."""
    return heartbeat.encode(heartbeat.prepare_key(KEY), {
        "group": GROUP, "node": node, "boot_id": 1, "seq": seq, "circuit": "site", "phases": "L123",
        "mode": "continuous", "priority": 0, "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
        "target_ma": applied_ma, "applied_ma": applied_ma, "draw_ma": [applied_ma] * 3, "config_version": 1,
        "config_hash": "0123456789abcdef", "digest": "0011223344556677", "demand": True, "active": True,
        "failsafe": False, "meter": None, "heating": None})


def send_peers(port: int, stop: threading.Event, heartbeat_ms: int = 500) -> None:
    """Every peer's heartbeat every heartbeat_ms, to the node on port, until stop."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        seq = 0
        while not stop.is_set():
            seq += 1
            for index, node in enumerate(PEERS):
                sender.sendto(peer_heartbeat(node, seq, 6000 + 100 * (seq % 10) + index), ("127.0.0.1", port))
            stop.wait(heartbeat_ms / 1000)


def free_port(kind: int) -> int:
    import socket

    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(binary: Path, micropypath: str, seconds: int, heap: str | None,
        report_ms: int = 1000) -> list[dict[str, object]]:
    """Run the node script; its JSON lines."""
    import socket

    settings = {"port": free_port(socket.SOCK_DGRAM), "http_port": free_port(socket.SOCK_STREAM),
                "key_hex": KEY.hex(), "group": GROUP, "peers": PEERS, "seconds": seconds, "report_ms": report_ms}
    # A file, not an argument: the unix port crashes on an argument of 256 characters or more.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(settings, out)
    command = [str(binary), *(["-X", "heapsize=" + heap] if heap else []), str(SCRIPT), out.name]
    env = dict(os.environ, MICROPYPATH=micropypath)
    stop = threading.Event()
    sender = threading.Thread(target=send_peers, args=(settings["port"], stop), daemon=True)
    sender.start()
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60)
    finally:
        stop.set()
        sender.join()
        os.unlink(out.name)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0:
        lines.append({"crash": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "?"})
    return lines


def _imports(lines: list[dict[str, object]]) -> dict[str, object]:
    return next(line for line in lines if "imports" in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the node run (default 60)")
    args = parser.parse_args()
    root = repo_root()
    staged = device_tree(root)
    image = nodeimage.node_binary(staged, root)
    f32 = micropython_binary(single_precision=True)
    mpy_path = ".frozen:" + str(staged / "mpy" / "lib")

    frozen = _imports(run(image, ".frozen", 1, SMALL_HEAP))
    from_mpy = _imports(run(f32, mpy_path, 1, "4M"))
    small_mpy = _imports(run(f32, mpy_path, 1, SMALL_HEAP))
    print(f"heap after importing a node's modules (bytes on this host; {SMALL_HEAP} heap = "
          f"{frozen['heap']} bytes here)")
    print(f"{'module':<28} {'frozen':>8} {'.mpy':>8}")
    mpy_costs = dict(from_mpy["imports"])  # type: ignore[call-overload]
    for name, cost in frozen["imports"]:  # type: ignore[attr-defined]
        print(f"{name:<28} {cost:>8} {mpy_costs.get(name, '-'):>8}")
    print(f"{'total':<28} {frozen['total']:>8} {from_mpy['total']:>8}")
    if "memory_error" in small_mpy:
        print(f"from .mpy with the {SMALL_HEAP} heap: MemoryError importing {small_mpy['memory_error']}")

    print(f"\nnode image, {SMALL_HEAP} heap, 16 peers, {args.seconds} s:")
    lines = run(image, ".frozen", args.seconds, SMALL_HEAP, report_ms=5000)
    table = next(line for line in lines if "table" in line)["table"]
    print(f"a full peer table ({table['peers']} peers): {table['bytes']} bytes")  # type: ignore[index]
    reports = [line for line in lines if "t_ms" in line]
    done = next((line["done"] for line in lines if "done" in line), None)
    if done is None:
        print("the node did not finish:", lines[-1])
        return 1
    steady = [r["steady"] for r in reports if r["online"] == len(PEERS)]
    print(f"ticks {done['ticks']}, allocations {done['allocations']}, MemoryErrors {done['errors']}")  # type: ignore[index]
    print(f"live after each tick's collection: at most {done['live_max']} bytes of {frozen['heap']}")  # type: ignore[index]
    if steady:
        print(f"  with all 16 peers heard: {min(steady)}..{max(steady)} bytes")  # type: ignore[type-var]
    print(f"peak gc.mem_alloc() before a tick's collection: {done['peak']} bytes")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
