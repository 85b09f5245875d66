"""The group config every node of a mesh shares: schema, checks, canonical text and hash."""

import hashlib

from . import canon, headroom, site
from . import fieldcheck as fc
from .errors import FieldError, describe

# A config is checked once (parse) and then handled as plain JSON data with
# every default filled in, circuits and members sorted by id, per-phase limits
# as lists: one config has one canonical text (canon.dumps), and its SHA-256
# is the config hash that heartbeats announce. The site, circuit and member
# facts are checked by site.parse, the allocation's own model, so the config
# can never hold what the allocation would refuse. docs/safety.md gives the
# reasons for the timing bounds. Which config wins, the conservative merge and
# the signed transport are in configsync.

KINDS = ("evse", "valve", "boiler", "relay")
FAILSAFE_MODES = ("safe_current", "disable")
MAX_ID_CHARS = 16  # member, circuit and group ids travel in heartbeats
MAX_MEMBERS = 17  # a node and the 16 peers its table holds (peers.MAX_PEERS)
MAX_VERSION = (1 << 30) - 1  # travels as the heartbeat's config_version
# updated_at is the author's clock in seconds since the epoch (the tie-break
# on one version: the later wins). Milliseconds are refused (every time since
# 2004 is above the bound) so that two authors' times compare like with like:
# one author's milliseconds would win over every other's seconds. Above 2^30
# it is a long int on ESP32 (as a time in seconds is since 2004): compared and
# written as text only, never in arithmetic on the tick.
MAX_UPDATED_AT = 1 << 40
ANNOUNCED_HEX = 16  # the config hash prefix a heartbeat carries (64 bits)

HEARTBEAT_MS = 500
PEER_TIMEOUT_MS = 3000
WDT_MS = 2000
EV_LAG_MS = 5000
MARGIN_MS = 1000
ANTIFLAP_MS = 300000
FAILSAFE_MA = 6000

_TOP_KEYS = ("group", "version", "updated_at", "origin", "key_id", "site", "circuits", "members", "heartbeat_ms",
             "peer_timeout_ms", "wdt_ms", "ev_lag_ms", "margin_ms", "antiflap_ms", "ramp_ma", "failsafe")
_SITE_KEYS = ("phases", "voltage_v", "limit_ma", "safety_pct", "import_limit_w", "meter_node", "meter_stale_ms",
              "excess_threshold_w")
_CIRCUIT_KEYS = ("id", "parent", "limit_ma")
_MEMBER_KEYS = ("id", "kind", "circuit", "phases", "min_ma", "max_ma", "step_ma", "priority", "mode", "failsafe_ma")
_FAILSAFE_KEYS = ("mode", "current_ma")
# Valves and boilers are members for liveness and heating; they draw no
# managed current unless their config says so. With max_ma 0 the phase is
# only a place in the model (L1 exists on every site), not a draw.
_NO_CURRENT = {"phases": "L1", "min_ma": 0, "max_ma": 0, "step_ma": 1000}


