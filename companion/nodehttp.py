"""One HTTP request to a node's API, within one deadline, and what failed in words.

The `loadmesh` commands that talk to a node (status, adopt, put, get) send one
plain request with the standard library (put two: the challenge, then the
signed PUT), within one deadline from the name's
resolution to the answer's last byte: a node that accepts and then hangs, or a
.local name that mDNS never answers, costs the installer that long and no more.

A node short of memory, or busy, for a moment answers 503 with Retry-After
(docs/firmware.md, "The HTTP API"): a GET then waits that long and asks
again, within the same deadline and at most TRIES times in all, and says
nothing of it unless the last answer is a 503 too. A PUT is sent again only
where the node shows it did not take it (signed_put).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import threading
import time
from email.message import Message
from typing import Any

from loadmesh.core.errors import quoted

DEFAULT_PORT = 80
STATUS_TIMEOUT_S = 3.0  # a node answers GET /status from memory
# A PUT is answered once the node has written its files: PUT /adopt writes
# node.json, both boot counters twice and the key, each a write and a rename,
# and a littlefs rename can take a sector erase or two (up to 400 ms each on
# common SPI flash). Given up on too soon, the change may still be made, and
# the installer is told it failed.
WRITE_TIMEOUT_S = 10.0
# A node's /status with 16 peers is about 3 KB (the node builds it on a 12K-word heap), its other answers less;
# far more is not a node.
MAX_BODY = 65536
SHORT_BODY = 200  # an error answer's text is shown when it is at most this long
TRIES = 3  # asked at most this often, where a 503 with Retry-After asks for another try
MAX_RETRY_AFTER_S = 5  # a longer Retry-After is not waited for: a node asks for 1 s
AFTER_WAIT_S = 0.5  # the time a try after a wait has at least, before the deadline (a node answers in ms)


class NodeHttpError(Exception):
    """What failed, in words for the installer (the host is named by the caller)."""


def add_host_argument(parser: argparse.ArgumentParser) -> None:
    """The node's HOST[:PORT], as every command that talks to one takes it."""
    parser.add_argument("host", metavar="HOST[:PORT]",
                        help="the node's address or name (loadmesh-XXXXXX.local, or its hostname from hw.json, "
                             "on mDNS), and its HTTP port if not 80; an IPv6 address with a port as [ADDRESS]:PORT")


def add_timeout_option(parser: argparse.ArgumentParser, default_s: float) -> None:
    parser.add_argument("--timeout", type=_timeout_s, default=default_s, metavar="S",
                        help=f"give up after S seconds, the name's lookup included (default {default_s:g})")


