"""The node runtime keeps the controller's state and outputs of each tick in the dicts of the tick before."""

from __future__ import annotations

import gc
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from loadmesh.companion.sim.runner import free_port
from loadmesh.core import groupconfig
from loadmesh.node import runtime
from loadmesh.node.runtime import TICK_MS
from loadmesh.node.store import Store

KEY = bytes(range(40, 72))


class _Clock:
    """The node's clock, moved by the test."""

    def __init__(self) -> None:
        self.ms = 0

    def now_ms(self) -> int:
        return self.ms


def write_store(root: Path, members: tuple[str, ...] = ("a", "b"), files: dict[str, object] | None = None) -> Store:
    """The store of node a, adopted, in a group of EV chargers (members) on loopback; files added to it."""
    store = Store(str(root))
    store.write_key(KEY)
    store.raise_boot_floor(0)
    store.write_json("config.json", groupconfig.parse({
        "group": "home", "version": 1, "updated_at": 1, "origin": "test", "key_id": "k1",
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100},
        "members": [{"id": node, "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}
                    for node in members]}))
    store.write_json("node.json", {"id": "a", "mesh_port": free_port(socket.SOCK_DGRAM), "mesh_host": "127.0.0.1",
                                   "mesh_dest_port": free_port(socket.SOCK_DGRAM), "bind_host": "127.0.0.1"})
    for name, content in (files or {}).items():
        store.write_json(name, content)
    return store


def _node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, members: tuple[str, ...] = ("a", "b"),
          files: dict[str, object] | None = None) -> tuple[runtime.Node, _Clock, Store]:
    """Node a of write_store(), running on CPython, no HAL."""
    store = write_store(tmp_path, members, files)
    # /status reports MicroPython's heap, which CPython's gc does not have.
    monkeypatch.setattr(gc, "mem_alloc", lambda: 0, raising=False)
    monkeypatch.setattr(gc, "mem_free", lambda: 0, raising=False)
    clock = _Clock()
    node = runtime.Node(str(tmp_path), clock=clock)
    assert node.mode == "running", node.error
    assert node.mesh is not None
    return node, clock, store


def test_a_tick_s_state_and_outputs_go_into_the_dicts_of_the_tick_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Memory on a node's heap (docs/heating.md, "8 rooms"): the dicts the node keeps from tick to tick stay where
    # they are, not two new ones kept every tick wherever the tick found room; what is read is the last tick's.
    node, clock, _ = _node(tmp_path, monkeypatch)
    assert node.mesh is not None
    try:
        node.tick()
        state, out = node.state, node.out
        assert state is not None and out is not None
        seq = state["seq"]
        for _ in range(20):  # 2 s: heartbeats sent, b silent long enough to be named so
            clock.ms += TICK_MS
            node.tick()
        assert node.state is state and node.out is out
        assert isinstance(state["seq"], int) and isinstance(seq, int) and state["seq"] > seq
        assert (out["heartbeat"], out["silent"]) == (None, ["b"])
        assert node.status()["counters"]["mesh"]["sent"] == state["seq"]  # type: ignore[index]
    finally:
        node.mesh.close()


def test_a_tick_out_of_memory_while_a_removed_member_is_let_go_lets_it_go_at_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A tick that runs out of memory is skipped and the node runs on (docs/firmware.md, "A tick out of memory"). The
    # tick that finds a removed member gone drops it from the node's list, then tells the peer table and the file; out
    # of memory in between, the next tick must still do both, though the list is already short (before, it did them
    # only when its own tick shortened the list: the table listened to the member and the file named it for good).
    from loadmesh.node import departed

    # c, removed by an earlier config, held for 1 s from the boot
    node, clock, store = _node(tmp_path, monkeypatch, files={departed.FILE: {"c": 1000}})
    assert node.mesh is not None and node.table is not None
    try:
        node.tick()
        assert node.departed == {"c": [0, 1000]} and node.table.peer("c") is None
        assert "c" in node.table._members  # type: ignore[operator]  # listened to while held for
        clock.ms = 1000  # c's wait is over
        save = departed.save

        def out_of_memory(root: str, removed: dict[str, list[int]]) -> None:
            raise MemoryError

        monkeypatch.setattr(departed, "save", out_of_memory)
        with pytest.raises(MemoryError):
            node.tick()
        assert node.departed == {}  # dropped before the write failed
        assert store.read_json(departed.FILE) == {"c": 1000}
        monkeypatch.setattr(departed, "save", save)
        clock.ms += TICK_MS
        node.tick()
        assert store.read_json(departed.FILE) == {}
        assert "c" not in node.table._members  # type: ignore[operator]
        assert node.status()["departed"] == []
    finally:
        node.mesh.close()


def test_a_node_that_halts_out_of_memory_makes_its_outputs_safe_before_it_words_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two ticks in a row out of memory halt the node. The error's words (the exception as text) need the heap too:
    # before, they were made first, and a MemoryError there left the outputs where the last tick drove them and
    # raised out of the control loop.
    from loadmesh.core import controller
    from loadmesh.node import hal

    node, clock, _ = _node(tmp_path, monkeypatch, members=("a",))
    assert node.mesh is not None
    # The control loop's own timing reads MicroPython's tick counter, which CPython's time has not.
    monkeypatch.setattr(runtime, "time", SimpleNamespace(ticks_ms=lambda: clock.ms, ticks_diff=lambda a, b: a - b))
    made_safe: list[int] = []
    monkeypatch.setattr(node.hal, "safe", lambda: made_safe.append(clock.ms))

    def out_of_memory(*args: object) -> object:
        raise MemoryError

    try:
        assert node.tick_and_collect()
        monkeypatch.setattr(controller, "step", out_of_memory)
        monkeypatch.setattr(hal, "exception_words", out_of_memory)
        clock.ms += TICK_MS
        assert node.tick_and_collect()  # the first: skipped
        assert made_safe == []
        clock.ms += TICK_MS
        assert not node.tick_and_collect()  # the second: halted
        assert made_safe == [clock.ms]
        assert (node.mode, node.error) == ("halted", "halted out of memory")
    finally:
        node.mesh.close()
