"""The site model: an allocation scenario checked, normalized and turned into constraints."""

from . import canon
from .errors import FieldError

# Everything the allocation reads is an integer in a fixed unit: mA per phase,
# W, ms, percent. Loads are kept sorted by id in parallel lists (the cheapest
# shape on MicroPython), so nothing downstream depends on the input's order or
# on dict iteration order.

MODE_NAMES = ("continuous", "solar_priority", "solar_only", "excess", "off")
URGENCY_CONTINUOUS = 0
URGENCY_SOLAR_PRIORITY = 1
URGENCY_SOLAR_ONLY = 2
URGENCY_EXCESS = 3
URGENCY_OFF = 4

PHASE_NAMES = ("L1", "L2", "L3")
_LOAD_PHASES = {"L1": (0,), "L2": (1,), "L3": (2,), "L123": (0, 1, 2)}

SITE_ID = "site"

# Bounds that keep every sum the allocation forms below 2^30 (a small int on
# ESP32): MAX_LOADS loads x MAX_MA x 3 phases < 2^30.
MAX_MA = 1000000
MAX_W = 1000000
MAX_LOADS = 256
MAX_CIRCUITS = 64
MAX_PRIORITY = 1000000
MAX_MS = 1000000000
MAX_ID_CHARS = 64

# A meter reading older than this is stale: the unmanaged load is unknown.
METER_STALE_MS = 10000
# A reading whose magnitude exceeds this many times the site limit on a phase
# is absurd (a wrong unit, a sign or overflow error): no connection carries
# four times its breaker rating for as long as a reading takes.
ABSURD_FACTOR = 4
# What the meter yields is rounded to this quantum, conservatively (unmanaged
# load up, surplus down), so that readings wobbling by a few mA leave the view
# digest, and the allocation, unchanged.
METER_QUANTUM_MA = 250

METER_NONE = 0
METER_FRESH = 1
METER_STALE = 2
METER_STATES = ("none", "fresh", "stale")

KIND_CIRCUIT = 0
KIND_SITE = 1
KIND_IMPORT = 2

_TOP_KEYS = ("site", "circuits", "loads", "offline_reserve_ma")
_SITE_KEYS = ("phases", "voltage_v", "limit_ma", "safety_pct", "import_limit_w", "meter", "meter_stale_ms",
              "excess_threshold_w")
_METER_KEYS = ("ma", "age_ms")
_CIRCUIT_KEYS = ("id", "parent", "limit_ma")
_LOAD_KEYS = ("id", "circuit", "phases", "min_ma", "max_ma", "step_ma", "priority", "mode", "demand", "online",
              "draw_ma", "active", "reserve_ma")


