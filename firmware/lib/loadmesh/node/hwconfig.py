"""The ESP32 node's wiring (hw.json): pins, calibration and watchdog, checked, with defaults filled in."""

from loadmesh.core import fieldcheck as fc
from loadmesh.core.errors import FieldError, quoted

from . import localtime
from .hal import TEMPERATURES

# Every part is optional: a node has the parts its load needs (an EVSE the
# pilot and a CT per phase, a valve node the valve, a room sensor and the
# clock, the boiler node the call relay, flow/return sensors and the flame
# input). An example:
#
#   {"hal": "esp32", "wdt_ms": 2000,
#    "pilot": {"pwm_pin": 25, "adc_pin": 36},
#    "relay": {"pin": 26},
#    "ct": [{"pin": 32, "ma_per_v": 30000}, null, null],
#    "valve": {"kind": "servo", "pin": 14, "feedback": {"kind": "adc", "pin": 35, "closed_mv": 300, "open_mv": 2900}},
#    "onewire": {"pin": 4, "sensors": {"room": "28ff4a1b03170467"}},
#    "clock": {"tz": "CET-1CEST,M3.5.0,M10.5.0/3", "ntp": ["gateway"]},
#    "wifi": {"ssid": "House", "password": "correct horse battery"}}
#
# A boiler node: "boiler" (the call-for-heat relay) and, for a boiler with a
# 0-10 V flow setpoint input, "setpoint": a PWM pin into a PWM-to-0-10 V
# converter, low_dc at 0 V and high_dc at 10 V (the boiler's scale; the
# default 0-100 °C is 0.1 V per °C). Without it the boiler keeps its own
# setpoint, and the cooldown (docs/heating.md) is only published. "flame":
# the burner's "lit" signal on a digital input (a volt-free contact or an
# optocoupler with a steady output), lit_level its level while lit, pull the
# chip's pull on it; without it the boiler node sees no flame and starts no
# short-cycling cooldown.
#
# The clock (a valve node's schedule runs on local time of week): "clock"
# {"tz": the house's POSIX TZ string (localtime; required: a guessed zone
# would run every schedule at the wrong hours), "ntp": up to 3 servers, each
# a unicast IPv4 address, "gateway" (the router the node's Wi-Fi reaches the
# network through) or a host name ("de.pool.ntp.org", looked up by a query
# of the node's own to the network's DNS server, sntp and resolver: RFC
# 1123's letters, digits and hyphens, labels of 1..63 that neither start
# nor end with a hyphen, at least two of them, the last not all digits, 253
# characters at most; no trailing dot), ["gateway"] by default; no server
# twice, a name in any case}. Without "clock" the node has no time of week:
# every room in auto mode holds its schedule's default target.
#
# The Wi-Fi (wifijoin, hal_esp32): "wifi" {"ssid": the network's name, 1 to 32
# bytes; "password": its WPA2/WPA3 passphrase, 8 to 63 printable ASCII
# characters, or the 64 hex digits of its key, or "" for an open network;
# "hostname": the name the node gives DHCP and answers to on mDNS, 1 to 32
# letters, digits or hyphens, "loadmesh-" and the last 6 hex digits of the
# chip's MAC by default}. The password is kept in hw.json on the node's flash,
# in clear, as the radio needs it; nothing the node serves contains it, and
# no error message shows it. Without "wifi" the node leaves the station as it
# finds it (a board whose network something else brings up).
#
# The watchdog: 2 s by default. A littlefs rename commits a metadata block,
# and at worst compacts one: a 4 KB sector erase (up to 400 ms on common SPI
# flash such as the W25Q32) plus programming; writing a config file can need
# one more erase. 2 s covers twice that worst case, and stays within the
# 3 s peer timeout, which the safety rules assume (a hung node is reset, and
# boots safe, before its peers stop reserving its last applied limit).

