# A stand-in for the ESP32's network module, at the HAL boundary: the Wi-Fi station as MicroPython 1.25's
# esp32 port drives it (ports/esp32/network_wlan.c), and, for a script that asks (record()), every call the HAL
# made of it, in order (station["calls"]). A test plays the driver's events: disconnected(reason) when an attempt
# or a link fails, got_ip(ifconfig) when DHCP gives an address.
#
# No record by default: a node that runs for minutes reads its address at every /status and every sync loop
# (ipconfig("addr4")), and a list of those kept for ever grew its heap by 64 bytes a request until it ran out
# (a board's network module keeps nothing). A script that checks the calls or the reads asks for them with
# record() and takes them out as it checks them (hal_esp32_check.py's ["network"] and ["reads"] steps).
#
# What the port does and this models:
# - connect() restarts the count of failed attempts, then asks the driver for one; while an attempt is under
#   way the driver refuses another ("sta is connecting, return error": OSError "Wifi Internal Error").
# - After a failed attempt the port asks again by itself, up to config(reconnects=N) times (-1, the default:
#   for ever); the count restarts only at connect() or when the radio starts, not when an address came.
# - status(): GOT_IP with an address; the reason of the last failure at once if it is a missing access point
#   (201, 210-212) or a failed authentication (202; 205 is reported as 202), even while the port still asks
#   again by itself; IDLE after disconnect() (8); CONNECTING while it asks again; then the reason, or IDLE.
# - The addresses (ports/esp32/network_common.c): ifconfig() gives (address, netmask, gateway, DNS server);
#   WLAN.ipconfig("addr4") (address, netmask) and ipconfig("gw4") the gateway, from the same interface
#   record; network.ipconfig("dns") lwIP's first DNS server, which DHCP sets (the same one). "0.0.0.0" for
#   what is not known yet. ipconfig() of any other key raises ValueError("unexpected key"); without one,
#   TypeError. Ports before ipconfig() was added (micropython#14199) have ifconfig() only: ifconfig_only()
#   makes this module one of them. Every read is kept in station["reads"], in order (once record() asked).
# - A refused call raises what the port raises: OSError with the message alone (mp_raise_msg), or for an
#   error it does not name RuntimeError("Wifi Unknown Error 0x...").
STA_IF = 0
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
_NAMED_AT_ONCE = (201, 210, 211, 212)  # the port's status() tells these before its own retries are over
_AUTH_FAIL = (202, 205)  # WIFI_REASON_AUTH_FAIL, WIFI_REASON_CONNECTION_FAIL: both STAT_WRONG_PASSWORD
_ASSOC_LEAVE = 8  # after disconnect()

station = {
    "connected": False,  # has an address (GOT_IP)
    "reason": 0,  # the last failure's reason code (0: none since the last address)
    "requested": False,  # connect() was accepted: the port asks again after a failure
    "associating": False,  # an attempt is under way: connect() is refused
    "failures": 0,  # failed attempts since connect() or the radio started
    "reconnects": -1,  # config(reconnects=N): the port's own retries after a failure; -1: for ever
    "ifconfig": ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0"),
    "rssi": -61,
    "active": False,
    "refuse": None,  # a call name ("active", "connect") that raises, as the driver can
    # ... with the port's OSError for an ESP-IDF Wi-Fi error, or its RuntimeError for any other (ESP_ERR_NO_MEM)
    "refuse_with": "OSError",
    "calls": None,  # a list once record() asked: [name, args...] of each call that drives the radio
    "reads": None,  # ... and ["ifconfig"], ["ipconfig", key], ["network.ipconfig", key]: how the HAL read addresses
}
_hostname = ["mpy-esp32"]


def record():
    """Keep the calls and the reads from now on (station["calls"], station["reads"]), until the script stops."""
    station["calls"] = []
    station["reads"] = []


def _read(*how):
    reads = station["reads"]
    if reads is not None:
        reads.append(list(how))


