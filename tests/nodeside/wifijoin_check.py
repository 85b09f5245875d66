# Node side of tests/test_node_wifi.py: the Wi-Fi join policy driven by a script of station status codes.
# Runs on the unix port and on CPython.
#   wifijoin_check.py FILE   FILE holds [[step, args...], ...]; prints the list of results.
# Steps: ["step", now_ms, code] (result: whether to connect now; if so, the script's next step says how the
# connect() went: ["tried", now_ms] or ["failed", now_ms]); ["status", now_ms]; ["change"] (what the last step or
# failed() found, and the tries of the last join); ["wait", now_ms] (until the next try); ["reason", code];
# ["hostname", [byte, ...]]; ["run", from_ms, to_ms, code]: the station holds code, stepped every 100 ms as the
# node's tick does, connect() going out each time the policy says so; result: the times it did.
import json
import sys

from loadmesh.node import wifijoin

with open(sys.argv[1]) as source:
    steps = json.load(source)

join = wifijoin.Join()
results = []
for step in steps:
    name = step[0]
    result = None
    if name == "step":
        result = join.step(step[1], step[2])
    elif name == "run":
        result = []
        for now_ms in range(step[1], step[2], 100):
            if join.step(now_ms, step[3]):
                join.tried(now_ms)
                result.append(now_ms)
    elif name == "tried":
        join.tried(step[1])
    elif name == "failed":
        join.failed(step[1])
    elif name == "change":
        result = [join.change, join.join_tries]
    elif name == "wait":
        result = join.wait_ms(step[1])
    elif name == "status":
        result = join.status(step[1])
    elif name == "reason":
        result = wifijoin.reason(step[1])
    elif name == "hostname":
        result = wifijoin.default_hostname(bytes(step[1]))
    results.append(result)
print(json.dumps(results))
