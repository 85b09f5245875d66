# Node side of tests/test_node_httpapi.py: the HTTP API on asyncio, beside a 100 ms tick, with configs
# kept in a store. Prints {"ready": port} once it listens.
#   http_node.py SETTINGS_FILE   JSON: {"port", "key_hex" (or null: unadopted), "root", "timeout_ms", "max_body",
#                                "send_buffer" (bytes, 0: the system's), "boot_id" (this boot's, which a PUT's
#                                signature names), "node" (the member id it names too), optional
#                                "accept_no_memory" (below)}
import asyncio
import gc
import json
import socket
import sys

from loadmesh.core import fieldcheck, hmac256
from loadmesh.node.httpapi import Api, HttpServer, token_for
from loadmesh.node.store import CONFIG, Store

with open(sys.argv[1]) as source:
    settings = json.load(source)
store = Store(settings["root"])
key = None if settings["key_hex"] is None else bytes.fromhex(settings["key_hex"])
ticks = [0]
pad = [""]  # the next status's padding, once: an answer too big to build
extra = [{}]  # keys every status carries beside its own (a PUT's "answer_extra")
parts = [None]  # the next status's parts ({"part0": [text], ...}), once, on a heap left in pieces
fragment = [0]  # the size of the blocks that heap is left with (bytes)
kept = [None]  # the blocks between those, until the next status
unencodable = [False]  # the next status carries bytes, which JSON cannot: a callback's bug (answered 500), once
hoarding = [False]  # the next status runs out of the heap while it is made (a real MemoryError), once
# The PUTs to come before one runs out of the heap while its head is judged (Api.put_refusal), before the server
# takes its count: 0, none.
hoard_put = [0]


class NodeApi(Api):
    def status(self):
        kept[0] = None
        if hoarding[0]:
            hoarding[0] = False
            _hoard(1 << 20)
        answer = {"ticks": ticks[0], "http": server.counts(), "putsign": "loadmesh.node.putsign" in sys.modules}
        if pad[0]:
            answer["pad"] = pad[0]  # in the heap as this text and as the answer's canonical bytes
            pad[0] = ""
        for key in extra[0]:
            answer[key] = extra[0][key]
        if parts[0] is not None:
            for key in parts[0]:
                answer[key] = parts[0][key]
            parts[0] = None
            kept[0] = _fragment(fragment[0])
        if unencodable[0]:
            answer["raw"] = b"\x00"
            unencodable[0] = False
        return answer

    def config(self):
        return store.read_json(CONFIG)

    def put_config(self, body):
        _forget_putsign()
        value = json.loads(body)  # ValueError: 400
        config = fieldcheck.obj(value, "config")
        if "hoard_kb" in config:  # a callback that runs out of the heap: a real MemoryError
            _hoard(config["hoard_kb"])
        if "status_hoard" in config:
            hoarding[0] = config.pop("status_hoard")
        if "put_hoard" in config:
            hoard_put[0] = config.pop("put_hoard")
        if "answer_kb" in config:
            pad[0] = "x" * (config.pop("answer_kb") * 1024)
        if "answer_extra" in config:
            extra[0] = config.pop("answer_extra")
        if "answer_parts" in config:  # [count, bytes each, the blocks free memory is left in]
            count, size, fragment[0] = config.pop("answer_parts")
            parts[0] = {"part" + str(index): ["x" * size] for index in range(count)}
        if "answer_bytes" in config:
            unencodable[0] = config.pop("answer_bytes")
        version = fieldcheck.int_field(config, "version", "config", 1, 1000000)
        store.write_json(CONFIG, config)
        return {"stored": version}

    def token(self):
        return None if key is None else token_for(key)

    def pads(self):
        return None if key is None else hmac256.prepare(key)

    def boot(self):
        return settings["boot_id"]

    def node_id(self):
        return settings["node"]

    def put_refused(self):
        _forget_putsign()

    def put_refusal(self):
        if hoard_put[0]:
            hoard_put[0] -= 1
            if not hoard_put[0]:
                _hoard(1 << 20)
        return ""


def _hoard(kb):
    """Take kb KB of the heap, 1 KB at a time: a real MemoryError once it has none left (it has about 80), as on
    an ESP32."""
    hoard = []
    for _ in range(kb):
        hoard.append(bytearray(1024))


def _forget_putsign():
    """Drop the module that checked the PUT's signature, as the node's runtime does after a PUT (its _OCCASIONAL)."""
    import loadmesh.node

    if sys.modules.pop("loadmesh.node.putsign", None) is not None and "putsign" in dir(loadmesh.node):
        delattr(loadmesh.node, "putsign")
    gc.collect()


def _fragment(size):
    """Fill the heap with blocks of size bytes, then let every other one go: free memory is then in blocks of
    about that size (beside what was already free in smaller ones). The blocks kept, to let go later."""
    blocks = []
    try:
        while True:
            blocks.append(bytearray(size))
    except MemoryError:
        pass
    for index in range(1, len(blocks), 2):
        blocks[index] = None
    gc.collect()
    return blocks


# "accept_no_memory": the server's first N clients find no room for their stream (a MemoryError where the accept
# loop makes it), as on a heap cut up for a moment.
accept_fails = [settings.get("accept_no_memory", 0)]
_real_stream = asyncio.StreamReader


def _stream(sock):
    if accept_fails[0]:
        accept_fails[0] -= 1
        raise MemoryError("memory allocation failed, allocating 64 bytes")
    return _real_stream(sock)


asyncio.StreamReader = _stream

server = HttpServer(NodeApi(), port=settings["port"], host="127.0.0.1", timeout_ms=settings["timeout_ms"],
                    max_body=settings["max_body"])


async def tick():
    while True:
        ticks[0] += 1
        await asyncio.sleep_ms(100)


async def main():
    await server.start()
    if settings["send_buffer"]:
        # A socket that takes less than an answer at once, as an ESP32's (a TCP send buffer of a few KB) may:
        # what it does not take waits in the stream. Connections inherit the listener's size; 7 is SO_SNDBUF
        # on Linux (the unix port has no name for it).
        server._sock.setsockopt(socket.SOL_SOCKET, 7, settings["send_buffer"])
    print(json.dumps({"ready": settings["port"]}))
    await tick()


asyncio.run(main())