MAX_PIN = 39
# The numbers below MAX_PIN with no GPIO behind them: MicroPython's machine.Pin refuses them ("invalid pin",
# ports/esp32/machine_pin.h), an error that names no field.
NO_GPIO = (24, 28, 29, 30, 31)
FLASH_PINS = (6, 7, 8, 9, 10, 11)  # wired to the module's SPI flash: driving one stops the chip
CONSOLE_PINS = (1, 3)  # UART0: the boot log and the REPL, the way back into a node
# Strapping pins read at reset: GPIO 0 held low boots the ROM downloader,
# GPIO 12 held high selects 1.8 V for a 3.3 V flash. Whatever is wired to them
# can keep the node from booting, so they are left alone.
BOOT_PINS = (0, 12)
# Weakly pulled up or down inside the chip from reset until the firmware sets
# the pin (ESP32 datasheet; ESP-IDF "SD pull-up requirements"). A contactor or
# burner relay whose "on" level is that pull can switch on at every restart.
PULLED_UP_AT_RESET = (5, 13, 15)
PULLED_DOWN_AT_RESET = (2, 4)
INPUT_ONLY_MIN = 34  # GPIO 34..39 have no output driver
ADC1_MIN = 32  # ADC1 is GPIO 32..39; ADC2 cannot be read while Wi-Fi runs
WDT_MIN_MS = 1000
WDT_MAX_MS = 8000
WDT_DEFAULT_MS = 2000
VALVE_KINDS = ("pwm", "servo", "relay")
FEEDBACK_KINDS = ("switch", "adc")

_TOP = ("hal", "wdt_ms", "mains_hz", "pilot", "relay", "boiler", "setpoint", "valve", "ct", "onewire", "flame",
        "clock", "wifi")
_PILOT = ("pwm_pin", "adc_pin", "inverted", "zero_uv", "uv_per_v", "samples")
_SWITCH = ("pin", "active_high")
_SETPOINT = ("pin", "freq_hz", "low_dc", "high_dc")
_VALVE = ("kind", "pin", "freq_hz", "closed_us", "open_us", "active_high", "feedback")
_FEEDBACK = ("kind", "pin", "closed_mv", "open_mv", "open_level", "pull")
PULLS = ("up", "down")
_CT = ("pin", "ma_per_v", "floor_ma")
_ONEWIRE = ("pin", "sensors")
_FLAME = ("pin", "lit_level", "pull")
_CLOCK = ("tz", "ntp")
_WIFI = ("ssid", "password", "hostname")
SSID_MAX_BYTES = 32
PASSPHRASE_MIN = 8  # IEEE 802.11i: a WPA passphrase is 8..63 printable ASCII characters
PASSPHRASE_MAX = 63
PSK_HEX_DIGITS = 64  # or the 256-bit key itself, in hex
HOSTNAME_MAX = 32  # the ESP32 port's limit (MICROPY_PY_NETWORK_HOSTNAME_MAX_LEN)
MAX_NTP_SERVERS = 3
GATEWAY = "gateway"  # sntp.GATEWAY
MAX_HOST_NAME = 253  # characters, without a trailing dot: 255 bytes as a DNS name (RFC 1035 2.3.4)
MAX_LABEL = 63
_DOTTED = "0123456789."
_HOST_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"


def parse(hw: object) -> dict[str, object]:
    """The wiring checked and completed; FieldError names the first bad field."""
    top = fc.obj(hw, "hw")
    fc.only(top, _TOP, "hw")
    fc.choice_field(top, "hal", "hw", ("esp32",))
    out: dict[str, object] = {
        "hal": "esp32",
        "wdt_ms": fc.int_field(top, "wdt_ms", "hw", WDT_MIN_MS, WDT_MAX_MS, WDT_DEFAULT_MS),
        "mains_hz": fc.int_field(top, "mains_hz", "hw", 50, 60, 50),
    }
    if out["mains_hz"] not in (50, 60):
        raise FieldError("hw.mains_hz", str(out["mains_hz"]) + " is not 50 or 60")
    if top.get("pilot") is not None:
        out["pilot"] = _pilot(top["pilot"])
    for name in ("relay", "boiler"):
        if top.get(name) is not None:
            out[name] = _switch(top[name], "hw." + name)
    if top.get("setpoint") is not None:
        out["setpoint"] = _setpoint(top["setpoint"])
    if top.get("valve") is not None:
        out["valve"] = _valve(top["valve"])
    if top.get("ct") is not None:
        out["ct"] = _cts(top["ct"])
    if top.get("onewire") is not None:
        out["onewire"] = _onewire(top["onewire"])
    if top.get("flame") is not None:
        out["flame"] = _flame(top["flame"])
    if top.get("clock") is not None:
        out["clock"] = _clock(top["clock"])
    if top.get("wifi") is not None:
        out["wifi"] = _wifi(top["wifi"])
    _check_pins(out)
    return out


