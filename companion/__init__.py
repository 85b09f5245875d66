"""loadmesh.companion: the CPython service and the loadmesh command line."""
