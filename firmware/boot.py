# loadmesh node: runs first at power-up. Nothing is driven here: every actuator
# stays at its hardware default (no pilot, relays open) until main.py starts
# the node, which boots in its safe state.
