"""loadmesh.companion.sim: the simulated site (scenario, plant, network hub, trace) around real MicroPython nodes."""
