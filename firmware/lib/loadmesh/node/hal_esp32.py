"""The ESP32 HAL: pilot PWM and CP sensing, relays, valve, CT currents, DS18B20, flame, clock, Wi-Fi, watchdog."""

import array
import time

import machine
import network
import onewire

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value

from . import localtime, signals, sntp, wifijoin
from .hal import TEMPERATURES, Hal, os_error_words

# Only peripheral calls live here; every conversion is in signals (tested on
# the host). The wiring comes from hw.json, checked by hwconfig.
#
# Time per poll(), so that the 100 ms tick keeps its pace:
# - CP: a burst of `samples` ADC reads (about 2 ms), spanning at least one
#   1 kHz PWM period; its maximum is the high level, its minimum the low.
# - CT: one phase per tick, sampled evenly over one mains cycle (20 ms at
#   50 Hz) for an unbiased RMS; each phase is renewed every third tick.
# - DS18B20: one conversion per second for all sensors (they convert in
#   parallel: about 2 ms on the bus), and one scratchpad read per tick
#   (about 11.6 ms: a reset, MATCH ROM and its 8 bytes, READ SCRATCHPAD
#   and 9 bytes back, at modonewire.c's 70 us a bit and 960 us a reset).
# - Flame: one read of its input per tick, debounced in signals.
# - Clock: sntp's poll, which never waits (a datagram sent or read).
# - Wi-Fi: the station's status code, and connect() when wifijoin says so;
#   neither waits (the driver associates in its own task). The radio starts
#   in the constructor: starting it takes the driver a moment, once. A line
#   on the console at the first try and at each change wifijoin reports
#   (up, lost, a new reason for failing), never per tick: someone setting a
#   node up on USB serial sees it join, and why not.
#
# The watchdog starts in start(), which open_hal calls once every output is
# built and safe() has set each again (a refusal leaves none to feed); once
# started it cannot be stopped.
#
# Every output is built at its safe level from the first instant. On the
# ESP32 port Pin(n, Pin.OUT) keeps the output register's value, 0 after
# reset, unless value= is given (which is set before the driver is enabled):
# built first and set after, an active-low relay or burner call switched on
# for a moment at every boot. A PWM is built at its safe duty, on a pin whose
# level until the PWM takes it over is that duty's idle level. The port
# allows no better for a PWM than its first period: MicroPython 1.25's
# machine.PWM routes the LEDC channel at half its timer's range first
# (machine_pwm.c configure_channel()), and the LEDC takes the duty given to
# the constructor at the end of that period (1 ms at the pilot's 1 kHz;
# docs/firmware.md, "Checked against the port's source").

# What a call into the radio raises when the driver refuses: the port maps
# the ESP-IDF's Wi-Fi errors to OSError ("Wifi Internal Error", ...) and any
# other to RuntimeError ("Wifi Unknown Error 0x0101": ESP_ERR_NO_MEM from
# esp_wifi_init or esp_wifi_start on a tight heap). Neither may stop the node.
_RADIO_ERRORS = (OSError, RuntimeError)

_CT_SAMPLES = const(100)
_FEEDER_TIMER = const(0)  # the hardware timer that feeds the watchdog while the REPL has the board (boot.py's too)
_CONVERT_MS = const(1000)  # one conversion every second
_CONVERSION_MS = const(750)  # the longest a 12-bit conversion takes


