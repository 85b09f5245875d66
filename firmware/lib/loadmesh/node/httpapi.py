"""The node's local HTTP API on asyncio streams: GET /status, GET of the settings with a bearer token, and PUT of them
signed for this boot (putsign)."""

import asyncio
import socket

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value

from loadmesh.core import canon, hmac256
from loadmesh.core.errors import FieldError

TYPE_CHECKING = False  # mypy reads the import below; the device never runs it
if TYPE_CHECKING:
    from collections.abc import Coroutine

# For the companion and for people with curl:
#
#   GET /status    200, JSON from Api.status(); no token (it shows no secret)
#   GET /config    200, JSON from Api.config(); needs the token
#   PUT /config    the body (bytes) to Api.put_config(), its JSON answer with
#                  200; 400 with {"error"} if it raises FieldError/ValueError;
#                  needs a signature (below)
#   PUT /adopt     the body to Api.adopt(), no token: an unadopted node has
#                  none, and the body authenticates itself (node.adoption);
#                  409 before any of the body is read unless Api.adoptable()
#                  (an adopted node: nobody gets to make it hold a body)
#   GET /heating, PUT /heating            a valve or boiler node's heating
#                  settings (Api.heating(), Api.put_heating())
#   GET /load_sharing, PUT /load_sharing  the boiler node's runtime switch
#                  (Api.load_sharing(), Api.put_load_sharing())
#
# A GET of these needs the token: HMAC-SHA256 of TOKEN_LABEL under the group
# key, in hex, sent as "Authorization: Bearer <token>" and compared in
# constant time. It only reads, and it is sent in clear: whoever sees it can
# read, never change. A PUT needs a signature instead (putsign: the request,
# this node's id and boot id and a count above the last one taken this boot,
# under the group key), so that a PUT seen on the LAN cannot be sent again,
# to this node or another of the group. Its
# head is judged before the body is read (the form, the boot, the count), its
# mac once the body is, before anything is acted on; the count is taken then.
# A 401 to a PUT carries the challenge ("WWW-Authenticate: LoadMesh-HMAC
# node=<id>, boot=<id>, n=<last count>"): a client learns it from a PUT refused from its
# head and signs with one more. An unadopted node (no key) answers every
# request that needs a token or a signature with 401.
#
# What a client gets wrong gets a status, never a crash: unknown path 404,
# wrong method 405 (with Allow), no or bad token 401, request head or body
# over its bound 413, a PUT without Content-Length 411, chunked bodies 501,
# anything unparseable 400, an exception in a callback 500. Every request
# must arrive whole within timeout_ms, or the connection is closed without
# an answer (slowloris).
# What the node cannot do for the moment gets 503 with "Retry-After: 1"
# (seconds): nothing was done, and the same request may come again. Beyond
# max_clients requests being read and handled, a newcomer gets it ("busy");
# beyond those and two being told so the server accepts no connection (the
# kernel holds two more and refuses the rest: a flood costs the heap
# nothing). A body while another is being read gets it (one body buffer at a
# time), and so does a request that does not fit in the free heap now, or
# whose answer does not (a MemoryError: "no_memory"; not 413, which tells a
# client its request is too large ever to be taken). Once a PUT is acted on
# (its count taken, or an adoption opened), a MemoryError, or an answer that
# does not fit, gets 503 without Retry-After, in words that say it may have
# been taken: the client reads back what the node has before sending it
# again. At most max_clients answers linger at a time. The server is
# one more asyncio task: it yields at every read and write and holds at most
# max_clients request heads and one body in memory, so it never holds up the
# control tick. Only a client with a signature of this boot's (or, on an
# unadopted node, any client of /adopt) can make it hold a body.
# Each connection serves one request (HTTP/1.0, Connection: close).

TOKEN_LABEL = b"loadmesh http token v1"

