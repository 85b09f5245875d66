"""Valve command arbitration: safety > load sharing > corrections > normal, and the interlock minimum."""

from .errors import FieldError

# step(config, state, inputs, now_ms) -> (outputs, new_state), on the boiler
# node each tick, after boiler.step (whose hold_valves it takes). Before
# boiler.step, confirmed_pct(state, ...) gives the boiler its interlock input.
#   config  {"min_valve_open_pct": 100}                      (load_config())
#   state   {"held": {room: pct}, "last": {room: pct}}       (initial_state())
#   inputs  {"rooms": {room: {"normal_pct", "calling", "correction_pct",
#            "confirmed_pct", "lasting_pct" (optional)}}, "load_sharing":
#            {room: pct}, "hold": bool, "demand": bool, "firing": bool}
#   outputs {"valve_pct": {room: pct}, "source": {room: "safety"|"load_sharing"|
#            "correction"|"normal"}, "interlock": "ok"|"raised"|"short"|"idle"}
# The highest layer that has a command for a room decides it:
#   safety        pump overrun and pending-off hold the openings of the tick
#                 before the hold began; the interlock raises calling rooms
#   load_sharing  the tier overrides
#   correction    a valve node's correction (e.g. re-seating a valve)
#   normal        room control
# While the boiler wants to fire, the openings must add up to at least
# min_valve_open_pct: load-sharing and other open valves count, and calling
# rooms are raised evenly (in 10 % steps) to make up the rest. While it is on
# (firing), valves move make-before-break: a valve closes only as far as the
# openings already confirmed elsewhere allow; the rest waits for the others to
# confirm. Valve motors take tens of seconds, and a dip below the minimum would
# switch the boiler off at once. lasting_pct (default: confirmed_pct) is the
# part of a room's confirmed opening sure to stay: the boiler node gives less
# for a room whose valve node may be about to drop its command
# (role_boiler.py); it counts for the others, never for how far the room's
# own valve may close.

def load_config(raw: object, path: str) -> dict[str, int]:
    """{"min_valve_open_pct": 100}, validated."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, ("min_valve_open_pct",), path)
    return {"min_valve_open_pct": fc.int_field(mapping, "min_valve_open_pct", path, 10, 1000, 100)}


def initial_state() -> dict[str, object]:
    """Nothing held, nothing commanded yet."""
    return {"held": {}, "last": {}}


def _pct_map(raw: object, path: str, rooms: list[str]) -> dict[str, int]:
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    result: dict[str, int] = {}
    for rid in sorted(mapping):
        if rid not in rooms:
            raise FieldError(fc.join(path, fc.key_name(rid)), "is not a configured room")
        result[rid] = fc.integer(mapping[rid], fc.join(path, rid), 0, 100)
    return result


def load_state(raw: object, path: str, rooms: list[str]) -> dict[str, object]:
    """A persisted arbitration state, validated against the room ids."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, ("held", "last"), path)
    return {"held": _pct_map(mapping.get("held", {}), fc.join(path, "held"), rooms),
            "last": _pct_map(mapping.get("last", {}), fc.join(path, "last"), rooms)}


def confirmed_pct(state: dict[str, object], confirmed: dict[str, int]) -> int:
    """The opening the boiler may count: each valve's confirmed position, up to what it was last commanded.

    A valve still closing reports an opening that will not last: counting it
    would let the boiler fire on water paths that are about to shut.
    """
    last = state["last"]
    assert isinstance(last, dict)
    total = 0
    for rid in sorted(confirmed):
        commanded = last.get(rid, 0)
        total += confirmed[rid] if confirmed[rid] < commanded else commanded
    return total


def _ceil10(value: int) -> int:
    return (value + 9) // 10 * 10


def step(config: dict[str, int], state: dict[str, object], inputs: dict[str, object],
         now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
    """Final valve commands for this tick; now_ms is unused today and kept for a uniform step API."""
    rooms = inputs["rooms"]
    sharing = inputs["load_sharing"]
    assert isinstance(rooms, dict) and isinstance(sharing, dict)
    order = sorted(rooms)
    final: dict[str, int] = {}
    source: dict[str, str] = {}
    for rid in order:
        room = rooms[rid]
        if rid in sharing:
            final[rid], source[rid] = sharing[rid], "load_sharing"
        elif room.get("correction_pct") is not None:
            final[rid], source[rid] = room["correction_pct"], "correction"
        else:
            final[rid], source[rid] = room["normal_pct"], "normal"
    held = state["held"]
    last = state["last"]
    assert isinstance(held, dict) and isinstance(last, dict)
    if inputs["hold"]:
        if not held:
            held = {rid: last[rid] for rid in sorted(last) if last[rid] > 0 and rid in rooms}
        for rid in sorted(held):
            final[rid], source[rid] = held[rid], "safety"
        interlock = "idle"
    else:
        held = {}
        interlock = "idle"
        if inputs["demand"]:
            interlock = _interlock(config["min_valve_open_pct"], rooms, order, final, source)
        if inputs["firing"]:
            _make_before_break(config["min_valve_open_pct"], rooms, order, final, source, last)
    outputs = {"valve_pct": final, "source": source, "interlock": interlock}
    return outputs, {"held": dict(held), "last": dict(final)}


def _interlock(minimum: int, rooms: dict[str, dict[str, object]], order: list[str], final: dict[str, int],
               source: dict[str, str]) -> str:
    total = 0
    for rid in order:
        total += final[rid]
    if total >= minimum:
        return "ok"
    callers = [rid for rid in order if rooms[rid]["calling"]]
    if not callers:
        return "short"
    others = total
    for rid in callers:
        others -= final[rid]
    each = _ceil10((minimum - others + len(callers) - 1) // len(callers))
    if each > 100:
        each = 100
    total = others
    for rid in callers:
        if final[rid] < each:
            final[rid], source[rid] = each, "safety"
        total += final[rid]
    return "raised" if total >= minimum else "short"


def _make_before_break(minimum: int, rooms: dict[str, dict[str, object]], order: list[str], final: dict[str, int],
                       source: dict[str, str], last: dict[str, int]) -> None:
    # Opening valves count only as far as confirmed; closing ones drop at once.
    secured = 0
    for rid in order:
        confirmed = rooms[rid].get("confirmed_pct", 0)
        lasting = rooms[rid].get("lasting_pct", confirmed)
        assert isinstance(confirmed, int) and isinstance(lasting, int)
        if lasting < confirmed:
            confirmed = lasting
        secured += final[rid] if final[rid] < confirmed else confirmed
    for rid in order:
        if secured >= minimum:
            return
        confirmed = rooms[rid].get("confirmed_pct", 0)
        assert isinstance(confirmed, int)
        previous = last.get(rid, 0)
        if final[rid] < confirmed and final[rid] < previous:
            # Close only as far as the openings secured elsewhere allow, in 10 % steps.
            keep = _ceil10(final[rid] + minimum - secured)
            if keep > _ceil10(confirmed):
                keep = _ceil10(confirmed)
            if keep > previous:
                keep = previous
            secured += (confirmed if keep > confirmed else keep) - final[rid]
            final[rid], source[rid] = keep, "safety"