class Esp32Hal(Hal):
    """The node's hardware per its wiring (see hwconfig)."""

    def __init__(self, hw: dict[str, object]) -> None:
        super().__init__()
        # hwconfig (and fieldcheck, which it holds) only for the wiring at boot: runtime._OCCASIONAL drops both.
        from . import hwconfig

        self.hw = hwconfig.parse(hw)
        self.wdt_ms = _int(self.hw["wdt_ms"])
        # Before anything is driven, as for a wiring hwconfig refuses: a pin this board has not, an ADC input
        # the chip cannot read in volts (see _probe).
        adcs = _probe(self.hw)
        self._pilot_pwm: machine.PWM | None = None
        self._cp_adc: machine.ADC | None = None
        self._relay: machine.Pin | None = None
        self._boiler: machine.Pin | None = None
        self._setpoint_pwm: machine.PWM | None = None
        self._valve_pwm: machine.PWM | None = None
        self._valve_pin: machine.Pin | None = None
        self._feedback_adc: machine.ADC | None = None
        self._feedback_pin: machine.Pin | None = None
        self._cts: list[machine.ADC | None] = [None, None, None]
        self._state = ""
        self._current: list[int | None] = [None, None, None]
        self._ct_samples = array.array("H", [0] * _CT_SAMPLES)
        self._ct_next = 0
        self._temps: list[int | None] = [None, None, None, None]
        self._roms: list[bytes | None] = [None, None, None, None]
        self._wire: onewire.OneWire | None = None
        self._converted_ms = -_CONVERT_MS
        # When the first conversion since the bus answered will have completed;
        # None: none started yet. Before then a pad may hold the power-on value.
        self._complete_ms: int | None = None
        self._sensor_next = 0
        self._scratch = bytearray(9)
        self._flame_pin: machine.Pin | None = None
        self._flame: bool | None = None
        self._flame_differing = 0
        self.clock: sntp.SntpClock | None = None
        self.wifi: wifijoin.Join | None = None
        self.hostname = ""
        self._wlan: network.WLAN | None = None  # read from the first start on, even a failed one
        self._radio_on = False  # started and set up by _radio()
        self._now_ms = 0  # the last poll's: week_ms() is read after it, in the same tick
        self._wdt: machine.WDT | None = None  # start()'s
        self._build(adcs)

    def start(self) -> None:
        # The watchdog starts once every pin is built and safe() has set each again: whatever the port refuses
        # there (a ValueError, or an ESP-IDF driver's error, which _pwm and safe() make one) is raised before it,
        # and the runtime goes on with no wiring, nothing driven and nothing to feed. Started first, it reset
        # the node every wdt_ms into the same refusal. (After a soft reset boot.py's watchdog still runs, fed by
        # its timer until here.)
        wdt_ms = _int(self.wdt_ms)
        try:
            self._wdt = machine.WDT(timeout=wdt_ms)
        except OSError as exc:  # machine_wdt.c: esp_task_wdt_reconfigure() or esp_task_wdt_add_user() failed
            # Every output is at its safe level already; boot.py's timer still feeds its watchdog, if any.
            raise ValueError(_driver_refused("hw.wdt_ms", wdt_ms, "the ESP-IDF task watchdog failed to start",
                                             exc)) from None
        # From here the ticks feed it, and a hung tick must reset the node.
        machine.Timer(_FEEDER_TIMER).deinit()
        self._start_wifi()

    def _build(self, adcs: dict[str, machine.ADC]) -> None:
        hw = self.hw
        pilot = hw.get("pilot")
        if isinstance(pilot, dict):
            # Constant high (no charging) from the first instant.
            self._pilot_pwm = _pwm("hw.pilot.pwm_pin", _int(pilot["pwm_pin"]), 1000,
                                   signals.duty_u16(1000, pilot["inverted"] is True))
            self._cp_adc = adcs["hw.pilot.adc_pin"]
        for name in ("relay", "boiler"):
            switch = hw.get(name)
            if isinstance(switch, dict):
                pin = _output(_int(switch["pin"]), 0 if switch["active_high"] is True else 1)  # open
                if name == "relay":
                    self._relay = pin
                else:
                    self._boiler = pin
        setpoint = hw.get("setpoint")
        if isinstance(setpoint, dict):
            # 0 V from the first instant: the boiler's lowest setpoint (its call relay is open anyway).
            self._setpoint_pwm = _pwm("hw.setpoint.pin", _int(setpoint["pin"]), _int(setpoint["freq_hz"]), 0)
        valve = hw.get("valve")
        if isinstance(valve, dict):
            # Closed from the first instant: the relay's off level, the closed
            # pulse, or the closed duty (full scale for an inverted PWM input).
            if valve["kind"] == "relay":
                self._valve_pin = _output(_int(valve["pin"]), 0 if valve["active_high"] is True else 1)
            elif valve["kind"] == "servo":
                self._valve_pwm = _pwm("hw.valve.pin", _int(valve["pin"]), _int(valve["freq_hz"]), 0,
                                       signals.servo_pulse_ns(0, _int(valve["closed_us"]), _int(valve["open_us"])))
            else:
                self._valve_pwm = _pwm("hw.valve.pin", _int(valve["pin"]), _int(valve["freq_hz"]),
                                       _valve_duty(0, valve["active_high"] is True))
            feedback = valve.get("feedback")
            if isinstance(feedback, dict):
                if feedback["kind"] == "adc":
                    self._feedback_adc = adcs["hw.valve.feedback.pin"]
                else:
                    self._feedback_pin = _input(_int(feedback["pin"]), feedback["pull"])
        cts = hw.get("ct")
        if isinstance(cts, list):
            for phase in range(3):
                ct = cts[phase]
                if isinstance(ct, dict):
                    self._cts[phase] = adcs[_ct_field(phase)]
        wire = hw.get("onewire")
        if isinstance(wire, dict):
            self._wire = onewire.OneWire(machine.Pin(_int(wire["pin"])))
            sensors = wire["sensors"]
            assert isinstance(sensors, dict)
            for index in range(4):
                rom = sensors.get(TEMPERATURES[index])
                if isinstance(rom, str):
                    self._roms[index] = bytes.fromhex(rom)
        flame = hw.get("flame")
        if isinstance(flame, dict):
            self._flame_pin = _input(_int(flame["pin"]), flame["pull"])
        clock = hw.get("clock")
        if isinstance(clock, dict):
            servers = clock["ntp"]
            assert isinstance(servers, list)
            self.clock = _WifiClock([str(server) for server in servers], localtime.parse(clock["tz"], "hw.clock.tz"))

    def _start_wifi(self) -> None:
        wifi = self.hw.get("wifi")
        if isinstance(wifi, dict):
            hostname = wifi["hostname"]
            self.hostname = hostname if isinstance(hostname, str) else wifijoin.default_hostname(machine.unique_id())
            self.wifi = wifijoin.Join()
            # Starting the radio waits for the driver, with no time limit of
            # its own: the watchdog gets a whole period for it.
            self.feed_watchdog()
            try:
                self._radio()
            except _RADIO_ERRORS:  # poll() starts it with its first try, and counts the failure if it fails again
                self._radio_on = False

    # Readings.

    def poll(self, now_ms: int) -> None:
        self._now_ms = now_ms
        if self._cp_adc is not None:
            self._read_pilot()
        self._read_ct()
        if self._wire is not None:
            self._read_temperatures(now_ms)
        flame = self.hw.get("flame")
        if self._flame_pin is not None and isinstance(flame, dict):
            lit = self._flame_pin.value() == flame["lit_level"]
            self._flame, self._flame_differing = signals.flame_step(lit, self._flame, self._flame_differing)
        if self.clock is not None:
            self.clock.poll(now_ms)
        if self.wifi is not None:
            self._poll_wifi(now_ms)

    def _radio(self) -> network.WLAN:
        """The station started: named (DHCP takes the name at connect(), mDNS at the first address), never dozing."""
        wlan = self._wlan
        if wlan is None:
            network.hostname(self.hostname)
            wlan = network.WLAN(network.STA_IF)
            # Its status counts from now on, even if starting it fails: a
            # station something else (a boot.py) has connected is up.
            self._wlan = wlan
        wlan.active(True)
        # Modem sleep, the default, wakes the radio at the access point's
        # DTIM beacons only: broadcast heartbeats are delayed or lost and a
        # request waits hundreds of ms. A node on mains keeps it awake. The
        # driver retries nothing by itself: wifijoin does (see there why).
        wlan.config(pm=network.WLAN.PM_NONE, reconnects=wifijoin.DRIVER_RECONNECTS)
        self._radio_on = True
        return wlan

    def _poll_wifi(self, now_ms: int) -> None:
        join = self.wifi
        wifi = self.hw["wifi"]
        assert join is not None and isinstance(wifi, dict)
        wlan = self._wlan
        connect = join.step(now_ms, wifijoin.IDLE if wlan is None else wlan.status())
        if join.change is not None:
            self._tell_wifi(now_ms, "")
        if not connect:
            return
        if join.tries == 0 and join.joins == 0:  # the first try since boot (a station up before had none)
            _say("wifi joining " + _quoted(wifi["ssid"]) + " as " + self.hostname)
        try:
            if wlan is None or not self._radio_on:
                wlan = self._radio()
            wlan.connect(wifi["ssid"], wifi["password"])
            join.tried(now_ms)
        except _RADIO_ERRORS as exc:  # the driver refused (not started, in a state it cannot connect from, no memory)
            join.failed(now_ms)
            if join.change is not None:
                self._tell_wifi(now_ms, str(exc))

    def _tell_wifi(self, now_ms: int, error: str) -> None:
        """The console line of the change the join reports (error: what the radio raised, for driver_error)."""
        join = self.wifi
        wifi = self.hw["wifi"]
        assert join is not None and isinstance(wifi, dict)
        change = join.change
        why = join.reason
        if change == wifijoin.UP:
            line = "wifi up as " + self.hostname
            wlan = self._wlan
            if wlan is not None:
                line += ", " + _ipv4(wlan, "addr4")
                rssi_dbm = _rssi_dbm(wlan)
                if rssi_dbm is not None:
                    line += ", " + str(rssi_dbm) + " dBm"
            tries = join.join_tries
            if tries:
                line += " after " + str(tries) + (" try" if tries == 1 else " tries")
        elif change == wifijoin.LOST:
            line = "wifi lost" + ("" if why is None else " (" + why + ")") + ", joining again"
        else:  # FAILED: why, and what someone setting the node up can check for the usual causes
            line = "wifi not joined to " + _quoted(wifi["ssid"]) + ": " + str(why)
            hint = error
            if why in ("wrong_password", "4way_handshake_timeout"):
                hint = "is hw.json's wifi.password right?"
            elif why == "no_ap_found":
                hint = "in range, and on 2.4 GHz? the ESP32 has no 5 GHz radio"
            if hint:
                line += " (" + hint + ")"
            wait_s = (join.wait_ms(now_ms) + 999) // 1000
            line += ", trying again" + (" in " + str(wait_s) + " s" if wait_s else "")
        _say(line)

    def _read_pilot(self) -> None:
        pilot = self.hw["pilot"]
        assert isinstance(pilot, dict) and self._cp_adc is not None
        zero_uv = _int(pilot["zero_uv"])
        uv_per_v = _int(pilot["uv_per_v"])
        high = -1000000
        low = 1000000
        adc = self._cp_adc
        for _ in range(_int(pilot["samples"])):
            level = signals.cp_mv(adc.read_uv(), zero_uv, uv_per_v)
            high = level if level > high else high
            low = level if level < low else low
        pwm_on = 0 < self.pilot_permille < 1000
        self._state = signals.cp_state(high, low, self._state, pwm_on)

    def _read_ct(self) -> None:
        # One phase per call, round robin over the wired ones.
        cts = self.hw.get("ct")
        if not isinstance(cts, list):
            return
        for _ in range(3):
            phase = self._ct_next
            self._ct_next = (phase + 1) % 3
            ct = cts[phase]
            adc = self._cts[phase]
            if isinstance(ct, dict) and adc is not None:
                break
        else:
            return
        samples = self._ct_samples
        period_us = 1000000 // _int(self.hw["mains_hz"])
        start = time.ticks_us()
        for index in range(_CT_SAMPLES):
            due = index * period_us // _CT_SAMPLES
            while time.ticks_diff(time.ticks_us(), start) < due:
                pass
            samples[index] = adc.read_uv() // 1000
        self._current[phase] = signals.ct_ma(signals.rms(samples, _CT_SAMPLES), _int(ct["ma_per_v"]),
                                             _int(ct["floor_ma"]))

    def _read_temperatures(self, now_ms: int) -> None:
        wire = self._wire
        assert wire is not None
        if now_ms - self._converted_ms >= _CONVERT_MS:
            self._converted_ms = now_ms
            self._sensor_next = 0
            try:
                # Every sensor converts at once: skip ROM, convert T.
                wire.reset(True)
                wire.writebyte(0xCC)  # type: ignore[no-untyped-call]
                wire.writebyte(0x44)  # type: ignore[no-untyped-call]
                if self._complete_ms is None:
                    self._complete_ms = now_ms + _CONVERSION_MS
            except (OSError, onewire.OneWireError):  # no presence pulse: nothing answers on the bus
                for index in range(4):
                    self._temps[index] = None
                self._complete_ms = None  # the sensors may lose power with the bus: wait for a conversion again
            return
        index = self._sensor_next
        if index >= 4:
            return
        self._sensor_next = index + 1
        rom = self._roms[index]
        if rom is None:
            return
        try:
            # One transaction, as the DS18B20's datasheet has it: a reset (its presence pulse required), the ROM
            # command, the function command. Not select_rom(): micropython-lib's resets the bus again before MATCH
            # ROM (as its ds18x20's read_scratch() does after its own reset), 960 us of the tick for nothing.
            wire.reset(True)
            wire.writebyte(0x55)  # type: ignore[no-untyped-call]  # MATCH ROM
            wire.write(rom)
            wire.writebyte(0xBE)  # type: ignore[no-untyped-call]  # read scratchpad
            wire.readinto(self._scratch)
            dc = signals.ds18b20_dc(self._scratch)
            # Reads come 100-400 ms into a conversion and give the previous one's
            # result; until a conversion has completed that may be the power-on
            # 85.0 C, which a flow or return sensor would take as real. Only
            # exactly that value is refused, and only until then: a node reset
            # by its watchdog finds its sensors' last readings still valid.
            complete_ms = self._complete_ms
            if dc == signals.DS18B20_POWER_ON_DC and (complete_ms is None or now_ms < complete_ms):
                dc = None
            self._temps[index] = dc
        except (OSError, onewire.OneWireError):
            self._temps[index] = None

    def pilot_state(self) -> str:
        return self._state

    def current_ma(self) -> list[int | None]:
        return self._current

    def temperature_dc(self, name: str) -> int | None:
        for index in range(4):
            if TEMPERATURES[index] == name:
                return self._temps[index]
        return None

    def valve_pct(self) -> int | None:
        valve = self.hw.get("valve")
        if not isinstance(valve, dict):
            return None
        feedback = valve.get("feedback")
        if not isinstance(feedback, dict):
            return None
        if self._feedback_adc is not None:
            return signals.feedback_pct(self._feedback_adc.read_uv() // 1000, _int(feedback["closed_mv"]),
                                        _int(feedback["open_mv"]))
        if self._feedback_pin is not None:
            return 100 if self._feedback_pin.value() == feedback["open_level"] else 0
        return None

    def flame(self) -> bool | None:
        return self._flame  # None: not wired (or not read yet)

    def week_ms(self) -> int | None:
        return None if self.clock is None else self.clock.week_ms(self._now_ms)

    def status(self) -> dict[str, object] | None:
        out: dict[str, object] = {}
        if self.clock is not None:
            out["clock"] = self.clock.status(self._now_ms)
        if self.wifi is not None:
            out["wifi"] = self._wifi_status()
        return out or None

    def address(self) -> str | None:
        join = self.wifi
        wlan = self._wlan
        if join is None or wlan is None or join.state != wifijoin.UP:
            return None
        address = _ipv4(wlan, "addr4")
        return None if address == "0.0.0.0" else address

    def _wifi_status(self) -> dict[str, object]:
        join = self.wifi
        assert join is not None
        out = join.status(self._now_ms)
        out["hostname"] = self.hostname
        address: str | None = None
        rssi_dbm: int | None = None
        wlan = self._wlan
        if join.state == wifijoin.UP and wlan is not None:
            address = _ipv4(wlan, "addr4")
            rssi_dbm = _rssi_dbm(wlan)
        out["address"] = address
        out["rssi_dbm"] = rssi_dbm
        return out

    # Drivers.

    def set_pilot_ma(self, limit_ma: int) -> int:
        duty = super().set_pilot_ma(limit_ma)
        pilot = self.hw.get("pilot")
        if self._pilot_pwm is not None and isinstance(pilot, dict):
            self._pilot_pwm.duty_u16(signals.duty_u16(duty, pilot["inverted"] is True))
        return duty

    def set_relay(self, on: bool) -> None:
        super().set_relay(on)
        _drive(self._relay, self.hw.get("relay"), on)

    def set_boiler_call(self, on: bool) -> None:
        super().set_boiler_call(on)
        _drive(self._boiler, self.hw.get("boiler"), on)

    def set_flow_setpoint_dc(self, setpoint_dc: int | None) -> None:
        super().set_flow_setpoint_dc(setpoint_dc)
        setpoint = self.hw.get("setpoint")
        if self._setpoint_pwm is not None and isinstance(setpoint, dict):
            self._setpoint_pwm.duty_u16(signals.setpoint_duty_u16(setpoint_dc, _int(setpoint["low_dc"]),
                                                                  _int(setpoint["high_dc"])))

    def set_valve_pct(self, pct: int) -> None:
        super().set_valve_pct(pct)
        valve = self.hw.get("valve")
        if not isinstance(valve, dict):
            return
        pct = self.valve_command_pct
        if self._valve_pin is not None:
            # An on/off actuator: any opening asked for opens it.
            self._valve_pin.value(1 if (pct > 0) == (valve["active_high"] is True) else 0)
        elif self._valve_pwm is not None:
            if valve["kind"] == "servo":
                self._valve_pwm.duty_ns(signals.servo_pulse_ns(pct, _int(valve["closed_us"]),
                                                               _int(valve["open_us"])))
            else:
                self._valve_pwm.duty_u16(_valve_duty(pct, valve["active_high"] is True))

    def safe(self) -> None:
        """Every output to its safe level, each one even when another's driver fails; then ValueError naming the
        first PWM whose safe duty the port refused.

        check_esp_err() raises OSError from ledc_set_duty() or ledc_update_duty() at any duty set, as when the PWM
        was built. The LEDC then goes on at the duty it had (in a tick, one that lets a car charge), so that PWM
        is dropped and its pin made its own output at the safe level, as _pwm does when building one fails. The
        relays are opened all the same: the base class's order stopped at the first error."""
        refused = ""
        try:
            self.set_pilot_ma(0)
        except OSError as exc:
            refused = self._drop_pwm("hw.pilot.pwm_pin", exc)
        self.set_relay(False)
        try:
            self.set_valve_pct(0)
        except OSError as exc:
            refused = refused or self._drop_pwm("hw.valve.pin", exc)
        self.set_boiler_call(False)
        try:
            self.set_flow_setpoint_dc(None)
        except OSError as exc:
            refused = refused or self._drop_pwm("hw.setpoint.pin", exc)
        if refused:
            raise ValueError(refused)

    def _drop_pwm(self, field: str, exc: OSError) -> str:
        """The PWM of field given up, its pin an output at the safe duty's idle level; the refusal's words."""
        hw = self.hw
        if field == "hw.pilot.pwm_pin":
            wiring = hw["pilot"]
            assert isinstance(wiring, dict)
            pin = _int(wiring["pwm_pin"])
            idle = 0 if wiring["inverted"] is True else 1  # constant high (no charging), or an inverter's low
            self._pilot_pwm = None
        elif field == "hw.valve.pin":
            wiring = hw["valve"]
            assert isinstance(wiring, dict)
            pin = _int(wiring["pin"])
            # A servo without pulses holds where it is; a PWM input's closed duty is 0 or full scale.
            idle = 1 if wiring["kind"] == "pwm" and _valve_duty(0, wiring["active_high"] is True) else 0
            self._valve_pwm = None
        else:
            wiring = hw["setpoint"]
            assert isinstance(wiring, dict)
            pin = _int(wiring["pin"])
            idle = 0  # 0 V: the boiler's lowest setpoint
            self._setpoint_pwm = None
        _output(pin, idle)
        return _driver_refused(field, pin, "the ESP-IDF LEDC driver failed setting its safe duty", exc)

    def feed_watchdog(self) -> None:
        wdt = self._wdt
        if wdt is not None:  # None until start(), and for a HAL refused before it
            wdt.feed()

    def hand_over(self) -> None:
        # mpremote (or a person) stops the node with Ctrl-C to reach the REPL, to copy files. The ESP32's
        # watchdog cannot be stopped once started, and nothing would feed it: the board reset wdt_ms later,
        # cutting a copy off. With every output safe, a timer feeds it from here on (a scheduled callback,
        # run between the REPL's bytecodes and while it waits for input); a reset boots the node again.
        self.safe()
        self._feeder = machine.Timer(_FEEDER_TIMER)
        self._feeder.init(period=_int(self.hw["wdt_ms"]) // 4, mode=machine.Timer.PERIODIC,
                          callback=self._feed_from_timer)

    def _feed_from_timer(self, _timer: object) -> None:
        self.feed_watchdog()

    def retained(self) -> bytes:
        # RTC slow memory (RTC_NOINIT) keeps its content through a watchdog
        # (or any software) reset; at power-on it holds noise without the
        # port's magic word, and memory() reads b"" (machine_rtc.c). At most
        # 2048 bytes (ValueError past that); lastlimit's record is 20.
        data: bytes = machine.RTC().memory()
        return data

    def retain(self, data: bytes) -> None:
        machine.RTC().memory(data)

    def close(self) -> None:
        if self.clock is not None:
            self.clock.close()


