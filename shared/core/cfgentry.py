"""Contract entries for the group config: its hash, conflict resolution and merge, the sealed transport."""

from . import fieldcheck as fc
from .errors import FieldError


def run(kind: str, request: object) -> object:
    """Answer one group-config request."""
    if kind == "config_hash":
        return _config_hash(request)
    if kind == "config_merge":
        return _config_merge(request)
    if kind == "config_seal":
        return _config_seal(request)
    return _config_open(request)


def _pads(request: dict[str, object]) -> tuple[bytes, bytes]:
    from . import hmac256

    key = _hex_bytes(request.get("key_hex"), "key_hex")
    if len(key) < 16:
        raise FieldError("key_hex", "has " + str(len(key)) + " bytes; at least 16 are needed")
    return hmac256.prepare(key)


def _hex_bytes(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise FieldError(path, "must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise FieldError(path, "is not hex") from None


def _config_hash(request: object) -> object:
    from . import groupconfig

    mapping = fc.obj(request, "")
    fc.only(mapping, ("config",), "")
    config = groupconfig.parse(mapping.get("config"))
    return {"hash": groupconfig.config_hash(config), "announced": groupconfig.announced(config),
            "version": config["version"], "canonical": groupconfig.canonical(config)}


def _configs(mapping: dict[str, object]) -> list[dict[str, object]]:
    from . import groupconfig

    raw = fc.array_field(mapping, "configs", "configs")
    if not raw:
        raise FieldError("configs", "is empty")
    configs = []
    for position, item in enumerate(raw):
        try:
            configs.append(groupconfig.parse(item))
        except FieldError as exc:
            raise FieldError(fc.index("configs", position) + "." + exc.field, exc.problem) from None
    return configs


def _config_merge(request: object) -> object:
    from . import configsync, groupconfig

    mapping = fc.obj(request, "")
    fc.only(mapping, ("configs",), "")
    configs = _configs(mapping)
    merged = configsync.conservative(configs)
    hashes = [groupconfig.announced(config) for config in configs]
    return {"winner": configsync.winner(configs), "announced": hashes,
            "agree": len(set(hashes)) == 1, "merged": merged, "merged_hash": groupconfig.config_hash(merged)}


def _config_seal(request: object) -> object:
    from . import configsync, groupconfig

    mapping = fc.obj(request, "")
    fc.only(mapping, ("key_hex", "config"), "")
    data = configsync.seal(_pads(mapping), groupconfig.parse(mapping.get("config")))
    return {"hex": data.hex(), "bytes": len(data)}


def _config_open(request: object) -> object:
    from . import configsync, groupconfig

    mapping = fc.obj(request, "")
    fc.only(mapping, ("key_hex", "group", "blobs"), "")
    pads = _pads(mapping)
    group = mapping.get("group")
    if not isinstance(group, str):
        raise FieldError("group", "must be a string")
    results = []
    for position, blob in enumerate(fc.array_field(mapping, "blobs", "blobs")):
        reason, config = configsync.open_sealed(pads, group, _hex_bytes(blob, fc.index("blobs", position)))
        results.append({"reason": reason, "hash": None if config is None else groupconfig.config_hash(config)})
    return {"results": results}