class Site:
    """A validated scenario: site, circuit tree, loads sorted by id, and the capacity constraints."""

    def __init__(self) -> None:
        self.phases = 1
        self.voltage_v = 230
        self.limit_ma: list[int] = []  # per phase, as configured (before the safety derating)
        self.safety_pct = 100
        self.import_limit_w = -1  # -1: no import power cap
        self.excess_threshold_w = 0
        self.meter_stale_ms = METER_STALE_MS
        self.meter = METER_NONE
        self.unmanaged_ma: list[int] = []  # per phase, signed, rounded up; zeros unless the meter is fresh
        self.surplus_ma = 0  # summed over phases, rounded down; 0 unless the meter is fresh
        self.circuit_ids: list[str] = []  # sorted
        self.circuit_parent: list[str] = []
        self.circuit_limit_ma: list[list[int]] = []
        self.load_ids: list[str] = []  # sorted; every load list below is indexed alike
        self.load_index: dict[str, int] = {}
        self.load_circuit: list[str] = []
        self.load_chain: list[list[str]] = []  # its circuit, then each parent up to (not including) the site
        self.load_phases: list[tuple[int, ...]] = []
        self.load_min_ma: list[int] = []
        self.load_max_ma: list[int] = []
        self.load_step_ma: list[int] = []
        self.load_priority: list[int] = []
        self.load_urgency: list[int] = []  # index into MODE_NAMES
        self.load_demand: list[bool] = []
        self.load_online: list[bool] = []
        self.load_active: list[bool] = []
        self.load_draw_ma: list[int] = []
        self.load_reserve_ma: list[int] = []  # what an offline load holds; 0 for an online one
        self.con_names: list[str] = []
        self.con_kind: list[int] = []
        self.con_phase: list[int] = []
        self.con_capacity_ma: list[int] = []
        self.con_members: list[list[int]] = []
        self.con_reason: list[str] = []  # the reason a load stopped by this constraint gets
        self.load_cons: list[list[int]] = []  # innermost circuit first, then the site, then the import cap

    def excess_threshold_ma(self) -> int:
        """The excess-mode threshold as a current summed over phases."""
        return self.excess_threshold_w * 1000 // self.voltage_v

    def overridden(self, reserve_ma: dict[str, int] | None, active: dict[str, bool] | None) -> "Site":
        """A copy with some loads' reserve and active flag replaced (keys are load ids)."""
        copy = Site()
        for name in _SHARED_ATTRIBUTES:
            setattr(copy, name, getattr(self, name))
        copy.load_reserve_ma = list(self.load_reserve_ma)
        copy.load_active = list(self.load_active)
        if reserve_ma is not None:
            for load_id in sorted(reserve_ma):
                index = _override_index(self, "reserve_ma", load_id)
                value = _int_value(reserve_ma[load_id], "reserve_ma." + load_id, 0, MAX_MA)
                if not self.load_online[index]:
                    copy.load_reserve_ma[index] = value
        if active is not None:
            for load_id in sorted(active):
                index = _override_index(self, "active", load_id)
                copy.load_active[index] = _bool_value(active[load_id], "active." + load_id)
        return copy


_SHARED_ATTRIBUTES = (
    "phases", "voltage_v", "limit_ma", "safety_pct", "import_limit_w", "excess_threshold_w", "meter_stale_ms",
    "meter", "unmanaged_ma", "surplus_ma", "circuit_ids", "circuit_parent", "circuit_limit_ma", "load_ids",
    "load_index", "load_circuit", "load_chain", "load_phases", "load_min_ma", "load_max_ma", "load_step_ma",
    "load_priority", "load_urgency", "load_demand", "load_online", "load_draw_ma", "con_names", "con_kind",
    "con_phase", "con_capacity_ma", "con_members", "con_reason", "load_cons",
)


def parse(scenario: object) -> Site:
    """Check an allocation scenario (the `allocate` contract) and build its site model."""
    top = _object(scenario, "scenario")
    _only_known(top, "", _TOP_KEYS)
    model = Site()
    _parse_site(model, _object(_required(top, "", "site"), "site"))
    circuits = top.get("circuits")
    _parse_circuits(model, [] if circuits is None else _list(circuits, "circuits", MAX_CIRCUITS))
    offline_reserve_ma = _optional_int(top, "", "offline_reserve_ma", 0, MAX_MA)
    _parse_loads(model, _list(_required(top, "", "loads"), "loads", MAX_LOADS), offline_reserve_ma)
    _read_meter(model, top)
    _build_constraints(model)
    return model


def constraints(model: Site) -> list[tuple[str, str, int, list[str]]]:
    """Every capacity constraint as (name, phase, capacity_ma, ids of the loads it covers)."""
    result = []
    for index, name in enumerate(model.con_names):
        members = [model.load_ids[i] for i in model.con_members[index]]
        result.append((name, PHASE_NAMES[model.con_phase[index]], model.con_capacity_ma[index], members))
    return result


def usage_ma(model: Site, index: int, current_ma: int) -> int:
    """What load index counts for on each of its phases when it runs at current_ma."""
    if model.load_online[index]:
        return current_ma
    # An offline load may still run at its last limit: count the larger.
    reserve = model.load_reserve_ma[index]
    return reserve if reserve > current_ma else current_ma


def on_lattice_ma(model: Site, index: int, bound_ma: int) -> int:
    """The highest current load index may be given that is at most bound_ma: 0, or min + k x step, or max."""
    low = model.load_min_ma[index]
    high = model.load_max_ma[index]
    if bound_ma >= high:
        return high
    if bound_ma < low:
        return 0
    step = model.load_step_ma[index]
    return low + (bound_ma - low) // step * step