def _timeout_s(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not a number of seconds") from None
    if not 0 < seconds <= 3600:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not more than 0 and at most 3600 seconds")
    return seconds


def parse_address(text: str) -> tuple[str, int]:
    """(host, port) of HOST, HOST:PORT, an IPv6 address, or [IPv6]:PORT; NodeHttpError if it is none of them."""
    if "/" in text or not text:
        raise NodeHttpError("give the node's name or address, and :PORT if not 80 (not a URL)")
    host, port_text, has_port = text, "", False
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise NodeHttpError("an IPv6 address in brackets is written [ADDRESS] or [ADDRESS]:PORT")
        port_text, has_port = rest[1:], bool(rest)
    elif text.count(":") == 1:  # more than one: an IPv6 address without a port
        host, _, port_text = text.partition(":")
        has_port = True
    if not host:
        raise NodeHttpError("no host before the port")
    if not has_port:
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise NodeHttpError(f"the port {quoted(port_text)} is not a number 1..65535")
    return host, int(port_text)


def exchange(host: str, port: int, timeout_s: float, method: str, path: str, body: bytes | None = None,
             token: str | None = None) -> tuple[int, str, bytes]:
    """(status, reason, body) of one request, whatever the status, within timeout_s; NodeHttpError if there is no
    whole HTTP answer (not resolved, not connected, not answered in time, not HTTP, too long).

    token goes as "Authorization: Bearer <token>" (docs/firmware.md, "The HTTP API"). A GET answered 503 with
    Retry-After is asked again (_asked); any other request is sent once."""
    authorization = None if token is None else "Bearer " + token
    ask = _asked if method == "GET" else _exchange
    status, reason, _headers, answer = ask(host, port, time.monotonic() + timeout_s, timeout_s, method, path, body,
                                           authorization)
    return status, reason, answer


def signed_put(host: str, port: int, timeout_s: float, path: str, body: bytes, key: bytes) -> tuple[int, str, bytes]:
    """(status, reason, body) of a PUT signed with the group key (docs/firmware.md, "The HTTP API"), all within
    timeout_s; NodeHttpError as exchange().

    The node's boot id and the last count it took come from a PUT without a
    body or a signature, which it refuses from its head (401 with the
    challenge); the PUT is then signed with one more. Another client's PUT
    may take that count first: the 401 then names the new count, and the
    PUT is signed and sent once more. A PUT answered 503 with Retry-After
    is sent again only if the challenge, asked for again after the wait,
    shows its count not taken: the node acts on a PUT only once it has taken
    its count, so nothing was done. Any other 503 (or one whose count was
    taken: it may have been acted on) goes to the caller as it came."""
    from loadmesh.core import hmac256
    from loadmesh.node import putsign

    deadline = time.monotonic() + timeout_s
    # Unsigned, without a body: never acted on, so a 503 to it is asked again as a GET's.
    status, reason, headers, answer = _asked(host, port, deadline, timeout_s, "PUT", path, b"", None)
    challenge = headers.get("WWW-Authenticate")
    if status == 401 and challenge is not None and challenge.split(" ", 1)[0].lower() == "bearer":
        # A node from before signed PUTs: it would take the token, which anyone on the LAN who saw it could send.
        raise NodeHttpError("asks for a bearer token for a PUT: its firmware is older than this loadmesh, whose "
                            "PUTs are signed (docs/firmware.md, \"The HTTP API\"); update the node's firmware")
    pads = hmac256.prepare(key)
    learnt = putsign.parse_challenge(challenge) if status == 401 else None
    for _ in range(TRIES):
        if learnt is None:  # not a loadmesh node's challenge, or another answer: the caller says what it is
            return status, reason, answer
        node, boot, count = learnt
        signed = count + 1
        authorization = putsign.header(pads, b"PUT", path.encode(), node.encode(), boot, signed, body)
        status, reason, headers, answer = _exchange(host, port, deadline, timeout_s, "PUT", path, body,
                                                    authorization)
        learnt = putsign.parse_challenge(headers.get("WWW-Authenticate")) if status == 401 else None
        if learnt is not None and learnt[2] >= signed:  # another client's PUT took that count: one more
            continue
        if status != 503 or not _waited(headers, deadline):  # refused for something else, or answered
            return status, reason, answer
        again = _asked(host, port, deadline, timeout_s, "PUT", path, b"", None)
        learnt = putsign.parse_challenge(again[2].get("WWW-Authenticate")) if again[0] == 401 else None
        if learnt is None or learnt[2] >= signed:  # taken (or not known): it may have been acted on
            return status, reason, answer
    return status, reason, answer


def _asked(host: str, port: int, deadline: float, timeout_s: float, method: str, path: str, body: bytes | None,
           authorization: str | None) -> tuple[int, str, Message, bytes]:
    """_exchange(), asked again while the node answers 503 with a Retry-After it can be waited for (_waited),
    at most TRIES times: for a request it takes nothing from (a GET, a PUT's challenge)."""
    for _ in range(TRIES - 1):
        answered = _exchange(host, port, deadline, timeout_s, method, path, body, authorization)
        if answered[0] != 503 or not _waited(answered[2], deadline):
            return answered
    return _exchange(host, port, deadline, timeout_s, method, path, body, authorization)


def _waited(headers: Message, deadline: float) -> bool:
    """Whether the answer's Retry-After (seconds; an HTTP date is not a node's) was waited out, with time left
    before the deadline for one more try; False, at once, if it is absent, too long or leaves no such time."""
    text = (headers.get("Retry-After") or "").strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_RETRY_AFTER_S:
        return False
    wait_s = int(text)
    if time.monotonic() + wait_s + AFTER_WAIT_S > deadline:
        return False
    time.sleep(wait_s)
    return True


def _exchange(host: str, port: int, deadline: float, timeout_s: float, method: str, path: str, body: bytes | None,
              authorization: str | None) -> tuple[int, str, Message, bytes]:
    """exchange() once, until deadline (timeout_s: the time given, for the words), with this Authorization, and
    the answer's headers too (WWW-Authenticate, Retry-After)."""
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
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    try:
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            announced = response.getheader("Content-Length")
            if announced is not None and announced.strip().isdigit() and int(announced) > MAX_BODY:
                raise NodeHttpError(f"answered {response.status} with {int(announced):,} bytes: "
                                    "not a loadmesh node")
            answer = b""
            while True:
                chunk = response.read(4096)
                if not chunk:
                    break
                answer += chunk
                if len(answer) > MAX_BODY:
                    raise NodeHttpError(f"answered {response.status} with more than {MAX_BODY:,} bytes: "
                                        "not a loadmesh node")
            if expired.is_set():  # an answer without Content-Length, cut at the deadline, is not whole
                raise OSError("cut at the deadline")
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise NodeHttpError(f"accepted the connection but did not answer within {timeout_s:g} s") \
                    from None
            raise NodeHttpError(_http_failure(exc)) from None
    finally:
        timer.cancel()
        connection.close()
    return response.status, response.reason, response.msg, answer


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
    # A node's own name is an mDNS one, which only a resolver that speaks mDNS finds; hw.json's hostname is that
    # name without its .local, which a resolver looks up as a name of the LAN's DNS instead.
    hint = MDNS_HINT if host.lower().rstrip(".").endswith(".local") else ""
    if "." not in host and ":" not in host:
        hint = f"; a node's name on mDNS ends in .local: {host}.local"
    if failed:
        raise NodeHttpError(f"the name {quoted(host)} is not resolved ({failed[0]}){hint}")
    raise NodeHttpError(f"the name {quoted(host)} is not resolved within {timeout_s:g} s{hint}")


MDNS_HINT = ("; a .local name needs mDNS in this computer's resolver (Debian: apt-get install libnss-mdns), or give "
             "the node's address: its console prints it when it joins the Wi-Fi")


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
            raise NodeHttpError(f"no connection within {timeout_s:g} s (is the node on this network, and up?)") \
                from None
        except ConnectionRefusedError:
            sock.close()
            failure = f"refused the connection: nothing listens on port {port} there"
            continue
        except OSError as exc:
            sock.close()
            failure = f"cannot connect: {exc.strerror or exc}"
            continue
        sock.settimeout(None)  # the timer in exchange() bounds the rest
        return sock
    raise NodeHttpError(failure or f"no connection within {timeout_s:g} s (is the node on this network, and up?)")


def _http_failure(exc: Exception) -> str:
    """What a failed exchange says, once connected."""
    if isinstance(exc, http.client.RemoteDisconnected):  # before BadStatusLine, which it also is
        return "closed the connection without an answer"
    if isinstance(exc, http.client.BadStatusLine):
        return f"answered, but not in HTTP: {shown(str(exc.args[0]) if exc.args else '')}"
    if isinstance(exc, http.client.HTTPException):
        return f"answered, but not in HTTP ({type(exc).__name__}: {shown(str(exc))})"
    if isinstance(exc, ConnectionError):
        return "closed the connection before answering in full"
    return f"failed while answering: {exc}"


def token_refused(where: str, key_file: str, what: str = "token") -> str:
    """What a 401 means to the installer: the key is not the node's, or the node has none yet (what: the token of a
    GET, the signature of a PUT)."""
    return (f"refused the {what}: {key_file} is not this node's group key, or the node is not adopted yet "
            f"(loadmesh status {where} says which)")


def node_error(body: bytes) -> str | None:
    """The node's own words in an error answer ({"error": ...}), or None if the body is not one."""
    try:
        value = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return shown(value["error"])
    return None


def answered(status: int, reason: str, body: bytes) -> str:
    """An answer that is not the one hoped for, in words: its status, and the node's error or the text if short."""
    text = node_error(body) or body.decode("utf-8", "replace").strip()
    if not text:
        return f"answered {status} {reason}"
    if len(text) > SHORT_BODY:
        return f"answered {status} {reason} ({len(body):,} bytes)"
    return f"answered {status} {reason}: " + shown(text)


def shown(text: str) -> str:
    """text on one line, control characters visible as JSON escapes them (\\u001b, \\b), as the CLI shows a
    value elsewhere (the node's answers are JSON; Python's \\x1b would be a second notation)."""
    return "".join(char if char.isprintable() else json.dumps(char)[1:-1] for char in " ".join(text.split()))


def _no_constant(name: str) -> object:
    raise ValueError(name + " is not JSON")


def decode(body: bytes, status: int, what: str) -> dict[str, Any]:
    """An answer's body as a JSON object; NodeHttpError naming what it is instead (what: the answer expected)."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        start = " ".join(body[:60].decode("utf-8", "replace").split())  # on one line, as JSON quotes text
        raise NodeHttpError(f"answered {status}, but not JSON ({exc}): {quoted(start)}"
                            + ("..." if len(body) > 60 else "")) from None
    if not isinstance(value, dict):
        raise NodeHttpError(f"answered {status} with JSON that is not {what} (a {type(value).__name__}, "
                            "not an object)")
    return value
