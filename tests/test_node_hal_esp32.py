"""The ESP32 HAL on the unix port, with machine, network and onewire faked at the peripheral boundary."""

from __future__ import annotations

import calendar
import json
import math
import socket
import subprocess
from pathlib import Path

import pytest

from loadmesh.node import hwconfig, signals

from . import mpnode

ZERO_UV = 1300000  # the default CP front end: 0 V on CP
UV_PER_V = 87500


def cp_uv(volts: float) -> int:
    return round(ZERO_UV + volts * UV_PER_V)


def run_hal(device_root: Path, tmp_path: Path, hw: dict[str, object], steps: list[list[object]],
            chip: dict[str, object] | None = None) -> list[object]:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"hw": hw, "steps": steps, "machine": chip or {}}))
    (out,) = mpnode.run("hal_esp32_check.py", str(path), device_root=device_root, fakes=True)
    assert isinstance(out, list | dict)
    return out  # type: ignore[return-value]


EVSE = {"hal": "esp32", "pilot": {"pwm_pin": 25, "adc_pin": 36}, "relay": {"pin": 26},
        "ct": [{"pin": 32, "ma_per_v": 30000}, None, None]}
# A 1 kHz pilot seen by a burst of ADC reads: 3 samples at the high level, 7 at the low one.
C_WITH_DIODE = [cp_uv(6)] * 3 + [cp_uv(-12)] * 7
C_WITHOUT_DIODE = [cp_uv(6)] * 3 + [cp_uv(-8.8)] * 7
# One mains cycle through a CT: 1000 mV peak around the 1.65 V bias, 100 samples.
CT_SINE = [(1650 + round(1000 * math.sin(2 * math.pi * k / 100))) * 1000 for k in range(100)]


def test_evse_pilot_relay_and_ct(device_root: Path, tmp_path: Path) -> None:
    out = run_hal(device_root, tmp_path, EVSE, [
        ["set_pilot_ma", 16000], ["outputs"],
        ["adc", 36, C_WITH_DIODE], ["adc", 32, CT_SINE], ["poll", 0], ["pilot_state"], ["current_ma"],
        ["adc", 36, C_WITHOUT_DIODE], ["poll", 100], ["pilot_state"],
        ["set_relay", True], ["outputs"],
        ["safe"], ["feed_watchdog"], ["feed_watchdog"], ["outputs"],
    ])
    booted = out[0]
    # No charging from the first instant: constant high at 1 kHz, relay open, watchdog running.
    assert booted == {"pwm": {"25": {"freq": 1000, "duty_u16": 65535, "duty_ns": None}}, "pins": {"26": 0},
                      "wdt": {"timeout": 2000, "feeds": 0}}
    assert out[1] == 266  # per mille for 16 A
    assert out[2]["pwm"]["25"]["duty_u16"] == 17432  # type: ignore[index]
    assert out[6] == "C"
    # 707 mV RMS through a 30 A/V CT on L1; L2 and L3 have none.
    assert out[7] == [21210, None, None]
    assert out[10] == "E"  # the negative half is not clamped: no vehicle diode
    assert out[12]["pins"] == {"26": 1}  # type: ignore[index]
    assert out[16] == {"pwm": {"25": {"freq": 1000, "duty_u16": 65535, "duty_ns": None}}, "pins": {"26": 0},
                       "wdt": {"timeout": 2000, "feeds": 2}}


def test_an_inverting_pilot_driver(device_root: Path, tmp_path: Path) -> None:
    hw = {"hal": "esp32", "pilot": {"pwm_pin": 25, "adc_pin": 36, "inverted": True}}
    out = run_hal(device_root, tmp_path, hw, [["set_pilot_ma", 16000], ["outputs"], ["set_pilot_ma", 3000],
                                              ["outputs"]])
    assert out[0]["pwm"]["25"]["duty_u16"] == 0  # type: ignore[index]
    assert out[2]["pwm"]["25"]["duty_u16"] == 65535 - 17432  # type: ignore[index]
    assert out[3] == 1000  # below 6 A: no charging
    assert out[4]["pwm"]["25"]["duty_u16"] == 0  # type: ignore[index]


ROOM_ROM = "28ff4a1b03170467"


def _scratch(raw: int) -> list[int]:
    data = bytes([raw & 0xFF, (raw >> 8) & 0xFF, 0x4B, 0x46, 0x7F, 0xFF, 0x01, 0x10])
    return [*data, signals.crc8_dallas(data)]


def test_servo_valve_with_feedback_and_a_room_sensor(device_root: Path, tmp_path: Path) -> None:
    hw = {"hal": "esp32", "wdt_ms": 3000,
          "valve": {"kind": "servo", "pin": 14, "feedback": {"kind": "adc", "pin": 35, "closed_mv": 300,
                                                             "open_mv": 2900}},
          "onewire": {"pin": 4, "sensors": {"room": ROOM_ROM}}}
    out = run_hal(device_root, tmp_path, hw, [
        ["set_valve_pct", 50], ["outputs"], ["adc", 35, [1600000]], ["valve_pct"],
        ["scratch", ROOM_ROM, _scratch(0x0191)], ["poll", 0], ["temperature_dc", "room"],
        ["poll", 100], ["temperature_dc", "room"], ["temperature_dc", "flow"],
        ["bus", False], ["poll", 1100], ["temperature_dc", "room"],
    ])
    # Closed at boot: the closed pulse at 50 Hz.
    assert out[0]["pwm"] == {"14": {"freq": 50, "duty_u16": None, "duty_ns": 1000000}}  # type: ignore[index]
    assert out[0]["wdt"]["timeout"] == 3000  # type: ignore[index]
    assert out[2]["pwm"]["14"]["duty_ns"] == 1500000  # type: ignore[index]
    assert out[4] == 50
    assert out[7] is None  # converting: nothing read yet
    assert out[9] == 251  # 25.0625 C
    assert out[10] is None  # no flow sensor on this node
    assert out[13] is None  # the bus is gone: unknown, not the last value


