# loadmesh node entry point. The node runtime arrives with the firmware issue;
# until then the node does nothing, so every actuator stays in its safe state.
import loadmesh.node  # noqa: F401  (proves the staged tree imports)

print("loadmesh node: no runtime yet; actuators stay safe")
