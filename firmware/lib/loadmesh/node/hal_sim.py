"""The simulated HAL: actuator commands to a plant process and readings back, over UDP on loopback."""

import os
import socket

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value

from . import simproto
from .hal import Hal

# The protocol is in simproto. Commands go out when an actuator changes and
# at every watchdog feed, so a node that stops ticking stops feeding, and the
# plant models its watchdog reset. Readings are answers to commands: poll()
# drains whatever arrived, keeps the latest, and never waits. Readings older
# than stale_ms (the plant stopped answering) read as unknown.
#
# The watchdog is the plant's (it models the reset wdt_ms after the last
# feed); wdt_ms here is what the node tells its runtime the timeout is. RTC
# memory, which survives a watchdog reset, is a file beside the node's others
# (a killed node process is a crashed node, and its restart a reset).

_STALE_MS = const(1000)
_WDT_MS = const(2000)
_RETAINED_FILE = "rtc.mem"
_MAX_DRAIN = const(8)  # answers read per poll; there is about one per command


class SimHal(Hal):
    """A node wired to the plant: hw = {"hal": "sim", "node", "plant_port", optional "plant_host", "stale_ms",
    "wdt_ms", "rtc_file"}."""

    def __init__(self, hw: dict[str, object]) -> None:
        super().__init__()
        node = hw.get("node")
        port = hw.get("plant_port")
        host = hw.get("plant_host", "127.0.0.1")
        stale_ms = hw.get("stale_ms", _STALE_MS)
        wdt_ms = hw.get("wdt_ms", _WDT_MS)
        rtc_file = hw.get("rtc_file", _RETAINED_FILE)
        if not isinstance(node, str) or not 1 <= len(node) <= 16:
            raise ValueError("hw.node: must be the node id (1 to 16 characters)")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("hw.plant_port: must be a UDP port")
        if not isinstance(host, str):
            raise ValueError("hw.plant_host: must be an address")
        if not isinstance(stale_ms, int) or stale_ms < 1:
            raise ValueError("hw.stale_ms: must be a positive integer")
        if not isinstance(wdt_ms, int) or not 100 <= wdt_ms <= 60000:
            raise ValueError("hw.wdt_ms: must be an integer 100..60000")
        if not isinstance(rtc_file, str) or not rtc_file:
            raise ValueError("hw.rtc_file: must be a file name")
        self.wdt_ms = wdt_ms
        self._rtc_file = rtc_file
        self.node = node
        self.stale_ms = stale_ms
        self._plant = socket.getaddrinfo(host, port)[0][-1]
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
        self._sock.setblocking(False)
        self._tx = simproto.new_buffer()
        self._seq = 0
        # Telemetry, sent with every command.
        self._applied_ma = 0
        self._target_ma = 0
        self._failsafe = True
        self._mem_alloc = simproto.UNKNOWN
        self._peers = 0
        # The latest readings and when they arrived.
        self._now_ms = 0
        self._heard_ms = -1
        self._state = ""
        self._flags = 0
        self._valve = simproto.VALVE_UNKNOWN
        self._current: list[int | None] = [None, None, None]
        self._meter: list[int | None] = [None, None, None]
        self._meter_seq = 0
        self._meter_age_ms = 0
        self._temps: list[int | None] = [None, None, None, None]
        self._week_ms = -1
        self.sent = 0
        self.send_errors = 0
        self.received = 0
        self.bad_packets = 0

    def poll(self, now_ms: int) -> None:
        """Take in the plant's latest answers."""
        self._now_ms = now_ms
        for _ in range(_MAX_DRAIN):
            # recv, not readinto: readinto would glue queued datagrams together (see mesh).
            try:
                data = self._sock.recv(simproto.MAX_BYTES + 1)
            except OSError:
                return  # EAGAIN: nothing more queued
            decoded = simproto.decode_readings(data)
            if decoded is None or decoded[0] != self.node:
                self.bad_packets += 1
                continue
            self.received += 1
            self._take(decoded[1], now_ms)

    def _take(self, body: tuple[int, ...], now_ms: int) -> None:
        self._heard_ms = now_ms
        self._state = chr(body[1]) if body[1] else ""
        self._flags = body[2]
        self._valve = body[3]
        current = self._current
        meter = self._meter
        temps = self._temps
        for phase in range(3):
            current[phase] = simproto.known(body[4 + phase])
            meter[phase] = simproto.known(body[7 + phase])
        self._meter_seq = body[10]
        self._meter_age_ms = body[11]
        for index in range(4):
            temps[index] = simproto.known(body[12 + index])
        self._week_ms = body[16]

    def _fresh(self) -> bool:
        return self._heard_ms >= 0 and self._now_ms - self._heard_ms < self.stale_ms

    def pilot_state(self) -> str:
        return self._state if self._fresh() else ""

    def current_ma(self) -> list[int | None]:
        return self._current if self._fresh() else self._unknown3

    def meter(self) -> tuple[list[int | None], int, int] | None:
        if not self._flags & simproto.FLAG_METER:
            return None
        # Silence from the plant is a meter that stopped reporting: the age grows.
        age_ms = self._meter_age_ms + (self._now_ms - self._heard_ms)
        return self._meter, self._meter_seq, age_ms

    def temperature_dc(self, name: str) -> int | None:
        if not self._fresh():
            return None
        for index in range(4):
            if simproto.TEMPS[index] == name:
                return self._temps[index]
        return None

    def valve_pct(self) -> int | None:
        if not self._fresh() or self._valve == simproto.VALVE_UNKNOWN:
            return None
        return self._valve

    def flame(self) -> bool | None:
        if not self._fresh() or not self._flags & simproto.FLAG_BURNER:
            return None
        return bool(self._flags & simproto.FLAG_FLAME)

    def week_ms(self) -> int | None:
        if not self._fresh() or self._week_ms < 0:
            return None
        return self._week_ms

    def set_pilot_ma(self, limit_ma: int) -> int:
        before = self.pilot_permille
        duty = super().set_pilot_ma(limit_ma)
        if duty != before:
            self._send(0)
        return duty

    def set_relay(self, on: bool) -> None:
        before = self.relay_on
        super().set_relay(on)
        if on != before:
            self._send(0)

    def set_valve_pct(self, pct: int) -> None:
        before = self.valve_command_pct
        super().set_valve_pct(pct)
        if self.valve_command_pct != before:
            self._send(0)

    def set_boiler_call(self, on: bool) -> None:
        before = self.boiler_call
        super().set_boiler_call(on)
        if on != before:
            self._send(0)

    def set_flow_setpoint_dc(self, setpoint_dc: int | None) -> None:
        before = self.flow_setpoint_dc
        super().set_flow_setpoint_dc(setpoint_dc)
        if setpoint_dc != before:
            self._send(0)

    def report(self, applied_ma: int, target_ma: int, failsafe: bool, mem_alloc: int, peers: int) -> None:
        self._applied_ma = applied_ma
        self._target_ma = target_ma
        self._failsafe = failsafe
        self._mem_alloc = mem_alloc
        self._peers = peers

    def feed_watchdog(self) -> None:
        self._send(simproto.FLAG_FEED)

    def retained(self) -> bytes:
        try:
            with open(self._rtc_file, "rb") as source:
                data: bytes = source.read(64)
        except OSError:
            return b""
        return data

    def retain(self, data: bytes) -> None:
        # Temp file and rename: a kill between the two leaves the old bytes, never half of them.
        temp = self._rtc_file + ".tmp"
        with open(temp, "wb") as out:
            out.write(data)
        os.rename(temp, self._rtc_file)

    def _send(self, flags: int) -> None:
        if self.relay_on:
            flags |= simproto.FLAG_RELAY
        if self.boiler_call:
            flags |= simproto.FLAG_BOILER
        if self._failsafe:
            flags |= simproto.FLAG_FAILSAFE
        self._seq = (self._seq + 1) & 0x3FFFFFFF  # a small int, and an i32 on the wire
        size = simproto.encode_command(self._tx, self.node, self._seq, flags, self.pilot_permille,
                                       self.valve_command_pct, self.flow_setpoint_dc, self._applied_ma,
                                       self._target_ma, self._mem_alloc, self._peers)
        try:
            self._sock.sendto(memoryview(self._tx)[:size], self._plant)
            self.sent += 1
        except OSError:  # a full buffer: the next tick sends the whole state again
            self.send_errors += 1

    def close(self) -> None:
        self._sock.close()
