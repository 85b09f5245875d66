"""The reference house: a physical plant (rooms, radiators, pipes, boiler) stepped in simulated time.

This is the plant, not decision logic: it runs on CPython with floats. It takes
what the controller commands (valve openings in percent, boiler on/off, flow
setpoint) and gives back what sensors read (room temperatures, valve feedback,
flame, flow and return temperatures) in the core's units. The house-bench
drives it with the core's controller; the simulator drives it next to real
nodes. Nothing here decides anything the nodes decide.

Model, per room: an air node and a mass node (walls, floors, furniture)
against the outside, coupled to neighbouring rooms; a radiator whose water
emits per EN 442 into the air, in segments in series so that the water
cools along it as in a real one. The heating circuit: a primary node (boiler
heat exchanger, pipework, bypass) feeding every radiator through its valve
(flow linear in the opening, rate-limited motor), a pump with an automatic
bypass keeping a minimum flow through the boiler, and a modulating boiler
that cannot go below its minimum output: with less load than that it
overheats its flow, stops the burner and relights after its own anti-cycling
delay, which is the short cycle load sharing is there to prevent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

WATER_J_PER_KG_K = 4186.0
STEEL_J_PER_KG_K = 460.0
SHORT_RUN_S = 600.0  # a burner run under 10 min is a short cycle
# A radiator's water cools along it, each part emitting per EN 442 at its own
# temperature. One well-mixed node emits at its outlet temperature instead:
# 11 % short at the balanced flow, 17 % at half of it, 23 % at a fifth, which
# starved the plant of the very emitters load sharing opens. Five segments in
# series (as Modelica Buildings' RadiatorEN442_2) are 2.5 %, 4 % and 6 % short.
RADIATOR_SEGMENTS = 5


@dataclass(frozen=True)
class RoomSpec:
    """One room: its radiator, its thermal model, and how it is used."""

    id: str
    rated_w: int  # radiator output at ΔT50
    exponent_permille: int  # EN 442 exponent: 1300 panels, 1200 towel rails
    floor_m2: float
    air_out_w_per_k: float  # ventilation and windows
    mass_out_w_per_k: float  # walls, roof, floor
    mode: str  # "auto" | "manual" | "off"
    schedule: dict[str, object]  # the core's schedule format
    manual_target_dc: int | None = None
    fallback_priority: int | None = None
    lookahead_ms: int = 3600000
    base_gains_w: float = 0.0  # appliances, always on
    occupied_gains_w: float = 0.0  # people, cooking: while a schedule block runs
    air_j_per_k_m2: float = 15000.0  # air, furniture, light surfaces
    mass_j_per_k_m2: float = 100000.0  # walls and floors that exchange with the room
    air_mass_w_per_k_m2: float = 9.2  # ISO 13790 5R1C: 3.45 x 4.5 A air-surface, 9.1 x 2.5 A surface-mass, in series
    radiant_share: float = 0.3  # of a radiator's output, what goes to the surfaces rather than the air
    design_c: float = 18.0  # the room's design temperature (UK practice: living 21, bathroom 22, others 18)


@dataclass(frozen=True)
class BoilerSpec:
    """A modulating gas boiler and its primary circuit."""

    max_w: float = 24000.0
    min_w: float = 6000.0
    primary_j_per_k: float = 50000.0  # heat exchanger, pipework and bypass water
    primary_loss_w_per_k: float = 3.0  # into the room it stands in
    primary_room: str = "kitchen"
    bypass_min_kg_s: float = 0.12  # the automatic bypass keeps this through the boiler
    off_above_setpoint_k: float = 5.0  # burner stops at flow >= setpoint + this
    relight_below_setpoint_k: float = 3.0  # and relights at flow <= setpoint - this
    anti_cycle_s: float = 180.0  # the boiler's own delay between burner runs
    pump_overrun_s: float = 180.0  # the pump runs on after the heating demand ends
    modulation_w_per_k: float = 800.0
    design_drop_k: float = 10.0  # radiator flows are balanced for this drop at design output


@dataclass(frozen=True)
class HouseSpec:
    """Rooms, their couplings, the boiler and the weather."""

    rooms: tuple[RoomSpec, ...]
    couplings: tuple[tuple[str, str, float], ...]  # (room, room, W/K)
    boiler: BoilerSpec
    outside_c: Callable[[float], float]  # outside temperature at a simulated time in s
    start_week_s: float = 0.0  # the simulated time 0, in s since Monday 00:00 (negative: the week before)
    valve_travel_s: float = 40.0  # a valve motor's time from closed to fully open
    start_air_c: float = 16.0


DESIGN_OUTSIDE_C = -3.0  # the UK design outside temperature radiators are sized for


def design_heat_loss_w(spec: HouseSpec, outside_c: float = DESIGN_OUTSIDE_C) -> dict[str, float]:
    """Each room's steady heat loss with every room at its design temperature: what its radiator must cover."""
    design = {room.id: room.design_c for room in spec.rooms}
    losses = {}
    for room in spec.rooms:
        inside = room.design_c
        air_mass = room.air_mass_w_per_k_m2 * room.floor_m2
        # The mass node between the air and the outside, fed by the radiator's radiant share: solve the air's
        # balance (1 - r) Q + air_mass (mass - inside) = air_out (inside - outside) + to neighbours, with
        # mass = (r Q + air_mass inside + mass_out outside) / (air_mass + mass_out).
        through_mass = air_mass / (air_mass + room.mass_out_w_per_k)
        neighbours = sum(w * (inside - design[b if a == room.id else a])
                         for a, b, w in spec.couplings if room.id in (a, b))
        drift = air_mass * ((air_mass * inside + room.mass_out_w_per_k * outside_c) / (air_mass + room.mass_out_w_per_k)
                            - inside)
        losses[room.id] = (room.air_out_w_per_k * (inside - outside_c) + neighbours - drift) \
            / (1.0 - room.radiant_share + through_mass * room.radiant_share)
    return losses


