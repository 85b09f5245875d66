"""The peer table: only verified, newer heartbeats count; reboots need a higher boot id; bounded."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .heartbeats import KEY, OTHER_KEY, independent_encode, minimal

TIMEOUT_MS = 3000


def _table(core: ModuleType, members: list[str] | None = None, max_peers: int = 16) -> Any:
    return core.peers.PeerTable(core.heartbeat.prepare_key(KEY), "house", "evse-0", members, max_peers)


def _packet(node: str, boot_id: int, seq: int, key: bytes = KEY, **changes: Any) -> bytes:
    return independent_encode(minimal(node=node, boot_id=boot_id, seq=seq, **changes), key)


# One peer's packets arriving in this order: (t_ms, boot id, seq, applied mA, reason).
SEQUENCE = [
    (0, 5, 10, 6000, "ok"),  # first contact: whatever boot and sequence number
    (100, 5, 10, 6000, "duplicate"),  # the same packet again (a network duplicate, or a replay)
    (200, 5, 11, 8000, "ok"),  # the next one
    (300, 5, 9, 0, "old_seq"),  # late, or replayed: its news is already superseded
    (400, 5, 20, 10000, "ok"),  # a gap after lost packets is fine
    (500, 6, 0, 0, "ok"),  # a reboot: higher boot id, sequence numbers start again
    (600, 5, 21, 32000, "old_boot"),  # a replay from the previous boot, even with a newer seq
    (700, 6, 0, 0, "duplicate"),
    (800, 6, 1, 6000, "ok"),
    (900, 4, 99, 32000, "old_boot"),  # a boot older still
]


def test_replays_and_old_packets_are_dropped_and_a_higher_boot_is_a_reboot(core: ModuleType) -> None:
    table = _table(core)
    heard_ms, applied_ma = None, None
    for t_ms, boot_id, seq, applied, reason in SEQUENCE:
        assert table.receive(_packet("evse-1", boot_id, seq, applied_ma=applied), t_ms) == reason, (t_ms, reason)
        if reason == "ok":
            heard_ms, applied_ma = t_ms, applied
        peer = table.peer("evse-1")
        assert (peer.heard_ms, peer.applied_ma()) == (heard_ms, applied_ma)
    peer = table.peer("evse-1")
    assert (peer.boot_id, peer.seq, peer.reboots, peer.boot_heard_ms) == (6, 1, 1, 500)
    assert table.counts == {"ok": 5, "duplicate": 2, "old_seq": 1, "old_boot": 2, "reboot": 1}


def test_what_peers_repeat_is_kept_once(core: ModuleType) -> None:
    # Memory on a node's heap: most members are on one circuit, agreeing peers send the same config hash and
    # view digest, nodes that draw nothing the same draws; the table holds one copy of each, and every value
    # read is what was sent.
    table = _table(core, ["evse-0", "evse-1", "evse-2", "evse-3"])
    same = {"circuit": "site", "config_hash": "0123456789abcdef", "digest": "ab" * 32, "draw_ma": [None, None, None]}
    for index, node in enumerate(("evse-1", "evse-2")):
        assert table.receive(_packet(node, 1, 1, **same), 10 * index) == "ok"
    assert table.receive(_packet("evse-3", 1, 1, config_hash="0123456789abcdef", digest="cd" * 32,
                                 draw_ma=[6000, None, None]), 30) == "ok"
    first, second, third = (table.peer(node).heartbeat for node in ("evse-1", "evse-2", "evse-3"))
    for key in ("circuit", "config_hash", "digest", "draw_ma"):
        assert first[key] == second[key] == same[key] and first[key] is second[key], key
    assert third["config_hash"] is first["config_hash"]
    assert (third["digest"], third["draw_ma"]) == ("cd" * 32, [6000, None, None])
    assert first["group"] is table.group and [table.peer(node).node for node in table.nodes()] == table.nodes()
    # A newer heartbeat of the same peer takes the place of its last; the shared values stay as they were.
    assert table.receive(_packet("evse-1", 1, 2, config_hash="0123456789abcdef", digest="ef" * 32), 40) == "ok"
    assert (table.peer("evse-1").heartbeat["digest"], second["digest"]) == ("ef" * 32, "ab" * 32)
    assert (table.peer("evse-1").boot_id, table.peer("evse-1").seq) == (1, 2)


_ROOM = {"mode": "auto", "calling": True, "stale": False, "unread": False, "temp_dc": 195, "temp_age_ms": 1200,
         "normal_pct": 70, "command_pct": 80, "valve_pct": 60, "next_start_in_ms": None, "next_target_dc": None}


def test_a_peers_next_heartbeat_is_kept_in_the_dicts_of_its_last(core: ModuleType) -> None:
    # Memory on a node's heap: the dicts the table holds for a peer stay where they are, not one made every 500 ms
    # wherever the decoding found room (peers.py, the top); what is read is the heartbeat last heard.
    table = _table(core)
    control = {"target_seq": 3, "exposure_ma": 0}
    assert table.receive(_packet("valve-1", 1, 1, room=_ROOM, control=control), 0) == "ok"
    held = table.peer("valve-1").heartbeat
    room, held_control = held["room"], held["control"]
    later = dict(_ROOM, temp_dc=201, valve_pct=None, next_start_in_ms=600000, next_target_dc=210)
    assert table.receive(_packet("valve-1", 1, 2, room=later, control=dict(control, target_seq=4)), 500) == "ok"
    peer = table.peer("valve-1")
    assert peer.heartbeat is held and held["room"] is room and held["control"] is held_control
    assert held == minimal(node="valve-1", boot_id=1, seq=2, room=later, control=dict(control, target_seq=4))
    assert (peer.seq, peer.heard_ms) == (2, 500)
    # A section that is not sent this time: None in its place.
    assert table.receive(_packet("valve-1", 1, 3, room=later, control=None), 1000) == "ok"
    assert table.peer("valve-1").heartbeat is held
    assert held == minimal(node="valve-1", boot_id=1, seq=3, room=later)
    # Another key (a boiler section as well as the room): another dict; the one held before is left as it was.
    boiler = {"fsm": "OFF", "on": False, "hold": False, "cooldown": False, "setpoint_dc": 700}
    assert table.receive(_packet("valve-1", 1, 4, room=later, boiler=boiler), 1200) == "ok"
    assert table.peer("valve-1").heartbeat is not held and held["seq"] == 3
    assert table.peer("valve-1").heartbeat == minimal(node="valve-1", boot_id=1, seq=4, room=later, boiler=boiler)
    assert table.receive(_packet("valve-1", 2, 0, room=_ROOM), 1500) == "ok"  # a reboot too
    assert table.peer("valve-1").heartbeat == minimal(node="valve-1", boot_id=2, seq=0, room=_ROOM)


def test_the_table_keeps_what_the_peer_last_said(core: ModuleType) -> None:
    table = _table(core)
    changes = {"target_ma": 12000, "applied_ma": 10000, "digest": "beef", "circuit": "garage-2", "phases": "L3",
               "max_ma": 16000, "failsafe": True}
    assert table.receive(_packet("evse-1", 1, 1, **changes), 50) == "ok"
    peer = table.peer("evse-1")
    assert (peer.target_ma(), peer.applied_ma(), peer.digest()) == (12000, 10000, "beef")
    assert peer.heartbeat == minimal(node="evse-1", boot_id=1, seq=1, **changes)


@pytest.mark.parametrize(("packet", "reason"), [
    (_packet("evse-1", 1, 1, key=OTHER_KEY), "bad_tag"),  # forged: not signed with the group key
    (_packet("evse-1", 1, 1)[:-1], "bad_tag"),  # cut
    (_packet("evse-1", 1, 1, group="flat"), "wrong_group"),  # signed for another group
    (_packet("evse-0", 1, 1), "own"),  # our own node id: our broadcast echoed back, or replayed at us
    (b"", "truncated"),
])
def test_what_is_not_verified_never_enters_the_table(core: ModuleType, packet: bytes, reason: str) -> None:
    table = _table(core)
    assert table.receive(packet, 0) == reason
    assert table.nodes() == []
    assert table.counts == {reason: 1}


def test_only_members_are_admitted(core: ModuleType) -> None:
    table = _table(core, members=["evse-0", "evse-1", "evse-2"])
    assert table.receive(_packet("evse-1", 1, 1), 0) == "ok"
    assert table.receive(_packet("stranger", 1, 1), 0) == "not_member"
    assert table.nodes() == ["evse-1"]


def test_changing_members_keeps_the_replay_state_of_those_that_stay(core: ModuleType) -> None:
    table = _table(core, members=["evse-1", "evse-2"])
    table.receive(_packet("evse-1", 3, 10), 0)
    table.receive(_packet("evse-2", 3, 10), 0)
    table.set_members(["evse-0", "evse-1", "evse-3"])
    assert table.nodes() == ["evse-1"]
    assert table.receive(_packet("evse-1", 3, 9), 100) == "old_seq"  # still remembered
    assert table.receive(_packet("evse-2", 3, 11), 100) == "not_member"
    assert table.receive(_packet("evse-3", 1, 0), 100) == "ok"
    table.set_members(None)
    assert table.receive(_packet("evse-2", 3, 11), 100) == "ok"


def test_a_full_table_refuses_newcomers_and_never_evicts(core: ModuleType) -> None:
    table = _table(core, max_peers=2)
    assert table.receive(_packet("evse-1", 1, 1), 0) == "ok"
    assert table.receive(_packet("evse-2", 1, 1), 0) == "ok"
    # Long after both fell silent, a third is still refused: a silent peer may
    # still be drawing what it last reported.
    assert table.receive(_packet("evse-3", 1, 1), 3_600_000) == "table_full"
    assert table.nodes() == ["evse-1", "evse-2"]
    assert table.receive(_packet("evse-1", 1, 2), 3_600_000) == "ok"


def test_a_member_that_is_not_a_node_id_is_an_error(core: ModuleType) -> None:
    with pytest.raises(core.errors.FieldError, match=r"^members\[1\]: must be a node id$"):
        _table(core, members=["evse-1", 7])


def test_more_members_than_room_is_an_error(core: ModuleType) -> None:
    with pytest.raises(core.errors.FieldError, match=r"^members: 3 peers exceed max_peers 2$"):
        _table(core, members=["evse-0", "a", "b", "c"], max_peers=2)


@pytest.mark.parametrize(("now_ms", "online", "age_ms"), [
    (1000, True, 0),  # just heard
    (900, True, 0),  # a now_ms read just before the packet's time: fresh, not from the future
    (3999, True, 2999),  # one ms before the timeout
    (4000, False, 3000),  # at the timeout: offline (heard for less than peer_timeout_ms, no more)
    (60000, False, 59000),
])
def test_online_means_heard_within_the_timeout(core: ModuleType, now_ms: int, online: bool, age_ms: int) -> None:
    table = _table(core)
    table.receive(_packet("evse-1", 1, 1), 1000)
    assert table.online("evse-1", now_ms, TIMEOUT_MS) is online
    assert table.age_ms("evse-1", now_ms) == age_ms


def test_a_peer_never_heard_is_offline(core: ModuleType) -> None:
    table = _table(core)
    assert table.online("evse-9", 0, TIMEOUT_MS) is False
    assert table.age_ms("evse-9", 0) is None
    assert table.peer("evse-9") is None


def test_forget_accepts_a_node_whose_boot_counter_went_back(core: ModuleType) -> None:
    table = _table(core)
    table.receive(_packet("evse-1", 40, 7), 0)
    assert table.receive(_packet("evse-1", 1, 0), 100) == "old_boot"  # its flash was wiped
    table.forget("evse-1")
    assert table.receive(_packet("evse-1", 1, 0), 200) == "ok"
    assert table.peer("evse-1").reboots == 0


def test_restored_boot_ids_refuse_older_boots_after_this_node_reboots(core: ModuleType) -> None:
    before = _table(core)
    before.receive(_packet("evse-1", 8, 3), 0)
    before.receive(_packet("evse-2", 2, 3), 0)
    saved = before.boot_ids()
    assert saved == {"evse-1": 8, "evse-2": 2}
    after = _table(core)
    after.restore_boot_ids(saved)
    assert after.receive(_packet("evse-1", 7, 500), 0) == "old_boot"  # a replay from an older boot
    assert after.receive(_packet("evse-1", 8, 4), 0) == "ok"  # its current boot
    assert after.receive(_packet("evse-2", 3, 0), 0) == "ok"  # it rebooted meanwhile
    assert after.boot_ids() == {"evse-1": 8, "evse-2": 3}


def test_boot_changes_counts_what_boot_ids_would_persist_and_nothing_else(core: ModuleType) -> None:
    # The node writes its peers' boot ids when this moves (firmware peerboots.py): never per packet.
    table = _table(core)
    table.restore_boot_ids({"evse-1": 8, "evse-2": 2})
    assert table.boot_changes == 0
    assert table.receive(_packet("evse-1", 8, 4), 0) == "ok"  # back in the boot restored for it: no news
    assert table.receive(_packet("evse-1", 8, 5), 0) == "ok"
    assert table.receive(_packet("evse-1", 7, 9), 0) == "old_boot"
    assert table.boot_changes == 0
    assert table.receive(_packet("evse-2", 3, 0), 0) == "ok"  # rebooted while this node was down
    assert table.receive(_packet("evse-1", 9, 0), 0) == "ok"  # a reboot
    assert table.boot_changes == 2
    table.forget("evse-2")
    table.forget("evse-2")  # nothing left to forget
    assert table.boot_changes == 3
    assert table.boot_ids() == {"evse-1": 9}


def test_restore_boot_ids_checks_its_input(core: ModuleType) -> None:
    with pytest.raises(core.errors.FieldError, match=r"^boot_ids.evse-1: must be an integer 1..1073741823$"):
        _table(core).restore_boot_ids({"evse-1": 0})


# Every genuine packet two peers sent over three boots each; an attacker
# replays any of them in any order, any number of times.
_CAPTURED = [(node, boot_id, seq) for node in ("evse-1", "evse-2") for boot_id in (3, 4, 5) for seq in range(4)]


@given(st.lists(st.sampled_from(_CAPTURED), max_size=60))
def test_no_packet_is_accepted_twice_and_nothing_older_after_something_newer(
        core: ModuleType, arrivals: list[tuple[str, int, int]]) -> None:
    table = _table(core)
    newest: dict[str, tuple[int, int]] = {}
    for t_ms, (node, boot_id, seq) in enumerate(arrivals):
        reason = table.receive(_packet(node, boot_id, seq), t_ms)
        was = newest.get(node)
        assert (reason == "ok") == (was is None or (boot_id, seq) > was)
        if reason == "ok":
            newest[node] = (boot_id, seq)
    for node, (boot_id, seq) in newest.items():
        peer = table.peer(node)
        assert (peer.boot_id, peer.seq) == (boot_id, seq)
