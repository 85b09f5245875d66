"""The relay role: a load switched whole by a relay or contactor (a heat pump, a water heater)."""

from loadmesh.core.controller import Plan
from loadmesh.core.peers import PeerTable

from .hal import Hal
from .role_load import CurrentChannels
from .roles import Role

# A relay load has min_ma = max_ma (groupconfig refuses anything else): the
# controller gives it all or nothing, and the relay closes only for a limit
# of at least that. It asks for current whenever it may run (its mode, from
# the config, says when); a relay opens at once, so it is never idle and has
# no lag (the controller gives it no exposure).


class RelayRole(Role):
    """A switched load: the relay closed while the applied limit covers the whole load."""

    kind = "relay"

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        self.channels = CurrentChannels()
        self.closed = False

    def inputs(self, hal: Hal, table: PeerTable, now_ms: int) -> dict[str, object]:
        return {"demand": True, "draw_ma": self.channels.read(hal, now_ms)}

    def apply(self, hal: Hal, out: dict[str, object], table: PeerTable, now_ms: int) -> None:
        applied_ma = out["applied_ma"]
        assert isinstance(applied_ma, int)
        self.closed = applied_ma > 0 and applied_ma >= self.plan.min_ma
        hal.set_relay(self.closed)

    def status(self) -> dict[str, object]:
        return {"relay": self.closed, "draw_ma": self.channels.last, "rejected": self.channels.rejected()}
