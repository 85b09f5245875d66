"""A few controllers on a hand-driven network, for tests that script every packet."""

from __future__ import annotations

from types import ModuleType
from typing import Any

KEY = bytes(range(32))


def config(members: list[dict[str, Any]], limit_ma: int = 32000, **changes: Any) -> dict[str, Any]:
    """A group config with sensible test defaults: no EV lag, no anti-flap guard, failsafe off."""
    raw: dict[str, Any] = {
        "group": "house", "version": 1, "updated_at": 1000, "origin": "companion", "key_id": "k1",
        "site": {"phases": 1, "voltage_v": 230, "limit_ma": limit_ma, "safety_pct": 100},
        "members": members, "ev_lag_ms": 0, "antiflap_ms": 0,
        "failsafe": {"mode": "disable", "current_ma": 0},
    }
    raw.update(changes)
    return raw


def evse(node_id: str, **changes: Any) -> dict[str, Any]:
    member = {"id": node_id, "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 32000, "step_ma": 1000}
    member.update(changes)
    return member


class Node:
    """One controller: its plan, state and peer table, and the heartbeats it sent (its outbox)."""

    def __init__(self, core: ModuleType, parsed: dict[str, Any], node_id: str, boot_id: int = 1,
                 now_ms: int = 0, last_applied_ma: int = 0, last_exposure_ma: int = 0) -> None:
        self.core = core
        self.id = node_id
        self.pads = core.heartbeat.prepare_key(KEY)
        self.plan = core.controller.prepare(parsed, node_id)
        self.table = core.peers.PeerTable(self.pads, parsed["group"], node_id, self.plan.ids)
        self.state = core.controller.boot(self.plan, boot_id, now_ms, last_applied_ma, last_exposure_ma)
        self.inputs: dict[str, Any] = {"demand": False}
        self.out: dict[str, Any] = {}
        self.outbox: list[bytes] = []

    def tick(self, now_ms: int, **inputs: Any) -> dict[str, Any]:
        self.inputs.update(inputs)
        self.out, self.state = self.core.controller.step(self.plan, self.state, self.inputs, self.table, now_ms)
        message = self.out["heartbeat"]
        if message is not None:
            self.outbox.append(self.core.heartbeat.encode(self.pads, message))
        return self.out

    @property
    def applied(self) -> int:
        value: int = self.state["applied_ma"]
        return value

    def hear(self, packet: bytes, now_ms: int) -> str:
        reason: str = self.table.receive(packet, now_ms)
        return reason


class Net:
    """Nodes ticking together every 100 ms; packets move only when deliver() says so."""

    def __init__(self, core: ModuleType, raw: dict[str, Any]) -> None:
        self.core = core
        self.config = core.groupconfig.parse(raw)
        self.nodes = {member["id"]: Node(core, self.config, member["id"]) for member in self.config["members"]}
        self.now_ms = 0

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def tick(self, *only: str) -> None:
        """One tick of the named nodes (all by default), then the clock moves 100 ms."""
        for node_id in only or tuple(self.nodes):
            self.nodes[node_id].tick(self.now_ms)
        self.now_ms += 100

    def deliver(self, src: str, dst: str | None = None, which: int = -1) -> None:
        """Deliver src's heartbeat (the last by default) to dst (every other node by default)."""
        packet = self.nodes[src].outbox[which]
        for node_id, node in self.nodes.items():
            if node_id != src and (dst is None or node_id == dst):
                node.hear(packet, self.now_ms)

    def run(self, ms: int, deliver: bool = True) -> None:
        """Tick every node for ms, delivering every new heartbeat to everyone at once."""
        end = self.now_ms + ms
        while self.now_ms < end:
            sent = {node_id: len(node.outbox) for node_id, node in self.nodes.items()}
            for node in self.nodes.values():
                node.tick(self.now_ms)
            if deliver:
                for node_id, node in self.nodes.items():
                    for packet in node.outbox[sent[node_id]:]:
                        for other_id, other in self.nodes.items():
                            if other_id != node_id:
                                other.hear(packet, self.now_ms)
            self.now_ms += 100

    def applied(self) -> dict[str, int]:
        return {node_id: node.applied for node_id, node in self.nodes.items()}