def _check_pins(out: dict[str, object]) -> None:
    """Each pin used once, and able to do what it is used for on the ESP32."""
    seen: dict[int, str] = {}
    for path, pin, use in pins(out):
        assert isinstance(pin, int)
        if pin in NO_GPIO:
            raise FieldError(path, str(pin) + " is not a GPIO of the ESP32 (it has none of 24 and 28..31)")
        if pin in FLASH_PINS:
            raise FieldError(path, str(pin) + " is wired to the module's flash (GPIO 6..11)")
        if pin in CONSOLE_PINS:
            raise FieldError(path, str(pin) + " is the console's UART (GPIO 1 and 3)")
        if pin in BOOT_PINS:
            raise FieldError(path, str(pin) + " is a strapping pin (GPIO 0 and 12): what is wired to it can "
                             "keep the node from booting")
        if use == "switch_high" and pin in PULLED_UP_AT_RESET:
            raise FieldError(path, str(pin) + " is pulled up at reset (GPIO 5, 13, 15): an active-high relay "
                             "there can switch on at every restart; use another pin or an active-low relay")
        if use == "switch_low" and pin in PULLED_DOWN_AT_RESET:
            raise FieldError(path, str(pin) + " is pulled down at reset (GPIO 2, 4): an active-low relay "
                             "there can switch on at every restart; use another pin or an active-high relay")
        if use != "in" and use != "adc" and pin >= INPUT_ONLY_MIN:
            raise FieldError(path, str(pin) + " is input only (GPIO 34..39); an output needs another pin")
        if use == "adc" and pin < ADC1_MIN:
            raise FieldError(path, str(pin) + " is not an ADC1 pin (GPIO 32..39); ADC2 cannot be read "
                             "while Wi-Fi runs")
        if pin in seen:
            raise FieldError(path, str(pin) + " is already used by " + seen[pin])
        seen[pin] = path


def pins(out: dict[str, object]) -> list[tuple[str, object, str]]:
    """Every pin the wiring uses, in a fixed order: (field, GPIO, use).

    use: "in", "adc", "out", or for the contactor and the burner's call
    relay "switch_high" / "switch_low" (the level that switches it on)."""
    found: list[tuple[str, object, str]] = []
    pilot = out.get("pilot")
    if isinstance(pilot, dict):
        found.append(("hw.pilot.pwm_pin", pilot["pwm_pin"], "out"))
        found.append(("hw.pilot.adc_pin", pilot["adc_pin"], "adc"))
    for name in ("relay", "boiler"):
        part = out.get(name)
        if isinstance(part, dict):
            found.append(("hw." + name + ".pin", part["pin"], "switch_high" if part["active_high"] else "switch_low"))
    setpoint = out.get("setpoint")
    if isinstance(setpoint, dict):
        found.append(("hw.setpoint.pin", setpoint["pin"], "out"))
    valve = out.get("valve")
    if isinstance(valve, dict):
        found.append(("hw.valve.pin", valve["pin"], "out"))
        feedback = valve.get("feedback")
        if isinstance(feedback, dict):
            found.append(("hw.valve.feedback.pin", feedback["pin"], "adc" if feedback["kind"] == "adc" else "in"))
    cts = out.get("ct")
    if isinstance(cts, list):
        for phase in range(len(cts)):
            ct = cts[phase]
            if isinstance(ct, dict):
                found.append((fc.index("hw.ct", phase) + ".pin", ct["pin"], "adc"))
    wire = out.get("onewire")
    if isinstance(wire, dict):
        found.append(("hw.onewire.pin", wire["pin"], "out"))  # open drain: it drives the bus low
    flame = out.get("flame")
    if isinstance(flame, dict):
        found.append(("hw.flame.pin", flame["pin"], "in"))
    return found


def _pin(part: dict[str, object], path: str, key: str = "pin") -> int:
    return fc.int_field(part, key, path, 0, MAX_PIN)


