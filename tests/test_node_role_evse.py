"""The EVSE role's reading of the control pilot (firmware code on CPython, as virtual nodes run it)."""

from __future__ import annotations

from loadmesh.core import controller, groupconfig
from loadmesh.node.hal import Hal
from loadmesh.node.role_evse import IDLE_TICKS, EvseRole

CONFIG = groupconfig.parse({
    "group": "home", "version": 1, "updated_at": 1, "origin": "test", "key_id": "k1",
    "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100},
    "members": [{"id": "evse1", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 32000, "step_ma": 1000}]})


class PilotHal(Hal):
    def __init__(self) -> None:
        super().__init__()
        self.state = "C"

    def pilot_state(self) -> str:
        return self.state


def test_a_single_misread_of_no_car_keeps_the_exposure() -> None:
    # Idle drops the node's exposure at once, so it waits for A to be read IDLE_TICKS ticks in a row:
    # a glitch while the car charges must not tell the peers the car draws nothing.
    role = EvseRole(controller.prepare(CONFIG, "evse1"))
    hal = PilotHal()
    readings = ["C", "A", "C", "A", "A", "C"] + ["A"] * (IDLE_TICKS + 2)
    idle = []
    demand = []
    for tick, state in enumerate(readings):
        hal.state = state
        inputs = role.inputs(hal, None, tick * 100)  # type: ignore[arg-type]
        idle.append(inputs["idle"])
        demand.append(inputs["demand"])
    assert idle == [False] * (6 + IDLE_TICKS - 1) + [True] * 3
    # Demand follows the reading at once: a lower target is always safe.
    assert demand == [state == "C" for state in readings]