def test_a_feedback_line_out_of_range_reads_unknown(device_root: Path, tmp_path: Path) -> None:
    # A valve whose feedback falls as it opens (2.9 V closed, 0.3 V open): a broken
    # or grounded feedback wire reads 0 V, which clamping took for fully open.
    hw = {"hal": "esp32", "valve": {"kind": "pwm", "pin": 14, "feedback": {"kind": "adc", "pin": 35,
                                                                           "closed_mv": 2900, "open_mv": 300}}}
    out = run_hal(device_root, tmp_path, hw, [
        ["adc", 35, [0]], ["valve_pct"], ["adc", 35, [3300000]], ["valve_pct"],
        ["adc", 35, [250000]], ["valve_pct"], ["adc", 35, [1600000]], ["valve_pct"],
    ])
    assert out[2] is None  # 0 V: the wire is broken or grounded, the position unknown (not 100)
    assert out[4] is None  # 3.3 V: shorted to the supply
    assert out[6] == 100  # 50 mV past the open end: within the margin, open
    assert out[8] == 50


def test_an_end_switchs_input_gets_the_pull_the_wiring_names(device_root: Path, tmp_path: Path) -> None:
    switch = {"kind": "switch", "pin": 33, "open_level": 0}
    for pull, expected in (("up", {"33": "up"}), ("down", {"33": "down"}), (None, {})):
        hw = {"hal": "esp32", "valve": {"kind": "relay", "pin": 13, "feedback": dict(switch, pull=pull)}}
        assert run_hal(device_root, tmp_path, hw, [["pulls"]])[1] == expected, pull
    # Absent is none too, as before the field: the pin is built without a pull argument.
    hw = {"hal": "esp32", "valve": {"kind": "relay", "pin": 13, "feedback": switch}}
    assert run_hal(device_root, tmp_path, hw, [["pulls"]])[1] == {}


FLOW_ROM = "28aa5c1b03170411"


def test_a_ds18b20s_power_on_value_is_unknown_until_a_conversion_completed(device_root: Path,
                                                                           tmp_path: Path) -> None:
    hw = {"hal": "esp32", "onewire": {"pin": 4, "sensors": {"flow": FLOW_ROM}}}
    out = run_hal(device_root, tmp_path, hw, [
        ["scratch", FLOW_ROM, _scratch(0x0550)],
        # Converting from 0 ms; the flow sensor (the second slot) is read at 200 ms.
        ["poll", 0], ["poll", 100], ["poll", 200], ["temperature_dc", "flow"],
        # The first conversion completed at 750 ms: a real 85.0 C is taken from then on.
        ["poll", 1000], ["poll", 1100], ["poll", 1200], ["temperature_dc", "flow"],
        # The bus goes and comes back (the sensors may have lost power): refused again until it has converted.
        ["bus", False], ["poll", 2000], ["bus", True],
        ["poll", 3000], ["poll", 3100], ["poll", 3200], ["temperature_dc", "flow"],
        ["poll", 4000], ["poll", 4100], ["poll", 4200], ["temperature_dc", "flow"],
    ])
    assert out[5] is None  # the power-on 0x0550, read before any conversion completed
    assert out[9] == 850
    assert out[16] is None
    assert out[20] == 850


def test_relay_valve_with_an_end_switch_and_an_active_low_boiler_relay(device_root: Path, tmp_path: Path) -> None:
    # The end switch on an input-only pin (an input needs no output driver); the
    # active-low boiler relay on GPIO 15, pulled up at reset: off until driven.
    hw = {"hal": "esp32", "valve": {"kind": "relay", "pin": 13, "feedback": {"kind": "switch", "pin": 39}},
          "boiler": {"pin": 15, "active_high": False}}
    out = run_hal(device_root, tmp_path, hw, [
        ["set_valve_pct", 30], ["outputs"], ["level", 39, 1], ["valve_pct"], ["level", 39, 0], ["valve_pct"],
        ["set_boiler_call", True], ["outputs"], ["safe"], ["outputs"],
    ])
    assert out[0]["pins"] == {"13": 0, "15": 1}  # type: ignore[index]
    assert out[2]["pins"]["13"] == 1  # type: ignore[index]
    assert out[4] == 100 and out[6] == 0
    assert out[8]["pins"]["15"] == 0  # type: ignore[index]
    assert out[10]["pins"] == {"13": 0, "39": 0, "15": 1}  # type: ignore[index]