def view(model: Site) -> list[object]:
    """The inputs that decide the allocation, as one value: [version, site, circuits, loads] (the digest covers it)."""
    return [VIEW_VERSION, _view_site(model), _view_circuits(model),
            [_view_load(model, index) for index in range(len(model.load_ids))]]


def view_parts(model: Site) -> list[str]:
    """canon.dumps(view(model)) in pieces, one per load, so a digest never holds the whole text at once."""
    parts = ["[" + str(VIEW_VERSION) + "," + canon.dumps(_view_site(model)) + "," + canon.dumps(_view_circuits(model))
             + ",["]
    for index in range(len(model.load_ids)):
        parts.append(("," if index else "") + canon.dumps(_view_load(model, index)))
    parts.append("]]")
    return parts


# Bumped whenever the allocation rules change, so that nodes running different
# rules never find their views equal.
VIEW_VERSION = 1


def _view_site(model: Site) -> list[object]:
    return [model.phases, model.voltage_v, model.limit_ma, model.safety_pct, model.import_limit_w,
            model.excess_threshold_w, METER_STATES[model.meter], model.unmanaged_ma, model.surplus_ma]


def _view_circuits(model: Site) -> list[object]:
    return [[circuit_id, model.circuit_parent[index], model.circuit_limit_ma[index]]
            for index, circuit_id in enumerate(model.circuit_ids)]


def _view_load(model: Site, index: int) -> list[object]:
    phases = model.load_phases[index]
    return [model.load_ids[index], model.load_circuit[index], "L123" if len(phases) == 3 else PHASE_NAMES[phases[0]],
            model.load_min_ma[index], model.load_max_ma[index], model.load_step_ma[index],
            model.load_priority[index], MODE_NAMES[model.load_urgency[index]], model.load_demand[index],
            model.load_online[index], model.load_active[index], model.load_reserve_ma[index]]


def _parse_site(model: Site, site: dict[str, object]) -> None:
    _only_known(site, "site", _SITE_KEYS)
    phases = _required_int(site, "site", "phases", 1, 3)
    if phases == 2:
        raise FieldError("site.phases", "2 is not 1 or 3")
    model.phases = phases
    model.voltage_v = _required_int(site, "site", "voltage_v", 100, 1000)
    model.limit_ma = _per_phase(_required(site, "site", "limit_ma"), "site.limit_ma", phases)
    model.safety_pct = _required_int(site, "site", "safety_pct", 1, 100)
    import_limit_w = _optional_int(site, "site", "import_limit_w", 0, MAX_W)
    model.import_limit_w = -1 if import_limit_w is None else import_limit_w
    stale_ms = _optional_int(site, "site", "meter_stale_ms", 0, MAX_MS)
    model.meter_stale_ms = METER_STALE_MS if stale_ms is None else stale_ms
    threshold_w = _optional_int(site, "site", "excess_threshold_w", 0, MAX_W)
    model.excess_threshold_w = 0 if threshold_w is None else threshold_w


def _parse_circuits(model: Site, circuits: list[object]) -> None:
    parent_of: dict[str, str] = {}
    limit_of: dict[str, list[int]] = {}
    position: dict[str, int] = {}
    for index, item in enumerate(circuits):
        path = "circuits[" + str(index) + "]"
        circuit = _object(item, path)
        _only_known(circuit, path, _CIRCUIT_KEYS)
        circuit_id = _id(_required(circuit, path, "id"), path + ".id")
        if circuit_id == SITE_ID:
            raise FieldError(path + ".id", "'site' names the site itself, not a circuit")
        if circuit_id in position:
            raise FieldError(path + ".id", show(circuit_id) + " is a duplicate")
        position[circuit_id] = index
        parent_of[circuit_id] = _id(_required(circuit, path, "parent"), path + ".parent")
        limit_of[circuit_id] = _per_phase(_required(circuit, path, "limit_ma"), path + ".limit_ma", model.phases)
    for circuit_id in sorted(parent_of, key=lambda c: position[c]):
        parent = parent_of[circuit_id]
        if parent != SITE_ID and parent not in parent_of:
            raise FieldError("circuits[" + str(position[circuit_id]) + "].parent", show(parent) + " is not a circuit")
    # Report the first circuit (in input order) that lies on a cycle.
    for circuit_id in sorted(parent_of, key=lambda c: position[c]):
        walk = [circuit_id]
        current = parent_of[circuit_id]
        while current != SITE_ID and current != circuit_id and len(walk) <= len(parent_of):
            walk.append(current)
            current = parent_of[current]
        if current == circuit_id:
            walk.append(circuit_id)
            raise FieldError("circuits[" + str(position[circuit_id]) + "].parent",
                             show(parent_of[circuit_id]) + " makes a cycle: " + " -> ".join(walk))
    model.circuit_ids = sorted(parent_of)
    model.circuit_parent = [parent_of[c] for c in model.circuit_ids]
    model.circuit_limit_ma = [limit_of[c] for c in model.circuit_ids]


