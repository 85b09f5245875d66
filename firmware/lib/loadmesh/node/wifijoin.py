"""Joining the Wi-Fi: when the station connects again, and what /status tells of it; the radio calls are hal_esp32's."""

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value

# The ESP32 HAL starts the station (hw.json "wifi") with DRIVER_RECONNECTS 0:
# the port's driver makes one attempt per connect() and no retries of its
# own, after a failed attempt or a lost link alike; every retry is ours,
# spaced out. Its retries cannot be left to it on MicroPython 1.22 and later
# (ports/esp32/network_wlan.c): status() reports no_ap_found (201, 210-212)
# and wrong_password (202, 205) as soon as one attempt fails, while the
# driver is still retrying, and a connect() during one of its attempts is
# refused ("Wifi Internal Error", micropython#17661). With none of its own,
# a reason code in status() means the driver has stopped and connect() is
# taken. (Its default, retrying for ever, would also say "connecting" for
# ever after any other failure, e.g. a handshake timeout.)
#
# - Esp32Hal.poll() hands step() the status code every tick; it is looked at
#   once a second (CHECK_MS).
# - Up (GOT_IP): nothing to do; the wait starts over, so that the next loss
#   is retried at once (RETRY_MIN_MS after the last try at the earliest),
#   not a minute later because the tries before this join were failing.
# - Connecting: the driver's attempt is under way, or DHCP has not given an
#   address yet (the port says so for as long as it has none); wait.
# - Idle, or a reason code (the attempt failed): connect() again, at the
#   earliest RETRY_MIN_MS after the last try, the wait doubling up to
#   RETRY_MAX_MS while the tries fail: a node rejoins within a minute of
#   its access point coming back, and a wrong password is not hammered in.
#
# Each step also says what changed (Join.change), for the console line the
# HAL prints, once per change: UP when the station came up, LOST when an up
# link went down, FAILED when a try failed for a reason other than the last
# one told (a wrong password is told once, not at every try), None else.
#
# The node is safe whatever happens here: with the radio down it hears no
# peer and falls to its failsafe current (docs/safety.md, rule 3); joining
# only brings the group back.

CHECK_MS = const(1000)
RETRY_MIN_MS = const(5000)
RETRY_MAX_MS = const(60000)
DRIVER_RECONNECTS = const(0)  # WLAN.config(reconnects=): the driver's own retries

# network.STAT_* on the ESP32 port: its own three, and the ESP-IDF reasons
# (wifi_err_reason_t) of the last failure, which it passes through (205,
# connection failed, as 202).
IDLE = const(1000)
CONNECTING = const(1001)
GOT_IP = const(1010)
# 15 is the 802.11 code for a WPA handshake the access point gave up, which
# is how a wrong WPA2 password often shows (the port names only 202 so).
_REASONS = ((15, "4way_handshake_timeout"), (200, "beacon_timeout"), (201, "no_ap_found"), (202, "wrong_password"),
            (203, "connect_failed"), (204, "handshake_timeout"), (210, "no_ap_with_compatible_security"),
            (211, "no_ap_in_authmode_threshold"), (212, "no_ap_in_rssi_threshold"))

_HEX = "0123456789abcdef"
UP = "up"
JOINING = "joining"
DOWN = "down"
DRIVER_ERROR = "driver_error"  # a call into the radio raised
LOST = "lost"  # Join.change: an up link went down (UP: it came up)
FAILED = "failed"  # Join.change: a try failed, for a reason not told since the last change


def reason(code: int) -> str:
    """The name of a disconnect reason code, "reason N" for one without a name here."""
    for known, name in _REASONS:
        if known == code:
            return name
    return "reason " + str(code)


class Join:
    """The station's state and when to try again; step() says when to call connect()."""

    def __init__(self) -> None:
        self.state = DOWN
        self.since_ms = 0  # when the state began
        self.reason: str | None = None  # why the last try failed; None once up
        self.tries = 0  # connect() calls
        self.joins = 0  # times the station came up
        self.lost = 0  # times an up link went down
        self._next_ms = 0  # the earliest next connect() (0: at the first step)
        self._tried_ms = 0  # the last connect()
        self._retry_ms = RETRY_MIN_MS
        self._check_ms = 0
        self.change: str | None = None  # what the last step() or failed() found: UP, LOST, FAILED or None
        self.join_tries = 0  # the connect() calls the last join took (0: up without one, e.g. by a boot.py)
        self._tries_down = 0  # tries when the link was last lost (0: at boot)
        self._told: str | None = None  # the failure reason the last change told

    def _fail(self, why: str) -> None:
        """A try failed for why: FAILED once per reason, until the next change."""
        self.reason = why
        if why != self._told:
            self._told = why
            if self.change is None:  # else LOST, which tells why
                self.change = FAILED

    def _enter(self, state: str, now_ms: int) -> None:
        if state != self.state:
            self.state = state
            self.since_ms = now_ms

    def step(self, now_ms: int, code: int) -> bool:
        """Take WLAN.status(); True: call connect() now (then tried() or failed())."""
        self.change = None
        if now_ms < self._check_ms:
            return False
        self._check_ms = now_ms + CHECK_MS
        if code == GOT_IP:
            if self.state != UP:
                self.joins += 1
                self.reason = None
                self._retry_ms = RETRY_MIN_MS
                self._next_ms = self._tried_ms + RETRY_MIN_MS
                self.change = UP
                self.join_tries = self.tries - self._tries_down
                self._told = None
            self._enter(UP, now_ms)
            return False
        if self.state == UP:
            self.lost += 1
            self.change = LOST
            self._tries_down = self.tries
            self._told = None
        if code == CONNECTING:
            self._enter(JOINING, now_ms)
            return False
        if code != IDLE:
            self._fail(reason(code))
        if now_ms < self._next_ms:
            self._enter(DOWN, now_ms)
            return False
        self._enter(JOINING, now_ms)
        return True

    def tried(self, now_ms: int) -> None:
        """connect() was called: the next no earlier than the wait, which doubles."""
        self.tries += 1
        self._tried_ms = now_ms
        self._next_ms = now_ms + self._retry_ms
        retry_ms = self._retry_ms * 2
        self._retry_ms = RETRY_MAX_MS if retry_ms > RETRY_MAX_MS else retry_ms

    def failed(self, now_ms: int) -> None:
        """A call into the radio raised: counted as a failed try."""
        self.tried(now_ms)
        self.change = None
        self._fail(DRIVER_ERROR)
        self._enter(DOWN, now_ms)

    def wait_ms(self, now_ms: int) -> int:
        """How long until the next connect() at the earliest (0: at the next check)."""
        return self._next_ms - now_ms if self._next_ms > now_ms else 0

    def status(self, now_ms: int) -> dict[str, object]:
        """For /status ("hal" "wifi"); the HAL adds the address and signal while up."""
        return {"state": self.state, "for_ms": now_ms - self.since_ms, "reason": self.reason, "tries": self.tries,
                "joins": self.joins, "lost": self.lost}


def default_hostname(chip_id: bytes) -> str:
    """loadmesh- and the last 3 bytes of the chip's id (on the ESP32 its MAC) in hex: one name per board."""
    name = "loadmesh-"
    for byte in chip_id[-3:]:
        name += _HEX[byte >> 4] + _HEX[byte & 15]
    return name
