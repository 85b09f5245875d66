"""The SNTP client against NTP servers on loopback: answers taken and refused, time-outs, back-off, local time."""

from __future__ import annotations

import calendar
import datetime
import json
import socket
import zoneinfo
from pathlib import Path

import pytest

from loadmesh.node import sntp

from . import mpnode

TZ = "CET-1CEST,M3.5.0,M10.5.0/3"
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
ONE = "127.0.0.1"
TWO = "127.0.0.2"
NOBODY = "127.0.0.3"  # nothing listens there
# 2026-03-29 00:59:00 UTC, a minute before Berlin's clocks go from 02:00 CET to 03:00 CEST.
SPRING_S = calendar.timegm((2026, 3, 29, 0, 59, 0))
AUTUMN_S = calendar.timegm((2026, 10, 25, 0, 59, 0))  # a minute before 03:00 CEST goes back to 02:00 CET

pytestmark = pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((ONE, 0))
        port: int = probe.getsockname()[1]
        return port


def run(interpreter: str, device_root: Path, tmp_path: Path, steps: list[list[object]],
        servers: list[str] | None = None, hosts: list[str] | None = None) -> list[object]:
    path = tmp_path / "sntp.json"
    path.write_text(json.dumps({"tz": TZ, "servers": servers or [ONE], "hosts": hosts or [ONE],
                                "port": _free_port(), "steps": steps}))
    (out,) = mpnode.run_on(interpreter, "sntp_check.py", str(path), device_root=device_root)
    assert isinstance(out, list) and len(out) == len(steps)
    return out


