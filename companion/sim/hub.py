"""The simulated network: nodes send heartbeats to the hub, which forwards each to the others, with faults.

On a device a heartbeat is a UDP broadcast; here every node's mesh sends to
the hub (its destination address), and the hub delivers a copy to every
other node's mesh port, as the broadcast would. Between the two it can
script what a real network does:

- loss_pct: each copy is dropped independently with this probability (a
  broadcast lost by one receiver is not lost by the others);
- isolate(node) / heal(node): every packet from and to that node is dropped;
- delay_ms and jitter_ms: each copy is held that long (jitter, drawn per
  copy, reorders them);
- duplicate_pct: a copy is delivered twice.

A sender is known by its source port; a datagram from an unknown address (a
test's forger) is forwarded to every node, as a broadcast from a stranger on
the network would be. The hub never reads a heartbeat: it holds no key.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import selectors
import threading
import time
from dataclasses import dataclass, field

from .udpthread import UdpThread

MAX_DATAGRAM = 2048
HELD_BACK_MS = 100  # a hold of the hub's thread this long or longer is kept in held_back
MAX_HELD_BACK = 100  # the first ones kept


@dataclass
class HubCounts:
    """What the hub did with the datagrams it got, in total and per receiving node."""

    received: int = 0
    forwarded: int = 0
    lost: int = 0  # dropped by loss_pct
    cut: int = 0  # dropped because the sender or the receiver was isolated
    duplicated: int = 0
    delivered_to: dict[str, int] = field(default_factory=dict)


class Hub(UdpThread):
    """Forwards datagrams between node ports on loopback; thread-safe controls; start() / stop()."""

    thread_name = "hub"

    def __init__(self, nodes: dict[str, int], host: str = "127.0.0.1", port: int = 0, seed: int = 1) -> None:
        super().__init__(host, port)
        self.host = host
        self.nodes = dict(nodes)  # node id -> its mesh port
        self.loss_pct = 0
        self.delay_ms = 0
        self.jitter_ms = 0
        self.duplicate_pct = 0
        self.isolated: set[str] = set()
        self.counts = HubCounts(delivered_to={node: 0 for node in sorted(nodes)})
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._queue: list[tuple[float, int, bytes, str]] = []  # (due, order, data, receiver)
        self._order = 0
        # The hub's own lateness: a turn of its loop that took longer than it waited (its thread held back: a
        # loaded machine, this whole process stopped) held every datagram that came meanwhile that much longer,
        # a silence the nodes hear as theirs. (time.monotonic() when the turn began, ms held), from
        # HELD_BACK_MS on (the first MAX_HELD_BACK); held_back_ms the most, in the turn begun at held_back_at_s.
        self.held_back: list[tuple[float, int]] = []
        self.held_back_ms = 0
        self.held_back_at_s = 0.0

    # Controls (any thread).

    def set_loss(self, loss_pct: int) -> None:
        """Drop each copy with probability loss_pct / 100."""
        if not 0 <= loss_pct <= 100:
            raise ValueError("loss_pct: " + str(loss_pct) + " is out of range 0..100")
        with self._lock:
            self.loss_pct = loss_pct

    def set_delay(self, delay_ms: int, jitter_ms: int = 0, duplicate_pct: int = 0) -> None:
        """Hold each copy delay_ms plus up to jitter_ms; deliver duplicate_pct of them twice."""
        with self._lock:
            self.delay_ms = delay_ms
            self.jitter_ms = jitter_ms
            self.duplicate_pct = duplicate_pct

    def isolate(self, node: str) -> None:
        """Cut node off: nothing from it reaches anyone, nothing reaches it."""
        with self._lock:
            self.isolated.add(self._known(node))

    def heal(self, node: str) -> None:
        """Connect node again."""
        with self._lock:
            self.isolated.discard(self._known(node))

    def _known(self, node: str) -> str:
        if node not in self.nodes:
            raise KeyError(node)
        return node

    # Forwarding.

    def forward(self, data: bytes, source_port: int, now_s: float) -> list[tuple[float, str]]:
        """Decide the fate of one datagram from source_port: the (due time, receiver) of each copy kept."""
        with self._lock:
            self.counts.received += 1
            sender = None
            for node in sorted(self.nodes):
                if self.nodes[node] == source_port:
                    sender = node
            copies = []
            for receiver in sorted(self.nodes):
                if receiver == sender:
                    continue
                if sender in self.isolated or receiver in self.isolated:
                    self.counts.cut += 1
                    continue
                if self.loss_pct and self._random.randrange(100) < self.loss_pct:
                    self.counts.lost += 1
                    continue
                times = 2 if self.duplicate_pct and self._random.randrange(100) < self.duplicate_pct else 1
                self.counts.duplicated += times - 1
                for _ in range(times):
                    delay = self.delay_ms + (self._random.randrange(self.jitter_ms + 1) if self.jitter_ms else 0)
                    due = now_s + delay / 1000
                    copies.append((due, receiver))
                    heapq.heappush(self._queue, (due, self._order, data, receiver))
                    self._order += 1
            return copies

    def _deliver_due(self, now_s: float) -> None:
        while True:
            with self._lock:
                if not self._queue or self._queue[0][0] > now_s:
                    return
                _, _, data, receiver = heapq.heappop(self._queue)
                # A node cut off while its copy was in flight does not get it.
                if receiver in self.isolated:
                    self.counts.cut += 1
                    continue
                self.counts.forwarded += 1
                self.counts.delivered_to[receiver] += 1
                port = self.nodes[receiver]
            with contextlib.suppress(OSError):  # a node not listening (killed): a broadcast is lost too
                self._sock.sendto(data, (self.host, port))

    # The thread.

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                began = time.monotonic()
                with self._lock:
                    next_due = self._queue[0][0] if self._queue else None
                wait = 0.05 if next_due is None else max(0.0, min(0.05, next_due - began))
                ready = selector.select(wait)
                if ready:
                    while True:
                        try:
                            data, address = self._sock.recvfrom(MAX_DATAGRAM)
                        except BlockingIOError:
                            break
                        self.forward(data, address[1], time.monotonic())
                self._deliver_due(time.monotonic())
                # A turn takes its wait (nothing came) or next to nothing (it forwarded what came): the rest is held.
                held_ms = int((time.monotonic() - began - (0.0 if ready else wait)) * 1000)
                if held_ms >= HELD_BACK_MS:
                    if held_ms > self.held_back_ms:
                        self.held_back_ms = held_ms
                        self.held_back_at_s = began
                    if len(self.held_back) < MAX_HELD_BACK:
                        self.held_back.append((began, held_ms))
