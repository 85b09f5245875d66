# Node side of tests/test_node_memory.py: whether a node on the ESP32 HAL (machine and network faked) keeps the
# wiring check in its heap after its boot: hwconfig, and fieldcheck, which hwconfig holds. Run in the node's
# folder (its hw.json names the ESP32 HAL).
import json
import sys

import let_go

from loadmesh.node import runtime

WIRING = ("loadmesh.node.hwconfig", "loadmesh.core.fieldcheck")


def main():
    node = runtime.Node("")
    print(json.dumps({"hal": type(node.hal).__name__, "hw_error": node.hw_error or None,
                      "kept": [name for name in WIRING if name in sys.modules], "let_go_held": let_go.held(WIRING)}))


main()
