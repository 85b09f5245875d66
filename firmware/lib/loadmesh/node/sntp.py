"""The time of week on a device: an SNTP client that never blocks the tick, and local time by the house's rule."""

import errno
import os
import select
import socket
import struct

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value

from . import localtime

# mypy reads the import below; the device never runs it: only a clock with names loads the resolver
# (__init__), and nothing else here needs the module, only its HostLookup objects.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from . import resolver

    Ready = Callable[[int], Iterable[object]]  # reader()'s call

# Esp32Hal.poll() calls poll(now_ms) every tick; week_ms(now_ms) is the valve
# role's schedule clock. Nothing here waits:
#
# - One request at a time, on a non-blocking UDP socket connected to the
#   server (so the stack drops datagrams from anyone else), read in later
#   polls: at most MAX_READS datagrams a poll.
# - An attempt waits ANSWER_MS for its answer; then, or at once on a refusal,
#   it has failed and the next is sent RETRY_MIN_MS later (RFC 4330: never
#   more often than every 15 s), doubling up to RETRY_MAX_MS, each to the
#   next server of the list. A request that could not go out (no gateway
#   yet, no route: the network is not up) asked nobody: the next goes
#   RETRY_MIN_MS later, without back-off. A good answer: the next request
#   RESYNC_MS later.
# - Servers are IPv4 addresses, GATEWAY (the address the HAL's gateway()
#   gives, the router of the node's network), or host names. Not through
#   getaddrinfo, which on MicroPython blocks the whole loop, control tick
#   included, for as long as DNS takes, up to seconds past the watchdog: a
#   name's address comes from resolver.HostLookup, a query of our own to
#   the DNS server the HAL's dns_server() gives, polled like the request.
#   An attempt to a name whose address has expired (its TTL) or was never
#   known first looks it up (ANSWER_MS of resolver's own), then sends the
#   request in the poll that read the address. A lookup that fails
#   without an answer about the name (a silent or failing DNS server, none
#   at all) leaves the last good address, served stale (resolver: up to a
#   day past its TTL), and the request goes there; the name is looked up
#   again at the next attempt. A name that does not resolve and has no
#   address to serve stale fails the attempt as a silent server does;
#   without a DNS server (no network yet) or when the query could not go
#   out, nobody was asked. An attempt that fails at a name's address drops
#   it, stale or not, so that the next one looks the name up again (a pool
#   gives another server). One socket at a time: the request's is closed
#   while a name is looked up. The resolver module is imported only by a
#   clock with names.
#
# A socket is read only once a select.poll object, made with it, says
# something is queued (or an error: POLLERR, such as ECONNREFUSED, is
# reported without asking): recv() with nothing there allocates its buffer
# and the EAGAIN error, every tick an answer is awaited, where MicroPython's
# ipoll(0) reuses one result tuple and allocates nothing (CPython has only
# poll(), whose list is no concern there). resolver's lookups do the same
# through reader() and queued() below; mesh.py has its own copy.
#
# An answer is taken only if it is the answer to our request and a server's
# sure time: 48 bytes or more, mode 4 (server), version 1..4, its originate
# timestamp the 8 random bytes we sent as our transmit timestamp (a stray,
# late or blindly spoofed datagram does not have them), stratum 1..15, leap
# indicator not 3 (clock not synchronized), and a transmit time that is not
# zero and lies in 2025..2099. Stratum 0 is a kiss-o'-death (RFC 5905 7.4),
# acted on only once its originate checked: RATE fails the attempt (the
# back-off doubles), DENY and RSTR leave that server alone for DENIED_MS:
# an address or the gateway, its entry; a name, the address that answered
# (the lookup passes it over, so a pool name gives another address at the
# next attempt, and a name of one address is asked no NTP request).
# Anything else is counted by reason and the attempt keeps waiting.
#
# The time: the server's transmit time plus half the round trip (on the
# node's clock, from the send to the poll that read the answer: within a
# tick, 100 ms, of the truth, while the schedules work in minutes), kept as
# Unix seconds and ms at the monotonic synced_ms. Between syncs the time runs
# on the monotonic clock (clock.py), on the ESP32 its 40 MHz crystal: 10-20
# ppm, at most 3.5 s in the 48 h of VALID_MS. week_ms() is None until the
# first good answer and again VALID_MS after the last one: the schedule then
# holds its default (setback) target, as with no clock at all.
#
# NTP seconds (since 1900) become Unix seconds (since 1970) in the era that
# puts them in [2025, 2161): the 2036 wrap of NTP's 32-bit seconds is
# crossed, and an unset server clock (1900, 1970, 2000) falls outside
# 2025..2099 and is refused.
#
# The hot path is small ints: week_ms() adds the ms since its base to the
# week time computed at that base, and computes a new base (the long-int
# Unix seconds through localtime) only at the next change of offset, after a
# sync, and at least every REBASE_S.

