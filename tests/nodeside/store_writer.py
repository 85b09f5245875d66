# Node side of tests/test_node_store_kill.py: a boot's writes over and over, as fast as the store goes, until the
# process is killed: the boot counter raised (Store.next_boot_id), then config.json rewritten with that boot id and
# a pad whose length follows from it (so that a read can tell a whole file from part of one). Prints {"ready": id}
# after the first round, then nothing.
#   store_writer.py ROOT
import json
import sys

from loadmesh.node.store import Store

store = Store(sys.argv[1])
ready = False
while True:
    boot_id = store.next_boot_id()
    store.write_json("config.json", {"boot_id": boot_id, "pad": "x" * (boot_id * 37 % 3000)})
    if not ready:
        print(json.dumps({"ready": boot_id}))
        ready = True
