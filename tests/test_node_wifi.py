"""Joining the Wi-Fi: the retry policy on every runtime, then the ESP32 HAL and a node against a faked radio."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmesh.node import hwconfig, wifijoin

from . import mpnode

IDLE = wifijoin.IDLE
CONNECTING = wifijoin.CONNECTING
GOT_IP = wifijoin.GOT_IP
NO_AP = 201
WRONG_PASSWORD = 202
BEACON_TIMEOUT = 200


def run_policy(interpreter: str, device_root: Path, tmp_path: Path, steps: list[list[object]]) -> list[object]:
    path = tmp_path / "wifijoin.json"
    path.write_text(json.dumps(steps))
    (out,) = mpnode.run_on(interpreter, "wifijoin_check.py", str(path), device_root=device_root)
    assert isinstance(out, list) and len(out) == len(steps)
    return out


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_a_wrong_password_is_tried_again_ever_more_slowly_up_to_a_minute(interpreter: str, device_root: Path,
                                                                          tmp_path: Path) -> None:
    steps: list[list[object]] = [["step", 0, IDLE], ["tried", 0], ["step", 1000, CONNECTING], ["status", 1000],
                                 ["run", 4000, 300_000, WRONG_PASSWORD], ["status", 300_000]]
    out = run_policy(interpreter, device_root, tmp_path, steps)
    # 5, 10, 20 and 40 s after each try, then every 60 s: the first attempt failed after 4 s.
    assert out[4] == [5000, 15000, 35000, 75000, 135000, 195000, 255000]
    assert out[3] == {"state": "joining", "for_ms": 1000, "reason": None, "tries": 1, "joins": 0, "lost": 0}
    assert out[5] == {"state": "down", "for_ms": 44000, "reason": "wrong_password", "tries": 8, "joins": 0,
                      "lost": 0}


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_a_lost_link_is_waited_on_while_connecting_then_tried_at_once_and_the_wait_starts_over(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run_policy(interpreter, device_root, tmp_path, [
        ["step", 0, IDLE], ["tried", 0], ["step", 3000, NO_AP], ["step", 5000, NO_AP], ["tried", 5000],  # 0..4
        ["step", 6000, GOT_IP], ["status", 9000],  # 5, 6: up; the try's reason is gone
        ["step", 600_000, CONNECTING], ["status", 601_000],  # 7, 8: lost; connecting: waited on
        ["step", 600_500, NO_AP],  # 9: checked once a second: not looked at yet
        ["step", 602_000, NO_AP], ["tried", 602_000],  # 10, 11: it failed: at once, the last try long past
        ["step", 603_000, NO_AP], ["step", 606_000, NO_AP], ["step", 607_000, NO_AP],  # 12..14: 5 s again
        ["status", 607_000], ["reason", 39], ["reason", 203], ["reason", 15],
    ])
    assert out[0] is True and out[2] is False and out[3] is True
    assert out[6] == {"state": "up", "for_ms": 3000, "reason": None, "tries": 2, "joins": 1, "lost": 0}
    assert out[7] is False
    assert out[8] == {"state": "joining", "for_ms": 1000, "reason": None, "tries": 2, "joins": 1, "lost": 1}
    assert out[9] is False and out[10] is True
    assert out[12:15] == [False, False, True]
    assert out[15] == {"state": "joining", "for_ms": 0, "reason": "no_ap_found", "tries": 3, "joins": 1,
                       "lost": 1}
    # 15: the AP gave up the WPA2 handshake, as it does for a wrong password (the port passes it through).
    assert out[16:] == ["reason 39", "connect_failed", "4way_handshake_timeout"]


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_a_loss_soon_after_a_join_that_took_long_is_retried_at_once(interpreter: str, device_root: Path,
                                                                     tmp_path: Path) -> None:
    out = run_policy(interpreter, device_root, tmp_path, [
        ["run", 0, 200_000, WRONG_PASSWORD],  # 0: the wait has grown to a minute; the last try at 195 s
        ["step", 201_000, GOT_IP], ["step", 210_000, BEACON_TIMEOUT], ["tried", 210_000],  # 1..3: up, lost, again
        ["step", 212_000, NO_AP], ["step", 215_000, NO_AP], ["status", 215_000],  # 4..6: 5 s after that try
    ])
    assert out[0][-1] == 195_000
    assert out[1:3] == [False, True]  # not at 255 s, where the failing tries before the join had put it
    assert out[4:6] == [False, True]
    assert out[6] == {"state": "joining", "for_ms": 0, "reason": "no_ap_found", "tries": 8, "joins": 1,
                      "lost": 1}


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_a_driver_that_refuses_counts_as_a_failed_try_and_the_name_comes_from_the_chip(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run_policy(interpreter, device_root, tmp_path, [
        ["step", 0, IDLE], ["failed", 0], ["status", 2000], ["step", 4000, IDLE], ["step", 5000, IDLE],
        ["hostname", [0x24, 0x0A, 0xC4, 0x00, 0x0B, 0xFF]],
    ])
    assert out[0] is True
    assert out[2] == {"state": "down", "for_ms": 2000, "reason": "driver_error", "tries": 1, "joins": 0, "lost": 0}
    assert out[3:5] == [False, True]
    assert out[5] == "loadmesh-000bff"


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_each_change_is_reported_once_and_a_failure_again_only_for_a_new_reason(
        interpreter: str, device_root: Path, tmp_path: Path) -> None:
    out = run_policy(interpreter, device_root, tmp_path, [
        ["step", 0, IDLE], ["tried", 0], ["change"],  # 0..2
        ["step", 1000, WRONG_PASSWORD], ["change"], ["wait", 1000],  # 3..5: failed; the next try in 4 s
        ["step", 2000, WRONG_PASSWORD], ["change"],  # 6, 7: the same, not again
        ["step", 5000, WRONG_PASSWORD], ["tried", 5000], ["change"], ["wait", 5000],  # 8..11: tried again
        ["step", 6000, WRONG_PASSWORD], ["change"], ["step", 7000, NO_AP], ["change"],  # 12..15: a new reason
        ["step", 8000, GOT_IP], ["change"], ["step", 9000, GOT_IP], ["change"],  # 16..19: up once, after 2 tries
        ["step", 10_000, BEACON_TIMEOUT], ["change"], ["tried", 10_000],  # 20..22: lost, telling why
        ["step", 11_000, BEACON_TIMEOUT], ["change"], ["step", 12_000, WRONG_PASSWORD], ["change"],  # 23..26
        ["failed", 15_000], ["change"], ["failed", 25_000], ["change"],  # 27..30: the radio refused, told once
        ["step", 26_000, GOT_IP], ["change"],  # 31, 32: up after 3 tries since the loss
    ])
    assert out[0] is True and out[2] == [None, 0]
    assert out[3:6] == [False, ["failed", 0], 4000]
    assert out[6:8] == [False, [None, 0]]
    assert out[8] is True and out[10:12] == [[None, 0], 10_000]
    assert out[12:16] == [False, [None, 0], False, ["failed", 0]]
    assert out[16:20] == [False, ["up", 2], False, [None, 2]]
    assert out[20:22] == [True, ["lost", 2]]
    assert out[23:27] == [False, [None, 2], False, ["failed", 2]]
    assert out[27:31] == [None, ["failed", 2], None, [None, 2]]
    assert out[31:] == [False, ["up", 3]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 7000), st.sampled_from([IDLE, CONNECTING, GOT_IP, NO_AP, WRONG_PASSWORD])),
                max_size=120))
def test_tries_are_never_closer_than_the_minimum_and_a_down_station_is_never_left_longer_than_the_maximum(
        changes: list[tuple[int, int]]) -> None:
    join = wifijoin.Join()
    now_ms = 0
    last_try_ms: int | None = None
    down_since_ms: int | None = None  # since when the driver has stopped trying and nothing was tried
    for gap_ms, code in changes:
        # The station holds code for gap_ms, polled every 100 ms as the node's tick does.
        for _ in range(0, gap_ms, 100):
            if join.step(now_ms, code):
                assert last_try_ms is None or now_ms - last_try_ms >= wifijoin.RETRY_MIN_MS
                join.tried(now_ms)
                last_try_ms = now_ms
                down_since_ms = None
            elif code in (IDLE, NO_AP, WRONG_PASSWORD):
                down_since_ms = now_ms if down_since_ms is None else down_since_ms
                assert now_ms - down_since_ms <= wifijoin.RETRY_MAX_MS + wifijoin.CHECK_MS
            else:
                down_since_ms = None
            now_ms += 100
        if gap_ms > wifijoin.CHECK_MS:  # looked at since the change: up exactly while the station has an address
            assert (join.state == wifijoin.UP) == (code == GOT_IP)


# The ESP32 HAL and a node against the faked radio (tests/nodeside/fakes/network.py).

PASSWORD = "correct horse battery"
VALVE_WIFI = {"hal": "esp32", "valve": {"kind": "servo", "pin": 14}, "wifi": {"ssid": "House", "password": PASSWORD}}
HOME = ["192.168.1.23", "255.255.255.0", "192.168.1.1", "192.168.1.1"]


def run_hal_console(device_root: Path, tmp_path: Path, hw: dict[str, object], steps: list[list[object]],
                    station: dict[str, object] | None = None) -> tuple[list[object], list[str]]:
    """The HAL on the node image against the faked radio: each step's result, and the lines it printed."""
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"hw": hw, "steps": steps, "station": station or {}}))
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "hal_esp32_check.py", str(path)),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    *console, last = result.stdout.splitlines()
    wifi = hw.get("wifi")
    password = wifi.get("password") if isinstance(wifi, dict) else None
    assert not password or all(password not in line for line in console), console
    out = json.loads(last)
    assert isinstance(out, list | dict)
    return out, console  # type: ignore[return-value]  # {"error": ...} when the wiring is refused


