"""Allocation: each load's target current and why, and the digest of the view it came from."""

from . import site as sitemodel
from .site import Site, constraint_reason
from .view import digest

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
#     constraint (or, for solar modes, the end of the surplus); every
#     constraint is respected at every moment, so what a full circuit cannot
#     use goes to loads elsewhere. With a fresh meter, what continuous loads
#     are given above their measured draw comes out of the surplus first: it
#     takes the export before any solar load does.
#  4. Each rise is rounded down to the load's step. The current that rounding
#     frees goes back one step at a time, by priority then id (not the active
#     flag), round after round, while a whole step fits; a remainder smaller
#     than the step of every load that could still take it stays unallocated.
#     The rounds in which every load surely takes a whole step are taken at
#     once (the same result), so this costs at most two rounds per load.

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
# Sort keys pack a load index into their low bits (site.MAX_LOADS is 256).
_INDEX_BITS = 8
_INDEX_MASK = 255
_PRIORITY_SPAN = 2 * sitemodel.MAX_PRIORITY + 1
_MAX_PRIORITY = sitemodel.MAX_PRIORITY


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


def targets_ma(model: Site) -> tuple[list[int], list[str]]:
    """Target current and reason per load, in model.load_ids order."""
    # The solar_only and excess minimums are granted (step 2) before the
    # continuous loads rise (step 3), which they leave less room: so they are
    # granted against the surplus the continuous minimums leave. When the
    # rises then take the surplus one of them stands on, the allocation runs
    # again, setting that much aside for the continuous loads first. Rarely
    # (the rise grows once more without that minimum's room), a third run sets
    # aside all the continuous loads could take, every one at its max: then no
    # minimum can come short. Usually there is one run.
    ahead_ma = 0
    for _ in range(2):
        alloc, reason, rise_ma = _targets(model, ahead_ma)
        if rise_ma < 0:
            return alloc, reason
        ahead_ma = rise_ma
    alloc, reason, rise_ma = _targets(model, _most_rise(model))
    return alloc, reason  # rise_ma is -1: nothing can come short of what is set aside


# The loops below keep list items in plain local variables before doing
# arithmetic on them: allocate.pxd gives those locals C types, so the compiled
# build does that arithmetic in C. Pure Python and MicroPython read it as usual.
#
# A list with an item per load is made at once at the size it may reach
# ([0] * n), filled by position and cut to what it holds, not grown by
# append: on MicroPython a growing list is moved to a block twice its size
# each time it is full (32 slots for 17 loads, 256 bytes on the 64-bit unix
# port), and on a node's cut-up heap such a block is what a tick failed to
# find. Cutting it (del items[n:]) keeps its block on MicroPython.

