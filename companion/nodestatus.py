"""`loadmesh status HOST[:PORT]`: a real node's GET /status, as a short summary or as it came.

Every node serves GET /status without a token (docs/firmware.md, "The HTTP
API"). This is the installer's first look at a node just flashed and given
the Wi-Fi: did it join, what does it run, and why not. One plain HTTP GET with
the standard library, within one deadline (--timeout) from the name's
resolution to the answer's last byte: a node that accepts and then hangs, or a
.local name that mDNS never answers, costs the installer that long and no more.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import sys
import threading
import time
from typing import Any

DEFAULT_PORT = 80
DEFAULT_TIMEOUT_S = 3.0
# A node's /status with 16 peers is about 3 KB (the node builds it on a 12K-word heap); far more is not a node.
MAX_BODY = 65536
SHORT_BODY = 200  # an error answer's text is shown when it is at most this long


class StatusError(Exception):
    """What failed, in words for the installer (the host is named by the caller)."""


WHAT = ("read a node's GET /status over the network (no token needed): a short summary of what it runs and why, "
        "or with --json its answer as it came")


def add_arguments(status: argparse.ArgumentParser) -> None:
    """The status subcommand's arguments (cli.py registers it)."""
    status.add_argument("host", metavar="HOST[:PORT]",
                        help="the node's address or name (loadmesh-XXXXXX.local, or its hostname from hw.json, "
                             "on mDNS), and its HTTP port if not 80; an IPv6 address with a port as [ADDRESS]:PORT")
    status.add_argument("--json", action="store_true",
                        help="print the node's answer as it came (canonical JSON, one line) instead of the summary")
    status.add_argument("--timeout", type=_timeout_s, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"give up after S seconds, the name's lookup included (default {DEFAULT_TIMEOUT_S:g})")


def _timeout_s(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"{text!r} is not more than 0 and at most 3600 seconds")
    return seconds


