# Node side of tests/test_node_heating_roles.py: the boiler role keeps a cooldown across a reboot in cooldown.json
# (written, read back, taken at the first tick), on each interpreter.
#   cooldown_kept_check.py ROOT CONFIG_FILE   (ROOT holds the boiler node's heating.json; CONFIG_FILE the group
#   config). Prints one JSON line per step: the role's cooldown, its setpoint, when its cooldown began, the file and
#   what the role's boot read of it (ok, missing, corrupt).
import json
import sys

from loadmesh.core import controller, groupconfig, heartbeat
from loadmesh.core.peers import PeerTable
from loadmesh.node.hal import Hal
from loadmesh.node.role_boiler import BoilerRole
from loadmesh.node.store import Store


class WaterHal(Hal):
    def __init__(self):
        super().__init__()
        self.water = {"flow": 720, "return": 600}

    def temperature_dc(self, name):
        return self.water.get(name)

    def flame(self):
        return False


root = sys.argv[1]
with open(sys.argv[2]) as source:
    plan = controller.prepare(groupconfig.parse(json.load(source)), "boiler")
table = PeerTable(heartbeat.prepare_key(bytes(32)), plan.group, "boiler", plan.ids)
hal = WaterHal()


def tick(role, now_ms, step):
    role.inputs(hal, table, now_ms)
    role.apply(hal, {}, table, now_ms)
    state = role.boiler_state
    print(json.dumps({"step": step, "cooldown": role.cooldown, "setpoint_dc": hal.flow_setpoint_dc,
                      "cooldown_at_ms": state["cooldown_at_ms"], "last_cooldown_ms": state["last_cooldown_ms"],
                      "file": Store(root).read_json("cooldown.json"), "read": role.kept[3]}))


role = BoilerRole(plan, root)
tick(role, 1000, "first boot")
# A cooldown begins (the flame went out on hot water: as boiler.step records it).
role.boiler_state = dict(role.boiler_state, cooldown=True, cooldown_at_ms=1000, last_cooldown_ms=1000)
tick(role, 1100, "cooling")
role = BoilerRole(plan, root)
tick(role, 50, "rebooted cooling")
hal.water = {"flow": 400, "return": 350}
tick(role, 150, "cooled")
role = BoilerRole(plan, root)
tick(role, 70, "rebooted recent")
with open(root + "/cooldown.json", "wb") as damaged:
    damaged.write(b"LM1 0000000000000000\n{}")
role = BoilerRole(plan, root)
hal.water = {"flow": 720, "return": 600}
tick(role, 90, "rebooted damaged")
# The first tick wrote the file whole again (a cooldown in progress, what the node then held): the next boot reads it.
role = BoilerRole(plan, root)
tick(role, 30, "rebooted after the damage")
