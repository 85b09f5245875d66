# A stand-in for the ESP32's machine module, at the HAL boundary: it records what the HAL drives and
# plays back what a test scripts (ADC voltages, pin levels). Only hal_esp32's and boot.py's calls are modelled,
# and where it checks arguments or raises it does what MicroPython 1.25's esp32 port does (the C file and
# function are named at each); tests/test_node_hal_esp32.py holds it to that.
pwms = {}  # pin id -> the PWM on it
levels = {}  # pin id -> the level driven (outputs) or read (inputs)
adc_uv = {}  # pin id -> readings to return in turn, cycling (from the first read after they are set)
# pin id -> everything an output drove since record(), in order: ["level", 0|1], ["duty_u16", n], ["duty_ns", n].
# No record by default, as the fake network keeps none: a node that runs for minutes sets its pilot's duty and its
# outputs at every tick, and a list of those kept for ever grew its heap until it ran out (a board keeps nothing)
# and skewed what a script measured of it. A script that checks what was driven asks with record() before it
# builds the HAL (hal_esp32_check.py, esp32_node_check.py: one HAL, a few dozen writes).
history = {}
_recording = [False]
pulls = {}  # pin id -> the pull it was built with ("up", "down", None: none), when one was given


def record():
    """Keep what every output drives from now on (history), until the script stops."""
    _recording[0] = True


def _record(pin_id, kind, value):
    if _recording[0]:
        history.setdefault(pin_id, []).append([kind, value])
watchdog = {"timeout": None, "feeds": 0}


# The GPIOs the port has a Pin for on the classic ESP32 (ports/esp32/machine_pin.h, MICROPY_HW_ENABLE_GPIOn;
# 16 and 17 are left out of a SPIRAM build): no 24, 28..31. machine_pin_find() refuses any other number.
GPIOS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25, 26, 27,
         32, 33, 34, 35, 36, 37, 38, 39)
# board["psram"] = True plays a build for a board with PSRAM (a WROVER: CONFIG_SPIRAM), which has no Pin for 16, 17.
board = {"psram": False}
PSRAM_GPIOS = (16, 17)


class Pin:
    IN = 1  # GPIO_MODE_INPUT
    OUT = 3  # GPIO_MODE_INPUT_OUTPUT: an output reads back its level
    OPEN_DRAIN = 7  # GPIO_MODE_INPUT_OUTPUT_OD: micropython-lib's OneWire sets it
    PULL_UP = 2  # machine_pin.c's GPIO_PULL_UP
    PULL_DOWN = 1

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        if pin_id not in GPIOS or (board["psram"] and pin_id in PSRAM_GPIOS):
            raise ValueError("invalid pin")  # machine_pin.c machine_pin_find()
        self.id = pin_id
        self.mode = -1
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        # machine_pin_obj_init_helper(): a mode, pull or value left out leaves the pin's as it was.
        pin_id = self.id
        if pull != -1:
            pulls[pin_id] = "up" if pull == Pin.PULL_UP else "down" if pull == Pin.PULL_DOWN else pull
        if mode == -1:
            return
        self.mode = mode
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


# An ESP-IDF call's failure, where the port checks one: esp_errors[call] = the esp_err_t a test has that call
# return (e.g. 0x103, ESP_ERR_INVALID_STATE), from then on. Only calls the port makes for the HAL's machine calls
# and raises OSError for: the LEDC's ledc_timer_config (a PWM's new frequency) and ledc_set_duty (every duty set),
# through check_esp_err(); the task watchdog's esp_task_wdt_reconfigure (machine.WDT()), through
# mp_raise_OSError(). Out of LEDC channels or timers the port raises ValueError, not these. [code, succeeding]
# instead of the code: that call succeeds succeeding times first, then fails from then on (the port checks every
# call alike, so a duty the HAL sets after the PWM was built can fail as the constructor's could).
esp_errors = {}
esp_calls = {}  # call -> how many times the port made it (those esp_errors names)
# mphalport.c check_esp_err_(): OSError(errno, esp_err_to_name()), the errno POSIX's for these three, else the
# ESP-IDF code negated.
_ESP_ERRNO = {0x101: 12, 0x106: 95, 0x107: 110}  # ESP_ERR_NO_MEM: MP_ENOMEM, NOT_SUPPORTED, TIMEOUT
_ESP_ERR_NAMES = {0x101: "ESP_ERR_NO_MEM", 0x102: "ESP_ERR_INVALID_ARG", 0x103: "ESP_ERR_INVALID_STATE",
                  0x106: "ESP_ERR_NOT_SUPPORTED", 0x107: "ESP_ERR_TIMEOUT"}


