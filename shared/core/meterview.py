"""The mains meter in a node's view: the meter node's published reading, the same numbers on every node."""

from .controller import KEY_WIDTH, Plan
from .peers import Peer
from .site import ABSURD_FACTOR, MAX_MA

_STALE_MA = ABSURD_FACTOR * MAX_MA + 1

# Loaded only for a site with a meter node (site.meter_node): every node
# reads the section the meter node last published, so their views agree; the
# meter node reads what it published, not what it measures now. Missing,
# older than meter_stale_ms, or with a phase unknown: stale (rule 5), and the
# allocation gives minimums only.


def unmanaged_ma(plan: Plan, state: dict[str, object], peers: list[Peer | None], fresh: list[bool],
                   now_ms: int) -> list[int] | None:
    """The unmanaged current per phase from the meter node's last published reading; None when stale or missing."""
    # Every node reads the same published section, so views built from it
    # agree; the meter node itself reads what it published, not what it
    # measures now. Missing, old, or with a phase unknown: stale (rule 5).
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
    assert isinstance(readings, list) and isinstance(managed, list)
    unmanaged = []
    for phase in range(plan.phases):
        reading = readings[phase]
        if reading is None:
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


def section(plan: Plan, reading: dict[str, object] | None, peers: list[Peer | None], fresh: list[bool],
            draw: list[int | None], exposure_ma: int) -> dict[str, object] | None:
    """The meter node's published section: its reading and the managed draws it contains, per phase."""
    if reading is None:
        return None
    managed = [0, 0, 0]
    for index in range(len(plan.ids)):
        peer = peers[index]
        draws: object = draw
        most = exposure_ma
        if index != plan.own:
            if peer is None or not fresh[index]:
                continue
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
        # Every mA subtracted here widens the site by a mA (rule 5: absurd
        # data is the worst case, never favourable). A draw above the member's
        # max is a broken CT or a wrong unit: unknown, nothing subtracted. One
        # above what the member may be drawing counts at that much; the rest
        # is read as unmanaged load, which is safe whether it is real or not.
        max_ma = plan.members[index]["max_ma"]
        assert isinstance(draws, list) and isinstance(max_ma, int) and isinstance(most, int)
        for phase in plan.load_phases[index]:
            value = draws[phase]
            if value is not None and value <= max_ma:
                managed[phase] += value if value < most else most
    return {"seq": reading["seq"], "age_ms": reading["age_ms"], "ma": reading["ma"], "managed_ma": managed}