def main(args: argparse.Namespace) -> int:
    """`loadmesh status`: 0 with the summary (or the JSON) on stdout; 2 with one line on stderr."""
    where = str(args.host)
    try:
        host, port = parse_address(where)
        body = fetch(host, port, float(args.timeout))
        answer = _decode(body)
        lines = [body.decode().strip()] if args.json else summary(answer)
    except StatusError as exc:
        print(f"loadmesh status: {where}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while waiting: the installer knows why it stopped
        return 130
    for line in lines:
        print(line)
    return 0


def parse_address(text: str) -> tuple[str, int]:
    """(host, port) of HOST, HOST:PORT, an IPv6 address, or [IPv6]:PORT; StatusError if it is none of them."""
    if "/" in text or not text:
        raise StatusError("give the node's name or address, and :PORT if not 80 (not a URL)")
    host, port_text, has_port = text, "", False
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise StatusError("an IPv6 address in brackets is written [ADDRESS] or [ADDRESS]:PORT")
        port_text, has_port = rest[1:], bool(rest)
    elif text.count(":") == 1:  # more than one: an IPv6 address without a port
        host, _, port_text = text.partition(":")
        has_port = True
    if not host:
        raise StatusError("no host before the port")
    if not has_port:
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise StatusError(f"the port {port_text!r} is not a number 1..65535")
    return host, int(port_text)


def fetch(host: str, port: int, timeout_s: float) -> bytes:
    """The body of GET /status, answered 200, within timeout_s; StatusError naming what failed."""
    deadline = time.monotonic() + timeout_s
    addresses = _resolve(host, port, timeout_s)
    sock = _connect(addresses, port, deadline, timeout_s)
    # From here on one timer ends the wait at the deadline, however the bytes trickle in:
    # a socket timeout alone starts again at every byte.
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        with contextlib.suppress(OSError):  # closed already
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
    timer.daemon = True
    timer.start()
    connection = http.client.HTTPConnection(host, port)
    connection.sock = sock  # connected already, within the deadline: request() sends on it
    try:
        try:
            connection.request("GET", "/status", headers={"Accept": "application/json"})
            response = connection.getresponse()
            announced = response.getheader("Content-Length")
            if announced is not None and announced.strip().isdigit() and int(announced) > MAX_BODY:
                raise StatusError(f"answered {response.status} with {int(announced):,} bytes: "
                                  "not a node's /status")
            body = b""
            while True:
                chunk = response.read(4096)
                if not chunk:
                    break
                body += chunk
                if len(body) > MAX_BODY:
                    raise StatusError(f"answered {response.status} with more than {MAX_BODY:,} bytes: "
                                      "not a node's /status")
            if expired.is_set():  # an answer without Content-Length, cut at the deadline, is not whole
                raise OSError("cut at the deadline")
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise StatusError(f"accepted the connection but did not answer within {timeout_s:g} s") from None
            raise StatusError(_http_failure(exc)) from None
    finally:
        timer.cancel()
        connection.close()
    if response.status != 200:
        raise StatusError(f"answered {response.status} {response.reason}" + _error_text(body))
    return body


def _resolve(host: str, port: int, timeout_s: float) -> list[tuple[Any, ...]]:
    """The name's addresses, looked up in a thread so that a lookup that hangs (mDNS for a name nobody has)
    costs no more than the timeout."""
    found: list[list[tuple[Any, ...]]] = []
    failed: list[str] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:  # gaierror is an OSError; an overlong label a UnicodeError
            failed.append(str(exc.args[-1]) if isinstance(exc, socket.gaierror) and exc.args else str(exc))

    thread = threading.Thread(target=lookup, daemon=True)  # one that never returns does not keep us
    thread.start()
    thread.join(timeout_s)
    if found:
        return found[0]
    if failed:
        raise StatusError(f"the name {host!r} is not resolved ({failed[0]})")
    raise StatusError(f"the name {host!r} is not resolved within {timeout_s:g} s")


def _connect(addresses: list[tuple[Any, ...]], port: int, deadline: float, timeout_s: float) -> socket.socket:
    """A connected socket to the first address that takes it, before the deadline."""
    failure = ""
    for family, kind, proto, _, address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        sock.settimeout(left)
        try:
            sock.connect(address)
        except TimeoutError:
            sock.close()
            raise StatusError(f"no connection within {timeout_s:g} s (is the node on this network, and up?)") \
                from None
        except ConnectionRefusedError:
            sock.close()
            failure = f"refused the connection: nothing listens on port {port} there"
            continue
        except OSError as exc:
            sock.close()
            failure = f"cannot connect: {exc.strerror or exc}"
            continue
        sock.settimeout(None)  # the timer in fetch() bounds the rest
        return sock
    raise StatusError(failure or f"no connection within {timeout_s:g} s (is the node on this network, and up?)")


def _http_failure(exc: Exception) -> str:
    """What a failed exchange says, once connected."""
    if isinstance(exc, http.client.RemoteDisconnected):  # before BadStatusLine, which it also is
        return "closed the connection without an answer"
    if isinstance(exc, http.client.BadStatusLine):
        return f"answered, but not in HTTP: {_shown(str(exc.args[0]) if exc.args else '')}"
    if isinstance(exc, http.client.HTTPException):
        return f"answered, but not in HTTP ({type(exc).__name__}: {_shown(str(exc))})"
    if isinstance(exc, ConnectionError):
        return "closed the connection before answering in full"
    return f"failed while answering: {exc}"


def _error_text(body: bytes) -> str:
    """An error answer's own words: the node's {"error": ...}, or the text if short."""
    text = body.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        text = value["error"]
    if not text:
        return ""
    if len(text) > SHORT_BODY:
        return f" ({len(body):,} bytes)"
    return ": " + _shown(text)


def _shown(text: str) -> str:
    """text on one line, control characters visible."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in " ".join(text.split()))


def _no_constant(name: str) -> object:
    raise ValueError(name + " is not JSON")


def _decode(body: bytes) -> dict[str, Any]:
    """The answer as a JSON object; StatusError if it is not one."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        start = body[:60].decode("utf-8", "replace")
        raise StatusError(f"answered 200, but not JSON ({exc}): {_shown(start)!r}"
                          + ("..." if len(body) > 60 else "")) from None
    if not isinstance(value, dict):
        raise StatusError(f"answered 200 with JSON that is not a node's /status (a {type(value).__name__}, "
                          "not an object)")
    return value


# The summary: one line per topic, only what the answer holds, in values of the expected type
# (an unexpected one leaves its topic out rather than stop the rest).

_STATE_HINTS = {
    "unadopted": "waiting to be adopted (PUT /adopt); nothing driven",
    "no_config": "adopted, but no config it can run; nothing driven",
    "left_out": "its config has no member of its id; nothing driven",
    "halted": "stopped; its watchdog resets it",
}
_LABEL = 10


def summary(status: dict[str, Any]) -> list[str]:
    """The lines `loadmesh status` prints for a node's /status answer."""
    if not isinstance(status.get("state"), str):
        raise StatusError('answered JSON without a "state": not a loadmesh node\'s /status')
    lines: list[tuple[str, str]] = []
    node = _text(status, "node")
    kind = _text(status, "kind")
    state = _text(status, "state")
    head = (node or "(no id yet)") + (f" ({kind})" if kind else "") + ": " + state
    if state in _STATE_HINTS:
        head += ", " + _STATE_HINTS[state]
    uptime_ms = _count(status, "uptime_ms")
    if uptime_ms is not None:
        head += ", up " + _duration(uptime_ms)
    boot_id = _count(status, "boot_id")
    if boot_id is not None:
        head += f", boot {boot_id}"
    lines.append(("node", head))
    for key, label in (("error", "ERROR"), ("hw_error", "HW ERROR")):
        text = _text(status, key)
        if text:
            lines.append((label, text))
    hal = status.get("hal")
    if isinstance(hal, dict):
        wifi = hal.get("wifi")
        if isinstance(wifi, dict):
            lines.append(("wifi", _wifi(wifi)))
        clock = hal.get("clock")
        if isinstance(clock, dict):
            lines.append(("clock", _clock(clock)))
    lines.extend(_control(status))
    config = status.get("config")
    if isinstance(config, dict):
        lines.append(("config", _config(config, status)))
    departed = _names(status, "departed")
    if departed:
        lines.append(("departed", ", ".join(departed) + " (removed from the config, may still draw: no raise "
                                                        "until gone)"))
    memory = status.get("memory")
    if isinstance(memory, dict):
        alloc, free = _count(memory, "alloc"), _count(memory, "free")
        parts = ([f"{alloc:,} bytes in use"] if alloc is not None else []) + \
            ([f"{free:,} free"] if free is not None else [])
        if parts:
            lines.append(("memory", ", ".join(parts)))
    ticks = status.get("ticks")
    if isinstance(ticks, dict):
        late, count, max_ms = _count(ticks, "late"), _count(ticks, "count"), _count(ticks, "max_ms")
        if late is not None:
            line = f"{late:,} late" + (f" of {count:,}" if count is not None else "")
            if max_ms is not None:
                line += f", the longest {max_ms} ms"
            lines.append(("ticks", line))
    return [(label.ljust(_LABEL) + text).rstrip() for label, text in lines]


def _wifi(wifi: dict[str, Any]) -> str:
    state = _text(wifi, "state") or "?"
    line = state
    hostname = _text(wifi, "hostname")
    address = _text(wifi, "address")
    if address:
        line += " at " + address
    if hostname:
        line += f" as {hostname}"
    rssi_dbm = wifi.get("rssi_dbm")
    if isinstance(rssi_dbm, int) and not isinstance(rssi_dbm, bool):
        line += f", {rssi_dbm} dBm"
    for_ms = _count(wifi, "for_ms")
    if for_ms is not None:
        line += ", for " + _duration(for_ms)
    reason = _text(wifi, "reason")
    if reason:
        line += ", last failure: " + reason
    counts = [f"{name} {value}" for name, value in
              (("tries", _count(wifi, "tries")), ("joins", _count(wifi, "joins")), ("lost", _count(wifi, "lost")))
              if value is not None]
    if counts:
        line += " (" + ", ".join(counts) + ")"
    return line


def _clock(clock: dict[str, Any]) -> str:
    synced_ago_ms = _count(clock, "synced_ago_ms")
    source = _text(clock, "source")
    if synced_ago_ms is not None:
        line = "synced " + _duration(synced_ago_ms) + " ago" + (f" from {source}" if source else "")
        if "week_ms" in clock and clock["week_ms"] is None:
            line += "; too long ago to trust: no time of week (schedules hold their setback)"
    else:
        line = "not synced"
        if clock.get("waiting") is True:
            line += ", waiting for an answer"
    counts = clock.get("counts")
    if isinstance(counts, dict):
        shown = [f"{name} {value}" for name, value in sorted(counts.items())
                 if isinstance(value, int) and not isinstance(value, bool)]
        if shown:
            line += " (" + ", ".join(shown) + ")"
    denied = _names(clock, "denied")
    if denied:
        line += "; denied by " + ", ".join(denied)
    return line


def _control(status: dict[str, Any]) -> list[tuple[str, str]]:
    """The controller's lines: current, failsafe, peers."""
    lines: list[tuple[str, str]] = []
    applied_ma, target_ma = _count(status, "applied_ma"), _count(status, "target_ma")
    parts = []
    for word, value, why in (("applied", applied_ma, _text(status, "reason")),
                             ("target", target_ma, _text(status, "alloc_reason"))):
        if value is not None:
            parts.append(f"{word} {_amperes(value)}" + (f" ({why})" if why else ""))
    if parts:
        lines.append(("current", ", ".join(parts)))
    silent = _names(status, "silent")
    failsafe = status.get("failsafe")
    if failsafe is True:
        lines.append(("FAILSAFE", "yes" + (": not hearing " + ", ".join(silent) if silent else "")))
    elif failsafe is False:
        lines.append(("failsafe", "no"))
    peers = status.get("peers")
    online = _count(status, "peers_online")
    if isinstance(peers, dict) and online is not None:
        known = set(peers) | set(silent)  # the silent that were never heard are not in the table
        line = f"{online} of {len(known)} online"
        disagree = _names(status, "disagree")
        if disagree:
            line += "; not agreeing yet: " + ", ".join(disagree)
        lines.append(("peers", line))
    return lines


def _config(config: dict[str, Any], status: dict[str, Any]) -> str:
    version = _count(config, "version")
    line = f"version {version}" if version is not None else "version ?"
    announced = _text(config, "announced")
    if announced:
        line += f" ({announced})"
    merged = config.get("merged_with")
    if isinstance(merged, list) and merged:
        line += f", merged with {len(merged)} other" + ("s" if len(merged) > 1 else "")
    mismatch = _names(status, "config_mismatch")
    if mismatch:
        line += "; another config announced by " + ", ".join(mismatch)
    last_error = _text(config, "last_error")
    if last_error:
        line += "; last sync error: " + last_error
    return line


def _text(mapping: dict[str, Any], key: str) -> str:
    """A string value on one line, or "" (absent, null or not a string)."""
    value = mapping.get(key)
    return _shown(value) if isinstance(value, str) else ""


def _count(mapping: dict[str, Any], key: str) -> int | None:
    """An integer value, or None (absent, null or not an integer)."""
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _names(mapping: dict[str, Any], key: str) -> list[str]:
    """A list of strings (node ids, servers), the rest left out."""
    value = mapping.get(key)
    return [_shown(item) for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _amperes(ma: int) -> str:
    """Milliamps as amperes with one decimal, rounded half up in integers (16,950 mA: 17.0 A)."""
    tenths = (abs(ma) + 50) // 100
    return ("-" if ma < 0 else "") + f"{tenths // 10}.{tenths % 10} A"


def _duration(ms: int) -> str:
    """A duration as the installer reads it: 45 s, 12 min 5 s, 3 h 12 min, 2 d 4 h."""
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
