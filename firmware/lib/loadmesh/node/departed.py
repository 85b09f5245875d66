"""Members a config removed, while they may still draw current: no raise in the group until each is gone."""

from loadmesh.core.controller import Plan
from loadmesh.core.peers import PeerTable

FILE = "departed.json"

# docs/safety.md ("Removed members"). A node that adopts a config without a
# member stops counting that member at once, but the member runs the old
# config until it has the new one (a push, or a fetch within a sync round),
# and its car follows its pilot within ev_lag after that. Meanwhile this node
# passes the controller "hold": it does not raise, and the hold changes its
# digest, so no peer agrees with it and no peer raises either, not even one
# that never ran the old config. The node keeps listening to the removed
# member's heartbeats, and the member is gone when
#
# - its latest heartbeat reports nothing it may draw (applied, target and
#   exposure 0): on the old config it cannot raise again, since its peers,
#   on the new one, never carry its config hash; or
# - it has been silent for the old config's and the new one's longest
#   peer_timeout + ev_lag + margin, counted from the switch at the earliest:
#   the staged reservation's wait for a silent member. A member that adopted
#   the new config stops sending (left_out), so this is how most leave.
#
# Entries: node id -> [since_ms (the switch), pad_ms].
#
# A node a config left out, named again by a later one, restarts into it
# (runtime.Node._rejoin) having missed the configs in between: it may come
# back as the only member, with nobody to agree with before it raises, while
# members those configs removed still draw on an older one. So it holds for
# the members of the config that left it out (what it last knew of the group)
# that the new one lacks, as at a switch: written to FILE before the config,
# held from the boot. Back alone, it holds for at least the pad (the config
# that left it out had another member): that covers a member the missed
# configs added and removed, which it cannot name, since such a member learns
# the new config in that time, as any removed member must. Back with others,
# they do not agree with it before they hold for that member themselves.
#
# The hold is kept across a reset in FILE ({id: pad_ms}), written whenever the
# set of removed members changes: a node that resets boots into the new
# config, and without the file it would not know the member it held for (if
# every node that held reset, the group would raise into the member's share
# while it still charges on the old config). At boot each is held for again
# from the boot, as at a switch: the time the node was down is unknown.


def track(departed: dict[str, list[int]], old_ids: list[str], new_ids: list[str], own: str, now_ms: int,
          pad_ms: int) -> None:
    """Add the members old_ids had and new_ids has not; drop those new_ids has (back in the group)."""
    for node in old_ids:
        if node != own and node not in new_ids and node not in departed:
            departed[node] = [now_ms, pad_ms]
    for node in new_ids:
        departed.pop(node, None)


def wait_ms(old: Plan | None, new: Plan) -> int:
    """How long a member removed by the switch from old to new may be silent and still draw: the longer of the
    two configs' silent_wait_ms."""
    if old is not None and old.silent_wait_ms > new.silent_wait_ms:
        return old.silent_wait_ms
    return new.silent_wait_ms


def rejoin_ids(left_by: dict[str, object]) -> list[str]:
    """The members of the config that left this node out: what it last knew of the group."""
    members = left_by["members"]
    assert isinstance(members, list)
    return [member["id"] for member in members]


def rejoin_wait_ms(left_by: dict[str, object], new: Plan) -> int:
    """wait_ms() for a node named again: the config that left it out has no Plan here (it names no member of this
    node's id), so its silent wait comes from its fields, as Plan.silent_wait_ms counts it."""
    old_ms = left_by["peer_timeout_ms"] + left_by["ev_lag_ms"] + left_by["margin_ms"]  # type: ignore[operator]
    assert isinstance(old_ms, int)
    return old_ms if old_ms > new.silent_wait_ms else new.silent_wait_ms


def listened(departed: dict[str, list[int]], member_ids: list[str], own: str, max_peers: int) -> list[str]:
    """The ids the peer table admits: the members, and as many removed members as it has room for."""
    room = max_peers - len([node for node in member_ids if node != own])
    extra = sorted(departed)[:room] if room > 0 else []
    return member_ids + extra


def holding(departed: dict[str, list[int]], table: PeerTable, now_ms: int) -> bool:
    """Whether a removed member may still draw current; the ones that are gone are dropped from departed."""
    hold = False
    for node in sorted(departed):
        since_ms, pad_ms = departed[node]
        last_ms = since_ms
        peer = table.peer(node)
        if peer is not None:
            if _may_draw_ma(peer.heartbeat) == 0:
                del departed[node]
                continue
            if peer.heard_ms > last_ms:
                last_ms = peer.heard_ms
        if now_ms - last_ms >= pad_ms:
            del departed[node]
            continue
        hold = True
    return hold


def _may_draw_ma(message: dict[str, object]) -> int:
    """The most a heartbeat reports its load enforcing, targeting or still exposed to (as the controller counts)."""
    most = 0
    for value in (message["applied_ma"], message["target_ma"]):
        if isinstance(value, int) and value > most:
            most = value
    control = message["control"]
    if isinstance(control, dict):
        exposure = control["exposure_ma"]
        if isinstance(exposure, int) and exposure > most:
            most = exposure
    return most


def record(departed: dict[str, list[int]]) -> dict[str, int]:
    """What FILE keeps of departed: each removed member's wait."""
    return {node: departed[node][1] for node in departed}


def restored(raw: object, member_ids: list[str], own: str, now_ms: int, most: int) -> dict[str, list[int]]:
    """The removed members a record (as read from FILE) names that member_ids does not have, held for from
    now_ms; {} if raw is not a record (at most most of them: what the peer table could listen to)."""
    departed: dict[str, list[int]] = {}
    if not isinstance(raw, dict):
        return departed
    for node in sorted(raw):
        pad_ms = raw[node]
        if len(departed) < most and node != own and node not in member_ids and 0 < len(node) <= 16 \
                and isinstance(pad_ms, int) and not isinstance(pad_ms, bool) and 0 < pad_ms <= 3600000:
            departed[node] = [now_ms, pad_ms]
    return departed


def save(root: str, departed: dict[str, list[int]]) -> None:
    """Keep the removed members and their waits in FILE (OSError if the file system cannot)."""
    from .store import Store

    Store(root).write_json(FILE, record(departed))


def restore(root: str, member_ids: list[str], own: str, now_ms: int, most: int) -> dict[str, list[int]]:
    """restored() of what FILE holds ({} when it is missing or damaged)."""
    from .store import Store

    return restored(Store(root).read_json(FILE), member_ids, own, now_ms, most)
