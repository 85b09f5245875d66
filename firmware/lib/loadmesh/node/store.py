"""Persistence: config, key, wiring and the boot counter, each file written atomically and checked."""

import hashlib
import json
import os

from loadmesh.core import canon

# Every file is an envelope: a first line "LM1 <16 hex digits>\n", the start
# of the SHA-256 of the payload, then the payload. A missing header, a wrong
# hash, a short file or garbage all read as corrupt, and a corrupt or missing
# file reads as None: the caller falls back to safe defaults (an unadopted
# node), never to a crash and never to half a file.
#
# A write goes to NAME.tmp, which is closed and then renamed over NAME: on
# littlefs (the ESP32 default) the rename is atomic, so NAME always holds the
# old payload or the new one. On FAT a rename onto an existing file fails; the
# store then removes NAME first, and a read that finds NAME missing or corrupt
# takes a complete NAME.tmp instead (its hash proves it is whole). No fsync:
# littlefs commits at close; on the unix port (the simulator) write() is the
# system call itself, so a killed process leaves at most part of a NAME.tmp
# (docs/firmware.md, "Persistence"; tests/test_node_store_kill.py).
#
# The boot counter (docs/heartbeat.md: it must rise at every boot and never
# repeat) is kept in two files, written one after the other, and read as the
# highest valid value among them and their temp files. A torn write can skip
# a number but never repeat one: a boot id is used only after both copies hold
# it. If every copy is lost the count restarts at 1; peers then refuse the
# node as old_boot until they forget it at re-adoption, which is safe (it looks
# silent) but unavailable, and is reported as boot_state "reset". The count
# written after such a loss carries the word (b"1 reset"), and every count
# after it does, so that the state outlives the boot that found the loss: the
# boot ids it hands out may be ones it had before, and a PUT signed for one of
# those must not be taken again (runtime: no signed PUT while "reset"). Only a
# count someone vouches for clears it: adoption's boot floor
# (raise_boot_floor) or node-files' boot.a, a plain count above it. A node
# provisioned with a key but no count (the simulator's) is vouched for the same
# way (raise_boot_floor(0)): from its files alone a lost count looks the same.

KEY = "key"
CONFIG = "config.json"
ADOPTION_CODE = "adopt"  # an unadopted node's one-time code (adoption.py), named here for the boot of an adopted one
HARDWARE = "hw.json"
BOOT_FILES = ("boot.a", "boot.b")
TMP = ".tmp"

OK = "ok"
MISSING = "missing"
CORRUPT = "corrupt"

MIN_KEY_BYTES = 16
MAX_KEY_BYTES = 64
MAX_BOOT_ID = (1 << 30) - 1  # the heartbeat's bound
RESET = "reset"  # boot_state: the count restarted since the last one vouched for (above)
_RESET_MARK = b" reset"

_MAGIC = b"LM1 "
_HASH_HEX = 16
_HEADER_BYTES = 4 + _HASH_HEX + 1