NTP_PORT = const(123)
DNS_PORT = const(53)  # resolver.DNS_PORT, without importing it
NO_SERVER = "no_server"  # resolver.NO_SERVER
GATEWAY = "gateway"
PACKET_BYTES = const(48)
ANSWER_MS = const(2000)
RETRY_MIN_MS = const(15000)
RETRY_MAX_MS = const(1024000)
RESYNC_MS = const(3600000)
VALID_MS = const(172800000)  # 48 h
DENIED_MS = const(86400000)
REBASE_S = const(3600)
MAX_READS = const(4)
WEEK_MS = const(604800000)
UNIX_MIN_S = 1735689600  # 2025-01-01: the floor of the era window, and of a plausible time
UNIX_MAX_S = 4102444800  # 2100-01-01
NTP_UNIX_S = 2208988800  # 1900-01-01 to 1970-01-01

OK = "ok"
# Why an answer was refused (the counters' keys, besides "sent", "good", "timeout", "refused", "no_address",
# "send_error", "unresolved").
SHORT = "short"
MODE = "mode"
VERSION = "version"
ORIGINATE = "originate"
KISS_RATE = "kiss_rate"
KISS_DENY = "kiss_deny"
KISS = "kiss"
UNSYNCHRONIZED = "unsynchronized"
TIME = "time"


def request(nonce: bytes) -> bytearray:
    """A client request (mode 3, version 4), every field zero but the transmit timestamp: our nonce."""
    packet = bytearray(PACKET_BYTES)
    packet[0] = 0x23  # LI 0, VN 4, mode 3
    packet[40:48] = nonce
    return packet


def check(answer: bytes, nonce: bytes) -> tuple[str, int, int]:
    """(OK or the reason it is refused, Unix seconds, ms) of a server's answer to the request carrying nonce."""
    if len(answer) < PACKET_BYTES:
        return SHORT, 0, 0
    head = answer[0]
    if head & 7 != 4:
        return MODE, 0, 0
    version = (head >> 3) & 7
    if not 1 <= version <= 4:
        return VERSION, 0, 0
    if answer[24:32] != nonce:
        return ORIGINATE, 0, 0
    stratum = answer[1]
    if stratum == 0:
        code = answer[12:16]
        if code == b"RATE":
            return KISS_RATE, 0, 0
        if code in (b"DENY", b"RSTR"):
            return KISS_DENY, 0, 0
        return KISS, 0, 0
    if head >> 6 == 3 or stratum > 15:
        return UNSYNCHRONIZED, 0, 0
    seconds, fraction = struct.unpack_from(">II", answer, 40)
    if seconds == 0 and fraction == 0:
        return TIME, 0, 0
    unix_s = unix_of(seconds)
    if unix_s >= UNIX_MAX_S:
        return TIME, 0, 0
    return OK, unix_s, ((fraction >> 16) * 1000) >> 16


def unix_of(ntp_s: int) -> int:
    """Unix seconds of NTP seconds, in the era that puts them in [UNIX_MIN_S, UNIX_MIN_S + 2^32)."""
    return UNIX_MIN_S + (ntp_s - NTP_UNIX_S - UNIX_MIN_S) % 0x100000000


def is_name(server: str) -> bool:
    """Whether a server entry (hwconfig checked it) is a host name: not GATEWAY, not dotted decimal."""
    return server != GATEWAY and any(char != "." and not "0" <= char <= "9" for char in server)


def reader(sock: socket.socket) -> "Ready":
    """A call (timeout_ms) -> the ready entries, of a poll object made for sock's reading; for queued()."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return getattr(poll, "ipoll", poll.poll)


def queued(ready: "Ready | None") -> bool:
    """Whether reader()'s socket has a datagram (or an error) to read, without waiting or allocating."""
    assert ready is not None  # made with the socket read
    for _ in ready(0):
        return True
    return False


