"""Two successive lowering configs, each delivered to only some nodes: a case the mesh state machine found.

Config v2 (site 25 A x 80 %) reaches n0-n3 only; v3 (site 20 A, garage 8 A,
x 80 %) then reaches n4-n7, skipping v2. Once no node runs v1, the limit to
hold is v2's 20 A, and the two groups' transition caps come from different
configs. When those caps were each config's allocation with every member
asking, they were not monotone across configs (a member at 0 under one
config's scarcity held its minimum under the other's) and the nodes applied
22 A together. Transition shares now split each constraint on its own, in a
fixed order, by a rule that never gives less for more capacity
(groupconfig.transition_share_ma; docs/safety.md, "Config transitions").
"""

from __future__ import annotations

from types import ModuleType

from .test_controller_mesh import MeshMachine

SETUP = {'config': {'group': 'house',
                'version': 1,
                'updated_at': 1000,
                'origin': 'companion',
                'key_id': 'k1',
                'site': {'phases': 1, 'voltage_v': 230, 'limit_ma': 40000, 'safety_pct': 100},
                'circuits': [{'id': 'garage', 'parent': 'site', 'limit_ma': 25000}],
                'members': [{'id': 'n0',
                             'kind': 'relay',
                             'circuit': 'garage',
                             'phases': 'L1',
                             'priority': -1,
                             'min_ma': 2000,
                             'max_ma': 2000,
                             'step_ma': 1000},
                            {'id': 'n1',
                             'kind': 'evse',
                             'circuit': 'garage',
                             'phases': 'L1',
                             'priority': 1,
                             'min_ma': 6000,
                             'max_ma': 16000,
                             'step_ma': 100},
                            {'id': 'n2', 'kind': 'valve', 'circuit': 'site', 'phases': 'L1', 'priority': 1},
                            {'id': 'n3',
                             'kind': 'evse',
                             'circuit': 'site',
                             'phases': 'L1',
                             'priority': 1,
                             'min_ma': 6000,
                             'max_ma': 16000,
                             'step_ma': 100},
                            {'id': 'n4',
                             'kind': 'relay',
                             'circuit': 'garage',
                             'phases': 'L1',
                             'priority': 1,
                             'min_ma': 2000,
                             'max_ma': 2000,
                             'step_ma': 1000},
                            {'id': 'n5',
                             'kind': 'evse',
                             'circuit': 'garage',
                             'phases': 'L1',
                             'priority': 0,
                             'min_ma': 6000,
                             'max_ma': 32000,
                             'step_ma': 1000,
                             'failsafe_ma': 0},
                            {'id': 'n6',
                             'kind': 'evse',
                             'circuit': 'garage',
                             'phases': 'L1',
                             'priority': 1,
                             'min_ma': 6000,
                             'max_ma': 16000,
                             'step_ma': 1000},
                            {'id': 'n7',
                             'kind': 'evse',
                             'circuit': 'site',
                             'phases': 'L1',
                             'priority': 1,
                             'min_ma': 6000,
                             'max_ma': 16000,
                             'step_ma': 1000,
                             'failsafe_ma': 6000}],
                'heartbeat_ms': 500,
                'peer_timeout_ms': 3000,
                'wdt_ms': 1500,
                'ev_lag_ms': 0,
                'margin_ms': 1000,
                'antiflap_ms': 0,
                'ramp_ma': 3000,
                'failsafe': {'mode': 'disable', 'current_ma': 6000}},
     'lags': {'n0': 0, 'n1': 0, 'n2': 0, 'n3': 0, 'n4': 0, 'n5': 0, 'n6': 0, 'n7': 0},
     'car_max': {'n0': 10000,
                 'n1': 10000,
                 'n2': 10000,
                 'n3': 32000,
                 'n4': 32000,
                 'n5': 16000,
                 'n6': 10000,
                 'n7': 16000},
     'offsets': {'n0': 0, 'n1': 0, 'n2': 0, 'n3': 10, 'n4': 50, 'n5': 80, 'n6': 80, 'n7': 20},
     'seed': 988235}


def test_two_partly_delivered_lowering_configs_hold_the_widest_running_limit(core: ModuleType) -> None:
    machine = type("Machine", (MeshMachine,), {"core": core})()
    machine.start(setup=SETUP)
    machine.run(ms=706)
    machine.network(after=117, delay=0, dup=0, loss=60)
    machine.run(ms=210)
    machine.mode(after=8, mode='continuous', number=1, priority=None)
    machine.link(after=346, both=True, dst=7, src=1, up=False)
    machine.network(after=362, delay=50, dup=20, loss=10)
    machine.limit_change(after=276, first={0, 1, 2, 3}, garage_ma=30000, safety=80, site_ma=25000)
    machine.restart(after=476, number=7)
    machine.partition(after=322, side={0, 1})
    machine.slow_link(after=31, delay=300, dst=7, src=7)
    machine.limit_change(after=144, first=set(), garage_ma=8000, safety=80, site_ma=20000)
    machine.crash(after=212, number=2)
    machine.deliver_configs(after=265, some={2, 4, 5, 6, 7})
    mesh = machine.mesh
    assert mesh is not None
    # The case itself: v2 and v3 both enforced (v1 no longer), the limit to hold v2's 20 A (25 A x 80 %).
    enforced = {node_id: node.config["version"] for node_id, node in mesh.nodes.items() if node.alive}
    assert set(enforced.values()) == {2, 3}, enforced
    machine.run(ms=3000)  # every step checks the invariant (meshsim.Violation)
    assert mesh.check_capacities()["site:L1"] == 20000
    # Once the last config reaches everyone, the group agrees under it and converges.
    machine.heal_and_converge()
    assert {node.config["version"] for node in mesh.nodes.values()} == {3}
