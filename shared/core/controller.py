"""The node controller: each tick, the limit a node may apply, safely, from the group config and the peer table."""

import hashlib

from . import allocate, headroom, site, view
from .errors import FieldError, describe
from .peers import Peer, PeerTable

# DESIGN's rules, in the order step() applies them (docs/safety.md argues each):
#  1. Lower at once: the applied limit falls to the target at the tick it drops.
#  2. Raise only on agreement: only while every member is heard and every
#     peer's latest heartbeat carries this node's digest, only up to the target
#     this node has already published, and only within what every circuit and
#     phase has left, counting each peer at the most it reports enforcing,
#     targeting or still exposed to (a limit it lowered less than ev_lag_ms
#     ago, which its car may still draw). The digest covers the view and, for
#     every member, the sequence number of the heartbeat that first carried its
#     current target: agreement proves every peer holds this node's current
#     target, so two nodes can never raise into the same room unseen.
#  3. Failsafe on silence: a member not heard for peer_timeout_ms puts this
#     node at min(applied, failsafe current), with no raise, until it is heard.
#  4. Staged reservation: a silent peer is reserved at what it last reported,
#     then at its failsafe current once it must have reached it.
#  5. A stale or missing meter is the allocation's worst case, never zero.
#  6. Boot at the failsafe current, never above the limit enforced before the
#     reset, and raise only as rule 2 allows.
# Besides: a config whose limits are lower caps each node at its transition share
# until the group agrees under it; a load paused while it wanted current does
# not ask again before the anti-flap guard; a raise may be ramped.

TARGET = "target"  # applied is the target
FAILSAFE = "failsafe"  # a member is silent
AGREEMENT = "agreement"  # waiting for every peer to carry this node's digest
TRANSITION = "transition"  # a narrower config, not yet agreed: capped at the transition share
HEADROOM = "headroom"  # a peer still holds (or may still draw) what the target needs
RAMP = "ramp"  # rising by ramp_ma per tick
ANTIFLAP = "antiflap"  # paused while it wanted current: no new demand before the guard ends
HOLD = "hold"  # a member the config removed may still draw: no raise anywhere until it is gone

RETELLS = 3  # heartbeats that tell a change again, min_gap_ms apart

_MODES = site.MODE_NAMES
_MAX_MA = site.MAX_MA
_INPUT_KEYS = ("demand", "idle", "mode", "priority", "draw_ma", "meter", "hold")


class Plan:
    """A group config prepared for one node (groupconfig.node_facts), with a memo of the last view's allocation."""

    def __init__(self, facts: dict[str, object]) -> None:
        members = facts["members"]
        assert isinstance(members, list)
        self.node = str(facts["node"])
        self.group = str(facts["group"])
        self.members: list[dict[str, object]] = members
        self.ids: list[str] = [str(member["id"]) for member in members]
        self.own = _int(facts, "own")
        self.me: dict[str, object] = members[self.own]
        self.min_ma = _int(self.me, "min_ma")
        self.max_ma = _int(self.me, "max_ma")
        self.step_ma = _int(self.me, "step_ma")
        self.failsafe_ma: list[int] = facts["failsafe_ma"]  # type: ignore[assignment]
        self.transition_ma: list[int] = facts["transition_ma"]  # type: ignore[assignment]
        # Only members that can draw current make the group fail safe when silent.
        self.draws_current = [_int(member, "max_ma") > 0 for member in members]
        self.hash = str(facts["hash"])
        self.version = _int(facts, "version")
        self.announced = str(facts["announced"])
        self.caps: list[list[object]] = facts["caps"]  # type: ignore[assignment]
        self.scenario: dict[str, object] = facts["scenario"]  # type: ignore[assignment]
        self.heartbeat_ms = _int(facts, "heartbeat_ms")
        self.peer_timeout_ms = _int(facts, "peer_timeout_ms")
        self.ev_lag_ms = _int(facts, "ev_lag_ms")
        self.margin_ms = _int(facts, "margin_ms")
        self.antiflap_ms = _int(facts, "antiflap_ms")
        self.ramp_ma = _int(facts, "ramp_ma")
        # How long a silent member may still draw what it last reported: it
        # may have been heard just before peer_timeout_ms of silence began,
        # its car follows a lowered pilot within ev_lag_ms, and margin_ms
        # covers the clocks. The staged reservation waits this long, and so
        # does the hold on a member removed by a config switch.
        self.silent_wait_ms = self.peer_timeout_ms + self.ev_lag_ms + self.margin_ms
        # How long this node's load may go on drawing a limit it lowered: a
        # car follows the pilot within ev_lag_ms; a relay opens at once.
        self.lag_ms = self.ev_lag_ms if self.me["kind"] == "evse" else 0
        # A change worth telling is sent at once, but no more often than this.
        self.min_gap_ms = self.heartbeat_ms // 5
        self.phases = _int(facts, "phases")
        self.meter_stale_ms = _int(facts, "meter_stale_ms")
        self.meter_index = _int(facts, "meter_index")
        self.load_phases = [_PHASE_INDEXES[str(member["phases"])] for member in members]
        # The memo: step() is a pure function of its arguments; this only
        # spares recomputing the allocation when its inputs did not change.
        self._view_key: list[object] | None = None
        self._targets: list[int] = []
        self._reasons: list[str] = []
        self._view_digest = ""
        self._digest_key: list[object] | None = None
        self._digest = ""


