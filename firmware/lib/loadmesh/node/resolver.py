"""A host name's IPv4 address from the network's DNS server, by a query that never blocks the tick."""

import errno
import os
import socket

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value


from .sntp import queued, reader  # loaded before this module on the device: only a clock with names loads it

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .sntp import Ready

# A stub resolver for one name, polled like sntp (sntp.SntpClock asks it for
# an NTP server given by name). MicroPython's getaddrinfo blocks the whole
# loop, control tick included, for as long as DNS takes; nothing here waits:
#
# - ask() sends one query (RFC 1035: a random 16-bit id, RD set, one
#   question: the name, type A, class IN) on a non-blocking UDP socket
#   connected to the DNS server (the stack drops datagrams from anyone
#   else); poll() reads at most MAX_READS datagrams and says WAITING, OK or
#   why the lookup failed. The socket is closed when the lookup ends.
# - The lookup waits ANSWER_MS for its answer. The caller backs off and
#   decides when to ask again (sntp: as after a silent NTP server, the name
#   being asked only when an attempt needs it).
#
# An answer is the answer to our query only if it has our id, QR set, opcode
# 0 and one question, ours echoed (the name compared case-insensitively,
# type A, class IN); anything else is counted by reason (SHORT, ID, HEADER,
# QUESTION) and the lookup keeps waiting, as it does for an answer to our
# query that cannot be read (MALFORMED, or SHORT when it ends inside what it
# claims). The answer to our query ends the lookup: an RCODE (NXDOMAIN,
# SERVFAIL, any other: RCODE), TC set (TRUNCATED: there is no TCP here), no
# A record of the name (NODATA), or OK: the first A record of the name,
# following CNAMEs inside the answer (at most MAX_CNAMES, in any order). An
# A record of 0.x.x.x or 224 and above (a blocking resolver's 0.0.0.0) is
# passed over, and so is the address deny() holds: DENIED if it was the
# name's only one (sntp denies the address of an NTP server that sent a
# kiss-o'-death, for its 24 h; a pool name gives another address).
#
# The address holds for the smallest TTL along the chain, clamped to
# TTL_MIN_S..TTL_MAX_S (a zero TTL would ask again at every attempt, a week's
# would keep a pool's retired server); current() is None once it expires,
# and the caller asks again. forget() drops it early: sntp does when the
# server at the address fails, so that a pool name gives another.
#
# Serve-stale (RFC 8767, in spirit): a lookup past the TTL that gets no
# answer about the name (TIMEOUT, SERVFAIL, RCODE, TRUNCATED, REFUSED,
# SEND_ERROR, NO_SERVER) keeps the last good address, and served() gives it,
# stale, for up to STALE_MS past its TTL; the caller asks again at its next
# attempt, as with a fresh address expired, and a good answer replaces it.
# NXDOMAIN, NODATA and DENIED are answers about the name (it has no usable
# address): they drop it, as forget() does. A day: within RFC 8767's 1 to 3
# days; an NTP server the node syncs from every hour through a DNS outage
# of up to a day, and then the clock's own 48 h of VALID_MS, so a valve
# keeps its time of week for about three days without DNS; past that the
# outage is no passing one, and a dead address is not kept meanwhile (sntp
# forgets an address whose NTP server fails).
#
# The datagram is read in place, in small ints, and nothing escapes as an
# exception: every offset is checked against the datagram's length; a
# compression pointer must point back, before itself (RFC 1035 4.1.4: to a
# prior occurrence), so a chain of pointers ends; a name whose labels add up
# past MAX_NAME bytes (what a label-then-pointer loop does) is malformed; the
# TTL is read byte-wise (RFC 2181 8: with its top bit set it is 0) so that no
# long int is made. A poll allocates what recv() does (its MAX_MESSAGE
# buffer, and the EAGAIN error while nothing is queued: gc reclaims them, as
# it does the mesh's receive every tick) and keeps nothing; a good answer
# keeps its address string.

DNS_PORT = const(53)
ANSWER_MS = const(2000)
MAX_READS = const(4)
MAX_MESSAGE = const(512)  # a UDP answer without EDNS (RFC 1035 4.2.1); a server cuts a longer one and sets TC
TTL_MIN_S = const(60)
TTL_MAX_S = const(86400)
STALE_MS = const(86400000)  # how long past its TTL the last good address is served while lookups fail
MAX_CNAMES = const(8)
MAX_NAME = const(255)  # bytes of a name as written, labels and their lengths (RFC 1035 2.3.4)
_HEADER = const(12)
_TYPE_A = const(1)
_TYPE_CNAME = const(5)
_CLASS_IN = const(1)

