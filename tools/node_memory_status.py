"""GET /status back to back: how often a node refuses it for want of memory, and its heap meanwhile.

    .venv/bin/python tools/node_memory_status.py [--runs 5] [--requests 200] [--heap 47wK] [--hog]

Each run starts tests/test_cli_status.py's node (its main.py on the ESP32 HAL, machine and network faked; the
node image with the given heap), asks it GET /status REQUESTS times one after another (10 ms apart, as
tests/test_node_status_pace.py does) and prints a JSON line: the codes it answered, the bodies of those not
200, and its memory figures over the run (bytes on this 64-bit host: free at least, live after a tick's
collection at most and its median, the peak before one). --hog runs a CPU-bound process at nice 19 beside it
(the CI's other lane). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadmesh.companion.runtimes import SMALL_HEAP  # noqa: E402
from tests import mpnode  # noqa: E402
from tests.test_cli_status import UP, Node, _read_all  # noqa: E402


def one_run(device_root: Path, folder: Path, requests: int) -> dict[str, object]:
    hw: dict[str, object] = {"hal": "esp32", "wifi": {"ssid": "House", "password": "correct horse battery"}}
    try:
        node = Node(device_root, folder, hw, UP, adopted=True)
    except AssertionError as exc:  # it did not answer its first /status (too small a heap to boot); killed
        return {"codes": {"no boot": 1}, "log": str(exc)[-600:]}
    codes: dict[str, int] = {}
    refused: list[str] = []
    frees: list[int] = []
    lives: list[int] = []
    last: dict[str, object] = {}
    try:
        for _ in range(requests):
            try:
                with socket.create_connection(("127.0.0.1", node.port), timeout=5) as client:
                    client.sendall(b"GET /status HTTP/1.0\r\n\r\n")
                    answer = _read_all(client)
            except OSError as exc:  # the node reset (its watchdog, after a tick's MemoryError) or closed on us
                answer = b"HTTP/1.0 " + type(exc).__name__.encode() + b"\r\n\r\n"
            if node.process.poll() is not None:
                codes["exit " + str(node.process.returncode)] = 1
                break
            code = answer[9:12].decode() if answer.startswith(b"HTTP/1.0 ") and answer[12:13] == b" " else (
                answer[9:].partition(b"\r")[0].decode() or "nothing")
            codes[code] = codes.get(code, 0) + 1
            body = answer.partition(b"\r\n\r\n")[2]
            if code == "200":
                last = json.loads(body)
                memory = last["memory"]
                assert isinstance(memory, dict)
                frees.append(memory["free"])
                lives.append(memory["live"])
            else:
                refused.append(body.decode(errors="replace"))
            time.sleep(0.01)
    finally:
        node.kill()
    memory = last.get("memory", {})
    assert isinstance(memory, dict)
    return {"codes": codes, "refused": refused[:3], "free_min": min(frees, default=None),
            "live_median": int(statistics.median(lives)) if lives else None, "live_max": memory.get("live_max"),
            "peak": memory.get("peak"), "bytes": len(json.dumps(last, separators=(",", ":"))),
            "log": node.log()[-600:] if refused or codes.get("200") != requests else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--heap", default=SMALL_HEAP, help="the node image's heap (default " + SMALL_HEAP + ")")
    parser.add_argument("--hog", action="store_true", help="a CPU-bound process at nice 19 beside the node")
    parser.add_argument("--device-root", type=Path, default=ROOT / "build" / "device")
    args = parser.parse_args()
    mpnode.SMALL_HEAP = args.heap  # mpnode.command reads it at every call
    mpnode.in_wallclock_test = True
    hog = None
    if args.hog:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=lambda: os.nice(19))
    refused_runs = 0
    try:
        for index in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="loadmesh-status-pace-") as work:
                result = one_run(args.device_root, Path(work) / "garage", args.requests)
            result["run"] = index + 1
            result["heap"] = args.heap
            refused_runs += result["codes"] != {"200": args.requests}
            print(json.dumps(result), flush=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    print(json.dumps({"heap": args.heap, "runs": args.runs, "runs_with_a_refusal": refused_runs}))


if __name__ == "__main__":
    main()
