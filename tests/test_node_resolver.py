"""NTP servers by name: the DNS lookup against a DNS server on loopback, the SNTP client through it, hw.json's rules."""

from __future__ import annotations

import calendar
import json
import socket
from pathlib import Path

import pytest

from loadmesh.core.errors import FieldError
from loadmesh.node import hwconfig, resolver, sntp

from . import mpnode

NAME = "ntp.example.org"
TZ = "CET-1CEST,M3.5.0,M10.5.0/3"
TWO = "127.0.0.2"
THREE = "127.0.0.3"
MONDAY_S = calendar.timegm((2026, 1, 5, 6, 30, 0))  # Monday 07:30 CET
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
    """resolver_check.py's results: a lookup of NAME, or with servers= a clock."""
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
    assert out[10] == {"name": NAME, "address": "192.0.2.10", "stale": False, "expires_in_ms": 300_000,
                       "error": None, "denied": None, "waiting": False, "counts": {"sent": 1, "good": 1}}
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


ADDRESS = "192.0.2.10"  # A's


@runtimes
def test_a_lookup_that_fails_past_the_ttl_leaves_the_last_address_served_stale_for_a_day(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    # ADDRESS holds for 300 s from 0; then, while every lookup fails without an answer about the name,
    # it is served stale until STALE_MS past that.
    stale_end = 300_000 + resolver.STALE_MS
    out = run(interpreter, device_root, tmp_path, [
        ["ask", 0], ["query"], ["dns", A], ["poll", 0], ["served", 299_999], ["served", 300_000],
        ["ask", 300_000], ["query"], ["dns", {"rcode": 2}], ["poll", 300_000],  # SERVFAIL
        ["current", 300_000], ["served", 300_000], ["status", 300_000],
        ["ask", 400_000], ["query"], ["poll", 402_000], ["served", 402_000],  # silence
        ["ask", 500_000, _free_port()], ["poll", 500_000], ["poll", 500_100], ["served", 500_100],  # port closed
        ["ask", 600_000, 53, None], ["served", 600_000], ["status", 600_000],  # no DNS server
        ["ask", 700_000], ["query"], ["dns", {"tc": 1, **A}], ["poll", 700_000],
        ["ask", 800_000], ["query"], ["dns", {"rcode": 5}], ["poll", 800_000],  # REFUSED
        ["served", stale_end - 1], ["status", stale_end - 1], ["served", stale_end], ["status", stale_end],
    ])
    assert out[3] == "ok" and out[4] == ADDRESS
    assert out[5] is None  # the TTL is out and no lookup has failed since: the caller asks first
    assert out[9] == "servfail" and out[10] is None and out[11] == ADDRESS
    assert out[12] == {"name": NAME, "address": ADDRESS, "stale": True, "expires_in_ms": resolver.STALE_MS,
                       "error": "servfail", "denied": None, "waiting": False,
                       "counts": {"sent": 2, "good": 1, "servfail": 1}}
    assert out[15] == "timeout" and out[16] == ADDRESS
    assert "refused" in out[18:20] and out[20] == ADDRESS
    assert out[21] is False and out[22] == ADDRESS
    assert out[23]["error"] == "no_server" and out[23]["stale"] is True  # type: ignore[index]
    assert out[27] == "truncated" and out[31] == "rcode"
    assert out[32] == ADDRESS and out[33]["expires_in_ms"] == 1  # type: ignore[index]
    assert out[34] is None
    assert out[35] == {"name": NAME, "address": None, "stale": False, "expires_in_ms": None, "error": "rcode",
                       "denied": None, "waiting": False, "counts": {
                           "sent": 6, "good": 1, "servfail": 1, "timeout": 1, "refused": 1, "no_server": 1,
                           "truncated": 1, "rcode": 1}}


@runtimes
def test_an_answer_that_the_name_has_no_address_or_forget_drops_the_stale_one_and_a_good_answer_replaces_it(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    servfail = {"rcode": 2}
    out = run(interpreter, device_root, tmp_path, [
        ["ask", 0], ["query"], ["dns", A], ["poll", 0],
        ["ask", 300_000], ["query"], ["dns", servfail], ["poll", 300_000], ["served", 300_000],  # stale
        ["ask", 300_001], ["query"], ["dns", {"answers": [["@", "A", 600, "192.0.2.11"]]}], ["poll", 300_001],
        ["status", 300_001],  # replaced, fresh
        ["ask", 900_001], ["query"], ["dns", servfail], ["poll", 900_001], ["served", 900_001],  # the new one stale
        ["ask", 900_002], ["query"], ["dns", NXDOMAIN], ["poll", 900_002], ["served", 900_002],
        ["status", 900_002],
        ["ask", 900_003], ["query"], ["dns", {"answers": [["@", "A", 60, "192.0.2.12"]]}], ["poll", 900_003],
        ["ask", 960_003], ["query"], ["dns", servfail], ["poll", 960_003], ["served", 960_003],
        ["ask", 960_004], ["query"], ["dns", {"rcode": 0}], ["poll", 960_004], ["served", 960_004],  # NODATA
        ["ask", 960_005], ["query"], ["dns", A], ["poll", 960_005],
        ["ask", 1_260_005], ["query"], ["dns", servfail], ["poll", 1_260_005], ["served", 1_260_005], ["forget"],
        ["served", 1_260_005],
    ])
    assert out[8] == ADDRESS
    assert out[13] == {"name": NAME, "address": "192.0.2.11", "stale": False, "expires_in_ms": 600_000,
                       "error": None, "denied": None, "waiting": False,
                       "counts": {"sent": 3, "good": 2, "servfail": 1}}
    assert out[18] == "192.0.2.11"
    assert out[22] == "nxdomain" and out[23] is None  # the name is gone: nothing stale
    assert out[24]["address"] is None and out[24]["error"] == "nxdomain"  # type: ignore[index]
    assert out[28] == "ok" and out[33] == "192.0.2.12"
    assert out[37] == "nodata" and out[38] is None
    assert out[42] == "ok" and out[47] == ADDRESS
    assert out[49] is None  # forget(): its NTP server failed, so it is not served stale


@runtimes
def test_a_denied_address_is_passed_over_until_its_denial_ends(interpreter: str, device_root: Path,
                                                               tmp_path: Path) -> None:
    pool = {"answers": [["@", "A", 300, "192.0.2.1"], ["@", "A", 300, "192.0.2.2"]]}
    one = {"answers": [["@", "CNAME", 300, "pool.example.net"], ["pool.example.net", "A", 300, "192.0.2.1"]]}
    out = run(interpreter, device_root, tmp_path, [
        ["ask", 0], ["query"], ["dns", pool], ["poll", 0],
        ["deny", "192.0.2.1", 100_000], ["current", 0], ["served", 0], ["status", 0],
        ["ask", 1], ["query"], ["dns", pool], ["poll", 1], ["current", 1],
        ["ask", 2], ["query"], ["dns", one], ["poll", 2], ["served", 2], ["status", 2],
        ["ask", 100_000], ["query"], ["dns", one], ["poll", 100_000], ["status", 100_000],
    ])
    assert out[3] == "ok" and out[5] is None and out[6] is None  # dropped at once, not served stale
    assert out[7]["denied"] == "192.0.2.1" and out[7]["address"] is None  # type: ignore[index]
    assert out[11] == "ok" and out[12] == "192.0.2.2"  # the pool's next address
    assert out[16] == "denied" and out[17] is None  # the name's only address is the denied one
    assert out[18]["error"] == "denied" and out[18]["counts"] == {  # type: ignore[index]
        "sent": 3, "good": 2, "denied": 1}
    assert out[22] == "ok" and out[23]["address"] == "192.0.2.1" and out[23]["denied"] is None  # type: ignore[index]


# The SNTP client through names.


@runtimes
def test_an_ntp_sync_through_a_name(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    hours_later = 15_100 + sntp.RESYNC_MS
    out = run(interpreter, device_root, tmp_path, [
        ["poll", 0], ["status", 0],  # no network: no DNS server, nobody asked
        ["network", "127.0.0.1"], ["poll", 14_999], ["no_query"], ["poll", 15_000], ["query"], ["none", TWO],
        ["status", 15_000], ["dns", {"answers": [["@", "A", 300, TWO]]}], ["poll", 15_050], ["request", TWO],
        ["ntp", TWO, MONDAY_S], ["poll", 15_100], ["utc", 15_100], ["status", 15_100],
        # An hour on, the TTL is long past: the name is looked up again, and now gives another server.
        ["poll", hours_later], ["query"], ["dns", {"answers": [["@", "A", 7200, THREE]]}], ["poll", hours_later],
        ["request", THREE], ["ntp", THREE, MONDAY_S + 3600], ["poll", hours_later], ["status", hours_later],
        # Within the TTL the next sync asks nobody but the server.
        ["poll", hours_later + sntp.RESYNC_MS], ["no_query"], ["request", THREE],
    ], servers=[NAME], tz=TZ, hosts=[TWO, THREE])
    assert out[1]["counts"] == {"no_address": 1} and out[1]["names"] == [  # type: ignore[index]
        {"name": NAME, "address": None, "stale": False, "expires_in_ms": None, "error": "no_server", "denied": None,
         "waiting": False, "counts": {"no_server": 1}}]
    assert out[4] is True  # no retry before 15 s
    assert out[7] is True and out[8]["waiting"] is True  # type: ignore[index]
    assert out[8]["names"][0]["waiting"] is True  # type: ignore[index]
    assert out[14] == [MONDAY_S, 25]  # sent at 15,050, read at 15,100
    status = out[15]
    assert isinstance(status, dict)
    assert status["source"] == TWO and status["week_ms"] == 7 * 3_600_000 + 30 * 60_000 + 25
    assert status["counts"] == {"no_address": 1, "sent": 1, "good": 1}
    assert status["names"] == [{"name": NAME, "address": TWO, "stale": False, "expires_in_ms": 299_950,
                                "error": None, "denied": None, "waiting": False,
                                "counts": {"no_server": 1, "sent": 1, "good": 1}}]
    again = out[23]
    assert isinstance(again, dict)
    assert again["source"] == THREE and again["unix_s"] == MONDAY_S + 3600
    assert again["names"][0]["counts"] == {"no_server": 1, "sent": 2, "good": 2}  # type: ignore[index]
    assert out[25] is True and isinstance(out[26], str)


@runtimes
def test_a_name_that_does_not_resolve_fails_the_attempt_and_the_next_server_is_asked(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run(interpreter, device_root, tmp_path, [
        ["network", "127.0.0.1"], ["poll", 0], ["query"], ["dns", NXDOMAIN], ["poll", 100], ["status", 100],
        ["poll", 15_099], ["none", TWO], ["poll", 15_100], ["request", TWO], ["no_query"],  # the next server
        ["poll", 17_100],  # silent: time-out
        ["poll", 47_099], ["no_query"], ["poll", 47_100], ["query"],  # the name again, 30 s on
        ["poll", 49_099], ["poll", 49_100], ["status", 49_100],  # the DNS server silent this time
        ["poll", 109_099], ["none", TWO], ["poll", 109_100], ["request", TWO],  # 60 s on: the back-off doubled
    ], servers=[NAME, TWO], tz=TZ, hosts=[TWO])
    first = out[5]
    assert isinstance(first, dict)
    assert first["counts"] == {"unresolved": 1} and first["waiting"] is False
    assert first["names"][0]["error"] == "nxdomain"  # type: ignore[index]
    assert out[7] is True and isinstance(out[9], str) and out[10] is True
    assert out[13] is True and isinstance(out[15], str)
    later = out[18]
    assert isinstance(later, dict)
    assert later["counts"] == {"unresolved": 2, "sent": 1, "timeout": 1}
    assert later["names"][0]["error"] == "timeout"  # type: ignore[index]
    assert later["names"][0]["counts"] == {"sent": 2, "nxdomain": 1, "timeout": 1}  # type: ignore[index]
    assert out[20] is True and isinstance(out[22], str)


@runtimes
def test_a_silent_server_at_a_names_address_has_the_name_looked_up_again(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run(interpreter, device_root, tmp_path, [
        ["network", "127.0.0.1"], ["poll", 0], ["query"], ["dns", {"answers": [["@", "A", 86_400, TWO]]}],
        ["poll", 0], ["request", TWO], ["poll", 2_000], ["status", 2_000],  # TWO silent
        ["poll", 17_000], ["query"], ["dns", {"answers": [["@", "A", 86_400, THREE]]}], ["poll", 17_000],
        ["request", THREE], ["ntp", THREE, MONDAY_S], ["poll", 17_100], ["status", 17_100],
    ], servers=[NAME], tz=TZ, hosts=[TWO, THREE])
    assert out[7]["names"][0]["address"] is None  # type: ignore[index]
    assert isinstance(out[9], str)  # asked again, though the day's TTL still held
    assert out[15]["source"] == THREE and out[15]["counts"] == {  # type: ignore[index]
        "sent": 2, "timeout": 1, "good": 1}


@runtimes
def test_while_the_dns_fails_the_ntp_server_at_the_last_address_keeps_the_clock_synced(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    first = 100 + sntp.RESYNC_MS
    second = first + sntp.RESYNC_MS
    third = second + 2_000 + sntp.RESYNC_MS
    fourth = third + sntp.RESYNC_MS
    out = run(interpreter, device_root, tmp_path, [
        ["network", "127.0.0.1"], ["poll", 0], ["query"], ["dns", {"answers": [["@", "A", 60, TWO]]}], ["poll", 0],
        ["request", TWO], ["ntp", TWO, MONDAY_S], ["poll", 100],
        # An hour on the TTL is out: the name is asked again, the DNS server fails, TWO is served stale.
        ["poll", first], ["query"], ["dns", {"rcode": 2}], ["poll", first], ["request", TWO],
        ["ntp", TWO, MONDAY_S + 3600], ["poll", first], ["status", first],
        # The DNS server silent: the request goes in the poll that timed the lookup out.
        ["poll", second], ["query"], ["poll", second + 2_000], ["request", TWO], ["ntp", TWO, MONDAY_S + 7200],
        ["poll", second + 2_000],
        # No DNS server at all: straight to TWO.
        ["network", None], ["poll", third], ["no_query"], ["request", TWO], ["ntp", TWO, MONDAY_S + 10800],
        ["poll", third], ["status", third],
        # TWO itself silent: dropped, so the next attempt, its lookup failing, has no address to go to.
        ["network", "127.0.0.1"], ["poll", fourth], ["query"], ["dns", {"rcode": 2}], ["poll", fourth],
        ["request", TWO], ["poll", fourth + 2_000], ["status", fourth + 2_000],
        ["poll", fourth + 17_000], ["query"], ["dns", {"rcode": 2}], ["poll", fourth + 17_000], ["none", TWO],
        ["status", fourth + 17_000],
    ], servers=[NAME], tz=TZ, hosts=[TWO])
    synced = out[15]
    assert isinstance(synced, dict)
    assert synced["unix_s"] == MONDAY_S + 3600 and synced["source"] == TWO
    assert synced["counts"] == {"sent": 2, "good": 2}  # no "unresolved": the attempt went to TWO
    assert synced["names"] == [{"name": NAME, "address": TWO, "stale": True,
                                "expires_in_ms": 60_000 + resolver.STALE_MS - first, "error": "servfail",
                                "denied": None, "waiting": False, "counts": {"sent": 2, "good": 1, "servfail": 1}}]
    assert isinstance(out[19], str)
    assert out[24] is True and isinstance(out[25], str)
    third_status = out[28]
    assert isinstance(third_status, dict)
    assert third_status["unix_s"] == MONDAY_S + 10800 and third_status["counts"] == {"sent": 4, "good": 4}
    assert third_status["names"][0]["error"] == "no_server"  # type: ignore[index]
    assert third_status["names"][0]["stale"] is True  # type: ignore[index]
    assert isinstance(out[34], str)
    dropped = out[36]
    assert isinstance(dropped, dict)
    assert dropped["names"][0]["address"] is None and dropped["counts"] == {  # type: ignore[index]
        "sent": 5, "good": 4, "timeout": 1}
    assert out[41] is True
    assert out[42]["counts"] == {"sent": 5, "good": 4, "timeout": 1, "unresolved": 1}  # type: ignore[index]


@runtimes
def test_a_day_past_its_ttl_the_last_address_is_no_longer_served(interpreter: str, device_root: Path,
                                                                 tmp_path: Path) -> None:
    stale_end = 60_000 + resolver.STALE_MS
    out = run(interpreter, device_root, tmp_path, [
        ["network", "127.0.0.1"], ["poll", 0], ["query"], ["dns", {"answers": [["@", "A", 60, TWO]]}], ["poll", 0],
        ["request", TWO], ["ntp", TWO, MONDAY_S], ["poll", 100],
        ["poll", stale_end - 1], ["query"], ["dns", {"rcode": 2}], ["poll", stale_end - 1], ["request", TWO],
        ["ntp", TWO, MONDAY_S + 86_400], ["poll", stale_end - 1],
        ["poll", stale_end + sntp.RESYNC_MS], ["query"], ["dns", {"rcode": 2}],
        ["poll", stale_end + sntp.RESYNC_MS], ["none", TWO], ["status", stale_end + sntp.RESYNC_MS],
    ], servers=[NAME], tz=TZ, hosts=[TWO])
    assert isinstance(out[12], str)  # a ms before the day is up: still TWO
    assert out[19] is True
    status = out[20]
    assert isinstance(status, dict)
    assert status["counts"] == {"sent": 2, "good": 2, "unresolved": 1}
    assert status["names"][0]["address"] is None and status["names"][0]["error"] == "servfail"  # type: ignore[index]


@runtimes
def test_a_kiss_o_death_from_one_address_of_a_name_leaves_that_address_alone_not_the_name(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    pool = {"answers": [["@", "A", 300, TWO], ["@", "A", 300, THREE]]}
    only_two = {"answers": [["@", "A", 300, TWO]]}
    later = 15_200 + sntp.RESYNC_MS
    free_at = 100 + sntp.DENIED_MS
    out = run(interpreter, device_root, tmp_path, [
        ["network", "127.0.0.1"], ["poll", 0], ["query"], ["dns", pool], ["poll", 0], ["request", TWO],
        ["kiss", TWO, "DENY"], ["poll", 100], ["status", 100],
        # 15 s on (the back-off), the name again: the pool's next address.
        ["poll", 15_099], ["no_query"], ["poll", 15_100], ["query"], ["dns", pool], ["poll", 15_100],
        ["request", THREE], ["ntp", THREE, MONDAY_S], ["poll", 15_200], ["status", 15_200],
        # The name giving only TWO: no request while its denial holds, TWO again once it ends.
        ["poll", later], ["query"], ["dns", only_two], ["poll", later], ["none", TWO], ["status", later],
        ["poll", free_at], ["query"], ["dns", only_two], ["poll", free_at], ["request", TWO],
    ], servers=[NAME], tz=TZ, hosts=[TWO, THREE])
    denied = out[8]
    assert isinstance(denied, dict)
    assert denied["denied"] == [] and denied["counts"] == {"sent": 1, "kiss_deny": 1}
    assert denied["names"][0]["denied"] == TWO and denied["names"][0]["address"] is None  # type: ignore[index]
    assert out[10] is True and isinstance(out[12], str) and isinstance(out[15], str)
    assert out[18]["source"] == THREE and out[18]["unix_s"] == MONDAY_S  # type: ignore[index]
    assert out[23] is True
    assert out[24]["counts"] == {"sent": 2, "kiss_deny": 1, "good": 1, "unresolved": 1}  # type: ignore[index]
    assert out[24]["names"][0]["error"] == "denied"  # type: ignore[index]
    assert isinstance(out[29], str)


# hw.json: names, checked.


@runtimes
def test_the_wiring_takes_names_and_says_what_is_wrong_with_a_bad_one(interpreter: str, device_root: Path,
                                                                       tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(GOOD_SERVERS + [bad for bad, _ in BAD_SERVERS]))
    *errors, imported = mpnode.run_on(interpreter, "ntp_servers_check.py", str(path), device_root=device_root)
    assert errors == [None] * len(GOOD_SERVERS) + [error for _, error in BAD_SERVERS]
    # A clock without names does not import the resolver; one with a name does.
    assert imported == {"resolver_imported": [False, True]}


GOOD_SERVERS: list[object] = [
    "pool.ntp.org", "de.pool.ntp.org", "Time.Cloudflare.COM", "ntp1.fau.de", "1.de.pool.ntp.org",
    "fritz.box", "xn--bcher-kva.example", "a-b.c-d.e", "3com.com", "192.168.1.1",
    "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61,  # 253 characters
    ["gateway", "pool.ntp.org", "192.168.1.1"],  # a list: the whole "ntp"
]
NOT_A = "is not an IPv4 address, \"gateway\" or a host name"
BAD_SERVERS: list[tuple[object, str]] = [
    ("pool..ntp.org", "\"pool..ntp.org\" " + NOT_A + ": it has an empty label (two dots in a row, or a dot at an end)"),
    ("pool.ntp.org.", "\"pool.ntp.org.\" " + NOT_A + ": it has an empty label (two dots in a row, or a dot at an end)"),
    (".ntp.org", "\".ntp.org\" " + NOT_A + ": it has an empty label (two dots in a row, or a dot at an end)"),
    ("ntpserver", "\"ntpserver\" " + NOT_A + ": it has no dot (a name of one label is local, looked up by a search "
     "list the node does not have: give the full name)"),
    ("Gateway", "\"Gateway\" " + NOT_A + ": it has no dot (a name of one label is local, looked up by a search "
     "list the node does not have: give the full name)"),
    ("-ntp.example.org", "\"-ntp.example.org\" " + NOT_A + ": its label \"-ntp\" starts or ends with a hyphen"),
    ("ntp-.example.org", "\"ntp-.example.org\" " + NOT_A + ": its label \"ntp-\" starts or ends with a hyphen"),
    ("ntp_1.example.org", "\"ntp_1.example.org\" " + NOT_A + ": it has \"_\" (letters, digits, hyphens and dots only)"),
    ("ntp.exämple.org",  # an internationalized name is written in its ASCII form (xn--exmple-cua)
     "\"ntp.ex\\u00e4mple.org\" " + NOT_A + ": it has \"\\u00e4\" (letters, digits, hyphens and dots only)"),
    ("ntp example.org", "\"ntp example.org\" " + NOT_A + ": it has \" \" (letters, digits, hyphens and dots only)"),
    ("ntp.example.123", "\"ntp.example.123\" " + NOT_A + ": its last label \"123\" is all digits (no top-level "
     "domain is)"),
    ("x" * 64 + ".org", "\"" + "x" * 40 + "...\" " + NOT_A + ": its label \"" + "x" * 20 + "...\" has 64 characters, "
     "at most 63"),
    ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 62,
     "\"" + "a" * 40 + "...\" " + NOT_A + ": it has 254 characters, at most 253"),
    ("224.0.1.1", "\"224.0.1.1\" is not a unicast IPv4 address (1..223.0..255.0..255.0..255, no leading zeros)"),
    ("10.0.0.256", "\"10.0.0.256\" is not a unicast IPv4 address (1..223.0..255.0..255.0..255, no leading zeros)"),
    ("10.0.1", "\"10.0.1\" is not a unicast IPv4 address (1..223.0..255.0..255.0..255, no leading zeros)"),
    # Read as octal by the C library and lwIP (8.0.0.1): another server than the one checked.
    ("010.0.0.1", "\"010.0.0.1\" is not a unicast IPv4 address (1..223.0..255.0..255.0..255, no leading zeros)"),
    ("192.168.1.01", "\"192.168.1.01\" is not a unicast IPv4 address (1..223.0..255.0..255.0..255, no leading zeros)"),
    ("", "\"\" " + NOT_A + ": it is empty"),
    (123, "123 " + NOT_A),
    (None, "null " + NOT_A),
    # Lists: the whole "ntp", the error in full. A name's case does not matter: the same server, twice.
    (["Pool.NTP.org", "pool.ntp.org"], "hw.clock.ntp[1]: \"pool.ntp.org\" is listed twice: as \"Pool.NTP.org\" in "
     "hw.clock.ntp[0] (a host name's case does not matter)"),
    (["gateway", "de.pool.ntp.org", "DE.pool.ntp.ORG"], "hw.clock.ntp[2]: \"DE.pool.ntp.ORG\" is listed twice: as "
     "\"de.pool.ntp.org\" in hw.clock.ntp[1] (a host name's case does not matter)"),
    (["192.168.1.1", "192.168.1.1"], "hw.clock.ntp[1]: \"192.168.1.1\" is listed twice"),
]


def test_a_name_in_the_wiring_and_its_errors_name_the_entry() -> None:
    wiring = hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["gateway", "de.pool.ntp.org"]}})
    assert wiring["clock"] == {"tz": "UTC0", "ntp": ["gateway", "de.pool.ntp.org"]}
    assert hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0"}})["clock"] == {"tz": "UTC0", "ntp": ["gateway"]}
    with pytest.raises(FieldError) as refused:
        hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["gateway", "pool..ntp.org"]}})
    assert str(refused.value) == ("hw.clock.ntp[1]: \"pool..ntp.org\" " + NOT_A + ": it has an empty label (two dots "
                                  "in a row, or a dot at an end)")
    with pytest.raises(FieldError) as twice:
        hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["pool.ntp.org", "pool.ntp.org"]}})
    assert str(twice.value) == "hw.clock.ntp[1]: \"pool.ntp.org\" is listed twice"
    with pytest.raises(FieldError) as folded:
        hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["Time.Cloudflare.COM", "gateway",
                                                                         "time.cloudflare.com"]}})
    assert str(folded.value) == ("hw.clock.ntp[2]: \"time.cloudflare.com\" is listed twice: as \"Time.Cloudflare.COM\" "
                                 "in hw.clock.ntp[0] (a host name's case does not matter)")
