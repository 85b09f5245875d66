"""The EVSE role: demand from the control pilot (IEC 61851), the limit out on the pilot's duty."""

from loadmesh.core.controller import Plan
from loadmesh.core.peers import PeerTable

from .hal import Hal
from .role_load import CurrentChannels
from .roles import Role

# The pilot state says what the car does (docs/safety.md, "exposure"):
#   A        no car: no demand, and idle (it draws nothing and starts from
#            the pilot it sees when plugged in, so the node's exposure goes)
#   B        a car, not drawing: it asks for current (a car waits in B for the
#            pilot to offer some), but it is not idle: a car in B may be about
#            to follow a pilot it saw a moment ago (the simulator's cars, and
#            real ones, switch to C within their lag), so the exposure stays
#   C, D     charging (D: with ventilation)
#   E, F, "" an error, or no reading: no demand, not idle (keep the exposure)
# Idle only in A is more cautious than docs/safety.md allows (A or B): a freed
# share is taken up after the car's lag rather than at once, unless unplugged.
# And only once A has been read IDLE_TICKS ticks in a row: idle drops the
# exposure at once, and a single misread of the CP (a glitch while the car
# charges) must not tell the peers the car draws nothing.

_ASKING = "BCD"
IDLE_TICKS = 3


class EvseRole(Role):
    """An EV charger: the pilot signals the applied limit; demand while a car is connected."""

    kind = "evse"

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        self.channels = CurrentChannels()
        self.pilot_state = ""
        self.duty_permille = 1000
        self.a_ticks = 0  # ticks in a row the pilot read A

    def inputs(self, hal: Hal, table: PeerTable, now_ms: int) -> dict[str, object]:
        state = hal.pilot_state()
        self.pilot_state = state
        demand = len(state) == 1 and state in _ASKING
        if state != "A":
            self.a_ticks = 0
        elif self.a_ticks < IDLE_TICKS:
            self.a_ticks += 1
        return {"demand": demand, "idle": self.a_ticks >= IDLE_TICKS, "draw_ma": self.channels.read(hal, now_ms)}

    def apply(self, hal: Hal, out: dict[str, object], table: PeerTable, now_ms: int) -> None:
        applied_ma = out["applied_ma"]
        assert isinstance(applied_ma, int)
        self.duty_permille = hal.set_pilot_ma(applied_ma)

    def status(self) -> dict[str, object]:
        return {"pilot_state": self.pilot_state, "duty_permille": self.duty_permille,
                "draw_ma": self.channels.last, "rejected": self.channels.rejected()}

