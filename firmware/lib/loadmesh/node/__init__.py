"""loadmesh.node: the node runtime on MicroPython (mesh, control loop, HAL)."""