_PHASE_INDEXES = {"L1": (0,), "L2": (1,), "L3": (2,), "L123": (0, 1, 2)}


def prepare(config: dict[str, object], node: str, announce_version: int | None = None,
            announce_hash: str | None = None) -> Plan:
    """Prepare a parsed config (groupconfig.parse or configsync.conservative) for node.

    announce_version and announce_hash are what heartbeats carry: the adopted
    config's, when config is a conservative merge of it with others.
    """
    from . import groupconfig  # only preparing reads it: a node with a small heap can let it go

    return Plan(groupconfig.node_facts(config, node, announce_version, announce_hash))


def boot(plan: Plan, boot_id: int, now_ms: int, last_applied_ma: int = 0,
         last_exposure_ma: int = 0) -> dict[str, object]:
    """The state a node starts in: at most its failsafe current, and never above last_applied_ma.

    last_applied_ma is the limit the node enforced before a watchdog reset, and
    last_exposure_ma what its car could still draw then (a limit lowered less
    than ev_lag ago), if the firmware kept them (RTC memory); 0 after a power
    cut or when unknown. A node that booted above last_applied_ma would raise
    without evidence; one that told its peers less than last_exposure_ma would
    let them raise into current its car may still draw.
    """
    if isinstance(boot_id, bool) or not isinstance(boot_id, int) or not 1 <= boot_id <= (1 << 30) - 1:
        raise FieldError("boot_id", describe(boot_id) + " is not an integer 1..1073741823")
    _check_ms(now_ms, "now_ms")
    if isinstance(last_applied_ma, bool) or not isinstance(last_applied_ma, int) or last_applied_ma < 0:
        raise FieldError("last_applied_ma", describe(last_applied_ma) + " is not a current in mA")
    if isinstance(last_exposure_ma, bool) or not isinstance(last_exposure_ma, int) or last_exposure_ma < 0:
        raise FieldError("last_exposure_ma", describe(last_exposure_ma) + " is not a current in mA")
    # Its car may still be following a limit enforced before the reset, for up to
    # ev_lag from now (the reset took some of it: held a little longer is the safe side).
    exposed = last_exposure_ma if last_exposure_ma > last_applied_ma else last_applied_ma
    failsafe = plan.failsafe_ma[plan.own]
    applied = _lattice(plan, failsafe if failsafe < last_applied_ma else last_applied_ma)
    return {
        "boot_id": boot_id, "booted_ms": now_ms, "seq": 0, "sent_ms": None,
        "target_ma": 0, "target_seq": 0, "applied_ma": applied,
        "draw_ma": [None, None, None], "meter": None, "sent": None, "retells": 0,
        "skew": None,  # the meter node's: its members' draws since its readings (meterview.track)
        # A load stopped by the reset itself waits out the anti-flap guard.
        "paused_ms": now_ms if applied == 0 and last_applied_ma > 0 else None,
        "held": [[exposed, now_ms + plan.lag_ms]] if exposed > applied and plan.lag_ms else [],
        "agreed": None, "agreed_caps": None,
    }