def _parse_loads(model: Site, loads: list[object], offline_reserve_ma: int | None) -> None:
    circuit_parent = {}
    for index, circuit_id in enumerate(model.circuit_ids):
        circuit_parent[circuit_id] = model.circuit_parent[index]
    rows = []
    seen: set[str] = set()
    # Checked in input order, so the first bad load in the file is the one named.
    for index, item in enumerate(loads):
        path = "loads[" + str(index) + "]"
        load = _object(item, path)
        _only_known(load, path, _LOAD_KEYS)
        load_id = _id(_required(load, path, "id"), path + ".id")
        if load_id in seen:
            raise FieldError(path + ".id", show(load_id) + " is a duplicate")
        seen.add(load_id)
        rows.append(_parse_load(model, load, path, load_id, circuit_parent, offline_reserve_ma))
    rows.sort(key=lambda row: row[0])
    for row in rows:
        (load_id, circuit_id, chain, phases, min_ma, max_ma, step_ma, priority, urgency, demand, online, active,
         draw_ma, reserve_ma) = row
        model.load_index[load_id] = len(model.load_ids)
        model.load_ids.append(load_id)
        model.load_circuit.append(circuit_id)
        model.load_chain.append(chain)
        model.load_phases.append(phases)
        model.load_min_ma.append(min_ma)
        model.load_max_ma.append(max_ma)
        model.load_step_ma.append(step_ma)
        model.load_priority.append(priority)
        model.load_urgency.append(urgency)
        model.load_demand.append(demand)
        model.load_online.append(online)
        model.load_active.append(active)
        model.load_draw_ma.append(draw_ma)
        model.load_reserve_ma.append(0 if online else reserve_ma)


def _parse_load(model: Site, load: dict[str, object], path: str, load_id: str, circuit_parent: dict[str, str],
                offline_reserve_ma: int | None) -> tuple[str, str, list[str], tuple[int, ...], int, int, int, int,
                                                         int, bool, bool, bool, int, int]:
    circuit = load.get("circuit")
    circuit_id = SITE_ID if circuit is None else _id(circuit, path + ".circuit")
    if circuit_id != SITE_ID and circuit_id not in circuit_parent:
        raise FieldError(path + ".circuit", show(circuit_id) + " is not a circuit")
    chain = []
    walk = circuit_id
    while walk != SITE_ID:
        chain.append(walk)
        walk = circuit_parent[walk]
    phase_name = _required(load, path, "phases")
    phases = _LOAD_PHASES.get(phase_name) if isinstance(phase_name, str) else None
    if phases is None:
        raise FieldError(path + ".phases", show(phase_name) + " is not one of L1, L2, L3, L123")
    if model.phases == 1 and phase_name != "L1":
        raise FieldError(path + ".phases", show(phase_name) + " on a single-phase site (only L1 exists)")
    min_ma = _required_int(load, path, "min_ma", 0, MAX_MA)
    max_ma = _required_int(load, path, "max_ma", 0, MAX_MA)
    if min_ma > max_ma:
        raise FieldError(path + ".min_ma", str(min_ma) + " is above max_ma " + str(max_ma))
    step_ma = _required_int(load, path, "step_ma", 1, MAX_MA)
    priority = _required_int(load, path, "priority", -MAX_PRIORITY, MAX_PRIORITY)
    mode = _required(load, path, "mode")
    if not isinstance(mode, str) or mode not in MODE_NAMES:
        raise FieldError(path + ".mode", show(mode) + " is not one of " + ", ".join(MODE_NAMES))
    demand = _bool_value(_required(load, path, "demand"), path + ".demand")
    online = _bool_value(_required(load, path, "online"), path + ".online")
    draw_ma = _optional_int(load, path, "draw_ma", 0, MAX_MA)
    active = load.get("active")
    reserve_ma = _optional_int(load, path, "reserve_ma", 0, MAX_MA)
    if reserve_ma is None:
        # Without a configured reserve an offline load may be drawing anything up to its max.
        reserve_ma = max_ma if offline_reserve_ma is None else offline_reserve_ma
    return (load_id, circuit_id, chain, phases, min_ma, max_ma, step_ma, priority, MODE_NAMES.index(mode), demand,
            online, False if active is None else _bool_value(active, path + ".active"),
            0 if draw_ma is None else draw_ma, reserve_ma)


