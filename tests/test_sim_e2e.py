"""End to end: real node processes (the frozen single-precision image, 12K-word heap) on a simulated site.

Each test plays a short scenario of three EVSEs sharing 32 A through the
plant and the hub, and reads the trace. Expected allocations come from the
core's allocate() of the situation, not from the run. The only timing bounds
are the behaviour's own (failsafe within peer_timeout plus a tick), measured
on the trace's clock from when the simulator played the event (a loaded
machine can hold its run loop back), with room for a loaded machine.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from loadmesh.companion.sim import trace
from loadmesh.core import heartbeat

from .simsite import (
    FAILSAFE_MA,
    GROUP,
    SAMPLE_MS,
    TICK_MS,
    at_allocation,
    between,
    expected,
    field,
    last_before,
    played_ms,
    samples,
    settled,
    simulation,
    three_evses,
)

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

ALL = {"evse1": True, "evse2": True, "evse3": True}
# A loaded 2-core machine can hold a node's tick back a little: room for that on top of a bound.
SCHEDULING_MS = 400


def no_violations(sim_records: list[dict[str, object]], scenario: object, grace_ms: int = 0) -> None:
    """Σ applied and Σ drawn within every limit at every sample."""
    assert trace.violations(sim_records, scenario, grace_ms=grace_ms) == []  # type: ignore[arg-type]
    assert trace.violations(sim_records, scenario, field="draw_ma", grace_ms=grace_ms) == []  # type: ignore[arg-type]


def test_three_nodes_converge_on_the_allocation_and_rise_when_a_car_leaves(tmp_path: Path, device_root: Path) -> None:
    scenario = three_evses(14, [], plugs={"evse3": 2}, unplugs={"evse2": 9})
    with simulation(scenario, tmp_path, device_root) as sim:
        sim.run()
        found = samples(sim)
        records = list(sim.records)
    shared = expected(scenario, ALL)
    assert sorted(shared.values()) == [10000, 11000, 11000]  # 32 A three ways, on 1 A steps
    before_unplug = last_before(found, 9000)
    assert at_allocation(before_unplug, shared), field(before_unplug, "applied_ma")
    assert field(before_unplug, "failsafe") == {"evse1": False, "evse2": False, "evse3": False}
    rest = expected(scenario, {"evse1": True, "evse3": True})
    assert rest == {"evse1": 16000, "evse2": 0, "evse3": 16000}
    end = found[-1][1]
    assert at_allocation(end, rest), field(end, "applied_ma")
    assert end["evse1"]["draw_ma"] > before_unplug["evse1"]["draw_ma"]  # type: ignore[operator]
    no_violations(records, scenario)


def test_a_killed_node_is_reserved_then_failsafe_and_rejoins_safely(tmp_path: Path, device_root: Path) -> None:
    kill_ms, restart_ms = 6000, 18000
    scenario = three_evses(24, [{"at_s": kill_ms / 1000, "kill": "evse2"}, {"at_s": restart_ms / 1000,
                                                                               "restart": "evse2"}])
    with simulation(scenario, tmp_path, device_root) as sim:
        sim.run()
        found = samples(sim)
        records = list(sim.records)
    # The windows count from when the simulator killed and restarted evse2, not from the scenario's times:
    # a run loop held back by a loaded machine plays them late, and evse2 talks until it is killed.
    killed_ms, restarted_ms = played_ms(sim, "kill", "evse2"), played_ms(sim, "restart", "evse2")
    shared = expected(scenario, ALL)
    before = last_before(found, kill_ms)
    assert at_allocation(before, shared)
    last_applied = before["evse2"]["applied_ma"]
    assert isinstance(last_applied, int) and last_applied > FAILSAFE_MA
    timeout_ms = GROUP["peer_timeout_ms"]
    # Staged reservation (rule 4): heard at most a heartbeat before the kill, evse2 is reserved at its
    # last applied limit until timeout + EV lag + margin after that, then at its failsafe current.
    reserve_until_ms = killed_ms - GROUP["heartbeat_ms"] + timeout_ms + GROUP["ev_lag_ms"] + GROUP["margin_ms"]
    survivors = ("evse1", "evse3")
    # Each stage starts at the first tick after its time and is seen at the next sample, as the cut-off
    # bound below counts; the room for a loaded machine comes on top.
    seen_ms = TICK_MS + SAMPLE_MS + SCHEDULING_MS
    staged = [
        # (window, what evse2 is reserved at)
        ((killed_ms + timeout_ms + seen_ms, reserve_until_ms - SCHEDULING_MS), last_applied),
        ((killed_ms + timeout_ms + GROUP["ev_lag_ms"] + GROUP["margin_ms"] + seen_ms,
          restarted_ms - SCHEDULING_MS), FAILSAFE_MA),
    ]
    for (start_ms, end_ms), reserved in staged:
        wanted = expected(scenario, {"evse1": True, "evse3": True}, reserve_ma={"evse2": reserved})
        window = between(found, start_ms, end_ms)
        # Not vacuous: most of the window was sampled. A loaded machine can hold the sampler back for a few
        # samples (CI once saw 47 of 52), so this asks for half, not for every one.
        assert len(window) >= (end_ms - start_ms) // SAMPLE_MS // 2, (start_ms, end_ms, len(window))
        for t_ms, by_node in window:
            assert field(by_node, "target_ma", survivors) == {node: wanted[node] for node in survivors}, t_ms
            # Rule 3: while a member is silent the others hold at most their failsafe current.
            assert field(by_node, "failsafe", survivors) == {"evse1": True, "evse3": True}, t_ms
            assert all(by_node[node]["applied_ma"] <= FAILSAFE_MA for node in survivors), t_ms  # type: ignore[operator]
            # The killed node's pilot held its limit until its watchdog fired; then it is off.
            assert by_node["evse2"]["alive"] is False and by_node["evse2"]["applied_ma"] == 0, t_ms
    # Restarted, it boots in the safe state: at most its failsafe current, in failsafe, until it hears the group.
    first = next(by_node for t_ms, by_node in found if t_ms >= restarted_ms and by_node["evse2"]["alive"])
    assert first["evse2"]["applied_ma"] <= FAILSAFE_MA and first["evse2"]["failsafe"] is True  # type: ignore[operator]
    end = found[-1][1]
    assert at_allocation(end, shared), field(end, "applied_ma")
    assert field(end, "failsafe") == {"evse1": False, "evse2": False, "evse3": False}
    no_violations(records, scenario)


def test_a_node_cut_off_reaches_failsafe_within_the_timeout_and_the_limit_holds(tmp_path: Path,
                                                                                device_root: Path) -> None:
    cut_ms, heal_ms = 5000, 12000
    scenario = three_evses(18, [{"at_s": cut_ms / 1000, "isolate": "evse3"}, {"at_s": heal_ms / 1000,
                                                                               "heal": "evse3"}])
    with simulation(scenario, tmp_path, device_root) as sim:
        sim.run()
        found = samples(sim)
        records = list(sim.records)
    cut_off_ms, healed_ms = played_ms(sim, "isolate", "evse3"), played_ms(sim, "heal", "evse3")
    shared = expected(scenario, ALL)
    assert at_allocation(last_before(found, cut_ms), shared)
    # The last heartbeat it heard came at the cut at the latest (when the simulator cut it off, which a
    # loaded machine can hold back): failsafe at the first tick peer_timeout after that, seen at the next sample.
    bound_ms = cut_off_ms + GROUP["peer_timeout_ms"] + TICK_MS + SAMPLE_MS + SCHEDULING_MS
    reached = next(t_ms for t_ms, by_node in found if t_ms > cut_ms and by_node["evse3"]["failsafe"])
    assert reached <= bound_ms, reached - cut_off_ms
    for t_ms, by_node in between(found, reached, healed_ms):
        assert by_node["evse3"]["failsafe"] is True and by_node["evse3"]["applied_ma"] <= FAILSAFE_MA, t_ms  # type: ignore[operator]
    # The others do not hear it either: failsafe too, and never over the limit.
    others = next(t_ms for t_ms, by_node in found if t_ms > cut_ms and by_node["evse1"]["failsafe"])
    assert others <= bound_ms, others - cut_off_ms
    end = found[-1][1]
    assert at_allocation(end, shared), field(end, "applied_ma")
    no_violations(records, scenario)


def test_at_20_percent_packet_loss_no_violation_and_convergence_in_a_few_heartbeats(tmp_path: Path,
                                                                                    device_root: Path) -> None:
    unplug_ms = 12000
    scenario = three_evses(18, [{"at_s": 0, "loss_pct": 20}], plugs={"evse3": 3}, unplugs={"evse1": unplug_ms / 1000})
    with simulation(scenario, tmp_path, device_root, seed=20) as sim:
        sim.run()
        found = samples(sim)
        records = list(sim.records)
        lost = sim.hub.counts.lost if sim.hub is not None else 0
    assert lost > 0
    no_violations(records, scenario)
    shared = expected(scenario, ALL)
    # evse3 plugs in at 3 s: the others lower at once; it may take their share once their cars
    # have followed (ev_lag_ms), and then within a few heartbeats.
    plugged = settled(found, 3000, lambda by_node: at_allocation(by_node, shared), until_ms=unplug_ms)
    assert plugged is not None and plugged < unplug_ms
    start = _after_failsafe(found, 3000, plugged)
    assert plugged - start <= GROUP["ev_lag_ms"] + 6 * GROUP["heartbeat_ms"], (start, plugged)
    rest = expected(scenario, {"evse2": True, "evse3": True})
    left = settled(found, unplug_ms, lambda by_node: at_allocation(by_node, rest))
    assert left is not None
    # An unplugged car frees its share at once: six heartbeat periods, lossy ones, are plenty.
    start = _after_failsafe(found, unplug_ms, left)
    assert left - start <= 6 * GROUP["heartbeat_ms"], (start, left)


def _after_failsafe(found: list[tuple[int, dict[str, dict[str, object]]]], start_ms: int, end_ms: int) -> int:
    """start_ms, or the end of the last failsafe between start_ms and end_ms.

    At 20 % loss, peer_timeout_ms (six heartbeats) of a peer's packets all
    lost happens in about one run in a hundred: that is silence, and failsafe
    is the answer (rule 3). Convergence then counts from the failsafe's end,
    and the failsafe itself must not have broken the limit (checked above).
    """
    for t_ms, by_node in between(found, start_ms, end_ms):
        if any(record["failsafe"] for record in by_node.values()):
            start_ms = t_ms
    return start_ms


def test_forged_and_replayed_heartbeats_are_dropped_counted_and_change_nothing(tmp_path: Path,
                                                                               device_root: Path) -> None:
    tap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tap.bind(("127.0.0.1", 0))
    tap.settimeout(0.2)
    captured: list[bytes] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                captured.append(tap.recv(2048))
            except TimeoutError:
                continue
            except OSError:
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    attack_ms = 5000
    scenario = three_evses(10, [])
    sent: dict[str, int] = {}
    before: dict[str, dict[str, int]] = {}
    after: dict[str, dict[str, int]] = {}
    try:
        with simulation(scenario, tmp_path, device_root, extra_hub_ports={"~tap": tap.getsockname()[1]}) as sim:
            sim.run(attack_ms)
            assert sim.hub is not None
            before = {node: counts(sim, node) for node in sim.nodes}
            sent = attack(sim.hub.address, captured[:40], sim.scenario.node_ids())
            sim.run()
            after = {node: counts(sim, node) for node in sim.nodes}
            found = samples(sim)
            records = list(sim.records)
    finally:
        stop.set()
        tap.close()
        listener.join()
    for node in sorted(after):
        delta = {reason: after[node].get(reason, 0) - before[node].get(reason, 0) for reason in after[node]}
        assert delta.get("bad_tag", 0) == sent["bad_tag"], (node, delta)
        assert delta.get("bad_magic", 0) == sent["bad_magic"], (node, delta)
        assert delta.get("too_long", 0) == sent["too_long"], (node, delta)
        # A replay is older than what the node holds, or its own packet, or a repeat: never news.
        replayed = delta.get("old_seq", 0) + delta.get("duplicate", 0) + delta.get("own", 0)
        assert replayed == sent["replayed"], (node, delta)
    shared = expected(scenario, ALL)
    for t_ms, by_node in between(found, attack_ms - 1000, found[-1][0]):
        assert at_allocation(by_node, shared), t_ms
        assert field(by_node, "failsafe") == {"evse1": False, "evse2": False, "evse3": False}, t_ms
    no_violations(records, scenario)


def counts(sim: object, node: str) -> dict[str, int]:
    """A node's heartbeat counters (rejections by reason) from GET /status."""
    status = sim.status(node)  # type: ignore[attr-defined]
    assert status is not None
    result = status["counters"]["heartbeats"]
    assert isinstance(result, dict)
    return result