def en442_w(rated_w: float, exponent: float, delta_k: float) -> float:
    """Radiator output (negative when the water is colder than the room)."""
    ratio = abs(delta_k) / 50.0
    output: float = rated_w * math.pow(ratio, exponent)
    return output if delta_k >= 0.0 else -output


@dataclass
class Run:
    """One burner run."""

    start_s: float
    end_s: float | None = None
    ended_by: str | None = None  # "thermostat": the boiler's own, at setpoint + margin; "demand": switched off


@dataclass
class PlantStats:
    """What happened in the plant, for benchmarks."""

    burner_starts: int = 0
    runs: list[Run] = field(default_factory=list)
    energy_j: float = 0.0
    radiator_j: dict[str, float] = field(default_factory=dict)
    valve_open_s: dict[str, float] = field(default_factory=dict)
    flame_short_interlock_s: float = 0.0  # flame on while the valve openings were below the minimum


class House:
    """The plant: command() what the controller decides, advance() time, readings() what sensors see."""

    def __init__(self, spec: HouseSpec, interlock_min_pct: int = 100) -> None:
        self.spec = spec
        self.ids = [room.id for room in spec.rooms]
        self.t_s = 0.0
        self.interlock_min_pct = interlock_min_pct
        n = len(spec.rooms)
        self.air_c = [spec.start_air_c] * n
        self.mass_c = [spec.start_air_c] * n
        self.rad_c = [[spec.start_air_c] * RADIATOR_SEGMENTS for _ in range(n)]  # per segment, inlet to outlet
        self.valve_pos = [0.0] * n
        self.valve_cmd = [0.0] * n
        self.primary_c = spec.start_air_c
        self.ch_enabled = False
        self.setpoint_c = 70.0
        self.pump_until_s = -1.0
        self.burner_on = False
        self.burner_w = 0.0
        self.last_flame_off_s = -1e9
        self.stats = PlantStats(radiator_j={i: 0.0 for i in self.ids}, valve_open_s={i: 0.0 for i in self.ids})
        boiler = spec.boiler
        self._air_j = [r.air_j_per_k_m2 * r.floor_m2 for r in spec.rooms]
        self._mass_j = [r.mass_j_per_k_m2 * r.floor_m2 for r in spec.rooms]
        self._air_mass = [r.air_mass_w_per_k_m2 * r.floor_m2 for r in spec.rooms]
        # About 4 l of water and 12 kg of steel per kW of radiator.
        self._segment_j = [r.rated_w / 1000.0 * (4.0 * WATER_J_PER_KG_K + 12.0 * STEEL_J_PER_KG_K) / RADIATOR_SEGMENTS
                           for r in spec.rooms]
        # Balanced for the design drop at about 85 % of rated output (flow 70 °C, room 20 °C).
        self._flow_kg_s = [0.85 * r.rated_w / (WATER_J_PER_KG_K * boiler.design_drop_k) for r in spec.rooms]
        self._exponent = [r.exponent_permille / 1000.0 for r in spec.rooms]
        index = {rid: k for k, rid in enumerate(self.ids)}
        self._couplings = [(index[a], index[b], w) for a, b, w in spec.couplings]
        self._primary_room = index[boiler.primary_room]
        self._blocks = [_week_blocks(r.schedule) for r in spec.rooms]
        self._flow_reading_c = self.primary_c
        self._return_reading_c = self.primary_c

    def command(self, valve_pct: dict[str, int], boiler_on: bool, setpoint_dc: int) -> None:
        """What the controller commands: valve openings, heating demand, flow setpoint."""
        for k, rid in enumerate(self.ids):
            self.valve_cmd[k] = float(max(0, min(100, valve_pct.get(rid, 0))))
        if self.ch_enabled and not boiler_on:
            self.pump_until_s = self.t_s + self.spec.boiler.pump_overrun_s
        self.ch_enabled = boiler_on
        self.setpoint_c = setpoint_dc / 10.0

    def readings(self) -> dict[str, object]:
        """What the sensors read, in the core's units."""
        rooms = {}
        for k, rid in enumerate(self.ids):
            rooms[rid] = {"temp_dc": round(self.air_c[k] * 10.0), "valve_pct": int(self.valve_pos[k] + 0.5)}
        return {"rooms": rooms, "flame": self.burner_on, "flow_dc": round(self._flow_reading_c * 10.0),
                "return_dc": round(self._return_reading_c * 10.0), "outside_dc": round(self.outside_c() * 10.0)}

    def outside_c(self) -> float:
        """The outside temperature now."""
        return self.spec.outside_c(self.t_s)

    def week_s(self) -> float:
        """The time of week now: s since Monday 00:00."""
        return (self.spec.start_week_s + self.t_s) % 604800.0

    def occupied(self, k: int) -> bool:
        """Whether room k is in one of its schedule blocks now (people are in: gains)."""
        minute = self.week_s() / 60.0
        return any(start <= minute < end for start, end in self._blocks[k])

    def advance(self, dt_s: float, max_step_s: float = 5.0) -> None:
        """Integrate dt_s of simulated time, in steps of at most max_step_s."""
        steps = max(1, math.ceil(dt_s / max_step_s - 1e-9))
        h = dt_s / steps
        for _ in range(steps):
            self._step(h)

    def _step(self, h: float) -> None:
        spec = self.spec
        boiler = spec.boiler
        n = len(self.ids)
        outside = spec.outside_c(self.t_s)
        pump = self.ch_enabled or self.t_s < self.pump_until_s
        travel = h * 100.0 / spec.valve_travel_s
        flows = [0.0] * n
        total_flow = 0.0
        for k in range(n):
            cmd, pos = self.valve_cmd[k], self.valve_pos[k]
            pos = min(cmd, pos + travel) if cmd > pos else max(cmd, pos - travel)
            self.valve_pos[k] = pos
            if pos > 0.0:
                self.stats.valve_open_s[self.ids[k]] += h
            if pump:
                flows[k] = self._flow_kg_s[k] * pos / 100.0
                total_flow += flows[k]
        boiler_flow = max(total_flow, boiler.bypass_min_kg_s) if pump else 0.0
        primary = self.primary_c
        # What the water carries into each radiator: in at the primary, out at its last segment.
        carried = [flows[k] * WATER_J_PER_KG_K * (primary - self.rad_c[k][-1]) for k in range(n)]
        load = sum(carried)
        # The boiler's own thermostat: the controller only enables it and sets the setpoint.
        if self.burner_on:
            if not self.ch_enabled or primary >= self.setpoint_c + boiler.off_above_setpoint_k:
                self.burner_on = False
                self.last_flame_off_s = self.t_s
                self.stats.runs[-1].end_s = self.t_s
                self.stats.runs[-1].ended_by = "demand" if not self.ch_enabled else "thermostat"
        elif self.ch_enabled and primary <= self.setpoint_c - boiler.relight_below_setpoint_k \
                and self.t_s - self.last_flame_off_s >= boiler.anti_cycle_s:
            self.burner_on = True
            self.stats.burner_starts += 1
            self.stats.runs.append(Run(self.t_s))
        if self.burner_on:
            wanted = load + boiler.modulation_w_per_k * (self.setpoint_c - primary)
            self.burner_w = min(boiler.max_w, max(boiler.min_w, wanted))
            open_pct = sum(self.valve_pos)
            if open_pct < self.interlock_min_pct:
                self.stats.flame_short_interlock_s += h
        else:
            self.burner_w = 0.0
        self.stats.energy_j += self.burner_w * h
        primary_loss = boiler.primary_loss_w_per_k * (primary - self.air_c[self._primary_room])
        # Rooms.
        air, mass = self.air_c, self.mass_c
        heat_air = [0.0] * n
        for k, room in enumerate(spec.rooms):
            emitted = self.heat_radiator(k, primary, flows[k], air[k], h)
            self.stats.radiator_j[room.id] += max(0.0, emitted) * h
            gains = room.base_gains_w + (room.occupied_gains_w if self.occupied(k) else 0.0)
            radiant = room.radiant_share * emitted
            heat_air[k] = emitted - radiant + gains + self._air_mass[k] * (mass[k] - air[k]) \
                + room.air_out_w_per_k * (outside - air[k])
            mass[k] += (radiant + self._air_mass[k] * (air[k] - mass[k])
                        + room.mass_out_w_per_k * (outside - mass[k])) * h / self._mass_j[k]
        heat_air[self._primary_room] += primary_loss
        for a, b, w_per_k in self._couplings:
            flow_w = w_per_k * (air[b] - air[a])
            heat_air[a] += flow_w
            heat_air[b] -= flow_w
        for k in range(n):
            air[k] += heat_air[k] * h / self._air_j[k]
        self.primary_c = primary + (self.burner_w - load - primary_loss) * h / boiler.primary_j_per_k
        # Sensors: flow at the boiler outlet, return mixed from the radiators and the bypass.
        self._flow_reading_c = self.primary_c
        if boiler_flow > 0.0:
            returned = sum(flows[k] * self.rad_c[k][-1] for k in range(n)) + (boiler_flow - total_flow) * self.primary_c
            self._return_reading_c = returned / boiler_flow
        self.t_s += h

    def heat_radiator(self, k: int, inlet_c: float, flow_kg_s: float, air_c: float, h: float) -> float:
        """Advance radiator k by h s with water at inlet_c flowing in; returns what it emitted into the room, in W."""
        segments = self.rad_c[k]
        rated = self.spec.rooms[k].rated_w / RADIATOR_SEGMENTS
        exponent = self._exponent[k]
        carried_w_per_k = flow_kg_s * WATER_J_PER_KG_K
        emitted = 0.0
        for i, water_c in enumerate(segments):
            out = en442_w(rated, exponent, water_c - air_c)
            segments[i] = water_c + (carried_w_per_k * (inlet_c - water_c) - out) * h / self._segment_j[k]
            inlet_c = water_c  # the next segment is fed at this one's temperature (before the step)
            emitted += out
        return emitted

    def short_cycles(self, since_s: float = 0.0) -> int:
        """Completed burner runs shorter than SHORT_RUN_S that started at or after since_s."""
        return sum(1 for run in self.stats.runs
                   if run.start_s >= since_s and run.end_s is not None and run.end_s - run.start_s < SHORT_RUN_S)


