"""Config sync between nodes: which config wins, the conservative merge meanwhile, and the signed transport."""

import json
import sys

from . import hmac256
from .errors import FieldError
from .groupconfig import canonical, config_hash, member_failsafe_ma, parse

# The signed transport (PUT /config, a fetch from a peer): "LMC", a format
# byte, the canonical JSON text, then the full 32-byte HMAC-SHA256 of all that
# under the group key. open_sealed() never raises; it returns a reason.
SEALED_MAGIC = b"LMC"
SEALED_FORMAT = 1
SEALED_MAX_BYTES = 16384
_SEALED_HEAD = len(SEALED_MAGIC) + 1
_TAG_BYTES = hmac256.DIGEST_BYTES

OK = "ok"
NOT_BYTES = "not_bytes"
TOO_LONG = "too_long"
TRUNCATED = "truncated"
BAD_MAGIC = "bad_magic"
BAD_FORMAT = "bad_format"
BAD_TAG = "bad_tag"
BAD_JSON = "bad_json"
BAD_FIELD = "bad_field"
NOT_CANONICAL = "not_canonical"
WRONG_GROUP = "wrong_group"

# The reason for one signed text is the same on every runtime. MicroPython's
# json has no NaN or Infinity and reads integers of any length; CPython's
# reads NaN and Infinity as floats and refuses an integer of more than 4300
# digits (int_max_str_digits, which describing it in an error would hit as
# well). So on CPython the constants are not JSON (bad_json, as on
# MicroPython), and an integer longer than any limit CPython can be set to
# reads as infinity, which no field takes (bad_field, as MicroPython's check
# of its range gives). What MicroPython's reader takes beyond JSON (leading
# zeros, "1.", a trailing comma, control characters in strings) is not the
# canonical text either: not_canonical (or bad_field) there, bad_json on
# CPython; docs/safety.md.
_MICROPYTHON = sys.implementation.name == "micropython"
_INT_DIGITS = 640  # the smallest int_max_str_digits CPython accepts; no field holds an integer this long


def compare(a: dict[str, object], b: dict[str, object]) -> int:
    """1 if a wins over b, -1 if b wins, 0 if they are the same config."""
    # Higher version; on the same version with different contents, the later
    # updated_at, then the lower origin id, then (two authors with the same
    # id at the same moment) the lower hash, so every node picks the same one.
    hash_a = config_hash(a)
    hash_b = config_hash(b)
    if hash_a == hash_b:
        return 0
    for key, higher_wins in (("version", True), ("updated_at", True), ("origin", False)):
        value_a = a[key]
        value_b = b[key]
        if value_a != value_b:
            a_higher = value_a > value_b  # type: ignore[operator]
            return 1 if a_higher == higher_wins else -1
    return 1 if hash_a < hash_b else -1


def winner(configs: list[dict[str, object]]) -> int:
    """The index of the config that wins conflict resolution (the first of equal ones)."""
    if not configs:
        raise FieldError("configs", "is empty")
    best = 0
    for index in range(1, len(configs)):
        if compare(configs[index], configs[best]) > 0:
            best = index
    return best


