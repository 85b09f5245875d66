"""A config switch that fails half way (out of memory) halts the node safe; it boots into the config it kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadmesh.companion.sim import trace
from loadmesh.companion.sim.runner import Simulation
from loadmesh.core import configsync, pilot
from loadmesh.core.errors import FieldError

from .simsite import at_allocation, held_ms, last_before, run_until, samples, settled, simulation, three_evses

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

NODES = ("evse1", "evse2", "evse3")
# How long a raise past a hold must have held before the run ends: the hold's pad (peer_timeout + ev_lag +
# margin), so a raise the hold should have kept back, undone once a departed member is heard again or the holders
# fail safe, shows within it. Waited for (run_until), not run to a fixed end, which was a bound chosen with room.
RAISE_HELD_MS = 3000 + 2000 + 1000


def test_a_config_switch_that_fails_half_way_halts_the_node_and_it_boots_into_the_kept_config(
        tmp_path: Path, device_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The runtime's own code on CPython (virtual nodes), so that the failure can be put where a
    # node's heap would give out: in the role's replan, after the peer table took the new members.
    scenario = three_evses(60, [{"at_s": 50, "limit_ma": 24000}])
    with simulation(scenario, tmp_path, device_root, virtual=NODES) as sim:
        sim.run(2000)
        assert sim.virtual is not None
        lowered = sim.configs[1][1]
        node = sim.virtual.nodes["evse1"]

        def out_of_memory(*_args: object) -> None:
            raise MemoryError

        with sim.virtual.lock:
            assert node.mode == "running"  # type: ignore[attr-defined]
            monkeypatch.setattr(type(node.role), "replan", out_of_memory)  # type: ignore[attr-defined]
            with pytest.raises(MemoryError):
                node.put_config(configsync.seal(sim.pads, lowered))  # type: ignore[attr-defined]
            monkeypatch.undo()
            # Not running the old plan under the new config's name: halted, its outputs safe.
            assert node.mode == "halted"  # type: ignore[attr-defined]
            assert node.error == "config switch: MemoryError"  # type: ignore[attr-defined]
            assert node.hal.pilot_permille == pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]
            # Halted, it takes nothing more until the reset: a newer config is refused, and the
            # halt (mode and reason) stays what /status shows.
            newer = dict(lowered, version=int(lowered["version"]) + 1)  # type: ignore[call-overload]
            with pytest.raises(FieldError, match="the node halted"):
                node.put_config(configsync.seal(sim.pads, newer))  # type: ignore[attr-defined]
            assert node.mode == "halted"  # type: ignore[attr-defined]
            assert node.error == "config switch: MemoryError"  # type: ignore[attr-defined]
        sim.run(4500)
        assert sim.virtual.errors["evse1"] == "config switch: MemoryError"  # no more ticks
        # The watchdog's reset: it boots into the lowered config, which it kept.
        sim.restart("evse1")
        sim.run(7500)
        assert sim.virtual.mode("evse1") == "running"
        assert sim.virtual.nodes["evse1"].adopted["version"] == 2  # type: ignore[attr-defined]


def _next_version(sim: Simulation, members: list[dict[str, object]]) -> dict[str, object]:
    """The running config's next version, with these members."""
    return dict(sim.config, members=members, version=int(sim.config["version"]) + 1)  # type: ignore[call-overload]


def _members_without(sim: Simulation, node_id: str) -> list[dict[str, object]]:
    """The running config's members but node_id."""
    return [member for member in sim.config["members"] if member["id"] != node_id]  # type: ignore[union-attr]


def _push_next_version(sim: Simulation, node: object, members: list[dict[str, object]]) -> None:
    """PUT to node, while its car charges, the running config's next version with these members; adopted."""
    config = _next_version(sim, members)
    assert node.hal.pilot_permille != pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]
    answer = node.put_config(configsync.seal(sim.pads, config))  # type: ignore[attr-defined]
    assert answer["adopted"] is True