def parse(raw: object) -> dict[str, object]:
    """A checked, normalized config (plain JSON data); FieldError names the first bad field."""
    top = fc.obj(raw, "config")
    fc.only(top, _TOP_KEYS, "")
    config: dict[str, object] = {
        "group": _id_field(top, "group", ""),
        "version": fc.int_field(top, "version", "", 0, MAX_VERSION),
        "updated_at": _updated_at(top),
        "origin": _id_field(top, "origin", "", site.MAX_ID_CHARS),
        "key_id": _id_field(top, "key_id", "", site.MAX_ID_CHARS),
    }
    site_raw = fc.obj_field(top, "site", "site")
    fc.only(site_raw, _SITE_KEYS, "site")
    circuits_raw = top.get("circuits", [])
    circuits = fc.array(circuits_raw, "circuits")
    members = fc.array_field(top, "members", "members")
    if not members:
        raise FieldError("members", "is empty")
    if len(members) > MAX_MEMBERS:
        raise FieldError("members", "has " + str(len(members)) + " entries, more than " + str(MAX_MEMBERS))
    loads = []
    extra: list[tuple[str, int | None]] = []
    for position, member in enumerate(members):
        path = fc.index("members", position)
        mapping = fc.obj(member, path)
        fc.only(mapping, _MEMBER_KEYS, path)
        kind = fc.choice_field(mapping, "kind", path, KINDS)
        load: dict[str, object] = {}
        for key in ("id", "circuit", "phases", "min_ma", "max_ma", "step_ma", "priority", "mode"):
            if key in mapping:
                load[key] = mapping[key]
        if kind in ("valve", "boiler"):
            for key in _NO_CURRENT:
                if key not in load:
                    load[key] = _NO_CURRENT[key]
        load.setdefault("priority", 0)
        load.setdefault("mode", "continuous")
        load["demand"] = False
        load["online"] = True
        loads.append(load)
        extra.append((kind, fc.opt_int_field(mapping, "failsafe_ma", path, 0, site.MAX_MA)))
    for position, circuit in enumerate(circuits):
        if isinstance(circuit, dict):
            fc.only(circuit, _CIRCUIT_KEYS, fc.index("circuits", position))
    scenario: dict[str, object] = {"site": _scenario_site(site_raw), "circuits": circuits, "loads": loads}
    model = _site_model(scenario)
    config["site"] = _normal_site(site_raw, model)
    config["circuits"] = [{"id": circuit_id, "parent": model.circuit_parent[index],
                           "limit_ma": list(model.circuit_limit_ma[index])}
                          for index, circuit_id in enumerate(model.circuit_ids)]
    for circuit_id in model.circuit_ids:
        if len(circuit_id) > MAX_ID_CHARS:
            raise FieldError(_circuit_path(circuits, circuit_id, "id"), describe(circuit_id) + " is longer than "
                             + str(MAX_ID_CHARS) + " characters (ids travel in heartbeats)")
    normal_members = []
    boilers: list[str] = []
    for position in range(len(members)):
        load = loads[position]
        member_id = load["id"]
        assert isinstance(member_id, str)
        path = fc.index("members", position)
        if len(member_id) > MAX_ID_CHARS:
            raise FieldError(path + ".id", describe(member_id) + " is longer than " + str(MAX_ID_CHARS)
                             + " characters (ids travel in heartbeats)")
        kind, failsafe = extra[position]
        if kind == "valve":
            # A valve node's id is its room's id in the boiler node's heating.json.
            try:
                fc.room_id(member_id, path + ".id")
            except FieldError as exc:
                raise FieldError(exc.field, exc.problem + ": a valve node's id names its room") from None
        elif kind == "boiler" and boilers:
            raise FieldError(path + ".kind", "'boiler' again (" + boilers[0] + " is one): the valve nodes "
                             "follow one boiler node")
        if kind == "boiler":
            boilers.append(member_id)
        index = model.load_index[member_id]
        if kind == "relay" and model.load_min_ma[index] != model.load_max_ma[index]:
            raise FieldError(path + ".min_ma", "a relay switches its whole load: min_ma "
                             + str(model.load_min_ma[index]) + " must equal max_ma " + str(model.load_max_ma[index]))
        normal_members.append({
            "id": member_id, "kind": kind, "circuit": model.load_circuit[index],
            "phases": "L123" if len(model.load_phases[index]) == 3 else site.PHASE_NAMES[model.load_phases[index][0]],
            "min_ma": model.load_min_ma[index], "max_ma": model.load_max_ma[index],
            "step_ma": model.load_step_ma[index], "priority": model.load_priority[index],
            "mode": site.MODE_NAMES[model.load_urgency[index]], "failsafe_ma": failsafe,
        })
    normal_members.sort(key=lambda member: member["id"])  # type: ignore[arg-type,return-value]
    config["members"] = normal_members
    meter_node = config["site"]["meter_node"]  # type: ignore[index]
    if meter_node is not None and meter_node not in model.load_index:
        raise FieldError("site.meter_node", describe(meter_node) + " is not a member")
    _parse_timing(top, config)
    failsafe_raw = fc.obj(top.get("failsafe", {}), "failsafe")
    fc.only(failsafe_raw, _FAILSAFE_KEYS, "failsafe")
    config["failsafe"] = {
        "mode": fc.choice_field(failsafe_raw, "mode", "failsafe", FAILSAFE_MODES, "safe_current"),
        "current_ma": fc.int_field(failsafe_raw, "current_ma", "failsafe", 0, site.MAX_MA, FAILSAFE_MA),
    }
    check_failsafe_fits(config)
    return config


