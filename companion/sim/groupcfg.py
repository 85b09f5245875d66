"""The group config a simulated site runs: built from its scenario, and a new version per limit change."""

from __future__ import annotations

from loadmesh.core import groupconfig
from loadmesh.core.errors import FieldError

from .scenario import Event, Scenario

GROUP = "sim"
ORIGIN = "sim"


def raw_config(scenario: Scenario, version: int = 1, site: dict[str, object] | None = None,
               circuits: list[dict[str, object]] | None = None) -> dict[str, object]:
    """The config (unchecked) of the scenario's site, circuits and nodes, and its `group` settings."""
    site_cfg = dict(scenario.site if site is None else site)
    if scenario.meter is not None:
        site_cfg["meter_node"] = scenario.meter.node
    members = []
    for node in scenario.nodes:
        member: dict[str, object] = {"id": node.id, "kind": node.kind}
        for key, value in sorted(node.load.items()):
            if key != "id":
                member[key] = value
        members.append(member)
    raw: dict[str, object] = {
        "group": GROUP, "version": version, "updated_at": version, "origin": ORIGIN, "key_id": GROUP,
        "site": site_cfg, "circuits": [dict(c) for c in (scenario.circuits if circuits is None else circuits)],
        "members": members,
    }
    for key, value in sorted(scenario.group.items()):
        raw[key] = value
    return raw


def configs(scenario: Scenario) -> list[tuple[int, dict[str, object]]]:
    """(at_ms, parsed config) for the start (at 0) and each limit_ma event; FieldError names what is wrong."""
    site = dict(scenario.site)
    circuits = [dict(c) for c in scenario.circuits]
    try:
        out = [(0, groupconfig.parse(raw_config(scenario, 1, site, circuits)))]
    except FieldError as exc:
        # The group config names its own fields; those the scenario's `group`
        # section gave are found there, not at the scenario's top.
        if _root(exc.field) in scenario.group:
            raise FieldError("group." + exc.field, exc.problem) from None
        raise
    for event in scenario.events:
        if event.action != "limit_ma":
            continue
        _apply(event, site, circuits)
        try:
            out.append((event.at_ms, groupconfig.parse(raw_config(scenario, len(out) + 1, site, circuits))))
        except FieldError as exc:  # the start's config passed: this event's limit is what the group refuses
            raise FieldError("events", f"the limit_ma at {event.at_ms / 1000:g} s makes a config the group "
                                       f"refuses: {exc}") from None
    return out


def _root(field: str) -> str:
    """The top-level key of a field path: "failsafe" of "failsafe.current_ma", "circuits" of "circuits[0].id"."""
    for end, char in enumerate(field):
        if char in ".[":
            return field[:end]
    return field


def _apply(event: Event, site: dict[str, object], circuits: list[dict[str, object]]) -> None:
    assert isinstance(event.value, list)
    if event.circuit is None:
        site["limit_ma"] = list(event.value)
        return
    for circuit in circuits:
        if circuit["id"] == event.circuit:
            circuit["limit_ma"] = list(event.value)
