# Node side of tests/test_node_resolver.py: the DNS lookup (resolver.HostLookup) and the SNTP client's
# servers by name against a DNS server and NTP servers on loopback, UDP sockets of this same process (as in
# sntp_check.py: loopback delivers within sendto, so an answer sent is queued before the next step; the
# client's clock is the script's now_ms). Runs on the unix port and on CPython.
#   resolver_check.py FILE   FILE holds {"dns_port", "ntp_port", "hosts" (loopback addresses NTP servers
#                            listen on), "name" (the lookup's) or "servers" and "tz" (the clock's), "steps"}.
# The DNS server listens on 127.0.0.1:dns_port. Steps: ["ask", now_ms] (the lookup queries 127.0.0.1;
# ["ask", now_ms, port]: at that port instead; ["ask", now_ms, port, server]: that DNS server, or null: none);
# ["poll", now_ms] (the lookup's verdict, or the clock's poll); ["current"|"served"|"status"|"utc", now_ms];
# ["forget"], ["deny", address, until_ms]: the lookup's;
# ["network", address or null] (the clock's dns_server()); ["query"]: the DNS server reads the next query
# (waits up to 5 s), result its hex; ["no_query"]: true if none is queued; ["dns", spec]: the DNS server
# answers the query it read last; ["request", host], ["none", host], ["ntp", host, unix_s]: as sntp_check's;
# ["kiss", host, code]: a kiss-o'-death with that code (stratum 0) to the request host read last.
#
# A DNS answer's spec: "id_delta" (added to the query's id), "qr" (1), "opcode" (0), "tc" (0), "rcode" (0), "qdcount"
# (1), "question" (a name: another question than the query's), "upper" (the question echoed in capitals),
# "answers": [[owner, type, ttl, data], ...] (type "A", "CNAME" or a number; data an address for A, a name
# for CNAME), "length" (the datagram cut to that many bytes). A name is "a.example.org", "@" (a pointer to
# the question's name), "rdata" (a pointer to the previous record's data), "self" (a pointer to itself),
# "loop" (a label, then a pointer back to it), or "hex:..." (raw bytes).
import json
import socket
import struct
import sys

from loadmesh.node import localtime, resolver, sntp

with open(sys.argv[1]) as source:
    script = json.load(source)

NTP_UNIX_S = 2208988800
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(socket.getaddrinfo("127.0.0.1", script["dns_port"])[0][-1])
queries = []  # [(data, address), ...] in the order read
ntp = {}
for host in script.get("hosts", []):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(socket.getaddrinfo(host, script["ntp_port"])[0][-1])
    ntp[host] = server
requests = {host: [] for host in ntp}
network = {"dns": None}


class Clock(sntp.SntpClock):
    def dns_server(self):
        return network["dns"]


lookup = None
clock = None
if "name" in script:
    lookup = resolver.HostLookup(script["name"], script["dns_port"])
else:
    clock = Clock(script["servers"], localtime.parse(script["tz"], "tz"), script["ntp_port"], script["dns_port"])


def labels(text):
    out = bytearray()
    for label in text.split("."):
        out.append(len(label))
        out.extend(label.encode())
    out.append(0)
    return out


def name(spec, at, previous_data):
    """The bytes of a name written at offset at."""
    if spec == "@":
        return bytes([0xC0, 12])
    if spec == "rdata":
        return bytes([0xC0 | (previous_data >> 8), previous_data & 0xFF])
    if spec == "self":
        return bytes([0xC0 | (at >> 8), at & 0xFF])
    if spec == "loop":
        return bytes([1, 97, 0xC0 | (at >> 8), at & 0xFF])
    if spec.startswith("hex:"):
        return bytes.fromhex(spec[4:])
    return labels(spec)


TYPES = {"A": 1, "CNAME": 5}


