"""Controller figures on each runtime: µs per tick of 2, 8, 17 members, view changed or not, raise or not; meter node.

    .venv/bin/python tools/bench_controller.py [--rounds N]

A node's tick is controller.step() with every peer fresh in its table: when
nothing changed since the last tick (the allocation is reused), and when the
view changed (the allocation and its digest are computed again). raise_us
and changed_raise_us are the same two ticks with every peer agreeing (its
heartbeat carries this node's digest) and the node below its target, so
that the tick checks the headroom for a raise (headroom.allowed_ma, on the
view's model).

The meter lines are the same groups with a site meter, timed on the meter
node (m00, whose site.meter_node it is): time moves 100 ms a tick, each peer
is heard every 500 ms (the table takes its heartbeat, as mesh.receive does
in a node's tick: without it the peers would go stale), the peers tell the
draws of their cars, and the meter input is there at every tick, as the
node runtime passes it (the last reading, its age growing). A new reading
(a new seq, the house's load changed) arrives every METER_EVERY_TICKS (10) ticks
(1 s: a DSMR 5 P1 port's telegram rate, and the simulator's default meter
interval), so that one tick in ten or so computes the allocation again, after
the meter node publishes the reading (meter_tick_us: the mean over whole
cycles), and with a new reading at every tick, an upper bound
(meter_every_tick_us). moving_tick_us is the same loop without a meter: the
difference is the meter's. meter_garbage_max_bytes is the most a single tick
of the cycle leaves for the collector.

Runs on the staged device tree (build/device, from ./tools/setup). A script
that prints figures, never a test: timings on a shared machine are noise.
The single-precision runtime is the node image (modules frozen) with its
ESP32-sized heap; a group that does not fit in it runs again in a larger
heap, and the output says so.
"""

from __future__ import annotations

import argparse
import sys

from benchkit import run_in_process, run_on_micropython

from loadmesh.companion.runtimes import SMALL_HEAP

# The same code runs in-process on CPython and as a script on MicroPython
# (benchkit.TIMING gives both best()).
BENCH = r'''
import gc


def group(count):
    members = []
    for index in range(count):
        members.append({"id": "m%02d" % index, "kind": "evse", "circuit": "garage" if index % 2 else "site",
                        "phases": "L123" if index % 3 == 0 else ("L1", "L2", "L3")[index % 3],
                        "min_ma": 6000, "max_ma": 16000, "step_ma": 1000})
    return {"group": "house", "version": 1, "updated_at": 1, "origin": "bench", "key_id": "k",
            "site": {"phases": 3, "voltage_v": 230, "limit_ma": 63000, "safety_pct": 100},
            "circuits": [{"id": "garage", "parent": "site", "limit_ma": 32000}],
            "members": members, "failsafe": {"mode": "disable", "current_ma": 0}}


def peer_message(plan, index, draw_ma):
    member = plan.members[index]
    phases = plan.load_phases[index]
    return {"group": "house", "node": member["id"], "boot_id": 1, "seq": 1, "circuit": member["circuit"],
            "phases": member["phases"], "mode": "continuous", "priority": 0, "min_ma": 6000,
            "max_ma": 16000, "step_ma": 1000, "demand": True, "active": True, "failsafe": False,
            "draw_ma": [draw_ma if phase in phases else None for phase in range(3)], "target_ma": 6000,
            "applied_ma": 6000, "config_version": 1, "config_hash": plan.announced, "digest": "",
            "meter": None, "heating": None, "control": {"target_seq": 1, "exposure_ma": 6000}}


def run(core, rounds, count):
    controller = core.controller
    config = core.groupconfig.parse(group(count))
    plan = controller.prepare(config, "m00")
    table = core.peers.PeerTable((b"", b""), "house", "m00", plan.ids)
    for index in range(1, count):
        message = peer_message(plan, index, None)
        table.accept_decoded(message, 0)
    state = controller.boot(plan, 1, 0)
    inputs = {"demand": True, "draw_ma": [0, 0, 0]}
    holder = [state]

    def tick():
        out, holder[0] = controller.step(plan, holder[0], inputs, table, 100)

    def changed():
        plan._view_key = None  # as if a peer's news changed the view
        out, holder[0] = controller.step(plan, holder[0], inputs, table, 100)

    tick()
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    tick()
    after = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    figures = {"members": count, "tick_us": int(best(tick, rounds)),
               "changed_us": int(best(changed, max(1, rounds // 10))),
               "garbage_per_tick_bytes": (after - before) if hasattr(gc, "mem_alloc") else "n/a"}

    # Raising: every peer's heartbeat carries this node's digest (they agree), and the node is below
    # its target (0 of it, at boot; its priority first, so that the 17 members' crowded site gives it
    # one), so the tick checks the headroom, which needs the model. Each tick starts again from that
    # state, so that each raises.
    inputs = {"demand": True, "draw_ma": [0, 0, 0], "priority": -1}
    out, below = controller.step(plan, holder[0], inputs, table, 100)
    assert out["target_ma"] > below["applied_ma"] == 0, out
    for index in range(1, count):
        message = peer_message(plan, index, None)
        message["seq"] = 2
        message["digest"] = out["digest"]
        table.accept_decoded(message, 0)

    def raising():
        out, _ = controller.step(plan, below, inputs, table, 100)

    def changed_raising():
        plan._view_key = None
        out, _ = controller.step(plan, below, inputs, table, 100)

    out, _ = controller.step(plan, below, inputs, table, 100)
    assert not out["disagree"] and out["reason"] in ("target", "headroom"), out
    figures["raise_us"] = int(best(raising, max(1, rounds // 10)))
    figures["changed_raise_us"] = int(best(changed_raising, max(1, rounds // 10)))
    return figures


CAR_DRAW_MA = 4000  # what each car draws of its 6 A: the crowded site's cars, below their limit
HOUSE_MA = 8000  # the unmanaged load per phase, before each reading's change


def moving(core, rounds, count, meter_every_ticks):
    """Ticks, time moving, peers heard at 2 Hz; a meter (m00) reading every meter_every_ticks, or none (0)."""
    controller = core.controller
    raw = group(count)
    if meter_every_ticks:
        raw["site"]["meter_node"] = "m00"
    plan = controller.prepare(core.groupconfig.parse(raw), "m00")
    table = core.peers.PeerTable((b"", b""), "house", "m00", plan.ids)
    messages = []
    for index in range(1, count):
        message = peer_message(plan, index, CAR_DRAW_MA)
        table.accept_decoded(message, 0)
        messages.append(message)
    # What the cars draw per phase (the meter reads it beside the house); m00 draws on all three.
    managed_ma = [CAR_DRAW_MA, CAR_DRAW_MA, CAR_DRAW_MA]
    for index in range(1, count):
        for phase in plan.load_phases[index]:
            managed_ma[phase] += CAR_DRAW_MA
    holder = [controller.boot(plan, 1, 0)]
    clock = [0, 0, 0, 0]  # now_ms, ticks, the reading's seq, when it was taken
    heard_every_ticks = plan.heartbeat_ms // 100

    def tick():
        now_ms = clock[0] + 100
        ticks = clock[1] + 1
        clock[0] = now_ms
        clock[1] = ticks
        # Each peer heard every heartbeat_ms, spread over the ticks as their clocks are.
        for position in range(len(messages)):
            if (ticks + position) % heard_every_ticks == 0:
                message = messages[position]
                message["seq"] += 1
                table.accept_decoded(message, now_ms)
        inputs = {"demand": True, "draw_ma": [CAR_DRAW_MA, CAR_DRAW_MA, CAR_DRAW_MA]}
        if meter_every_ticks:
            if ticks % meter_every_ticks == 0:
                clock[2] += 1
                clock[3] = now_ms
            house_ma = HOUSE_MA + 700 * (clock[2] % 5)
            inputs["meter"] = {"seq": clock[2], "age_ms": now_ms - clock[3],
                               "ma": [managed_ma[0] + house_ma, managed_ma[1] + house_ma, managed_ma[2] + house_ma]}
        out, holder[0] = controller.step(plan, holder[0], inputs, table, now_ms)

    # Warm up: the meter's history filled, the first readings published.
    cycle = meter_every_ticks if meter_every_ticks else 1
    for _ in range(4 * cycle + 20):
        tick()
    garbage = 0
    if hasattr(gc, "mem_alloc"):
        for _ in range(2 * cycle):
            gc.collect()
            before = gc.mem_alloc()
            tick()
            left = gc.mem_alloc() - before
            garbage = left if left > garbage else garbage
    # Whole cycles, so that the mean holds the reading's allocation as often as a node runs it.
    rounds = (rounds + cycle - 1) // cycle * cycle
    return int(best(tick, rounds)), garbage if hasattr(gc, "mem_alloc") else "n/a"


def run_meter(core, rounds, count, meter_every_ticks):
    meter_us, garbage = moving(core, rounds, count, meter_every_ticks)
    every_us, _ = moving(core, rounds, count, 1)
    moving_us, _ = moving(core, rounds, count, 0)
    return {"members": count, "meter_tick_us": meter_us, "meter_every_tick_us": every_us,
            "moving_tick_us": moving_us, "meter_garbage_max_bytes": garbage}
'''

