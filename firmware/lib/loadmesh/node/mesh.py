"""The mesh transport: signed heartbeats out by UDP broadcast, and in, non-blocking, into the peer table."""

import errno
import socket

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value

from loadmesh.core import heartbeat
from loadmesh.core.peers import PeerTable

# On a device the destination is the subnet's broadcast address and every
# node binds the same port, so each also hears its own broadcast (the peer
# table counts it as "own"). In the simulator the destination is the hub,
# which forwards to the other nodes (and drops, cuts off, delays).
#
# Nothing here waits. send() either hands the datagram to the network stack
# or counts a send error (a full buffer on lwip); receive() takes what is
# already queued, at most max_packets per call so that a flood costs a
# bounded time per tick; the rest waits in the socket buffer, and what
# overflows it is dropped by the stack. A datagram over the heartbeat's 512
# bytes arrives cut to 513 and the table refuses it as too_long. Every
# check (tag, replay, membership) is the peer table's: a bad packet is
# dropped and counted there, and changes nothing.
#
# The send buffer is allocated once. Receiving takes one recv() per datagram,
# which allocates its bytes (reclaimed by gc, like the decoded heartbeat):
# MicroPython's readinto() on a socket keeps reading until the buffer is full
# or nothing is left, so on a datagram socket it would glue queued datagrams
# together, and every heartbeat in the lot would fail its tag. Neither the
# unix port's socket nor the ESP32's has a recv_into() (MicroPython 1.25,
# ports/unix/modsocket.c, ports/esp32/modsocket.c), which would not.
#
# A recv() with nothing queued would allocate its 513-byte buffer and the
# EAGAIN error, every tick, and at a small heap that request is where a tick
# met MemoryError. So a poll object, made once, is asked first:
# MicroPython's ipoll(0) reuses one result tuple and allocates nothing
# (CPython has only poll(), whose list is no concern there). A datagram that
# errors (POLLERR) still goes to recv(), which counts the error as before.

_MAX_PACKETS = const(40)  # per receive() call: two rounds of 16 peers, and some
_RECEIVE_BYTES = const(513)  # one more than a heartbeat may have: a longer datagram reads as too_long


class Mesh:
    """One UDP socket on port: send(pads, heartbeat) to dest, receive(table, now_ms) from anyone."""

    def __init__(self, port: int, dest_host: str, dest_port: int = 0, bind_host: str = "0.0.0.0",
                 max_packets: int = _MAX_PACKETS) -> None:
        self.port = port
        self.max_packets = max_packets
        self._dest = socket.getaddrinfo(dest_host, dest_port or port)[0][-1]
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._sock.bind(socket.getaddrinfo(bind_host, port)[0][-1])
        self._sock.setblocking(False)
        import select  # here, not at the top: a name less in this module's globals, for the boot's heap

        poll = select.poll()
        poll.register(self._sock, select.POLLIN)
        self._ready = getattr(poll, "ipoll", poll.poll)  # (timeout_ms) -> the ready sockets; holds the poll
        self._tx = heartbeat.new_buffer()
        self._tx_view = memoryview(self._tx)
        self.sent = 0
        self.send_errors = 0
        self.received = 0
        self.receive_errors = 0

    def send(self, pads: tuple[bytes, bytes], message: dict[str, object]) -> bool:
        """Sign and send one heartbeat; False if the stack refused it (counted). FieldError: a bad field."""
        size = heartbeat.encode_into(self._tx, pads, message)
        try:
            self._sock.sendto(self._tx_view[:size], self._dest)
        except OSError:
            self.send_errors += 1
            return False
        self.sent += 1
        return True

    def receive(self, table: PeerTable, now_ms: int) -> int:
        """Feed what has arrived into the peer table at now_ms; how many packets were read."""
        count = 0
        while count < self.max_packets and self._queued():
            try:
                data = self._sock.recv(_RECEIVE_BYTES)
            except OSError as exc:
                if exc.errno != errno.EAGAIN:  # EAGAIN: nothing (more) queued
                    self.receive_errors += 1
                break
            count += 1
            self.received += 1
            table.receive(data, now_ms)
        return count

    def _queued(self) -> bool:
        """Whether the socket has something to read (or an error to report), without waiting."""
        for _ in self._ready(0):
            return True
        return False

    def counts(self) -> dict[str, int]:
        """The transport's counters, for /status."""
        return {"sent": self.sent, "send_errors": self.send_errors, "received": self.received,
                "receive_errors": self.receive_errors}

    def close(self) -> None:
        """Release the socket."""
        self._sock.close()
