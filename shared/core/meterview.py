"""The mains meter in a node's view: the meter node's published reading, the same numbers on every node."""

from .controller import KEY_WIDTH, Plan
from .peers import Peer
from .site import ABSURD_FACTOR, MAX_MA

_STALE_MA = ABSURD_FACTOR * MAX_MA + 1

# Loaded only for a site with a meter node (site.meter_node): every node
# reads the section the meter node last published, so their views agree; the
# meter node reads what it published, not what it measures now. Missing,
# older than meter_stale_ms, with a phase unknown, or absurd: stale (rule 5),
# and the allocation gives minimums only.


def unmanaged_ma(plan: Plan, state: dict[str, object], peers: list[Peer | None], fresh: list[bool],
                   now_ms: int) -> list[int] | None:
    """The unmanaged current per phase from the meter node's last published reading; None when stale or missing."""
    # Every node reads the same published section, so views built from it
    # agree; the meter node itself reads what it published, not what it
    # measures now. Missing, old, with a phase unknown, or absurd: stale (rule 5).
    index = plan.meter_index
    if index == plan.own:
        section = state["meter"]
        sent_ms = state["sent_ms"]
        since = now_ms - sent_ms if isinstance(sent_ms, int) else 0
    else:
        peer = peers[index]
        if peer is None or not fresh[index]:
            return None
        section = peer.heartbeat["meter"]
        since = now_ms - peer.heard_ms
    if section is None:
        return None
    assert isinstance(section, dict)
    age_ms = section["age_ms"]
    assert isinstance(age_ms, int)
    if age_ms + (since if since > 0 else 0) > plan.meter_stale_ms:
        return None
    readings = section["ma"]
    managed = section["managed_ma"]
    site_cfg = plan.scenario["site"]
    assert isinstance(readings, list) and isinstance(managed, list) and isinstance(site_cfg, dict)
    limits = site_cfg["limit_ma"]
    assert isinstance(limits, list)
    unmanaged = []
    for phase in range(plan.phases):
        reading = readings[phase]
        if reading is None:
            return None
        # Absurd (beyond ABSURD_FACTOR x the site limit, as site.parse reads a
        # scenario's meter): stale. Checked here, on the reading published:
        # the one scenario_meter rebuilds adds back the members' draws heard
        # now, not those the meter node subtracted, and may fall inside the bound.
        bound = ABSURD_FACTOR * limits[phase]
        if reading > bound or reading < -bound:
            return None
        unmanaged.append(reading - managed[phase])
    return unmanaged


def scenario_meter(plan: Plan, unmanaged: list[int] | None, key: list[object]) -> dict[str, object]:
    """The scenario's meter: readings that give back exactly the published unmanaged current."""
    # site.parse subtracts each load's draw from the reading on its phases; the
    # meter node already did, so the draws are added back here.
    if unmanaged is None:
        # Stale: readings site.parse must call absurd (above 4 x any limit it
        # accepts), so the model is stale at every meter_stale_ms. An age above
        # meter_stale_ms cannot say it: at site.MAX_MS it is out of bounds.
        return {"ma": [_STALE_MA] * plan.phases, "age_ms": 0}
    readings = list(unmanaged)
    for index in range(len(plan.ids)):
        draw = key[index * KEY_WIDTH + 6]
        assert isinstance(draw, int)
        if draw:
            for phase in plan.load_phases[index]:
                if phase < plan.phases:
                    readings[phase] += draw
    return {"ma": readings, "age_ms": 0}


# Meter skew. A reading is taken at some time T (now - its age) and the
# members' draws are heard at heartbeats, before and after T: subtracting the
# draws heard now would subtract a car's ramp after T, which the reading does
# not hold (the unmanaged load under-counted by it, until the next reading).
# So the meter node subtracts, per member and phase, the smallest draw it
# heard from the last heartbeat before T to the first ones after it: with a
# draw that moves one way between two of its member's heartbeats (a car
# ramping), no more than it drew at T. The history that needs is short and
# coarse: BUCKETS running minima, one per heartbeat_ms, each started from the
# draw last heard before it (so it holds a draw from before its start). A
# reading older than the oldest bucket, or the first after boot, gets nothing
# subtracted: its unmanaged load reads as the whole reading (rule 5, safe).
# After arrival, the reading's minimum takes the draws heard for one more
# heartbeat_ms and a min gap (each fresh member has then told a draw from
# after T), and is then frozen: a later fall (a car lowered) is not in the
# reading, and would only make it read more unmanaged load than there is.
BUCKETS = 4


def _slots(plan: Plan) -> int:
    """How many (member, phase) pairs the minima hold: one per phase each member draws on."""
    count = 0
    for phases in plan.load_phases:
        count += len(phases)
    return count