_MAX_HEAD = const(1024)  # request line and headers
_MAX_BODY = const(8192)  # a group config of 16 members with room to spare
_TIMEOUT_MS = const(2000)
_MAX_CLIENTS = const(2)
_MAX_TURNING_AWAY = const(2)  # connections answered 503 at once
_BACKLOG = const(2)  # connections the kernel holds while the server is full; it refuses the rest
_ACCEPT_POLL_MS = const(20)  # how often a server that is full, or idle, looks for a new connection
_CHUNK = const(256)
_LINGER_MS = const(200)  # after an error answer, how long to take in what the client still sends
_LINGER_BYTES = const(4096)
_SETTINGS = ("/config", "/heating", "/load_sharing")  # GET with the token, PUT signed
# The answers when memory is short, head and body as constants, which a
# frozen module keeps in flash, so that telling them needs no memory.
# _NO_MEMORY: the request does not fit in the heap now (a MemoryError while
# it was read or handled), or the answer asked for does not (a status with
# sixteen peers on a busy node). Nothing was done: it says "Retry-After: 1".
# _MAYBE_TAKEN: either, once a PUT was acted on: asking again unchanged is
# not the way.
_NO_MEMORY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
              b"Content-Length: 93\r\nConnection: close\r\n\r\n",
              (b'{"error":"this node is short of memory for the moment: the request was not taken; ask again"}',))
_MAYBE_TAKEN = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: 140\r\nConnection: close\r\n\r\n",
                (b'{"error":"this node ran short of memory while acting on the request: it may have been taken; '
                 b'read back what it has before sending it again"}',))
_RETRY = "Retry-After: 1"  # the header of a 503 built as any answer (busy)
_SHORT = const(0)  # a status for _answer: the request did not fit (_NO_MEMORY, or _MAYBE_TAKEN once acted on)
_SHORT_ANSWER = (_SHORT, None, "")  # _handle's answer then: made at import, so that returning it needs no memory
_UNREAD = const(0)  # a request's flags: the client may still be sending (its head, or a body not read)
_ACTING = const(1)  # the request is being acted on (a PUT's count taken, an adoption opened)


def token_for(key: bytes) -> str:
    """The bearer token for a group key: HMAC-SHA256 of TOKEN_LABEL under it, hex."""
    return hmac256.hmac_sha256(key, TOKEN_LABEL).hex()


class Api:
    """What the server serves; the runtime overrides these (every answer JSON-able, no floats)."""

    def status(self) -> object:
        """The node's status, for GET /status."""
        return {}

    def config(self) -> object:
        """The stored config, for GET /config."""
        return None

    def put_config(self, body: bytes) -> object:
        """Take a new config from a PUT body; FieldError or ValueError refuse it (400)."""
        raise FieldError("config", "this node takes no config")

    def adoptable(self) -> str:
        """Why PUT /adopt is refused before its body is read ("" if it is not: the node waits to be adopted)."""
        return "this node takes no adoption"

    def adopt(self, body: bytes) -> object:
        """Take an adoption request from a PUT /adopt body; FieldError or ValueError refuse it (400)."""
        raise FieldError("adopt", "this node takes no adoption")

    def heating(self) -> object:
        """The heating settings, for GET /heating."""
        return None

    def put_heating(self, body: bytes) -> object:
        """Take new heating settings from a PUT body; FieldError or ValueError refuse them (400)."""
        raise FieldError("heating", "this node takes no heating settings")

    def load_sharing(self) -> object:
        """The load-sharing switch, for GET /load_sharing."""
        return None

    def put_load_sharing(self, body: bytes) -> object:
        """Set the load-sharing switch from a PUT body; FieldError or ValueError refuse it (400)."""
        raise FieldError("load_sharing", "this node runs no load sharing")

    def token(self) -> str | None:
        """The bearer token a GET of the settings requires (token_for(key)); None refuses everyone."""
        return None

    def pads(self) -> tuple[bytes, bytes] | None:
        """The group key as hmac256.prepare gives it, to check a PUT's signature with; None refuses every PUT."""
        return None

    def boot(self) -> int:
        """This boot's id, which a PUT's signature names (never the same for two boots); below 1 refuses every PUT."""
        return 0

    def node_id(self) -> str:
        """This node's member id, which a PUT's signature names (nodes of a group share the key); "" if none."""
        return ""

    def put_refused(self) -> None:
        """A PUT was refused before it was acted on: what only a PUT needs (putsign) may go from the heap."""

    def put_refusal(self) -> str:
        """Why no signature would make this node take a PUT now (its boot counter was lost), or "": 409."""
        return ""