def test_a_boiler_with_a_setpoint_input(device_root: Path, tmp_path: Path) -> None:
    hw = {"hal": "esp32", "boiler": {"pin": 27}, "setpoint": {"pin": 33, "low_dc": 200, "high_dc": 900}}
    out = run_hal(device_root, tmp_path, hw, [
        ["set_boiler_call", True], ["set_flow_setpoint_dc", 700], ["outputs"],
        ["set_flow_setpoint_dc", 300], ["outputs"], ["set_flow_setpoint_dc", 1200], ["outputs"],
        ["safe"], ["outputs"],
    ])
    # 0 V at boot, 1 kHz into the PWM-to-0-10 V converter.
    assert out[0]["pwm"] == {"33": {"freq": 1000, "duty_u16": 0, "duty_ns": None}}  # type: ignore[index]
    assert out[3]["pwm"]["33"]["duty_u16"] == 500 * 65535 // 700  # type: ignore[index]
    assert out[3]["pins"] == {"27": 1}  # type: ignore[index]
    assert out[5]["pwm"]["33"]["duty_u16"] == 100 * 65535 // 700  # type: ignore[index]
    assert out[7]["pwm"]["33"]["duty_u16"] == 65535  # type: ignore[index]  # the top of its scale, no more
    assert out[9]["pwm"]["33"]["duty_u16"] == 0 and out[9]["pins"] == {"27": 0}  # type: ignore[index]


def test_the_flame_input_is_pulled_and_a_change_taken_once_it_holds(device_root: Path, tmp_path: Path) -> None:
    # An optocoupler that pulls the input low while the burner is lit, the chip's pull-up otherwise.
    hw = {"hal": "esp32", "boiler": {"pin": 26}, "flame": {"pin": 33, "lit_level": 0, "pull": "up"}}
    out = run_hal(device_root, tmp_path, hw, [
        ["flame"], ["pulls"], ["level", 33, 0], ["poll", 0], ["flame"],
        ["level", 33, 1], ["poll", 100], ["flame"], ["poll", 200], ["flame"], ["poll", 300], ["flame"],
        ["level", 33, 0], ["poll", 400], ["level", 33, 1], ["poll", 500], ["poll", 600], ["flame"],
        ["level", 33, 0], ["poll", 700], ["poll", 800], ["poll", 900], ["flame"], ["week_ms"], ["status"],
    ])
    assert out[1] is None  # not read yet
    assert out[2] == {"33": "up"}
    assert out[5] is True  # the first read is taken as it is
    assert out[8] is True and out[10] is True and out[12] is False  # out after three reads in a row
    assert out[18] is False  # one read of a glitch is not the flame lighting
    assert out[23] is True
    assert out[24] is None and out[25] is None  # no clock wired: no time of week, nothing to tell


def test_no_flame_input_is_none(device_root: Path, tmp_path: Path) -> None:
    out = run_hal(device_root, tmp_path, {"hal": "esp32", "boiler": {"pin": 26}}, [["poll", 0], ["flame"]])
    assert out[2] is None


def test_the_clock_syncs_from_the_gateway_once_the_wifi_is_up(device_root: Path, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monday_s = calendar.timegm((2026, 1, 5, 6, 30, 0))  # Monday 07:30 CET
    hw = {"hal": "esp32", "valve": {"kind": "servo", "pin": 14}, "clock": {"tz": "CET-1CEST,M3.5.0,M10.5.0/3"}}
    out = run_hal(device_root, tmp_path, hw, [
        ["poll", 0], ["week_ms"], ["wifi", "127.0.0.1"], ["ntp_port", port], ["poll", 14_999],
        ["poll", 15_000], ["ntp_answer", monday_s], ["poll", 15_100], ["week_ms"], ["status"],
        ["poll", 60_000], ["week_ms"],
    ])
    assert out[2] is None  # no Wi-Fi, no gateway, no time: the schedules' default targets
    # Sent at 15,000, read at 15,100: half the round trip added.
    assert out[9] == 7 * 3_600_000 + 30 * 60_000 + 50
    status = out[10]
    assert isinstance(status, dict)
    clock = status["clock"]
    assert clock["counts"] == {"no_address": 1, "sent": 1, "good": 1}
    assert clock["source"] == "127.0.0.1" and clock["unix_s"] == monday_s
    assert out[12] == 7 * 3_600_000 + 30 * 60_000 + 50 + 44_900  # on the monotonic clock since


def test_a_nodes_status_tells_its_clock(device_root: Path, tmp_path: Path) -> None:
    # The runtime on the ESP32 HAL: a tick polls the clock, and /status says what it has ("hal").
    root = tmp_path / "node"
    root.mkdir()
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"hal": "esp32", "flame": {"pin": 33}, "clock": {"tz": "UTC0"}}))
    result = subprocess.run(mpnode.command(mpnode.node_image(device_root), "esp32_node_check.py", str(root), str(hw)),
                            capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["ticked"] is True and out["hw_error"] is None
    assert out["hal"]["clock"] == {"week_ms": None, "unix_s": None, "synced_ago_ms": None, "source": None,
                                   "waiting": False, "counts": {"no_address": 1}, "denied": []}


UNCALIBRATED = {"adc_calibrated": {"ok": False}}


@pytest.mark.parametrize(("hw", "field"), [
    (EVSE, "hw.pilot.adc_pin: 36"),
    ({"hal": "esp32", "ct": [None, {"pin": 33, "ma_per_v": 30000}]}, "hw.ct[1].pin: 33"),
    ({"hal": "esp32", "valve": {"kind": "servo", "pin": 14, "feedback": {"kind": "adc", "pin": 35, "closed_mv": 300,
                                                                        "open_mv": 2900}}},
     "hw.valve.feedback.pin: 35"),
])
def test_an_adc_the_chip_cannot_read_in_volts_is_named_at_boot(device_root: Path, tmp_path: Path,
                                                               hw: dict[str, object], field: str) -> None:
    # An ESP32 whose eFuses hold no ADC calibration: the port's read_uv() raises OSError at every read
    # (ports/esp32/adc.c ensure_adc_calibration()). Raised in the first tick instead, it halted the node, whose
    # watchdog then reset it into the same tick, over and over, saying only "tick: 258".
    out = run_hal(device_root, tmp_path, hw, [["poll", 0]], chip=UNCALIBRATED)
    # Refused as a wiring hwconfig refuses: before anything is driven or the watchdog started (the runtime's
    # stand-in HAL for a refused wiring does not feed it).
    # (The check script adds what was driven and the watchdog's timeout to a refusal only when there are some.)
    assert out == {"error": field + " cannot be read in volts (read_uv raised OSError 258): this ESP32's eFuses "
                   "hold no ADC calibration"}


PSRAM = {"board": {"psram": True}}


@pytest.mark.parametrize(("hw", "field"), [
    ({"hal": "esp32", "pilot": {"pwm_pin": 25, "adc_pin": 36}, "relay": {"pin": 16}}, "hw.relay.pin: 16"),
    ({"hal": "esp32", "relay": {"pin": 26}, "onewire": {"pin": 17, "sensors": {"room": "28ff4a1b03170467"}}},
     "hw.onewire.pin: 17"),
])
def test_a_pin_the_board_has_not_is_named_at_boot(device_root: Path, tmp_path: Path, hw: dict[str, object],
                                                  field: str) -> None:
    # A board with PSRAM (an ESP32-WROVER) has no Pin for GPIO 16 and 17 (ports/esp32/machine_pin.h, CONFIG_SPIRAM);
    # hwconfig cannot know the build. The port's "invalid pin" came from the middle of building the outputs,
    # naming no field, with the pilot already driven and the watchdog started: the node's stand-in HAL for a
    # refused wiring does not feed it, and the board reset every wdt_ms into the same refusal.
    out = run_hal(device_root, tmp_path, hw, [], chip=PSRAM)
    # (The check script adds what was driven and the watchdog's timeout to a refusal only when there are some.)
    assert out == {"error": field + " is not a GPIO of this board (the port says invalid pin; on a board with "
                   "PSRAM GPIO 16 and 17 carry it)"}
    # The same wiring on a board without PSRAM is built.
    assert "error" not in run_hal(device_root, tmp_path, hw, [["outputs"]])


def test_the_wiring_with_a_flame_input_and_a_clock_gets_its_defaults() -> None:
    wiring = hwconfig.parse({"hal": "esp32", "flame": {"pin": 34}, "clock": {"tz": "GMT0BST,M3.5.0/1,M10.5.0"}})
    assert wiring["flame"] == {"pin": 34, "lit_level": 1, "pull": None}
    assert wiring["clock"] == {"tz": "GMT0BST,M3.5.0/1,M10.5.0", "ntp": ["gateway"]}
    two = hwconfig.parse({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["192.168.1.1", "gateway", "10.0.0.2"]}})
    assert two["clock"] == {"tz": "UTC0", "ntp": ["192.168.1.1", "gateway", "10.0.0.2"]}


