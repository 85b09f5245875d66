# A stand-in for the ESP32's machine module, at the HAL boundary: it records what the HAL drives and
# plays back what a test scripts (ADC voltages, pin levels). Only hal_esp32's calls are modelled.
pwms = {}  # pin id -> the PWM on it
levels = {}  # pin id -> the level driven (outputs) or read (inputs)
adc_uv = {}  # pin id -> readings to return in turn, cycling
watchdog = {"timeout": None, "feeds": 0}


class Pin:
    IN = 1
    OUT = 3

    def __init__(self, pin_id, mode=-1, pull=-1):
        self.id = pin_id
        self.mode = mode

    def value(self, level=None):
        if level is None:
            return levels.get(self.id, 0)
        levels[self.id] = level
        return None


class PWM:
    def __init__(self, pin, freq=0, duty_u16=None):
        self.pin = pin.id
        self.freq_hz = freq
        self.u16 = duty_u16
        self.ns = None
        pwms[pin.id] = self

    def duty_u16(self, value=None):
        if value is None:
            return self.u16
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 out of range")
        self.u16 = value
        self.ns = None
        return None

    def duty_ns(self, value=None):
        if value is None:
            return self.ns
        self.ns = value
        self.u16 = None
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
