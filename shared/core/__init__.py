"""loadmesh.core: allocation, tiers, failsafe and config; pure and deterministic."""