def test_a_config_that_changes_the_node_kind_leaves_no_old_actuator_driven(
        tmp_path: Path, device_root: Path) -> None:
    # evse1 charges, then a config makes it a relay load: its pilot must stop offering current at once
    # (the relay role never drives the pilot again), and the relay is the new role's to close.
    scenario = three_evses(60, [])
    with simulation(scenario, tmp_path, device_root, virtual=NODES) as sim:
        sim.run(3000)
        assert sim.virtual is not None
        node = sim.virtual.nodes["evse1"]
        members = [dict(member) for member in sim.config["members"]]  # type: ignore[union-attr]
        for member in members:
            if member["id"] == "evse1":
                member.update(kind="relay", min_ma=6000, max_ma=6000)
        with sim.virtual.lock:
            _push_next_version(sim, node, members)
            assert node.role.kind == "relay"  # type: ignore[attr-defined]
            assert node.hal.pilot_permille == pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]
        sim.run(5000)
        assert sim.virtual.mode("evse1") == "running"
        assert node.hal.pilot_permille == pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]


def test_a_node_a_config_leaves_out_stops_and_stays_stopped_across_a_reset(tmp_path: Path, device_root: Path) -> None:
    # Its peers stop counting what it draws once they run that config: it must not go on charging.
    scenario = three_evses(60, [])
    with simulation(scenario, tmp_path, device_root, virtual=NODES) as sim:
        sim.run(3000)
        assert sim.virtual is not None
        node = sim.virtual.nodes["evse3"]
        with sim.virtual.lock:
            _push_next_version(sim, node, _members_without(sim, "evse3"))
            assert node.mode == "left_out"  # type: ignore[attr-defined]
            assert node.error == "config version 2 has no member 'evse3': nothing driven"  # type: ignore[attr-defined]
            assert node.hal.pilot_permille == pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]
        sim.run(5000)
        assert node.hal.pilot_permille == pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]
        assert sim.virtual.mode("evse3") == "left_out"
        # A reset boots it into the config it kept, left out again, rather than back into the old one.
        sim.restart("evse3")
        sim.run(7000)
        rebooted = sim.virtual.nodes["evse3"]
        assert sim.virtual.mode("evse3") == "left_out"
        assert rebooted.adopted["version"] == 2  # type: ignore[attr-defined]
        assert rebooted.hal.pilot_permille == pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]


def _running_without_evse3(sim: Simulation) -> tuple[dict[str, object], bytes]:
    """After 3 s of sim: its virtual nodes, and the next config, without evse3, sealed."""
    sim.run(3000)
    assert sim.virtual is not None
    return sim.virtual.nodes, configsync.seal(sim.pads, _next_version(sim, _members_without(sim, "evse3")))


def _hold_ends_ms(nodes: dict[str, object], holders: tuple[str, ...], members: tuple[str, ...]) -> int:
    """The earliest time all holders may raise: each holds until it has not heard a member for its pad (from
    the hold's start or the member's last heartbeat, whichever is later: departed.holding), going by what it
    has heard so far; the trace's clock, which virtual nodes run on. Read under sim.virtual.lock."""
    ends = []
    for holder in holders:
        node = nodes[holder]
        for member in members:
            since_ms, pad_ms = node.departed[member]  # type: ignore[attr-defined]
            assert pad_ms == 3000 + 2000 + 1000, pad_ms  # peer_timeout + ev_lag + margin
            peer = node.table.peer(member)  # type: ignore[attr-defined]
            ends.append(max(since_ms, peer.heard_ms if peer is not None else since_ms) + pad_ms)
    return max(ends)