class _WifiClock(sntp.SntpClock):
    """SNTP whose "gateway" and DNS server are the ones DHCP gave the Wi-Fi station."""

    def gateway(self) -> str | None:
        return _station_address("gw4")

    def dns_server(self) -> str | None:
        return _station_address("dns")


def _station_address(key: str) -> str | None:
    """The station's gateway ("gw4") or DNS server ("dns"); None while it is not connected."""
    wlan = network.WLAN(network.STA_IF)
    if not wlan.isconnected():
        return None
    return _ipv4(wlan, key)


def _ipv4(wlan: network.WLAN, key: str) -> str:
    """The station's address ("addr4"), gateway ("gw4") or DNS server ("dns"); "0.0.0.0" for one not known yet.

    By ipconfig() where the port has it (MicroPython 1.25's esp32 does): ifconfig() is deprecated for it. A
    port without it (micropython#14199 added it) has ifconfig() alone, which reads the same interface record
    and, for the DNS server, lwIP's first one, as network.ipconfig("dns") does: DHCP's."""
    if key == "dns":
        if hasattr(network, "ipconfig"):
            dns: str = network.ipconfig("dns")
            return dns
        field = 3
    elif hasattr(wlan, "ipconfig"):
        value = wlan.ipconfig(key)
        address: str = value[0] if key == "addr4" else value  # addr4: (address, netmask)
        return address
    else:
        field = 0 if key == "addr4" else 2
    fallback: str = wlan.ifconfig()[field]
    return fallback


