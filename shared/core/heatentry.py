"""Contract entries for heating: step files through the tiers, a boiler node, a room, the whole chain."""

import gc

from . import fieldcheck as fc
from .errors import FieldError

_COMPACT = hasattr(gc, "mem_free")  # MicroPython only; CPython's heap does not fragment like this

# A step file: {"config": ..., "state": optional, "steps": [{"now_ms": ..., ...}]}.
# Every step after the first only needs what changed: its objects are merged
# into the previous step's inputs, key by key. The answer is
# {"steps": [one object per step], "state": the state after the last step}.
# A tiers step may carry "config": new load-sharing settings taken at its now_ms,
# as a boiler node takes a PUT /heating (tiers.reconfigured), before the step runs;
# the inputs carried forward then drop the rooms no longer configured.
# Each kind imports only its own modules, as the node that runs it would:
#   tiers    the load-sharing state machine (boiler node)
#   boiler   the boiler state machine and the valve arbitration (boiler node)
#   room     room control on a schedule (valve node)
#   heating  the whole chain for one controller; too big for an ESP32-sized
#            heap with every module loaded, so it runs on CPython and the
#            full-heap MicroPython build only
MAX_STEPS = 200


class _Kind:
    """One kind of step file: how to load its config, state and inputs, and run a step."""

    keep: tuple[str, ...] = ()

    def config(self, raw: object) -> dict[str, object]:
        raise NotImplementedError

    def state(self, config: dict[str, object], raw: object) -> dict[str, object]:
        raise NotImplementedError

    def inputs(self, config: dict[str, object], raw: object, now_ms: int) -> dict[str, object]:
        raise NotImplementedError

    def step(self, config: dict[str, object], state: dict[str, object], inputs: dict[str, object],
             now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
        raise NotImplementedError

    def reconfigure(self, old_config: dict[str, object], state: dict[str, object], new_config: dict[str, object],
                    raw: object, now_ms: int) -> tuple[dict[str, object], object]:
        """The state and the carried-forward inputs under new_config, taken at now_ms."""
        raise FieldError("config", "cannot change within a step file of this kind")


class _Tiers(_Kind):
    keep = ("state", "valve_pct", "reasons", "calling_w", "total_w", "stale", "log")

    def config(self, raw: object) -> dict[str, object]:
        from . import tiers

        return tiers.load_config(raw, "config")

    def state(self, config: dict[str, object], raw: object) -> dict[str, object]:
        from . import tiers

        return tiers.initial_state(config) if raw is None else tiers.load_state(config, raw, "state")

    def inputs(self, config: dict[str, object], raw: object, now_ms: int) -> dict[str, object]:
        from . import tiers

        return tiers.load_inputs(config, raw)

    def step(self, config: dict[str, object], state: dict[str, object], inputs: dict[str, object],
             now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
        from . import tiers

        return tiers.step(config, state, inputs, now_ms)

    def reconfigure(self, old_config: dict[str, object], state: dict[str, object], new_config: dict[str, object],
                    raw: object, now_ms: int) -> tuple[dict[str, object], object]:
        from . import tiers

        mapping = fc.obj(raw, "")
        rooms = mapping.get("rooms")
        if isinstance(rooms, dict):
            known = tiers.room_ids(new_config)
            mapping = dict(mapping)
            mapping["rooms"] = {rid: rooms[rid] for rid in rooms if rid in known}
        return tiers.reconfigured(old_config, state, new_config, now_ms), mapping


class _Boiler(_Kind):
    """The boiler node's own loop without load sharing: boiler state machine, then valve arbitration."""

    keep = ("fsm", "boiler_on", "setpoint_dc", "cooldown", "reason", "interlock", "valve_pct", "source")

    def config(self, raw: object) -> dict[str, object]:
        from . import boiler

        mapping = fc.obj(raw, "config")
        fc.only(mapping, ("rooms", "boiler"), "config")
        ids: list[str] = []
        for position, value in enumerate(fc.array_field(mapping, "rooms", "config.rooms")):
            rid = fc.room_id(value, fc.index("config.rooms", position))
            if rid in ids:
                raise FieldError(fc.index("config.rooms", position), fc.describe(rid) + " is listed twice")
            ids.append(rid)
        return {"rooms": ids, "boiler": boiler.load_config(mapping.get("boiler", {}), "config.boiler")}

    def state(self, config: dict[str, object], raw: object) -> dict[str, object]:
        from . import boiler, valves

        if raw is None:
            return {"boiler": boiler.initial_state(), "valves": valves.initial_state()}
        mapping = fc.obj(raw, "state")
        fc.only(mapping, ("boiler", "valves"), "state")
        ids = config["rooms"]
        assert isinstance(ids, list)
        return {"boiler": boiler.load_state(mapping.get("boiler"), "state.boiler"),
                "valves": valves.load_state(mapping.get("valves"), "state.valves", ids)}

    def inputs(self, config: dict[str, object], raw: object, now_ms: int) -> dict[str, object]:
        mapping = fc.obj(raw, "")
        fc.only(mapping, ("flame", "flow_dc", "return_dc", "rooms", "load_sharing"), "")
        ids = config["rooms"]
        assert isinstance(ids, list)
        rooms_raw = fc.obj_field(mapping, "rooms", "rooms")
        fc.same_keys(rooms_raw, ids, "rooms")
        rooms: dict[str, object] = {}
        for rid in ids:
            path = "rooms." + rid
            room = fc.obj(rooms_raw[rid], path)
            fc.only(room, ("normal_pct", "calling", "confirmed_pct", "correction_pct"), path)
            rooms[rid] = {"normal_pct": fc.int_field(room, "normal_pct", path, 0, 100),
                          "calling": fc.bool_field(room, "calling", path),
                          "confirmed_pct": fc.int_field(room, "confirmed_pct", path, 0, 100),
                          "correction_pct": fc.opt_int_field(room, "correction_pct", path, 0, 100)}
        sharing_raw = fc.obj(mapping.get("load_sharing", {}), "load_sharing")
        sharing: dict[str, int] = {}
        for rid in sorted(sharing_raw):
            if rid not in ids:
                raise FieldError("load_sharing." + fc.key_name(rid), "is not a configured room")
            sharing[rid] = fc.pct_step(fc.integer(sharing_raw[rid], "load_sharing." + rid, 10, 100),
                                       "load_sharing." + rid)
        return {"flame": fc.bool_field(mapping, "flame", ""),
                "flow_dc": fc.opt_int_field(mapping, "flow_dc", "", -400, 1500),
                "return_dc": fc.opt_int_field(mapping, "return_dc", "", -400, 1500),
                "rooms": rooms, "load_sharing": sharing}

    def step(self, config: dict[str, object], state: dict[str, object], inputs: dict[str, object],
             now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
        from . import boiler, valves

        rooms = inputs["rooms"]
        assert isinstance(rooms, dict)
        demand = False
        confirmed: dict[str, int] = {}
        for rid in sorted(rooms):
            demand = demand or rooms[rid]["calling"] is True
            confirmed[rid] = rooms[rid]["confirmed_pct"]
        settings = config["boiler"]
        boiler_state = state["boiler"]
        valves_state = state["valves"]
        assert isinstance(settings, dict) and isinstance(boiler_state, dict) and isinstance(valves_state, dict)
        boiler_out, boiler_new = boiler.step(settings, boiler_state, {
            "demand": demand, "confirmed_pct": valves.confirmed_pct(valves_state, confirmed), "flame": inputs["flame"],
            "flow_dc": inputs["flow_dc"], "return_dc": inputs["return_dc"]}, now_ms)
        valves_config = valves.load_config({"min_valve_open_pct": settings["min_valve_open_pct"]}, "config.boiler")
        valves_out, valves_new = valves.step(valves_config, valves_state, {
            "rooms": rooms, "load_sharing": inputs["load_sharing"], "hold": boiler_out["hold_valves"],
            "demand": demand, "firing": boiler_out["boiler_on"]}, now_ms)
        outputs = dict(boiler_out)
        outputs["interlock"] = valves_out["interlock"]
        outputs["valve_pct"] = valves_out["valve_pct"]
        outputs["source"] = valves_out["source"]
        return outputs, {"boiler": boiler_new, "valves": valves_new}


class _Room(_Kind):
    """A valve node's loop: the schedule's target, then room control."""

    keep = ("target_dc", "calling", "valve_pct", "reason", "next_start_in_ms", "next_target_dc")

    def config(self, raw: object) -> dict[str, object]:
        from . import roomctl, schedule

        mapping = fc.obj(raw, "config")
        fc.only(mapping, ("schedule", "control"), "config")
        return {"schedule": schedule.load(mapping.get("schedule"), "config.schedule"),
                "control": roomctl.load_config(mapping.get("control", {}), "config.control")}

    def state(self, config: dict[str, object], raw: object) -> dict[str, object]:
        from . import roomctl

        return roomctl.initial_state() if raw is None else roomctl.load_state(raw, "state")

    def inputs(self, config: dict[str, object], raw: object, now_ms: int) -> dict[str, object]:
        from . import roomctl, schedule

        mapping = fc.obj(raw, "")
        fc.only(mapping, ("week_ms", "mode", "temp_dc", "temp_age_ms", "manual_target_dc"), "")
        mode = fc.choice_field(mapping, "mode", "", roomctl.MODES)
        manual = fc.opt_int_field(mapping, "manual_target_dc", "", schedule.TARGET_MIN_DC, schedule.TARGET_MAX_DC)
        if mode == "manual" and manual is None:
            raise FieldError("manual_target_dc", "is missing for a room in manual mode")
        return {"week_ms": fc.int_field(mapping, "week_ms", "", 0, schedule.WEEK_MS - 1, now_ms % schedule.WEEK_MS),
                "mode": mode, "manual_target_dc": manual,
                "temp_dc": fc.opt_int_field(mapping, "temp_dc", "", -400, 600),
                "temp_age_ms": fc.int_field(mapping, "temp_age_ms", "", 0, 1 << 62, 0)}

    def step(self, config: dict[str, object], state: dict[str, object], inputs: dict[str, object],
             now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
        from . import roomctl, schedule

        plan = config["schedule"]
        control = config["control"]
        week_ms = inputs["week_ms"]
        assert isinstance(plan, dict) and isinstance(control, dict) and isinstance(week_ms, int)
        target = inputs["manual_target_dc"] if inputs["mode"] == "manual" else schedule.target_at(plan, week_ms)
        outputs, new = roomctl.step(control, state, {"mode": inputs["mode"], "target_dc": target,
                                                     "temp_dc": inputs["temp_dc"],
                                                     "temp_age_ms": inputs["temp_age_ms"]}, now_ms)
        upcoming = schedule.next_block(plan, week_ms)
        outputs["target_dc"] = target
        outputs["next_start_in_ms"] = None if upcoming is None else upcoming[0]
        outputs["next_target_dc"] = None if upcoming is None else upcoming[1]
        return outputs, new


class _Heating(_Kind):
    keep = ("valve_pct", "source", "interlock", "calling", "boiler_on", "boiler_fsm", "setpoint_dc", "cooldown",
            "tiers_state", "load_sharing", "log")

    def config(self, raw: object) -> dict[str, object]:
        from . import heating

        try:
            return heating.load_config(raw)
        except FieldError as exc:
            raise FieldError("config." + exc.field if exc.field else "config", exc.problem) from None

    def state(self, config: dict[str, object], raw: object) -> dict[str, object]:
        from . import heating

        return heating.initial_state(config) if raw is None else heating.load_state(config, raw)

    def inputs(self, config: dict[str, object], raw: object, now_ms: int) -> dict[str, object]:
        from . import heating, schedule

        if isinstance(raw, dict) and "week_ms" not in raw:
            raw = dict(raw)  # derived for this step only, never carried to the next
            raw["week_ms"] = now_ms % schedule.WEEK_MS
        return heating.load_inputs(config, raw)

    def step(self, config: dict[str, object], state: dict[str, object], inputs: dict[str, object],
             now_ms: int) -> tuple[dict[str, object], dict[str, object]]:
        from . import heating

        return heating.step(config, state, inputs, now_ms)


def _unknown_first(kind: _Kind, config: dict[str, object], raw: object, last_ms: int, where: str) -> None:
    """Raise the inputs' own error, if any, for a step without now_ms: a misspelt now_msx is named, not the
    now_ms it leaves missing. A step that reconfigures is left to the missing now_ms (its inputs are checked
    against the new config, which is not read before the time it takes effect)."""
    if isinstance(raw, dict) and "config" not in raw:
        try:
            kind.inputs(config, raw, last_ms if last_ms >= 0 else 0)
        except FieldError as exc:
            raise FieldError(where + "." + exc.field if exc.field else where, exc.problem) from None


def _steps(request: object, kind: _Kind) -> object:
    mapping = fc.obj(request, "request")
    # A misspelt "state" would otherwise run from a fresh state, unnoticed.
    fc.only(mapping, ("config", "state", "steps"), "")
    if "config" not in mapping:
        raise FieldError("config", "is missing")
    config = kind.config(mapping["config"])
    state = kind.state(config, mapping.get("state"))
    steps = mapping.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise FieldError("steps", "must be a list of 1.." + str(MAX_STEPS) + " steps")
    answers = []
    raw: object = {}
    last_ms = -1
    for position, patch in enumerate(steps):
        where = fc.index("steps", position)
        body = dict(fc.obj(patch, where))
        if "now_ms" not in body:
            _unknown_first(kind, config, fc.merged(raw, body), last_ms, where)
            raise FieldError(where + ".now_ms", "is missing")
        now_ms = body.pop("now_ms")
        if isinstance(now_ms, bool) or not isinstance(now_ms, int) or not 0 <= now_ms < 1 << 62:
            raise FieldError(where + ".now_ms", fc.describe(now_ms) + " is not a time in ms")
        if now_ms < last_ms:
            raise FieldError(where + ".now_ms", str(now_ms) + " is before the step before")
        last_ms = now_ms
        if "config" in body:
            try:
                new_config = kind.config(body.pop("config"))
                raw = fc.merged(raw, body)
                state, raw = kind.reconfigure(config, state, new_config, raw, now_ms)
            except FieldError as exc:
                raise FieldError(where + "." + exc.field if exc.field else where, exc.problem) from None
            config = new_config
        else:
            raw = fc.merged(raw, body)
        try:
            inputs = kind.inputs(config, raw, now_ms)
        except FieldError as exc:
            raise FieldError(where + "." + exc.field if exc.field else where, exc.problem) from None
        outputs, state = kind.step(config, state, inputs, now_ms)
        answer: dict[str, object] = {"now_ms": now_ms}
        for key in kind.keep:
            answer[key] = outputs[key]
        answers.append(answer)
        if _COMPACT:
            # Collect before the next step allocates: what each step keeps then
            # packs low instead of between the step's garbage, which leaves an
            # ESP32-sized heap no block big enough for the answer line.
            gc.collect()
    return {"steps": answers, "state": state}


def _radiator(request: object) -> object:
    from . import radiator

    mapping = fc.obj(request, "request")
    fc.only(mapping, ("radiators", "flow_efficiency_pct"), "")
    efficiency = fc.int_field(mapping, "flow_efficiency_pct", "", 10, 400, 120)
    capacity = []
    effective = []
    for position, raw in enumerate(fc.array_field(mapping, "radiators", "radiators")):
        path = fc.index("radiators", position)
        item = fc.obj(raw, path)
        fc.only(item, ("rated_w", "exponent_permille", "delta_dc", "valve_pct"), path)
        full = radiator.capacity_w(
            fc.int_field(item, "rated_w", path, 1, radiator.RATED_MAX_W),
            fc.int_field(item, "exponent_permille", path, radiator.EXPONENT_MIN_PERMILLE,
                         radiator.EXPONENT_MAX_PERMILLE, 1300),
            fc.int_field(item, "delta_dc", path, -1000, radiator.DELTA_MAX_DC))
        capacity.append(full)
        effective.append(radiator.effective_w(full, fc.int_field(item, "valve_pct", path, 0, 100, 100), efficiency))
    return {"capacity_w": capacity, "effective_w": effective}


def run(kind: str, request: object) -> object:
    """Answer one heating entry: tiers, boiler, room, heating (step files) or radiator."""
    if kind == "radiator":
        return _radiator(request)
    if kind == "tiers":
        return _steps(request, _Tiers())
    if kind == "boiler":
        return _steps(request, _Boiler())
    if kind == "room":
        return _steps(request, _Room())
    return _steps(request, _Heating())
