# For the node-side module checks (esp32_modules_check.py, heating_modules_check.py): which modules a node let go
# are still held by a module it keeps.
import sys


def held(let_go):
    """Module-level names of kept modules that hold one of let_go (module names) that is out of sys.modules: let go
    by the node, and still in the heap."""
    found = []
    for module in list(sys.modules.values()):
        for name in dir(module):
            value = getattr(module, name, None)
            if type(value) is type(sys) and value.__name__ in let_go and value.__name__ not in sys.modules:
                found.append(module.__name__ + "." + name)
    return sorted(found)