def _rssi_dbm(wlan: network.WLAN) -> int | None:
    """The access point's signal at the station, in dBm; None when the port cannot tell (not associated)."""
    try:
        rssi_dbm: int = wlan.status("rssi")
        return rssi_dbm
    except OSError:  # lost since the last step
        return None


def _say(line: str) -> None:
    """A line on the node's console (USB serial), as the runtime's boot lines."""
    print("loadmesh node: " + line)


def _quoted(text: object) -> str:
    """A network name in quotes, so that spaces at its ends show."""
    return '"' + str(text) + '"'


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _output(pin: int, level: int) -> machine.Pin:
    """An output pin driving level from the moment it is one."""
    return machine.Pin(pin, machine.Pin.OUT, value=level)


def _pwm(field: str, pin: int, freq_hz: int, duty_u16: int, duty_ns: int | None = None) -> machine.PWM:
    """A PWM at duty_u16 (or a servo's pulse, duty_ns) from the start, its pin held at that duty's idle level
    until the PWM takes it.

    ValueError naming field if the port refuses the PWM, its pin put back to that level first. Besides its
    ValueErrors (out of LEDC channels or timers, "PWM not supported"), machine_pwm.c raises OSError from
    check_esp_err() when an ESP-IDF LEDC call fails: ledc_timer_config() for a new frequency, ledc_set_duty()
    and ledc_update_duty() for the duty given; all after configure_channel() has routed the LEDC channel to
    the pin at half its range. Raised from here it ended the node's boot: main.py stopped at the REPL, with no
    radio or HTTP API to say why, and the pin left at that half duty (on the pilot 50 %, which a car reads as
    30 A)."""
    idle = 1 if duty_ns is None and duty_u16 == signals.U16_MAX else 0
    output = _output(pin, idle)
    try:
        if duty_ns is None:
            return machine.PWM(output, freq=freq_hz, duty_u16=duty_u16)
        return machine.PWM(output, freq=freq_hz, duty_ns=duty_ns)
    except (OSError, ValueError) as exc:
        # Made an output again, the pin drives its own level: ESP-IDF's gpio_set_direction() routes the GPIO's
        # output register back to the pad (gpio_output_enable(): SIG_GPIO_OUT_IDX), away from the LEDC.
        _output(pin, idle)
        if isinstance(exc, ValueError):
            raise ValueError(field + ": " + str(pin) + ": the port refused its PWM (" + str(exc) + ")") from None
        raise ValueError(_driver_refused(field, pin, "the ESP-IDF LEDC driver failed building its PWM", exc)) from None