def run_hal(device_root: Path, tmp_path: Path, hw: dict[str, object], steps: list[list[object]],
            station: dict[str, object] | None = None) -> list[object]:
    return run_hal_console(device_root, tmp_path, hw, steps, station)[0]


def test_the_station_starts_named_and_awake_joins_tries_again_and_tells_what_it_has(device_root: Path,
                                                                                     tmp_path: Path) -> None:
    out = run_hal(device_root, tmp_path, VALVE_WIFI, [
        ["network"], ["poll", 0], ["network"], ["status"],  # 1..4
        ["disconnected", WRONG_PASSWORD], ["poll", 1000], ["poll", 4000], ["network"], ["status"],  # 5..9
        ["poll", 5000], ["network"], ["status"],  # 10..12
        ["got_ip", HOME], ["poll", 6000], ["status"],  # 13..15
        ["disconnected", BEACON_TIMEOUT], ["poll", 7000], ["status"], ["network"],  # 16..19
        ["poll", 9000], ["poll", 10_000], ["network"],  # 20..22
    ])
    # Built: the chip's name, the radio on, power save off, no reconnects of the driver's own.
    assert out[1] == {"calls": [["hostname", "loadmesh-5e1f07"], ["active", True],
                                ["config", {"pm": 0, "reconnects": 0}]],
                      "active": True, "hostname": "loadmesh-5e1f07"}
    assert out[3]["calls"] == [["connect", "House", PASSWORD]]  # type: ignore[index]
    assert out[4] == {"wifi": {"state": "joining", "for_ms": 0, "reason": None, "tries": 1, "joins": 0, "lost": 0,
                               "hostname": "loadmesh-5e1f07", "address": None, "rssi_dbm": None}}
    assert out[8]["calls"] == []  # type: ignore[index]  # the driver gave up: not again before 5 s
    assert out[9]["wifi"]["state"] == "down" and out[9]["wifi"]["reason"] == "wrong_password"  # type: ignore[index]
    # Again after 5 s, taken by a driver that stopped after its one attempt: with retries of its own left it
    # would still be at one, refuse this connect() ("Wifi Internal Error"), and the reason would be lost.
    assert out[11]["calls"] == [["connect", "House", PASSWORD]]  # type: ignore[index]
    wifi = out[12]["wifi"]  # type: ignore[index]
    assert (wifi["state"], wifi["reason"], wifi["tries"]) == ("joining", "wrong_password", 2)
    assert out[15] == {"wifi": {"state": "up", "for_ms": 0, "reason": None, "tries": 2, "joins": 1, "lost": 0,
                                "hostname": "loadmesh-5e1f07", "address": "192.168.1.23", "rssi_dbm": -61}}
    # Lost: the driver does not reassociate; the node does, 5 s after its last try.
    wifi = out[18]["wifi"]  # type: ignore[index]
    assert (wifi["state"], wifi["reason"], wifi["lost"], wifi["address"], wifi["rssi_dbm"]) == (
        "down", "beacon_timeout", 1, None, None)
    assert out[19]["calls"] == []  # type: ignore[index]
    assert out[22]["calls"] == [["connect", "House", PASSWORD]]  # type: ignore[index]