def attack(hub: tuple[str, int], captured: list[bytes], nodes: list[str]) -> dict[str, int]:
    """Send forged, garbled and replayed heartbeats to every node through the hub; how many of each."""
    wrong_key = heartbeat.prepare_key(bytes(range(200, 232)))
    forged = []
    for seq in range(10):
        # What a node would say to make the others give it everything, signed with the wrong key.
        message = {"group": "sim", "node": nodes[0], "boot_id": 1000, "seq": seq, "circuit": "site", "phases": "L1",
                   "mode": "continuous", "priority": -1000, "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
                   "target_ma": 0, "applied_ma": 0, "draw_ma": [0, None, None], "config_version": 1,
                   "config_hash": "0011223344556677", "digest": "0011223344556677", "demand": False,
                   "active": False, "failsafe": False, "meter": None, "heating": None}
        forged.append(heartbeat.encode(wrong_key, message))
    flipped = []
    for packet in captured[-5:]:
        changed = bytearray(packet)
        changed[len(changed) // 2] ^= 0x01  # one bit of a genuine heartbeat
        flipped.append(bytes(changed))
    garbage = [b"XX" + os.urandom(60) for _ in range(8)]
    too_long = [b"LM\x01" + os.urandom(600) for _ in range(4)]
    replays = captured[:30]
    assert len(replays) == 30
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for packet in forged + flipped + garbage + too_long + replays:
            sender.sendto(packet, hub)
    return {"bad_tag": len(forged) + len(flipped), "bad_magic": len(garbage), "too_long": len(too_long),
            "replayed": len(replays)}
