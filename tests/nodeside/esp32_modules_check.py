# Node side of tests/test_node_memory.py: whether a node on the ESP32 HAL (machine and network faked) keeps the
# wiring check in its heap after its boot: hwconfig, and fieldcheck, which hwconfig holds. Run in the node's
# folder (its hw.json names the ESP32 HAL).
import json
import sys

from loadmesh.node import runtime

WIRING = ("loadmesh.node.hwconfig", "loadmesh.core.fieldcheck")


def held_let_go():
    """Module-level names of kept modules that hold one of WIRING the node let go (out of sys.modules, not out of
    the heap)."""
    found = []
    for module in list(sys.modules.values()):
        for name in dir(module):
            value = getattr(module, name, None)
            if type(value) is type(sys) and value.__name__ in WIRING and value.__name__ not in sys.modules:
                found.append(module.__name__ + "." + name)
    return sorted(found)


def main():
    node = runtime.Node("")
    print(json.dumps({"hal": type(node.hal).__name__, "hw_error": node.hw_error or None,
                      "kept": [name for name in WIRING if name in sys.modules], "let_go_held": held_let_go()}))


main()