class Store:
    """Files under root (a folder; "" is the current one), each read back as None when missing or corrupt."""

    def __init__(self, root: str = "") -> None:
        self.root = root
        self.state: dict[str, str] = {}  # file name -> OK | MISSING | CORRUPT, from the last read
        self.boot_state = MISSING  # OK: the counter was read; RESET: every copy was lost, now or since adoption

    def path(self, name: str) -> str:
        """Where name lives."""
        return self.root + "/" + name if self.root else name

    def read(self, name: str) -> bytes | None:
        """The payload of name, or None when it is missing or corrupt (self.state says which)."""
        payload = _read_envelope(self.path(name))
        if payload is None:
            # A complete temp file is a write whose rename did not happen.
            payload = _read_envelope(self.path(name + TMP))
            self.state[name] = MISSING if payload is None and not _exists(self.path(name)) else CORRUPT
            if payload is not None:
                self.state[name] = OK
                _replace(self.path(name + TMP), self.path(name))
        else:
            self.state[name] = OK
        return payload

    def write(self, name: str, payload: bytes | bytearray) -> None:
        """Replace name's payload atomically; OSError if the file system refuses."""
        temp = self.path(name + TMP)
        with open(temp, "wb") as out:
            out.write(_MAGIC)
            out.write(_hash_hex(payload))
            out.write(b"\n")
            out.write(payload)
        _replace(temp, self.path(name))
        self.state[name] = OK

    def exists(self, name: str) -> bool:
        """Whether name or its temp file is there, whole or not (a stat or two, nothing read)."""
        return _exists(self.path(name)) or _exists(self.path(name + TMP))

    def remove(self, name: str) -> None:
        """Delete name and its temp file, if they exist."""
        for path in (self.path(name), self.path(name + TMP)):
            if _exists(path):
                os.remove(path)
        self.state[name] = MISSING

    def clean(self) -> list[str]:
        """Settle temp files left by torn writes; the names of those removed.

        A complete temp file whose file is missing or corrupt is a write whose
        rename did not happen (FAT: the old file was removed first): read()
        puts it in place. Any other is an unfinished write: removed."""
        removed = []
        for name in sorted(os.listdir(self.root or ".")):
            if name.endswith(TMP) and len(name) > len(TMP):
                try:  # noqa: SIM105 (MicroPython has no contextlib)
                    self.read(name[:-len(TMP)])
                except OSError:  # it could not be put in place (a folder in the way): dropped as unfinished
                    pass
                if _exists(self.path(name)):
                    try:
                        os.remove(self.path(name))
                        removed.append(name)
                    except OSError:  # not a file of ours (a folder someone made): left; a boot never fails here
                        pass
        return removed

    def read_json(self, name: str) -> object | None:
        """name's payload parsed as JSON; None when missing, corrupt or not JSON."""
        payload = self.read(name)
        if payload is None:
            return None
        try:
            value: object = json.loads(payload)
        except ValueError:  # the hash matched, so it was written so: a bug, but still no crash
            self.state[name] = CORRUPT
            return None
        return value

    def write_json(self, name: str, value: object) -> None:
        """Write value as canonical JSON (encoded once: a text and its bytes would be two copies in the heap)."""
        self.write(name, canon.encode(value))

    def read_key(self) -> bytes | None:
        """The group key, or None (an unadopted node)."""
        payload = self.read(KEY)
        if payload is None:
            return None
        try:
            key = bytes.fromhex(payload.decode())
        except ValueError:
            key = b""
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            self.state[KEY] = CORRUPT
            return None
        return key

    def write_key(self, key: bytes) -> None:
        """Keep the group key (16 to 64 bytes)."""
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise ValueError("key: " + str(len(key)) + " bytes; " + str(MIN_KEY_BYTES) + " to "
                             + str(MAX_KEY_BYTES) + " are needed")
        self.write(KEY, key.hex().encode())

    def last_boot_id(self) -> int:
        """The highest boot id on record (0 if none), without raising it; boot_state says whether it is vouched for."""
        highest = -1
        reset = True  # no copy at all reads as a loss
        for name in BOOT_FILES:
            for path in (self.path(name), self.path(name + TMP)):
                value, marked = _counter(_read_envelope(path))
                # Of two copies with one count the marked one wins: a loss is not overruled by a count it equals.
                if value > highest or (value == highest and marked):
                    highest = value
                    reset = marked
        self.boot_state = RESET if reset else OK
        return highest if highest > 0 else 0

    def next_boot_id(self) -> int:
        """Raise the boot counter and return it; call once per boot, before the first heartbeat."""
        boot_id = self.last_boot_id() + 1
        if boot_id > MAX_BOOT_ID:
            # Heartbeats cannot carry it: stay out of the mesh rather than repeat an id.
            raise OSError("boot counter exhausted")
        self._write_counter(boot_id, self.boot_state == RESET)
        return boot_id

    def raise_boot_floor(self, boot_id: int) -> None:
        """Make the next boot id at least boot_id + 1 and vouch for the count (adoption, or a node provisioned
        with a key): boot_state is OK after it, even below the count the node has (that one is kept)."""
        last = self.last_boot_id()
        if boot_id > last or self.boot_state != OK:
            self._write_counter(boot_id if boot_id > last else last, False)
            self.boot_state = OK

    def _write_counter(self, boot_id: int, reset: bool) -> None:
        payload = str(boot_id).encode() + _RESET_MARK if reset else str(boot_id).encode()
        for name in BOOT_FILES:
            self.write(name, payload)


def _hash_hex(payload: bytes | bytearray) -> bytes:
    digest: bytes = hashlib.sha256(payload).digest()
    return digest[:_HASH_HEX // 2].hex().encode()


def _read_envelope(path: str) -> bytes | None:
    try:
        with open(path, "rb") as source:
            data: bytes = source.read()
    except OSError:
        return None
    if len(data) < _HEADER_BYTES or data[:4] != _MAGIC or data[_HEADER_BYTES - 1] != 0x0A:
        return None
    payload = data[_HEADER_BYTES:]
    if _hash_hex(payload) != data[4:_HEADER_BYTES - 1]:
        return None
    return payload


def _counter(payload: bytes | None) -> tuple[int, bool]:
    """(count, marked reset) of a copy of the counter; (-1, False) if it is not one. 0 is one: node-files'
    boot.a with --boot-floor 0 (the first boot id 1, vouched for)."""
    if payload is None:
        return -1, False
    marked = payload.endswith(_RESET_MARK)
    digits = payload[:-len(_RESET_MARK)] if marked else payload
    if not 1 <= len(digits) <= 10:
        return -1, False
    for byte in digits:
        if not 0x30 <= byte <= 0x39:
            return -1, False
    value = int(digits)
    return (value, marked) if value <= MAX_BOOT_ID else (-1, False)


def _exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _replace(source: str, target: str) -> None:
    try:
        os.rename(source, target)
    except OSError:
        # FAT refuses to rename onto an existing file. Between these two
        # steps only the temp file holds the data; read() recovers it.
        if not _exists(target):
            raise
        os.remove(target)
        os.rename(source, target)
