"""The site model: an allocation scenario checked, normalized and turned into capacity constraints."""

from .errors import FieldError, describe

# Everything the allocation reads is an integer in a fixed unit: mA per phase,
# W, ms, percent. Loads are kept sorted by id in parallel lists (the most
# compact shape on MicroPython, where small ints cost no allocation), so
# nothing downstream depends on the input's order or on dict order. This runs
# at every change of a node's view: field paths for error messages are built
# only when there is an error.

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
# ESP32): MAX_LOADS x MAX_MA x 3 phases < 2^30; and its sort keys, which pack
# urgency, priority, the active flag and a load index (8 bits) into one int.
MAX_MA = 1000000
MAX_W = 1000000
MAX_LOADS = 256
MAX_CIRCUITS = 64
MAX_PRIORITY = 1000
MAX_MS = 1000000000
MAX_ID_CHARS = 64

# A meter reading older than this (site.meter_stale_ms overrides it) is stale:
# the unmanaged load is unknown. 15 s: the slowest common smart meters (DSMR 4)
# send a reading every 10 s, and a limit at 10 s would flap on them.
METER_STALE_MS = 15000
# A reading whose magnitude exceeds this many times the site limit on a phase
# is absurd (a wrong unit, a sign or an overflow): no connection carries four
# times its breaker rating for as long as a reading takes.
ABSURD_FACTOR = 4
# What the meter yields is rounded to this quantum, conservatively (unmanaged
# load up, surplus down), so that readings wobbling by a few mA change neither
# the view digest nor the allocation.
METER_QUANTUM_MA = 250

METER_NONE = 0
METER_FRESH = 1
METER_STALE = 2
METER_STATES = ("none", "fresh", "stale")

_TOP_KEYS = {"site": 1, "circuits": 1, "loads": 1, "offline_reserve_ma": 1}
_SITE_KEYS = {"phases": 1, "voltage_v": 1, "limit_ma": 1, "safety_pct": 1, "import_limit_w": 1, "meter": 1,
              "meter_stale_ms": 1, "excess_threshold_w": 1}
_METER_KEYS = {"ma": 1, "age_ms": 1}
_CIRCUIT_KEYS = {"id": 1, "parent": 1, "limit_ma": 1}
_LOAD_KEYS = {"id": 1, "circuit": 1, "phases": 1, "min_ma": 1, "max_ma": 1, "step_ma": 1, "priority": 1, "mode": 1,
              "demand": 1, "online": 1, "draw_ma": 1, "active": 1, "reserve_ma": 1}
_MODE_URGENCY = {"continuous": 0, "solar_priority": 1, "solar_only": 2, "excess": 3, "off": 4}
_ID_PUNCTUATION = "-_."


