# A stand-in for the ESP32's machine module, at the HAL boundary: it records what the HAL drives and
# plays back what a test scripts (ADC voltages, pin levels). Only hal_esp32's calls are modelled.
pwms = {}  # pin id -> the PWM on it
levels = {}  # pin id -> the level driven (outputs) or read (inputs)
adc_uv = {}  # pin id -> readings to return in turn, cycling
# pin id -> everything an output ever drove, in order: ["level", 0|1], ["duty_u16", n], ["duty_ns", n].
history = {}
pulls = {}  # pin id -> the pull it was built with ("up", "down", None: none), when one was given


def _record(pin_id, kind, value):
    history.setdefault(pin_id, []).append([kind, value])
watchdog = {"timeout": None, "feeds": 0}


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    PULL_DOWN = 1

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        self.id = pin_id
        self.mode = mode
        if pull != -1:
            pulls[pin_id] = "up" if pull == Pin.PULL_UP else "down" if pull == Pin.PULL_DOWN else pull
        if mode == Pin.OUT:
            # As the ESP32 port does: value= is set before the output driver is
            # enabled; without it the pin drives what its output register
            # holds, 0 after reset.
            level = levels.get(pin_id, 0) if value is None else value
            levels[pin_id] = level
            _record(pin_id, "level", level)

    def value(self, level=None):
        if level is None:
            return levels.get(self.id, 0)
        levels[self.id] = level
        if self.mode == Pin.OUT:
            _record(self.id, "level", level)
        return None


class PWM:
    def __init__(self, pin, freq=0, duty_u16=None, duty_ns=None):
        if duty_u16 is not None and duty_ns is not None:
            raise ValueError("only one of parameters 'duty', 'duty_u16' or 'duty_ns' is allowed")
        self.pin = pin.id
        self.freq_hz = freq
        self.u16 = duty_u16
        self.ns = duty_ns
        if duty_u16 is None and duty_ns is None:
            self.u16 = 32768  # the ESP32 port's default: 50 %
        pwms[pin.id] = self
        if self.ns is None:
            _record(self.pin, "duty_u16", self.u16)
        else:
            _record(self.pin, "duty_ns", self.ns)

    def duty_u16(self, value=None):
        if value is None:
            return self.u16
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 out of range")
        self.u16 = value
        self.ns = None
        _record(self.pin, "duty_u16", value)
        return None

    def duty_ns(self, value=None):
        if value is None:
            return self.ns
        self.ns = value
        self.u16 = None
        _record(self.pin, "duty_ns", value)
        return None

    def freq(self, value=None):
        if value is None:
            return self.freq_hz
        self.freq_hz = value
        return None


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin):
        self.pin = pin.id
        self.position = 0
        self.attenuation = None

    def atten(self, attenuation):
        self.attenuation = attenuation

    def read_uv(self):
        values = adc_uv[self.pin]
        value = values[self.position % len(values)]
        self.position += 1
        return value


class WDT:
    def __init__(self, id=0, timeout=5000):
        watchdog["timeout"] = timeout
        watchdog["feeds"] = 0

    def feed(self):
        watchdog["feeds"] += 1


PWRON_RESET = 1
SOFT_RESET = 5
reset = {"cause": PWRON_RESET}  # what reset_cause() says: a test sets it


def reset_cause():
    return reset["cause"]


timers = {}  # timer id -> {"mode", "period", "callback"} as init() was given them


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id):
        self.id = id

    def init(self, mode=1, period=-1, callback=None):
        timers[self.id] = {"mode": mode, "period": period, "callback": callback}

    def deinit(self):
        timers.pop(self.id, None)


rtc_memory = {"data": b""}  # RTC slow memory: kept through a reset, not a power cut


class RTC:
    def memory(self, data=None):
        if data is None:
            return rtc_memory["data"]
        rtc_memory["data"] = bytes(data)
        return None


def unique_id():
    return bytes([0x24, 0x0A, 0xC4, 0x5E, 0x1F, 0x07])  # the chip's MAC, as the ESP32 port gives it
