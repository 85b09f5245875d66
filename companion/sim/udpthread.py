"""A UDP socket on loopback served by one thread: what the hub and the plant server share."""

from __future__ import annotations

import socket
import threading


class UdpThread:
    """Binds a non-blocking UDP socket; start() runs _serve() in a thread until stop()."""

    thread_name = "udp"

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.setblocking(False)
        self.address: tuple[str, int] = self._sock.getsockname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve until stop()."""
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (again: nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._sock.fileno() >= 0:
            self._sock.close()

    def _serve(self) -> None:
        raise NotImplementedError
