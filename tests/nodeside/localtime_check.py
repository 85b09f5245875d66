# Node side of tests/test_node_localtime.py: local time of week by POSIX TZ rules, on any runtime.
#   localtime_check.py FILE   FILE holds JSON lines, each ["week", tz, [unix_s, ...]] (prints the list of
#                             week_ms at each, ms 0) or ["parse", tz] (prints the rule as a list, or the error)
import json
import sys

from loadmesh.core.errors import FieldError
from loadmesh.node import localtime

with open(sys.argv[1]) as source:
    for line in source:
        item = json.loads(line)
        if item[0] == "week":
            rule = localtime.parse(item[1], "tz")
            print(json.dumps([localtime.week_ms(rule, unix_s) for unix_s in item[2]]))
        else:
            try:
                print(json.dumps({"rule": localtime.parse(item[1], "tz")}))
            except FieldError as exc:
                print(json.dumps({"error": str(exc)}))