def _targets(model: Site, ahead_ma: int) -> tuple[list[int], list[str], int]:
    """One run, ahead_ma set aside for the continuous rises: targets, reasons, and -1; or, when the continuous
    rises left a solar_only or excess minimum without surplus, what they took (the run is then unfinished)."""
    count = len(model.load_ids)
    alloc = [0] * count
    reason = [""] * count
    room = model.con_capacity_ma[:]
    load_cons = model.load_cons
    urgency = model.load_urgency
    online = model.load_online
    demand = model.load_demand
    reserve = model.load_reserve_ma
    priority = model.load_priority
    active = model.load_active
    order = [0] * count
    ordered = 0
    ranks = [0] * count
    for index in range(count):
        if not online[index]:
            held = reserve[index]
            if held:
                cons = load_cons[index]
                for con in cons:
                    room_left = room[con]
                    room[con] = room_left - held
            reason[index] = OFFLINE_RESERVE
        elif urgency[index] == _OFF:
            reason[index] = OFF
        elif not demand[index]:
            reason[index] = NO_DEMAND
        else:
            # One int per load sorts as (urgency, priority, active first, id):
            # load indexes follow the ids' order. Below 2^30 by site's bounds.
            mode = urgency[index]
            rank = priority[index]
            rank += mode * _PRIORITY_SPAN + _MAX_PRIORITY
            ranks[index] = rank
            order[ordered] = ((rank * 2 + (0 if active[index] else 1)) << _INDEX_BITS) + index
            ordered += 1
    del order[ordered:]
    order.sort()

    load_phases = model.load_phases
    stale = model.meter == sitemodel.METER_STALE
    # With a fresh meter a continuous load's target above its measured draw
    # comes out of the export, so out of the surplus, before any solar load's.
    metered = model.meter == sitemodel.METER_FRESH
    draw_ma = model.load_draw_ma
    # What the surplus gave the continuous loads so far (x phases): what is
    # set aside for them, or more once their minimums above their draws
    # (least_ma) or their rises take more. They come first in both steps.
    taken_ma = ahead_ma
    least_ma = 0
    threshold_ma = model.excess_threshold_ma()
    solar_ma = model.surplus_ma - ahead_ma
    scarce = [False] * len(room)
    admitted = [0] * ordered
    granted = 0
    on_surplus: list[int] | None = None  # the solar loads granted a minimum, if a solar_only or excess one is
    solar_mins_ma = 0  # their minimums x phases
    min_ma = model.load_min_ma
    max_ma = model.load_max_ma
    for key in order:
        index = key & _INDEX_MASK
        need = min_ma[index]
        mode = urgency[index]
        phases = len(load_phases[index])
        if mode >= _SOLAR_ONLY:
            if stale:
                reason[index] = METER_STALE  # the surplus is unknown
                continue
            budget = solar_ma - threshold_ma if mode == _EXCESS else solar_ma
            if need * phases > budget:
                reason[index] = SOLAR_WAIT
                continue
        cons = load_cons[index]
        fits = True
        for con in cons:
            room_left = room[con]
            if room_left < need:
                fits = False
                scarce[con] = True
        if not fits:
            reason[index] = SCARCITY
            continue
        for con in cons:
            room_left = room[con]
            room[con] = room_left - need
        if mode >= _SOLAR_PRIORITY:
            # A solar_priority minimum may come from the grid, but uses the surplus first.
            solar_ma -= need * phases
            if metered:
                solar_mins_ma += need * phases
                if mode >= _SOLAR_ONLY and on_surplus is None:
                    on_surplus = []
                    for place in range(granted):
                        earlier = admitted[place]
                        if urgency[earlier] >= _SOLAR_PRIORITY:
                            on_surplus.append(earlier)
                if on_surplus is not None:
                    on_surplus.append(index)
        elif metered:
            # Continuous loads come first in this order: the surplus left for
            # the solar minimums is what their minimums leave of it.
            drawn = draw_ma[index]
            if drawn > max_ma[index]:
                drawn = 0  # unknown (a broken CT): as site.credit_ma reads it
            if need > drawn:
                least_ma += (need - drawn) * phases
                if least_ma > taken_ma:
                    solar_ma -= least_ma - taken_ma
                    taken_ma = least_ma
        alloc[index] = need
        admitted[granted] = index
        granted += 1
    del admitted[granted:]
    # A list no longer read is let go at once: on a node's heap the rises
    # below may need its room.
    del order

    if stale:
        # The unmanaged load is unknown: nobody rises above their minimum.
        for index in admitted:
            reason[index] = MAX if alloc[index] >= max_ma[index] else METER_STALE
        return alloc, reason, -1

    # Once an excess load holds its minimum, that minimum is surplus above the
    # threshold: the other solar loads' rises must leave the threshold alone.
    keep_ma = 0
    for index in admitted:
        if urgency[index] == _EXCESS:
            keep_ma = threshold_ma
            break
    # The rises go by priority, then id, without the active flag: the order
    # places what rounding frees (step 4), and a load that starts drawing
    # must not take the odd step from one that runs (that one would lower,
    # and the newcomer wait for its car to follow before rising again).
    preferred = [0] * granted
    for place in range(granted):
        index = admitted[place]
        rank = ranks[index]
        preferred[place] = (rank << _INDEX_BITS) + index
    preferred.sort()
    del admitted, ranks
    counts = [0] * len(room)
    full = [False] * len(room)
    moving = [False] * count
    per_mode = [0] * (_EXCESS + 1)  # how many admitted loads each urgency class has: its rising list's size
    for key in preferred:
        mode = urgency[key & _INDEX_MASK]
        per_mode[mode] += 1
    for mode in range(_CONTINUOUS, _EXCESS + 1):
        members = per_mode[mode]
        if not members:
            continue
        rising = [0] * members
        rises = 0
        for key in preferred:
            index = key & _INDEX_MASK
            if urgency[index] != mode:
                continue
            if alloc[index] >= max_ma[index]:
                reason[index] = MAX
                continue
            cons = load_cons[index]
            for con in cons:
                if scarce[con]:
                    reason[index] = SCARCITY
                    break
            else:
                rising[rises] = index
                rises += 1
        del rising[rises:]
        if not rising:
            continue
        if mode == _CONTINUOUS:
            _fill(model, rising, alloc, reason, room, counts, full, moving, -1)
            if metered:
                # What they now take above their draws comes out of the surplus
                # too: what the risen ones take above their minimum (or draw).
                rise_ma = least_ma
                for index in rising:
                    drawn = draw_ma[index]
                    if drawn > max_ma[index]:
                        drawn = 0
                    need = min_ma[index]
                    if need < drawn:
                        need = drawn
                    start = alloc[index]
                    if start > need:
                        phases = len(load_phases[index])
                        rise_ma += (start - need) * phases
                if rise_ma > taken_ma:
                    solar_ma -= rise_ma - taken_ma
                    taken_ma = rise_ma
                    if on_surplus is not None and _short(model, on_surplus, solar_ma + solar_mins_ma, threshold_ma):
                        return alloc, reason, rise_ma
        else:
            budget = solar_ma - keep_ma if mode != _EXCESS else solar_ma - threshold_ma
            if budget < 0:
                budget = 0
            solar_ma -= budget - _fill(model, rising, alloc, reason, room, counts, full, moving, budget)
    return alloc, reason, -1