def _esp_error(call):
    """The esp_err_t the call returns this time (0: ESP_OK)."""
    code = esp_errors.get(call)
    if isinstance(code, list):
        made = esp_calls.get(call, 0)
        esp_calls[call] = made + 1
        return code[0] if made >= code[1] else 0
    return code or 0


def _check_esp_err(call):
    code = _esp_error(call)
    if code:
        raise OSError(_ESP_ERRNO.get(code, -code), _ESP_ERR_NAMES.get(code, "ESP_FAIL"))


def _check_freq(freq):
    if freq <= 0 or freq > 40000000:  # machine_pwm.c mp_machine_pwm_init_helper(), mp_machine_pwm_freq_set()
        raise ValueError("frequency must be from 1Hz to 40MHz")


ledc_timer_freqs = []  # the frequencies the LEDC's timers are configured at


class PWM:
    # ports/esp32/machine_pwm.c. mp_machine_pwm_init_helper() has configure_channel() start the LEDC channel
    # at half its timer's range (ledc_channel_config(), which first sets the pad's GPIO level to 0, then routes
    # the channel to the pin) before set_freq() and the duty asked for; the LEDC takes a new duty at its next
    # period. So before the duty given to the constructor, the pin drives the channel's first period at that
    # half-range duty: recorded as ["first_period", None]. A test accepts it only where the port leaves no
    # choice, right before the duty the HAL asked for.
    def __init__(self, pin, freq=-1, duty_u16=-1, duty_ns=-1):
        given = (duty_u16 != -1) + (duty_ns != -1)
        if given > 1:
            raise ValueError("only one of parameters 'duty', 'duty_u16' or 'duty_ns' is allowed")
        if freq == -1:
            freq = 5000  # PWM_FREQ
        _check_freq(freq)
        self.pin = pin.id
        self.freq_hz = freq
        self.u16 = None
        self.ns = None
        pwms[pin.id] = self
        _record(self.pin, "first_period", None)  # configure_channel(): the LEDC routed to the pin
        if freq not in ledc_timer_freqs:  # set_freq(): a timer already at this frequency is shared as it is
            _check_esp_err("ledc_timer_config")
            ledc_timer_freqs.append(freq)
        if duty_ns != -1:
            self.duty_ns(duty_ns)
        else:
            self.duty_u16(32768 if duty_u16 == -1 else duty_u16)  # none given: set_duty_u10(512), 50 %

    def duty_u16(self, value=None):
        if value is None:
            return self.u16
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")  # machine_pwm.c set_duty_u16()
        _check_esp_err("ledc_set_duty")
        self.u16 = value
        self.ns = None
        _record(self.pin, "duty_u16", value)
        return None

    def duty_ns(self, value=None):
        if value is None:
            return self.ns
        # machine_pwm.c set_duty_ns(): at most one period, duty_to_ns(65535) rounded to the nearest ns.
        period_ns = (1000000000 + self.freq_hz // 2) // self.freq_hz
        if not 0 <= value <= period_ns:
            raise ValueError("duty_ns must be from 0 to " + str(period_ns) + " ns")
        _check_esp_err("ledc_set_duty")  # set_duty_ns() sets it through set_duty_u16()
        self.ns = value
        self.u16 = None
        _record(self.pin, "duty_ns", value)
        return None

    def freq(self, value=None):
        if value is None:
            return self.freq_hz
        _check_freq(value)
        self.freq_hz = value
        return None


# ports/esp32/adc.c madcblock_read_uv_helper(): read_uv() is the calibration's whole millivolts times 1000; it
# raises OSError (check_esp_err) when ensure_adc_calibration() fails: ESP-IDF's line fitting on an ESP32 whose
# eFuses hold neither a Vref nor two-point values wants a default Vref, which the port does not give
# (ESP_ERR_INVALID_ARG, 258). adc_calibrated["ok"] = False plays such a chip.
adc_calibrated = {"ok": True}
ADC_PINS = (32, 33, 34, 35, 36, 37, 38, 39, 0, 2, 4, 12, 13, 14, 15, 25, 26, 27)  # machine_adc.c madc_obj[]: ADC1, ADC2


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3

    def __init__(self, pin):
        if pin.id not in ADC_PINS:
            raise ValueError("invalid pin")  # machine_adc.c mp_machine_adc_make_new()
        self.pin = pin.id
        self.values = None
        self.position = 0
        self.attenuation = ADC.ATTN_0DB  # madc_init_helper(): 0 dB unless told

    def atten(self, attenuation):
        self.attenuation = attenuation

    def read_uv(self):
        if not adc_calibrated["ok"]:
            raise OSError(258)  # ESP_ERR_INVALID_ARG
        values = adc_uv.get(self.pin, (0,))  # a pin no test scripted reads 0 V (the HAL reads each once at boot)
        if values is not self.values:  # newly scripted: from its first reading
            self.values = values
            self.position = 0
        value = values[self.position % len(values)]
        self.position += 1
        return value // 1000 * 1000


class WDT:
    # ports/esp32/machine_wdt.c: the task watchdog, one for the chip. Building it again reconfigures its
    # timeout (esp_task_wdt_reconfigure()); nothing stops it but a hard reset.
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError()
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        code = _esp_error("esp_task_wdt_reconfigure")
        if code:
            raise OSError(code)  # mp_raise_OSError(rs_code): the esp_err_t as it is
        watchdog["timeout"] = timeout
        watchdog["feeds"] = 0

    def feed(self):
        watchdog["feeds"] += 1


PWRON_RESET = 1  # ports/esp32/modmachine.c reset_reason_t
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
resets = {"cause": PWRON_RESET, "made": 0}  # cause: what reset_cause() says (a test sets it); made: reset() calls


def reset_cause():
    return resets["cause"]


class Reset(BaseException):
    """machine.reset() ends the program on a board; here it raises this (not an Exception, as nothing a program
    catches should stop it), for the script that ran the node to catch."""


def reset():
    resets["made"] += 1
    raise Reset()


timers = {}  # timer id -> {"mode", "period", "callback"} as init() was given them


class Timer:
    # ports/esp32/machine_timer.c: ids 0..3 (two groups of two), the same object for the same id; init()'s
    # arguments are keyword-only, period in ms; the callback is scheduled (mp_sched_schedule), not run in the
    # interrupt. A soft reset disables every timer (machine_timer_deinit_all()).
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id):
        if not 0 <= id < 4:
            raise ValueError("invalid Timer number")  # machine_timer_make_new()
        self.id = id

    def init(self, *, mode=1, callback=None, period=0xFFFFFFFF, tick_hz=1000, freq=None):
        timers[self.id] = {"mode": mode, "period": period * 1000 // tick_hz, "callback": callback}

    def deinit(self):
        timers.pop(self.id, None)


rtc_memory = {"data": b""}  # RTC slow memory: kept through a reset, not a power cut
RTC_MEMORY_MAX = 2048  # ports/esp32/machine_rtc.c MICROPY_HW_RTC_USER_MEM_MAX


class RTC:
    def memory(self, data=None):
        if data is None:
            return rtc_memory["data"]
        if len(data) > RTC_MEMORY_MAX:
            raise ValueError("buffer too long")  # machine_rtc.c machine_rtc_memory()
        rtc_memory["data"] = bytes(data)
        return None


def unique_id():
    return bytes([0x24, 0x0A, 0xC4, 0x5E, 0x1F, 0x07])  # the chip's MAC, as the ESP32 port gives it
