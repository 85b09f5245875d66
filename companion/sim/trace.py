"""The simulator's trace: one JSON line per node per sample, its checks, and the demo's table.

Each line (keys sorted, no spaces) holds at least the DESIGN contract's
fields: t_ms (since the scenario started), node, applied_ma (what the node
enforces: its own report while its commands are in force, 0 once its
watchdog has put it in its boot state), target_ma, draw_ma (what its load
draws, from the plant), failsafe, mem_alloc (bytes in use after the node's
last collection; null when unknown or dead), and for heating valve_pct
(a valve node's command in force) and boiler_on (the boiler node's call for
heat in force). The plant adds alive,
pilot_ma (the current the pilot signals), peers (heard within the timeout),
state (an EVSE's pilot state), flame (the boiler's burner) and setpoint_dc
(the flow setpoint the boiler node drives; null when it drives none).

Every node is sampled at the same t_ms, so a sum over nodes at one t_ms is a
sum at one instant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loadmesh.core import site as core_site
from loadmesh.core.errors import describe

from .scenario import Scenario

REQUIRED = ("t_ms", "node", "applied_ma", "target_ma", "draw_ma", "failsafe", "mem_alloc")
_INTS = ("t_ms", "applied_ma", "target_ma", "draw_ma")


class TraceError(ValueError):
    """A record that does not meet the trace contract."""


def check_record(record: dict[str, object]) -> None:
    """Raise TraceError if record lacks a contract field or has one of the wrong type."""
    for key in REQUIRED:
        if key not in record:
            raise TraceError("trace record for " + describe(record.get("node")) + " has no " + key)
    for key in _INTS:
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise TraceError(key + ": " + describe(value) + " is not an integer")
    if not isinstance(record["node"], str):
        raise TraceError("node: " + describe(record["node"]) + " is not a node id")
    if not isinstance(record["failsafe"], bool):
        raise TraceError("failsafe: " + describe(record["failsafe"]) + " is not true or false")
    mem = record["mem_alloc"]
    if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int)):
        raise TraceError("mem_alloc: " + describe(mem) + " is not an integer or null")


class TraceWriter:
    """Writes checked records as JSON lines to a file (or any text stream)."""

    def __init__(self, out: Path | IO[str]) -> None:
        if isinstance(out, Path):
            self._stream: IO[str] = out.open("w", encoding="utf-8")
            self._owned = True
        else:
            self._stream = out
            self._owned = False
        self.lines = 0

    def write(self, records: list[dict[str, object]]) -> None:
        """Write one sample's records (one per node)."""
        for record in records:
            check_record(record)
            self._stream.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
            self.lines += 1
        self._stream.flush()

    def close(self) -> None:
        """Close the file (a stream passed in stays open)."""
        if self._owned:
            self._stream.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read(path: Path) -> list[dict[str, object]]:
    """Every record of a trace file, checked."""
    records = []
    with path.open(encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise TraceError(path.name + ":" + str(number) + ": not JSON") from None
            if not isinstance(record, dict):
                raise TraceError(path.name + ":" + str(number) + ": not an object")
            check_record(record)
            records.append(record)
    return records


def samples(records: list[dict[str, object]]) -> list[tuple[int, dict[str, dict[str, object]]]]:
    """The records grouped by t_ms, in time order: [(t_ms, {node: record})]."""
    grouped: dict[int, dict[str, dict[str, object]]] = {}
    for record in records:
        t_ms = record["t_ms"]
        node = record["node"]
        assert isinstance(t_ms, int) and isinstance(node, str)
        grouped.setdefault(t_ms, {})[node] = record
    return sorted(grouped.items())


@dataclass(frozen=True)
class Violation:
    """At t_ms, the sum of a field over the loads of one constraint exceeded its capacity."""

    t_ms: int
    constraint: str
    total_ma: int
    capacity_ma: int


def samples_over(found: list[Violation]) -> int:
    """How many samples carry at least one violation (one sample can break several limits, or every phase)."""
    return len({violation.t_ms for violation in found})


def violations(records: list[dict[str, object]], scenario: Scenario, field: str = "applied_ma",
               grace_ms: int = 0) -> list[Violation]:
    """Every sample where a circuit or site phase carries more than its capacity (limit x safety).

    field is applied_ma (the limits the nodes enforce) or draw_ma (what the
    loads draw). A limit_ma event that lowers a limit counts from at_ms +
    grace_ms (the nodes must first have the new limit: one config delivery
    and one tick); a raise counts at once. A node missing from a sample
    counts as 0.
    """
    changes = [event for event in scenario.events if event.action == "limit_ma"]
    site = dict(scenario.site)
    circuits = [dict(c) for c in scenario.circuits]
    schedule = [(-1, _capacities(scenario, site, circuits))]
    for event in changes:
        assert isinstance(event.value, list)
        old = _capacities(scenario, site, circuits)
        if event.circuit is None:
            site["limit_ma"] = list(event.value)
        else:
            for circuit in circuits:
                if circuit["id"] == event.circuit:
                    circuit["limit_ma"] = list(event.value)
        new = _capacities(scenario, site, circuits)
        lowered = any(new[name][0] < old[name][0] for name in new)
        schedule.append((event.at_ms + (grace_ms if lowered else 0), new))
    found = []
    for t_ms, by_node in samples(records):
        current = schedule[0][1]
        for start_ms, capacities in schedule:
            if start_ms <= t_ms:
                current = capacities
        for name in sorted(current):
            capacity, ids = current[name]
            total = 0
            for load_id in ids:
                record = by_node.get(load_id)
                value = record.get(field) if record is not None else 0
                total += value if isinstance(value, int) else 0
            if total > capacity:
                found.append(Violation(t_ms, name, total, capacity))
    return found


def _capacities(scenario: Scenario, site: dict[str, object],
                circuits: list[dict[str, object]]) -> dict[str, tuple[int, list[str]]]:
    request = scenario.allocate_request()
    request["site"] = dict(site)
    request["circuits"] = [dict(c) for c in circuits]
    model = core_site.parse(request)
    return {name: (capacity, ids) for name, _phase, capacity, ids in core_site.constraints(model)}


def table(by_node: dict[str, dict[str, object]]) -> list[str]:
    """The demo's table at one sample: a header and a row per node."""
    rows = [f"{'node':<16} {'state':<5} {'target':>8} {'applied':>8} {'draw':>8} {'peers':>5} {'failsafe':<8}"]
    for node in sorted(by_node):
        record = by_node[node]
        state = record.get("state") or "-"
        if not record.get("alive", True):
            state = "dead"
        rows.append(f"{node:<16} {state!s:<5} {_amps(record['target_ma']):>8} {_amps(record['applied_ma']):>8} "
                    f"{_amps(record['draw_ma']):>8} {record.get('peers', '-')!s:>5} "
                    f"{'yes' if record['failsafe'] else 'no':<8}")
    return rows


def _amps(value: object) -> str:
    if not isinstance(value, int):
        return "-"
    return f"{value / 1000:.1f} A"