def _updated_at(top: dict[str, object]) -> int:
    value = top.get("updated_at")
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_UPDATED_AT:
        raise FieldError("updated_at", str(value) + " is above " + str(MAX_UPDATED_AT)
                         + ": seconds since the epoch, not milliseconds")
    return fc.int_field(top, "updated_at", "", 0, MAX_UPDATED_AT)


def _below(value: object, other: object) -> bool:
    """Whether value is an integer below other, an integer (not a bool: JSON's true is no number)."""
    return (isinstance(value, int) and not isinstance(value, bool) and isinstance(other, int)
            and not isinstance(other, bool) and value < other)


def _parse_timing(top: dict[str, object], config: dict[str, object]) -> None:
    heartbeat_ms = fc.int_field(top, "heartbeat_ms", "", 100, 10000, HEARTBEAT_MS)
    # Three heartbeats per timeout: one lost packet must not look like silence.
    # A bound that is another field is named with it: "out of range 3000..60000"
    # alone would not say where the 3000 comes from.
    if _below(top.get("peer_timeout_ms"), 3 * heartbeat_ms):
        raise FieldError("peer_timeout_ms", str(top["peer_timeout_ms"]) + " is below " + str(3 * heartbeat_ms)
                         + ", three times heartbeat_ms " + str(heartbeat_ms))
    peer_timeout_ms = fc.int_field(top, "peer_timeout_ms", "", 3 * heartbeat_ms, 60000,
                                   max(PEER_TIMEOUT_MS, 3 * heartbeat_ms))
    # A crashed node's actuator holds its last limit until the watchdog resets
    # it: the safety argument needs that to happen within peer_timeout_ms.
    wdt_ms = top.get("wdt_ms")
    if _below(peer_timeout_ms, wdt_ms):
        raise FieldError("wdt_ms", str(wdt_ms) + " is above peer_timeout_ms " + str(peer_timeout_ms))
    wdt_ms = fc.int_field(top, "wdt_ms", "", 100, peer_timeout_ms, min(WDT_MS, peer_timeout_ms))
    config["heartbeat_ms"] = heartbeat_ms
    config["peer_timeout_ms"] = peer_timeout_ms
    config["wdt_ms"] = wdt_ms
    config["ev_lag_ms"] = fc.int_field(top, "ev_lag_ms", "", 0, 60000, EV_LAG_MS)
    config["margin_ms"] = fc.int_field(top, "margin_ms", "", 0, 60000, MARGIN_MS)
    config["antiflap_ms"] = fc.int_field(top, "antiflap_ms", "", 0, 3600000, ANTIFLAP_MS)
    config["ramp_ma"] = fc.int_field(top, "ramp_ma", "", 0, site.MAX_MA, 0)


def canonical(config: dict[str, object]) -> str:
    """The canonical JSON text of a parsed config: the bytes its hash covers."""
    return canon.dumps(config)


def config_hash(config: dict[str, object]) -> str:
    """SHA-256 of the canonical text, in hex (64 digits)."""
    raw: bytes = hashlib.sha256(canonical(config).encode()).digest()
    return raw.hex()


def announced(config: dict[str, object]) -> str:
    """The hash prefix a heartbeat carries for this config."""
    return config_hash(config)[:ANNOUNCED_HEX]


def member_failsafe_ma(config: dict[str, object], member: dict[str, object]) -> int:
    """What member enforces in failsafe and at boot: 0 in disable mode, else its failsafe current on its steps."""
    failsafe = config["failsafe"]
    assert isinstance(failsafe, dict)
    if failsafe["mode"] == "disable":
        return 0
    wanted = member["failsafe_ma"]
    if wanted is None:
        wanted = failsafe["current_ma"]
    assert isinstance(wanted, int)
    return lattice_ma(member, wanted)


def lattice_ma(member: dict[str, object], bound_ma: int) -> int:
    """The highest current member may be given that is at most bound_ma: 0, or min + k x step, or max."""
    low = member["min_ma"]
    high = member["max_ma"]
    step = member["step_ma"]
    assert isinstance(low, int) and isinstance(high, int) and isinstance(step, int)
    if bound_ma >= high:
        return high
    if bound_ma < low:
        return 0
    return low + (bound_ma - low) // step * step