class Site:
    """A validated scenario: site, circuit tree, loads sorted by id, and the capacity constraints.

    Constraints are numbered: circuit i on phase p is i x phases + p (circuits
    sorted by id), then the site per phase, then the import cap per phase.
    """

    def __init__(self) -> None:
        self.phases = 1
        self.voltage_v = 230
        self.limit_ma: list[int] = []  # per phase, as configured (before the safety derating)
        self.safety_pct = 100
        self.import_limit_w = -1  # -1: no import power cap
        self.excess_threshold_w = 0
        self.meter_stale_ms = METER_STALE_MS
        self.meter = METER_NONE
        self.meter_ma: list[int] = []  # per phase, the reading as given; empty unless the meter is fresh
        self.unmanaged_ma: list[int] = []  # per phase, signed, rounded up; zeros unless the meter is fresh
        self.surplus_ma = 0  # summed over phases, rounded down; 0 unless the meter is fresh
        self.circuit_ids: list[str] = []  # sorted
        self.circuit_parent: list[str] = []
        self.circuit_limit_ma: list[list[int]] = []
        self.load_ids: list[str] = []  # sorted; every load_ list is indexed alike
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
        self.load_draw_ma: list[int] = []  # as given (credit_ma bounds what the meter subtracts of it)
        self.load_reserve_ma: list[int] = []  # what an offline load holds; 0 for an online one
        self.load_cons: list[list[int]] = []  # innermost circuit first, then the site, then the import cap
        self.con_capacity_ma: list[int] = []
        # The loads each constraint covers, flat: constraint con covers
        # con_loads[con_first[con]:con_first[con + 1]] (one list, not one per constraint).
        self.con_first: list[int] = []
        self.con_loads: list[int] = []

    def excess_threshold_ma(self) -> int:
        """The excess-mode threshold as a current summed over phases."""
        return self.excess_threshold_w * 1000 // self.voltage_v

    def overridden(self, reserve_ma: dict[str, int] | None, active: dict[str, bool] | None) -> "Site":
        """A copy with some loads' reserve and active flag replaced (keys are load ids); self is unchanged."""
        copy = Site()
        for name in _ATTRIBUTES:
            setattr(copy, name, getattr(self, name))
        copy.load_reserve_ma = list(self.load_reserve_ma)
        copy.load_active = list(self.load_active)
        remeter = False
        if reserve_ma is not None:
            for load_id in sorted(reserve_ma):
                index = _override_index(self, "reserve_ma", load_id)
                value = reserve_ma[load_id]
                if type(value) is not int or value < 0 or value > MAX_MA:
                    raise _bad_value(value, "reserve_ma." + load_id, 0, MAX_MA)
                if not self.load_online[index]:
                    copy.load_reserve_ma[index] = value
                    if self.load_draw_ma[index] and value != self.load_reserve_ma[index]:
                        remeter = True
        if remeter and copy.meter == METER_FRESH:
            # An offline load's draw counts at most at its reserve: read the
            # meter again, and the capacities that follow from it.
            _meter_figures(copy)
            _build_constraints(copy)
        if active is not None:
            for load_id in sorted(active):
                index = _override_index(self, "active", load_id)
                flag = active[load_id]
                if flag is not True and flag is not False:
                    raise FieldError("active." + load_id, describe(flag) + " is not true or false")
                copy.load_active[index] = flag
        return copy


_ATTRIBUTES = (
    "phases", "voltage_v", "limit_ma", "safety_pct", "import_limit_w", "excess_threshold_w", "meter_stale_ms",
    "meter", "meter_ma", "unmanaged_ma", "surplus_ma", "circuit_ids", "circuit_parent", "circuit_limit_ma", "load_ids",
    "load_index", "load_circuit", "load_chain", "load_phases", "load_min_ma", "load_max_ma", "load_step_ma",
    "load_priority", "load_urgency", "load_demand", "load_online", "load_active", "load_draw_ma", "load_reserve_ma",
    "load_cons", "con_capacity_ma", "con_first", "con_loads",
)


def parse(scenario: object, load_at: object = None) -> Site:
    """Check an allocation scenario (the `allocate` contract) and build its site model; FieldError if bad.

    load_at: when given, the loads are load_at(0), load_at(1), ... (as many as
    the scenario's loads list has entries, which are not read), each read once,
    in order, and nothing of it kept: load_at may fill and return the same dict
    every time. A node builds its model so (controller._model_of), without
    every load's dict beside the model in its small heap.
    """
    top = _object(scenario, "scenario")
    _only_known(top, "", _TOP_KEYS)
    model = Site()
    site = _object(_required(top, "", "site"), "site")
    _parse_site(model, site)
    circuits = top.get("circuits")
    _parse_circuits(model, [] if circuits is None else _list(circuits, "circuits", MAX_CIRCUITS))
    offline_reserve_ma = _optional_int(top, "", "offline_reserve_ma", 0, MAX_MA, -1)
    _parse_loads(model, _list(_required(top, "", "loads"), "loads", MAX_LOADS), offline_reserve_ma, load_at)
    _read_meter(model, site)
    _build_constraints(model)
    return model


