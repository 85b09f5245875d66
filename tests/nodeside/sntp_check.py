# Node side of tests/test_node_sntp.py: the SNTP client against NTP servers on loopback, UDP sockets of
# this same process, so that an answer sent is queued at the client before the next step (loopback
# delivers within sendto): no waiting on time, and the client's clock is the script's now_ms.
# Runs on the unix port and on CPython.
#   sntp_check.py FILE   FILE holds {"tz", "servers" (the client's list), "hosts" (loopback addresses to
#                        serve on), "port", "steps": [[step, args...], ...]}; prints the list of results.
# Steps: ["poll", now_ms]; ["request", host]: the server on host reads the next request (waits up to 5 s),
# result its hex; ["none", host]: true if no request is queued there; ["answer", host, spec]: the server
# answers the request it read last (or spec "to": an index); ["week_ms"|"utc"|"status", now_ms].
import json
import socket
import struct
import sys

from loadmesh.node import localtime, sntp

with open(sys.argv[1]) as source:
    script = json.load(source)

NTP_UNIX_S = 2208988800
port = script["port"]
servers = {}
for host in script["hosts"]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(socket.getaddrinfo(host, port)[0][-1])
    servers[host] = server
requests = {host: [] for host in script["hosts"]}  # host -> [(data, address), ...] in the order read

client = sntp.SntpClock(script["servers"], localtime.parse(script["tz"], "tz"), port)


def answer(host, spec):
    data, address = requests[host][spec.get("to", -1)]
    packet = bytearray(48)
    mode = spec.get("mode", 4)
    packet[0] = (spec.get("li", 0) << 6) | (spec.get("vn", 4) << 3) | mode
    packet[1] = spec.get("stratum", 2)
    if "kiss" in spec:
        packet[1] = 0
        packet[12:16] = spec["kiss"].encode()
    origin = spec.get("origin", "echo")
    packet[24:32] = data[40:48] if origin == "echo" else bytes.fromhex(origin)
    seconds = 0  # a kiss-o'-death carries no time
    if "ntp_s" in spec:
        seconds = spec["ntp_s"]
    elif "unix_s" in spec:
        seconds = (spec["unix_s"] + NTP_UNIX_S) & 0xFFFFFFFF
    fraction = spec.get("ms", 0) * 0x100000000 // 1000
    struct.pack_into(">II", packet, 32, seconds, fraction)  # receive
    struct.pack_into(">II", packet, 40, seconds, fraction)  # transmit
    servers[host].sendto(bytes(packet[:spec.get("length", 48)]), address)


results = []
for step in script["steps"]:
    name = step[0]
    result = None
    if name == "poll":
        client.poll(step[1])
    elif name == "request":
        server = servers[step[1]]
        server.settimeout(5)
        data, address = server.recvfrom(512)
        requests[step[1]].append((data, address))
        result = data.hex()
    elif name == "none":
        server = servers[step[1]]
        server.setblocking(False)
        try:
            data = server.recv(512)
            result = data.hex()
        except OSError:  # EAGAIN: nothing queued
            result = True
    elif name == "answer":
        answer(step[1], step[2])
    elif name == "week_ms":
        result = client.week_ms(step[1])
    elif name == "utc":
        utc = client.utc(step[1])
        result = None if utc is None else list(utc)
    elif name == "status":
        result = client.status(step[1])
    else:
        raise ValueError("unknown step " + name)
    results.append(result)
client.close()
print(json.dumps(results))
