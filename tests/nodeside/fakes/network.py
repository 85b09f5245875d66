# A stand-in for the ESP32's network module, at the HAL boundary: the Wi-Fi station as a test scripts it.
STA_IF = 0
station = {"connected": False, "ifconfig": ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")}


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface

    def isconnected(self):
        return station["connected"]

    def ifconfig(self):
        return station["ifconfig"]