WAITING = "waiting"
OK = "ok"
# The lookup ended without an address (also the counters' keys, besides "sent", "good"):
NXDOMAIN = "nxdomain"  # the name does not exist
SERVFAIL = "servfail"  # the server could not resolve it now
RCODE = "rcode"  # another RCODE: REFUSED, NOTIMP, FORMERR, ...
TRUNCATED = "truncated"  # TC: the answer did not fit a datagram
NODATA = "nodata"  # the name exists, without a usable A record
TIMEOUT = "timeout"
REFUSED = "refused"  # nothing listens at the DNS server's port (the stack's ECONNREFUSED)
SEND_ERROR = "send_error"  # the query could not go out (no route yet)
NO_SERVER = "no_server"  # no DNS server to ask (no network yet, or none in the DHCP lease)
DENIED = "denied"  # the name's only usable A record is the address deny() holds
# A datagram refused, the lookup waiting on:
SHORT = "short"  # ends before the header, or inside what it claims
ID = "id"
HEADER = "header"  # not an answer (QR clear) or not a standard query's (opcode)
QUESTION = "question"  # not one question, or not ours
MALFORMED = "malformed"  # a label type, a pointer not pointing back, a name past MAX_NAME


def question(name: str) -> bytes:
    """The question section of a query for name's A record: its labels, type A, class IN."""
    out = bytearray()
    for label in name.lower().split("."):
        if not 1 <= len(label) <= 63:
            raise ValueError("host name " + repr(name) + ": a label of " + str(len(label)) + " characters")
        out.append(len(label))
        out.extend(label.encode())
    out.extend(b"\x00\x00\x01\x00\x01")  # the root's empty label, QTYPE A, QCLASS IN
    return bytes(out)


def query(ident: int, asked: bytes) -> bytearray:
    """A standard query with id ident, recursion desired, and the question asked."""
    packet = bytearray(_HEADER + len(asked))
    packet[0] = ident >> 8
    packet[1] = ident & 0xFF
    packet[2] = 0x01  # QR 0, opcode 0, AA 0, TC 0, RD 1
    packet[5] = 1  # QDCOUNT
    packet[_HEADER:] = asked
    return packet


def check(answer: bytes, ident: int, asked: bytes, denied: bytes = b"") -> tuple[str, int, int]:
    """(OK or the reason it is refused, the offset of the A record's 4 bytes, the TTL in s) of an answer.

    An A record of the address denied (4 bytes, or b"": none) is passed over."""
    size = len(answer)
    if size < _HEADER:
        return SHORT, 0, 0
    if (answer[0] << 8) | answer[1] != ident:
        return ID, 0, 0
    flags = answer[2]
    if not flags & 0x80 or flags & 0x78:  # QR, opcode
        return HEADER, 0, 0
    if answer[4] or answer[5] != 1:
        return QUESTION, 0, 0
    end = _HEADER + len(asked)
    if size < end:
        return SHORT, 0, 0
    for offset in range(len(asked)):  # as we wrote it: a server echoes the question, not compressed
        if _fold(answer[_HEADER + offset]) != asked[offset]:
            return QUESTION, 0, 0
    rcode = answer[3] & 0x0F
    if rcode:
        return NXDOMAIN if rcode == 3 else SERVFAIL if rcode == 2 else RCODE, 0, 0
    if flags & 0x02:
        return TRUNCATED, 0, 0
    return _address(answer, end, (answer[6] << 8) | answer[7], denied)