def _week_blocks(plan: dict[str, object]) -> list[tuple[int, int]]:
    blocks = []
    for block in plan.get("blocks", []):  # type: ignore[attr-defined]
        for day in block["days"]:
            blocks.append((day * 1440 + block["start_min"], day * 1440 + block["end_min"]))
    return blocks


# The reference house: a three-bedroom semi of about 90 m² (UK, 1990s), in a cold week.
# (lounge, kitchen and hall downstairs; bedroom, kids' room, study and bathroom upstairs)

def _block(days: list[int], start: str, end: str, target_c: float) -> dict[str, object]:
    def minutes(text: str) -> int:
        hours, mins = text.split(":")
        return int(hours) * 60 + int(mins)

    return {"days": days, "start_min": minutes(start), "end_min": minutes(end), "target_dc": round(target_c * 10)}


WEEKDAYS = [0, 1, 2, 3, 4]
WEEKEND = [5, 6]
EVERY_DAY = [0, 1, 2, 3, 4, 5, 6]
# Daily mean outside temperature, Monday to Sunday, and the Sunday before (the warm-up day).
COLD_WEEK_MEAN_C = (1.0, -1.0, -3.0, -5.0, -4.0, -2.0, 0.0)
WARM_UP_MEAN_C = 2.0
DIURNAL_SWING_K = 3.0  # coldest at 06:00, warmest at 18:00 (cloudy winter days)