def conservative(configs: list[dict[str, object]]) -> dict[str, object]:
    """The winning config with the smallest limits of all the given ones where they differ."""
    # While nodes run different configs, each uses the smallest site and
    # circuit limit per phase, safety, import cap and member max, the longest
    # EV lag, margin and anti-flap guard, and the more conservative failsafe,
    # of the configs it knows to be in use. The structure (circuit tree,
    # members, their circuits and phases) is the winner's: a limit that the
    # winner does not have cannot be placed.
    base = configs[winner(configs)]
    merged = json.loads(canonical(base))  # a deep copy
    assert isinstance(merged, dict)
    base_hash = config_hash(base)
    others = [other for other in configs if config_hash(other) != base_hash]
    if not others:
        return base
    site_cfg = merged["site"]
    circuits = {circuit["id"]: circuit for circuit in merged["circuits"]}
    members = {member["id"]: member for member in merged["members"]}
    for member in members.values():
        # Each member's smallest failsafe current, the winner's own included (its default when the
        # member has none): a member without one must not take another config's, possibly higher.
        member["failsafe_ma"] = member_failsafe_ma(base, member)
    failsafe = merged["failsafe"]
    for other in others:
        other_site = other["site"]
        assert isinstance(other_site, dict)
        if other_site["phases"] == site_cfg["phases"]:
            site_cfg["limit_ma"] = _smaller(site_cfg["limit_ma"], other_site["limit_ma"])
        site_cfg["safety_pct"] = min(site_cfg["safety_pct"], other_site["safety_pct"])
        caps = [cap for cap in (site_cfg["import_limit_w"], other_site["import_limit_w"]) if cap is not None]
        site_cfg["import_limit_w"] = min(caps) if caps else None
        site_cfg["meter_stale_ms"] = min(site_cfg["meter_stale_ms"], other_site["meter_stale_ms"])
        other_circuits = other["circuits"]
        assert isinstance(other_circuits, list)
        for circuit in other_circuits:
            mine = circuits.get(circuit["id"])
            if mine is not None and len(mine["limit_ma"]) == len(circuit["limit_ma"]):
                mine["limit_ma"] = _smaller(mine["limit_ma"], circuit["limit_ma"])
        other_members = other["members"]
        assert isinstance(other_members, list)
        for member in other_members:
            mine = members.get(member["id"])
            if mine is None:
                continue
            mine["max_ma"] = min(mine["max_ma"], member["max_ma"])
            mine["min_ma"] = min(mine["min_ma"], mine["max_ma"])
            theirs = member_failsafe_ma(other, member)
            if theirs < mine["failsafe_ma"]:
                mine["failsafe_ma"] = theirs
        other_failsafe = other["failsafe"]
        assert isinstance(other_failsafe, dict)
        if other_failsafe["mode"] == "disable":
            failsafe["mode"] = "disable"
        failsafe["current_ma"] = min(failsafe["current_ma"], other_failsafe["current_ma"])
        for key in ("ev_lag_ms", "margin_ms", "antiflap_ms"):
            merged[key] = max(merged[key], other[key])
    try:
        return parse(merged)
    except FieldError:
        # Every limit here is at most one that passed the check, with failsafe
        # currents no larger; only a different structure can fail it. Off is
        # safe under any limits.
        failsafe["mode"] = "disable"
        return parse(merged)


def _smaller(mine: list[int], theirs: list[int]) -> list[int]:
    return [mine[phase] if mine[phase] <= theirs[phase] else theirs[phase] for phase in range(len(mine))]


def seal(pads: tuple[bytes, bytes], config: dict[str, object]) -> bytes:
    """The signed transport bytes of a parsed config."""
    body = SEALED_MAGIC + bytes([SEALED_FORMAT]) + canonical(config).encode()
    if len(body) + _TAG_BYTES > SEALED_MAX_BYTES:
        raise FieldError("config", "seals to more than " + str(SEALED_MAX_BYTES) + " bytes")
    return body + hmac256.digest(pads, body)


def open_sealed(pads: tuple[bytes, bytes], group: str, data: object) -> tuple[str, dict[str, object] | None]:
    """(OK, config) for a config sealed under the group key for this group, else (reason, None); never raises."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return NOT_BYTES, None
    size = len(data)
    if size > SEALED_MAX_BYTES:
        return TOO_LONG, None
    if size < _SEALED_HEAD + _TAG_BYTES:
        return TRUNCATED, None
    view = memoryview(data)
    if bytes(view[:len(SEALED_MAGIC)]) != SEALED_MAGIC:
        return BAD_MAGIC, None
    if view[len(SEALED_MAGIC)] != SEALED_FORMAT:
        return BAD_FORMAT, None
    end = size - _TAG_BYTES
    if not hmac256.equal(hmac256.digest(pads, view[:end]), view[end:]):
        return BAD_TAG, None
    # From here on the bytes come from a key holder: what is wrong is a bug or
    # a bad edit, not an attack; it is still refused, never raised.
    try:
        text = bytes(view[_SEALED_HEAD:end]).decode()
        raw = json.loads(text) if _MICROPYTHON else _cpython_loads(text)
    except Exception:  # UnicodeError, ValueError, RecursionError: any text that is not JSON
        return BAD_JSON, None
    try:
        config = parse(raw)
    except FieldError:
        return BAD_FIELD, None
    if canonical(config) != text:
        return NOT_CANONICAL, None
    if config["group"] != group:
        return WRONG_GROUP, None
    return OK, config




def _cpython_loads(text: str) -> object:
    # Only on CPython: MicroPython's loads takes the text alone (and its stubs say so).
    return json.loads(text, parse_constant=_not_json, parse_int=_json_int)  # type: ignore[call-arg,unused-ignore]


def _not_json(name: str) -> object:
    raise ValueError(name + " is not JSON")


def _json_int(digits: str) -> object:
    return int(digits) if len(digits) <= _INT_DIGITS else float("inf")