def scenario(config: dict[str, object], loads: list[dict[str, object]]) -> dict[str, object]:
    """An allocation scenario (the `allocate` contract) for this config's site and circuits, with these loads."""
    site_cfg = config["site"]
    assert isinstance(site_cfg, dict)
    return {"site": _scenario_site(site_cfg), "circuits": config["circuits"], "loads": loads}


def check_failsafe_fits(config: dict[str, object]) -> None:
    """FieldError unless every circuit and site phase holds with every member at its failsafe current."""
    # A partition puts every node in failsafe at once, and a node boots there:
    # each circuit and phase must hold it. (The import cap is a tariff limit,
    # not a protection, and is left out.)
    members = config["members"]
    assert isinstance(members, list)
    loads = []
    for member in members:
        load = _member_load(member)
        load["online"] = False
        load["reserve_ma"] = member_failsafe_ma(config, member)
        loads.append(load)
    model = site.parse(scenario(config, loads))
    zero = {member["id"]: 0 for member in members}
    left = headroom.headroom_ma(model, zero)
    for name, _phase, capacity, _ in site.constraints(model):
        if name.startswith("import:"):
            continue
        if left[name] < 0:
            used = capacity - left[name]
            raise FieldError("failsafe", "with every member at its failsafe current " + name + " carries "
                             + str(used) + " mA, above its " + str(capacity) + " mA (limit x safety); lower "
                             "failsafe.current_ma or use mode disable")


def transition_share_ma(config: dict[str, object]) -> dict[str, int]:
    """Each member's cap while a narrower config is not yet agreed: shares of every constraint that only shrink.

    Two configs may each reach only some nodes, so that nodes running
    different configs hold their caps at once; what must hold then, for each
    constraint, is the largest capacity among the configs running. A cap that
    is split from each constraint alone, in a fixed order, by a rule that
    never gives a member less when the capacity grows, keeps any mixture of
    configs (over the same members and circuits) within that: for each
    constraint the mixture sums to at most what the widest config's split
    sums to, which is at most its capacity. The allocation's own targets are
    no such rule (a member its scarcity leaves at 0 under one limit may hold
    its minimum under a lower one). Per constraint, over the members that can
    draw current, in the allocation's order of preference by the config's
    facts (urgency, priority, id): while the minimums do not all fit, each
    member gets its minimum if it and every member before it fit, else 0;
    once they do, each gets its minimum plus an equal part of what is left.
    A member's cap is the smallest over its constraints, on its steps.
    """
    members = config["members"]
    assert isinstance(members, list)
    min_ma: dict[str, int] = {}
    cap_ma: dict[str, int] = {}
    rank: dict[str, int] = {}
    draws: dict[str, bool] = {}
    for member in members:
        member_id = member["id"]
        min_ma[member_id] = member["min_ma"]
        cap_ma[member_id] = member["max_ma"]
        draws[member_id] = member["max_ma"] > 0
        rank[member_id] = site.MODE_NAMES.index(member["mode"]) * (2 * site.MAX_PRIORITY + 1) + member["priority"]
    for _name, capacity, ids in capacities(config):
        assert isinstance(capacity, int) and isinstance(ids, list)
        ranked = sorted((rank[load_id], load_id) for load_id in ids if draws[load_id])
        total_min = 0
        for _, load_id in ranked:
            total_min += min_ma[load_id]
        # What is left once every minimum fits, split equally; the odd mA go
        # to the first ones (each part only grows with the capacity, and the
        # parts add up to exactly what is left).
        left_ma = capacity - total_min if capacity >= total_min else 0
        count = len(ranked)
        before_ma = 0
        for position, (_, load_id) in enumerate(ranked):
            before_ma += min_ma[load_id]
            share = min_ma[load_id] + (left_ma + count - 1 - position) // count if before_ma <= capacity else 0
            if share < cap_ma[load_id]:
                cap_ma[load_id] = share
    return {member["id"]: lattice_ma(member, cap_ma[member["id"]]) for member in members}