def test_the_console_tells_each_change_once_and_why_a_try_failed(device_root: Path, tmp_path: Path) -> None:
    # Each attempt the node starts fails as the driver tells (one attempt per connect(): reconnects=0).
    out, console = run_hal_console(device_root, tmp_path, VALVE_WIFI, [
        ["poll", 0], ["disconnected", WRONG_PASSWORD], ["ticks", 100, 5100],  # tried again at 5 s,
        ["disconnected", WRONG_PASSWORD], ["ticks", 5100, 15_100],  # 15 s
        ["disconnected", WRONG_PASSWORD], ["ticks", 15_100, 35_100],  # and 35 s, which joins:
        ["got_ip", HOME], ["ticks", 35_100, 50_000],  # up at 36 s (looked at once a second), then quiet
        ["disconnected", BEACON_TIMEOUT], ["ticks", 50_000, 51_500],  # lost at 50 s, tried again at once
        ["disconnected", NO_AP], ["ticks", 51_500, 55_100],  # a new reason at 52 s; tried again at 55 s
        ["got_ip", HOME], ["ticks", 55_100, 70_000], ["status"],  # up at 56 s
    ])
    assert console == [
        'loadmesh node: wifi joining "House" as loadmesh-5e1f07',
        'loadmesh node: wifi not joined to "House": wrong_password (is hw.json\'s wifi.password right?), '
        "trying again in 4 s",  # told once: not again at 5, 15 or 35 s, which failed the same way
        "loadmesh node: wifi up as loadmesh-5e1f07, 192.168.1.23, -61 dBm after 4 tries",
        "loadmesh node: wifi lost (beacon_timeout), joining again",
        'loadmesh node: wifi not joined to "House": no_ap_found (in range, and on 2.4 GHz? the ESP32 has no 5 GHz '
        "radio), trying again in 3 s",
        "loadmesh node: wifi up as loadmesh-5e1f07, 192.168.1.23, -61 dBm after 2 tries",
    ]
    wifi = out[-1]["wifi"]  # type: ignore[index]
    assert (wifi["state"], wifi["tries"], wifi["joins"], wifi["lost"]) == ("up", 6, 2, 1)