def _short(model: Site, granted: list[int], solar_ma: int, threshold_ma: int) -> bool:
    """Whether a solar_only or excess minimum in granted (solar loads, in the order of step 2) lacks surplus.

    solar_ma is the surplus before any solar minimum: they are taken from it
    again in order, each solar_only or excess one checked as in step 2.
    """
    urgency = model.load_urgency
    min_ma = model.load_min_ma
    load_phases = model.load_phases
    for index in granted:
        mode = urgency[index]
        need = min_ma[index]
        phases = len(load_phases[index])
        need *= phases
        if mode >= _SOLAR_ONLY:
            budget = solar_ma - threshold_ma if mode == _EXCESS else solar_ma
            if need > budget:
                return True
        solar_ma -= need
    return False


def _most_rise(model: Site) -> int:
    """The most the continuous loads could take above their draws (every one at its max), x phases, summed."""
    urgency = model.load_urgency
    online = model.load_online
    demand = model.load_demand
    draw_ma = model.load_draw_ma
    max_ma = model.load_max_ma
    load_phases = model.load_phases
    total = 0
    for index in range(len(model.load_ids)):
        if urgency[index] == _CONTINUOUS and online[index] and demand[index]:
            top = max_ma[index]
            drawn = draw_ma[index]
            if drawn > top:
                drawn = 0
            if top > drawn:
                phases = len(load_phases[index])
                total += (top - drawn) * phases
    return total