def _pilot(value: object) -> dict[str, object]:
    path = "hw.pilot"
    part = fc.obj(value, path)
    fc.only(part, _PILOT, path)
    return {
        "pwm_pin": _pin(part, path, "pwm_pin"),
        "adc_pin": _pin(part, path, "adc_pin"),
        "inverted": fc.bool_field(part, "inverted", path, False),
        # The board's CP front end: the ADC voltage at 0 V on CP, and per volt.
        # The defaults map -12..+12 V to 0.25..2.35 V, inside the range the
        # ESP32's ADC reads accurately at 11 dB; calibrate them per board.
        "zero_uv": fc.int_field(part, "zero_uv", path, 0, 3300000, 1300000),
        "uv_per_v": fc.int_field(part, "uv_per_v", path, 1000, 1000000, 87500),
        "samples": fc.int_field(part, "samples", path, 8, 200, 40),
    }


def _switch(value: object, path: str) -> dict[str, object]:
    part = fc.obj(value, path)
    fc.only(part, _SWITCH, path)
    return {"pin": _pin(part, path), "active_high": fc.bool_field(part, "active_high", path, True)}


def _setpoint(value: object) -> dict[str, object]:
    path = "hw.setpoint"
    part = fc.obj(value, path)
    fc.only(part, _SETPOINT, path)
    low_dc = fc.int_field(part, "low_dc", path, 0, 1500, 0)
    high_dc = fc.int_field(part, "high_dc", path, 0, 1500, 1000)
    if high_dc <= low_dc:
        raise FieldError(path + ".high_dc", str(high_dc) + " is not above low_dc " + str(low_dc))
    return {"pin": _pin(part, path), "freq_hz": fc.int_field(part, "freq_hz", path, 10, 40000, 1000),
            "low_dc": low_dc, "high_dc": high_dc}


def _valve(value: object) -> dict[str, object]:
    path = "hw.valve"
    part = fc.obj(value, path)
    fc.only(part, _VALVE, path)
    kind = fc.choice_field(part, "kind", path, VALVE_KINDS)
    out: dict[str, object] = {
        "kind": kind,
        "pin": _pin(part, path),
        # Servos want 50 Hz; a PWM actuator input (filtered to 0-10 V) 1 kHz.
        "freq_hz": fc.int_field(part, "freq_hz", path, 10, 40000, 50 if kind == "servo" else 1000),
        "closed_us": fc.int_field(part, "closed_us", path, 300, 3000, 1000),
        "open_us": fc.int_field(part, "open_us", path, 300, 3000, 2000),
        "active_high": fc.bool_field(part, "active_high", path, True),
    }
    if kind == "servo":
        # A pulse shorter than a period: MicroPython's machine.PWM.duty_ns() raises ValueError past one (which
        # stopped the node at the first command that far open, at every boot), and one a period long is a
        # constant level, no pulse.
        freq_hz = out["freq_hz"]
        assert isinstance(freq_hz, int)
        period_us = 1000000 // freq_hz
        for key in ("closed_us", "open_us"):
            pulse_us = out[key]
            assert isinstance(pulse_us, int)
            if pulse_us >= period_us:
                raise FieldError(path + "." + key, str(pulse_us) + " is not shorter than a period at freq_hz "
                                 + str(freq_hz) + " (" + str(period_us) + " us)")
    if part.get("feedback") is not None:
        out["feedback"] = _feedback(part["feedback"])
    return out


def _feedback(value: object) -> dict[str, object]:
    path = "hw.valve.feedback"
    part = fc.obj(value, path)
    fc.only(part, _FEEDBACK, path)
    kind = fc.choice_field(part, "kind", path, FEEDBACK_KINDS)
    pin = _pin(part, path)
    out: dict[str, object] = {"kind": kind, "pin": pin}
    if kind == "adc":
        if part.get("pull") is not None:
            raise FieldError(path + ".pull", "is for an end switch (kind switch) only: a pull would shift an ADC "
                             "feedback's voltage")
        out["closed_mv"] = fc.int_field(part, "closed_mv", path, 0, 3300)
        out["open_mv"] = fc.int_field(part, "open_mv", path, 0, 3300)
        if out["closed_mv"] == out["open_mv"]:
            raise FieldError(path + ".open_mv", str(out["open_mv"]) + " equals closed_mv")
    else:
        # The end switch's level when the valve is fully open.
        out["open_level"] = fc.int_field(part, "open_level", path, 0, 1, 1)
        out["pull"] = _pull(part, path, pin)
    return out