# MicroPython 1.25's esp32 port has WLAN.ipconfig() and network.ipconfig(), and ifconfig(), deprecated for them;
# a port before them has ifconfig() alone. The addresses read are the same either way; how they were read differs.
PORTS = {"ipconfig": ([], [["network.ipconfig", "dns"]], [["ipconfig", "gw4"]], [["ipconfig", "addr4"]]),
         "ifconfig_only": ([["ifconfig_only"]], [["ifconfig"]], [["ifconfig"]], [["ifconfig"]])}


@pytest.mark.parametrize("port", sorted(PORTS))
def test_the_clock_asks_the_dns_server_and_the_gateway_dhcp_gave_the_station(port: str, device_root: Path,
                                                                           tmp_path: Path) -> None:
    before, dns_reads, gateway_reads, _ = PORTS[port]
    hw = {**VALVE_WIFI, "clock": {"tz": "UTC0", "ntp": ["gateway", "de.pool.ntp.org"]}}
    out = run_hal(device_root, tmp_path, hw, [
        *before, ["clock", "dns_server"], ["clock", "gateway"], ["reads"],
        ["station", {"connected": True, "ifconfig": ["192.168.1.23", "255.255.255.0", "192.168.1.1", "192.168.1.53"]}],
        ["clock", "dns_server"], ["reads"], ["clock", "gateway"], ["reads"],
    ])[len(before):]
    assert out[1:4] == [None, None, []]  # not joined: neither yet, and nothing asked of the port
    assert out[5:] == ["192.168.1.53", dns_reads, "192.168.1.1", gateway_reads]