class _Refused(Exception):
    """A request answered with an error status."""

    def __init__(self, status: int, message: str, header: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.header = header  # one more header line for the answer: Allow for 405, WWW-Authenticate for 401


class HttpServer:
    """Serve api on host:port; start() in a running asyncio loop, close() to stop."""

    def __init__(self, api: Api, port: int = 80, host: str = "0.0.0.0", timeout_ms: int = _TIMEOUT_MS,
                 max_body: int = _MAX_BODY, max_clients: int = _MAX_CLIENTS) -> None:
        self.api = api
        self.port = port
        self.host = host
        self.timeout_ms = timeout_ms
        self.max_body = max_body
        self.max_clients = max_clients
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._open = 0  # connections accepted and not yet closed
        self.open_max = 0  # the most at once
        self._clients = 0
        self._finishing = 0  # answers being sent (and lingering)
        self._body_busy = False  # a body is being read
        self.requests = 0  # answered, any status
        self.refused = 0  # answered with 4xx or 5xx (busy and no_memory among them)
        self.busy = 0  # turned away with 503
        self.timeouts = 0  # closed unanswered
        self.no_memory = 0  # answered 503 for want of memory: the request or its answer did not fit in the heap
        # The PUT signatures taken: the boot they were for, and the last count (RAM only: a reboot changes the boot).
        self._signed_boot = 0
        self._signed_count = 0

    async def start(self) -> None:
        """Listen; connections are served as tasks of the running loop."""
        address = socket.getaddrinfo(self.host, self.port)[0][-1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
        sock.setblocking(False)
        self._sock = sock
        self._task = asyncio.create_task(self._accept(sock))

    def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _accept(self, sock: socket.socket) -> None:
        # Our own accept loop rather than asyncio.start_server, which accepts
        # every connection as it comes: a flood of them then costs a task and
        # its buffers each, faster than they close, until the tick finds no
        # memory. This one accepts only while it has room (max_clients being
        # served, _MAX_TURNING_AWAY being told 503); the kernel holds _BACKLOG
        # more and refuses the rest, at no cost to the node's heap.
        # A MemoryError must not end this loop: the node would answer no one until its next reset. So the client
        # a stream or a task could not be made for is told the constant 503 (no heap needed) and closed; and the
        # wait is asyncio.sleep_ms, which takes no float from the heap every 20 ms as sleep(0.02) did.
        while True:
            if self._open < self.max_clients + _MAX_TURNING_AWAY:
                try:
                    client, _peer = sock.accept()
                except OSError:  # nobody is waiting
                    client = None
                except MemoryError:  # no room for the client's socket object (the port's accept() makes it after)
                    client = None
                if client is not None:
                    client.setblocking(False)
                    try:
                        stream = asyncio.StreamReader(client)  # MicroPython: Stream(socket), for reading and writing
                        asyncio.create_task(self._connection(stream))  # noqa: RUF006 (the loop holds its tasks)
                    except MemoryError:
                        self._turn_away(client)
                        continue
                    self._open += 1
                    if self._open > self.open_max:
                        self.open_max = self._open
                    continue
            await asyncio.sleep_ms(_ACCEPT_POLL_MS)

    def _turn_away(self, client: socket.socket) -> None:
        """A client no stream or task could be made for: the constant 503 and closed, the next may fit."""
        self.requests += 1
        self.refused += 1
        self.no_memory += 1
        head, body = _NO_MEMORY
        try:
            client.send(head)  # a few hundred bytes into an empty send buffer: whole, or what it takes
            for part in body:
                client.send(part)
        except OSError:
            pass
        try:  # noqa: SIM105
            client.close()
        except OSError:
            pass

    async def _connection(self, stream: asyncio.StreamReader) -> None:
        try:
            await self._serve(stream, stream)  # type: ignore[arg-type]  # one Stream reads and writes
        except Exception:  # a bug, a MemoryError past every handler: the socket is closed all the same
            await self._close(stream)  # type: ignore[arg-type]
        finally:
            self._open -= 1

    def counts(self) -> dict[str, int]:
        """The server's counters, for /status."""
        return {"requests": self.requests, "refused": self.refused, "busy": self.busy, "timeouts": self.timeouts,
                "no_memory": self.no_memory, "open_max": self.open_max}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._clients >= self.max_clients:
            # Turned away (at most _MAX_TURNING_AWAY at a time: the accept
            # loop takes no more), with an answer it lingers to deliver.
            self.busy += 1
            await self._send(reader, writer, self._answer(503, {"error": "busy"}, _RETRY), True)
            return
        self._clients += 1
        answered: tuple[int, object, str] | None = None
        flags = [True, False]  # [_UNREAD], [_ACTING]
        try:
            # _within, not wait_for alone: a _handle left running past a 500 could still act on its request.
            answered = await _within(self._handle(reader, flags), self.timeout_ms / 1000)  # type: ignore[assignment]
        except asyncio.TimeoutError:  # noqa: UP041  (MicroPython has no builtin TimeoutError)
            self.timeouts += 1
        except MemoryError:  # in _within's tasks, or in _handle's own answer: a constant needs none
            answered = _SHORT_ANSWER
        except Exception:  # a bug: the server carries on
            answered = 500, {"error": "internal"}, ""
        finally:
            self._clients -= 1
        if answered is None:
            await self._close(writer)
            return
        response = self._answer(answered[0], answered[1], answered[2], flags[_ACTING])
        # A coroutine's frame keeps what it refers to while it waits: let the answer (a status with
        # sixteen peers) go before the client's pace decides how long sending takes.
        answered = None
        # Lingering helps a client see an error answer; a few at a time, so
        # that connections in a flood cannot pile up while they linger.
        linger = flags[_UNREAD] and self._finishing < self.max_clients
        self._finishing += 1
        try:
            await self._send(reader, writer, response, linger)
        finally:
            self._finishing -= 1

    async def _handle(self, reader: asyncio.StreamReader, flags: list[bool]) -> tuple[int, object, str]:
        try:
            return 200, await self._route(reader, flags), ""
        except _Refused as refused:
            return refused.status, {"error": refused.message}, refused.header
        except (FieldError, ValueError) as exc:
            return 400, {"error": str(exc)}, ""
        except MemoryError:
            # What the request took is free again; the node runs on with what it had. Not 413: the same
            # request may fit in a moment, unless it was being acted on (then it may have been taken).
            return _SHORT_ANSWER

    async def _route(self, reader: asyncio.StreamReader, flags: list[bool]) -> object:
        method, path, headers, rest = await _read_head(reader)
        length = _header(headers, b"content-length")
        flags[_UNREAD] = (length is not None and length != b"0") or _header(headers, b"transfer-encoding") is not None
        if path == "/status":
            if method != b"GET":
                raise _Refused(405, "method not allowed", "Allow: GET")
            return self.api.status()
        if path == "/adopt":
            if method != b"PUT":
                raise _Refused(405, "method not allowed", "Allow: PUT")
            refusal = self.api.adoptable()
            if refusal:
                raise _Refused(409, "adopt: " + refusal)
            body = await self._read_body(reader, headers, rest)
            flags[_UNREAD] = False
            flags[_ACTING] = True  # the body opens itself (node.adoption), and may be taken
            return self.api.adopt(body)
        if path not in _SETTINGS:
            raise _Refused(404, "not found")
        if method != b"GET" and method != b"PUT":
            raise _Refused(405, "method not allowed", "Allow: GET, PUT")
        api = self.api
        if method == b"GET":
            expected = api.token()
            offered = _bearer(headers)
            if expected is None or offered is None or not hmac256.equal(offered, expected.encode()):
                raise _Refused(401, "a valid token is required", "WWW-Authenticate: Bearer")
            if path == "/config":
                return api.config()
            return api.heating() if path == "/heating" else api.load_sharing()
        try:
            signed = self._signed_head(headers)
            body = await self._read_body(reader, headers, rest)
            flags[_UNREAD] = False
            self._take_signature(signed, path, body)
            flags[_ACTING] = True  # its count taken: whatever happens from here, the PUT may have been taken
        except _Refused:
            # A put acted on drops putsign with what else it imported; one refused (a challenge asked for, or
            # a stranger's) would leave it in the heap until then.
            api.put_refused()
            raise
        if path == "/config":
            return api.put_config(body)
        return api.put_heating(body) if path == "/heating" else api.put_load_sharing(body)

    def _signed_head(self, headers: list[bytes]) -> tuple[int, bytes]:
        """(count, mac) of a PUT's signature whose head may be acted on once its mac holds; _Refused 401 if not."""
        from . import putsign  # only a PUT needs it (runtime._OCCASIONAL)

        boot = self.api.boot()
        if boot != self._signed_boot:  # the first PUT of this boot, or an adoption raised the boot id
            self._signed_boot = boot
            self._signed_count = 0
        refusal = self.api.put_refusal()
        if refusal:  # no challenge: the node's state, not the signature, must change first
            raise _Refused(409, refusal)
        signed = putsign.parse(_header(headers, b"authorization"))
        if self.api.pads() is None:
            words = "this node has no group key (it is not adopted yet)"
        elif boot < 1:
            words = "this node's boot counter is not kept: it cannot tell a PUT sent again, and takes none"
        elif signed is None:
            words = "a PUT needs a signed request (Authorization: LoadMesh-HMAC boot, n, mac; loadmesh put signs)"
        elif signed[0] != boot:
            words = "the signature is for another boot of this node"
        elif signed[1] <= self._signed_count:
            words = "the signature's count was taken already: sign with a count above the last"
        else:
            return signed[1], signed[2]
        raise _Refused(401, words, "WWW-Authenticate: " + putsign.challenge(self.api.node_id(), boot,
                                                                               self._signed_count))

    def _take_signature(self, signed: tuple[int, bytes], path: str, body: bytes) -> None:
        """Take a PUT's signature, checked against its body, before it is acted on; _Refused 401 if it does not hold.

        No await from the check to the count taken: of two requests with one
        count, only the first is acted on."""
        from . import putsign

        pads = self.api.pads()
        boot = self.api.boot()
        node = self.api.node_id()
        count, offered = signed
        words = ""
        if pads is None or boot != self._signed_boot:  # the node was adopted again while the body came
            words = "the signature is for another boot of this node"
        elif count <= self._signed_count:  # another request took this count while the body came
            words = "the signature's count was taken already: sign with a count above the last"
        elif not hmac256.equal(offered, putsign.mac(pads, b"PUT", path.encode(), node.encode(), boot, count, body)):
            words = "the signature does not match the request (another node, key, path or body)"
        if words:
            raise _Refused(401, words, "WWW-Authenticate: " + putsign.challenge(node, boot, self._signed_count))
        self._signed_count = count

    async def _read_body(self, reader: asyncio.StreamReader, headers: list[bytes], rest: bytes) -> bytes:
        if _header(headers, b"transfer-encoding") is not None:
            raise _Refused(501, "chunked bodies are not supported")
        text = _header(headers, b"content-length")
        if text is None:
            raise _Refused(411, "Content-Length is required")
        if not text or len(text) > 9 or not text.isdigit():
            raise _Refused(400, "bad Content-Length")
        length = int(text)
        if length > self.max_body:
            raise _Refused(413, "body over " + str(self.max_body) + " bytes")
        if self._body_busy:
            raise _Refused(503, "busy: another request's body is being read", _RETRY)
        self._body_busy = True
        try:
            return await self._fill(reader, rest, length)
        finally:
            self._body_busy = False

    async def _fill(self, reader: asyncio.StreamReader, rest: bytes, length: int) -> bytes:
        body = await read_exactly(reader, length, rest)
        if body is None:
            raise _Refused(400, "body shorter than Content-Length")
        return body

    def _answer(self, status: int, answer: object, header: str,
                acted: bool = False) -> tuple[bytes, list[bytes | bytearray] | tuple[bytes, ...]]:
        """_response; _NO_MEMORY for status _SHORT, or when building it runs out of memory (_MAYBE_TAKEN if
        acted: a PUT acted on). Every client gets an answer, counted by the status it gets."""
        response: tuple[bytes, list[bytes | bytearray] | tuple[bytes, ...]]
        if status == _SHORT:
            self.no_memory += 1
            response = _MAYBE_TAKEN if acted else _NO_MEMORY
        else:
            try:
                response = self._response(status, answer, header)
            except MemoryError:
                self.no_memory += 1
                response = _MAYBE_TAKEN if acted else _NO_MEMORY
        # Counted here, from the head that goes out ("HTTP/1.0 " and the status's first digit): a 200 whose answer
        # did not fit is a 503, and an answer JSON cannot carry a 500; counted by what was asked, they were not
        # refused. Reading a byte of the head costs nothing: no count fails for want of memory.
        self.requests += 1
        if response[0][9] >= 0x34:  # 4xx, 5xx
            self.refused += 1
        return response

    def _response(self, status: int, answer: object,
                  header: str) -> tuple[bytes, list[bytes | bytearray] | tuple[bytes, ...]]:
        """The answer's head and its body in pieces (_pieces; a plain function: its temporaries die with the call).

        The pieces go to the socket as they are, the head apart: the answer is
        in the heap once, in blocks no larger than its largest part, not in
        one block of its whole length (a boiler node's 1.9 KB /status, on a
        heap where little is left in one piece)."""
        pieces: list[bytes | bytearray] | tuple[bytes, ...]
        try:
            pieces = _pieces(answer)
        except TypeError:  # a callback returned something JSON cannot carry
            status, pieces = 500, (b'{"error":"internal"}',)
        head = "HTTP/1.0 " + str(status) + " " + _reason(status) + "\r\nContent-Type: application/json\r\n"
        if header:
            head += header + "\r\n"
        head += "Content-Length: " + str(_body_length(pieces)) + "\r\nConnection: close\r\n\r\n"
        return head.encode(), pieces

    async def _send(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    response: tuple[bytes, list[bytes | bytearray] | tuple[bytes, ...]], unread: bool) -> None:
        try:
            # A client that does not read gets the same time as one that does not write.
            await _within(_write_answer(writer, response[0], response[1]), self.timeout_ms / 1000)
            if unread:
                # Closing with unread input resets the connection, and a reset
                # can destroy the answer before the client reads it: take in
                # (and drop) a little of what it is still sending first.
                await _within(_discard(reader), _LINGER_MS / 1000)
        except Exception:  # timeout, reset by peer, no memory: nothing left to tell it
            pass
        await self._close(writer)

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        try:
            writer.close()
            await writer.wait_closed()
        except Exception:
            pass


async def read_exactly(reader: asyncio.StreamReader, length: int, rest: bytes = b"") -> bytes | None:
    """length bytes (rest: those already read), or None if the stream ends first.

    One buffer of that length, filled in place (growing a bytes object chunk
    by chunk would need it two or three times over on a node's heap), then
    one copy as bytes; the buffer is garbage before the caller parses it."""
    body = bytearray(length)
    got = len(rest) if len(rest) < length else length
    body[:got] = rest[:got]
    while got < length:
        chunk = await reader.read(length - got)
        if not chunk:
            return None
        body[got:got + len(chunk)] = chunk
        got += len(chunk)
    return bytes(body)


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, str, list[bytes], bytes]:
    """(method, path, header lines, body bytes read with the head); _Refused if bad or too big."""
    head = bytearray()
    while True:
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            skip = 4
            break
        end = head.find(b"\n\n")
        if end >= 0:
            skip = 2
            break
        if len(head) >= _MAX_HEAD:
            raise _Refused(413, "request head over " + str(_MAX_HEAD) + " bytes")
        chunk = await reader.read(_CHUNK)
        if not chunk:
            raise _Refused(400, "incomplete request")
        head += chunk
    if end > _MAX_HEAD:
        raise _Refused(413, "request head over " + str(_MAX_HEAD) + " bytes")
    lines = bytes(head[:end]).split(b"\n")
    parts = lines[0].strip().split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[1].startswith(b"/"):
        raise _Refused(400, "bad request line")
    try:
        target = parts[1].decode()
    except ValueError:
        raise _Refused(400, "bad request line") from None
    query = target.find("?")
    path = target[:query] if query >= 0 else target
    return parts[0], path, lines[1:], bytes(head[end + skip:])


def _pieces(answer: object) -> list[bytes | bytearray]:
    """answer's canonical JSON (canon.encode) in pieces: what _write_answer sends, one after another, is byte
    for byte canon.encode(answer).

    A dict answer is cut between its top-level keys, in canon's order
    (sorted): canonical JSON of a dict is its entries written one by one and
    joined. A piece is canon.encode of a dict of the keys it holds,
    '{"key":value,...}', its first byte made a comma after the first piece;
    _write_answer sends every piece but the last without its closing brace.
    A piece ends after a key whose value is a non-empty dict or list: a piece
    per key would cost a block header and its rounding each (a 1,611-byte
    /status held 3,168 bytes in 27 pieces on the 64-bit host, 1,664 in one
    buffer); the scalars between are a few bytes each. Every piece is made
    before the first is sent: the answer as it was when asked for, whatever
    the tick changes while a slow client reads, and its length known for the
    head. None needs a block of the whole answer's length, where a node with
    a full heap has room only in smaller ones. Anything but a non-empty dict
    is one piece."""
    if not isinstance(answer, dict) or not answer:
        return [canon.encode(answer)]
    keys = list(answer)
    for key in keys:
        if not isinstance(key, str):
            return [canon.encode(answer)]  # raises TypeError, naming the key
    keys.sort()
    pieces: list[bytes | bytearray] = []
    part: dict[str, object] = {}
    last = len(keys) - 1
    for index in range(len(keys)):
        key = keys[index]
        value = answer[key]
        part[key] = value
        if index == last or (isinstance(value, (dict, list, tuple)) and value):
            piece = canon.encode(part)
            if pieces:
                piece[0] = 0x2C  # ,
            pieces.append(piece)
            part = {}
    return pieces


def _body_length(pieces: list[bytes | bytearray] | tuple[bytes, ...]) -> int:
    """The bytes _write_answer sends of pieces: each piece but the last loses its last byte."""
    total = 1 - len(pieces)
    for piece in pieces:
        total += len(piece)
    return total


async def _write_answer(writer: asyncio.StreamWriter, head: bytes,
                        pieces: list[bytes | bytearray] | tuple[bytes, ...]) -> None:
    """head, then the pieces (_pieces), each as it is but the last without its last byte.

    The stream sends what it is given at once when it holds nothing unsent,
    and keeps what the socket did not take by appending it to what it holds:
    each write is drained before the next, or a part held back would be
    joined with the next in a new copy (the whole body, at worst). A piece
    goes as a view, so that a part the socket did not take is copied once (by
    the stream), not first sliced from it as well."""
    writer.write(head)
    await writer.drain()
    last = len(pieces) - 1
    for index in range(len(pieces)):
        piece = pieces[index]
        writer.write(memoryview(piece) if index == last else memoryview(piece)[:len(piece) - 1])
        await writer.drain()


async def _within(coro: "Coroutine[object, object, object]", timeout_s: float) -> object:
    """Run coro to its end or for timeout_s (TimeoutError), and never leave it running past the return.

    MicroPython's wait_for makes coro's task first, then the task that waits
    on it, then sleeps: a MemoryError in either of the last two (a small
    heap) left the first running on its own, unawaited. _send then closed the
    socket, the write went on into it, and its EBADF reached the loop as
    "Task exception wasn't retrieved". So the task is made here, and one not
    done when wait_for returns or raises is cancelled: it ends at its next
    await with CancelledError, which the loop does not report, and touches
    the socket no more."""
    task = asyncio.create_task(coro)
    try:
        return await asyncio.wait_for(task, timeout_s)
    finally:
        if not task.done():
            task.cancel()


async def _discard(reader: asyncio.StreamReader) -> None:
    dropped = 0
    while dropped < _LINGER_BYTES:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            return
        dropped += len(chunk)


def _header(lines: list[bytes], name: bytes) -> bytes | None:
    """The value of header name (lowercase), stripped; None if absent."""
    for line in lines:
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == name:
            return value.strip()
    return None


def _bearer(lines: list[bytes]) -> bytes | None:
    value = _header(lines, b"authorization")
    # The scheme's name is case-insensitive (RFC 9110, 11.1): "bearer" is as good as "Bearer".
    if value is None or value[:7].lower() != b"bearer ":
        return None
    return value[7:].strip()


def _reason(status: int) -> str:
    for code, text in ((200, "OK"), (400, "Bad Request"), (401, "Unauthorized"), (404, "Not Found"),
                       (405, "Method Not Allowed"), (409, "Conflict"), (411, "Length Required"),
                       (413, "Content Too Large"), (500, "Internal Server Error"), (501, "Not Implemented"),
                       (503, "Service Unavailable")):
        if code == status:
            return text
    return "Error"