def test_a_removed_member_still_charging_holds_every_raise_until_it_is_gone(tmp_path: Path, device_root: Path) -> None:
    # evse3 is removed by a config that reaches only evse1 and evse2 (virtual nodes do not sync, so it
    # would run the old config for good). Before the hold, the two agreed under the new config and took
    # 16 A each while evse3's car still drew its share: 42 A on 32 A.
    scenario = three_evses(60, [])
    with simulation(scenario, tmp_path, device_root, virtual=NODES) as sim:
        nodes, sealed = _running_without_evse3(sim)
        with sim.virtual.lock:
            for node_id in ("evse1", "evse2"):
                assert nodes[node_id].put_config(sealed)["adopted"] is True  # type: ignore[attr-defined]
        switched_ms = sim.now_ms()
        sim.run(12000)
        held = last_before(samples(sim), sim.now_ms())
        with sim.virtual.lock:
            for node_id in ("evse1", "evse2"):
                node = nodes[node_id]
                assert (node.out["reason"], sorted(node.departed)) == ("hold", ["evse3"])  # type: ignore[attr-defined]
        assert held["evse3"]["draw_ma"] > 0  # type: ignore[operator]  # still charging, on the old config
        # Both reset (a watchdog, a brown-out) and boot into the new config: each holds for evse3 again,
        # from its boot (departed.json). Forgotten, they agreed without it and raised into its share.
        for node_id in ("evse1", "evse2"):
            sim.restart(node_id)
        sim.run(14000)
        with sim.virtual.lock:
            for node_id in ("evse1", "evse2"):
                node = nodes[node_id]
                assert node.adopted["version"] == 2  # type: ignore[attr-defined]
                assert (node.out["reason"], sorted(node.departed)) == ("hold", ["evse3"])  # type: ignore[attr-defined]
        # It gets the config, stops, and falls silent: once silent for peer_timeout + ev_lag + margin,
        # the two raise into its share. Silent from its last heartbeat, which each holder tells: its timing
        # is the machine's (a loaded one can hold a heartbeat back), not a fixed time before the PUT.
        with sim.virtual.lock:
            left_ms = sim.now_ms()
            assert nodes["evse3"].put_config(sealed)["adopted"] is True  # type: ignore[attr-defined]
            hold_ends_ms = _hold_ends_ms(nodes, ("evse1", "evse2"), ("evse3",))

        def shared(by_node: dict[str, dict[str, object]]) -> bool:
            return at_allocation(by_node, {"evse1": 16000, "evse2": 16000})

        run_until(sim, lambda found: held_ms(found, left_ms, shared) >= RAISE_HELD_MS, scenario.duration_ms)
        all_samples = samples(sim)
        raised = settled(all_samples, left_ms, shared)
        assert raised is not None
        assert held_ms(all_samples, left_ms, shared) >= RAISE_HELD_MS, raised
        assert raised >= hold_ends_ms, (raised, hold_ends_ms)  # not before it was silent that long
        assert nodes["evse1"].departed == {}  # type: ignore[attr-defined]
        assert switched_ms < left_ms
        violations = trace.violations(list(sim.records), scenario, field="draw_ma")  # type: ignore[arg-type]
        assert violations == []