def berlin_week_ms(unix_ms: int) -> int:
    """zoneinfo's local time of week at unix_ms."""
    local = datetime.datetime.fromtimestamp(unix_ms // 1000, BERLIN)
    return ((local.weekday() * 24 + local.hour) * 60 + local.minute) * 60000 + local.second * 1000 + unix_ms % 1000


def test_a_good_answer_sets_the_time_of_week_across_the_change_to_summer_time(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    # Sent at 0, read at 100: half the round trip, 50 ms, is added to the server's 00:59:00.500.
    synced_unix_ms = SPRING_S * 1000 + 550
    reads = [100, 59_549, 59_550, 59_551, 3_599_999, 90_000_000]  # 59,550: 01:00:00.000 UTC, the change
    out = run(interpreter, device_root, tmp_path, [
        ["week_ms", 0], ["poll", 0], ["request", ONE], ["week_ms", 50],
        ["answer", ONE, {"unix_s": SPRING_S, "ms": 500}], ["poll", 100], ["utc", 100],
        *[["week_ms", now] for now in reads],
        ["poll", 3_600_099], ["none", ONE], ["poll", 3_600_100], ["request", ONE], ["status", 3_600_100],
    ])
    assert out[0] is None and out[3] is None  # no time before the first answer
    request = bytes.fromhex(out[2])  # type: ignore[arg-type]
    assert len(request) == 48 and request[0] == 0x23 and not any(request[1:40])  # LI 0, VN 4, mode 3
    assert out[6] == [SPRING_S, 550]
    week = out[7:7 + len(reads)]
    assert week == [berlin_week_ms(synced_unix_ms + now - 100) for now in reads]
    # Sunday (day 6), 01:59:59.999 CET, then 03:00:00.000 CEST.
    assert week[1] == 6 * 86_400_000 + 2 * 3_600_000 - 1 and week[2] == 6 * 86_400_000 + 3 * 3_600_000
    resync = out[7 + len(reads):]
    assert resync[1] is True  # no request before the hour is up
    again = bytes.fromhex(resync[3])  # type: ignore[arg-type]
    assert again[40:48] != request[40:48]  # a new nonce for every request
    status = resync[4]
    assert isinstance(status, dict)
    assert status["waiting"] is True and status["source"] == ONE and status["synced_ago_ms"] == 3_600_000
    assert status["counts"] == {"sent": 2, "good": 1}


def test_back_to_winter_time_and_no_time_once_the_sync_is_too_old(interpreter: str, device_root: Path,
                                                                  tmp_path: Path) -> None:
    synced_unix_ms = AUTUMN_S * 1000 + 50
    reads = [60_049, 60_050, 3_660_049, 3_660_050, sntp.VALID_MS + 99]
    out = run(interpreter, device_root, tmp_path, [
        ["poll", 0], ["request", ONE], ["answer", ONE, {"unix_s": AUTUMN_S}], ["poll", 100],
        *[["week_ms", now] for now in reads], ["week_ms", sntp.VALID_MS + 100], ["utc", sntp.VALID_MS + 100],
    ])
    week = out[4:4 + len(reads)]
    assert week == [berlin_week_ms(synced_unix_ms + now - 100) for now in reads]
    # 02:59:59.999 CEST, then 02:00:00.000 CET: the hour runs twice.
    assert week[0] == 6 * 86_400_000 + 3 * 3_600_000 - 1 and week[1] == 6 * 86_400_000 + 2 * 3_600_000
    assert out[-2:] == [None, None]  # 48 h without a sync: no time of week, the schedules' default targets


REFUSED: list[tuple[dict[str, object], str]] = [
    # (the answer, what it is counted as); each to the one request the client waits on.
    ({"unix_s": SPRING_S, "origin": "0102030405060708"}, "originate"),  # stray, late or spoofed
    ({"unix_s": SPRING_S, "mode": 3}, "mode"),  # a client's request, not a server's answer
    ({"unix_s": SPRING_S, "vn": 0}, "version"),
    ({"unix_s": SPRING_S, "length": 47}, "short"),
    ({"unix_s": SPRING_S, "li": 3}, "unsynchronized"),  # the server's clock is not synchronized
    ({"unix_s": SPRING_S, "stratum": 16}, "unsynchronized"),
    ({"ntp_s": 0}, "time"),  # no time at all
    ({"unix_s": 946_684_800}, "time"),  # 2000-01-01, an unset ESP32's time
    ({"unix_s": 0}, "time"),  # 1970-01-01, an unset Unix clock
    ({"unix_s": 4_102_444_800}, "time"),  # 2100-01-01, past what the node believes
    ({"kiss": "XXXX"}, "kiss"),  # a kiss code nobody defined: not a time, not acted on
    ({"kiss": "DENY", "origin": "ffffffffffffffff"}, "originate"),  # a kiss not for us: not acted on
]


def test_answers_that_are_not_a_servers_sure_time_are_refused_and_the_wait_goes_on(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    steps: list[list[object]] = [["poll", 0], ["request", ONE]]
    for position, (spec, _) in enumerate(REFUSED):
        steps += [["answer", ONE, spec], ["poll", 100 * (position + 1)]]
    done_ms = 100 * (len(REFUSED) + 1)
    later_unix_s = calendar.timegm((2040, 1, 6, 12, 0, 0))  # past NTP's 2036 wrap
    steps += [["utc", done_ms], ["status", done_ms], ["answer", ONE, {"unix_s": later_unix_s, "ms": 250}],
              ["poll", done_ms], ["utc", done_ms], ["status", done_ms]]
    out = run(interpreter, device_root, tmp_path, steps)
    assert out[-6] is None
    counts = {"sent": 1}
    for _, reason in REFUSED:
        counts[reason] = counts.get(reason, 0) + 1
    refused = out[-5]
    assert isinstance(refused, dict)
    assert refused["counts"] == counts and refused["waiting"] is True and refused["denied"] == []
    # The first good answer, within the attempt's 2 s, is taken: 250 ms + half of 1,300 ms.
    assert out[-2] == [later_unix_s, 900]
    taken = out[-1]
    assert isinstance(taken, dict)
    assert taken["counts"] == {**counts, "good": 1} and taken["unix_s"] == later_unix_s
    assert taken["week_ms"] == 4 * 86_400_000 + 13 * 3_600_000 + 900  # Friday 13:00:00.900 CET


def test_silence_times_out_and_the_retries_back_off(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run(interpreter, device_root, tmp_path, [
        ["poll", 0], ["request", ONE], ["poll", 1_999], ["status", 1_999],
        ["poll", 2_000], ["status", 2_000], ["poll", 16_999], ["none", ONE],
        ["poll", 17_000], ["request", ONE], ["poll", 19_000], ["poll", 48_999], ["none", ONE],
        ["poll", 49_000], ["request", ONE], ["poll", 51_000], ["poll", 110_999], ["none", ONE],
        ["poll", 111_000], ["request", ONE], ["answer", ONE, {"unix_s": SPRING_S}], ["poll", 111_000],
        ["status", 111_000], ["poll", 3_710_999], ["none", ONE], ["poll", 3_711_000], ["request", ONE],
        ["poll", 3_713_000], ["poll", 3_727_999], ["none", ONE], ["poll", 3_728_000], ["request", ONE],
    ])
    assert out[3]["waiting"] is True  # type: ignore[index]
    assert out[5]["waiting"] is False and out[5]["counts"] == {"sent": 1, "timeout": 1}  # type: ignore[index]
    # Retries 15 s, 30 s, 60 s after each time-out; never sooner (the "none" steps).
    assert out[7] is True and out[12] is True and out[17] is True
    assert out[22]["counts"] == {"sent": 4, "timeout": 3, "good": 1}  # type: ignore[index]
    # A good answer: the next sync an hour later, and after a time-out the back-off starts again at 15 s.
    assert out[24] is True and out[29] is True
    assert isinstance(out[26], str) and isinstance(out[31], str)


def test_a_late_answer_to_an_earlier_request_is_not_taken(interpreter: str, device_root: Path,
                                                          tmp_path: Path) -> None:
    out = run(interpreter, device_root, tmp_path, [
        ["poll", 0], ["request", ONE], ["poll", 2_000], ["poll", 17_000], ["request", ONE],
        # The server answers the first request now, then the second.
        ["answer", ONE, {"to": 0, "unix_s": SPRING_S - 60}], ["answer", ONE, {"to": 1, "unix_s": SPRING_S}],
        ["poll", 17_100], ["utc", 17_100], ["status", 17_100],
    ])
    assert out[-2] == [SPRING_S, 50]
    assert out[-1]["counts"] == {"sent": 2, "timeout": 1, "originate": 1, "good": 1}  # type: ignore[index]


def test_kiss_o_death_rate_backs_off_and_deny_leaves_the_server_alone(interpreter: str, device_root: Path,
                                                                       tmp_path: Path) -> None:
    denied_at = 15_200
    free_at = denied_at + sntp.DENIED_MS
    out = run(interpreter, device_root, tmp_path, [
        ["poll", 0], ["request", ONE], ["answer", ONE, {"kiss": "RATE"}], ["poll", 100],
        ["poll", 15_099], ["none", ONE], ["poll", 15_100], ["request", ONE],
        ["answer", ONE, {"kiss": "DENY"}], ["poll", denied_at], ["status", denied_at],
        ["poll", denied_at + 30_000], ["poll", free_at - 1], ["none", ONE], ["status", free_at - 1],
        ["poll", free_at], ["request", ONE],
    ])
    assert out[5] is True  # RATE: the attempt failed, the next after the back-off, not at once
    assert out[10]["counts"] == {"sent": 2, "kiss_rate": 1, "kiss_deny": 1}  # type: ignore[index]
    assert out[10]["denied"] == [ONE]  # type: ignore[index]
    assert out[13] is True  # a day without asking it
    assert out[14]["denied"] == [ONE]  # type: ignore[index]
    assert isinstance(out[16], str)


def test_the_servers_are_asked_in_turn_and_a_denied_one_is_skipped(interpreter: str, device_root: Path,
                                                                    tmp_path: Path) -> None:
    out = run(interpreter, device_root, tmp_path, [
        ["poll", 0], ["request", ONE], ["poll", 2_000], ["poll", 17_000], ["none", ONE], ["request", TWO],
        ["answer", TWO, {"kiss": "RSTR"}], ["poll", 17_100], ["poll", 47_100], ["none", TWO], ["request", ONE],
        ["poll", 49_100], ["poll", 109_100], ["none", TWO], ["request", ONE],
        ["answer", ONE, {"unix_s": SPRING_S}], ["poll", 109_200], ["status", 109_200],
    ], servers=[ONE, TWO], hosts=[ONE, TWO])
    assert out[4] is True and isinstance(out[5], str)  # after the first's time-out, the second
    assert out[9] is True and isinstance(out[10], str)  # the second denied: back to the first
    assert out[13] is True and isinstance(out[14], str)  # and the first again, the second still denied
    status = out[17]
    assert isinstance(status, dict)
    assert status["source"] == ONE and status["denied"] == [TWO] and status["unix_s"] == SPRING_S


def test_no_server_and_no_gateway_fail_without_waiting(interpreter: str, device_root: Path,
                                                       tmp_path: Path) -> None:
    # Nothing listens at the address: the stack's refusal ends the attempt at the next poll. "gateway"
    # without a network (the base class has none) asks nobody: retried in 15 s, without back-off.
    out = run(interpreter, device_root, tmp_path, [
        ["poll", 0], ["poll", 100], ["status", 100], ["poll", 15_099], ["status", 15_099], ["poll", 15_100],
        ["status", 15_100], ["poll", 30_100], ["status", 30_100], ["poll", 45_100], ["status", 45_100],
    ], servers=[NOBODY, sntp.GATEWAY])
    assert out[2]["counts"] == {"sent": 1, "refused": 1}  # type: ignore[index]
    assert out[4]["counts"] == {"sent": 1, "refused": 1}  # type: ignore[index]
    assert out[6]["counts"] == {"sent": 1, "refused": 1, "no_address": 1}  # type: ignore[index]
    # The gateway's turn asked nobody; the next turn, to NOBODY again, 15 s later (not 30: no back-off for it).
    assert out[8]["counts"] == {"sent": 2, "refused": 1, "no_address": 1}  # type: ignore[index]
    assert out[10]["counts"] == {"sent": 2, "refused": 2, "no_address": 1}  # type: ignore[index]


def test_a_poll_with_nothing_queued_allocates_nothing_to_receive(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    # recv() asked while nothing had come allocated its buffer and the EAGAIN error, every tick an answer was
    # awaited: 608 bytes a poll here for a name's lookup. Asked first, a poll object allocates nothing.
    (out,) = mpnode.run_on(interpreter, "idle_clock_check.py", str(_free_port()), device_root=device_root)
    assert isinstance(out, dict)
    if interpreter != "cpython":  # CPython has no gc.mem_alloc
        assert out["sntp_bytes"] == 0 and out["lookup_bytes"] == 0
    assert out["sntp_waiting"] is True and out["lookup"] == "waiting"
    # What comes after is still read: sent at 0, read at 100, half the round trip added.
    assert out["synced"] == [1774745940, 50]