def _address(answer: bytes, start: int, records: int, denied: bytes) -> tuple[str, int, int]:
    """The first usable A record of the question's name in the answer section at start, CNAMEs followed."""
    size = len(answer)
    wanted = _HEADER  # where the name looked for is written: the question's, then each CNAME's target
    ttl_s = TTL_MAX_S
    passed = NODATA  # what no usable A record means: DENIED once the denied address was passed over
    for hop in range(MAX_CNAMES + 1):
        alias = -1
        alias_ttl_s = 0
        position = start
        for _ in range(records):
            fixed = _skip_name(answer, position)
            if fixed < 0:
                return SHORT if fixed == -1 else MALFORMED, 0, 0
            data = fixed + 10  # TYPE, CLASS, TTL, RDLENGTH
            if data > size:
                return SHORT, 0, 0
            kind = (answer[fixed] << 8) | answer[fixed + 1]
            length = (answer[fixed + 8] << 8) | answer[fixed + 9]
            if data + length > size:
                return SHORT, 0, 0
            if hop == 0 and (_name_bytes(answer, position) < 0
                             or (kind == _TYPE_CNAME and _name_bytes(answer, data) < 0)):
                return MALFORMED, 0, 0  # every name read whole once, whether it is the one looked for or not
            if kind in (_TYPE_A, _TYPE_CNAME) and (answer[fixed + 2] << 8) | answer[fixed + 3] == _CLASS_IN:
                same = _same_name(answer, position, wanted)
                if same < 0:
                    return MALFORMED, 0, 0
                if same and kind == _TYPE_A:
                    if length == 4 and 0 < answer[data] < 224:
                        if (denied and answer[data] == denied[0] and answer[data + 1] == denied[1]
                                and answer[data + 2] == denied[2] and answer[data + 3] == denied[3]):
                            passed = DENIED
                        else:
                            record_ttl_s = _ttl_s(answer, fixed + 4)
                            return OK, data, record_ttl_s if record_ttl_s < ttl_s else ttl_s
                elif same and kind == _TYPE_CNAME and alias < 0:
                    alias = data
                    alias_ttl_s = _ttl_s(answer, fixed + 4)
            position = data + length
        if alias < 0:
            return passed, 0, 0
        wanted = alias
        ttl_s = alias_ttl_s if alias_ttl_s < ttl_s else ttl_s
    return NODATA, 0, 0  # a longer chain than a name server gives


def _dotted(data: bytes, at: int) -> str:
    """The IPv4 address in the 4 bytes at at, in dotted decimal."""
    return str(data[at]) + "." + str(data[at + 1]) + "." + str(data[at + 2]) + "." + str(data[at + 3])


def _fold(byte: int) -> int:
    """ASCII lower case of one byte."""
    return byte | 0x20 if 65 <= byte <= 90 else byte


def _ttl_s(answer: bytes, at: int) -> int:
    """The 32-bit TTL at at, as a small int: 0 with the top bit set (RFC 2181 8), TTL_MAX_S past it."""
    if answer[at] & 0x80:
        return 0
    if answer[at] or answer[at + 1] > 1:  # 2^17 s and more: past TTL_MAX_S
        return TTL_MAX_S
    return (answer[at + 1] << 16) | (answer[at + 2] << 8) | answer[at + 3]


def _skip_name(answer: bytes, position: int) -> int:
    """The offset after the name written at position; -1 if the datagram ends first, -2 for a bad label."""
    size = len(answer)
    while position < size:
        length = answer[position]
        if length == 0:
            return position + 1
        if length >= 0xC0:  # a pointer ends the name as written here
            return position + 2 if position + 2 <= size else -1
        if length > 63:  # 0x40, 0x80: label types nobody uses
            return -2
        position += 1 + length
    return -1


def _label(answer: bytes, position: int) -> int:
    """The offset of the label at position, pointers followed (each pointing back); -1 if there is none."""
    size = len(answer)
    while position < size:
        length = answer[position]
        if length < 0xC0:
            return position if length <= 63 and position + length < size else -1
        if position + 1 >= size:
            return -1
        target = ((length & 0x3F) << 8) | answer[position + 1]
        if target >= position:
            return -1
        position = target
    return -1


def _name_bytes(answer: bytes, position: int) -> int:
    """The bytes of the name at position, written out (pointers followed); -1 if malformed or past MAX_NAME."""
    written = 0
    while True:
        position = _label(answer, position)
        if position < 0:
            return -1
        length = answer[position]
        written += 1 + length
        if written > MAX_NAME:
            return -1
        if length == 0:
            return written
        position += 1 + length


def _same_name(answer: bytes, one: int, other: int) -> int:
    """1 if the names at one and other are the same (ASCII case-insensitively), 0 if not, -1 if malformed."""
    written = 0
    while True:
        one = _label(answer, one)
        other = _label(answer, other)
        if one < 0 or other < 0:
            return -1
        length = answer[one]
        if length != answer[other]:
            return 0
        if length == 0:
            return 1
        written += 1 + length
        if written > MAX_NAME:
            return -1
        for offset in range(1, length + 1):
            if _fold(answer[one + offset]) != _fold(answer[other + offset]):
                return 0
        one += 1 + length
        other += 1 + length