def _credits(plan: Plan, peers: list[Peer | None], fresh: list[bool], draw: list[int | None],
             exposure_ma: int) -> list[int]:
    """Per member and phase it draws on (in member order, then phase order), the draw heard now that may go."""
    # Only the phases a member draws on: its other phases hold 0 for good, and a
    # 17-member history kept them 5 times over (a 12K-word heap's margin).
    credits = [0] * _slots(plan)
    position = 0
    for index in range(len(plan.ids)):
        phases = plan.load_phases[index]
        peer = peers[index]
        draws: object = draw
        most = exposure_ma
        if index != plan.own:
            if peer is None or not fresh[index]:
                position += len(phases)
                continue  # not heard: nothing subtracted
            message = peer.heartbeat
            draws = message["draw_ma"]
            # What its load may be drawing as it sent the draw: its applied
            # limit, or more while its car follows a lowered pilot (exposure).
            applied = message["applied_ma"]
            assert isinstance(applied, int)
            most = applied
            control = message["control"]
            if isinstance(control, dict) and control["exposure_ma"] > most:
                most = control["exposure_ma"]
        # Every mA subtracted widens the site by a mA (rule 5: absurd data is
        # the worst case, never favourable). A draw above the member's max is
        # a broken CT or a wrong unit: unknown, nothing subtracted. One above
        # what the member may be drawing counts at that much; the rest is
        # read as unmanaged load, which is safe whether it is real or not.
        max_ma = plan.members[index]["max_ma"]
        assert isinstance(draws, list) and isinstance(max_ma, int) and isinstance(most, int)
        for phase in phases:
            value = draws[phase]
            if value is not None and value <= max_ma:
                credits[position] = value if value < most else most
            position += 1
    return credits


def _lower(low: list[int], credits: list[int]) -> list[int]:
    """low with each value at most the credit (low itself when none is lower: the state is not changed)."""
    out = low
    for position in range(len(low)):
        if credits[position] < out[position]:
            if out is low:
                out = list(low)
            out[position] = credits[position]
    return out


def track(plan: Plan, skew: dict[str, object] | None, reading: dict[str, object] | None,
          peers: list[Peer | None], fresh: list[bool], draw: list[int | None], exposure_ma: int,
          now_ms: int) -> dict[str, object]:
    """The meter node's draw minima after this tick (skew itself when nothing changed); run every tick."""
    credits = _credits(plan, peers, fresh, draw, exposure_ma)
    if skew is None or skew["plan"] != plan.hash:
        # Boot, or a new plan (its members, so the minima's layout, may differ): no
        # history, every member at 0 until heard.
        skew = {"plan": plan.hash, "starts": [], "lows": [], "seq": None, "low": None, "until": 0}
    starts = skew["starts"]
    lows = skew["lows"]
    assert isinstance(starts, list) and isinstance(lows, list)
    new = skew
    if not starts or now_ms >= starts[-1] + plan.heartbeat_ms:
        # A new bucket, started from the draws heard now (before its start's
        # next tick); the oldest goes.
        keep = len(starts) - BUCKETS + 1 if len(starts) >= BUCKETS else 0
        new = dict(skew)
        kept_starts = starts[keep:]
        kept_starts.append(now_ms)
        kept_lows = lows[keep:]
        # The same draws as the bucket before (the usual case) share its list.
        kept_lows.append(lows[-1] if lows and lows[-1] == credits else credits)
        new["starts"] = kept_starts
        new["lows"] = kept_lows
    else:
        last = _lower(lows[-1], credits)
        if last is not lows[-1]:
            new = dict(skew)
            kept_lows = list(lows)
            kept_lows[-1] = last
            new["lows"] = kept_lows
    if reading is not None and reading["seq"] != skew["seq"]:
        # A new reading (a new seq): its minimum starts from the bucket
        # holding its time, if the history reaches back to it; else nothing.
        age_ms = reading["age_ms"]
        assert isinstance(age_ms, int)
        taken_ms = now_ms - age_ms
        starts = new["starts"]
        lows = new["lows"]
        assert isinstance(starts, list) and isinstance(lows, list)
        low: list[int] = [0] * len(credits)
        first = len(starts) - 1
        while first >= 0:
            start = starts[first]
            assert isinstance(start, int)
            if start <= taken_ms:
                break
            first -= 1
        if first >= 0:
            low = lows[first]
            for position in range(first + 1, len(lows)):
                low = _lower(low, lows[position])
        if new is skew:
            new = dict(skew)
        new["seq"] = reading["seq"]
        new["low"] = low
        new["until"] = now_ms + plan.heartbeat_ms + plan.min_gap_ms
    elif skew["low"] is not None:
        until = skew["until"]
        assert isinstance(skew["low"], list) and isinstance(until, int)
        if now_ms > until:
            return new
        low = _lower(skew["low"], credits)
        if low is not skew["low"]:
            if new is skew:
                new = dict(skew)
            new["low"] = low
    return new


def section(plan: Plan, reading: dict[str, object] | None, skew: dict[str, object]) -> dict[str, object] | None:
    """The meter node's published section: its reading and the managed draws it surely contains, per phase."""
    if reading is None or reading["seq"] != skew["seq"]:
        return None
    low = skew["low"]
    assert isinstance(low, list)
    managed = [0, 0, 0]
    position = 0
    for phases in plan.load_phases:
        for phase in phases:
            managed[phase] += low[position]
            position += 1
    return {"seq": reading["seq"], "age_ms": reading["age_ms"], "ma": reading["ma"], "managed_ma": managed}
