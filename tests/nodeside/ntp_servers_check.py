# Node side of tests/test_node_resolver.py: hw.json's NTP servers checked, and what a clock imports for them.
#   ntp_servers_check.py FILE   FILE holds a list of server entries; prints {"errors": [null or the error of
#                               each as the only server], "resolver_imported": [after a clock without names,
#                               after one with a name]}. Runs on the unix port and on CPython.
import json
import sys

from loadmesh.node import hwconfig, localtime, sntp

with open(sys.argv[1]) as source:
    entries = json.load(source)

errors = []
for entry in entries:
    try:
        hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": [entry]}})
        errors.append(None)
    except ValueError as exc:  # FieldError is one
        errors.append(str(exc)[len("hw.clock.ntp[0]: "):] if str(exc).startswith("hw.clock.ntp[0]: ") else str(exc))

rule = localtime.parse("UTC0", "tz")
imported = []
sntp.SntpClock(["gateway", "192.0.2.1"], rule)
imported.append("loadmesh.node.resolver" in sys.modules)
sntp.SntpClock(["gateway", "pool.ntp.org"], rule)
imported.append("loadmesh.node.resolver" in sys.modules)
print(json.dumps({"errors": errors, "resolver_imported": imported}))
