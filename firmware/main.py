# loadmesh node entry point: boot from the store and run the node (loadmesh.node.runtime,
# frozen into the firmware). boot.py has driven nothing, so every actuator is in its safe
# state until the runtime decides otherwise; the HAL it opens starts safe too.
from loadmesh.node import runtime

runtime.main()
