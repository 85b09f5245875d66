"""The DNS lookup (resolver.HostLookup) against a DNS server on loopback: answers taken and refused, TTLs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from . import mpnode

NAME = "ntp.example.org"
# Answers, each to the one query the lookup waits on.
A = {"answers": [["@", "A", 300, "192.0.2.10"]]}
NXDOMAIN = {"rcode": 3}

runtimes = pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(interpreter: str, device_root: Path, tmp_path: Path, steps: list[list[object]],
        **setup: object) -> list[object]:
    """resolver_check.py's results: a lookup of NAME."""
    path = tmp_path / "resolver.json"
    script: dict[str, object] = {"dns_port": _free_port(), "ntp_port": _free_port(), "steps": steps}
    script.update(setup if "servers" in setup else {"name": NAME, **setup})
    path.write_text(json.dumps(script))
    (out,) = mpnode.run_on(interpreter, "resolver_check.py", str(path), device_root=device_root)
    assert isinstance(out, list) and len(out) == len(steps)
    return out


@runtimes
def test_an_a_record_is_taken_for_its_ttl(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run(interpreter, device_root, tmp_path, [
        ["current", 0], ["ask", 0], ["query"], ["poll", 10], ["status", 10], ["dns", A], ["poll", 50],
        ["current", 50], ["current", 300_049], ["current", 300_050], ["status", 50],
        ["ask", 400_000], ["query"], ["ask", 400_000], ["query"],
    ])
    assert out[0] is None and out[1] is True
    query = bytes.fromhex(out[2])  # type: ignore[arg-type]
    # Header: the id, RD set (nothing else), one question and no other records; the question: NAME, A, IN.
    assert query[2:12] == bytes.fromhex("01000001000000000000")
    assert query[12:] == b"\x03ntp\x07example\x03org\x00\x00\x01\x00\x01"
    assert out[3] == "waiting" and out[4]["waiting"] is True  # type: ignore[index]
    assert out[6] == "ok" and out[7] == "192.0.2.10" and out[8] == "192.0.2.10"
    assert out[9] is None  # the TTL's 300 s are up: asked again
    assert out[10] == {"name": NAME, "address": "192.0.2.10", "expires_in_ms": 300_000, "error": None,
                       "waiting": False, "counts": {"sent": 1, "good": 1}}
    ids = {bytes.fromhex(out[i])[:2] for i in (2, 12, 14)}  # type: ignore[arg-type]
    assert len(ids) > 1  # a random id for each query (the same three times: one chance in 2^32)


@runtimes
def test_a_cname_chain_is_followed_inside_the_answer(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    # NAME -> pool.example.net -> b.example.net -> its A, the records out of order, another name's A first,
    # and the question echoed in capitals. The TTL is the chain's smallest (120 s).
    chain = {"upper": True, "answers": [
        ["other.example.com", "A", 900, "192.0.2.1"],
        ["b.example.net", "A", 3600, "192.0.2.20"],
        ["@", "CNAME", 600, "pool.example.net"],
        ["rdata", "CNAME", 120, "b.example.net"],
        ["b.example.net", "A", 3600, "192.0.2.21"],
    ]}
    # A CNAME pointing at a name the answer has no A for, and a CNAME loop: no address.
    dangling = {"answers": [["@", "CNAME", 600, "pool.example.net"], ["pool.example.net", "A", 60, "0.0.0.0"]]}
    loop = {"answers": [["@", "CNAME", 600, "x.example.net"], ["x.example.net", "CNAME", 600, NAME]]}
    out = run(interpreter, device_root, tmp_path, [
        ["ask", 0], ["query"], ["dns", chain], ["poll", 0], ["status", 0],
        ["ask", 1], ["query"], ["dns", dangling], ["poll", 1], ["ask", 2], ["query"], ["dns", loop], ["poll", 2],
    ])
    assert out[3] == "ok"
    assert out[4]["address"] == "192.0.2.20" and out[4]["expires_in_ms"] == 120_000  # type: ignore[index]
    assert out[8] == "nodata"  # 0.0.0.0 (a blocking resolver's answer) is no address
    assert out[12] == "nodata"


@runtimes
def test_the_ttl_is_clamped(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    steps: list[list[object]] = []
    ttls = [0, 59, 61, 86_400, 86_401, 10 * 86_400, 0x80000005, 0xFFFFFFFF]
    for ttl in ttls:
        steps += [["ask", 0], ["query"], ["dns", {"answers": [["@", "A", ttl, "192.0.2.10"]]}], ["poll", 0],
                  ["status", 0]]
    out = run(interpreter, device_root, tmp_path, steps)
    expires = [out[5 * i + 4]["expires_in_ms"] for i in range(len(ttls))]  # type: ignore[index]
    # At least a minute, at most a day; with its top bit set a TTL is 0 (RFC 2181 8).
    assert expires == [60_000, 60_000, 61_000, 86_400_000, 86_400_000, 86_400_000, 60_000, 60_000]


ENDING = [
    # (the answer to our query, the lookup's verdict): the server has spoken, the lookup ends.
    (NXDOMAIN, "nxdomain"),
    ({"rcode": 2}, "servfail"),
    ({"rcode": 5}, "rcode"),  # REFUSED
    ({"rcode": 0}, "nodata"),  # no records
    ({"answers": [["@", "CNAME", 60, "other.example.org"]]}, "nodata"),
    ({"tc": 1, "answers": [["@", "A", 300, "192.0.2.10"]]}, "truncated"),
]


@runtimes
def test_an_answer_without_an_address_ends_the_lookup(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    steps: list[list[object]] = []
    for spec, _ in ENDING:
        steps += [["ask", 0], ["query"], ["dns", spec], ["poll", 0]]
    steps += [["status", 0], ["poll", 5_000]]
    out = run(interpreter, device_root, tmp_path, steps)
    assert [out[4 * i + 3] for i in range(len(ENDING))] == [verdict for _, verdict in ENDING]
    status = out[-2]
    assert isinstance(status, dict)
    assert status["address"] is None and status["error"] == "truncated" and status["waiting"] is False
    assert status["counts"] == {"sent": 6, "nxdomain": 1, "servfail": 1, "rcode": 1, "nodata": 2, "truncated": 1}
    assert out[-1] == "truncated"  # no lookup out: how the last one ended, no time-out counted


REFUSED = [
    # (a datagram that is not the answer to our query or cannot be read, what it is counted as); each to the
    # one query the lookup waits on, which keeps waiting.
    ({"id_delta": 1}, "id"),  # stray, late or blindly spoofed
    ({"qr": 0, **A}, "header"),  # a query, not an answer
    ({"opcode": 2, **A}, "header"),
    ({"qdcount": 0, **A}, "question"),
    ({"question": "ntp.example.com", **A}, "question"),
    ({"length": 11}, "short"),  # not even a header
    ({**A, "length": 30}, "short"),  # the question cut
    ({**A, "length": 40}, "short"),  # the record cut
    ({"answers": [["self", "A", 300, "192.0.2.10"]]}, "malformed"),  # a pointer to itself
    ({"answers": [["loop", "A", 300, "192.0.2.10"]]}, "malformed"),  # a label, a pointer back to it
    ({"answers": [["hex:c1ff", "A", 300, "192.0.2.10"]]}, "malformed"),  # a pointer past the end
    ({"answers": [["hex:4100", "A", 300, "192.0.2.10"]]}, "malformed"),  # an extended label type
    ({"answers": [["@", "CNAME", 300, "self"]]}, "malformed"),  # the CNAME's target a loop
    ({"answers": [["@", "CNAME", 300, "hex:03616263"]]}, "malformed"),  # the target runs past the end
    ({"answers": [["x" * 63 + "." + "x" * 63 + "." + "x" * 63 + "." + "x" * 62, "A", 300, "192.0.2.9"]]},
     "malformed"),  # 256 bytes as written: one past a name's 255
]


@runtimes
def test_what_is_not_the_answer_is_counted_and_the_lookup_waits_on(interpreter: str, device_root: Path,
                                                                   tmp_path: Path) -> None:
    steps: list[list[object]] = [["ask", 0], ["query"]]
    for position, (spec, _) in enumerate(REFUSED):
        steps += [["dns", spec], ["poll", 100 + position]]
    steps += [["status", 1_000], ["dns", A], ["poll", 1_999], ["status", 1_999]]
    out = run(interpreter, device_root, tmp_path, steps)
    assert out[3:3 + 2 * len(REFUSED):2] == ["waiting"] * len(REFUSED)
    counts = {"sent": 1}
    for _, reason in REFUSED:
        counts[reason] = counts.get(reason, 0) + 1
    assert out[-4]["counts"] == counts and out[-4]["waiting"] is True  # type: ignore[index]
    assert out[-2] == "ok"
    assert out[-1]["counts"] == {**counts, "good": 1} and out[-1]["address"] == "192.0.2.10"  # type: ignore[index]


@runtimes
def test_silence_times_out_and_a_closed_port_refuses(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run(interpreter, device_root, tmp_path, [
        ["ask", 0], ["query"], ["poll", 1_999], ["poll", 2_000], ["status", 2_000],
        # Nothing listens at the DNS server's port: the stack's refusal ends the lookup at the next poll.
        ["ask", 3_000, _free_port()], ["poll", 3_000], ["poll", 3_100], ["status", 3_100],
    ])
    assert out[2] == "waiting" and out[3] == "timeout"
    assert out[4]["error"] == "timeout" and out[4]["counts"] == {"sent": 1, "timeout": 1}  # type: ignore[index]
    assert out[5] is True and "refused" in out[6:8]
    assert out[8]["error"] == "refused" and out[8]["counts"] == {  # type: ignore[index]
        "sent": 2, "timeout": 1, "refused": 1}
