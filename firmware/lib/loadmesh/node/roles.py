"""Roles: what a node's load is (an EVSE, a relay load, a valve, the boiler), plugged into the runtime's tick."""

import sys

from loadmesh.core.controller import Plan
from loadmesh.core.errors import FieldError, describe
from loadmesh.core.peers import PeerTable

from .hal import Hal

# The runtime owns the clock, the mesh, the controller and the HTTP API; a
# role owns what is particular to its load. Every tick the runtime calls, in
# this order:
#
#   inputs(hal, table, now_ms)          the controller's inputs: demand, idle,
#                                       draw_ma (the runtime adds the meter
#                                       on the meter node)
#   (controller.step)
#   apply(hal, out, table, now_ms)      drive the actuators from the
#                                       controller's output (out["applied_ma"]
#                                       is the limit in force from now on)
#   heartbeat(message, table, now_ms)   only when a heartbeat goes out: add
#                                       this role's section (the boiler node's
#                                       "heating") before it is signed
#
# and status() for GET /status. A role keeps its own state between ticks;
# replan(plan) hands it a new plan (a new config). The work of a tick runs in
# plain functions (not coroutines), so temporaries die with the call.
#
# The HTTP API's role settings go to the role between ticks (the server is an
# asyncio task of the same loop): heating() for GET /heating; for PUT
# /heating (valve and boiler nodes) the runtime calls check_heating(raw),
# which checks the whole file (FieldError: refused, nothing changed), keeps
# the body in the store, and only then calls use_heating(checked), in force
# from the next tick. load_sharing() and put_load_sharing(raw) are the
# boiler node's switch. Other roles refuse all of them.
#
# occasional names the modules the role needs only to read or check its
# settings (heatsettings, which imports every heating module, and those of the
# other heating role): on MicroPython the runtime drops them with its own
# occasional ones once they are used (runtime._forget), and they are imported
# again when needed. The role's module must not hold them between uses.
#
# A role must never raise the limit it drives above out["applied_ma"]: that
# is what the node tells its peers it enforces. An exception in any call is a
# failed tick: the runtime puts the HAL in its safe state and the watchdog
# resets the node. A first MemoryError before the controller's new state is
# kept is a skipped tick instead (runtime.Node, docs/firmware.md "A tick out
# of memory"): a role that keeps in inputs() a decision about an actuator
# drives that actuator there too, before anything else can fail (the
# boiler's relay), so that no kept state tells of a switch not made.


class Role:
    """A member that draws no managed current and drives nothing: every actuator stays in its safe state."""

    kind = "none"
    occasional: tuple[str, ...] = ()

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def replan(self, plan: Plan) -> None:
        """A new config is in force."""
        self.plan = plan

    def inputs(self, hal: Hal, table: PeerTable, now_ms: int) -> dict[str, object]:
        """The controller's inputs for this tick."""
        return {"demand": False, "idle": True}

    def apply(self, hal: Hal, out: dict[str, object], table: PeerTable, now_ms: int) -> None:
        """Drive the actuators from the controller's output."""

    def heartbeat(self, message: dict[str, object], table: PeerTable, now_ms: int) -> None:
        """Add this role's sections to a heartbeat about to be sent."""

    def status(self) -> dict[str, object]:
        """This role's part of GET /status."""
        return {}

    def heating(self) -> object:
        """GET /heating: the stored heating settings (valve and boiler nodes)."""
        raise FieldError("heating", "is for valve and boiler nodes; this node's kind is " + describe(self.kind))

    def check_heating(self, raw: object) -> object:
        """PUT /heating, first: raw (heating.json) checked, in the form use_heating() takes; FieldError if refused."""
        raise FieldError("heating", "is for valve and boiler nodes; this node's kind is " + describe(self.kind))

    def use_heating(self, checked: object) -> object:
        """PUT /heating, once the file is kept: run the settings check_heating() returned; the answer."""
        raise FieldError("heating", "is for valve and boiler nodes; this node's kind is " + describe(self.kind))

    def load_sharing(self) -> object:
        """GET /load_sharing: the boiler node's runtime switch."""
        raise FieldError("load_sharing", "is the boiler node's switch; this node's kind is " + describe(self.kind))

    def put_load_sharing(self, raw: object) -> object:
        """PUT /load_sharing: set and keep the switch; FieldError leaves it as it was."""
        raise FieldError("load_sharing", "is the boiler node's switch; this node's kind is " + describe(self.kind))


def open_role(plan: Plan, root: str = "") -> Role:
    """The role of this node's member kind in the plan's config (root: the node's file system, for its settings)."""
    kind = plan.me["kind"]
    if kind == "evse":
        from . import role_evse

        return role_evse.EvseRole(plan)
    if kind == "relay":
        from . import role_relay

        return role_relay.RelayRole(plan)
    # The heating roles read their settings (heating.json) from the node's file system.
    if kind == "valve":
        from . import role_valve

        return role_valve.ValveRole(plan, root)
    if kind == "boiler":
        from . import role_boiler

        return role_boiler.BoilerRole(plan, root)
    return Role(plan)


def forget(names: tuple[str, ...]) -> None:
    """Drop these modules (MicroPython): imported again when needed, they cost no heap meanwhile.

    Only modules nothing else holds (no `from module import name` kept) are freed by it."""
    if sys.implementation.name != "micropython":
        return  # CPython (virtual nodes in the simulator) shares its modules with the companion
    import loadmesh.core
    import loadmesh.node

    for name in names:
        if sys.modules.pop(name, None) is not None:
            package = loadmesh.core if name.startswith("loadmesh.core.") else loadmesh.node
            short = name.rsplit(".", 1)[1]
            if short in dir(package):
                delattr(package, short)
