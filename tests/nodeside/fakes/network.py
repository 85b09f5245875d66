# A stand-in for the ESP32's network module, at the HAL boundary: the Wi-Fi station as a test scripts it,
# and every call the HAL made of it, in order (station["calls"]).
STA_IF = 0
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202

station = {
    "connected": False,  # has an address (GOT_IP)
    "status": STAT_IDLE,  # what status() answers while not connected
    "ifconfig": ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0"),
    "rssi": -61,
    "active": False,
    "refuse": None,  # a call name ("active", "connect") that raises, as the driver can
    # ... with the port's OSError for an ESP-IDF Wi-Fi error, or its RuntimeError for any other (ESP_ERR_NO_MEM)
    "refuse_with": "OSError",
    "calls": [],
}
_hostname = ["mpy-esp32"]


def _call(name, *args):
    call = [name]
    call.extend(args)  # no * in a list display on MicroPython 1.25
    station["calls"].append(call)
    if station["refuse"] == name:
        if station["refuse_with"] == "RuntimeError":
            raise RuntimeError("Wifi Unknown Error 0x0101")
        raise OSError(-1, "Wifi Internal State Error")


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
        return None

    def config(self, **kwargs):
        _call("config", {key: kwargs[key] for key in sorted(kwargs)})

    def connect(self, ssid=None, key=None):
        if not station["active"]:
            raise OSError(-1, "Wifi Not Started")
        _call("connect", ssid, key)
        station["status"] = STAT_CONNECTING

    def status(self, param=None):
        if param == "rssi":
            if not station["connected"]:
                raise OSError(-1, "Wifi Not Connected")
            return station["rssi"]
        return STAT_GOT_IP if station["connected"] else station["status"]

    def isconnected(self):
        return station["connected"]

    def ifconfig(self):
        return station["ifconfig"]
