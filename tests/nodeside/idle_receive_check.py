# Node side of tests/test_node_mesh.py: what the mesh's receive allocates on a tick with nothing
# queued, and that it still reads what is queued, at most max_packets per call.
#   idle_receive_check.py PORT   PORT: a free UDP port for the mesh
# Prints one JSON line: {"idle_bytes": garbage of IDLE_CALLS idle receives (null on CPython, which has no
# gc.mem_alloc), "idle_count": packets they read, "reads": what receive returned for 5 queued datagrams
# with max_packets 3, called until it reads none, "too_long": the table's count of the 600-byte one}.
import gc
import json
import socket
import sys
import time

from loadmesh.core import heartbeat
from loadmesh.core.peers import PeerTable
from loadmesh.node.mesh import Mesh

IDLE_CALLS = 10  # few enough that a collection cannot run among them on the node image's heap
MESH_PORT = int(sys.argv[1])
pads = heartbeat.prepare_key(bytes(range(32)))
table = PeerTable(pads, "home", "node", ["node"])
mesh = Mesh(MESH_PORT, "127.0.0.1", 9, bind_host="127.0.0.1", max_packets=3)  # sends go to the discard port


def idle_receives():
    """(bytes allocated, packets read) by IDLE_CALLS receives; in a function, so that no global is made."""
    count = 0
    if not hasattr(gc, "mem_alloc"):
        for _ in range(IDLE_CALLS):
            count += mesh.receive(table, 0)
        return None, count
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(IDLE_CALLS):
        count += mesh.receive(table, 0)
    return gc.mem_alloc() - before, count


idle_receives()  # the first calls set up what later calls reuse
idle_bytes, idle_count = idle_receives()

sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
target = socket.getaddrinfo("127.0.0.1", MESH_PORT)[0][-1]
for index in range(4):
    sender.sendto(b"\x00" * (10 + index), target)
sender.sendto(b"LM" + b"\x01" * 598, target)
time.sleep(0.2)  # loopback delivers at once; this is room to spare
reads = []
while True:
    count = mesh.receive(table, 0)
    reads.append(count)
    if not count:
        break
sender.close()
mesh.close()
print(json.dumps({"idle_bytes": idle_bytes, "idle_count": idle_count, "reads": reads,
                  "too_long": table.snapshot(0, 1000)["counts"].get("too_long", 0)}))