def test_a_reset_right_after_the_config_is_written_still_holds_for_the_removed_member(
        tmp_path: Path, device_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Power lost in the moment after config.json is written and before the switch runs: both nodes boot
    # into the config without evse3, and must still hold for it (departed.json is written first). With
    # departed.json written at the switch only, they forgot evse3 and raised into its share while its car
    # still charged on the old config.
    scenario = three_evses(40, [])
    with simulation(scenario, tmp_path, device_root, virtual=NODES) as sim:
        nodes, sealed = _running_without_evse3(sim)

        def power_lost(*_args: object) -> None:
            raise KeyboardInterrupt  # not an error the node handles: nothing after the config's write runs

        with sim.virtual.lock:
            monkeypatch.setattr(type(nodes["evse1"]), "_use", power_lost)
            for node_id in ("evse1", "evse2"):
                with pytest.raises(KeyboardInterrupt):
                    nodes[node_id].put_config(sealed)  # type: ignore[attr-defined]
                assert nodes[node_id].departed == {}  # type: ignore[attr-defined]  # the switch never ran
            monkeypatch.undo()
        for node_id in ("evse1", "evse2"):
            sim.restart(node_id)
        sim.run(14000)
        held = last_before(samples(sim), sim.now_ms())
        assert held["evse3"]["draw_ma"] > 0  # type: ignore[operator]  # still charging, on the old config
        with sim.virtual.lock:
            for node_id in ("evse1", "evse2"):
                node = nodes[node_id]
                assert node.adopted["version"] == 2  # type: ignore[attr-defined]
                assert (node.out["reason"], sorted(node.departed)) == ("hold", ["evse3"])  # type: ignore[attr-defined]
        violations = trace.violations(list(sim.records), scenario, field="draw_ma")  # type: ignore[arg-type]
        assert violations == []


def test_a_left_out_node_named_again_restarts_into_the_config_at_0_a(tmp_path: Path, device_root: Path) -> None:
    # Rejoining within the boot would start from the limit kept before it left (6 A at once, unheard by
    # peers still on the config without it: 38 A on 32 A) and at sequence number 0 under a boot id its
    # peers saw (refused as replays). It restarts instead: a new boot id, and 0 A kept.
    scenario = three_evses(60, [])
    with simulation(scenario, tmp_path, device_root, virtual=NODES) as sim:
        sim.run(3000)
        assert sim.virtual is not None
        node = sim.virtual.nodes["evse3"]
        members = sim.config["members"]
        with sim.virtual.lock:
            _push_next_version(sim, node, _members_without(sim, "evse3"))
            assert node.mode == "left_out"  # type: ignore[attr-defined]
            boot_id = node.boot_id  # type: ignore[attr-defined]
            named_again = dict(sim.config, members=members, version=3)
            assert node.put_config(configsync.seal(sim.pads, named_again))["adopted"] is True  # type: ignore[attr-defined]
            assert node.mode == "halted"  # type: ignore[attr-defined]
            assert node.error == ("rejoin: config version 3 names this node again; "  # type: ignore[attr-defined]
                                  "the watchdog restarts it into that config")
            assert node.hal.pilot_permille == pilot.PILOT_OFF_PERMILLE  # type: ignore[attr-defined]
        sim.restart("evse3")
        with sim.virtual.lock:
            rebooted = sim.virtual.nodes["evse3"]
            assert rebooted.mode == "running"  # type: ignore[attr-defined]
            assert rebooted.adopted["version"] == 3  # type: ignore[attr-defined]
            assert rebooted.boot_id > boot_id  # type: ignore[attr-defined]
            assert rebooted.state["applied_ma"] == 0  # type: ignore[attr-defined]


def test_a_node_named_again_as_the_only_member_holds_for_the_members_it_knew_until_they_are_gone(
        tmp_path: Path, device_root: Path) -> None:
    # evse3 is left out by version 2 (evse1 and evse2 share the 32 A, 16 A each). Version 3 names evse3
    # alone, and reaches it first. It restarts into version 3 with nobody to agree with, while evse1
    # and evse2 still charge on version 2. Before it held for the members of the config that left it
    # out, it raised to its car's 16 A at once: 48 A on 32 A (found by the mesh state machine,
    # tests/test_controller_mesh_members.py). Now it holds at 0 A until they are gone.
    scenario = three_evses(60, [])
    with simulation(scenario, tmp_path, device_root, virtual=NODES) as sim:
        nodes, sealed = _running_without_evse3(sim)
        with sim.virtual.lock:
            for node_id in NODES:
                assert nodes[node_id].put_config(sealed)["adopted"] is True  # type: ignore[attr-defined]
            assert nodes["evse3"].mode == "left_out"  # type: ignore[attr-defined]
        sim.run(12000)
        shared = last_before(samples(sim), sim.now_ms())
        assert (shared["evse1"]["applied_ma"], shared["evse2"]["applied_ma"]) == (16000, 16000)
        alone = configsync.seal(sim.pads, dict(sim.config, members=[member for member in sim.config["members"]
                                                                     if member["id"] == "evse3"], version=3))
        with sim.virtual.lock:
            assert nodes["evse3"].put_config(alone)["adopted"] is True  # type: ignore[attr-defined]
            assert nodes["evse3"].mode == "halted"  # type: ignore[attr-defined]
        sim.restart("evse3")
        sim.run(22000)
        with sim.virtual.lock:
            rebooted = sim.virtual.nodes["evse3"]
            assert rebooted.adopted["version"] == 3  # type: ignore[attr-defined]
            assert (rebooted.out["reason"], sorted(rebooted.departed)) == ("hold", ["evse1", "evse2"])  # type: ignore[attr-defined]
            assert rebooted.state["applied_ma"] == 0  # type: ignore[attr-defined]
        # The two get version 3, stop and fall silent: once silent for peer_timeout + ev_lag + margin,
        # evse3 raises (silent from their last heartbeats, as above).
        with sim.virtual.lock:
            left_ms = sim.now_ms()
            for node_id in ("evse1", "evse2"):
                assert nodes[node_id].put_config(alone)["adopted"] is True  # type: ignore[attr-defined]
            hold_ends_ms = _hold_ends_ms(nodes, ("evse3",), ("evse1", "evse2"))

        def alone_at_16_a(by_node: dict[str, dict[str, object]]) -> bool:
            return at_allocation(by_node, {"evse3": 16000})

        run_until(sim, lambda found: held_ms(found, left_ms, alone_at_16_a) >= RAISE_HELD_MS, scenario.duration_ms)
        all_samples = samples(sim)
        raised = settled(all_samples, left_ms, alone_at_16_a)
        assert raised is not None
        assert held_ms(all_samples, left_ms, alone_at_16_a) >= RAISE_HELD_MS, raised
        assert raised >= hold_ends_ms, (raised, hold_ends_ms)  # not before they were silent that long
        violations = trace.violations(list(sim.records), scenario, field="draw_ma")  # type: ignore[arg-type]
        assert violations == []
