# Node side of tests/test_node_tick_memory.py's sync test: the node's config sync loop (Node._sync_loop) on
# asyncio, each round failing, and the words for the failure out of memory. Prints how many rounds ran in 1.3 s
# (SYNC_MS apart: 2, and a third once the loop is told to end) and what /status's config.last_error said.
#   sync_memory_check.py ROOT   ROOT: the node's folder (key, config, node.json, hw.json written)
import asyncio
import json
import sys

from loadmesh.node import hal, runtime

node = runtime.Node(sys.argv[1])
rounds = [0]


async def failing_sync():
    rounds[0] += 1
    raise OSError(113)  # EHOSTUNREACH: a peer's config could not be fetched


def no_room(exc):
    raise MemoryError("memory allocation failed, allocating 96 bytes")


node.sync = failing_sync
hal.exception_words = no_room


async def main():
    task = asyncio.create_task(node._sync_loop())
    await asyncio.sleep_ms(1300)
    node.halted = True  # the loop's end, at its next round
    await asyncio.sleep_ms(600)
    return task


asyncio.run(main())
print(json.dumps({"rounds": rounds[0], "sync_error": node.sync_error}))