def _call(name, *args):
    calls = station["calls"]
    if calls is not None:
        call = [name]
        call.extend(args)  # no * in a list display on MicroPython 1.25
        calls.append(call)
    if station["refuse"] == name:
        if station["refuse_with"] == "RuntimeError":
            raise RuntimeError("Wifi Unknown Error 0x0101")
        raise OSError("Wifi Internal State Error")


def _attempts():
    """The attempts the port makes from connect() before it stops; 0: no end."""
    reconnects = station["reconnects"]
    return 0 if reconnects < 0 else reconnects + 1


def disconnected(reason):
    """The driver's event: an attempt failed, or the link was lost, for reason."""
    station["connected"] = False
    station["associating"] = False
    station["reason"] = reason
    if not (station["requested"] and station["active"]):
        return
    attempts = _attempts()
    if attempts:
        station["failures"] += 1
        if station["failures"] >= attempts:
            return
    station["associating"] = True  # the port asks again by itself


def got_ip(ifconfig):
    """The driver's event: associated, and DHCP gave an address."""
    station["connected"] = True
    station["associating"] = False
    station["reason"] = 0
    station["ifconfig"] = tuple(ifconfig)


def hostname(name=None):
    if name is None:
        return _hostname[0]
    _call("hostname", name)
    _hostname[0] = name
    return None


class WLAN:
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2

    def __init__(self, interface=STA_IF):
        self.interface = interface

    def active(self, on=None):
        if on is None:
            return station["active"]
        _call("active", on)
        station["active"] = bool(on)
        station["failures"] = 0  # the port's STA_START
        if not on:
            station["connected"] = False
            station["associating"] = False
        return None

    def config(self, **kwargs):
        _call("config", {key: kwargs[key] for key in sorted(kwargs)})
        if "reconnects" in kwargs:
            station["reconnects"] = kwargs["reconnects"]

    def connect(self, ssid=None, key=None):
        if not station["active"]:
            raise OSError("Wifi Not Started")
        _call("connect", ssid, key)
        station["failures"] = 0  # reset before the driver is asked, so even when it refuses
        if station["associating"]:
            raise OSError("Wifi Internal Error")
        station["associating"] = True
        station["requested"] = True

    def status(self, param=None):
        if param == "rssi":
            if not station["connected"]:
                raise OSError("Wifi Not Connected")
            return station["rssi"]
        if station["connected"]:
            return STAT_GOT_IP
        reason = station["reason"]
        if reason in _NAMED_AT_ONCE:
            return reason
        if reason in _AUTH_FAIL:
            return STAT_WRONG_PASSWORD
        if reason == _ASSOC_LEAVE:
            return STAT_IDLE
        attempts = _attempts()
        if station["requested"] and (attempts == 0 or station["failures"] < attempts):
            return STAT_CONNECTING
        return STAT_IDLE if reason == 0 else reason

    def isconnected(self):
        return station["connected"]

    def ifconfig(self):
        _read("ifconfig")
        return station["ifconfig"]

    def ipconfig(self, *args, **kwargs):
        if kwargs:
            raise NotImplementedError("setting is not modelled: the HAL only reads")
        if len(args) != 1:
            raise TypeError("must query one param")
        key = args[0]
        _read("ipconfig", key)
        address, netmask, gateway, _ = station["ifconfig"]
        if key == "addr4":
            return (address, netmask)
        if key == "gw4":
            return gateway
        if key == "dhcp4":
            return True
        raise ValueError("unexpected key")


def ipconfig(*args, **kwargs):
    if kwargs:
        raise NotImplementedError("setting is not modelled: the HAL only reads")
    if len(args) != 1:
        raise TypeError("must query one param")
    _read("network.ipconfig", args[0])
    if args[0] == "dns":
        return station["ifconfig"][3]
    raise ValueError("unexpected key")


def ifconfig_only():
    """This module as a port before ipconfig() was added: WLAN.ifconfig() alone tells the addresses."""
    global ipconfig
    del WLAN.ipconfig
    del ipconfig