def constraint_name(model: Site, con: int) -> str:
    """'circuit:<id>:L1', 'site:L1' or 'import:L1'."""
    circuit_cons = len(model.circuit_ids) * model.phases
    phase = PHASE_NAMES[constraint_phase(model, con)]
    if con < circuit_cons:
        return "circuit:" + model.circuit_ids[con // model.phases] + ":" + phase
    return ("site:" if con < circuit_cons + model.phases else "import:") + phase


def constraint_phase(model: Site, con: int) -> int:
    """The phase index of constraint con."""
    return con % model.phases


def constraint_reason(model: Site, con: int) -> str:
    """The reason a load stopped by constraint con gives: 'circuit:<id>', 'equal_share' or 'import_cap'."""
    circuit_cons = len(model.circuit_ids) * model.phases
    if con < circuit_cons:
        return "circuit:" + model.circuit_ids[con // model.phases]
    return "equal_share" if con < circuit_cons + model.phases else "import_cap"


def members(model: Site, con: int) -> list[int]:
    """The indexes of the loads constraint con covers."""
    return model.con_loads[model.con_first[con]:model.con_first[con + 1]]


def constraints(model: Site) -> list[tuple[str, str, int, list[str]]]:
    """Every capacity constraint as (name, phase, capacity_ma, ids of the loads it covers)."""
    result = []
    for con, capacity in enumerate(model.con_capacity_ma):
        ids = [model.load_ids[index] for index in members(model, con)]
        result.append((constraint_name(model, con), PHASE_NAMES[constraint_phase(model, con)], capacity, ids))
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


def credit_ma(model: Site, index: int) -> int:
    """What the meter subtracts for load index on each of its phases: its draw_ma, bounded.

    Every mA subtracted widens the site by a mA, so a draw counts only as far
    as the allocation counts the load: a draw above its max_ma is a broken or
    mis-scaled CT, unknown, and counts 0 (as the controller reads one); an
    offline load counts at most its reserve, all the allocation holds for it.
    What is not subtracted reads as unmanaged load, which is safe.
    """
    draw = model.load_draw_ma[index]
    if draw > model.load_max_ma[index]:
        return 0
    if not model.load_online[index]:
        reserve = model.load_reserve_ma[index]
        if draw > reserve:
            return reserve
    return draw


def _parse_site(model: Site, site: dict[str, object]) -> None:
    _only_known(site, "site", _SITE_KEYS)
    phases = _required_int(site, "site", "phases", 1, 3)
    if phases == 2:
        raise FieldError("site.phases", "2 is not 1 or 3")
    model.phases = phases
    model.voltage_v = _required_int(site, "site", "voltage_v", 100, 1000)
    model.limit_ma = _per_phase(_required(site, "site", "limit_ma"), "site.limit_ma", phases)
    model.safety_pct = _required_int(site, "site", "safety_pct", 1, 100)
    model.import_limit_w = _optional_int(site, "site", "import_limit_w", 0, MAX_W, -1)
    model.meter_stale_ms = _optional_int(site, "site", "meter_stale_ms", 0, MAX_MS, METER_STALE_MS)
    model.excess_threshold_w = _optional_int(site, "site", "excess_threshold_w", 0, MAX_W, 0)


def _parse_circuits(model: Site, circuits: list[object]) -> None:
    parent_of: dict[str, str] = {}
    limit_of: dict[str, list[int]] = {}
    position: dict[str, int] = {}
    in_order: list[str] = []
    phases = model.phases
    for number, circuit in enumerate(circuits):
        if type(circuit) is not dict:
            raise FieldError(_circuit_at(number, ""), describe(circuit) + " is not an object")
        for key in circuit:
            if key not in _CIRCUIT_KEYS:
                _only_known(circuit, _circuit_at(number, ""), _CIRCUIT_KEYS)
        circuit_id = circuit.get("id")
        if not isinstance(circuit_id, str) or not _good_id(circuit_id):
            raise _bad_id(circuit, _circuit_at(number, "id"), "id")
        if circuit_id == SITE_ID:
            raise FieldError(_circuit_at(number, "id"), "'site' names the site itself, not a circuit")
        if circuit_id in position:
            raise FieldError(_circuit_at(number, "id"), describe(circuit_id) + " is a duplicate")
        parent = circuit.get("parent")
        if not isinstance(parent, str) or not _good_id(parent):
            raise _bad_id(circuit, _circuit_at(number, "parent"), "parent")
        limit = circuit.get("limit_ma")
        if type(limit) is int and 0 <= limit <= MAX_MA:
            limits = [limit] * phases
        else:
            limits = _per_phase(_required(circuit, _circuit_at(number, ""), "limit_ma"),
                                _circuit_at(number, "limit_ma"), phases)
        position[circuit_id] = number
        in_order.append(circuit_id)
        parent_of[circuit_id] = parent
        limit_of[circuit_id] = limits
    count = len(in_order)
    for number in range(count):
        parent = parent_of[in_order[number]]
        if parent != SITE_ID and parent not in parent_of:
            raise FieldError(_circuit_at(number, "parent"), describe(parent) + " is not a circuit")
    # A walk up from any circuit reaches the site within count steps, unless
    # there is a cycle; then name the first circuit (in input order) on it.
    for number in range(count):
        start = in_order[number]
        current = parent_of[start]
        steps = 0
        while current != SITE_ID and current != start and steps < count:
            current = parent_of[current]
            steps += 1
        if current == start:
            walk = [start]
            current = parent_of[start]
            while current != start:
                walk.append(current)
                current = parent_of[current]
            walk.append(start)
            raise FieldError(_circuit_at(number, "parent"), describe(parent_of[start]) + " makes a cycle: "
                             + " -> ".join(walk))
    model.circuit_ids = sorted(in_order)
    model.circuit_parent = [parent_of[circuit_id] for circuit_id in model.circuit_ids]
    model.circuit_limit_ma = [limit_of[circuit_id] for circuit_id in model.circuit_ids]


def _parse_loads(model: Site, loads: list[object], offline_reserve_ma: int, load_at: object) -> None:
    # One chain per circuit, shared by its loads.
    chain_of: dict[str, list[str]] = {SITE_ID: []}
    parent_of = {}
    for index, circuit_id in enumerate(model.circuit_ids):
        parent_of[circuit_id] = model.circuit_parent[index]
    for circuit_id in model.circuit_ids:
        upward = []
        walk = circuit_id
        while walk != SITE_ID:
            upward.append(walk)
            walk = parent_of[walk]
        chain_of[circuit_id] = upward
    single_phase = model.phases == 1
    seen: dict[str, int] = {}
    # One list per field, of its final size (no growth, no holes left in the
    # heap), filled in input order, then each put in id order in turn.
    count = len(loads)
    ids = [""] * count
    circuit_of = [""] * count
    chains: list[list[str]] = [[]] * count
    phases_of: list[tuple[int, ...]] = [()] * count
    low = [0] * count
    high = [0] * count
    step = [0] * count
    rank = [0] * count
    urgency_of = [0] * count
    wants = [False] * count
    reachable = [False] * count
    charging = [False] * count
    draws = [0] * count
    reserves = [0] * count
    # In input order, so the first bad load in the file is the one named.
    assert load_at is None or callable(load_at)
    for number in range(count):
        load = loads[number] if load_at is None else load_at(number)
        if type(load) is not dict:
            raise FieldError(_at(number, ""), describe(load) + " is not an object")
        for key in load:
            if key not in _LOAD_KEYS:
                _only_known(load, _at(number, ""), _LOAD_KEYS)
        load_id = load.get("id")
        if not isinstance(load_id, str) or not _good_id(load_id):
            raise _bad_id(load, _at(number, "id"), "id")
        if load_id in seen:
            raise FieldError(_at(number, "id"), describe(load_id) + " is a duplicate")
        seen[load_id] = number
        circuit = load.get("circuit")
        if circuit is None:
            circuit = SITE_ID
        chain = chain_of.get(circuit) if isinstance(circuit, str) else None
        if chain is None:
            problem = " is not a circuit" if isinstance(circuit, str) else " is not a string"
            raise FieldError(_at(number, "circuit"), describe(circuit) + problem)
        phase_name = load.get("phases")
        phases = _LOAD_PHASES.get(phase_name) if isinstance(phase_name, str) else None
        if phases is None:
            raise _bad(load, _at(number, "phases"), "phases", " is not one of L1, L2, L3, L123")
        if single_phase and phase_name != "L1":
            raise FieldError(_at(number, "phases"), describe(phase_name) + " on a single-phase site (only L1 exists)")
        min_ma = load.get("min_ma")
        if type(min_ma) is not int or min_ma < 0 or min_ma > MAX_MA:
            raise _bad_int(load, _at(number, "min_ma"), "min_ma", 0, MAX_MA)
        max_ma = load.get("max_ma")
        if type(max_ma) is not int or max_ma < 0 or max_ma > MAX_MA:
            raise _bad_int(load, _at(number, "max_ma"), "max_ma", 0, MAX_MA)
        if min_ma > max_ma:
            raise FieldError(_at(number, "min_ma"), str(min_ma) + " is above max_ma " + str(max_ma))
        step_ma = load.get("step_ma")
        if type(step_ma) is not int or step_ma < 1 or step_ma > MAX_MA:
            raise _bad_int(load, _at(number, "step_ma"), "step_ma", 1, MAX_MA)
        priority = load.get("priority")
        if type(priority) is not int or priority < -MAX_PRIORITY or priority > MAX_PRIORITY:
            raise _bad_int(load, _at(number, "priority"), "priority", -MAX_PRIORITY, MAX_PRIORITY)
        mode = load.get("mode")
        urgency = _MODE_URGENCY.get(mode) if isinstance(mode, str) else None
        if urgency is None:
            raise _bad(load, _at(number, "mode"), "mode", " is not one of " + ", ".join(MODE_NAMES))
        demand = load.get("demand")
        if demand is not True and demand is not False:
            raise _bad(load, _at(number, "demand"), "demand", " is not true or false")
        online = load.get("online")
        if online is not True and online is not False:
            raise _bad(load, _at(number, "online"), "online", " is not true or false")
        draw_ma = load.get("draw_ma")
        if draw_ma is None:
            draw_ma = 0
        elif type(draw_ma) is not int or draw_ma < 0 or draw_ma > MAX_MA:
            raise _bad_int(load, _at(number, "draw_ma"), "draw_ma", 0, MAX_MA)
        active = load.get("active")
        if active is None:
            active = False
        elif active is not True and active is not False:
            raise _bad(load, _at(number, "active"), "active", " is not true or false")
        held = load.get("reserve_ma")
        if held is not None and (type(held) is not int or held < 0 or held > MAX_MA):
            raise _bad_int(load, _at(number, "reserve_ma"), "reserve_ma", 0, MAX_MA)
        reserve_ma = 0
        if not online:
            # Without a configured reserve an offline load may be drawing anything up to its max.
            if held is not None:
                reserve_ma = held
            elif offline_reserve_ma >= 0:
                reserve_ma = offline_reserve_ma
            else:
                reserve_ma = max_ma
        ids[number] = load_id
        circuit_of[number] = circuit
        chains[number] = chain
        phases_of[number] = phases
        low[number] = min_ma
        high[number] = max_ma
        step[number] = step_ma
        rank[number] = priority
        urgency_of[number] = urgency
        wants[number] = demand
        reachable[number] = online
        charging[number] = active
        draws[number] = draw_ma
        reserves[number] = reserve_ma
    # The input positions in id order. Made at its final size: sorted() would
    # grow a list by appends, doubling its block (to 256 bytes for 17 loads
    # on the 64-bit unix port).
    order = [0] * count
    for number in range(count):
        order[number] = number
    order.sort(key=lambda number: ids[number])
    model.load_ids = ids = _permuted(ids, order)
    for index, load_id in enumerate(ids):
        seen[load_id] = index  # from input position to sorted index
    model.load_index = seen
    # Each input-order list is dropped as soon as its sorted copy exists.
    model.load_circuit = _permuted(circuit_of, order)
    del circuit_of
    model.load_chain = _permuted(chains, order)
    del chains
    model.load_phases = _permuted(phases_of, order)
    del phases_of
    model.load_min_ma = _permuted(low, order)
    del low
    model.load_max_ma = _permuted(high, order)
    del high
    model.load_step_ma = _permuted(step, order)
    del step
    model.load_priority = _permuted(rank, order)
    del rank
    model.load_urgency = _permuted(urgency_of, order)
    del urgency_of
    model.load_demand = _permuted(wants, order)
    del wants
    model.load_online = _permuted(reachable, order)
    del reachable
    model.load_active = _permuted(charging, order)
    del charging
    model.load_draw_ma = _permuted(draws, order)
    del draws
    model.load_reserve_ma = _permuted(reserves, order)


def _permuted(values: list, order: list[int]) -> list:  # type: ignore[type-arg]
    """values in the given order, in a list of exactly that size."""
    result = [None] * len(order)
    for index in range(len(order)):
        result[index] = values[order[index]]
    return result


def _read_meter(model: Site, site: dict[str, object]) -> None:
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
    absurd = False
    for phase in range(phases):
        value = readings[phase]
        if type(value) is not int:
            raise FieldError("site.meter.ma[" + str(phase) + "]", describe(value) + " is not an integer")
        bound = ABSURD_FACTOR * model.limit_ma[phase]
        if value > bound or value < -bound:
            absurd = True
    age_ms = _required_int(meter, "site.meter", "age_ms", 0, MAX_MS)
    if absurd or age_ms > model.meter_stale_ms:
        model.meter = METER_STALE
        return
    model.meter = METER_FRESH
    measured = [0] * phases
    for phase in range(phases):
        value = readings[phase]
        assert isinstance(value, int)  # checked above
        measured[phase] = value
    model.meter_ma = measured
    _meter_figures(model)


def _meter_figures(model: Site) -> None:
    """The unmanaged load per phase and the surplus, from a fresh meter's reading and the loads' credited draws."""
    phases = model.phases
    unmanaged = list(model.meter_ma)
    measured_ma = 0
    for phase in range(phases):
        measured_ma += unmanaged[phase]
    solar_draw_ma = 0
    for index in range(len(model.load_ids)):
        draw = credit_ma(model, index)
        if not draw:
            continue
        for phase in model.load_phases[index]:
            unmanaged[phase] -= draw
        urgency = model.load_urgency[index]
        if model.load_online[index] and URGENCY_SOLAR_PRIORITY <= urgency <= URGENCY_EXCESS:
            solar_draw_ma += draw * len(model.load_phases[index])
    quantum = METER_QUANTUM_MA
    for phase in range(phases):
        # Rounded up: the unmanaged load is never read as smaller than measured.
        unmanaged[phase] = -(-unmanaged[phase] // quantum) * quantum
    model.unmanaged_ma = unmanaged
    surplus = solar_draw_ma - measured_ma
    model.surplus_ma = surplus // quantum * quantum if surplus > 0 else 0


def _build_constraints(model: Site) -> None:
    phases = model.phases
    safety = model.safety_pct
    capacity = []
    position: dict[str, int] = {}
    for index, circuit_id in enumerate(model.circuit_ids):
        position[circuit_id] = index
        for phase in range(phases):
            capacity.append(model.circuit_limit_ma[index][phase] * safety // 100)
    first_site = len(capacity)
    for phase in range(phases):
        # Export does not widen the connection: it can vanish with a cloud, and
        # the limit is for what the managed loads are given.
        unmanaged = model.unmanaged_ma[phase]
        capacity.append(model.limit_ma[phase] * safety // 100 - (unmanaged if unmanaged > 0 else 0))
    first_import = len(capacity)
    capped = model.import_limit_w >= 0
    if capped:
        # The cap in watts split evenly over the phases; export does lower the import.
        per_phase_ma = model.import_limit_w * 1000 // (model.voltage_v * phases)
        for phase in range(phases):
            capacity.append(per_phase_ma - model.unmanaged_ma[phase])
    # Loads on the same circuit and phases share one list of constraints.
    shared: dict[tuple[str, tuple[int, ...]], list[int]] = {}
    count = len(model.load_ids)
    load_cons: list[list[int]] = [[]] * count
    covered = [0] * (len(capacity) + 1)
    for index in range(count):
        load_phases = model.load_phases[index]
        key = (model.load_circuit[index], load_phases)
        cons = shared.get(key)
        if cons is None:
            cons = []
            for circuit_id in model.load_chain[index]:
                base = position[circuit_id] * phases
                for phase in load_phases:
                    cons.append(base + phase)
            for phase in load_phases:
                cons.append(first_site + phase)
            if capped:
                for phase in load_phases:
                    cons.append(first_import + phase)
            shared[key] = cons
        load_cons[index] = cons
        for con in cons:
            covered[con + 1] += 1
    # Counts to offsets, then each load into its constraints' slices.
    for con in range(len(capacity)):
        covered[con + 1] += covered[con]
    flat = [0] * covered[len(capacity)]
    fill = covered[:]
    for index in range(count):
        for con in load_cons[index]:
            flat[fill[con]] = index
            fill[con] += 1
    model.con_capacity_ma = capacity
    model.con_first = covered
    model.con_loads = flat
    model.load_cons = load_cons


def _override_index(model: Site, what: str, load_id: object) -> int:
    index = model.load_index.get(load_id) if isinstance(load_id, str) else None
    if index is None:
        raise FieldError(what, describe(load_id) + " is not a load")
    return index


def _at(number: int, key: str) -> str:
    return "loads[" + str(number) + "]" + ("." + key if key else "")


def _circuit_at(number: int, key: str) -> str:
    return "circuits[" + str(number) + "]" + ("." + key if key else "")


def _object(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise FieldError(path, describe(value) + " is not an object")
    return value


def _list(value: object, path: str, most: int) -> list[object]:
    if not isinstance(value, list):
        raise FieldError(path, describe(value) + " is not a list")
    if len(value) > most:
        raise FieldError(path, "has " + str(len(value)) + " entries, more than " + str(most))
    return value


def _only_known(obj: dict[str, object], path: str, known: dict[str, int]) -> None:
    for key in obj:
        if key not in known:
            from .fieldcheck import key_name  # only for an error: a node keeps fieldcheck out of its heap

            unknown = sorted([str(name) for name in obj if name not in known])
            raise FieldError(_join(path, key_name(unknown[0])), "is not a known field")


def _join(path: str, key: str) -> str:
    return path + "." + key if path else key


def _required(obj: dict[str, object], path: str, key: str) -> object:
    if key not in obj:
        raise FieldError(_join(path, key), "is missing")
    return obj[key]


def _required_int(obj: dict[str, object], path: str, key: str, low: int, high: int) -> int:
    value = obj.get(key)
    if type(value) is not int or value < low or value > high:
        raise _bad_int(obj, _join(path, key), key, low, high)
    return value


def _optional_int(obj: dict[str, object], path: str, key: str, low: int, high: int, default: int) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if type(value) is not int or value < low or value > high:
        raise _bad_int(obj, _join(path, key), key, low, high)
    return value


def _bad_int(obj: dict[str, object], field: str, key: str, low: int, high: int) -> FieldError:
    """The error for obj[key], which is missing or not an integer from low to high."""
    if key not in obj:
        return FieldError(field, "is missing")
    return _bad_value(obj[key], field, low, high)


def _bad_value(value: object, field: str, low: int, high: int) -> FieldError:
    """The error for value, which is not an integer from low to high."""
    if not isinstance(value, int) or isinstance(value, bool):
        return FieldError(field, describe(value) + " is not an integer")
    if value < low:
        return FieldError(field, str(value) + " is below " + str(low))
    return FieldError(field, str(value) + " is above " + str(high))


def _bad(obj: dict[str, object], field: str, key: str, problem: str) -> FieldError:
    """The error for obj[key]: missing, or its value with problem."""
    if key not in obj:
        return FieldError(field, "is missing")
    return FieldError(field, describe(obj[key]) + problem)


def _bad_id(obj: dict[str, object], field: str, key: str) -> FieldError:
    if key not in obj:
        return FieldError(field, "is missing")
    value = obj[key]
    if not isinstance(value, str):
        return FieldError(field, describe(value) + " is not a string")
    return FieldError(field, describe(value) + " is not 1 to " + str(MAX_ID_CHARS)
                      + " letters, digits, '-', '_' or '.'")


def _good_id(value: str) -> bool:
    if not value or len(value) > MAX_ID_CHARS:
        return False
    for char in value:
        if not ("a" <= char <= "z" or "A" <= char <= "Z" or "0" <= char <= "9" or char in _ID_PUNCTUATION):
            return False
    return True


def _id(value: object, field: str) -> str:
    if not isinstance(value, str) or not _good_id(value):
        raise _bad_id({"id": value}, field, "id")
    return value


def _per_phase(value: object, field: str, phases: int) -> list[int]:
    if isinstance(value, list):
        if len(value) != phases:
            raise FieldError(field, "has " + str(len(value)) + " values for " + str(phases) + " phases")
        result = [0] * phases
        for phase in range(phases):
            item = value[phase]
            if type(item) is not int or item < 0 or item > MAX_MA:
                raise _bad_value(item, field + "[" + str(phase) + "]", 0, MAX_MA)
            result[phase] = item
        return result
    # One number: the same limit on every phase.
    if type(value) is not int or value < 0 or value > MAX_MA:
        raise _bad_value(value, field, 0, MAX_MA)
    return [value] * phases