class HostLookup:
    """One host name's IPv4 address: ask(), then poll() every tick until it is not WAITING; current()."""

    def __init__(self, name: str, port: int = DNS_PORT) -> None:
        self.name = name
        self.port = port
        self._asked = question(name)
        self._sock: socket.socket | None = None
        self._ready: Ready | None = None  # sntp.reader(_sock)
        self._ident = -1  # the query waiting for its answer (-1: none)
        self._sent_ms = 0
        self.address = ""  # the last answer's
        self.expires_ms = 0  # the node's monotonic ms the address holds until
        self.error = ""  # why the last lookup failed; "" after a good one
        self._denied = b""  # an address passed over in answers (4 bytes) until _denied_until_ms; b"": none
        self._denied_until_ms = 0
        self.counts: dict[str, int] = {}

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def current(self, now_ms: int) -> str | None:
        """The address while its TTL holds, else None."""
        return self.address if self.address and now_ms < self.expires_ms else None

    def served(self, now_ms: int) -> str | None:
        """The address to use: current(), or stale, past its TTL, while lookups fail (for STALE_MS); else None."""
        if not self.address:
            return None
        if now_ms < self.expires_ms:
            return self.address
        # self.error: the last lookup failed (a good one clears it); the caller asks only once the TTL is out.
        return self.address if self.error and now_ms - self.expires_ms < STALE_MS else None

    def waiting(self) -> bool:
        return self._ident >= 0

    def ask(self, server: str | None, now_ms: int) -> bool:
        """Send a query to the DNS server (an IPv4 address); False (counted) if there is none or it could not go out."""
        self.close()
        if not server or server == "0.0.0.0":  # no network yet, or a lease without a DNS server
            self._count(NO_SERVER)
            self.error = NO_SERVER
            return False
        pair = os.urandom(2)
        ident = (pair[0] << 8) | pair[1]
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock = sock
            sock.setblocking(False)
            sock.connect(socket.getaddrinfo(server, self.port)[0][-1])  # an address: no lookup
            self._ready = reader(sock)
            sock.send(query(ident, self._asked))
        except OSError:  # no route yet, a full buffer: nobody was asked
            self.close()
            self._count(SEND_ERROR)
            self.error = SEND_ERROR
            return False
        self._count("sent")
        self._ident = ident
        self._sent_ms = now_ms
        return True

    def poll(self, now_ms: int) -> str:
        """Read what has arrived and time out: WAITING, OK (address set) or why the lookup failed.

        With no lookup out: how the last one ended."""
        sock = self._sock
        if self._ident < 0 or sock is None:
            return self.error or OK
        for _ in range(MAX_READS):
            if not queued(self._ready):  # nothing there: no buffer and no EAGAIN error allocated
                break
            try:
                data = sock.recv(MAX_MESSAGE)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break
                return self._end(REFUSED)  # ECONNREFUSED: no DNS server at that port
            verdict, at, ttl_s = check(data, self._ident, self._asked,
                                       self._denied if now_ms < self._denied_until_ms else b"")
            if verdict == OK:
                self.address = _dotted(data, at)
                ttl_s = TTL_MIN_S if ttl_s < TTL_MIN_S else ttl_s
                self.expires_ms = now_ms + ttl_s * 1000
                self._count("good")
                self.error = ""
                self.close()
                return OK
            if verdict in (SHORT, ID, HEADER, QUESTION, MALFORMED):
                self._count(verdict)
                continue
            return self._end(verdict)
        if now_ms - self._sent_ms >= ANSWER_MS:
            return self._end(TIMEOUT)
        return WAITING

    def _end(self, reason: str) -> str:
        self._count(reason)
        self.error = reason
        if reason in (NXDOMAIN, NODATA, DENIED):  # an answer: the name has no usable address now, none stale
            self.address = ""
        self.close()
        return reason

    def forget(self) -> None:
        """Drop the address (the server there failed): the next attempt asks again, and nothing is served stale."""
        self.address = ""

    def deny(self, address: str, until_ms: int) -> None:
        """Drop address and pass it over in answers until until_ms (sntp: its NTP server said DENY or RSTR)."""
        self._denied = bytes([int(part) for part in address.split(".")])
        self._denied_until_ms = until_ms
        self.forget()

    def status(self, now_ms: int) -> dict[str, object]:
        """For /status: the address served and until when, whether stale, why the last lookup failed, the counters."""
        address = self.served(now_ms)
        stale = address is not None and now_ms >= self.expires_ms
        until_ms = self.expires_ms + STALE_MS if stale else self.expires_ms
        denied = self._denied if now_ms < self._denied_until_ms else b""
        return {"name": self.name, "address": address, "stale": stale,
                "expires_in_ms": None if address is None else until_ms - now_ms,
                "error": self.error or None, "denied": _dotted(denied, 0) if denied else None,
                "waiting": self._ident >= 0, "counts": dict(self.counts)}

    def close(self) -> None:
        """End the lookup, if one is out, and release its socket."""
        self._ident = -1
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._ready = None