def _fill(model: Site, rising: list[int], alloc: list[int], reason: list[str], room: list[int], counts: list[int],
          full: list[bool], moving: list[bool], solar_ma: int) -> int:
    """Water-fill rising (in preference order); solar_ma < 0 means no surplus limit. Returns the surplus left."""
    has_solar = solar_ma >= 0
    load_cons = model.load_cons
    con_first = model.con_first
    con_loads = model.con_loads
    load_phases = model.load_phases
    cap = model.load_max_ma
    # Every moving load rises by the same amount, level, above where it
    # started; alloc is written when it stops. counts[con] is the number of
    # moving loads in con, live the constraints that have some.
    by_gap = [0] * len(rising)
    gaps = 0
    live = []
    solar_weight = 0
    for index in rising:
        top = cap[index]
        start = alloc[index]
        by_gap[gaps] = ((top - start) << _INDEX_BITS) + index
        gaps += 1
        moving[index] = True
        cons = load_cons[index]
        for con in cons:
            movers = counts[con]
            if not movers:
                live.append(con)
            counts[con] = movers + 1
        phases = len(load_phases[index])
        solar_weight += phases
    by_gap.sort()  # the order in which loads reach their max: gap to it, then index
    next_gap = 0
    left = len(rising)
    level = 0
    before = left
    while left:
        packed = by_gap[next_gap]
        while not moving[packed & _INDEX_MASK]:
            next_gap += 1
            packed = by_gap[next_gap]
        # The largest rise that keeps every constraint within capacity, the
        # surplus within itself and no load above its max.
        delta = (packed >> _INDEX_BITS) - level
        if left < before:
            # Some loads stopped last round: drop the constraints left without movers.
            still = []
            for con in live:
                movers = counts[con]
                if movers:
                    still.append(con)
                    room_left = room[con]
                    share = room_left // movers
                    if share < delta:
                        delta = share
            live = still
        else:
            for con in live:
                room_left = room[con]
                movers = counts[con]
                share = room_left // movers
                if share < delta:
                    delta = share
        before = left
        if has_solar:
            share = solar_ma // solar_weight
            if share < delta:
                delta = share
        # Constraints that may be unable to give each moving load one more mA.
        tight = []
        if delta > 0:
            level += delta
            for con in live:
                room_left = room[con]
                movers = counts[con]
                room_left -= delta * movers
                room[con] = room_left
                if room_left < movers:
                    tight.append(con)
            if has_solar:
                solar_ma -= delta * solar_weight
        else:
            for con in live:
                room_left = room[con]
                movers = counts[con]
                if room_left < movers:
                    tight.append(con)
        # Loads at their max stop first.
        while next_gap < gaps:
            packed = by_gap[next_gap]
            index = packed & _INDEX_MASK
            if moving[index]:
                if packed >> _INDEX_BITS > level:
                    break
                reason[index] = MAX
                left -= 1
                phases = len(load_phases[index])
                solar_weight -= phases
                _stop(index, level, alloc, moving, counts, load_cons)
            next_gap += 1
        # Then every load in a constraint that cannot give each of its
        # remaining moving loads one more mA; a load names the first full one
        # on its list.
        stopping = []
        for con in tight:
            movers = counts[con]
            room_left = room[con]
            if movers and room_left < movers:
                full[con] = True
                stopping.append(con)
        for con in stopping:
            for slot in range(con_first[con], con_first[con + 1]):
                index = con_loads[slot]
                if moving[index]:
                    cons = load_cons[index]
                    for first in cons:
                        if full[first]:
                            reason[index] = constraint_reason(model, first)
                            break
                    left -= 1
                    phases = len(load_phases[index])
                    solar_weight -= phases
                    _stop(index, level, alloc, moving, counts, load_cons)
        for con in stopping:
            full[con] = False
        if has_solar and left and solar_ma < solar_weight:
            for index in rising:
                if moving[index]:
                    reason[index] = SURPLUS
                    left -= 1
                    _stop(index, level, alloc, moving, counts, load_cons)

    del by_gap  # let go before the lists below: on a node's heap they may need the room
    # Round every rise down to the load's step (its max is always reachable).
    low = model.load_min_ma
    step = model.load_step_ma
    for index in rising:
        start = alloc[index]
        top = cap[index]
        if start < top:
            floor = low[index]
            stride = step[index]
            back = (start - floor) % stride
            if back:
                alloc[index] = start - back
                cons = load_cons[index]
                for con in cons:
                    room_left = room[con]
                    room[con] = room_left + back
                if has_solar:
                    phases = len(load_phases[index])
                    solar_ma += back * phases

    # What rounding freed goes back a step at a time, in preference order.
    candidates = [0] * len(rising)
    waiting = 0
    for index in rising:
        start = alloc[index]
        top = cap[index]
        if start < top:
            candidates[waiting] = index
            waiting += 1
    del candidates[waiting:]
    if candidates:
        # counts is all zeros again now that every load stopped: _hand_back's scratch.
        solar_ma = _hand_back(model, candidates, alloc, reason, room, counts, has_solar, solar_ma)
    return solar_ma


