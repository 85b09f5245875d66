"""Members a config removed: the node holds every raise while one may still draw (firmware code on CPython)."""

from __future__ import annotations

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