MICROPYTHON_MAIN = r'''
import sys
import loadmesh.core.groupconfig
import loadmesh.core.controller
import loadmesh.core.peers
import loadmesh.core as core
if len(sys.argv) > 3:
    print(run_meter(core, int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
else:
    print(run(core, int(sys.argv[1]), int(sys.argv[2])))
'''

SIZES = (2, 8, 17)
METER_EVERY_TICKS = 10  # a reading a second at a 100 ms tick (see the docstring)


def _in_process(name: str, rounds: int, meter: bool) -> list[str]:
    if meter:
        return [str(run_in_process(name, BENCH, "run_meter", rounds, count, METER_EVERY_TICKS)) for count in SIZES]
    return [str(run_in_process(name, BENCH, "run", rounds, count)) for count in SIZES]


def _micropython(name: str, rounds: int, meter: bool) -> list[str]:
    lines = []
    for count in SIZES:
        args = [str(rounds), str(count)] + ([str(METER_EVERY_TICKS)] if meter else [])
        ok, output, note = run_on_micropython(name, BENCH + MICROPYTHON_MAIN, args, "256wK")
        lines.append((output + ("  (" + note + ")" if note else "")) if ok else "failed: " + output)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    print(f"controller.step, {args.rounds} rounds; micropython-f32 has a {SMALL_HEAP} heap")
    for name in ("cpython-pure", "cpython-compiled"):
        for line in _in_process(name, args.rounds, False):
            print(f"{name:>17}: {line}")
    for name in ("micropython", "micropython-f32"):
        for line in _micropython(name, max(1, args.rounds // 5), False):
            print(f"{name:>17}: {line}")
    print(f"\nthe meter node (m00), a new reading every {METER_EVERY_TICKS} ticks, peers heard at 2 Hz")
    for name in ("cpython-pure", "cpython-compiled"):
        for line in _in_process(name, args.rounds, True):
            print(f"{name:>17}: {line}")
    for name in ("micropython", "micropython-f32"):
        for line in _micropython(name, max(1, args.rounds // 5), True):
            print(f"{name:>17}: {line}")
    return 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