# A PWM's first period is the port's, not the HAL's: ESP32's machine.PWM starts the LEDC channel at half its
# timer's range before the duty it is given (ports/esp32/machine_pwm.c configure_channel(); the fake records
# ["first_period", None]). No call the port offers avoids it; the test allows it right before a safe duty only.
FIRST = ["first_period", None]
BOOT_WIRINGS = [
    # (about, wiring, every output pin -> the only things it may drive from power-up until a driver is called)
    ("an EVSE: pilot constant high, active-high contactor open", EVSE,
     {"25": [["level", 1], FIRST, ["duty_u16", 65535]], "26": [["level", 0]]}),
    ("an inverting pilot driver, an active-low contactor",
     {"hal": "esp32", "pilot": {"pwm_pin": 25, "adc_pin": 36, "inverted": True},
      "relay": {"pin": 26, "active_high": False}},
     {"25": [["level", 0], FIRST, ["duty_u16", 0]], "26": [["level", 1]]}),
    ("an active-low burner call, an active-low valve relay, the setpoint at 0 V",
     {"hal": "esp32", "boiler": {"pin": 27, "active_high": False}, "setpoint": {"pin": 33},
      "valve": {"kind": "relay", "pin": 14, "active_high": False}},
     {"27": [["level", 1]], "33": [["level", 0], FIRST, ["duty_u16", 0]], "14": [["level", 1]]}),
    ("an inverted PWM valve input: closed is full scale",
     {"hal": "esp32", "valve": {"kind": "pwm", "pin": 14, "active_high": False}},
     {"14": [["level", 1], FIRST, ["duty_u16", 65535]]}),
    ("a servo valve: the closed pulse, never none or 0 %",
     {"hal": "esp32", "valve": {"kind": "servo", "pin": 14, "closed_us": 1200, "open_us": 1800}},
     {"14": [["level", 0], FIRST, ["duty_ns", 1200000]]}),
]


@pytest.mark.parametrize(("hw", "off"), [(hw, off) for _, hw, off in BOOT_WIRINGS],
                         ids=[about for about, _, _ in BOOT_WIRINGS])
def test_every_output_is_off_from_its_first_instant(device_root: Path, tmp_path: Path, hw: dict[str, object],
                                                    off: dict[str, list[list[object]]]) -> None:
    # Everything each output drove while the HAL was built and made safe, as the
    # fake machine module recorded it (a Pin built as an output without value=
    # drives 0 on the ESP32 until told otherwise: "on" for an active-low relay).
    (history,) = run_hal(device_root, tmp_path, hw, [["history"]])[1:]
    assert isinstance(history, dict)
    assert sorted(history) == sorted(off)
    for pin, driven in history.items():
        assert driven, pin
        assert all(event in off[pin] for event in driven), (pin, driven)
        for index, event in enumerate(driven):
            if event == FIRST:  # the port's first period, then at once the safe duty the PWM was built with
                assert driven[index + 1][0] in ("duty_u16", "duty_ns"), (pin, driven)