def cold_week_outside(start_week_s: float) -> Callable[[float], float]:
    """Outside temperature for a simulation whose time 0 is start_week_s (negative: the Sunday before)."""
    def outside_c(t_s: float) -> float:
        week_s = start_week_s + t_s
        day = week_s / 86400.0
        # Daily means, blended smoothly from noon to noon.
        centre = day - 0.5
        low = math.floor(centre)
        share = centre - low
        blend = (1.0 - math.cos(math.pi * share)) / 2.0
        mean = _day_mean(low) * (1.0 - blend) + _day_mean(low + 1) * blend
        hour = (week_s % 86400.0) / 3600.0
        return mean - DIURNAL_SWING_K * math.cos(2.0 * math.pi * (hour - 6.0) / 24.0)

    return outside_c


def _day_mean(day: int) -> float:
    if day < 0:
        return WARM_UP_MEAN_C
    return COLD_WEEK_MEAN_C[min(day, 6)]


# The installer's load-sharing configuration (the rest are the defaults):
# - fallback priorities where surplus heat does least harm: the hall first (a
#   transit space whose heat rises to the landing and the rooms off it), then
#   the lounge and the kitchen (empty at night and in the day, which is when
#   tier 3 is needed), then the bathroom's towel rail. Never the bedroom, which
#   is slept in at its 15 °C setback (PyHeat's own advice for bedrooms). The
#   kids' room (manual) and the study (off) have priorities too, as an installer
#   sets them up before the household changes modes: load sharing must skip them.
# - the bedroom looks ahead 30 min, the others the default 60.
# - capacities at their defaults (entry below 3500 W, target 4000 W): the
#   estimate counts a load-sharing valve at pct x 1.2 of its radiator, while
#   these valves give 86-94 % of full output at 50-70 %, so 4000 W estimated
#   takes 4.5-5.5 kW in steady state here, and more while the radiators it
#   opens warm up: while load sharing is active the burner averages 9 kW and
#   its own thermostat almost never stops it. Capacities at the boiler's 6 kW
#   open more rooms for more energy and no fewer cycles (docs/heating.md).
def reference_house(boiler_min_w: float = 6000.0, start_week_s: float = -86400.0) -> HouseSpec:
    """Seven rooms with schedules (one off, one manual), a 24 kW combi boiler with a minimum output, a cold week.

    Radiators are sized as UK installers size them: each covers its room's design heat loss at -3 °C with
    1.2 to 1.8 times margin at 70 °C flow (design_heat_loss_w); 9.9 kW at ΔT50 for 5.4 kW of loss.
    """
    def plan(default_c: float, *blocks: dict[str, object]) -> dict[str, object]:
        return {"default_target_dc": round(default_c * 10), "blocks": list(blocks)}

    rooms = (
        # Ground floor.
        RoomSpec("lounge", 2290, 1300, floor_m2=20.0, air_out_w_per_k=20.0, mass_out_w_per_k=40.0, mode="auto",
                 schedule=plan(16.0, _block(WEEKDAYS, "17:00", "22:30", 21.0), _block(WEEKEND, "09:00", "22:30", 21.0)),
                 fallback_priority=2, base_gains_w=40.0, occupied_gains_w=250.0, design_c=21.0),
        RoomSpec("kitchen", 1800, 1300, floor_m2=18.0, air_out_w_per_k=20.0, mass_out_w_per_k=35.0, mode="auto",
                 schedule=plan(16.0, _block(WEEKDAYS, "06:30", "08:30", 19.0), _block(WEEKDAYS, "17:00", "20:00", 19.0),
                               _block(WEEKEND, "08:00", "20:00", 19.0)),
                 fallback_priority=3, base_gains_w=120.0, occupied_gains_w=350.0),
        # Hall, stairs and landing: one open stairwell, the front door at the bottom. Nearly every such
        # house has a radiator here (often the one without a TRV); about 0.7 kW of design loss (front door,
        # landing window, 1.5 air changes of a double-height void), a 1.4 kW double panel. Lived in when
        # the rest of the house is: 18 °C mornings and evenings, 15 °C otherwise.
        RoomSpec("hall", 1400, 1300, floor_m2=12.0, air_out_w_per_k=20.0, mass_out_w_per_k=18.0, mode="auto",
                 schedule=plan(15.0, _block(WEEKDAYS, "06:00", "08:30", 18.0), _block(WEEKDAYS, "17:00", "22:30", 18.0),
                               _block(WEEKEND, "08:00", "22:30", 18.0)),
                 fallback_priority=1),
        RoomSpec("study", 1100, 1300, floor_m2=8.0, air_out_w_per_k=6.0, mass_out_w_per_k=12.0, mode="off",
                 schedule=plan(16.0, _block(WEEKDAYS, "09:00", "17:00", 20.0)), fallback_priority=6,
                 base_gains_w=30.0),
        # First floor.
        RoomSpec("bedroom", 1400, 1300, floor_m2=14.0, air_out_w_per_k=12.0, mass_out_w_per_k=28.0, mode="auto",
                 schedule=plan(15.0, _block(EVERY_DAY, "06:00", "07:30", 19.0),
                               _block(EVERY_DAY, "21:00", "23:00", 18.0)),
                 lookahead_ms=1800000, occupied_gains_w=150.0),
        RoomSpec("kids", 1000, 1300, floor_m2=10.0, air_out_w_per_k=9.0, mass_out_w_per_k=21.0, mode="manual",
                 schedule=plan(16.0, _block(EVERY_DAY, "19:00", "20:00", 19.0)), manual_target_dc=180,
                 fallback_priority=5, base_gains_w=20.0),
        RoomSpec("bath", 900, 1200, floor_m2=6.0, air_out_w_per_k=10.0, mass_out_w_per_k=12.0, mode="auto",
                 schedule=plan(17.0, _block(EVERY_DAY, "06:00", "08:00", 21.0),
                               _block(EVERY_DAY, "19:00", "21:00", 21.0)),
                 fallback_priority=4, occupied_gains_w=100.0, design_c=22.0),
    )
    couplings = (
        ("lounge", "kitchen", 25.0), ("lounge", "study", 12.0), ("kitchen", "study", 10.0),
        ("lounge", "bedroom", 10.0), ("kitchen", "kids", 8.0), ("study", "bath", 5.0),
        ("bedroom", "kids", 8.0), ("bedroom", "bath", 6.0), ("kids", "bath", 6.0),
        # The stairwell: internal walls and doors to every room, warm air rising to the landing.
        ("hall", "lounge", 15.0), ("hall", "kitchen", 12.0), ("hall", "study", 6.0), ("hall", "bedroom", 8.0),
        ("hall", "kids", 6.0), ("hall", "bath", 6.0),
    )
    return HouseSpec(rooms=rooms, couplings=couplings, boiler=BoilerSpec(min_w=boiler_min_w),
                     outside_c=cold_week_outside(start_week_s), start_week_s=start_week_s)


def controller_config(spec: HouseSpec, load_sharing: bool, boiler: dict[str, int] | None = None,
                      sharing: dict[str, object] | None = None) -> dict[str, object]:
    """The core heating config that runs this house (what the nodes would be given)."""
    rooms = []
    for room in spec.rooms:
        entry: dict[str, object] = {"id": room.id, "rated_w": room.rated_w, "exponent_permille": room.exponent_permille,
                                    "schedule": room.schedule}
        per_room: dict[str, object] = {"lookahead_ms": room.lookahead_ms}
        if room.fallback_priority is not None:
            per_room["fallback_priority"] = room.fallback_priority
        entry["load_sharing"] = per_room
        rooms.append(entry)
    settings: dict[str, object] = dict(sharing or {})
    settings["enabled"] = load_sharing
    return {"rooms": rooms, "boiler": dict(boiler or {}), "load_sharing": settings}