def _hand_back(model: Site, candidates: list[int], alloc: list[int], reason: list[str], room: list[int],
               per_round: list[int], has_solar: bool, solar_ma: int) -> int:
    """What rounding freed, back a step at a time to candidates (in preference order); returns the surplus left.

    Round after round, each candidate in turn takes one step (or what is left
    to its max) if it fits in every constraint it touches and, with has_solar,
    in solar_ma. A candidate that cannot, or that reaches its max, leaves the
    rounds: room only shrinks, so it never could later. per_round is a list of
    zeros, one per constraint, for scratch; it is left as it was.
    """
    load_cons = model.load_cons
    load_phases = model.load_phases
    cap = model.load_max_ma
    step = model.load_step_ma
    while candidates:
        took = [0] * len(candidates)
        kept = 0
        for index in candidates:
            start = alloc[index]
            top = cap[index]
            increment = step[index]
            if start + increment > top:
                increment = top - start
            phases = len(load_phases[index])
            if has_solar and solar_ma < increment * phases:
                continue
            cons = load_cons[index]
            for con in cons:
                room_left = room[con]
                if room_left < increment:
                    break
            else:
                alloc[index] = start + increment
                for con in cons:
                    room_left = room[con]
                    room[con] = room_left - increment
                if has_solar:
                    solar_ma -= increment * phases
                if start + increment < top:
                    took[kept] = index
                    kept += 1
                else:
                    reason[index] = MAX
        del took[kept:]
        if took and len(took) == len(candidates):
            # Nobody left this round, and the next rounds may go the same
            # way: a load of 1 mA steps beside loads of large ones can take a
            # million of them. So take at once the rounds in which every
            # candidate surely takes a whole step and stays below its max:
            # per round a constraint gives the sum of its candidates' steps,
            # the surplus the sum of steps x phases. The result is the same,
            # round for round. After them a candidate is within a step of its
            # max, or a constraint or the surplus cannot give each of its
            # candidates a step: the next round drops one. So there are at
            # most two rounds per candidate.
            rounds = -1
            solar_round = 0
            touched = []
            for index in took:
                start = alloc[index]
                top = cap[index]
                stride = step[index]
                most = (top - start - 1) // stride
                if rounds < 0 or most < rounds:
                    rounds = most
                if has_solar:
                    phases = len(load_phases[index])
                    solar_round += stride * phases
                cons = load_cons[index]
                for con in cons:
                    taken = per_round[con]
                    if not taken:
                        touched.append(con)
                    per_round[con] = taken + stride
            for con in touched:
                room_left = room[con]
                taken = per_round[con]
                most = room_left // taken
                if most < rounds:
                    rounds = most
            if has_solar:
                most = solar_ma // solar_round
                if most < rounds:
                    rounds = most
            for con in touched:
                if rounds > 0:
                    room_left = room[con]
                    taken = per_round[con]
                    room[con] = room_left - rounds * taken
                per_round[con] = 0
            if rounds > 0:
                for index in took:
                    start = alloc[index]
                    stride = step[index]
                    alloc[index] = start + rounds * stride
                if has_solar:
                    solar_ma -= rounds * solar_round
        candidates = took
    return solar_ma


def _stop(index: int, level: int, alloc: list[int], moving: list[bool], counts: list[int],
          load_cons: list[list[int]]) -> None:
    start = alloc[index]
    alloc[index] = start + level
    moving[index] = False
    cons = load_cons[index]
    for con in cons:
        movers = counts[con]
        counts[con] = movers - 1