BAD_WIRING = [
    # (wiring, the error)
    ({"hal": "esp32", "pilot": {"pwm_pin": 45, "adc_pin": 36}}, "hw.pilot.pwm_pin: 45 is out of range 0..39"),
    ({"hal": "esp32", "valve": {"kind": "stepper", "pin": 1}},
     "hw.valve.kind: \"stepper\" is not one of pwm|servo|relay"),
    ({"hal": "esp32", "wdt_ms": 500}, "hw.wdt_ms: 500 is out of range 1000..8000"),
    ({"hal": "esp32", "ct": [None, None, None, None]}, "hw.ct: has 4 entries; one per phase, at most 3"),
    ({"hal": "esp32", "onewire": {"pin": 4, "sensors": {"attic": ROOM_ROM}}},
     "hw.onewire.sensors.attic: is not a known field"),
    ({"hal": "esp32", "mains_hz": 55}, "hw.mains_hz: 55 is not 50 or 60"),
    ({"hal": "esp32", "pilot": {"pwm_pin": 25}}, "hw.pilot.adc_pin: is missing"),
    ({"hal": "spi"}, "hw.hal: \"spi\" is not one of esp32, sim, none"),
    ({"hal": "esp32", "setpoint": {"pin": 33, "low_dc": 900, "high_dc": 200}},
     "hw.setpoint.high_dc: 200 is not above low_dc 900"),
    ({"hal": "esp32", "setpoint": {"pin": 33, "volts": 10}}, "hw.setpoint.volts: is not a known field"),
    ({"hal": "esp32", "pilot": {"pwm_pin": 36, "adc_pin": 39}},
     "hw.pilot.pwm_pin: 36 is input only (GPIO 34..39); an output needs another pin"),
    ({"hal": "esp32", "ct": [{"pin": 25, "ma_per_v": 30000}]},
     "hw.ct[0].pin: 25 is not an ADC1 pin (GPIO 32..39); ADC2 cannot be read while Wi-Fi runs"),
    ({"hal": "esp32", "relay": {"pin": 26}, "boiler": {"pin": 26}},
     "hw.boiler.pin: 26 is already used by hw.relay.pin"),
    ({"hal": "esp32", "valve": {"kind": "servo", "pin": 14, "feedback": {"kind": "adc", "pin": 35, "closed_mv": 300,
                                                                        "open_mv": 2900}},
      "ct": [None, {"pin": 35, "ma_per_v": 30000}]}, "hw.ct[1].pin: 35 is already used by hw.valve.feedback.pin"),
    ({"hal": "esp32", "onewire": {"pin": 7, "sensors": {}}},
     "hw.onewire.pin: 7 is wired to the module's flash (GPIO 6..11)"),
    ({"hal": "esp32", "valve": {"kind": "servo", "pin": 1}}, "hw.valve.pin: 1 is the console's UART (GPIO 1 and 3)"),
    ({"hal": "esp32", "valve": {"kind": "relay", "pin": 25, "feedback": {"kind": "switch", "pin": 12}}},
     "hw.valve.feedback.pin: 12 is a strapping pin (GPIO 0 and 12): what is wired to it can keep the node from "
     "booting"),
    ({"hal": "esp32", "valve": {"kind": "relay", "pin": 25, "feedback": {"kind": "switch", "pin": 33,
                                                                         "pull": "sideways"}}},
     "hw.valve.feedback.pull: \"sideways\" is not one of up|down"),
    ({"hal": "esp32", "valve": {"kind": "relay", "pin": 25, "feedback": {"kind": "switch", "pin": 39, "pull": "up"}}},
     "hw.valve.feedback.pull: \"up\": GPIO 39 has no internal pull (GPIO 34..39); fit a resistor, or use another pin"),
    ({"hal": "esp32", "valve": {"kind": "servo", "pin": 14, "feedback": {"kind": "adc", "pin": 35, "closed_mv": 300,
                                                                        "open_mv": 2900, "pull": "down"}}},
     "hw.valve.feedback.pull: is for an end switch (kind switch) only: a pull would shift an ADC feedback's voltage"),
    ({"hal": "esp32", "relay": {"pin": 15}},
     "hw.relay.pin: 15 is pulled up at reset (GPIO 5, 13, 15): an active-high relay there can switch on at every "
     "restart; use another pin or an active-low relay"),
    ({"hal": "esp32", "boiler": {"pin": 4, "active_high": False}},
     "hw.boiler.pin: 4 is pulled down at reset (GPIO 2, 4): an active-low relay there can switch on at every "
     "restart; use another pin or an active-high relay"),
    ({"hal": "esp32", "flame": {"pin": 12}},
     "hw.flame.pin: 12 is a strapping pin (GPIO 0 and 12): what is wired to it can keep the node from booting"),
    ({"hal": "esp32", "relay": {"pin": 26}, "flame": {"pin": 26}}, "hw.flame.pin: 26 is already used by hw.relay.pin"),
    ({"hal": "esp32", "flame": {"pin": 36, "pull": "down"}},
     "hw.flame.pull: \"down\": GPIO 36 has no internal pull (GPIO 34..39); fit a resistor, or use another pin"),
    ({"hal": "esp32", "flame": {"pin": 33, "lit_level": 2}}, "hw.flame.lit_level: 2 is out of range 0..1"),
    ({"hal": "esp32", "clock": {}},
     "hw.clock.tz: is missing: the house's time zone as a POSIX TZ string, e.g. CET-1CEST,M3.5.0,M10.5.0/3"),
    ({"hal": "esp32", "clock": {"tz": "Europe/London"}},
     "hw.clock.tz: \"Europe/London\" is a zone name; the node has no tz database: give the zone's POSIX TZ string, "
     "the last line of its file: tail -n1 /usr/share/zoneinfo/Europe/London (for Europe/Berlin: "
     "CET-1CEST,M3.5.0,M10.5.0/3)"),
    ({"hal": "esp32", "clock": {"tz": "CET-1CEST"}},
     "hw.clock.tz: \"CET-1CEST\" has daylight saving time without its rules (add ,start[/time],end[/time], e.g. "
     ",M3.5.0,M10.5.0/3)"),
    ({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["pool..ntp.org"]}},
     "hw.clock.ntp[0]: \"pool..ntp.org\" is not an IPv4 address, \"gateway\" or a host name: it has an empty label "
     "(two dots in a row, or a dot at an end)"),
    ({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["192.168.1.1", "224.0.1.1"]}},
     "hw.clock.ntp[1]: \"224.0.1.1\" is not a unicast IPv4 address (1..223.0..255.0..255.0..255, no leading zeros)"),
    ({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": []}}, "hw.clock.ntp: has 0 entries; 1 to 3 servers"),
    ({"hal": "esp32", "clock": {"tz": "UTC0", "ntp": ["gateway", "gateway"]}},
     "hw.clock.ntp[1]: \"gateway\" is listed twice"),
    ({"hal": "esp32", "clock": {"tz": "UTC0", "server": "10.0.0.1"}}, "hw.clock.server: is not a known field"),
    # What the ESP32 port itself refuses, named before it can: machine.Pin has no GPIO 24 or 28..31
    # (ports/esp32/machine_pin.h), and a servo pulse must fit in its period (machine_pwm.c set_duty_ns()).
    ({"hal": "esp32", "relay": {"pin": 24}},
     "hw.relay.pin: 24 is not a GPIO of the ESP32 (it has none of 24 and 28..31)"),
    ({"hal": "esp32", "flame": {"pin": 30}},
     "hw.flame.pin: 30 is not a GPIO of the ESP32 (it has none of 24 and 28..31)"),
    ({"hal": "esp32", "valve": {"kind": "servo", "pin": 14, "freq_hz": 500, "open_us": 2000}},
     "hw.valve.open_us: 2000 is not shorter than a period at freq_hz 500 (2000 us)"),
    ({"hal": "esp32", "valve": {"kind": "servo", "pin": 14, "freq_hz": 1000}},
     "hw.valve.closed_us: 1000 is not shorter than a period at freq_hz 1000 (1000 us)"),
]


@pytest.mark.parametrize(("hw", "error"), BAD_WIRING, ids=[e for _, e in BAD_WIRING])
def test_bad_wiring_names_the_field(device_root: Path, tmp_path: Path, hw: dict[str, object], error: str) -> None:
    out = run_hal(device_root, tmp_path, hw, [])
    assert out == {"error": error}  # and nothing driven, no watchdog started (the check script would say)


# An ESP-IDF driver's error while the HAL builds: the port's check_esp_err() raises OSError (ports/esp32/
# mphalport.c), from machine.PWM when the LEDC refuses a new timer's frequency (ledc_timer_config) or a duty
# (ledc_set_duty), both after it routed the channel to the pin, and from machine.WDT (machine_wdt.c). It ended the
# node's boot: on a board main.py stopped at the REPL, no radio or API to say why, the pin at the LEDC's half duty.
SERVO = {"hal": "esp32", "boiler": {"pin": 27}, "valve": {"kind": "servo", "pin": 14}}
DRIVER_ERRORS = [
    # (about, wiring, the ESP-IDF call failing and its esp_err_t, the error, every output pin -> what it drove)
    ("the pilot's LEDC timer", EVSE, ("ledc_timer_config", 0x103),
     "hw.pilot.pwm_pin: 25: the ESP-IDF LEDC driver failed building its PWM (OSError -259 ESP_ERR_INVALID_STATE)",
     {"25": [["level", 1], FIRST, ["level", 1]]}),
    ("the setpoint's duty", {"hal": "esp32", "boiler": {"pin": 27}, "setpoint": {"pin": 33}},
     ("ledc_set_duty", 0x101), "hw.setpoint.pin: 33: the ESP-IDF LEDC driver failed building its PWM (OSError 12 "
     "ESP_ERR_NO_MEM)", {"27": [["level", 0]], "33": [["level", 0], FIRST, ["level", 0]]}),
    ("a servo's pulse", SERVO, ("ledc_set_duty", 0x107),
     "hw.valve.pin: 14: the ESP-IDF LEDC driver failed building its PWM (OSError 110 ESP_ERR_TIMEOUT)",
     {"27": [["level", 0]], "14": [["level", 0], FIRST, ["level", 0]]}),
    ("the task watchdog", EVSE, ("esp_task_wdt_reconfigure", 0x103),
     "hw.wdt_ms: 2000: the ESP-IDF task watchdog failed to start (OSError 259)",
     # built, set again by safe(), and only then the watchdog
     {"25": [["level", 1], FIRST, ["duty_u16", 65535], ["duty_u16", 65535]], "26": [["level", 0], ["level", 0]]}),
]


@pytest.mark.parametrize(("hw", "failing", "error", "driven"), [case[1:] for case in DRIVER_ERRORS],
                         ids=[case[0] for case in DRIVER_ERRORS])
def test_a_drivers_error_while_building_refuses_the_wiring_naming_the_field(
        device_root: Path, tmp_path: Path, hw: dict[str, object], failing: tuple[str, int], error: str,
        driven: dict[str, list[list[object]]]) -> None:
    out = run_hal(device_root, tmp_path, hw, [], chip={"esp_errors": {failing[0]: failing[1]}})
    # Refused as hwconfig would, before the watchdog starts; what was built stays at its safe level, and the pin
    # whose PWM failed is its own output again at its idle level (the port had routed the LEDC to it, at half its
    # range, before the driver failed).
    assert out == {"error": error, "driven": driven, "wdt_ms": None}


def _node_on(device_root: Path, tmp_path: Path, hw: dict[str, object],
             chip: dict[str, object]) -> subprocess.CompletedProcess[str]:
    root = tmp_path / "node"
    root.mkdir()
    paths = []
    for name, content in (("hw", hw), ("station", {}), ("machine", chip)):
        path = tmp_path / (name + ".json")
        path.write_text(json.dumps(content))
        paths.append(str(path))
    return subprocess.run(mpnode.command(mpnode.node_image(device_root), "esp32_node_check.py", str(root), *paths),
                          capture_output=True, text=True, env=mpnode.environment(None, fakes=True), timeout=60)


EVSE_WIFI = dict(EVSE, wifi={"ssid": "House", "password": "correct horse"})


def test_a_node_whose_pwm_driver_fails_boots_with_its_wiring_refused_and_its_radio(device_root: Path,
                                                                                  tmp_path: Path) -> None:
    result = _node_on(device_root, tmp_path, EVSE_WIFI, {"esp_errors": {"ledc_timer_config": 0x103}})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    refused = "hw.pilot.pwm_pin: 25: the ESP-IDF LEDC driver failed building its PWM (OSError -259 " \
              "ESP_ERR_INVALID_STATE)"
    assert "loadmesh node: hw.json refused (" + refused + "); nothing is driven" in result.stdout.splitlines()
    assert out["ticked"] is True and out["hw_error"] == refused
    assert out["hal"]["wifi"]["tries"] == 1  # the radio-only HAL: it joins, so that /status can be read
    assert out["driven"] == {"25": [["level", 1], FIRST, ["level", 1]]}  # the pilot constant high, nothing else


def test_a_bug_while_the_hal_builds_still_ends_the_boot(device_root: Path, tmp_path: Path) -> None:
    # Only a driver's error is a refused wiring: a TypeError is a bug, and must not boot as a node that drives nothing.
    result = _node_on(device_root, tmp_path, EVSE_WIFI, {"broken": "PWM"})
    assert result.returncode != 0
    assert "TypeError: a bug" in result.stderr


def test_an_oserror_the_hal_names_no_field_for_is_still_a_refused_wiring(device_root: Path, tmp_path: Path) -> None:
    # The runtime's own net under the HAL's: a driver's error from a call the HAL does not wrap (none today).
    result = _node_on(device_root, tmp_path, EVSE_WIFI, {"broken": "ADC", "broken_with": "OSError"})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["hw_error"] == "hw.hal: the hardware could not be set up (OSError 5 EIO)"
    assert out["ticked"] is True and out["hal"]["wifi"]["tries"] == 1
    assert out["driven"] == {}  # the ADCs are probed before any output is built


RETURN_ROM = "28bb7e1b031704f3"


def test_a_ds18b20_transaction_has_one_reset(device_root: Path, tmp_path: Path) -> None:
    # The DS18B20 datasheet's transaction: a reset (and the presence pulse), the ROM command, the function command.
    # micropython-lib's ds18x20 resets once with presence required and then again inside select_rom(); the HAL
    # resets once, with presence required, and sends MATCH ROM itself: 960 us less a sensor read.
    hw = {"hal": "esp32", "onewire": {"pin": 4, "sensors": {"room": ROOM_ROM, "return": RETURN_ROM}}}
    out = run_hal(device_root, tmp_path, hw, [
        ["scratch", ROOM_ROM, _scratch(0x0191)], ["scratch", RETURN_ROM, _scratch(0x0280)],
        ["bus_time"], ["poll", 0], ["bus_time"], ["poll", 100], ["bus_time"], ["poll", 200], ["bus_time"],
        ["poll", 300], ["bus_time"], ["poll", 400], ["bus_time"], ["poll", 1000], ["poll", 1100], ["poll", 1200],
        ["poll", 1300], ["temperature_dc", "room"], ["temperature_dc", "return"],
    ])
    convert = out[5]  # SKIP ROM, CONVERT T: every sensor at once
    room, flow, ret, outside = out[7], out[9], out[11], out[13]
    assert convert == {"resets": 1, "us": 960 + 2 * 8 * 70}
    # MATCH ROM, the 8-byte id, READ SCRATCHPAD, the 9 bytes back: 19 bytes at 70 us a bit.
    assert room == ret == {"resets": 1, "us": 960 + 19 * 8 * 70}
    assert flow == outside == {"resets": 0, "us": 0}  # not wired: no transaction
    assert out[-2:] == [251, 400]  # and each sensor still answers only to its own id, CRC checked


# safe() after the HAL is built: open_hal sets every output again, and the port checks those duties as it checked
# the constructor's (ledc_set_duty, check_esp_err()). The watchdog was started before it, in the constructor: a
# safe() that raised left it running unfed (boot.py's feeder stopped), and a node without a radio in its wiring
# reset every wdt_ms into the same refusal.
SAFE_DUTY_REFUSED = "hw.pilot.pwm_pin: 25: the ESP-IDF LEDC driver failed setting its safe duty (OSError -259 " \
                    "ESP_ERR_INVALID_STATE)"


def test_a_safe_duty_the_driver_refuses_after_building_refuses_the_wiring_before_the_watchdog(
        device_root: Path, tmp_path: Path) -> None:
    # The constructor's duty set succeeds, safe()'s fails.
    out = run_hal(device_root, tmp_path, EVSE, [], chip={"esp_errors": {"ledc_set_duty": [0x103, 1]}})
    # The pilot's pin its own output at the constant high again (the LEDC is left at the duty it had), the relay
    # opened all the same, and no watchdog.
    assert out == {"error": SAFE_DUTY_REFUSED, "wdt_ms": None,
                   "driven": {"25": [["level", 1], FIRST, ["duty_u16", 65535], ["level", 1]],
                              "26": [["level", 0], ["level", 0]]}}


def test_safe_opens_the_relay_when_the_pilots_duty_fails_and_drops_that_pwm(device_root: Path,
                                                                            tmp_path: Path) -> None:
    # A tick's failure halts the node, which calls safe(): the pilot charging at 16 A, its relay closed. The base
    # order stopped at the pilot's error and left the relay closed until the watchdog reset.
    out = run_hal(device_root, tmp_path, EVSE, [
        ["set_pilot_ma", 16000], ["set_relay", True], ["safe"], ["history"], ["set_pilot_ma", 16000], ["history"],
    ], chip={"esp_errors": {"ledc_set_duty": [0x103, 3]}})  # built, open_hal's safe(), 16 A: then it fails
    assert out[3] == {"raised": SAFE_DUTY_REFUSED}
    assert out[4] == {"25": [["level", 1], FIRST, ["duty_u16", 65535], ["duty_u16", 65535], ["duty_u16", 17432],
                             ["level", 1]],
                      "26": [["level", 0], ["level", 0], ["level", 1], ["level", 0]]}
    assert out[6] == out[4]  # the dropped PWM is driven no more: its pin stays high


@pytest.mark.parametrize("wifi", [False, True], ids=["no radio, after a soft reset", "radio"])
def test_a_node_whose_safe_duty_fails_keeps_a_fed_watchdog_or_none(device_root: Path, tmp_path: Path,
                                                                   wifi: bool) -> None:
    chip: dict[str, object] = {"esp_errors": {"ledc_set_duty": [0x103, 1]}}
    if not wifi:
        chip["boot_py"] = str(device_root / "py" / "boot.py")  # its watchdog runs, its timer feeds it
    result = _node_on(device_root, tmp_path, EVSE_WIFI if wifi else EVSE, chip)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    if wifi:
        # The radio-only HAL took the watchdog over (the default 2000 ms) and the tick fed it; it joins.
        assert (out["watchdog"]["timeout"], out["watchdog"]["feeds"] >= 1) == (2000, True)
        assert out["hal"]["wifi"]["tries"] == 1
    else:
        # No HAL took it over: boot.py's 8 s watchdog, fed by its timer as before the node booted.
        assert (out["watchdog"]["timeout"], out["fed_by_timer"]) == (8000, 3)
    assert out["ticked"] is True and out["hw_error"] == SAFE_DUTY_REFUSED
    assert "loadmesh node: hw.json refused (" + SAFE_DUTY_REFUSED + "); nothing is driven" in result.stdout.splitlines()


def test_the_fakes_keep_no_record_that_grows_unless_the_script_asks(device_root: Path, tmp_path: Path) -> None:
    # A node script that runs for minutes (esp32_node.py) drives its pilot and reads its sensors at every tick: a
    # fake that kept every write grew the heap the script measured, without bound. Without record() the fakes keep
    # counts only; a script that asks (hal_esp32_check.py by default) gets the writes, as the tests above read them.
    hw = dict(EVSE, onewire={"pin": 4, "sensors": {"room": ROOM_ROM}})
    steps: list[list[object]] = [["scratch", ROOM_ROM, _scratch(0x0191)], ["ticks", 0, 2000], ["heap"]]
    for block in range(1, 4):  # each block: 100 pilot changes and 2 s of ticks, its sensor read each second
        steps += [["repeat", 100, ["set_pilot_ma", 16000], ["set_pilot_ma", 6000], ["set_relay", True],
                   ["set_relay", False]],
                  ["ticks", block * 10000, block * 10000 + 2000], ["heap"]]
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"hw": hw, "steps": [*steps, ["history"], ["bus_time"]], "record": False}))
    (out,) = mpnode.run("hal_esp32_check.py", str(path), device_root=device_root, fakes=True)
    heaps = [value for step, value in zip(steps, out[1:], strict=False) if step == ["heap"]]
    # The first block settles what a first call allocates once; after it the heap stays put (a kept write is a
    # two-item list: 400 pilot and relay writes a block would be some 15 KB).
    assert len(heaps) == 4 and max(heaps[2:]) - heaps[1] < 512, heaps
    assert out[-2] == {}  # nothing recorded
    assert out[-1]["resets"] >= 8  # the sensors were read all along
    # Asked for, every write is kept.
    asked = run_hal(device_root, tmp_path, EVSE, [["repeat", 3, ["set_relay", True], ["set_relay", False]],
                                                  ["history"]])
    assert asked[-1]["26"] == [["level", 0], ["level", 0]] + [["level", 1], ["level", 0]] * 3
