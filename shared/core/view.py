"""The view of a site that decides its allocation, and its digest: nodes whose digests match allocate alike."""

import hashlib
import sys

from .site import METER_STATES, MODE_NAMES, PHASE_NAMES, Site

# What goes in: the site's configuration, the circuit tree, every load's
# static facts and its demand, online, active and reserve, and what the meter
# yields after rounding (unmanaged load per phase, surplus, fresh or stale).
# What stays out: raw draws and meter readings, and the meter's age; they
# count only through those rounded quantities, so two nodes that agree on the
# digest compute the same allocation, and readings that wobble within one
# rounding quantum leave it unchanged.

# Bumped whenever the allocation rules change, so that nodes running different
# rules never find their views equal.
VIEW_VERSION = 1

# 64 bits: two different views collide with probability 2^-64, and every
# heartbeat that carries a digest is authenticated, so nobody outside the
# group can search for a collision. It costs 16 bytes of hex per heartbeat.
DIGEST_HEX_CHARS = 16


def view(model: Site) -> list[object]:
    """[version, site, circuits, loads], every value a plain JSON one; canon.dumps of it is view_text."""
    loads = []
    for index, load_id in enumerate(model.load_ids):
        phases = model.load_phases[index]
        loads.append([load_id, model.load_circuit[index], "L123" if len(phases) == 3 else PHASE_NAMES[phases[0]],
                      model.load_min_ma[index], model.load_max_ma[index], model.load_step_ma[index],
                      model.load_priority[index], MODE_NAMES[model.load_urgency[index]], model.load_demand[index],
                      model.load_online[index], model.load_active[index], model.load_reserve_ma[index]])
    circuits = [[circuit_id, model.circuit_parent[index], model.circuit_limit_ma[index]]
                for index, circuit_id in enumerate(model.circuit_ids)]
    site = [model.phases, model.voltage_v, model.limit_ma, model.safety_pct, model.import_limit_w,
            model.excess_threshold_w, METER_STATES[model.meter], model.unmanaged_ma, model.surplus_ma]
    return [VIEW_VERSION, site, circuits, loads]


def view_text(model: Site) -> str:
    """The canonical JSON of view(model), in one piece."""
    rows = [_row(model, index) for index in range(len(model.load_ids))]
    return _head(model) + "".join(rows) + "]]"


def digest(model: Site) -> str:
    """SHA-256 of view_text(model), in hex, shortened to DIGEST_HEX_CHARS."""
    if _MICROPYTHON:
        # A load at a time: the whole text need never be in a node's small heap.
        hasher = hashlib.sha256(_head(model).encode())
        for index in range(len(model.load_ids)):
            hasher.update(_row(model, index).encode())
        hasher.update(b"]]")
    else:
        # In one piece: one encode and one update rather than one per load.
        hasher = hashlib.sha256(view_text(model).encode())
    raw: bytes = hasher.digest()
    return raw.hex()[:DIGEST_HEX_CHARS]


# MicroPython and CPython build and hash the same text differently: on
# MicroPython %-formatting takes half the time of an f-string, while Cython
# turns an f-string into direct string building; see digest for the hashing.
_MICROPYTHON = sys.implementation.name == "micropython"

# The text is formatted here rather than by canon: ids, modes and phase names
# never need escaping (ids are letters, digits and -_.), so this is the same
# text without canon's per-value work and memory, which matters at every tick
# on a 12K-word heap. A test holds view_text(model) == canon.dumps(view(model)).

def _head(model: Site) -> str:
    if _MICROPYTHON:
        # One format per circuit (limit lists have 1 or 3 values): the cheapest on MicroPython.
        layout = '["%s","%s",' + _INTS[model.phases] + "]"
        # (MicroPython has no *unpacking inside a tuple display.)
        circuits = [layout % ((circuit_id, model.circuit_parent[index]) + tuple(model.circuit_limit_ma[index]))  # noqa: RUF005
                    for index, circuit_id in enumerate(model.circuit_ids)]
    else:
        circuits = [_circuit(model, index) for index in range(len(model.circuit_ids))]
    return '[%d,[%d,%d,%s,%d,%d,%d,"%s",%s,%d],[%s],[' % (  # noqa: UP031
        VIEW_VERSION, model.phases, model.voltage_v, _ints(model.limit_ma), model.safety_pct, model.import_limit_w,
        model.excess_threshold_w, METER_STATES[model.meter], _ints(model.unmanaged_ma), model.surplus_ma,
        ",".join(circuits))


def _row(model: Site, index: int) -> str:
    phases = model.load_phases[index]
    phase_name = "L123" if len(phases) == 3 else PHASE_NAMES[phases[0]]
    demand = "true" if model.load_demand[index] else "false"
    online = "true" if model.load_online[index] else "false"
    active = "true" if model.load_active[index] else "false"
    if _MICROPYTHON:
        return '%s["%s","%s","%s",%d,%d,%d,%d,"%s",%s,%s,%s,%d]' % (  # noqa: UP031
            "," if index else "", model.load_ids[index], model.load_circuit[index], phase_name,
            model.load_min_ma[index], model.load_max_ma[index], model.load_step_ma[index], model.load_priority[index],
            MODE_NAMES[model.load_urgency[index]], demand, online, active, model.load_reserve_ma[index])
    # The ints go through locals first: view.pxd makes them C ints, which a
    # compiled f-string formats without an int object's str().
    min_ma = model.load_min_ma[index]
    max_ma = model.load_max_ma[index]
    step_ma = model.load_step_ma[index]
    priority = model.load_priority[index]
    reserve_ma = model.load_reserve_ma[index]
    return (f'{"," if index else ""}["{model.load_ids[index]}","{model.load_circuit[index]}","{phase_name}",'
            f'{min_ma},{max_ma},{step_ma},{priority},"{MODE_NAMES[model.load_urgency[index]]}",{demand},{online},'
            f"{active},{reserve_ma}]")


def _circuit(model: Site, index: int) -> str:
    # As in _row, the limits (1 or 3 of them) go through locals that view.pxd makes C ints.
    limits = model.circuit_limit_ma[index]
    first = limits[0]
    if len(limits) == 1:
        return f'["{model.circuit_ids[index]}","{model.circuit_parent[index]}",[{first}]]'
    second = limits[1]
    third = limits[2]
    return f'["{model.circuit_ids[index]}","{model.circuit_parent[index]}",[{first},{second},{third}]]'


_INTS = ("[]", "[%d]", "[%d,%d]", "[%d,%d,%d]")


def _ints(values: list[int]) -> str:
    return _INTS[len(values)] % tuple(values)
