"""Headroom: what is left of each capacity constraint at given currents, and how far one load may go."""

from .errors import FieldError, describe
from .site import MAX_MA, Site, constraint_name, members, on_lattice_ma, usage_ma

# The node controller raises a load only up to what keeps every circuit and
# phase within its limit, counting each peer at the current it reports as
# applied. These functions answer that from the same constraints the
# allocation fills, so the two can never disagree on what a limit is.


def headroom_ma(model: Site, current_ma: dict[str, int]) -> dict[str, int]:
    """Capacity left per constraint name (negative: over) with every load at current_ma[id].

    An offline load counts at least its reserve. Every load id must be present.
    """
    usage = _usages(model, current_ma)
    left: dict[str, int] = {}
    for con, capacity in enumerate(model.con_capacity_ma):
        used = 0
        for index in members(model, con):
            used += usage[index]
        left[constraint_name(model, con)] = capacity - used
    return left


def allowed_ma(model: Site, load_id: str, current_ma: dict[str, int]) -> int:
    """The highest current load_id may run at, on its own steps (0, or min to max), with the others at current_ma.

    current_ma[load_id] itself is not read; every other load id must be present.
    """
    index = model.load_index.get(load_id)
    if index is None:
        raise FieldError("load_id", describe(load_id) + " is not a load")
    usage = _usages(model, current_ma, index)
    bound = model.load_max_ma[index]
    for con in model.load_cons[index]:
        others = 0
        for member in members(model, con):
            if member != index:
                others += usage[member]
        left = model.con_capacity_ma[con] - others
        if left < bound:
            bound = left
    return on_lattice_ma(model, index, bound)


def _usages(model: Site, current_ma: dict[str, int], skip: int = -1) -> list[int]:
    usage = [0] * len(model.load_ids)
    for index, load_id in enumerate(model.load_ids):
        if index == skip:
            continue
        if load_id not in current_ma:
            raise FieldError("current_ma." + load_id, "is missing")
        value = current_ma[load_id]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > MAX_MA:
            raise FieldError("current_ma." + load_id, describe(value) + " is not a current in mA")
        usage[index] = usage_ma(model, index, value)
    return usage
