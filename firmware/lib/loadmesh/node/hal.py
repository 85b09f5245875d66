"""The hardware abstraction: what the node reads and drives, one interface for the ESP32 and the simulator."""

from loadmesh.core import pilot

# The runtime talks to the hardware only through these methods; hal_esp32
# implements them with machine.PWM/Pin/ADC/WDT, hal_sim with datagrams to the
# plant process. Everything else in the node is the same on both. Duck typed:
# Hal is the documented base with the answers of a node that has nothing
# attached, and an implementation overrides what its hardware has.
#
# Once per control tick the runtime calls, in this order:
#   poll(now_ms)            take in new readings (non-blocking; never waits)
#   the readers             pilot_state(), current_ma(), meter(), temperature_dc(),
#                           valve_pct(), flame(), week_ms(); each returns the
#                           latest value or "unknown", never blocks
#   the drivers             set_pilot_ma(), set_relay(), set_valve_pct(),
#                           set_boiler_call(), set_flow_setpoint_dc(); each
#                           takes effect at once
#   report(...)             the node's numbers, for the simulator's trace
#   feed_watchdog()         last, once the tick has done its work
#
# Besides, status(): what the HAL tells in /status ("hal"), None if nothing;
# address(): the node's IPv4 address on its network, None if not known;
# retained() / retain(data): a few bytes that survive a watchdog
# reset but not a power cut (RTC memory on ESP32), where the runtime keeps the
# limit it enforces (docs/safety.md, rule 6); and wdt_ms, the watchdog's
# timeout (None: no watchdog), which the runtime checks against the config.
#
# Units are the core's: mA, deg C x 10 (dC), percent, ms. Unknown is None.
# Readings are raw (unsmoothed, unchecked): the runtime passes them through
# loadmesh.core.sensor channels, which reject the absurd and hold or expire.
#
# Safe states (safe(), and what a node has from power-up until main.py
# drives it): the pilot at a constant +12 V (100 % duty: the car may not
# draw), every relay and contactor open, the valve commanded closed, the
# boiler call off, its flow setpoint input at 0 %. With the boiler call off
# nothing is heated, so a closed valve is safe; the interlock
# (docs/heating.md) keeps the boiler from firing against closed valves.

PHASES = 3
PILOT_STATES = ("A", "B", "C", "D", "E", "F")  # IEC 61851: +12, +9, +6, +3, 0, -12 V
TEMPERATURES = ("room", "flow", "return", "outside")

# What open() builds, by the "hal" field of the wiring (hw.json).
KINDS = ("esp32", "sim", "none")