@pytest.mark.parametrize("port", sorted(PORTS))
def test_the_address_is_read_as_the_port_allows(port: str, device_root: Path, tmp_path: Path) -> None:
    before, _, _, address_reads = PORTS[port]
    out, console = run_hal_console(device_root, tmp_path, VALVE_WIFI, [
        *before, ["poll", 0], ["got_ip", HOME], ["reads"], ["poll", 1000], ["reads"], ["status"], ["reads"],
    ])
    out = out[len(before):]
    assert out[3] == []
    assert out[5] == address_reads  # for the console line
    assert out[6]["wifi"]["address"] == "192.168.1.23"  # type: ignore[index]
    assert out[7] == address_reads
    assert console[-1] == "loadmesh node: wifi up as loadmesh-5e1f07, 192.168.1.23, -61 dBm after 1 try"


# The port raises OSError for the ESP-IDF's Wi-Fi errors and RuntimeError for any other (ESP_ERR_NO_MEM when the
# radio starts on a tight heap): either is a failed try, never a node that will not boot or a halted tick.
REFUSALS = ["OSError", "RuntimeError"]


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_radio_that_will_not_start_is_started_by_the_next_try(refusal: str, device_root: Path,
                                                                tmp_path: Path) -> None:
    hw = {"hal": "esp32", "wifi": {"ssid": "House", "password": "", "hostname": "garage-evse"}}
    out = run_hal(device_root, tmp_path, hw, [
        ["network"], ["poll", 0], ["network"], ["status"],  # 1..4
        ["station", {"refuse": None}], ["poll", 4000], ["poll", 5000], ["network"],  # 5..8
    ], station={"refuse": "active", "refuse_with": refusal})
    assert out[1]["calls"] == [["hostname", "garage-evse"], ["active", True]]  # type: ignore[index]
    assert out[3]["calls"] == [["active", True]]  # type: ignore[index]  # named once
    assert out[4]["wifi"]["state"] == "down" and out[4]["wifi"]["reason"] == "driver_error"  # type: ignore[index]
    assert out[8]["calls"] == [["active", True],  # type: ignore[index]
                               ["config", {"pm": 0, "reconnects": wifijoin.DRIVER_RECONNECTS}],
                               ["connect", "House", ""]]


def test_a_station_a_boot_py_connected_is_up_though_it_could_not_be_set_up(device_root: Path,
                                                                            tmp_path: Path) -> None:
    # The user's boot.py joined (and is still associating when the HAL is built): config() is refused then.
    hw = {"hal": "esp32", "wifi": {"ssid": "House", "password": PASSWORD}}
    out, console = run_hal_console(device_root, tmp_path, hw, [
        ["network"], ["station", {"refuse": None, "connected": True, "ifconfig": HOME}], ["poll", 0], ["status"],
        ["poll", 1000], ["network"], ["disconnected", BEACON_TIMEOUT], ["poll", 2000], ["poll", 5000],  # 1..9
        ["network"],  # 10
    ], station={"refuse": "config", "active": True})
    assert [call[0] for call in out[1]["calls"]] == ["hostname", "active", "config"]  # type: ignore[index]
    wifi = out[4]["wifi"]  # type: ignore[index]
    assert (wifi["state"], wifi["address"], wifi["tries"]) == ("up", "192.168.1.23", 0)
    assert out[6]["calls"] == []  # type: ignore[index]  # up: nothing to try
    # Lost: the node's first try, which sets the radio up first; one line for the change, not a "joining" too.
    assert [call[0] for call in out[10]["calls"]] == ["active", "config", "connect"]  # type: ignore[index]
    assert console == ["loadmesh node: wifi up as loadmesh-5e1f07, 192.168.1.23, -61 dBm",
                       "loadmesh node: wifi lost (beacon_timeout), joining again"]