def _read_meter(model: Site, top: dict[str, object]) -> None:
    site = top["site"]
    assert isinstance(site, dict)
    phases = model.phases
    model.unmanaged_ma = [0] * phases
    meter = site.get("meter")
    if meter is None:
        model.meter = METER_NONE
        return
    meter = _object(meter, "site.meter")
    _only_known(meter, "site.meter", _METER_KEYS)
    readings = _list(_required(meter, "site.meter", "ma"), "site.meter.ma", 3)
    if len(readings) != phases:
        raise FieldError("site.meter.ma", "has " + str(len(readings)) + " readings for " + str(phases) + " phases")
    measured = []
    absurd = False
    for phase, value in enumerate(readings):
        field = "site.meter.ma[" + str(phase) + "]"
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(field, show(value) + " is not an integer")
        bound = ABSURD_FACTOR * model.limit_ma[phase]
        if value > bound or value < -bound:
            absurd = True
        measured.append(value)
    age_ms = _required_int(meter, "site.meter", "age_ms", 0, MAX_MS)
    if absurd or age_ms > model.meter_stale_ms:
        model.meter = METER_STALE
        return
    model.meter = METER_FRESH
    quantum = METER_QUANTUM_MA
    solar_draw_ma = 0
    unmanaged = list(measured)
    for index in range(len(model.load_ids)):
        draw = model.load_draw_ma[index]
        if not draw:
            continue
        for phase in model.load_phases[index]:
            unmanaged[phase] -= draw
        urgency = model.load_urgency[index]
        if model.load_online[index] and URGENCY_SOLAR_PRIORITY <= urgency <= URGENCY_EXCESS:
            solar_draw_ma += draw * len(model.load_phases[index])
    # Rounded up: the unmanaged load is never read as smaller than measured.
    model.unmanaged_ma = [-(-value // quantum) * quantum for value in unmanaged]
    surplus = solar_draw_ma - sum(measured)
    model.surplus_ma = surplus // quantum * quantum if surplus > 0 else 0


def _build_constraints(model: Site) -> None:
    phases = model.phases
    safety = model.safety_pct
    count = len(model.load_ids)
    model.load_cons = [[] for _ in range(count)]
    position: dict[str, int] = {}
    for index, circuit_id in enumerate(model.circuit_ids):
        position[circuit_id] = index
        for phase in range(phases):
            capacity = model.circuit_limit_ma[index][phase] * safety // 100
            _add_constraint(model, "circuit:" + circuit_id + ":" + PHASE_NAMES[phase], KIND_CIRCUIT, phase, capacity,
                            "circuit:" + circuit_id)
    first_site = len(model.con_names)
    for phase in range(phases):
        capacity = model.limit_ma[phase] * safety // 100
        # Export does not widen the connection: it can vanish with a cloud, and
        # the limit is for what the managed loads are given.
        unmanaged = model.unmanaged_ma[phase]
        if unmanaged > 0:
            capacity -= unmanaged
        _add_constraint(model, "site:" + PHASE_NAMES[phase], KIND_SITE, phase, capacity, "equal_share")
    first_import = len(model.con_names)
    if model.import_limit_w >= 0:
        # The cap in watts split evenly over the phases; export does lower the import.
        per_phase_ma = model.import_limit_w * 1000 // (model.voltage_v * phases)
        for phase in range(phases):
            capacity = per_phase_ma - model.unmanaged_ma[phase]
            _add_constraint(model, "import:" + PHASE_NAMES[phase], KIND_IMPORT, phase, capacity, "import_cap")
    for index in range(count):
        cons = model.load_cons[index]
        load_phases = model.load_phases[index]
        for circuit_id in model.load_chain[index]:
            base = position[circuit_id] * phases
            for phase in load_phases:
                cons.append(base + phase)
        for phase in load_phases:
            cons.append(first_site + phase)
        if model.import_limit_w >= 0:
            for phase in load_phases:
                cons.append(first_import + phase)
        for con in cons:
            model.con_members[con].append(index)


def _add_constraint(model: Site, name: str, kind: int, phase: int, capacity_ma: int, reason: str) -> None:
    model.con_names.append(name)
    model.con_reason.append(reason)
    model.con_kind.append(kind)
    model.con_phase.append(phase)
    model.con_capacity_ma.append(capacity_ma)
    model.con_members.append([])


def _override_index(model: Site, what: str, load_id: object) -> int:
    index = model.load_index.get(load_id) if isinstance(load_id, str) else None
    if index is None:
        raise FieldError(what, show(load_id) + " is not a load")
    return index


def show(value: object) -> str:
    """A value for an error message, the same on every runtime (no floats, no runtime-specific repr)."""
    if value is None or isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, str):
        if len(value) > 40:
            value = value[:37] + "..."
        plain = True
        for char in value:
            code = ord(char)
            if code < 0x20 or code > 0x7E or char == "'" or char == "\\":
                plain = False
                break
        return "'" + value + "'" if plain else canon.dumps(value)
    if isinstance(value, float):
        return "a float"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a " + type(value).__name__


def _object(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise FieldError(path, show(value) + " is not an object")
    return value


def _list(value: object, path: str, most: int) -> list[object]:
    if not isinstance(value, list):
        raise FieldError(path, show(value) + " is not a list")
    if len(value) > most:
        raise FieldError(path, "has " + str(len(value)) + " entries, more than " + str(most))
    return value


def _only_known(obj: dict[str, object], path: str, known: tuple[str, ...]) -> None:
    unknown = [key for key in obj if key not in known]
    if unknown:
        unknown.sort()
        raise FieldError(_join(path, str(unknown[0])), "is not a known field")


def _join(path: str, key: str) -> str:
    return path + "." + key if path else key


def _required(obj: dict[str, object], path: str, key: str) -> object:
    if key not in obj:
        raise FieldError(_join(path, key), "is missing")
    return obj[key]


def _required_int(obj: dict[str, object], path: str, key: str, low: int, high: int) -> int:
    return _int_value(_required(obj, path, key), _join(path, key), low, high)


def _optional_int(obj: dict[str, object], path: str, key: str, low: int, high: int) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    return _int_value(value, _join(path, key), low, high)


def _int_value(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, show(value) + " is not an integer")
    if value < low:
        raise FieldError(field, str(value) + " is below " + str(low))
    if value > high:
        raise FieldError(field, str(value) + " is above " + str(high))
    return value


def _bool_value(value: object, field: str) -> bool:
    if value is not True and value is not False:
        raise FieldError(field, show(value) + " is not true or false")
    return value is True


def _id(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise FieldError(field, show(value) + " is not a string")
    if not value or len(value) > MAX_ID_CHARS:
        raise FieldError(field, show(value) + " must have 1 to " + str(MAX_ID_CHARS) + " characters")
    for char in value:
        if not "!" <= char <= "~":
            raise FieldError(field, show(value) + " may hold only printable ASCII without spaces")
    return value


def _per_phase(value: object, field: str, phases: int) -> list[int]:
    if isinstance(value, list):
        if len(value) != phases:
            raise FieldError(field, "has " + str(len(value)) + " values for " + str(phases) + " phases")
        return [_int_value(item, field + "[" + str(phase) + "]", 0, MAX_MA) for phase, item in enumerate(value)]
    # One number: the same limit on every phase.
    return [_int_value(value, field, 0, MAX_MA)] * phases
