"""Contract entries for the mesh: HMAC, heartbeat encode and decode, the peer table, sensor channels."""

from . import fieldcheck as fc
from .errors import FieldError


def run(kind: str, request: object) -> object:
    """Answer one mesh request."""
    if kind == "hmac_sha256":
        return _hmac_sha256(request)
    if kind == "heartbeat_encode":
        return _heartbeat_encode(request)
    if kind == "heartbeat_decode":
        return _heartbeat_decode(request)
    if kind == "peers":
        return _peers(request)
    return _sensor(request)


def _bytes_from_hex(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise FieldError(field, "must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise FieldError(field, "is not hex") from None


def _int_field(request: object, name: str, default: int | None = None) -> int:
    if default is not None and isinstance(request, dict) and name not in request:
        return default
    value = fc.required(request, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldError(name, "must be an integer")
    return value


def _list_field(request: object, name: str) -> list[object]:
    value = fc.required(request, name)
    if not isinstance(value, list):
        raise FieldError(name, "must be a list")
    return value


def _only(request: object, keys: tuple[str, ...]) -> None:
    """Refuse a key outside keys: a misspelt optional one (max_peers, fast_rise) would silently take its default."""
    if isinstance(request, dict):
        fc.only(request, keys, "")


def _group_key(request: object) -> tuple[bytes, bytes]:
    from . import heartbeat

    key = _bytes_from_hex(fc.required(request, "key_hex"), "key_hex")
    try:
        return heartbeat.prepare_key(key)
    except FieldError as exc:  # prepare_key names its argument; the request's field is key_hex
        raise FieldError("key_hex", exc.problem) from None


def _hmac_sha256(request: object) -> object:
    # {"key_hex", "message_hex"} -> the full 32-byte HMAC-SHA256, for RFC 4231's vectors.
    from . import hmac256

    _only(request, ("key_hex", "message_hex"))
    key = _bytes_from_hex(fc.required(request, "key_hex"), "key_hex")
    message = _bytes_from_hex(fc.required(request, "message_hex"), "message_hex")
    return {"hex": hmac256.hmac_sha256(key, message).hex()}


def _heartbeat_encode(request: object) -> object:
    # {"key_hex", "heartbeat": {...}} -> the signed message in hex.
    from . import heartbeat

    _only(request, ("key_hex", "heartbeat"))
    pads = _group_key(request)
    given = fc.required(request, "heartbeat")
    data = heartbeat.encode(pads, given)
    # encode() reads the fields it knows and, on the node's 500 ms path, looks
    # at nothing else; here a misspelt one ("draw" for "draw_ma") is refused:
    # every field given must come back from the bytes.
    decoded = heartbeat.decode(pads, given["group"], data)[1]  # type: ignore[index]
    _known_fields(given, decoded, "heartbeat")
    return {"hex": data.hex(), "bytes": len(data)}


def _known_fields(given: object, decoded: object, path: str) -> None:
    if isinstance(given, dict) and isinstance(decoded, dict):
        fc.only(given, tuple(decoded), path)
        for key in sorted(given):
            _known_fields(given[key], decoded[key], fc.join(path, fc.key_name(key)))
    elif isinstance(given, list) and isinstance(decoded, list) and len(given) == len(decoded):
        for index in range(len(given)):
            _known_fields(given[index], decoded[index], fc.index(path, index))


def _heartbeat_decode(request: object) -> object:
    # {"key_hex", "group", "packets": [hex, ...]} -> what decode() makes of each.
    from . import heartbeat

    _only(request, ("key_hex", "group", "packets"))
    pads = _group_key(request)
    group = fc.required(request, "group")
    if not isinstance(group, str):
        raise FieldError("group", "must be a string")
    results = []
    for index, packet in enumerate(_list_field(request, "packets")):
        data = _bytes_from_hex(packet, "packets[" + str(index) + "]")
        reason, message = heartbeat.decode(pads, group, data)
        results.append({"reason": reason, "heartbeat": message})
    return {"results": results}


def _peers(request: object) -> object:
    # Packets through one peer table. A step sends "send" (fields over "base",
    # signed with the group key, or with the step's own "key_hex" to forge),
    # or raw "hex", or forgets a node, or only looks at time t_ms. The answer
    # is each step's reason and who is online, then the table after the last.
    from . import heartbeat, peers

    _only(request, ("key_hex", "group", "own", "members", "max_peers", "peer_timeout_ms", "boot_ids", "base", "steps"))
    pads = _group_key(request)
    group = fc.required(request, "group")
    own = fc.required(request, "own")
    if not isinstance(group, str):
        raise FieldError("group", "must be a string")
    if not isinstance(own, str):
        raise FieldError("own", "must be a string")
    members = request.get("members") if isinstance(request, dict) else None
    if members is not None and (not isinstance(members, list) or not all(isinstance(m, str) for m in members)):
        raise FieldError("members", "must be a list of node ids")
    table = peers.PeerTable(pads, group, own, members, _int_field(request, "max_peers", peers.MAX_PEERS))
    timeout_ms = _int_field(request, "peer_timeout_ms")
    boot_ids = request.get("boot_ids") if isinstance(request, dict) else None
    if boot_ids is not None:
        if not isinstance(boot_ids, dict):
            raise FieldError("boot_ids", "must be an object")
        table.restore_boot_ids(boot_ids)
    base = fc.required(request, "base")
    if not isinstance(base, dict):
        raise FieldError("base", "must be a heartbeat object")
    out = []
    now_ms = 0
    for index, step in enumerate(_list_field(request, "steps")):
        path = "steps[" + str(index) + "]"
        reason = None
        try:
            if not isinstance(step, dict):
                raise FieldError("", "must be an object")
            fc.only(step, ("t_ms", "send", "key_hex", "hex", "forget"), "")
            now_ms = _int_field(step, "t_ms")
            if "send" in step:
                fields = step["send"]
                if not isinstance(fields, dict):
                    raise FieldError("send", "must be an object")
                message = dict(base)
                message.update(fields)
                key = _group_key(step) if "key_hex" in step else pads
                reason = table.receive(heartbeat.encode(key, message), now_ms)
            elif "hex" in step:
                reason = table.receive(_bytes_from_hex(step["hex"], "hex"), now_ms)
            elif "forget" in step:
                node = step["forget"]
                if not isinstance(node, str):
                    raise FieldError("forget", "must be a node id")
                table.forget(node)
        except FieldError as exc:
            # Named from the step: each step of a file has its own t_ms, key_hex or heartbeat.
            raise FieldError(path + "." + exc.field if exc.field else path, exc.problem) from None
        online = [node for node in table.nodes() if table.online(node, now_ms, timeout_ms)]
        out.append({"t_ms": now_ms, "reason": reason, "online": online})
    snapshot = table.snapshot(now_ms, timeout_ms)
    return {"steps": out, "peers": snapshot["peers"], "counts": table.counts, "boot_ids": table.boot_ids()}


_SPECIAL_FLOATS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _sensor(request: object) -> object:
    # Readings through one sensor channel; JSON has no NaN, so "NaN",
    # "Infinity" and "-Infinity" stand for those floats.
    from . import sensor

    _only(request, ("low", "high", "hold_ms", "alpha_permille", "scale", "fast_rise", "steps"))
    fast_rise = request.get("fast_rise", False) if isinstance(request, dict) else False
    if not isinstance(fast_rise, bool):
        raise FieldError("fast_rise", "must be true or false")
    channel = sensor.Channel(_int_field(request, "low"), _int_field(request, "high"), _int_field(request, "hold_ms"),
                             _int_field(request, "alpha_permille", 1000), _int_field(request, "scale", 1),
                             fast_rise)
    out = []
    for index, step in enumerate(_list_field(request, "steps")):
        path = "steps[" + str(index) + "]"
        if not isinstance(step, dict):
            raise FieldError(path, "must be an object")
        fc.only(step, ("t_ms", "raw"), path)
        now_ms = fc.given(step, "t_ms", path + ".t_ms")
        if not isinstance(now_ms, int) or isinstance(now_ms, bool):
            raise FieldError(path + ".t_ms", "must be an integer")
        update = None
        if "raw" in step:
            raw = step["raw"]
            if isinstance(raw, str) and raw in _SPECIAL_FLOATS:
                raw = _SPECIAL_FLOATS[raw]
            update = channel.update(raw, now_ms)
        status, value, age_ms = channel.read(now_ms)
        out.append({"t_ms": now_ms, "update": update, "status": status, "value": value, "age_ms": age_ms})
    return {"steps": out, "counts": channel.counts}