class SntpClock:
    """SNTP from servers (IPv4 addresses, GATEWAY or host names), local time by rule (localtime.parse).

    poll() every tick."""

    def __init__(self, servers: list[str], rule: tuple[int, int | None, tuple[int, int, int, int] | None,
                                                         tuple[int, int, int, int] | None],
                 port: int = NTP_PORT, dns_port: int = DNS_PORT) -> None:
        self.servers = servers
        self.rule = rule
        self.port = port
        # Per server, its lookup if it is a name, else None; [] without names.
        self._lookups: list[resolver.HostLookup | None] = []
        if any(is_name(server) for server in servers):
            from .resolver import HostLookup

            self._lookups = [HostLookup(name, dns_port) if is_name(name) else None for name in servers]
        self._resolving = False  # the lookup of servers[_server] is out
        self._sock: socket.socket | None = None
        self._ready: Ready | None = None  # reader(_sock)
        self._address = ""  # where _sock is connected
        self._nonce: bytes | None = None  # the request waiting for its answer
        self._sent_ms = 0
        self._next_ms = 0  # when the next request goes (0: at the first poll)
        self._retry_ms = RETRY_MIN_MS
        self._server = 0  # the index asked next
        self._denied_until = [0] * len(servers)  # until when each server is left alone (0: not)
        self.synced_ms: int | None = None  # the node's monotonic ms the time below applies to
        self.unix_s = 0
        self.unix_ms = 0
        self.source = ""  # the address that answered last
        self.counts: dict[str, int] = {}
        self._base_ms: int | None = None  # week_ms's base: its week time, and until when it holds
        self._base_week_ms = 0
        self._until_ms = 0

    def gateway(self) -> str | None:
        """The network's gateway (IPv4), None while there is none; the ESP32 HAL asks the interface."""
        return None

    def dns_server(self) -> str | None:
        """The network's DNS server (IPv4), None while there is none; the ESP32 HAL asks the interface."""
        return None

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def poll(self, now_ms: int) -> None:
        """Read what has arrived, time out, send when due; never waits."""
        if self._nonce is not None:
            self._receive(now_ms)
            if self._nonce is not None and now_ms - self._sent_ms >= ANSWER_MS:
                self._count("timeout")
                self._failed(now_ms)
        elif self._resolving:
            self._resolve(now_ms)
        elif now_ms >= self._next_ms:
            self._send(now_ms)

    def _send(self, now_ms: int) -> None:
        count = len(self.servers)
        index = -1
        for step in range(count):
            candidate = (self._server + step) % count
            if self._denied_until[candidate] <= now_ms:
                index = candidate
                break
        if index < 0:  # every server said no: ask again when the first may
            self._next_ms = min(self._denied_until)
            return
        self._server = index
        name = self.servers[index]
        lookup = self._lookups[index] if self._lookups else None
        if lookup is None:
            self._request(self.gateway() if name == GATEWAY else name, now_ms)
            return
        address = lookup.current(now_ms)
        if address is not None:
            self._request(address, now_ms)
            return
        # The name first: the request goes in the poll that reads its address.
        self.close()  # one socket at a time
        if lookup.ask(self.dns_server(), now_ms):
            self._resolving = True
            return
        # No DNS server (no network yet) or the query could not go out: the last good address, stale, if
        # it may still be served; else nobody was asked.
        address = lookup.served(now_ms)
        if address is not None:
            self._request(address, now_ms)
            return
        self._count("no_address" if lookup.error == NO_SERVER else "send_error")
        self._later(now_ms)

    def _resolve(self, now_ms: int) -> None:
        lookup = self._lookups[self._server]
        assert lookup is not None
        lookup.poll(now_ms)
        if lookup.waiting():
            return
        self._resolving = False
        address = lookup.served(now_ms)  # the new address, or the last good one served stale
        if address is not None:
            self._request(address, now_ms)
        else:
            self._count("unresolved")  # why: in the name's own status
            self._failed(now_ms)

    def _request(self, address: str | None, now_ms: int) -> None:
        if not address or address == "0.0.0.0":
            self._count("no_address")  # no network yet: nobody was asked, so no back-off
            self._later(now_ms)
            return
        nonce = os.urandom(8)
        try:
            if self._sock is None or address != self._address:
                self.close()
                self._address = address
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._sock = sock
                sock.setblocking(False)
                sock.connect(socket.getaddrinfo(address, self.port)[0][-1])
                self._ready = reader(sock)
            self._sock.send(request(nonce))
        except OSError:  # no route yet, a full buffer: nothing reached the server
            self.close()
            self._count("send_error")
            self._later(now_ms)
            return
        self._count("sent")
        self._nonce = nonce
        self._sent_ms = now_ms

    def _receive(self, now_ms: int) -> None:
        sock = self._sock
        nonce = self._nonce
        assert sock is not None and nonce is not None
        for _ in range(MAX_READS):
            if not queued(self._ready):
                return
            try:
                data = sock.recv(PACKET_BYTES + 1)  # one datagram; extension fields and MACs are cut off
            except OSError as exc:
                if exc.errno != errno.EAGAIN:  # ECONNREFUSED: nothing listens there
                    self._count("refused")
                    self._failed(now_ms)
                return
            verdict, unix_s, ms = check(data, nonce)
            if verdict == OK:
                self._synced(unix_s, ms, now_ms)
                return
            self._count(verdict)
            if verdict == KISS_DENY:
                lookup = self._lookups[self._server] if self._lookups else None
                if lookup is None:
                    self._denied_until[self._server] = now_ms + DENIED_MS
                else:  # one server of the name's: that address, not the name (a pool has others)
                    lookup.deny(self._address, now_ms + DENIED_MS)
                self._failed(now_ms)
                return
            if verdict == KISS_RATE:
                self._failed(now_ms)
                return

    def _failed(self, now_ms: int) -> None:
        if self._lookups:
            lookup = self._lookups[self._server]
            if lookup is not None:
                lookup.forget()  # its server failed: the next attempt asks for the name again
        self._nonce = None
        self._next_ms = now_ms + self._retry_ms
        self._retry_ms = self._retry_ms * 2 if self._retry_ms < RETRY_MAX_MS // 2 else RETRY_MAX_MS
        self._server = (self._server + 1) % len(self.servers)

    def _later(self, now_ms: int) -> None:
        self._next_ms = now_ms + RETRY_MIN_MS
        self._server = (self._server + 1) % len(self.servers)

    def _synced(self, unix_s: int, ms: int, now_ms: int) -> None:
        total_ms = ms + (now_ms - self._sent_ms) // 2
        self.unix_s = unix_s + total_ms // 1000
        self.unix_ms = total_ms % 1000
        self.synced_ms = now_ms
        self.source = self._address
        self._count("good")
        self._nonce = None
        self._next_ms = now_ms + RESYNC_MS
        self._retry_ms = RETRY_MIN_MS
        self._base_ms = None
        self.close()  # an hour without a socket; late duplicates of this answer are dropped by the stack

    def utc(self, now_ms: int) -> tuple[int, int] | None:
        """(Unix seconds, ms) at now_ms, or None without a sync within VALID_MS."""
        synced = self.synced_ms
        if synced is None or now_ms - synced >= VALID_MS:
            return None
        total_ms = self.unix_ms + (now_ms - synced)
        return self.unix_s + total_ms // 1000, total_ms % 1000

    def week_ms(self, now_ms: int) -> int | None:
        """The local time of week (ms since Monday 00:00) at now_ms, or None without a sync within VALID_MS."""
        synced = self.synced_ms
        if synced is None or now_ms - synced >= VALID_MS:
            return None
        base = self._base_ms
        if base is None or now_ms >= self._until_ms or now_ms < base:
            base = self._rebase(now_ms)
        return (self._base_week_ms + now_ms - base) % WEEK_MS

    def _rebase(self, now_ms: int) -> int:
        utc = self.utc(now_ms)
        assert utc is not None
        unix_s, ms = utc
        offset_s, change_s = localtime.offset_at(self.rule, unix_s)
        self._base_week_ms = localtime.week_s(unix_s + offset_s) * 1000 + ms
        hold_s = REBASE_S if change_s is None or change_s - unix_s > REBASE_S else change_s - unix_s
        self._until_ms = now_ms + hold_s * 1000 - ms  # the next change's instant exactly
        self._base_ms = now_ms
        return now_ms

    def status(self, now_ms: int) -> dict[str, object]:
        """For /status: the time kept, its age and source, the counters, and with names what they resolved to."""
        utc = self.utc(now_ms)
        synced = self.synced_ms
        out: dict[str, object] = {
            "week_ms": self.week_ms(now_ms), "unix_s": None if utc is None else utc[0],
            "synced_ago_ms": None if synced is None else now_ms - synced, "source": self.source or None,
            "waiting": self._nonce is not None or self._resolving, "counts": dict(self.counts),
            "denied": [self.servers[i] for i in range(len(self.servers)) if self._denied_until[i] > now_ms]}
        if self._lookups:
            out["names"] = [lookup.status(now_ms) for lookup in self._lookups if lookup is not None]
        return out

    def close(self) -> None:
        """Release the sockets (a later request or lookup opens another); a lookup out ends."""
        if self._resolving:
            self._resolving = False
            lookup = self._lookups[self._server]
            if lookup is not None:
                lookup.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._ready = None
            self._address = ""
