"""The reference house's sensitivity rows (docs/heating.md, "Sensitivity"): load sharing off and on per variant.

    .venv/bin/python tools/house_sensitivity.py [VARIANT ...] [--list]

Each variant is the reference house and configuration but for one thing: a
load-sharing setting, the rooms' fallback priorities, the boiler, the outside
temperature (shifted over the whole week) or the control tick. One JSON line
per variant: short cycles a day off and on, their change, energy off and on.
About 13 s per variant on one core. Not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from loadmesh.companion import house, housebench

REFERENCE_PRIORITIES = {"hall": 1, "lounge": 2, "kitchen": 3, "bath": 4, "kids": 5, "study": 6}
BEDROOM_LAST = dict(REFERENCE_PRIORITIES, bedroom=7)
VARIANTS: dict[str, dict[str, object]] = {
    "reference": {},
    "capacities_6000": {"sharing": {"min_calling_capacity_w": 6000, "target_capacity_w": 6000,
                                    "sufficient_capacity_w": 6000}},
    "flow_efficiency_150": {"sharing": {"flow_efficiency_pct": 150}},
    "tier_3_rest_60s": {"sharing": {"tier_3_rest_ms": 60000}},
    "tier_3_max_30min": {"sharing": {"tier_3_max_duration_ms": 1800000}},
    "hall_only": {"priorities": {"hall": 1, "kids": 5, "study": 6}},
    "first_priorities": {"priorities": {"lounge": 1, "kitchen": 2, "kids": 5, "study": 6}},
    "bedroom_last": {"priorities": BEDROOM_LAST},
    "bedroom_last_warmer": {"priorities": BEDROOM_LAST, "outside_shift_c": 1.0},
    "bedroom_last_colder": {"priorities": BEDROOM_LAST, "outside_shift_c": -1.0},
    "bedroom_last_tick_5s": {"priorities": BEDROOM_LAST, "tick_s": 5},
    "reference_warmer": {"outside_shift_c": 1.0},
    "reference_colder": {"outside_shift_c": -1.0},
    "reference_tick_5s": {"tick_s": 5},
    "min_on_10min": {"boiler": {"min_on_ms": 600000}},
    "boiler_min_4kw": {"boiler_min_w": 4000.0},
}


def _spec(variant: dict[str, object]) -> house.HouseSpec:
    boiler_min_w = variant.get("boiler_min_w", 6000.0)
    assert isinstance(boiler_min_w, float)
    spec = house.reference_house(boiler_min_w=boiler_min_w, start_week_s=float(-housebench.DAY_S))
    priorities = variant.get("priorities")
    if isinstance(priorities, dict):
        rooms = tuple(dataclasses.replace(room, fallback_priority=priorities.get(room.id)) for room in spec.rooms)
        spec = dataclasses.replace(spec, rooms=rooms)
    shift = variant.get("outside_shift_c", 0.0)
    if isinstance(shift, float) and shift:
        outside = spec.outside_c
        spec = dataclasses.replace(spec, outside_c=lambda t_s: outside(t_s) + shift)
    return spec


def measure(name: str) -> dict[str, object]:
    """One variant's figures, load sharing off and on."""
    variant = VARIANTS[name]
    core = housebench.installed_core()
    boiler = variant.get("boiler")
    original = housebench.controller_config
    if isinstance(boiler, dict):
        def with_boiler(spec: house.HouseSpec, load_sharing: bool, boiler_in: dict[str, int] | None = None,
                        sharing: dict[str, object] | None = None) -> dict[str, object]:
            return original(spec, load_sharing, boiler, sharing)
        housebench.controller_config = with_boiler
    try:
        sharing = variant.get("sharing")
        tick_s = variant.get("tick_s", 10)
        assert isinstance(tick_s, int) and (sharing is None or isinstance(sharing, dict))
        off, on = (housebench.run(core, load_sharing, tick_s=tick_s, spec=_spec(variant), sharing=sharing)
                   for load_sharing in (False, True))
    finally:
        housebench.controller_config = original
    figures = housebench.summary(off, on)
    return {"variant": name, "short_cycles_per_day_off": figures["short_cycles_per_day_off"],
            "short_cycles_per_day_on": figures["short_cycles_per_day_on"],
            "short_cycle_reduction_pct": figures["short_cycle_reduction_pct"],
            "energy_kwh_off": figures["energy_kwh_off"], "energy_kwh_on": figures["energy_kwh_on"],
            "energy_change_pct": figures["energy_change_pct"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="*", help="variants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="name the variants and stop")
    args = parser.parse_args()
    if args.list:
        print("\n".join(VARIANTS))
        return 0
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        print(f"house_sensitivity: no variant {', '.join(unknown)} (--list names them)", file=sys.stderr)
        return 2
    for name in args.variants or list(VARIANTS):
        print(json.dumps(measure(name)), flush=True)
    return 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
