"""Members a config removed: the node holds every raise while one may still draw (firmware code on CPython)."""

from __future__ import annotations

from pathlib import Path

from loadmesh.core.peers import PeerTable
from loadmesh.node import departed

PAD_MS = 6000  # peer_timeout + ev_lag + margin


def _heard(table: PeerTable, node: str, seq: int, now_ms: int, applied_ma: int, exposure_ma: int | None = None) -> None:
    message: dict[str, object] = {
        "node": node, "boot_id": 1, "seq": seq, "applied_ma": applied_ma, "target_ma": applied_ma,
        "control": {"target_seq": 0, "exposure_ma": applied_ma if exposure_ma is None else exposure_ma},
    }
    assert table.accept_decoded(message, now_ms) == "ok"


def _table(departed_ids: dict[str, list[int]]) -> PeerTable:
    listen = departed.listened(departed_ids, ["a", "b"], "a", 16)
    return PeerTable((b"", b""), "house", "a", listen)


def test_a_member_the_new_config_drops_is_tracked_and_one_it_has_again_is_not() -> None:
    gone: dict[str, list[int]] = {}
    departed.track(gone, ["a", "b", "c", "d"], ["a", "b"], "a", 1000, PAD_MS)
    assert gone == {"c": [1000, PAD_MS], "d": [1000, PAD_MS]}
    departed.track(gone, ["a", "b"], ["a", "b", "d"], "a", 2000, PAD_MS)  # d is back
    assert gone == {"c": [1000, PAD_MS]}
    assert departed.listened(gone, ["a", "b", "d"], "a", 16) == ["a", "b", "d", "c"]
    # A table with no room left listens to the members first.
    assert departed.listened(gone, ["a", "b", "d"], "a", 2) == ["a", "b", "d"]


def test_a_removed_member_heard_drawing_holds_until_it_is_silent_for_the_pad() -> None:
    gone = {"c": [1000, PAD_MS]}
    table = _table(gone)
    _heard(table, "c", 1, 3000, 10000)
    assert departed.holding(gone, table, 3000)
    assert departed.holding(gone, table, 3000 + PAD_MS - 1)
    assert not departed.holding(gone, table, 3000 + PAD_MS)
    assert gone == {}


def test_a_lowered_limit_still_followed_holds_until_its_exposure_ends() -> None:
    gone = {"c": [1000, PAD_MS]}
    table = _table(gone)
    _heard(table, "c", 1, 1500, 0, exposure_ma=10000)  # its pilot went to 0; its car may still draw 10 A
    assert departed.holding(gone, table, 1600)
    _heard(table, "c", 2, 3500, 0)  # the car has followed
    assert not departed.holding(gone, table, 3600)
    assert gone == {}


def test_a_removed_member_never_heard_holds_for_the_pad_from_the_switch() -> None:
    gone = {"c": [1000, PAD_MS], "d": [1000, 9000]}
    table = _table(gone)
    assert departed.holding(gone, table, 1000 + PAD_MS - 1)
    assert departed.holding(gone, table, 1000 + PAD_MS)  # d: the longer pad of its old config
    assert gone == {"d": [1000, 9000]}
    assert not departed.holding(gone, table, 1000 + 9000)
    assert gone == {}


def test_a_member_heard_long_before_the_switch_still_holds_for_the_pad_after_it() -> None:
    gone = {"c": [20000, PAD_MS]}
    table = _table(gone)
    _heard(table, "c", 1, 500, 16000)
    assert departed.holding(gone, table, 20000 + PAD_MS - 1)
    assert not departed.holding(gone, table, 20000 + PAD_MS)


def test_the_record_kept_across_a_reset_is_held_for_again_from_the_boot(tmp_path: Path) -> None:
    gone = {"c": [1000, PAD_MS], "d": [1500, 9000]}
    departed.save(str(tmp_path), gone)
    assert departed.record(gone) == {"c": PAD_MS, "d": 9000}
    # Booted at 40 ms into a config that has d again: only c is held for, from the boot.
    assert departed.restore(str(tmp_path), ["a", "b", "d"], "a", 40, 16) == {"c": [40, PAD_MS]}
    # At most what the peer table can listen to; never the node itself, nor values no wait can have.
    assert departed.restored({"c": 1, "d": 2, "e": 3}, ["a"], "a", 0, 2) == {"c": [0, 1], "d": [0, 2]}
    raw = {"a": 5000, "c": True, "d": -1, "e": "6 s", "f": 3600001, "g" * 17: 5000, "h": 3600000}
    assert departed.restored(raw, ["b"], "a", 0, 16) == {"h": [0, 3600000]}
    # Missing or damaged: nothing.
    assert departed.restore(str(tmp_path / "none"), ["a"], "a", 0, 16) == {}
    (tmp_path / departed.FILE).write_bytes(b"LM1 0000000000000000\n{\"c\":6000}")
    assert departed.restore(str(tmp_path), ["a"], "a", 0, 16) == {}


def test_a_node_named_again_holds_for_the_members_it_last_knew_for_the_longer_wait() -> None:
    from loadmesh.core import controller, groupconfig

    member = {"kind": "evse", "circuit": "site", "phases": "L1", "priority": 0, "min_ma": 6000, "max_ma": 16000,
              "step_ma": 1000}
    base = {"group": "house", "version": 2, "updated_at": 1000, "origin": "companion", "key_id": "k1",
            "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}, "circuits": [],
            "heartbeat_ms": 500, "peer_timeout_ms": 3000, "ev_lag_ms": 2000, "margin_ms": 1000,
            "failsafe": {"mode": "safe_current", "current_ma": 0}}
    # The config that left "a" out (a slower group: 4 + 5 + 1 s), and the one that names it again alone.
    left_by = groupconfig.parse(dict(base, members=[dict(member, id="b"), dict(member, id="c")],
                                     peer_timeout_ms=4000, ev_lag_ms=5000))
    alone = controller.prepare(groupconfig.parse(dict(base, version=3, members=[dict(member, id="a")])), "a")
    assert departed.rejoin_ids(left_by) == ["b", "c"]
    assert departed.rejoin_wait_ms(left_by, alone) == 10000  # its wait, not the new config's 6 s
    faster = groupconfig.parse(dict(left_by, peer_timeout_ms=1500, wdt_ms=1500, ev_lag_ms=0, margin_ms=0))
    assert departed.rejoin_wait_ms(faster, alone) == alone.silent_wait_ms == 6000
    gone: dict[str, list[int]] = {}
    departed.track(gone, departed.rejoin_ids(left_by), alone.ids, "a", 500, departed.rejoin_wait_ms(left_by, alone))
    assert gone == {"b": [500, 10000], "c": [500, 10000]}
