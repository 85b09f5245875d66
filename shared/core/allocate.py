"""Allocation: each load's target current and why, and the digest of the view it came from."""

import hashlib

from . import site as sitemodel
from .site import Site

# The algorithm, in order (docs/allocation.md tells the whole story):
#  1. Offline loads hold their reserve on every constraint they touch; off,
#     idle and offline loads get 0.
#  2. Minimums: demanding loads in order of preference (urgency, priority,
#     already active, id) each get their minimum if it fits in every
#     constraint they touch (and, for solar_only and excess, in the surplus);
#     a load that does not fit gets 0 and is skipped, later ones may still fit.
#     A constraint where a minimum did not fit is in scarcity: nobody in it
#     rises above their minimum.
#  3. Rises, one urgency class after the other: the class's loads rise together
#     by equal amounts (water-filling) until each meets its max or a full
#     constraint; every constraint is respected at every moment, so what a full
#     circuit cannot use goes to loads elsewhere.
#  4. Each rise is rounded down to the load's step. The current that rounding
#     frees goes back one step at a time, in order of preference, round after
#     round, while a whole step fits; a remainder smaller than the step of
#     every load that could still take it stays unallocated.

DIGEST_HEX_CHARS = 16  # 64 bits: see docs/allocation.md, "Digest"

OFFLINE_RESERVE = "offline_reserve"
OFF = "off"
NO_DEMAND = "no_demand"
SCARCITY = "scarcity"
SOLAR_WAIT = "solar_wait"
METER_STALE = "meter_stale"
MAX = "max"
SURPLUS = "surplus"

_CONTINUOUS = sitemodel.URGENCY_CONTINUOUS
_SOLAR_PRIORITY = sitemodel.URGENCY_SOLAR_PRIORITY
_SOLAR_ONLY = sitemodel.URGENCY_SOLAR_ONLY
_EXCESS = sitemodel.URGENCY_EXCESS
_OFF = sitemodel.URGENCY_OFF


def allocate(model: Site, reserve_ma: dict[str, int] | None = None,
             active: dict[str, bool] | None = None) -> dict[str, object]:
    """{"alloc_ma": {id: mA}, "reason": {id: str}, "digest": hex}; reserve_ma and active override by load id."""
    if reserve_ma is not None or active is not None:
        model = model.overridden(reserve_ma, active)
    targets, reasons = targets_ma(model)
    alloc: dict[str, int] = {}
    why: dict[str, str] = {}
    for index, load_id in enumerate(model.load_ids):
        alloc[load_id] = targets[index]
        why[load_id] = reasons[index]
    return {"alloc_ma": alloc, "reason": why, "digest": digest(model)}


def digest(model: Site) -> str:
    """SHA-256 of the canonical view, shortened: equal on two nodes when their allocations must be equal."""
    hasher = hashlib.sha256()
    for part in sitemodel.view_parts(model):
        hasher.update(part.encode())
    raw: bytes = hasher.digest()
    return raw.hex()[:DIGEST_HEX_CHARS]