def node_facts(config: dict[str, object], node: str, announce_version: int | None = None,
               announce_hash: str | None = None) -> dict[str, object]:
    """What the controller needs of a parsed config to run node (controller.Plan takes it): plain JSON data."""
    members = config["members"]
    assert isinstance(members, list)
    ids = [member["id"] for member in members]
    if node not in ids:
        raise FieldError("node", describe(node) + " is not a member of the group")
    site_cfg = config["site"]
    assert isinstance(site_cfg, dict)
    shares = transition_share_ma(config)
    digest = config_hash(config)
    meter_node = site_cfg["meter_node"]
    facts = {
        "node": node, "group": config["group"], "own": ids.index(node), "members": members,
        "failsafe_ma": [member_failsafe_ma(config, member) for member in members],
        "transition_ma": [shares[member_id] for member_id in ids],
        "hash": digest, "version": config["version"] if announce_version is None else announce_version,
        "announced": digest[:ANNOUNCED_HEX] if announce_hash is None else announce_hash,
        "caps": capacities(config), "scenario": scenario(config, []),
        "phases": site_cfg["phases"], "meter_stale_ms": site_cfg["meter_stale_ms"],
        "meter_index": -1 if meter_node is None else ids.index(meter_node),
    }
    for key in ("heartbeat_ms", "peer_timeout_ms", "ev_lag_ms", "margin_ms", "antiflap_ms", "ramp_ma"):
        facts[key] = config[key]
    return facts


def capacities(config: dict[str, object]) -> list[list[object]]:
    """Each circuit and site constraint as [name, capacity mA, member ids]: what a config change may narrow."""
    members = config["members"]
    assert isinstance(members, list)
    model = site.parse(scenario(config, [_member_load(member) for member in members]))
    out: list[list[object]] = []
    for name, _phase, capacity, ids in site.constraints(model):
        if not name.startswith("import:"):
            out.append([name, capacity, ids])
    return out


def _member_load(member: dict[str, object]) -> dict[str, object]:
    return {"id": member["id"], "circuit": member["circuit"], "phases": member["phases"], "min_ma": member["min_ma"],
            "max_ma": member["max_ma"], "step_ma": member["step_ma"], "priority": member["priority"],
            "mode": member["mode"], "demand": False, "online": True}


def _scenario_site(site_cfg: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in ("phases", "voltage_v", "limit_ma", "safety_pct", "import_limit_w", "meter_stale_ms",
                "excess_threshold_w"):
        if key in site_cfg and site_cfg[key] is not None:
            out[key] = site_cfg[key]
    return out


def _site_model(scenario_raw: dict[str, object]) -> site.Site:
    try:
        return site.parse(scenario_raw)
    except FieldError as exc:
        field = exc.field
        if field.startswith("loads"):
            field = "members" + field[len("loads"):]
        elif field == "scenario":
            field = "config"
        raise FieldError(field, exc.problem) from None


def _normal_site(site_raw: dict[str, object], model: site.Site) -> dict[str, object]:
    meter_node = site_raw.get("meter_node")
    if meter_node is not None:
        meter_node = _id_value(meter_node, "site.meter_node", MAX_ID_CHARS)
    return {
        "phases": model.phases, "voltage_v": model.voltage_v, "limit_ma": list(model.limit_ma),
        "safety_pct": model.safety_pct,
        "import_limit_w": model.import_limit_w if model.import_limit_w >= 0 else None,
        "meter_node": meter_node, "meter_stale_ms": model.meter_stale_ms,
        "excess_threshold_w": model.excess_threshold_w,
    }


def _circuit_path(circuits: list[object], circuit_id: str, key: str) -> str:
    for position, circuit in enumerate(circuits):
        if isinstance(circuit, dict) and circuit.get("id") == circuit_id:
            return fc.index("circuits", position) + "." + key
    return "circuits"


def _id_field(mapping: dict[str, object], key: str, path: str, most: int = MAX_ID_CHARS) -> str:
    if key not in mapping:
        raise FieldError(fc.join(path, key), "is missing")
    return _id_value(mapping[key], fc.join(path, key), most)


def _id_value(value: object, path: str, most: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= most:
        raise FieldError(path, describe(value) + " is not an id of 1 to " + str(most) + " characters")
    for char in value:
        if not ("a" <= char <= "z" or "A" <= char <= "Z" or "0" <= char <= "9" or char in "-_."):
            raise FieldError(path, describe(value) + " is not an id (use letters, digits, '-', '_' and '.')")
    return value