# What the port's exception says, on the console line of a refused connect().
REFUSED = {"OSError": "Wifi Internal State Error", "RuntimeError": "Wifi Unknown Error 0x0101"}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_connect_the_driver_refuses_is_a_failed_try(refusal: str, device_root: Path, tmp_path: Path) -> None:
    out, console = run_hal_console(device_root, tmp_path, VALVE_WIFI, [
        ["station", {"refuse": "connect", "refuse_with": refusal}], ["poll", 0], ["status"],  # 1..3
        ["station", {"refuse": None}], ["poll", 4000], ["poll", 5000], ["status"], ["network"],  # 4..8
    ])
    assert console == ['loadmesh node: wifi joining "House" as loadmesh-5e1f07',
                       f'loadmesh node: wifi not joined to "House": driver_error ({REFUSED[refusal]}), '
                       "trying again in 5 s"]
    wifi = out[3]["wifi"]  # type: ignore[index]
    assert (wifi["state"], wifi["reason"], wifi["tries"]) == ("down", "driver_error", 1)
    wifi = out[7]["wifi"]  # type: ignore[index]
    assert (wifi["state"], wifi["tries"]) == ("joining", 2)
    calls = out[8]["calls"]  # type: ignore[index]
    assert [call[0] for call in calls] == ["hostname", "active", "config", "connect", "connect"]


def _node(device_root: Path, tmp_path: Path, hw: dict[str, object],
          station: dict[str, object] | None = None) -> tuple[dict[str, object], str]:
    """A node booted on the ESP32 HAL against the faked radio, one tick: its /status, and all it printed."""
    root = tmp_path / "node"
    root.mkdir()
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(hw))
    station_path = tmp_path / "station.json"
    station_path.write_text(json.dumps(station or {}))
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "esp32_node_check.py", str(root),
                                           str(path), str(station_path)),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert isinstance(out, dict)
    return out, result.stdout + result.stderr


def test_a_nodes_status_tells_its_wifi_and_never_the_password(device_root: Path, tmp_path: Path) -> None:
    out, printed = _node(device_root, tmp_path, VALVE_WIFI)
    assert out["ticked"] is True and out["hw_error"] is None
    wifi = out["hal"]["wifi"]  # type: ignore[index]
    assert (wifi["state"], wifi["tries"], wifi["hostname"]) == ("joining", 1, "loadmesh-5e1f07")
    assert PASSWORD not in json.dumps(out["status"]) and PASSWORD not in printed.replace(
        json.dumps(out["driven"]), "")
    assert _wifi_lines(printed) == ['loadmesh node: wifi joining "House" as loadmesh-5e1f07']


def _wifi_lines(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if line.startswith("loadmesh node: wifi")]


def test_a_node_joined_before_it_booted_says_so_on_its_console(device_root: Path, tmp_path: Path) -> None:
    # A station a boot.py joined: up at the first tick, with no try of the node's own.
    out, printed = _node(device_root, tmp_path, VALVE_WIFI, {"active": True, "connected": True, "ifconfig": HOME})
    assert out["hal"]["wifi"]["state"] == "up"  # type: ignore[index]
    assert _wifi_lines(printed) == ["loadmesh node: wifi up as loadmesh-5e1f07, 192.168.1.23, -61 dBm"]


