# Node side of tests/test_node_memory.py: which heating modules a valve or boiler node keeps in its heap
# (Role.occasional), after its boot and after a PUT /heating, and whether a kept module still holds one the node
# let go (then it is out of sys.modules but not out of the heap). Run in the node's folder (no hw.json: the "none"
# HAL). heating_modules_check.py BODY_FILE   (the heating.json to PUT)
import json
import sys

import let_go

from loadmesh.node import runtime

# jsontext (the PUT body's syntax check) is among them: a PUT must let it go too.
HEATING = ("loadmesh.core.boiler", "loadmesh.core.radiator", "loadmesh.core.roomctl", "loadmesh.core.schedule",
           "loadmesh.core.tiers", "loadmesh.core.valves", "loadmesh.node.heatsettings", "loadmesh.node.jsontext",
           "loadmesh.node.store")


def held():
    return [name for name in HEATING if name in sys.modules]


def held_let_go(node):
    """Module-level names of kept modules that hold a module the node let go (runtime's and its role's occasional)."""
    return let_go.held(runtime._OCCASIONAL + node.role.occasional)


def main():
    node = runtime.Node("")
    booted = held()
    booted_let_go = held_let_go(node)
    with open(sys.argv[1], "rb") as source:
        body = source.read()
    answer = node.role_settings("heating", body)
    print(json.dumps({"mode": node.mode, "kind": node.role.kind, "error": node.role.error or None,
                      "booted": booted, "saved": answer.get("saved"), "after_put": held(),
                      "let_go_held": booted_let_go + held_let_go(node)}))


main()
