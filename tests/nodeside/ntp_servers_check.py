# Node side of tests/test_node_resolver.py: hw.json's NTP servers checked, and what a clock imports for them.
#   ntp_servers_check.py FILE   FILE holds a list of server entries (or lists of them: the whole "ntp");
#                               prints a line for each: null or its error as the only server (less its
#                               "hw.clock.ntp[0]: "); then {"resolver_imported": [after a clock without
#                               names, after one with a name]}. A line each: the unix port holds the .mpy
#                               modules in the ESP32-sized heap, without room for them all in one string.
#                               Runs on the unix port and on CPython.
import json
import sys

from loadmesh.node import hwconfig, localtime, sntp

with open(sys.argv[1]) as source:
    entries = json.load(source)

for entry in entries:
    error = None
    try:
        hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": entry if isinstance(entry, list) else [entry]}})
    except ValueError as exc:  # FieldError is one
        error = str(exc)[len("hw.clock.ntp[0]: "):] if str(exc).startswith("hw.clock.ntp[0]: ") else str(exc)
    print(json.dumps(error))

rule = localtime.parse("UTC0", "tz")
imported = []
sntp.SntpClock(["gateway", "192.0.2.1"], rule)
imported.append("loadmesh.node.resolver" in sys.modules)
sntp.SntpClock(["gateway", "pool.ntp.org"], rule)
imported.append("loadmesh.node.resolver" in sys.modules)
print(json.dumps({"resolver_imported": imported}))