def test_a_node_whose_wiring_is_refused_still_joins_to_say_why_and_drives_nothing(device_root: Path,
                                                                                   tmp_path: Path) -> None:
    hw = {"hal": "esp32", "relay": {"pin": 15}, "wifi": {"ssid": "House", "password": PASSWORD}}  # pulled up at reset
    out, printed = _node(device_root, tmp_path, hw)
    assert str(out["hw_error"]).startswith("hw.relay.pin: 15 is pulled up at reset")
    assert out["hal"]["wifi"]["tries"] == 1  # type: ignore[index]
    assert out["driven"] == {}
    assert PASSWORD not in printed


BAD_WIFI = [
    # (the "wifi" part, the error)
    ({"ssid": "House"}, "hw.wifi.password: is missing: the network's passphrase, or \"\" for an open network"),
    ({"ssid": "House", "password": "hunter2"},
     "hw.wifi.password: has 7 characters; a passphrase has 8 to 63 (or the key: 64 hex digits; \"\" for an open "
     "network)"),
    ({"ssid": "House", "password": 12345678}, "hw.wifi.password: is not a string (write the passphrase in quotes)"),
    ({"ssid": "House", "password": "g" * 64},
     "hw.wifi.password: has 64 characters, so it is the key in hex, but not all are hex digits (a passphrase has 8 "
     "to 63 characters)"),
    ({"ssid": "House", "password": "pässwort123"},
     "hw.wifi.password: character 2 of 11 is not printable ASCII, which a passphrase is made of"),
    ({"password": PASSWORD}, "hw.wifi.ssid: is missing: the network's name"),
    ({"ssid": "", "password": PASSWORD}, "hw.wifi.ssid: \"\" is not a network name (a non-empty string)"),
    ({"ssid": "Wohnzimmer Straße Café 2,4 GHz!", "password": PASSWORD},
     "hw.wifi.ssid: \"Wohnzimmer Stra\\u00dfe Caf\\u00e9 2,4 GHz!\" is 33 bytes; a network name has at most 32"),
    ({"ssid": "House", "password": PASSWORD, "hostname": "-evse"},
     "hw.wifi.hostname: \"-evse\" is not a host name: 1 to 32 letters, digits and hyphens, not starting or ending "
     "with a hyphen"),
    ({"ssid": "House", "password": PASSWORD, "hostname": "garage_evse"},
     "hw.wifi.hostname: \"garage_evse\" is not a host name: 1 to 32 letters, digits and hyphens, not starting or "
     "ending with a hyphen"),
    ({"ssid": "House", "password": PASSWORD, "channel": 6}, "hw.wifi.channel: is not a known field"),
]


@pytest.mark.parametrize(("wifi", "error"), BAD_WIFI, ids=[e for _, e in BAD_WIFI])
def test_a_bad_wifi_part_names_the_field_and_never_shows_the_password(wifi: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError) as refused:
        hwconfig.parse({"hal": "esp32", "wifi": wifi})
    assert str(refused.value) == error
    password = wifi.get("password")
    assert not isinstance(password, str) or not password or password not in str(refused.value)


def test_the_node_refuses_a_bad_wifi_part_as_the_host_does(device_root: Path, tmp_path: Path) -> None:
    wifi, error = BAD_WIFI[4]
    assert run_hal(device_root, tmp_path, {"hal": "esp32", "wifi": wifi}, []) == {"error": error}


def test_good_wifi_parts_keep_what_they_name() -> None:
    key = "0123456789abcdef" * 3 + "0123456789ABCDEF"
    assert hwconfig.parse({"hal": "esp32", "wifi": {"ssid": "Café", "password": key}})["wifi"] == {
        "ssid": "Café", "password": key, "hostname": None}
    assert hwconfig.parse({"hal": "esp32", "wifi": {"ssid": "x" * 32, "password": "", "hostname": "a" * 32}})[
        "wifi"] == {"ssid": "x" * 32, "password": "", "hostname": "a" * 32}


