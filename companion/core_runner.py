# Runs the core's contract entries on MicroPython or CPython, from a staged tree.
#
#   core_runner.py ENTRY FILE   answer one request read from FILE, then exit
#   core_runner.py              answer JSON lines {"entry": ..., "input": ...}
#                               from stdin, one canonical line each on stdout
#
# It is host tooling, not device code: the device tree never contains it.
# Keep it to what MicroPython has (no pathlib, no argparse).
import gc
import json
import sys

from loadmesh.core import canon, entry


def _answer(name: str, request: object) -> str:
    gc.collect()  # each request starts from a collected heap, as on a device between ticks
    try:
        return entry.respond(name, request)
    except Exception as exc:  # a crash is a finding: report it, keep serving
        return canon.dumps({"crash": type(exc).__name__ + ": " + str(exc)})


def _write(line: str) -> None:
    sys.stdout.write(line)  # not line + "\n": a long answer must not be copied
    sys.stdout.write("\n")
    flush = getattr(sys.stdout, "flush", None)
    if flush is not None:
        flush()


def _skip_rest_of_line() -> None:
    # A line too long for the heap: drop what is left of it, a little at a time,
    # so that the next request starts on a line of its own.
    while True:
        char = sys.stdin.read(1)
        if not char or char == "\n":
            return


def main() -> None:
    if len(sys.argv) >= 3:
        with open(sys.argv[2]) as source:
            text = source.read()
        try:
            request = json.loads(text)
        except ValueError:
            _write(canon.dumps({"error": sys.argv[2] + ": not valid JSON"}))
            return
        # On a 12K-word heap the text of a few dozen loads and its parsed
        # request do not fit beside the answer: drop the text first.
        del text
        gc.collect()
        _write(_answer(sys.argv[1], request))
        return
    while True:
        gc.collect()
        try:
            line = sys.stdin.readline()
        except MemoryError:
            _skip_rest_of_line()
            _write(canon.dumps({"crash": "MemoryError: reading the request"}))
            continue
        if not line:
            return
        try:
            message = json.loads(line)
            name = message["entry"]
            request = message["input"]
        except MemoryError:
            line = message = None
            _write(canon.dumps({"crash": "MemoryError: reading the request"}))
            continue
        except Exception:
            _write(canon.dumps({"crash": "runner: malformed request line"}))
            continue
        line = message = None  # only the request itself stays referenced while it runs
        _write(_answer(name, request))


main()
