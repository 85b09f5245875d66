# Node side of tests/test_node_sntp.py: what the SNTP client's poll and a name's lookup allocate while
# their answer is awaited and nothing has come, and that what then comes is still read.
#   idle_clock_check.py PORT   PORT: a free UDP port on 127.0.0.1 for the silent servers (NTP and DNS)
# Prints one JSON line: {"sntp_bytes", "lookup_bytes": garbage of IDLE_POLLS polls with nothing queued
# (null on CPython, which has no gc.mem_alloc), "sntp_waiting", "lookup": the lookup's poll() after them,
# "synced": the client's utc() once its server answers}.
import gc
import json
import socket
import struct
import sys

from loadmesh.node import localtime, resolver, sntp

IDLE_POLLS = 10  # few enough that a collection cannot run among them on the node image's heap
PORT = int(sys.argv[1])
UNIX_S = 1774745940  # 2026-03-29 00:59:00 UTC
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(socket.getaddrinfo("127.0.0.1", PORT)[0][-1])  # reads what is sent to it, answers when told
clock = sntp.SntpClock(["127.0.0.1"], localtime.parse("UTC0", "tz"), PORT)
lookup = resolver.HostLookup("pool.example", PORT)


def idle(poll):
    """Bytes allocated by IDLE_POLLS polls at 1..IDLE_POLLS ms; in a function, so that no global is made."""
    if not hasattr(gc, "mem_alloc"):
        for now_ms in range(1, IDLE_POLLS + 1):
            poll(now_ms)
        return None
    gc.collect()
    before = gc.mem_alloc()
    for now_ms in range(1, IDLE_POLLS + 1):
        poll(now_ms)
    return gc.mem_alloc() - before


clock.poll(0)  # sends the request
request, address = server.recvfrom(512)
idle(clock.poll)  # the first polls set up what later polls reuse
sntp_bytes = idle(clock.poll)
sntp_waiting = clock.status(20)["waiting"]

assert lookup.ask("127.0.0.1", 0)
query, _ = server.recvfrom(512)
idle(lookup.poll)
lookup_bytes = idle(lookup.poll)
lookup_state = lookup.poll(20)
lookup.close()

answer = bytearray(48)
answer[0] = 0x24  # LI 0, VN 4, mode 4
answer[1] = 2
answer[24:32] = request[40:48]
struct.pack_into(">II", answer, 40, UNIX_S + 2208988800, 0)
server.sendto(bytes(answer), address)
clock.poll(100)
synced = clock.utc(100)
clock.close()
server.close()
print(json.dumps({"sntp_bytes": sntp_bytes, "lookup_bytes": lookup_bytes, "sntp_waiting": sntp_waiting,
                  "lookup": lookup_state, "synced": None if synced is None else list(synced)}))