def _driver_refused(field: str, value: int, failed: str, exc: OSError) -> str:
    """The refusal of an ESP-IDF driver's error (the port's OSError) while building what field wires.

    check_esp_err() (mphalport.c) raises OSError(code, name): the POSIX errno for ESP_ERR_NO_MEM (12),
    ESP_ERR_TIMEOUT (110) and ESP_ERR_NOT_SUPPORTED (95), else the ESP-IDF code negated (ESP_ERR_INVALID_STATE,
    0x103: -259); machine_wdt.c raises OSError(code) with the code as it is."""
    return field + ": " + str(value) + ": " + failed + " (" + os_error_words(exc) + ")"


def _valve_duty(pct: int, active_high: bool) -> int:
    duty = signals.valve_duty_u16(pct)
    return duty if active_high else signals.U16_MAX - duty


def _input(pin: int, pull: object) -> machine.Pin:
    """A digital input with the chip's pull the wiring names ("up", "down"; None: the pin as it is)."""
    if pull is None:
        return machine.Pin(pin, machine.Pin.IN)
    return machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP if pull == "up" else machine.Pin.PULL_DOWN)


def _ct_field(phase: int) -> str:
    return "hw.ct[" + str(phase) + "].pin"


def _probe(hw: dict[str, object]) -> dict[str, machine.ADC]:
    """Every pin of the wiring looked up and every ADC input read once; the ADCs by field.

    ValueError naming the first field that fails. hwconfig cannot know the build: a board with PSRAM (a
    WROVER) has no Pin for GPIO 16 and 17, which carry it (ports/esp32/machine_pin.h, CONFIG_SPIRAM), and
    machine.Pin's "invalid pin" names no field. Pin(n) alone is a look-up (machine_pin.c mp_pin_make_new():
    no mode, nothing configured), so this changes no pin."""
    from . import hwconfig

    adcs: dict[str, machine.ADC] = {}
    for field, pin, use in hwconfig.pins(hw):
        number = _int(pin)
        try:
            machine.Pin(number)
        except ValueError:
            raise ValueError(field + ": " + str(number) + " is not a GPIO of this board (the port says invalid pin;"
                             " on a board with PSRAM GPIO 16 and 17 carry it)") from None
        if use == "adc":
            adcs[field] = _adc(number, field)
    return adcs


def _adc(pin: int, field: str) -> machine.ADC:
    """An ADC input read in volts over about 0.15-2.45 V (11 dB; the port's default is 0 dB, up to about 1 V).

    ValueError naming field if the chip cannot convert to volts: the port's read_uv() then raises OSError at
    every read (MicroPython 1.25 ports/esp32/adc.c: ESP-IDF's line fitting wants eFuse calibration, which
    early ESP32s lack, or a default the port does not give). Raised from the tick, it halted the node and its
    watchdog reset it into the same tick; refused here, the node boots with the wiring refused and says why."""
    adc = machine.ADC(machine.Pin(pin))
    adc.atten(machine.ADC.ATTN_11DB)
    try:
        adc.read_uv()
    except OSError as exc:
        raise ValueError(field + ": " + str(pin) + " cannot be read in volts (read_uv raised OSError " + str(exc)
                         + "): this ESP32's eFuses hold no ADC calibration") from None
    return adc


def _drive(pin: machine.Pin | None, wiring: object, on: bool) -> None:
    if pin is not None and isinstance(wiring, dict):
        pin.value(1 if on == (wiring["active_high"] is True) else 0)
