# Node side of tests/test_node_memory.py: where the node's modules come from (frozen: a relative path).
import json

import loadmesh.core.peers
import loadmesh.node.clock

print(json.dumps({"clock": loadmesh.node.clock.__file__, "peers": loadmesh.core.peers.__file__}))