def _pull(part: dict[str, object], path: str, pin: int) -> str | None:
    """The chip's own pull on a digital input, so that a broken wire reads a fixed level rather than floating.

    null (the default): none, as for a switch with its own resistor."""
    pull = part.get("pull")
    if pull is None:
        return None
    pull = fc.choice_field(part, "pull", path, PULLS)
    if pin >= INPUT_ONLY_MIN:
        raise FieldError(path + ".pull", fc.describe(pull) + ": GPIO " + str(pin) + " has no internal "
                         "pull (GPIO 34..39); fit a resistor, or use another pin")
    return pull


def _flame(value: object) -> dict[str, object]:
    path = "hw.flame"
    part = fc.obj(value, path)
    fc.only(part, _FLAME, path)
    pin = _pin(part, path)
    return {"pin": pin, "lit_level": fc.int_field(part, "lit_level", path, 0, 1, 1), "pull": _pull(part, path, pin)}


def _clock(value: object) -> dict[str, object]:
    path = "hw.clock"
    part = fc.obj(value, path)
    fc.only(part, _CLOCK, path)
    if part.get("tz") is None:
        raise FieldError(path + ".tz", "is missing: the house's time zone as a POSIX TZ string, e.g. "
                         + localtime.EXAMPLE)
    localtime.parse(part["tz"], path + ".tz")
    where = path + ".ntp"
    servers = fc.array(part.get("ntp", [GATEWAY]), where)
    if not 1 <= len(servers) <= MAX_NTP_SERVERS:
        raise FieldError(where, "has " + str(len(servers)) + " entries; 1 to " + str(MAX_NTP_SERVERS) + " servers")
    for position in range(len(servers)):
        server = servers[position]
        if server != GATEWAY:
            problem = _server_problem(server)
            if problem:
                raise FieldError(fc.index(where, position), fc.describe(server) + problem)
        folded = str(server).lower()  # a string by now
        for earlier in range(position):  # a host name's case does not matter (RFC 4343): the same server
            other = str(servers[earlier])
            if other == server:
                raise FieldError(fc.index(where, position), fc.describe(server) + " is listed twice")
            if other.lower() == folded:
                raise FieldError(fc.index(where, position), fc.describe(server) + " is listed twice: as "
                                 + fc.describe(other) + " in " + fc.index(where, earlier)
                                 + " (a host name's case does not matter)")
    return {"tz": part["tz"], "ntp": list(servers)}


def _server_problem(value: object) -> str:
    """"" for an NTP server entry that is a unicast IPv4 address or a host name; else what is wrong with it."""
    if not isinstance(value, str):
        return " is not an IPv4 address, \"gateway\" or a host name"
    if value and all(char in _DOTTED for char in value):
        if _unicast_ipv4(value):
            return ""
        return " is not a unicast IPv4 address (1..223.0..255.0..255.0..255, no leading zeros)"
    problem = _host_name_problem(value)
    return " is not an IPv4 address, \"gateway\" or a host name: " + problem if problem else ""


def _host_name_problem(name: str) -> str:
    """"" for a host name by RFC 1123 (2.1), else what is wrong with it."""
    if not name:
        return "it is empty"
    if len(name) > MAX_HOST_NAME:
        return "it has " + str(len(name)) + " characters, at most " + str(MAX_HOST_NAME)
    labels = name.split(".")
    if len(labels) < 2:
        return "it has no dot (a name of one label is local, looked up by a search list the node does not " \
            "have: give the full name)"
    for label in labels:
        if not label:
            return "it has an empty label (two dots in a row, or a dot at an end)"
        if len(label) > MAX_LABEL:
            return "its label " + quoted(label[:20] + "...") + " has " + str(len(label)) + " characters, at " \
                "most " + str(MAX_LABEL)
        problem = _label_problem(label)
        if problem:
            return problem
    if all(char in _DOTTED for char in labels[-1]):
        return "its last label " + quoted(labels[-1]) + " is all digits (no top-level domain is)"
    return ""


def _label_problem(label: str) -> str:
    """"" for one non-empty label of a host name (RFC 1123), else what is wrong with it."""
    for char in label:
        if char not in _HOST_CHARS:
            return "it has " + quoted(char) + " (letters, digits, hyphens and dots only)"
    if label[0] == "-" or label[-1] == "-":
        return "its label " + quoted(label) + " starts or ends with a hyphen"
    return ""


