# Node side of tests/test_node_signals.py: evaluates signals functions on the unix port.
#   signals_check.py FILE   FILE holds [[function name, [args...]], ...]; prints the list of results
import json
import sys

from loadmesh.node import signals

with open(sys.argv[1]) as source:
    calls = json.load(source)
results = []
for name, args in calls:
    if name in ("crc8_dallas", "ds18b20_dc"):
        args = [bytes(args[0])]
    results.append(getattr(signals, name)(*args))
print(json.dumps(results))
