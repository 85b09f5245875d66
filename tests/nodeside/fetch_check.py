# Node side of tests/test_node_groupsync.py: groupsync.fetch (under the runtime's 3 s timeout) against
# whatever answers at a peer's address, beside a 100 ms tick that collects and then allocates what a
# node's tick does, with a node's live set held. Prints one line per fetch, then the tick's count.
#   fetch_check.py SETTINGS_FILE   JSON: {"port", "fetches", "live_kb"}
import asyncio
import gc
import json
import sys

from loadmesh.node import groupsync

with open(sys.argv[1]) as source:
    settings = json.load(source)
ticks = {"count": 0, "error": None}


async def tick():
    try:
        while True:
            gc.collect()
            # A tick's garbage between live and peak (docs/firmware.md), in blocks no larger than its own.
            peak = [bytearray(256) for _ in range(64)]
            peak = None  # noqa: F841
            ticks["count"] += 1
            await asyncio.sleep_ms(100)
    except MemoryError as exc:
        ticks["error"] = repr(exc)


async def fetches():
    for index in range(settings["fetches"]):
        try:
            body = await asyncio.wait_for(groupsync.fetch("127.0.0.1", settings["port"], "0" * 64), 3)
            result = {"fetch": index, "bytes": len(body), "head": body[:8].decode()}
        except Exception as exc:  # what the runtime's _fetch catches
            result = {"fetch": index, "error": type(exc).__name__, "message": str(exc)}
        result["ticks"] = ticks["count"]
        print(json.dumps(result))


async def main():
    ticker = asyncio.create_task(tick())
    await fetches()
    await asyncio.sleep_ms(300)
    print(json.dumps({"ticks": ticks["count"], "tick_error": ticks["error"]}))
    ticker.cancel()


def live(kb):
    return [bytearray(1024) for _ in range(kb)]


held = live(settings["live_kb"])
asyncio.run(main())