class Hal:
    """A node with nothing attached: every reading unknown, every driver a no-op on nothing."""

    def __init__(self) -> None:
        self.pilot_permille = pilot.PILOT_OFF_PERMILLE  # the duty being driven
        self.relay_on = False
        self.valve_command_pct = 0
        self.boiler_call = False
        self.flow_setpoint_dc: int | None = None  # not driven
        self.wdt_ms: int | None = None  # no watchdog
        self._retained = b""
        self._unknown3: list[int | None] = [None, None, None]

    # Readings.

    def poll(self, now_ms: int) -> None:
        """Take in what the hardware has measured since the last call; never blocks."""

    def pilot_state(self) -> str:
        """The control pilot state "A".."F" read from the CP voltage; "" without a pilot."""
        return ""

    def current_ma(self) -> list[int | None]:
        """Measured current per phase L1, L2, L3 in mA (None: not measured). The list is reused: copy to keep."""
        return self._unknown3

    def meter(self) -> tuple[list[int | None], int, int] | None:
        """The mains meter: (signed mA per phase, reading sequence number, reading age in ms); None if absent."""
        return None

    def temperature_dc(self, name: str) -> int | None:
        """Temperature name (one of TEMPERATURES) in deg C x 10, or None."""
        return None

    def valve_pct(self) -> int | None:
        """The valve's confirmed position in percent (from feedback), or None."""
        return None

    def flame(self) -> bool | None:
        """Whether the boiler's burner is lit, or None if not wired."""
        return None

    def week_ms(self) -> int | None:
        """The local time of week (ms since Monday 00:00) from a set clock, or None."""
        return None

    # Drivers: each takes effect at once.

    def set_pilot_ma(self, limit_ma: int) -> int:
        """Signal limit_ma on the pilot (below 6 A: no charging); returns the duty in per mille."""
        self.pilot_permille = pilot.duty_permille(limit_ma)
        return self.pilot_permille

    def set_relay(self, on: bool) -> None:
        """Close (True) or open the load's relay or contactor."""
        self.relay_on = on

    def set_valve_pct(self, pct: int) -> None:
        """Command the valve to pct percent open (0..100)."""
        self.valve_command_pct = 0 if pct < 0 else 100 if pct > 100 else pct

    def set_boiler_call(self, on: bool) -> None:
        """Switch the boiler's call-for-heat relay."""
        self.boiler_call = on

    def set_flow_setpoint_dc(self, setpoint_dc: int | None) -> None:
        """Drive the boiler's flow setpoint input (deg C x 10); None: not driven, the input at 0 %.

        The boiler role drives its setpoint here, the cooldown setpoint while
        it cools down; a boiler wired by its call relay alone keeps its own.
        """
        self.flow_setpoint_dc = setpoint_dc

    def safe(self) -> None:
        """Every actuator to its safe state: no charging, relays open, valve closed, no boiler call."""
        self.set_pilot_ma(0)
        self.set_relay(False)
        self.set_valve_pct(0)
        self.set_boiler_call(False)
        self.set_flow_setpoint_dc(None)

    def start(self) -> None:
        """Take the watchdog over and start what runs by itself (the ESP32's radio): open_hal() calls it once, after
        safe(), so that no watchdog of the node's runs before every output is at its safe level."""

    def hand_over(self) -> None:
        """Ctrl-C at the console stopped the node: every actuator safe, then the console's (see Esp32Hal)."""
        self.safe()

    def report(self, applied_ma: int, target_ma: int, failsafe: bool, mem_alloc: int, peers: int) -> None:
        """The node's numbers for the simulator's trace and table; a device ignores them."""

    def status(self) -> dict[str, object] | None:
        """What the hardware has to tell in /status (the ESP32's clock: its sync, source, counters), or None."""
        return None

    def address(self) -> str | None:
        """This node's IPv4 address on its network (the ESP32's Wi-Fi station), None while it has none or the HAL
        cannot tell (no radio of its own: the simulator, the unix port)."""
        return None

    def feed_watchdog(self) -> None:
        """Tell the watchdog this tick completed."""

    def retained(self) -> bytes:
        """What retain() kept before a watchdog reset; b"" after a power cut (here: only within this process)."""
        return self._retained

    def retain(self, data: bytes) -> None:
        """Keep data (at most 64 bytes) where a watchdog reset leaves it."""
        self._retained = bytes(data)

    def close(self) -> None:
        """Release sockets and peripherals (tests, orderly shutdown)."""


def os_error_words(exc: OSError) -> str:
    """A driver's OSError as a refusal shows it: "OSError" and its arguments, which read the same on every
    interpreter (str() of an OSError differs between CPython and MicroPython)."""
    said = "OSError"
    for arg in exc.args:
        said += " " + str(arg)
    return said


def exception_words(exc: BaseException) -> str:
    """An exception as /status and the console say it: its kind, then its message, as Python's traceback ends
    ("ValueError: no 200 answer"; "MemoryError"); a driver's OSError as os_error_words says it. Not repr(),
    which reads as code ("MemoryError()", "OSError(113,)") and differs between CPython and MicroPython."""
    if isinstance(exc, OSError):
        return os_error_words(exc)
    message = str(exc)
    return type(exc).__name__ + (": " + message if message else "")


def open_hal(hw: dict[str, object]) -> Hal:
    """The HAL the wiring names (hw["hal"]), in its safe state and started; ValueError if it cannot be built or made
    safe (then no watchdog of the HAL's runs: boot.py's, after a soft reset, goes on being fed by its timer)."""
    kind = hw.get("hal", "none")
    hal: Hal
    if kind == "esp32":
        from . import hal_esp32

        hal = hal_esp32.Esp32Hal(hw)
    elif kind == "sim":
        from . import hal_sim

        hal = hal_sim.SimHal(hw)
    elif kind == "none":
        hal = Hal()
    else:
        from loadmesh.core.errors import describe  # only for the refusal

        raise ValueError("hw.hal: " + describe(kind) + " is not one of " + ", ".join(KINDS))
    # Built (every output at its safe level from its first instant), safe (each output set again: a driver that
    # fails now refuses the wiring), and only then started: the watchdog taken over and boot.py's feeder stopped.
    # Started before safe(), a safe() that raised left a watchdog no one fed, and a node whose wiring has no
    # radio reset every wdt_ms into the same refusal.
    hal.safe()
    hal.start()
    return hal