def targets_ma(model: Site) -> tuple[list[int], list[str]]:
    """Target current and reason per load, in model.load_ids order."""
    count = len(model.load_ids)
    alloc = [0] * count
    reason = [""] * count
    room = list(model.con_capacity_ma)
    load_cons = model.load_cons
    urgency = model.load_urgency
    demanding = []
    for index in range(count):
        if not model.load_online[index]:
            held = model.load_reserve_ma[index]
            if held:
                for con in load_cons[index]:
                    room[con] -= held
            reason[index] = OFFLINE_RESERVE
        elif urgency[index] == _OFF:
            reason[index] = OFF
        elif not model.load_demand[index]:
            reason[index] = NO_DEMAND
        else:
            demanding.append(index)
    priority = model.load_priority
    active = model.load_active
    # Load indexes follow the ids' order, so the index is the id tie-break.
    demanding.sort(key=lambda i: (urgency[i], priority[i], 0 if active[i] else 1, i))

    weight = [len(phases) for phases in model.load_phases]
    stale = model.meter == sitemodel.METER_STALE
    threshold_ma = model.excess_threshold_ma()
    solar_ma = model.surplus_ma
    scarce = [False] * len(room)
    admitted = []
    min_ma = model.load_min_ma
    max_ma = model.load_max_ma
    for index in demanding:
        need = min_ma[index]
        mode = urgency[index]
        if mode >= _SOLAR_ONLY:
            if stale:
                reason[index] = METER_STALE  # the surplus is unknown
                continue
            budget = solar_ma - threshold_ma if mode == _EXCESS else solar_ma
            if need * weight[index] > budget:
                reason[index] = SOLAR_WAIT
                continue
        cons = load_cons[index]
        fits = True
        for con in cons:
            if room[con] < need:
                fits = False
                scarce[con] = True
        if not fits:
            reason[index] = SCARCITY
            continue
        for con in cons:
            room[con] -= need
        if mode >= _SOLAR_PRIORITY:
            # A solar_priority minimum may come from the grid, but uses the surplus first.
            solar_ma -= need * weight[index]
        alloc[index] = need
        admitted.append(index)

    if stale:
        # The unmanaged load is unknown: nobody rises above their minimum.
        for index in admitted:
            reason[index] = MAX if alloc[index] >= max_ma[index] else METER_STALE
        return alloc, reason

    # Once an excess load holds its minimum, that minimum is surplus above the
    # threshold: the other solar loads' rises must leave the threshold alone.
    keep_ma = 0
    for index in admitted:
        if urgency[index] == _EXCESS:
            keep_ma = threshold_ma
            break
    counts = [0] * len(room)
    for mode in (_CONTINUOUS, _SOLAR_PRIORITY, _SOLAR_ONLY, _EXCESS):
        rising = []
        for index in admitted:
            if urgency[index] != mode:
                continue
            if alloc[index] >= max_ma[index]:
                reason[index] = MAX
                continue
            for con in load_cons[index]:
                if scarce[con]:
                    reason[index] = SCARCITY
                    break
            else:
                rising.append(index)
        if not rising:
            continue
        if mode == _CONTINUOUS:
            _fill(model, rising, alloc, reason, room, counts, weight, -1)
        else:
            budget = solar_ma - keep_ma if mode != _EXCESS else solar_ma - threshold_ma
            left = _fill(model, rising, alloc, reason, room, counts, weight, budget if budget > 0 else 0)
            solar_ma -= budget - left if budget > 0 else 0
    return alloc, reason


def _fill(model: Site, rising: list[int], alloc: list[int], reason: list[str], room: list[int], counts: list[int],
          weight: list[int], solar_ma: int) -> int:
    """Water-fill rising (in preference order); solar_ma < 0 means no surplus limit. Returns the surplus left."""
    has_solar = solar_ma >= 0
    load_cons = model.load_cons
    cap = model.load_max_ma
    con_reason = model.con_reason
    moving = rising
    while moving:
        # Everyone still moving rises by the same delta: the largest that keeps
        # every constraint within capacity and no load above its max.
        delta = cap[moving[0]] - alloc[moving[0]]
        touched = []
        solar_weight = 0
        for index in moving:
            gap = cap[index] - alloc[index]
            if gap < delta:
                delta = gap
            for con in load_cons[index]:
                if not counts[con]:
                    touched.append(con)
                counts[con] += 1
            solar_weight += weight[index]
        for con in touched:
            share = room[con] // counts[con]
            if share < delta:
                delta = share
        if has_solar:
            share = solar_ma // solar_weight
            if share < delta:
                delta = share
        if delta > 0:
            for index in moving:
                alloc[index] += delta
            for con in touched:
                room[con] -= delta * counts[con]
            if has_solar:
                solar_ma -= delta * solar_weight
        # Whoever cannot rise by one more mA stops here, and says why.
        still = []
        for index in moving:
            if alloc[index] >= cap[index]:
                reason[index] = MAX
                continue
            for con in load_cons[index]:
                if room[con] < counts[con]:
                    reason[index] = con_reason[con]
                    break
            else:
                if has_solar and solar_ma < solar_weight:
                    reason[index] = SURPLUS
                else:
                    still.append(index)
        for con in touched:
            counts[con] = 0
        moving = still

    # Round every rise down to the load's step (its max is always reachable).
    low = model.load_min_ma
    step = model.load_step_ma
    for index in rising:
        level = alloc[index]
        if level < cap[index]:
            back = (level - low[index]) % step[index]
            if back:
                alloc[index] = level - back
                for con in load_cons[index]:
                    room[con] += back
                if has_solar:
                    solar_ma += back * weight[index]

    # What rounding freed goes back a step at a time, in preference order. A
    # load that cannot take a step now never can later (room only shrinks),
    # so each round only revisits the loads that took one.
    candidates = [index for index in rising if alloc[index] < cap[index]]
    while candidates:
        took = []
        for index in candidates:
            level = alloc[index]
            increment = step[index]
            if level + increment > cap[index]:
                increment = cap[index] - level
            if has_solar and solar_ma < increment * weight[index]:
                continue
            cons = load_cons[index]
            for con in cons:
                if room[con] < increment:
                    break
            else:
                alloc[index] = level + increment
                for con in cons:
                    room[con] -= increment
                if has_solar:
                    solar_ma -= increment * weight[index]
                if level + increment < cap[index]:
                    took.append(index)
                else:
                    reason[index] = MAX
        candidates = took
    return solar_ma