def dns_answer(spec):
    data, address = queries[-1]
    ident = ((data[0] << 8) + data[1] + spec.get("id_delta", 0)) & 0xFFFF
    packet = bytearray(12)
    packet[0] = ident >> 8
    packet[1] = ident & 0xFF
    packet[2] = (spec.get("qr", 1) << 7) | (spec.get("opcode", 0) << 3) | (spec.get("tc", 0) << 1) | (data[2] & 1)
    packet[3] = 0x80 | spec.get("rcode", 0)  # RA
    packet[5] = spec.get("qdcount", 1)
    answers = spec.get("answers", [])
    packet[7] = len(answers)
    if "question" in spec:
        packet.extend(labels(spec["question"]))
        packet.extend(b"\x00\x01\x00\x01")
    elif spec.get("upper"):
        packet.extend(data[12:].decode().upper().encode())  # the length bytes are below "A": unchanged
    else:
        packet.extend(data[12:])
    previous_data = 0
    for owner, kind, ttl, value in answers:
        packet.extend(name(owner, len(packet), previous_data))
        kind = TYPES.get(kind, kind)
        if kind == 1:
            rdata = bytes([int(part) for part in value.split(".")])
        else:
            rdata = name(value, len(packet) + 10, previous_data)
        fixed = bytearray(10)
        struct.pack_into(">HHIH", fixed, 0, kind, 1, ttl, len(rdata))
        packet.extend(fixed)
        previous_data = len(packet)
        packet.extend(rdata)
    dns.sendto(bytes(packet[:spec.get("length", len(packet))]), address)


def ntp_answer(host, unix_s, kiss=None):
    data, address = requests[host][-1]
    packet = bytearray(48)
    packet[0] = 0x24  # LI 0, VN 4, mode 4 (server)
    packet[1] = 2
    packet[24:32] = data[40:48]
    if kiss is not None:
        packet[1] = 0
        packet[12:16] = kiss.encode()
    else:
        struct.pack_into(">II", packet, 40, (unix_s + NTP_UNIX_S) & 0xFFFFFFFF, 0)
    ntp[host].sendto(packet, address)


def queued(server):
    server.setblocking(False)
    try:
        return server.recv(512).hex()
    except OSError:  # EAGAIN: nothing queued
        return True


results = []
for step in script["steps"]:
    kind = step[0]
    result = None
    if kind == "ask":
        lookup.port = step[2] if len(step) > 2 else script["dns_port"]
        result = lookup.ask(step[3] if len(step) > 3 else "127.0.0.1", step[1])
    elif kind == "poll":
        result = lookup.poll(step[1]) if lookup is not None else clock.poll(step[1])
    elif kind == "current":
        result = lookup.current(step[1])
    elif kind == "served":
        result = lookup.served(step[1])
    elif kind == "forget":
        lookup.forget()
    elif kind == "deny":
        lookup.deny(step[1], step[2])
    elif kind == "status":
        result = (lookup if lookup is not None else clock).status(step[1])
    elif kind == "utc":
        utc = clock.utc(step[1])
        result = None if utc is None else list(utc)
    elif kind == "network":
        network["dns"] = step[1]
    elif kind == "query":
        dns.settimeout(5)
        data, address = dns.recvfrom(512)
        queries.append((data, address))
        result = data.hex()
    elif kind == "no_query":
        result = queued(dns)
    elif kind == "dns":
        dns_answer(step[1])
    elif kind == "request":
        server = ntp[step[1]]
        server.settimeout(5)
        data, address = server.recvfrom(512)
        requests[step[1]].append((data, address))
        result = data.hex()
    elif kind == "none":
        result = queued(ntp[step[1]])
    elif kind == "ntp":
        ntp_answer(step[1], step[2])
    elif kind == "kiss":
        ntp_answer(step[1], 0, step[2])
    else:
        raise ValueError("unknown step " + kind)
    results.append(result)
(lookup if lookup is not None else clock).close()
print(json.dumps(results))
