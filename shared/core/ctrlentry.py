"""The controller's contract entry: one node's ticks, with the heartbeats it hears, on any runtime."""

import gc

from . import fieldcheck as fc
from .errors import FieldError

_COMPACT = hasattr(gc, "mem_free")  # MicroPython: collect between ticks, as a node does

# A step file: {"config", "node", "boot_id", optional "last_applied_ma" and
# "last_exposure_ma" (what RTC memory kept across a watchdog reset),
# "steps": [{"t_ms", optional "inputs", optional "hear": [...]}]}. Inputs
# are merged key by key into the previous step's. Each heard heartbeat is a
# peer's decoded heartbeat (docs/heartbeat.md), built from the sender's
# config facts and the fields given, and taken into the node's peer table
# just before the tick, with the table's replay checks: the wire format and
# its HMAC have vectors of their own, and leaving the codec out keeps this
# entry within an ESP32-sized heap. "digest": "agree" stands for the digest
# this node published last: a peer that holds the same view. The answer is
# one object per step.
MAX_STEPS = 200
_MAX_VALUE = (1 << 30) - 1
_MODES = ("off", "continuous", "solar_priority", "solar_only", "excess")


def run(request: object) -> object:
    """Answer a controller step file."""
    from . import groupconfig

    mapping = fc.obj(request, "")
    fc.only(mapping, ("config", "node", "boot_id", "last_applied_ma", "last_exposure_ma", "steps"), "")
    node = mapping.get("node")
    if node is None:
        raise FieldError("node", "is missing: the id of the member whose ticks these are")
    if not isinstance(node, str):
        raise FieldError("node", fc.describe(node) + " is not a member id")
    facts = groupconfig.node_facts(groupconfig.parse(mapping.get("config")), node)
    if _COMPACT:
        # The config is parsed and prepared: on an ESP32-sized heap its module
        # makes room for the ones that run the ticks (imported again on use).
        import sys

        del groupconfig
        package = __name__[:-len(".ctrlentry")]
        sys.modules.pop(package + ".groupconfig", None)
        delattr(sys.modules[package], "groupconfig")
        gc.collect()
    from . import controller, peers

    plan = controller.Plan(facts)
    table = peers.PeerTable((b"", b""), plan.group, node, plan.ids)  # fed decoded heartbeats only
    boot_id = fc.int_field(mapping, "boot_id", "", 1, _MAX_VALUE)
    last_applied_ma = fc.int_field(mapping, "last_applied_ma", "", 0, 1000000, 0)
    last_exposure_ma = fc.int_field(mapping, "last_exposure_ma", "", 0, 1000000, 0)
    steps = fc.array_field(mapping, "steps", "steps")
    if len(steps) > MAX_STEPS:
        raise FieldError("steps", "has " + str(len(steps)) + " steps, more than " + str(MAX_STEPS))
    state: dict[str, object] | None = None
    inputs: object = {}
    digest = ""
    out = []
    for position, raw_step in enumerate(steps):
        path = fc.index("steps", position)
        step_map = fc.obj(raw_step, path)
        fc.only(step_map, ("t_ms", "inputs", "hear"), path)
        now_ms = fc.int_field(step_map, "t_ms", path, 0, _MAX_VALUE)
        if state is None:
            state = controller.boot(plan, boot_id, now_ms, last_applied_ma, last_exposure_ma)
        if "inputs" in step_map:
            inputs = fc.merged(inputs, fc.obj(step_map["inputs"], path + ".inputs"))
        heard = []
        for number, item in enumerate(fc.array(step_map.get("hear", []), path + ".hear")):
            message = _heartbeat(plan, fc.obj(item, fc.index(path + ".hear", number)),
                                 fc.index(path + ".hear", number), digest)
            heard.append(table.accept_decoded(message, now_ms))
        try:
            result, state = controller.step(plan, state, inputs, table, now_ms)  # type: ignore[arg-type]
        except FieldError as exc:
            raise FieldError(path + "." + exc.field, exc.problem) from None
        if _COMPACT:
            gc.collect()
        digest = str(result["digest"])
        sent = result["heartbeat"]
        out.append({
            "t_ms": now_ms, "heard": heard, "applied_ma": result["applied_ma"], "target_ma": result["target_ma"],
            "exposure_ma": result["exposure_ma"], "failsafe": result["failsafe"], "reason": result["reason"],
            "alloc_reason": result["alloc_reason"], "digest": digest, "silent": result["silent"],
            "disagree": result["disagree"], "config_mismatch": result["config_mismatch"],
            "sent": sent["seq"] if isinstance(sent, dict) else None,
        })
    return {"steps": out}


