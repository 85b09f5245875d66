"""Simulator scenarios (the `sim` contract of DESIGN.md), read from YAML or JSON and checked field by field."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from loadmesh.core import fieldcheck as fc
from loadmesh.core import site as core_site
from loadmesh.core.errors import FieldError

from .. import house as house_model
from .. import jsonfile

# A scenario is an `allocate` scenario made physical: `site`, `circuits` and
# `offline_reserve_ma` as there; `nodes` carry the load fields of `allocate`
# (their dynamic ones, demand and online, come from the simulation) plus a
# `kind` and, for an EVSE, the `car`; `events` script what happens; and
# `duration_s` ends it. Optional sections beyond the contract: `meter` (who
# reads the mains meter, the unmanaged load and the solar production),
# `house` (the plant model behind valve and boiler nodes) and `group`
# (settings passed through to the group config, which checks them).
#
#   nodes[i]: id, kind evse|relay|valve|boiler, circuit, phases, min_ma,
#             max_ma, step_ma, priority, mode (required for evse and relay;
#             valve and boiler nodes draw nothing the allocation counts and
#             default to L1, 0 mA, mode off), room (a valve: its room in the
#             house, default its id), car (an evse: plug_at_s (null: unplugged
#             until a plug event), unplug_at_s, max_ma (default the node's),
#             lag_ms 1000..5000 (default 2000))
#   events[j]: at_s and exactly one of kill, restart, isolate, heal, plug,
#             unplug (a node id), loss_pct (0..100), limit_ma (mA, or per
#             phase; with `circuit`, that circuit's limit, else the site's),
#             meter_stale_s (the meter stops reporting for that long)
#   meter:    node (a node id), unmanaged_ma and solar_ma (mA, or per
#             phase; default 0), interval_ms (default 1000)
#   house:    model "reference" (companion.house), start_week_s (default
#             -86400: the warm-up Sunday), speed (simulated seconds per
#             second, default 1), setpoint_dc (the boiler's own flow
#             setpoint, and the boiler node's unless its settings say
#             otherwise; default 700),
#             boiler and load_sharing (the boiler node's settings, as in
#             docs/heating.md; default {}: the core's defaults)

KINDS = ("evse", "relay", "valve", "boiler")
NODE_ACTIONS = ("kill", "restart", "isolate", "heal", "plug", "unplug")
ACTIONS = (*NODE_ACTIONS, "loss_pct", "limit_ma", "meter_stale_s")
HOUSE_MODELS = ("reference",)
# Every room of the reference house (companion/house.py), the rooms a valve node may sit in.
REFERENCE_ROOMS = tuple(sorted(room.id for room in house_model.reference_house().rooms))
CAR_LAG_MS = (1000, 5000)
DEFAULT_CAR_LAG_MS = 2000
MAX_DURATION_S = 7 * 86400
MAX_NODES = 17  # a node and its 16 peers (the peer table's bound)

_TOP = ("about", "site", "circuits", "offline_reserve_ma", "nodes", "events", "duration_s", "meter", "house", "group")
_LOAD_FIELDS = ("circuit", "phases", "min_ma", "max_ma", "step_ma", "priority", "mode")
_NODE = ("id", "kind", *_LOAD_FIELDS, "room", "car")
_CAR = ("plug_at_s", "unplug_at_s", "max_ma", "lag_ms")
_METER = ("node", "unmanaged_ma", "solar_ma", "interval_ms")
_HOUSE = ("model", "start_week_s", "speed", "setpoint_dc", "boiler", "load_sharing")
_HEATING_DEFAULTS = {"phases": "L1", "min_ma": 0, "max_ma": 0, "step_ma": 1000, "priority": 0, "mode": "off"}


@dataclass(frozen=True)
class Car:
    """The car behind an EVSE node."""

    plug_at_ms: int | None  # None: unplugged until a plug event
    unplug_at_ms: int | None
    max_ma: int
    lag_ms: int


@dataclass(frozen=True)
class Node:
    """One node: its load as `allocate` sees it (demand and online left out), its kind, car and room."""

    id: str
    kind: str
    load: dict[str, object]
    car: Car | None
    room: str | None


@dataclass(frozen=True)
class Event:
    """One scripted event at at_ms: action (one of ACTIONS) and its value.

    value: a node id for the node actions; a percent for loss_pct; mA per
    phase for limit_ma (circuit: whose limit, None for the site's); and, for
    meter_stale_s, how long the meter stays silent, in ms.
    """

    at_ms: int
    action: str
    value: object
    circuit: str | None = None


@dataclass(frozen=True)
class Meter:
    """The mains meter: read by node, every interval_ms; per-phase unmanaged load and solar production."""

    node: str
    unmanaged_ma: tuple[int, ...]
    solar_ma: tuple[int, ...]
    interval_ms: int


@dataclass(frozen=True)
class House:
    """The heating plant behind valve and boiler nodes."""

    model: str
    start_week_s: int
    speed: int
    setpoint_dc: int
    boiler: dict[str, object] = field(default_factory=dict)  # the boiler node's boiler settings
    load_sharing: dict[str, object] = field(default_factory=dict)  # and its load-sharing settings


@dataclass(frozen=True)
class Scenario:
    """A checked scenario; nodes sorted by id, events by time (ties in file order)."""

    about: str
    site: dict[str, object]
    circuits: list[dict[str, object]]
    offline_reserve_ma: int | None
    nodes: tuple[Node, ...]
    events: tuple[Event, ...]
    duration_ms: int
    meter: Meter | None
    house: House | None
    group: dict[str, object]

    def node(self, node_id: str) -> Node:
        """The node with this id (KeyError if none)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def node_ids(self) -> list[str]:
        """Every node id, sorted."""
        return [node.id for node in self.nodes]

    def phases(self) -> int:
        """The site's phase count."""
        value = self.site["phases"]
        assert isinstance(value, int)
        return value

    def allocate_request(self, demand: dict[str, bool] | None = None,
                         online: dict[str, bool] | None = None) -> dict[str, object]:
        """An `allocate` scenario of this site with each node's demand and online flag (default True)."""
        loads = []
        for node in self.nodes:
            load = dict(node.load)
            load["demand"] = True if demand is None else demand.get(node.id, False)
            load["online"] = True if online is None else online.get(node.id, False)
            loads.append(load)
        request: dict[str, object] = {"site": dict(self.site), "circuits": [dict(c) for c in self.circuits],
                                      "loads": loads}
        if self.offline_reserve_ma is not None:
            request["offline_reserve_ma"] = self.offline_reserve_ma
        return request


class _KeysOnceLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that names a key twice (PyYAML keeps the last, silently, though YAML
    wants keys unique): an edit of the first would be lost."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be given again, on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                twice = key in seen
            except TypeError:  # an unhashable key: the base constructor names it
                continue
            if twice:
                mark = key_node.start_mark
                raise yaml.YAMLError(f'the key "{key}" twice in one mapping: line {mark.line + 1}, '
                                     f"column {mark.column + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(path: Path) -> Scenario:
    """Read and check a scenario file (.yaml, .yml or .json); FieldError names the bad field, or a key twice."""
    text = path.read_text(encoding="utf-8")
    try:
        data = jsonfile.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_KeysOnceLoader)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FieldError("scenario", path.name + " is not valid " + ("JSON" if path.suffix == ".json" else "YAML")
                         + ": " + first) from None
    if data is None and path.suffix != ".json" and yaml.compose(text) is None:
        # No document at all (blank, or comments only) reads as None, which
        # parse would report as "None is not an object" (a document `null` goes on to parse).
        raise FieldError("scenario", path.name + " is empty: it holds no YAML document")
    return parse(data)


def parse(data: object) -> Scenario:
    """Check a scenario (as decoded from JSON or YAML); FieldError names the first bad field."""
    top = fc.obj(data, "scenario")
    fc.only(top, _TOP, "")
    about = top.get("about", "")
    if not isinstance(about, str):
        raise FieldError("about", fc.describe(about) + " is not a string")
    duration_ms = _seconds_ms(top.get("duration_s"), "duration_s", 1, MAX_DURATION_S)
    raw_nodes = fc.array(top.get("nodes"), "nodes")
    if not 1 <= len(raw_nodes) <= MAX_NODES:
        raise FieldError("nodes", "has " + str(len(raw_nodes)) + " nodes; 1 to " + str(MAX_NODES) + " are allowed")
    nodes = [_node(raw_nodes[i], fc.index("nodes", i)) for i in range(len(raw_nodes))]
    loads: list[dict[str, object]] = []
    for node in nodes:
        load = dict(node.load)
        load["demand"] = True
        load["online"] = True
        loads.append(load)
    request: dict[str, object] = {"site": top.get("site"), "loads": loads}
    for key in ("circuits", "offline_reserve_ma"):
        if key in top:
            request[key] = top[key]
    try:
        model = core_site.parse(request)
    except FieldError as exc:
        # The core names loads[i]; here they are nodes[i].
        if exc.field.startswith("loads["):
            raise FieldError("nodes" + exc.field[5:], exc.problem) from None
        raise
    # The cars once their nodes' fields are known good (a car's max defaults to its node's).
    for i in range(len(nodes)):
        raw = fc.obj(raw_nodes[i], "")
        if "car" in raw:
            nodes[i] = _with_car(nodes[i], raw["car"], fc.join(fc.index("nodes", i), "car"))
    site = fc.obj(top["site"], "site")
    if "meter" in site:
        raise FieldError("site.meter", "is live in a simulation: use the top-level meter section")
    ids = [node.id for node in nodes]
    house = _house(top.get("house"))
    for i, node in enumerate(nodes):
        if node.kind in ("valve", "boiler") and house is None:
            raise FieldError(fc.index("nodes", i) + ".kind", fc.describe(node.kind) + " needs a house section")
        if node.room is not None and node.room not in REFERENCE_ROOMS:
            raise FieldError(fc.index("nodes", i) + ".room", fc.describe(node.room) + " is not a room of the house ("
                             + ", ".join(REFERENCE_ROOMS) + ")")
    boilers = [node.id for node in nodes if node.kind == "boiler"]
    if len(boilers) > 1:
        raise FieldError("nodes", "has " + str(len(boilers)) + " boiler nodes; at most one")
    meter = _meter(top.get("meter"), ids, model.phases)
    events = _events(top.get("events", []), nodes, model, meter, duration_ms)
    group = top.get("group", {})
    if not isinstance(group, dict):
        raise FieldError("group", fc.describe(group) + " is not an object")
    circuits = [fc.obj(c, "circuits") for c in fc.array(top.get("circuits", []), "circuits")]
    reserve = top.get("offline_reserve_ma")
    return Scenario(about=about, site=dict(site), circuits=[dict(c) for c in circuits],
                    offline_reserve_ma=reserve if isinstance(reserve, int) else None,
                    nodes=tuple(sorted(nodes, key=lambda n: n.id)), events=tuple(events),
                    duration_ms=duration_ms, meter=meter, house=house, group=dict(group))


def _seconds_ms(value: object, path: str, low: float, high: float, allow_none: bool = False) -> int:
    """A time in seconds (integer or decimal) as whole milliseconds."""
    if value is None:
        if allow_none:
            return -1
        raise FieldError(path, "is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError(path, fc.describe(value) + " is not a number of seconds")
    if value < low or value > high:
        raise FieldError(path, str(value) + " is out of range " + str(low) + ".." + str(high))
    return round(value * 1000)


def _node(value: object, path: str) -> Node:
    part = fc.obj(value, path)
    fc.only(part, _NODE, path)
    node_id = part.get("id")
    if not isinstance(node_id, str) or not 1 <= len(node_id) <= 16 \
            or any(not 0x21 <= ord(char) <= 0x7E for char in node_id):
        raise FieldError(fc.join(path, "id"), fc.describe(node_id) + " is not a node id (1 to 16 printable "
                         "ASCII characters, no space)")
    kind = fc.choice_field(part, "kind", path, KINDS)
    load: dict[str, object] = {"id": node_id}
    for key in _LOAD_FIELDS:
        if key in part:
            load[key] = part[key]
        elif kind in ("valve", "boiler") and key in _HEATING_DEFAULTS:
            load[key] = _HEATING_DEFAULTS[key]
    if "car" in part and kind != "evse":
        raise FieldError(fc.join(path, "car"), "only an evse node has a car")
    room: str | None = None
    if "room" in part or kind == "valve":
        if kind != "valve":
            raise FieldError(fc.join(path, "room"), "only a valve node has a room")
        raw_room = part.get("room", node_id)
        if not isinstance(raw_room, str):
            raise FieldError(fc.join(path, "room"), fc.describe(raw_room) + " is not a room id")
        room = raw_room
    return Node(id=node_id, kind=kind, load=load, car=None, room=room)


def _with_car(node: Node, value: object, path: str) -> Node:
    car = _car(value, path, node.load["max_ma"])
    return Node(id=node.id, kind=node.kind, load=node.load, car=car, room=node.room)


def _car(value: object, path: str, node_max_ma: object) -> Car:
    assert isinstance(node_max_ma, int)
    part = fc.obj(value, path)
    fc.only(part, _CAR, path)
    if "plug_at_s" not in part:
        raise FieldError(fc.join(path, "plug_at_s"), "is missing (null: unplugged until a plug event)")
    plug_ms = _seconds_ms(part["plug_at_s"], fc.join(path, "plug_at_s"), 0, MAX_DURATION_S, allow_none=True)
    unplug_ms = _seconds_ms(part.get("unplug_at_s"), fc.join(path, "unplug_at_s"), 0, MAX_DURATION_S,
                            allow_none=True)
    if plug_ms >= 0 and unplug_ms >= 0 and unplug_ms <= plug_ms:
        raise FieldError(fc.join(path, "unplug_at_s"), "must come after plug_at_s")
    max_ma = fc.int_field(part, "max_ma", path, 0, core_site.MAX_MA, node_max_ma)
    lag_ms = fc.int_field(part, "lag_ms", path, CAR_LAG_MS[0], CAR_LAG_MS[1], DEFAULT_CAR_LAG_MS)
    return Car(plug_at_ms=plug_ms if plug_ms >= 0 else None, unplug_at_ms=unplug_ms if unplug_ms >= 0 else None,
               max_ma=max_ma, lag_ms=lag_ms)


def _per_phase(value: object, path: str, phases: int, low: int) -> tuple[int, ...]:
    """mA for every phase, given once or per phase."""
    if isinstance(value, list):
        if len(value) != phases:
            raise FieldError(path, "has " + str(len(value)) + " values; the site has " + str(phases) + " phases")
        return tuple(fc.integer(value[i], fc.index(path, i), low, core_site.MAX_MA) for i in range(phases))
    return (fc.integer(value, path, low, core_site.MAX_MA),) * phases


def _meter(value: object, ids: list[str], phases: int) -> Meter | None:
    if value is None:
        return None
    part = fc.obj(value, "meter")
    fc.only(part, _METER, "meter")
    node = part.get("node")
    if node not in ids:
        raise FieldError("meter.node", fc.describe(node) + " is not a node")
    assert isinstance(node, str)
    return Meter(node=node, unmanaged_ma=_per_phase(part.get("unmanaged_ma", 0), "meter.unmanaged_ma", phases, 0),
                 solar_ma=_per_phase(part.get("solar_ma", 0), "meter.solar_ma", phases, 0),
                 interval_ms=fc.int_field(part, "interval_ms", "meter", 100, 60000, 1000))


def _house(value: object) -> House | None:
    if value is None:
        return None
    part = fc.obj(value, "house")
    fc.only(part, _HOUSE, "house")
    return House(model=fc.choice_field(part, "model", "house", HOUSE_MODELS, "reference"),
                 start_week_s=fc.int_field(part, "start_week_s", "house", -604800, 604800, -86400),
                 speed=fc.int_field(part, "speed", "house", 1, 3600, 1),
                 setpoint_dc=fc.int_field(part, "setpoint_dc", "house", 300, 850, 700),
                 boiler=dict(fc.obj(part.get("boiler", {}), "house.boiler")),
                 load_sharing=dict(fc.obj(part.get("load_sharing", {}), "house.load_sharing")))


def _events(value: object, nodes: list[Node], model: core_site.Site, meter: Meter | None,
            duration_ms: int) -> list[Event]:
    items = fc.array(value, "events")
    by_id = {node.id: node for node in nodes}
    events = []
    for position, item in enumerate(items):
        path = fc.index("events", position)
        part = fc.obj(item, path)
        fc.only(part, ("at_s", "circuit", *ACTIONS), path)
        at_ms = _seconds_ms(part.get("at_s"), fc.join(path, "at_s"), 0, duration_ms / 1000)
        actions = [name for name in ACTIONS if name in part]
        if len(actions) != 1:
            raise FieldError(path, "must have exactly one of " + ", ".join(ACTIONS)
                             + (" (it has " + ", ".join(actions) + ")" if actions else ""))
        action = actions[0]
        where = fc.join(path, action)
        raw = part[action]
        circuit = None
        if "circuit" in part and action != "limit_ma":
            raise FieldError(fc.join(path, "circuit"), "goes only with limit_ma")
        event_value: object
        if action in NODE_ACTIONS:
            if raw not in by_id:
                raise FieldError(where, fc.describe(raw) + " is not a node")
            assert isinstance(raw, str)
            if action in ("plug", "unplug") and by_id[raw].car is None:
                raise FieldError(where, fc.describe(raw) + " has no car")
            event_value = raw
        elif action == "loss_pct":
            event_value = fc.integer(raw, where, 0, 100)
        elif action == "meter_stale_s":
            if meter is None:
                raise FieldError(where, "there is no meter section")
            event_value = _seconds_ms(raw, where, 0, MAX_DURATION_S)
        else:
            circuit_id = part.get("circuit")
            if circuit_id is not None:
                if circuit_id not in model.circuit_ids:
                    raise FieldError(fc.join(path, "circuit"), fc.describe(circuit_id) + " is not a circuit")
                assert isinstance(circuit_id, str)
                circuit = circuit_id
            event_value = list(_per_phase(raw, where, model.phases, 0))
        events.append(Event(at_ms=at_ms, action=action, value=event_value, circuit=circuit))
    events.sort(key=lambda event: event.at_ms)  # stable: ties stay in file order
    return events