def _wifi(value: object) -> dict[str, object]:
    """The "wifi" part checked (runtime opens the radio alone with it when the rest of hw.json is refused)."""
    path = "hw.wifi"
    part = fc.obj(value, path)
    fc.only(part, _WIFI, path)
    ssid = part.get("ssid")
    if not isinstance(ssid, str) or not ssid:
        raise FieldError(path + ".ssid", "is missing: the network's name" if ssid is None else
                         fc.describe(ssid) + " is not a network name (a non-empty string)")
    size = len(ssid.encode())
    if size > SSID_MAX_BYTES:
        raise FieldError(path + ".ssid", fc.describe(ssid) + " is " + str(size) + " bytes; a network name has at "
                         "most " + str(SSID_MAX_BYTES))
    _password(part.get("password"), path + ".password")
    hostname = part.get("hostname")
    if hostname is not None and not _hostname(hostname):
        raise FieldError(path + ".hostname", fc.describe(hostname) + " is not a host name: 1 to " + str(HOSTNAME_MAX)
                         + " letters, digits and hyphens, not starting or ending with a hyphen")
    return {"ssid": ssid, "password": part["password"], "hostname": hostname}


def _password(password: object, path: str) -> None:
    """A passphrase, a hex key or "" (open); the message never shows the value, only its length."""
    if password is None:
        raise FieldError(path, "is missing: the network's passphrase, or \"\" for an open network")
    if not isinstance(password, str):
        raise FieldError(path, "is not a string (write the passphrase in quotes)")
    if password == "":
        return
    count = len(password)
    if count == PSK_HEX_DIGITS:
        for char in password:
            if char not in "0123456789abcdefABCDEF":
                raise FieldError(path, "has 64 characters, so it is the key in hex, but not all are hex digits (a "
                                 "passphrase has 8 to 63 characters)")
        return
    if not PASSPHRASE_MIN <= count <= PASSPHRASE_MAX:
        raise FieldError(path, "has " + str(count) + " characters; a passphrase has " + str(PASSPHRASE_MIN) + " to "
                         + str(PASSPHRASE_MAX) + " (or the key: 64 hex digits; \"\" for an open network)")
    for position in range(count):
        if not 32 <= ord(password[position]) <= 126:
            raise FieldError(path, "character " + str(position + 1) + " of " + str(count) + " is not printable "
                             "ASCII, which a passphrase is made of")


def _hostname(value: object) -> bool:
    """A name the node can give DHCP and mDNS: one label of a host name, at most the port's length."""
    return isinstance(value, str) and 1 <= len(value) <= HOSTNAME_MAX and not _label_problem(value)


def _unicast_ipv4(value: object) -> bool:
    from .settings import ipv4_octets  # an occasional module (runtime._OCCASIONAL): the wiring is read at boot

    octets = ipv4_octets(value)
    return octets is not None and 0 < octets[0] < 224  # not 0.x (this network), not multicast or broadcast


def _cts(value: object) -> list[object]:
    path = "hw.ct"
    items = fc.array(value, path)
    if len(items) > 3:
        raise FieldError(path, "has " + str(len(items)) + " entries; one per phase, at most 3")
    out: list[object] = [None, None, None]
    for position in range(len(items)):
        if items[position] is None:
            continue
        where = fc.index(path, position)
        part = fc.obj(items[position], where)
        fc.only(part, _CT, where)
        out[position] = {
            "pin": _pin(part, where),
            "ma_per_v": fc.int_field(part, "ma_per_v", where, 100, 1000000),
            "floor_ma": fc.int_field(part, "floor_ma", where, 0, 10000, 200),
        }
    return out


def _onewire(value: object) -> dict[str, object]:
    path = "hw.onewire"
    part = fc.obj(value, path)
    fc.only(part, _ONEWIRE, path)
    sensors = fc.obj(part.get("sensors"), path + ".sensors")
    fc.only(sensors, TEMPERATURES, path + ".sensors")
    roms: dict[str, object] = {}
    for name in sorted(sensors):
        rom = sensors[name]
        where = path + ".sensors." + name
        if not isinstance(rom, str) or len(rom) != 16:
            raise FieldError(where, fc.describe(rom) + " is not a 1-Wire ROM id (16 hex digits)")
        for char in rom:
            if char not in "0123456789abcdef":
                raise FieldError(where, fc.describe(rom) + " is not lowercase hex")
        roms[name] = rom
    return {"pin": _pin(part, path), "sensors": roms}