# node.json's bind_host and http_host against the address DHCP gave: lwIP binds a socket to an address the node has
# not, and then every heartbeat the mesh sends is dropped, every connection to the HTTP API refused (docs/firmware.md,
# the node runtime). Flagged while they differ, not refused: the address comes after boot, and a new lease can change
# it.
def _hosts_node(device_root: Path, tmp_path: Path, hosts: dict[str, str], *addresses: str) -> tuple[list[str], object]:
    root = tmp_path / "node"
    root.mkdir()
    hw_path = tmp_path / "hw.json"
    hw_path.write_text(json.dumps({"hal": "esp32", "wifi": {"ssid": "House", "password": "correct horse"}}))
    node_path = tmp_path / "node.json"
    node_path.write_text(json.dumps(hosts))
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "hosts_check.py", str(root),
                                           str(hw_path), str(node_path), *addresses),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return [line for line in lines[:-1] if "_host" in line], json.loads(lines[-1])


BIND_WRONG = 'node.json bind_host: "192.168.1.23" is not this node\'s address (192.168.1.57): every heartbeat it ' \
             'sends is dropped (counters.mesh.send_errors); 0.0.0.0 binds any'
HTTP_WRONG = 'node.json http_host: "{}" is not this node\'s address ({}): its HTTP API is refused to every client ' \
             '(no /status, no config for its peers); 0.0.0.0 listens on any'


@pytest.mark.parametrize(("key", "wrong"), [("bind_host", BIND_WRONG),
                                            ("http_host", HTTP_WRONG.format("192.168.1.23", "192.168.1.57"))])
def test_a_host_that_is_not_the_nodes_address_is_flagged_while_it_is_not(device_root: Path, tmp_path: Path, key: str,
                                                                         wrong: str) -> None:
    # Not joined yet: nothing to compare. Its lease; a new lease with another address (no link lost); the link lost
    # (the last verdict stands: no address to compare); the old address again.
    lines, said = _hosts_node(device_root, tmp_path, {key: "192.168.1.23"}, "-", "192.168.1.23", "192.168.1.57", "-",
                              "192.168.1.23")
    assert said == [None, None, wrong, wrong, None]
    assert lines == ["loadmesh node: " + wrong,
                     "loadmesh node: node.json " + key + ': "192.168.1.23" is this node\'s address']


def test_both_hosts_are_held_against_the_same_address_each_said_when_its_own_verdict_changes(
        device_root: Path, tmp_path: Path) -> None:
    lines, said = _hosts_node(device_root, tmp_path, {"bind_host": "192.168.1.23", "http_host": "192.168.1.57"},
                              "192.168.1.23", "192.168.1.57", "192.168.1.23", "10.0.0.5")
    bind_wrong_then = BIND_WRONG.replace("192.168.1.57", "10.0.0.5")
    assert said == [HTTP_WRONG.format("192.168.1.57", "192.168.1.23"), BIND_WRONG,
                    HTTP_WRONG.format("192.168.1.57", "192.168.1.23"),
                    bind_wrong_then + "; " + HTTP_WRONG.format("192.168.1.57", "10.0.0.5")]
    assert lines == [
        "loadmesh node: " + HTTP_WRONG.format("192.168.1.57", "192.168.1.23"),
        "loadmesh node: " + BIND_WRONG,
        'loadmesh node: node.json http_host: "192.168.1.57" is this node\'s address',
        'loadmesh node: node.json bind_host: "192.168.1.23" is this node\'s address',
        "loadmesh node: " + HTTP_WRONG.format("192.168.1.57", "192.168.1.23"),
        "loadmesh node: " + bind_wrong_then,
        "loadmesh node: " + HTTP_WRONG.format("192.168.1.57", "10.0.0.5"),  # said again: another address
    ]


def test_the_default_hosts_are_never_flagged(device_root: Path, tmp_path: Path) -> None:
    lines, said = _hosts_node(device_root, tmp_path, {}, "192.168.1.57")
    assert (lines, said) == ([], [None])