def step(plan: Plan, state: dict[str, object], inputs: dict[str, object], table: PeerTable,
         now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
    """One control tick: (outputs, new state). table is the node's peer table; state is not changed.

    inputs: demand (the load asks for current), idle (optional: it cannot draw
    now, no car or IEC 61851 state A/B), mode and priority (optional: the
    config's), draw_ma ([L1, L2, L3], None when unknown), on the meter node
    meter ({seq, age_ms, ma: [L1, L2, L3]}), and hold (optional: a member an
    earlier config had and this one removed may still be drawing; the node
    tracks it, see docs/safety.md "Removed members"). outputs: applied_ma (to
    enforce now), target_ma, exposure_ma, failsafe, reason, alloc_reason,
    digest, silent / disagree / config_mismatch (member ids), and heartbeat:
    the fields to sign and broadcast now (heartbeat.encode_into), or None.
    """
    _check_ms(now_ms, "now_ms")
    me = plan.me
    own = plan.own
    demand_in, idle, mode, priority, draw, meter_in, hold = _inputs(plan, inputs)
    new = dict(state)
    prev_ma = _int(state, "applied_ma")
    # Anti-flap: a load paused while it wanted current does not ask again
    # before the guard; a car that stops asking (unplugged, full) ends it.
    paused_ms = _opt_int(state, "paused_ms")
    if not demand_in:
        paused_ms = None
    guarded = paused_ms is not None and now_ms < paused_ms + plan.antiflap_ms
    demand = demand_in and not guarded
    active = prev_ma > 0
    sent_ms = _opt_int(state, "sent_ms")
    seq = _int(state, "seq")

    peers, fresh = _peers(plan, table, now_ms)
    counts = _counts(plan, peers)
    # The model is not kept past the allocation, not even through this tick: the digest and the heartbeat
    # need the room on a node's small heap. So a tick that builds it and may raise takes the headroom for
    # the raise from it then (room); one that did not build it, but may raise, builds it from the key.
    room = _allocation(plan, state, peers, fresh, counts, (demand, mode, priority, active), now_ms, prev_ma, hold)
    targets = plan._targets  # the allocation of the view this node holds (the memo)
    reasons = plan._reasons
    target = targets[own]
    if target != state["target_ma"]:
        new["target_ma"] = target
        new["target_seq"] = seq  # the next heartbeat is the first to carry it
    digest = _digest(plan, _int(state, "boot_id"), _int(new, "target_seq"), peers, hold)

    silent = []
    disagree = []
    mismatch = []
    for index in range(len(plan.ids)):
        peer = peers[index]
        if index == own:
            continue
        if peer is None or not fresh[index]:
            if plan.draws_current[index]:
                silent.append(plan.ids[index])
            continue
        if peer.heartbeat["digest"] != digest:
            disagree.append(plan.ids[index])
        if peer.heartbeat["config_hash"] != plan.announced:
            mismatch.append(plan.ids[index])
    failsafe = len(silent) > 0
    # The digest covers the config, so a peer on another config cannot agree;
    # its announced hash is checked too, as a second lock on the same door.
    # A hold changes the digest as well: no peer agrees with a holding node, so
    # no one raises into what a removed member may still draw, not even a node
    # that never ran the config that had it.
    agreed = not failsafe and not disagree and not mismatch and not hold
    if agreed:
        new["agreed"] = plan.hash
        new["agreed_caps"] = plan.caps
    transition = new["agreed"] != plan.hash and not _wider(plan.caps, new["agreed_caps"])

    cap = target
    if failsafe:
        # Rule 3: at most the failsafe current, never a raise, and there it
        # stays while the load asks for current: no one raises while a member
        # is silent, so the allocation's reserves for the silent (its max for
        # one never heard since boot) need not push anyone lower.
        cap = min(plan.failsafe_ma[own], prev_ma) if demand and mode != "off" else 0
    if transition:
        cap = min(cap, plan.transition_ma[own])
    applied = prev_ma
    limited = False
    if prev_ma > cap:
        applied = _lattice(plan, cap)  # rule 1: lower at once
    elif prev_ma < cap and agreed and plan._view_key is not None:
        if room is None:
            room = headroom.allowed_ma(_model_of(plan, plan._view_key), plan.node, counts)
        rise = cap if cap < room else room
        if plan.ramp_ma:
            step_to = prev_ma + plan.ramp_ma
            if prev_ma == 0 and step_to < plan.min_ma:
                step_to = plan.min_ma
            if step_to < rise:
                rise = step_to
                limited = True
        rise = _lattice(plan, rise)
        if rise > prev_ma:
            applied = rise
    if guarded:
        reason = ANTIFLAP
    elif applied == target:
        reason = TARGET
    elif failsafe:
        reason = FAILSAFE
    elif transition and new["agreed_caps"] is not None and applied == _lattice(plan, plan.transition_ma[own]):
        reason = TRANSITION
    elif hold:
        reason = HOLD
    elif not agreed:
        reason = AGREEMENT
    else:
        reason = RAMP if limited else HEADROOM
    new["applied_ma"] = applied
    if prev_ma > 0 and applied == 0 and demand_in:
        paused_ms = now_ms
    new["paused_ms"] = paused_ms
    # Exposure: a car follows a lower pilot within ev_lag_ms, so until then
    # it may still draw the old limit; peers count it (rule 2). A car that
    # is not asking for current (idle) starts from the pilot it sees when it
    # asks again, so nothing it saw before can reach the wire.
    held = _held(state["held"], now_ms, prev_ma, applied, plan.lag_ms, idle)
    if held is not state["held"]:
        new["held"] = held
    exposure = applied
    for value, _ in held:
        if value > exposure:
            exposure = value

    skew = None
    if plan.meter_index == own:
        from . import meterview

        # Every tick, so that the draws heard between two heartbeats of this
        # node are in the minima the published section subtracts (meter skew).
        kept = state["skew"]
        assert kept is None or isinstance(kept, dict)
        skew = meterview.track(plan, kept, meter_in, peers, fresh, draw, exposure, now_ms)
        if skew is not kept:
            new["skew"] = skew

    # A heartbeat every heartbeat_ms, and one at once (at most every
    # min_gap_ms) when what it tells changes, the exposure included (its end
    # frees room for the peers). A lost change would otherwise wait a whole
    # period, and agreement takes about three rounds (the change, the peers'
    # new targets, their digests): so a change is told RETELLS times more,
    # min_gap_ms apart, each a heartbeat of its own (a new seq, nothing for
    # the peers to drop as a duplicate). docs/firmware.md has the figures.
    told = [digest, target, applied, failsafe, demand, mode, priority, active, exposure]
    changed = told != state["sent"]
    retells = _int(state, "retells")
    message: dict[str, object] | None = None
    if sent_ms is None or now_ms - sent_ms >= plan.heartbeat_ms or (
            (changed or retells > 0) and now_ms - sent_ms >= plan.min_gap_ms):
        meter = None
        if skew is not None:
            from . import meterview

            meter = meterview.section(plan, meter_in, skew)
        message = {
            "group": plan.group, "node": plan.node, "boot_id": state["boot_id"], "seq": seq,
            "circuit": me["circuit"], "phases": me["phases"], "mode": mode, "priority": priority,
            "min_ma": me["min_ma"], "max_ma": me["max_ma"], "step_ma": me["step_ma"],
            "demand": demand, "active": active, "failsafe": failsafe, "draw_ma": draw,
            "target_ma": target, "applied_ma": applied, "config_version": plan.version,
            "config_hash": plan.announced, "digest": digest, "meter": meter, "heating": None,
            "control": {"target_seq": new["target_seq"], "exposure_ma": exposure},
        }
        new["seq"] = seq + 1
        new["sent_ms"] = now_ms
        new["sent"] = told
        new["retells"] = RETELLS if changed else retells - 1 if retells > 0 else 0
        # What the view reads for this node from now on: what its peers read.
        new["draw_ma"] = draw
        new["meter"] = meter
    out: dict[str, object] = {
        "applied_ma": applied, "target_ma": target, "failsafe": failsafe, "reason": reason,
        "alloc_reason": reasons[own], "digest": digest, "silent": silent, "disagree": disagree,
        "config_mismatch": mismatch, "exposure_ma": exposure, "heartbeat": message,
    }
    return out, new


def forget_view(plan: Plan) -> None:
    """Let go of the memo's results for a view whose key step() already let go of: a step that ran out of memory.

    A step that computes a new view's allocation drops the key of the one before first, and keeps the new
    targets, reasons and digests only once they are whole; so one that failed in between leaves the key gone
    and the last view's results in place. The next step computes them all again in any case (no key: no
    memo), and until it has, they only take room that its model needs: the targets, the reasons, the view's
    digest and the key of the digest that tells it (35 parts for 17 members; about 400 bytes on an ESP32).
    With the key there the memo is whole, and kept: the next step may need no allocation at all. Allocates
    nothing (the runtime calls it just after a MemoryError).
    """
    if plan._view_key is not None:
        return
    plan._targets.clear()  # in place: a new empty list would be an allocation; no one else holds these lists
    plan._reasons.clear()
    plan._view_digest = ""
    plan._digest_key = None  # the digest is made again, from the new view's
    plan._digest = ""


def _held(held: object, now_ms: int, prev_ma: int, applied_ma: int, lag_ms: int, idle: bool) -> list[list[int]]:
    """The limits this node's load may still draw, as [limit, until ms], after this tick (held itself if unchanged).

    Kept with the limit falling and the time rising: a lowered limit that is
    no higher than a later one, and no longer held, is dropped.
    """
    assert isinstance(held, list)
    if idle:
        return [] if held else held
    keep = held
    if held and held[0][1] <= now_ms:
        keep = [entry for entry in held if entry[1] > now_ms]
    if applied_ma < prev_ma and lag_ms:
        keep = [entry for entry in keep if entry[0] > prev_ma]
        keep.append([prev_ma, now_ms + lag_ms])
    return keep


def _lattice(plan: Plan, bound_ma: int) -> int:
    """The highest current this node's load may be given that is at most bound_ma: 0, or min + k x step, or max."""
    if bound_ma >= plan.max_ma:
        return plan.max_ma
    if bound_ma < plan.min_ma:
        return 0
    return plan.min_ma + (bound_ma - plan.min_ma) // plan.step_ma * plan.step_ma


def _int(mapping: dict[str, object], key: str) -> int:
    value = mapping[key]
    assert isinstance(value, int)
    return value


def _opt_int(mapping: dict[str, object], key: str) -> int | None:
    value = mapping[key]
    assert value is None or isinstance(value, int)
    return value


def _inputs(plan: Plan,
            inputs: object) -> tuple[bool, bool, str, int, list[int | None], dict[str, object] | None, bool]:
    if not isinstance(inputs, dict):
        raise FieldError("inputs", describe(inputs) + " is not an object")
    for key in inputs:
        if key not in _INPUT_KEYS:
            from .fieldcheck import key_name  # only for an error: a node keeps fieldcheck out of its heap

            raise FieldError("inputs." + key_name(key), "is not a known field")
    demand = inputs.get("demand")
    if demand is not True and demand is not False:
        raise FieldError("inputs.demand", describe(demand) + " is not true or false")
    idle = inputs.get("idle", False)
    if idle is not True and idle is not False:
        raise FieldError("inputs.idle", describe(idle) + " is not true or false")
    hold = inputs.get("hold", False)
    if hold is not True and hold is not False:
        raise FieldError("inputs.hold", describe(hold) + " is not true or false")
    mode = inputs.get("mode", plan.me["mode"])
    if not isinstance(mode, str) or mode not in _MODES:
        raise FieldError("inputs.mode", describe(mode) + " is not one of " + ", ".join(_MODES))
    priority = inputs.get("priority", plan.me["priority"])
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
        raise FieldError("inputs.priority", describe(priority) + " is not an integer -1000..1000")
    draw = _readings(inputs.get("draw_ma", [None, None, None]), "inputs.draw_ma", 0)
    raw_meter = inputs.get("meter")
    meter: dict[str, object] | None = None
    if raw_meter is not None:
        if not isinstance(raw_meter, dict):
            raise FieldError("inputs.meter", describe(raw_meter) + " is not an object")
        for key in raw_meter:
            if key not in ("seq", "age_ms", "ma"):
                from .fieldcheck import key_name

                raise FieldError("inputs.meter." + key_name(key), "is not a known field")
        for key in ("seq", "age_ms", "ma"):
            if key not in raw_meter:
                raise FieldError("inputs.meter." + key, "is missing")
        meter = {"seq": _int_in(raw_meter.get("seq"), "inputs.meter.seq", 0, _MAX_VALUE),
                 "age_ms": _int_in(raw_meter.get("age_ms"), "inputs.meter.age_ms", 0, _MAX_VALUE),
                 "ma": _readings(raw_meter.get("ma"), "inputs.meter.ma", -_MAX_VALUE)}
    return demand, idle, mode, priority, draw, meter, hold


_MAX_VALUE = (1 << 30) - 1


def _readings(value: object, path: str, low: int) -> list[int | None]:
    if not isinstance(value, list) or len(value) != 3:
        raise FieldError(path, "must be a list of 3 values (L1, L2, L3; null when unknown)")
    out: list[int | None] = []
    for phase in range(3):
        item = value[phase]
        out.append(None if item is None else _int_in(item, path + "[" + str(phase) + "]", low, _MAX_VALUE))
    return out


def _int_in(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FieldError(path, describe(value) + " is not an integer " + str(low) + ".." + str(high))
    return value


def _check_ms(value: object, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FieldError(path, describe(value) + " is not a time in ms")


def _peers(plan: Plan, table: PeerTable, now_ms: int) -> tuple[list[Peer | None], list[bool]]:
    """Each member's peer-table entry (None for this node and the unheard) and whether it is fresh."""
    peers: list[Peer | None] = []
    fresh: list[bool] = []
    for index, member_id in enumerate(plan.ids):
        if index == plan.own:
            peers.append(None)
            fresh.append(True)
            continue
        peer = table.peer(member_id)
        peers.append(peer)
        fresh.append(peer is not None and table.online(member_id, now_ms, plan.peer_timeout_ms))
    return peers, fresh


def _counts(plan: Plan, peers: list[Peer | None]) -> dict[str, int]:
    """What each peer counts for in a raise check: the most it reports enforcing, targeting or still exposed to.

    A peer's exposure is what its load may still draw: a limit it lowered
    within the last ev_lag_ms, while its car follows (the peer tracks that
    itself, from its own pilot history).
    """
    counts: dict[str, int] = {}
    for index, member_id in enumerate(plan.ids):
        if index == plan.own:
            continue
        peer = peers[index]
        if peer is None:
            counts[member_id] = 0
            continue
        message = peer.heartbeat
        value = _int(message, "applied_ma")
        target = _int(message, "target_ma")
        if target > value:
            value = target
        control = message["control"]
        if isinstance(control, dict) and control["exposure_ma"] > value:
            value = control["exposure_ma"]
        counts[member_id] = value if value < _MAX_MA else _MAX_MA
    return counts


def _allocation(plan: Plan, state: dict[str, object], peers: list[Peer | None], fresh: list[bool],
                counts: dict[str, int], own_facts: tuple[bool, str, int, bool], now_ms: int,
                applied_ma: int, hold: bool) -> int | None:
    """Targets and reasons per member for the view this node holds, into the memo when the view changed; the room.

    The targets and reasons are plan._targets and plan._reasons afterwards
    (not returned in a tuple: that would be garbage at every tick). The room:
    when it recomputes them, and this node's target is above applied_ma, and
    step() may find the group agreed, the most this node may raise to
    (headroom.allowed_ma), from the model; otherwise None.
    """
    with_meter = plan.meter_index >= 0
    deadline_pad = plan.silent_wait_ms
    # The view's key is compared with the memo's as it is made, and copied only at its first
    # difference: a new one every tick (a kilobyte for 17 members) would be the largest block a node's
    # small heap is asked for, and a spare one kept for it a kilobyte of the heap for good.
    width = len(plan.ids) * KEY_WIDTH + 1
    old_key = plan._view_key
    if old_key is not None and len(old_key) != width:
        old_key = None
    key: list[object] = old_key if old_key is not None else [None] * width
    for index in range(len(plan.ids)):
        member = plan.members[index]
        reserve = 0
        draw = 0
        peer = peers[index]
        if index == plan.own:
            demand, mode, priority, active = own_facts
            online = True
            if with_meter:
                own_draws = state["draw_ma"]
                assert isinstance(own_draws, list)
                draw = _max_draw(own_draws, plan.load_phases[index], _int(member, "max_ma"))
        elif peer is not None and fresh[index]:
            message = peer.heartbeat
            online = True
            demand = message["demand"] is True
            mode = str(message["mode"])
            priority = _int(message, "priority")
            if priority > 1000:
                priority = 1000
            elif priority < -1000:
                priority = -1000
            active = message["active"] is True
            if with_meter:
                peer_draws = message["draw_ma"]
                assert isinstance(peer_draws, list)
                draw = _max_draw(peer_draws, plan.load_phases[index], _int(member, "max_ma"))
        else:
            # Staged reservation (rule 4): what it last reported, until it
            # must have reached failsafe; then its failsafe current at most.
            online = False
            demand = False
            mode = str(member["mode"])
            priority = _int(member, "priority")
            active = False
            if peer is None:
                reserve = _int(member, "max_ma")
                if now_ms >= _int(state, "booted_ms") + deadline_pad:
                    reserve = plan.failsafe_ma[index]
            else:
                reserve = counts[plan.ids[index]]
                if now_ms >= peer.heard_ms + deadline_pad and reserve > plan.failsafe_ma[index]:
                    reserve = plan.failsafe_ma[index]
        base = index * KEY_WIDTH
        if key is old_key and (key[base] != online or key[base + 1] != demand or key[base + 2] != mode
                               or key[base + 3] != priority or key[base + 4] != active
                               or key[base + 5] != reserve or key[base + 6] != draw):
            key = key[:]  # a slice is made at its size; list() grows a list by appends on MicroPython
        if key is old_key:
            continue
        key[base] = online
        key[base + 1] = demand
        key[base + 2] = mode
        key[base + 3] = priority
        key[base + 4] = active
        key[base + 5] = reserve
        key[base + 6] = draw
    unmanaged = None
    if with_meter:
        from . import meterview  # only a site with a mains meter loads it

        unmanaged = meterview.unmanaged_ma(plan, state, peers, fresh, now_ms)
    if key is old_key:
        if key[width - 1] == unmanaged:
            return None
        key = key[:]
    key[width - 1] = unmanaged
    # The memo keeps the targets and the digest, not the model: on a node's small heap (12K words,
    # 16 peers in the table) the model of 17 loads is room the next tick's work needs. A later tick
    # that may raise builds it again from the key (_model_of); this one takes its room now, while the
    # model is there: a second model for it would cost the time of a first.
    plan._view_key = None
    del old_key  # the view before: no longer kept
    model = _model_of(plan, key)
    targets, reasons = allocate.targets_ma(model)
    plan._targets = targets
    plan._reasons = reasons
    plan._view_digest = view.digest(model)
    plan._view_key = key
    room = None
    if targets[plan.own] > applied_ma and not hold:
        # Not when step() cannot find the group agreed, as far as that is known before this node's
        # digest: a silent member that draws current, a peer on another config, two peers whose
        # digests differ (none equals both), or a new target with a peer heard (the digest carries
        # the target's seq, that of this node's next heartbeat, which no peer has seen). Only the
        # time spent depends on this, never an output. Here, not in a function of its own: a
        # function object would take the heap for good.
        agreeable = True
        digest: object = None
        for index in range(len(plan.ids)):
            peer = peers[index]
            if index == plan.own:
                continue
            if peer is None or not fresh[index]:
                if plan.draws_current[index]:
                    agreeable = False
                    break
                continue
            message = peer.heartbeat
            if message["config_hash"] != plan.announced or (digest is not None and message["digest"] != digest):
                agreeable = False
                break
            digest = message["digest"]
        if digest is not None and targets[plan.own] != state["target_ma"]:
            agreeable = False
        if agreeable:
            room = headroom.allowed_ma(model, plan.node, counts)
    return room


def _model_of(plan: Plan, key: list[object]) -> site.Site:
    """The site model of the view whose key this is."""
    # site.parse reads the loads one at a time from one dict, filled again for
    # each: 17 loads' dicts beside the model were the peak of a node's tick.
    load: dict[str, object] = {"id": None, "circuit": None, "phases": None, "min_ma": None, "max_ma": None,
                               "step_ma": None, "priority": None, "mode": None, "demand": None, "online": None,
                               "active": None, "draw_ma": None, "reserve_ma": None}

    def load_at(index: int) -> dict[str, object]:
        member = plan.members[index]
        base = index * KEY_WIDTH
        load["id"] = member["id"]
        load["circuit"] = member["circuit"]
        load["phases"] = member["phases"]
        load["min_ma"] = member["min_ma"]
        load["max_ma"] = member["max_ma"]
        load["step_ma"] = member["step_ma"]
        load["priority"] = key[base + 3]
        load["mode"] = key[base + 2]
        load["demand"] = key[base + 1]
        load["online"] = key[base]
        load["active"] = key[base + 4]
        load["draw_ma"] = key[base + 6]
        # An online load's reserve is 0 in the key, and site.parse gives it 0 whatever it is told.
        load["reserve_ma"] = key[base + 5]
        return load

    scenario = dict(plan.scenario)
    scenario["loads"] = plan.ids  # only their count is read: the loads are load_at's
    if plan.meter_index >= 0:
        from . import meterview

        unmanaged = key[len(key) - 1]
        site_raw = dict(plan.scenario["site"])  # type: ignore[call-overload]
        site_raw["meter"] = meterview.scenario_meter(plan, unmanaged, key)  # type: ignore[arg-type]
        scenario["site"] = site_raw
    return site.parse(scenario, load_at)


KEY_WIDTH = 7  # online, demand, mode, priority, active, reserve, draw


def _max_draw(draws: list[object], phases: tuple[int, ...], max_ma: int) -> int:
    # A draw above the member's max is unknown, as in the meter node's
    # section (meterview.section): read as 0, it cannot make the surplus
    # larger, nor the meter look absurd when the draws are added back.
    most = 0
    for phase in phases:
        draw = draws[phase]
        if isinstance(draw, int) and most < draw <= max_ma:
            most = draw
    return most


def _digest(plan: Plan, boot_id: int, target_seq: int, peers: list[Peer | None], hold: bool) -> str:
    """The digest of this node's view, the config, every member's (boot id, target sequence number), and a hold."""
    # Of its final size: a list grown by appends doubles its block, and the kept one would keep that.
    key: list[object] = [None] * (2 * len(plan.ids) + (2 if hold else 1))
    key[0] = plan._view_digest
    for index in range(len(plan.ids)):
        peer = peers[index]
        at = 2 * index + 1
        if index == plan.own:
            key[at] = boot_id
            key[at + 1] = target_seq
        elif peer is None:
            key[at] = 0
            key[at + 1] = -1
        else:
            control = peer.heartbeat["control"]
            key[at] = peer.heartbeat["boot_id"]
            key[at + 1] = control["target_seq"] if isinstance(control, dict) else -1
    if hold:
        key[len(key) - 1] = "hold"
    if key != plan._digest_key:
        # The SHA-256 of plan.hash and the key's parts, ";" between them, hashed a part at a time
        # (the whole text, its parts and its bytes at once were a node's tick's largest blocks).
        hasher = hashlib.sha256(plan.hash.encode())
        for part in key:
            hasher.update(b";")
            hasher.update(str(part).encode())
        raw: bytes = hasher.digest()
        plan._digest = raw.hex()[:view.DIGEST_HEX_CHARS]
        plan._digest_key = key
    return plan._digest


def _wider(caps: list[list[object]], agreed: object) -> bool:
    """Whether a config with caps leaves every constraint of the agreed one at least as wide, over the same loads."""
    # Then the applied limits, which fit the agreed config, fit this one too,
    # and no transition cap is needed.
    if not isinstance(agreed, list) or len(agreed) != len(caps):
        return False
    for position in range(len(caps)):
        name, capacity, ids = caps[position]
        old_name, old_capacity, old_ids = agreed[position]
        assert isinstance(capacity, int) and isinstance(old_capacity, int)
        if name != old_name or ids != old_ids or capacity < old_capacity:
            return False
    return True
