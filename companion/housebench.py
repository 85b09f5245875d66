"""The reference-house benchmark: a cold week with load sharing off and on, run by the core's controller."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from .house import SHORT_RUN_S, House, HouseSpec, controller_config, reference_house

DAY_S = 86400


@dataclass
class RunResult:
    """The figures of one run (load sharing off or on) over the measured days."""

    load_sharing: bool
    days: int
    boiler_min_w: float = 0.0
    boiler_starts: int = 0
    short_cycles: int = 0
    cooldowns: int = 0
    energy_kwh: float = 0.0
    above_target_min: dict[str, int] = field(default_factory=dict)
    over_1c_min: dict[str, int] = field(default_factory=dict)  # more than 1 °C above target
    below_target_min: dict[str, int] = field(default_factory=dict)  # more than 0.5 °C below, in a schedule block
    off_room_heated_min: int = 0  # an off-mode room's valve open (frost protection excepted)
    frost_min: int = 0
    load_sharing_min: int = 0  # minutes with load sharing active
    activations: int = 0
    tier_min: dict[str, int] = field(default_factory=dict)  # minutes a room was opened by load sharing
    off_or_manual_opened: int = 0  # ticks load sharing commanded an off or manual room (must be 0)
    interlock_short_s: float = 0.0  # seconds of flame with the valve openings below the interlock minimum
    mean_burner_run_min: float = 0.0
    # Where the short cycles come from: how the run ended, which rooms called when it began, when.
    short_by_end: dict[str, int] = field(default_factory=dict)  # "boiler_thermostat" | "demand_ended"
    short_by_callers: dict[str, int] = field(default_factory=dict)  # "bedroom+kids": runs
    short_by_period: dict[str, int] = field(default_factory=dict)  # PERIODS
    short_with_sharing: int = 0  # short runs that began with load sharing active

    def per_day(self, value: float) -> float:
        return value / self.days


# Times of day (start hour, name), for the breakdown of short cycles.
PERIODS = ((0, "night"), (6, "morning"), (9, "day"), (17, "evening"), (23, "night"))


def period_of(week_s: float) -> str:
    """The PERIODS name of a time of week."""
    hour = int(week_s % DAY_S) // 3600
    return [name for start, name in PERIODS if start <= hour][-1]


def run(core: ModuleType, load_sharing: bool, days: int = 7, warm_up_days: int = 1, tick_s: int = 10,
        spec: HouseSpec | None = None, progress: Callable[[float], None] | None = None,
        sharing: dict[str, object] | None = None) -> RunResult:
    """Simulate warm_up_days (not counted) then days, the core's heating.step deciding every tick_s."""
    spec = spec if spec is not None else reference_house(start_week_s=float(-warm_up_days * DAY_S))
    config = core.heating.load_config(controller_config(spec, load_sharing, sharing=sharing))
    state = core.heating.initial_state(config)
    interlock_min = config["boiler"]["min_valve_open_pct"]
    house = House(spec, interlock_min_pct=interlock_min)
    modes = {room.id: room.mode for room in spec.rooms}
    manual = {room.id: room.manual_target_dc for room in spec.rooms}
    heated = [r.id for r in spec.rooms if r.mode != "off"]
    result = RunResult(load_sharing, days, boiler_min_w=spec.boiler.min_w, above_target_min=dict.fromkeys(heated, 0),
                       below_target_min=dict.fromkeys(heated, 0), tier_min={r.id: 0 for r in spec.rooms})
    measured_from_s = warm_up_days * DAY_S
    total_ticks = (warm_up_days + days) * DAY_S // tick_s
    energy_at_start = 0.0
    above_s = dict.fromkeys(result.above_target_min, 0.0)
    over_s = dict.fromkeys(result.above_target_min, 0.0)
    below_s = dict.fromkeys(result.below_target_min, 0.0)
    tier_s = dict.fromkeys(result.tier_min, 0.0)
    off_heated_s = frost_s = sharing_s = 0.0
    was_active = False
    began: dict[int, tuple[str, bool, str]] = {}  # run index: (calling rooms, load sharing active, period)
    report_every = max(1, total_ticks // 50)
    for tick in range(total_ticks):
        t_s = tick * tick_s
        week_s = round(house.week_s())
        if t_s == measured_from_s:
            energy_at_start = house.stats.energy_j
        read = house.readings()
        rooms_read = read["rooms"]
        assert isinstance(rooms_read, dict)
        inputs = {
            "week_ms": week_s * 1000,
            "rooms": {rid: {"mode": modes[rid], "temp_dc": rooms_read[rid]["temp_dc"], "temp_age_ms": 0,
                            "manual_target_dc": manual[rid], "confirmed_pct": rooms_read[rid]["valve_pct"]}
                      for rid in modes},
            "boiler": {"flame": read["flame"], "flow_dc": read["flow_dc"], "return_dc": read["return_dc"]},
        }
        out, state = core.heating.step(config, state, core.heating.load_inputs(config, inputs), t_s * 1000)
        house.command(out["valve_pct"], out["boiler_on"], out["setpoint_dc"])
        runs_before = len(house.stats.runs)
        house.advance(float(tick_s))
        active = out["tiers_state"] not in ("INACTIVE", "DISABLED")
        for index in range(runs_before, len(house.stats.runs)):
            callers = "+".join(sorted(rid for rid, calling in out["calling"].items() if calling)) or "none"
            began[index] = (callers, active, period_of(week_s))
        if t_s < measured_from_s:
            continue
        if active:
            sharing_s += tick_s
            if not was_active:
                result.activations += 1
        was_active = active
        if out["cooldown_started"]:
            result.cooldowns += 1
        for rid in out["load_sharing"]:
            tier_s[rid] += tick_s
            if modes[rid] != "auto":
                result.off_or_manual_opened += 1
        for k, rid in enumerate(house.ids):
            if modes[rid] == "off":
                if out["room_reason"][rid] == "frost":
                    frost_s += tick_s
                elif house.valve_pos[k] > 0.0:
                    off_heated_s += tick_s
                continue
            target_c = out["target_dc"][rid] / 10.0
            if house.air_c[k] > target_c:
                above_s[rid] += tick_s
                if house.air_c[k] > target_c + 1.0:
                    over_s[rid] += tick_s
            if house.occupied(k) and house.air_c[k] < target_c - 0.5:
                below_s[rid] += tick_s
        if progress is not None and tick % report_every == 0:
            progress(tick / total_ticks)
    runs = [r for r in house.stats.runs if r.start_s >= measured_from_s]
    result.boiler_starts = len(runs)
    result.short_cycles = house.short_cycles(float(measured_from_s))
    result.short_by_end = {"boiler_thermostat": 0, "demand_ended": 0}
    result.short_by_period = {name: 0 for _start, name in PERIODS}
    for index, burner_run in enumerate(house.stats.runs):
        if burner_run.start_s < measured_from_s or burner_run.end_s is None \
                or burner_run.end_s - burner_run.start_s >= SHORT_RUN_S:
            continue
        result.short_by_end["boiler_thermostat" if burner_run.ended_by == "thermostat" else "demand_ended"] += 1
        callers, sharing_active, period = began[index]
        result.short_by_callers[callers] = result.short_by_callers.get(callers, 0) + 1
        result.short_by_period[period] += 1
        result.short_with_sharing += 1 if sharing_active else 0
    finished = [r.end_s - r.start_s for r in runs if r.end_s is not None]
    result.mean_burner_run_min = sum(finished) / len(finished) / 60.0 if finished else 0.0
    result.energy_kwh = (house.stats.energy_j - energy_at_start) / 3.6e6
    result.above_target_min = {rid: round(s / 60) for rid, s in above_s.items()}
    result.over_1c_min = {rid: round(s / 60) for rid, s in over_s.items()}
    result.below_target_min = {rid: round(s / 60) for rid, s in below_s.items()}
    result.tier_min = {rid: round(s / 60) for rid, s in tier_s.items()}
    result.off_room_heated_min = round(off_heated_s / 60)
    result.frost_min = round(frost_s / 60)
    result.load_sharing_min = round(sharing_s / 60)
    result.interlock_short_s = house.stats.flame_short_interlock_s
    return result


def summary(off: RunResult, on: RunResult) -> dict[str, object]:
    """The --json object: the contract keys first, then the rest."""
    def reduction(before: float, after: float) -> float:
        return round(100.0 * (before - after) / before, 1) if before else 0.0

    return {
        "short_cycles_per_day_off": round(off.per_day(off.short_cycles), 2),
        "short_cycles_per_day_on": round(on.per_day(on.short_cycles), 2),
        "energy_kwh_off": round(off.energy_kwh, 1),
        "energy_kwh_on": round(on.energy_kwh, 1),
        "off_mode_room_heated_minutes": off.off_room_heated_min + on.off_room_heated_min,
        "short_cycle_reduction_pct": reduction(off.short_cycles, on.short_cycles),
        "energy_change_pct": round(100.0 * (on.energy_kwh - off.energy_kwh) / off.energy_kwh, 1),
        "boiler_starts_per_day_off": round(off.per_day(off.boiler_starts), 2),
        "boiler_starts_per_day_on": round(on.per_day(on.boiler_starts), 2),
        "cooldowns_per_day_off": round(off.per_day(off.cooldowns), 2),
        "cooldowns_per_day_on": round(on.per_day(on.cooldowns), 2),
        "mean_burner_run_min_off": round(off.mean_burner_run_min, 1),
        "mean_burner_run_min_on": round(on.mean_burner_run_min, 1),
        "above_target_minutes_off": off.above_target_min,
        "above_target_minutes_on": on.above_target_min,
        "over_1c_above_target_minutes_off": off.over_1c_min,
        "over_1c_above_target_minutes_on": on.over_1c_min,
        "below_target_minutes_off": off.below_target_min,
        "below_target_minutes_on": on.below_target_min,
        "load_sharing_minutes_per_room": on.tier_min,
        "load_sharing_activations": on.activations,
        "load_sharing_active_minutes": on.load_sharing_min,
        "off_or_manual_room_opened_ticks": off.off_or_manual_opened + on.off_or_manual_opened,
        "frost_protection_minutes": off.frost_min + on.frost_min,
        "interlock_short_flame_s": round(off.interlock_short_s + on.interlock_short_s, 1),
        "short_cycles_per_day_by_end_off": _per_day(off, off.short_by_end),
        "short_cycles_per_day_by_end_on": _per_day(on, on.short_by_end),
        "short_cycles_per_day_by_period_off": _per_day(off, off.short_by_period),
        "short_cycles_per_day_by_period_on": _per_day(on, on.short_by_period),
        "short_cycles_by_callers_off": _ranked(off.short_by_callers),
        "short_cycles_by_callers_on": _ranked(on.short_by_callers),
        "short_cycles_with_load_sharing_active": on.short_with_sharing,
        "days": on.days,
    }


def _per_day(result: RunResult, counts: dict[str, int]) -> dict[str, float]:
    return {key: round(result.per_day(value), 2) for key, value in counts.items()}


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    """Most first, then by name: the same order every run."""
    return {key: counts[key] for key in sorted(counts, key=lambda key: (-counts[key], key))}


def table(off: RunResult, on: RunResult) -> str:
    """The results as a Markdown table."""
    rows = [
        ("boiler starts per day", f"{off.per_day(off.boiler_starts):.1f}", f"{on.per_day(on.boiler_starts):.1f}"),
        ("short cycles (runs < 10 min) per day", f"{off.per_day(off.short_cycles):.1f}",
         f"{on.per_day(on.short_cycles):.1f}"),
        ("  of which the boiler's own thermostat ended the run",
         f"{off.per_day(off.short_by_end['boiler_thermostat']):.1f}",
         f"{on.per_day(on.short_by_end['boiler_thermostat']):.1f}"),
        ("  of which the heat demand ended first", f"{off.per_day(off.short_by_end['demand_ended']):.1f}",
         f"{on.per_day(on.short_by_end['demand_ended']):.1f}"),
        ("cooldown events per day", f"{off.per_day(off.cooldowns):.1f}", f"{on.per_day(on.cooldowns):.1f}"),
        ("mean burner run, min", f"{off.mean_burner_run_min:.1f}", f"{on.mean_burner_run_min:.1f}"),
        ("energy (burner output), kWh", f"{off.energy_kwh:.1f}", f"{on.energy_kwh:.1f}"),
        ("off-mode room heated, min", str(off.off_room_heated_min), str(on.off_room_heated_min)),
    ]
    for rid in off.above_target_min:
        rows.append((f"{rid}: min above target / over 1 °C above / over 0.5 °C below in a block",
                     f"{off.above_target_min[rid]} / {off.over_1c_min[rid]} / {off.below_target_min[rid]}",
                     f"{on.above_target_min[rid]} / {on.over_1c_min[rid]} / {on.below_target_min[rid]}"))
    lines = [f"| over {_span(on.days)} | load sharing off | load sharing on |", "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def stderr_progress(label: str) -> Callable[[float], None]:
    """A progress callback writing `label NN%` on stderr."""
    def report(share: float) -> None:
        sys.stderr.write(f"\rhouse-bench: {label} {share * 100:3.0f}%")
        sys.stderr.flush()

    return report


def installed_core() -> ModuleType:
    """The installed loadmesh.core (Cython-compiled after ./tools/setup), with the heating chain loaded."""
    importlib.import_module("loadmesh.core.heating")
    return importlib.import_module("loadmesh.core")


GOAL_SHORT_CYCLE_REDUCTION_PCT = 70.0
GOAL_MAX_EXTRA_ENERGY_PCT = 10.0


def report(off: RunResult, on: RunResult) -> str:
    """The table, then the goal, met or not, in figures."""
    figures = summary(off, on)
    reduction = figures["short_cycle_reduction_pct"]
    extra = figures["energy_change_pct"]
    assert isinstance(reduction, float) and isinstance(extra, float)
    met = (reduction >= GOAL_SHORT_CYCLE_REDUCTION_PCT and extra <= GOAL_MAX_EXTRA_ENERGY_PCT
           and figures["off_mode_room_heated_minutes"] == 0)
    lines = [f"reference house, {on.days} cold day{'s' if on.days > 1 else ''} (after a day of warm-up), "
             "boiler minimum output "
             f"{off.boiler_min_w / 1000:.1f} kW", "", table(off, on), "",
             f"short cycles -{reduction:.1f} % (goal -{GOAL_SHORT_CYCLE_REDUCTION_PCT:.0f} %), "
             f"energy {extra:+.1f} % (goal at most +{GOAL_MAX_EXTRA_ENERGY_PCT:.0f} %), "
             f"off-mode room heated {figures['off_mode_room_heated_minutes']} min: goal "
             + ("met" if met else "NOT met"), "",
             f"short cycles over {_span(on.days)} by the rooms calling when the run began:",
             "  off: " + _top(off.short_by_callers), "  on:  " + _top(on.short_by_callers),
             "short cycles per day by time of day (night 23-06, morning 06-09, day 09-17, evening 17-23):",
             "  off: " + ", ".join(f"{k} {v}" for k, v in _per_day(off, off.short_by_period).items()),
             "  on:  " + ", ".join(f"{k} {v}" for k, v in _per_day(on, on.short_by_period).items())]
    return "\n".join(lines)


def _span(days: int) -> str:
    """What the figures are over: the week (the default), or the days run."""
    return "the week" if days == 7 else "the day" if days == 1 else f"the {days} days"


def _top(counts: dict[str, int], shown: int = 6) -> str:
    ranked = _ranked(counts)
    return ", ".join(f"{key} {ranked[key]}" for key in list(ranked)[:shown])