_BOOLS = ("demand", "active", "failsafe")
_INTS = ("boot_id", "seq", "target_ma", "applied_ma", "config_version", "target_seq", "exposure_ma")


def _heartbeat(plan: object, item: dict[str, object], path: str, digest: str) -> dict[str, object]:
    """A peer's decoded heartbeat: its config facts, then the item's fields, each checked."""
    sender = fc.given(item, "node", path + ".node")
    facts = None
    for member in plan.members:  # type: ignore[attr-defined]
        if member["id"] == sender and sender != plan.node:  # type: ignore[attr-defined]
            facts = member
    if facts is None:
        raise FieldError(path + ".node", fc.describe(sender) + " is not a peer")
    message: dict[str, object] = {
        "group": plan.group, "node": sender, "boot_id": 1, "seq": 0,  # type: ignore[attr-defined]
        "circuit": facts["circuit"], "phases": facts["phases"], "mode": facts["mode"], "priority": facts["priority"],
        "min_ma": facts["min_ma"], "max_ma": facts["max_ma"], "step_ma": facts["step_ma"],
        "demand": False, "active": False, "failsafe": False, "draw_ma": [None, None, None],
        "target_ma": 0, "applied_ma": 0, "config_version": plan.version,  # type: ignore[attr-defined]
        "config_hash": plan.announced, "digest": "", "meter": None,  # type: ignore[attr-defined]
        "heating": None, "control": None,
    }
    control: dict[str, object] = {"target_seq": 0}
    for key in item:
        value = item[key]
        where = path + "." + fc.key_name(key)
        if key in _BOOLS:
            if value is not True and value is not False:
                raise FieldError(where, fc.describe(value) + " is not true or false")
        elif key in _INTS:
            if key != "target_seq" or value is not None:
                fc.integer(value, where, 1 if key == "boot_id" else 0, _MAX_VALUE)
        elif key == "priority":
            fc.integer(value, where, -0x8000, 0x7FFF)
        elif key == "mode":
            if value not in _MODES:
                raise FieldError(where, fc.describe(value) + " is not one of " + ", ".join(_MODES))
        elif key in ("digest", "config_hash"):
            if not isinstance(value, str):
                raise FieldError(where, fc.describe(value) + " is not a hex string")
            if value == "agree" and key == "digest":
                value = digest  # what a peer holding the same view would carry
        elif key == "draw_ma":
            value = _draws(value, where)
        elif key == "meter":
            value = _meter(value, where)
        elif key != "node":
            raise FieldError(where, "is not a known field")
        if key == "target_seq" or key == "exposure_ma":
            control[key] = value
        else:
            message[key] = value
    if control["target_seq"] is not None:
        # What its car may still draw: its applied limit unless the item says more.
        control.setdefault("exposure_ma", message["applied_ma"])
        message["control"] = control
    return message


def _draws(value: object, path: str) -> list[object]:
    items = fc.array(value, path)
    if len(items) != 3:
        raise FieldError(path, "must be a list of 3 values (L1, L2, L3; null when unknown)")
    return [None if item is None else fc.integer(item, fc.index(path, phase), 0, _MAX_VALUE)
            for phase, item in enumerate(items)]


def _meter(value: object, path: str) -> object:
    if value is None:
        return None
    mapping = fc.obj(value, path)
    fc.only(mapping, ("seq", "age_ms", "ma", "managed_ma"), path)
    readings = fc.array_field(mapping, "ma", path + ".ma")
    managed = fc.array_field(mapping, "managed_ma", path + ".managed_ma")
    if len(readings) != 3 or len(managed) != 3:
        raise FieldError(path, "ma and managed_ma must have 3 values each (L1, L2, L3)")
    return {"seq": fc.int_field(mapping, "seq", path, 0, _MAX_VALUE),
            "age_ms": fc.int_field(mapping, "age_ms", path, 0, _MAX_VALUE),
            "ma": [None if item is None else fc.integer(item, fc.index(path + ".ma", phase), -_MAX_VALUE, _MAX_VALUE)
                   for phase, item in enumerate(readings)],
            "managed_ma": [fc.integer(item, fc.index(path + ".managed_ma", phase), 0, _MAX_VALUE)
                           for phase, item in enumerate(managed)]}
