# Node side of tests/test_node_store.py: runs store operations in a folder and prints each result.
#   store_check.py ROOT OPS_FILE   JSON: [["op", arg...], ...]; ops: boot, last, floor N, read NAME, write NAME TEXT,
#   read_json NAME, write_json NAME VALUE, read_key, write_key HEX, clean, remove NAME
import json
import sys

from loadmesh.node.store import Store

store = Store(sys.argv[1])
results = []
with open(sys.argv[2]) as source:
    ops = json.load(source)
for op in ops:
    name = op[0]
    if name == "boot":
        result = {"boot_id": store.next_boot_id(), "boot_state": store.boot_state}
    elif name == "last":
        result = {"last": store.last_boot_id(), "boot_state": store.boot_state}
    elif name == "floor":
        store.raise_boot_floor(op[1])
        result = {"boot_state": store.boot_state}
    elif name == "read":
        payload = store.read(op[1])
        result = {"text": None if payload is None else payload.decode(), "state": store.state[op[1]]}
    elif name == "write":
        store.write(op[1], op[2].encode())
        result = {}
    elif name == "read_json":
        result = {"value": store.read_json(op[1]), "state": store.state[op[1]]}
    elif name == "write_json":
        store.write_json(op[1], op[2])
        result = {}
    elif name == "read_key":
        key = store.read_key()
        result = {"key": None if key is None else key.hex(), "state": store.state["key"]}
    elif name == "write_key":
        try:
            store.write_key(bytes.fromhex(op[1]))
            result = {}
        except ValueError as exc:
            result = {"error": str(exc)}
    elif name == "clean":
        result = {"removed": store.clean()}
    elif name == "remove":
        store.remove(op[1])
        result = {}
    else:
        raise ValueError("unknown op " + name)
    results.append(result)
print(json.dumps(results))
