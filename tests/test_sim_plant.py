"""The plant: cars that follow the pilot with a lag, relays, the meter, the house, the watchdog; and a real node."""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from loadmesh.companion.sim import scenario as sc
from loadmesh.companion.sim.hub import Hub
from loadmesh.companion.sim.plant import Plant, PlantServer
from loadmesh.companion.sim.runner import Simulation
from loadmesh.core import pilot
from loadmesh.node import simproto

from . import mpnode
from .simsite import three_evses

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

SITE = {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100}
EVSE = {"id": "ev", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
        "priority": 0, "mode": "continuous"}
RELAY = {"id": "heater", "kind": "relay", "phases": "L1", "min_ma": 8000, "max_ma": 8000, "step_ma": 1000,
         "priority": 1, "mode": "continuous"}
ADDRESS = ("127.0.0.1", 40000)
BUFFER = simproto.new_buffer()
SEQS = itertools.count(1)  # one node process's seq rises with every command (a new process counts from 1)


def plant_of(nodes: list[dict[str, object]], wdt_ms: int = 60000, **extra: object) -> Plant:
    """A plant; its watchdog is long unless a test is about it (the tests command sparsely)."""
    data: dict[str, object] = {"duration_s": 600, "site": SITE, "nodes": nodes, **extra}
    return Plant(sc.parse(data), wdt_ms=wdt_ms)


def command(plant: Plant, now_ms: int, node: str = "ev", pilot_ma: int = 0, feed: bool = True,
            relay: bool = False, valve_pct: int = 0, boiler: bool = False, setpoint_dc: int | None = None,
            applied_ma: int = 0, address: tuple[str, int] = ADDRESS, seq: int | None = None) -> tuple[int, ...]:
    """A node's command at now_ms (from one process at address unless told); the readings it gets back (decoded
    body)."""
    flags = (simproto.FLAG_FEED if feed else 0) | (simproto.FLAG_RELAY if relay else 0) \
        | (simproto.FLAG_BOILER if boiler else 0)
    size = simproto.encode_command(BUFFER, node, next(SEQS) if seq is None else seq, flags,
                                   pilot.duty_permille(pilot_ma), valve_pct, setpoint_dc, applied_ma, applied_ma,
                                   20000, 2)
    answer = plant.command(bytes(BUFFER[:size]), address, now_ms)
    assert answer is not None
    decoded = simproto.decode_readings(answer)
    assert decoded is not None and decoded[0] == node
    return decoded[1]


def state_and_l1(body: tuple[int, ...]) -> tuple[str, int | None]:
    return (chr(body[1]) if body[1] else ""), simproto.known(body[4])


def test_a_car_follows_the_pilot_after_its_lag_up_and_down() -> None:
    plant = plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 2000}}])
    signalled_16a = pilot.signalled_ma(pilot.duty_permille(16000))  # 15960: the duty rounds down
    assert command(plant, 100, pilot_ma=16000)[1] == ord("B")
    rows = [
        # (time, pilot limit commanded then, what the node reads: state and L1 current)
        (2099, 16000, ("B", 0)),  # still within the lag
        (2100, 16000, ("C", signalled_16a)),
        (5000, 6000, ("C", signalled_16a)),  # lowered: the car still draws the old current
        (6999, 6000, ("C", signalled_16a)),
        (7000, 6000, ("C", 6000)),
        (8000, 0, ("C", 6000)),  # no charging asked: it stops after the lag too
        (10000, 0, ("B", 0)),
    ]
    for now_ms, pilot_ma, expected in rows:
        assert state_and_l1(command(plant, now_ms, pilot_ma=pilot_ma)) == expected, now_ms


def test_a_car_never_draws_above_its_own_maximum() -> None:
    plant = plant_of([{**EVSE, "max_ma": 32000, "car": {"plug_at_s": 0, "max_ma": 11000, "lag_ms": 1000}}])
    command(plant, 0, pilot_ma=32000)
    assert state_and_l1(command(plant, 1000, pilot_ma=32000)) == ("C", 11000)


def test_plug_and_unplug_on_schedule_and_by_event() -> None:
    plant = plant_of([{**EVSE, "car": {"plug_at_s": 5, "unplug_at_s": 20, "lag_ms": 1000}}])
    assert state_and_l1(command(plant, 4999, pilot_ma=10000)) == ("A", 0)
    assert state_and_l1(command(plant, 5000, pilot_ma=10000)) == ("B", 0)
    assert state_and_l1(command(plant, 6000, pilot_ma=10000)) == ("C", 9960)
    # Unplugged: the draw stops at once, no lag.
    assert state_and_l1(command(plant, 20000, pilot_ma=10000)) == ("A", 0)
    plant.plug("ev", 30000)
    assert state_and_l1(command(plant, 30999, pilot_ma=10000)) == ("B", 0)
    assert state_and_l1(command(plant, 31000, pilot_ma=10000)) == ("C", 9960)
    plant.unplug("ev", 32000)
    assert state_and_l1(command(plant, 32000, pilot_ma=10000)) == ("A", 0)


def test_a_killed_node_holds_its_pilot_until_its_watchdog_fires() -> None:
    plant = plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 1000}}], wdt_ms=2000)
    for now_ms in range(0, 1001, 100):
        command(plant, now_ms, pilot_ma=16000, applied_ma=16000)
    # Killed after its feed at 1000: the PWM keeps its duty until 1000 + wdt_ms.
    held = {r["node"]: r for r in plant.sample(2999)}["ev"]
    assert held["alive"] is True and held["applied_ma"] == 16000 and held["pilot_ma"] == 15960
    assert held["draw_ma"] == 15960
    reset = {r["node"]: r for r in plant.sample(3000)}["ev"]
    assert reset["alive"] is False and reset["applied_ma"] == 0 and reset["pilot_ma"] == 0
    assert reset["mem_alloc"] is None
    # The car follows the reset pilot after its lag.
    assert plant.sample(3999)[0]["draw_ma"] == 15960
    assert plant.sample(4000)[0]["draw_ma"] == 0
    # Restarted: its first command (a new process: its own socket, its seq from 1) starts a new life.
    command(plant, 9000, pilot_ma=6000, applied_ma=6000, address=("127.0.0.1", 40001), seq=1)
    back = plant.sample(9000)[0]
    assert back["alive"] is True and back["applied_ma"] == 6000


def test_a_restarted_node_starts_its_watchdog_at_its_first_command_even_before_the_last_one_fired() -> None:
    # The old process fed at 1000 and is killed; the new one commands at 2500, before the old life's watchdog
    # (3000), and does not feed yet (its boot). Its life's watchdog runs from 2500: before, the plant took it for
    # the old life and reset it at 3000, 500 ms into its boot. A new process on the port the old one had (the
    # kernel may give it again) tells itself by its seq, which starts again.
    for address in (("127.0.0.1", 40001), ADDRESS):
        plant = plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 1000}}], wdt_ms=2000)
        for now_ms in range(0, 1001, 100):
            command(plant, now_ms, pilot_ma=16000, applied_ma=16000, seq=now_ms // 100 + 1)
        command(plant, 2500, feed=False, address=address, seq=1)
        assert plant.nodes["ev"].fed_ms == 2500
        assert [r["alive"] for r in (plant.sample(3000)[0], plant.sample(4499)[0], plant.sample(4500)[0])] == [
            True, True, False], address


def test_a_node_that_never_feeds_is_reset_all_the_same() -> None:
    plant = plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 1000}}], wdt_ms=2000)
    command(plant, 0, pilot_ma=16000, feed=False, applied_ma=16000)
    command(plant, 1000, pilot_ma=16000, feed=False, applied_ma=16000)
    assert plant.sample(1999)[0]["alive"] is True
    assert plant.sample(2000)[0]["alive"] is False


def test_a_relay_load_draws_while_closed() -> None:
    plant = plant_of([RELAY], wdt_ms=2000)
    assert state_and_l1(command(plant, 0, node="heater", relay=True)) == ("", 8000)
    assert state_and_l1(command(plant, 100, node="heater", relay=False)) == ("", 0)
    command(plant, 200, node="heater", relay=True)
    assert plant.sample(2199)[0]["draw_ma"] == 8000
    assert plant.sample(2200)[0]["draw_ma"] == 0  # the watchdog opened it


def test_the_meter_sums_unmanaged_load_managed_draws_and_solar() -> None:
    meter = {"node": "ev", "unmanaged_ma": 3000, "solar_ma": 10000, "interval_ms": 1000}
    plant = plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 1000}}, RELAY], meter=meter)
    command(plant, 0, pilot_ma=16000)
    command(plant, 0, node="heater", relay=True)

    def reading(now_ms: int) -> tuple[int | None, int, int]:
        body = command(plant, now_ms, pilot_ma=16000)
        assert body[2] & simproto.FLAG_METER
        return simproto.known(body[7]), body[10], body[11]

    # At 1000: the relay's 8 A and the car's 15.96 A, beside 3 A of others, less 10 A of solar.
    l1, seq_before, age = reading(1000)
    assert l1 == 3000 + 8000 + 15960 - 10000 and age == 0
    plant.meter_stale(5000, 1500)
    l1_stale, seq_stale, age_stale = reading(4000)
    assert (l1_stale, seq_stale) == (l1, seq_before) and age_stale == 3000  # no new reading; it ages
    _, seq_after, age_after = reading(6500)
    assert seq_after == seq_before + 1 and age_after == 0
    # Only the meter's node reads it.
    assert not command(plant, 6500, node="heater", relay=True)[2] & simproto.FLAG_METER


def test_valve_and_boiler_nodes_drive_the_house() -> None:
    nodes = [{"id": "boiler", "kind": "boiler"}, {"id": "lounge", "kind": "valve"},
             {"id": "study", "kind": "valve"}]
    plant = plant_of(nodes, house={"start_week_s": 3600})
    lounge = command(plant, 0, node="lounge", valve_pct=100)
    assert simproto.known(lounge[12]) == 160 and lounge[3] == 0  # 16 C, valve closed at the start
    assert lounge[16] == 3600 * 1000  # Monday 01:00
    boiler = command(plant, 0, node="boiler", boiler=True)
    assert simproto.known(boiler[12]) is None  # no room sensor on the boiler node
    assert simproto.known(boiler[13]) == 160 and simproto.known(boiler[15]) is not None  # flow, outside
    for now_ms in range(1000, 60001, 1000):
        command(plant, now_ms, node="lounge", valve_pct=100)
        command(plant, now_ms, node="study", valve_pct=0)
        boiler = command(plant, now_ms, node="boiler", boiler=True)
    lounge = command(plant, 60000, node="lounge", valve_pct=100)
    study = command(plant, 60000, node="study", valve_pct=0)
    assert lounge[3] == 100 and study[3] == 0  # a 40 s valve motor has finished its travel
    assert boiler[2] & simproto.FLAG_FLAME  # the boiler lit against an open valve
    assert simproto.known(boiler[13]) > 160  # type: ignore[operator]
    assert lounge[16] == 3660 * 1000
    records = {r["node"]: r for r in plant.sample(60000)}
    assert records["boiler"]["boiler_on"] is True and records["boiler"]["flame"] is True
    assert records["lounge"]["valve_pct"] == 100


def test_the_boiler_nodes_setpoint_drives_the_boiler() -> None:
    # Two houses heated alike for 2 min; then one boiler node drives the cooldown setpoint (30 C).
    nodes = [{"id": "boiler", "kind": "boiler"}, {"id": "lounge", "kind": "valve"}]
    plants = {None: plant_of(nodes, house={"start_week_s": 3600}), 300: plant_of(nodes, house={"start_week_s": 3600})}
    flame: dict[int | None, bool] = {}
    for setpoint_dc, plant in plants.items():
        for now_ms in range(0, 140001, 1000):
            command(plant, now_ms, node="lounge", valve_pct=100)
            boiler = command(plant, now_ms, node="boiler", boiler=True,
                             setpoint_dc=setpoint_dc if now_ms > 120000 else None)
            if now_ms == 120000:
                assert boiler[2] & simproto.FLAG_FLAME and simproto.known(boiler[13]) > 550  # type: ignore[operator]
        flame[setpoint_dc] = bool(boiler[2] & simproto.FLAG_FLAME)
        assert plant.sample(140000)[0]["setpoint_dc"] == setpoint_dc
    # Not driven: the boiler's own setpoint (the scenario's 70 C) keeps the burner lit; 30 C puts it out.
    assert flame == {None: True, 300: False}
    # A node whose watchdog fired drives nothing.
    assert plants[300].sample(140000 + 60001)[0]["setpoint_dc"] is None


def test_malformed_commands_are_ignored() -> None:
    plant = plant_of([EVSE])
    for data in (b"", b"LS", b"\x00" * 40, b"LS\x01\x02\x02ev" + b"\x00" * 60):
        assert plant.command(data, ADDRESS, 0) is None
    size = simproto.encode_command(BUFFER, "stranger", 1, 0, 1000, 0, None, 0, 0, 0, 0)
    assert plant.command(bytes(BUFFER[:size]), ADDRESS, 0) is None


def test_a_real_node_on_the_simulated_hal(device_root: Path) -> None:
    scenario = sc.parse({"duration_s": 600, "site": SITE, "nodes": [{**EVSE, "car": {"plug_at_s": 0,
                                                                                     "lag_ms": 1000}}],
                         "meter": {"node": "ev", "unmanaged_ma": 2000}})
    samples: list[dict[str, object]] = []
    lock = threading.Lock()

    def keep(records: list[dict[str, object]]) -> None:
        with lock:
            samples.extend(records)

    server = PlantServer(Plant(scenario, wdt_ms=1500), on_sample=keep)
    server.start()

    def sampled_from(t_ms: int) -> dict[str, object]:
        """The first sample at or after plant time t_ms, once the plant has taken it. Not the latest sample
        when asked: the plant thread may not have sampled since what the node read (a loaded machine)."""
        deadline = time.monotonic() + 10
        while True:
            with lock:
                found = [s for s in samples if isinstance(s["t_ms"], int) and s["t_ms"] >= t_ms]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no sample from t={t_ms} ms on"
            threading.Event().wait(0.05)

    script = {"0": [["pilot_ma", 16000]]}
    node = mpnode.NodeProcess("sim_node.py", str(server.address[1]), "ev", mpnode.argfile(script),
                              device_root=device_root)
    try:
        # The car starts after its lag, and the node reads it: state C, 15.96 A on L1, the meter with it.
        line = node.expect(lambda r: r["state"] == "C" and r["current_ma"] == [15960, None, None])
        assert line["meter"] is not None and line["flame"] is None and line["week_ms"] is None
        line = node.expect(lambda r: r["meter"] is not None and r["meter"][0][0] == 2000 + 15960)
        # The plant as sampled from then on: the car draws, the node's commands in force.
        after = sampled_from(server.now_ms())
        assert (after["alive"], after["applied_ma"], after["draw_ma"]) == (True, 16000, 15960), after
        with lock:
            assert all(isinstance(s["mem_alloc"], int) for s in samples if s["alive"])
        node.kill()
        # Its watchdog fires 1.5 s after the last feed: the pilot goes to no charging, then the car stops.
        for _ in range(200):
            with lock:
                last = samples[-1]
            if not last["alive"] and last["draw_ma"] == 0:
                break
            threading.Event().wait(0.1)
        assert not last["alive"] and last["draw_ma"] == 0, samples[-5:]
        with lock:
            dead = [s for s in samples if not s["alive"]]
        assert all(s["applied_ma"] == 0 and s["pilot_ma"] == 0 for s in dead)
        # Restarted, it commands again and is alive.
        node.start()
        node.expect(lambda r: r["state"] == "C")
        assert sampled_from(server.now_ms())["alive"] is True
        # The plant stops answering: the node's readings turn unknown, not stale numbers.
        server.stop()
        line = node.expect(lambda r: r["state"] == "" and r["current_ma"] == [None, None, None])
    finally:
        node.close()
        server.stop()


def test_a_feed_waiting_while_the_plant_thread_is_held_back_is_not_a_hung_node() -> None:
    # The simulator judges a node hung at heard_until_ms(), not at now: a feed that waits in the plant's socket
    # while its thread is held back (a loaded machine, a long collection) must not look like a stopped node.
    server = PlantServer(plant_of([EVSE], wdt_ms=1000))
    server.start()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    seqs = itertools.count(1)
    try:
        sender.sendto(_datagram(next(seqs), 0), server.address)
        state = server.plant.nodes["ev"]
        for _ in range(100):
            with server.lock:
                fed_ms = state.fed_ms
            if fed_ms is not None:
                break
            threading.Event().wait(0.01)
        assert fed_ms is not None
        with server.lock:  # the plant thread is held back: it cannot take what comes now
            held_ms = server.now_ms()
            for _ in range(12):  # the node feeds every 100 ms all along
                sender.sendto(_datagram(next(seqs), 0), server.address)
                threading.Event().wait(0.1)
            now_ms = server.now_ms()
            heard_ms = server.heard_until_ms(now_ms)
            assert now_ms >= fed_ms + 1000 and not state.alive(now_ms)  # judged at now: "hung"
            # Judged at what it has heard (at most a sample's wait after the hold began): alive.
            assert heard_ms <= held_ms + server.sample_ms and state.alive(heard_ms)
        for _ in range(100):  # let go, the plant takes the waiting feeds and catches up
            now_ms = server.now_ms()
            if server.heard_until_ms(now_ms) >= held_ms + 1200:
                break
            threading.Event().wait(0.01)
        with server.lock:
            assert state.fed_ms is not None and state.fed_ms >= held_ms + 1200
    finally:
        sender.close()
        server.stop()


def _datagram(seq: int, pilot_ma: int, feed: bool = True) -> bytes:
    size = simproto.encode_command(BUFFER, "ev", seq, simproto.FLAG_FEED if feed else 0,
                                   pilot.duty_permille(pilot_ma), 0, None, pilot_ma, pilot_ma, 20000, 0)
    return bytes(BUFFER[:size])


def _answered(sock: socket.socket) -> bytes:
    """The plant's READINGS to sock's last command: the evidence that the plant has taken it."""
    sock.settimeout(10)
    return sock.recv(simproto.MAX_BYTES + 1)


def test_a_killed_nodes_feed_taken_late_ends_with_its_life_and_is_not_the_next_ones() -> None:
    # A node process charging at 16 A is killed while its last feed waits in the plant's socket (the plant
    # thread held back, as on a loaded machine), and restarted. The plant takes that feed after the old
    # life's watchdog fired. Before, it took it as a new life's first command at the time it took it: the dead
    # process's 16 A in force again for wdt_ms, and the simulator counted it as the new process's feed (a new
    # process slow to boot then looked hung wdt_ms later).
    samples: list[dict[str, object]] = []
    server = PlantServer(plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 1000}}], wdt_ms=500),
                         on_sample=samples.extend)
    server.start()
    old = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    new = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    state = server.plant.nodes["ev"]
    try:
        old.sendto(_datagram(1, 16000), server.address)
        _answered(old)
        with server.lock:
            assert state.alive(server.now_ms()) and state.pilot_permille == pilot.duty_permille(16000)
            fed_ms = state.fed_ms
        assert fed_ms is not None
        with server.lock:  # the plant thread cannot take what comes now
            old.sendto(_datagram(2, 16000), server.address)
            old.close()
            killed_ms = server.now_ms()
            server.plant.end_life("ev", killed_ms)  # what Simulation does once the process is gone
            while server.now_ms() < fed_ms + 700:  # past the old life's watchdog (fed_ms + 500)
                threading.Event().wait(0.05)
            restarted_ms = server.now_ms()
        for _ in range(1000):  # let go: the plant takes the waiting feed
            with server.lock:
                if state.seq == 2:
                    break
            threading.Event().wait(0.01)
        with server.lock:
            now_ms = server.now_ms()
            assert state.seq == 2 and state.fed_ms is not None
            # Judged as of the kill: fed then, reset wdt_ms on, long before now; not a feed since the restart.
            assert fed_ms <= state.fed_ms <= killed_ms < restarted_ms, (fed_ms, state.fed_ms, killed_ms)
            assert not state.alive(now_ms)
            taken = len(samples)
        # The plant's next sample but one (the next may have been begun before the feed was taken): what is in
        # force once it is heard.
        for _ in range(1000):
            if len(samples) >= taken + 2:
                break
            threading.Event().wait(0.01)
        record = samples[taken + 1]
        assert (record["alive"], record["applied_ma"], record["pilot_ma"]) == (False, 0, 0), record
        # The new process's first command (its boot: no charging, no feed yet) is a new life, its watchdog from it.
        sent_ms = server.now_ms()
        new.sendto(_datagram(1, 0, feed=False), server.address)
        _answered(new)
        with server.lock:
            assert state.fed_ms is not None and state.fed_ms >= sent_ms and state.alive(state.fed_ms)
    finally:
        old.close()
        new.close()
        server.stop()


def test_a_watchdog_is_judged_up_to_what_the_plant_has_heard_not_at_its_own_late_now() -> None:
    # The plant held back from 1000 on (it has taken nothing since: heard_ms) while the node fed on: at 3500 its
    # watchdog (1000 + 2000) is not known to have fired, since its feeds may be waiting. Before, the plant fired it
    # at 3000 at its first look after the hold: the node dead in the trace, the car stopping after its lag, for
    # the plant's own lateness.
    plant = plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 1000}}], wdt_ms=2000)
    for now_ms in range(0, 1001, 100):
        command(plant, now_ms, pilot_ma=16000, applied_ma=16000)
    plant.heard_ms = 1000
    held = plant.sample(3500)[0]
    assert (held["alive"], held["applied_ma"], held["pilot_ma"], held["draw_ma"]) == (True, 16000, 15960, 15960)
    command(plant, 3600, pilot_ma=16000, applied_ma=16000)  # the feeds taken at last (the one that counts)
    plant.heard_ms = 3600
    assert [(r["alive"], r["draw_ma"]) for r in (plant.sample(4600)[0], plant.sample(5599)[0])] == [
        (True, 15960), (True, 15960)]
    # What it has heard shows no feed after 3600: the watchdog fires at 5600, once heard up to then.
    assert plant.sample(5600)[0]["alive"] is True
    plant.heard_ms = 5600
    assert plant.sample(5600)[0]["alive"] is False


def test_a_plant_held_back_past_a_watchdog_charges_none_of_it_to_the_node() -> None:
    # The same on loopback: a node feeds every 100 ms while the plant thread is held 1.5 s (wdt_ms 1 s). No sample
    # shows it reset, and its car never stops.
    samples: list[dict[str, object]] = []
    server = PlantServer(plant_of([{**EVSE, "car": {"plug_at_s": 0, "lag_ms": 1000}}], wdt_ms=1000),
                         on_sample=samples.extend)
    server.start()
    node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    seqs = itertools.count(1)
    try:
        def feed_until(end_ms: int) -> None:
            while server.now_ms() < end_ms:
                node.sendto(_datagram(next(seqs), 16000), server.address)
                threading.Event().wait(0.1)

        feed_until(1500)
        while not [s for s in samples if s["draw_ma"] == 15960]:  # drawing (after the car's lag)
            assert server.now_ms() < 20000, samples[-3:]
            feed_until(server.now_ms() + 100)
        with server.lock:
            feed_until(server.now_ms() + 1500)
        feed_until(server.now_ms() + 1500)  # past the car's lag after the hold
    finally:
        node.close()
        server.stop()
    # A sample before the plant took the first command shows the node not alive yet, rightly (a loaded machine).
    first = next(index for index, s in enumerate(samples) if s["alive"])
    drawing = next(index for index, s in enumerate(samples) if s["draw_ma"] == 15960)
    assert all(s["alive"] for s in samples[first:]), [s for s in samples[first:] if not s["alive"]][:3]
    assert all(s["draw_ma"] == 15960 for s in samples[drawing:]), [s for s in samples[drawing:]
                                                                   if s["draw_ma"] != 15960][:3]
    assert server.held_back_ms >= 1000


def test_the_hub_measures_how_long_its_thread_was_held_back() -> None:
    # A heartbeat that comes while the hub's thread is held (here by the hub's own lock, which its loop takes
    # every turn; on CI a loaded machine or the whole process stopped) waits that long: the hub says so, so that
    # a failsafe after a hold of a peer timeout tells the machine's silence from a node's. (Here, beside the
    # plant's own measure of it, which the hub's may differ from: another thread.)
    a, b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    hub = Hub({"a": a.getsockname()[1], "b": b.getsockname()[1]})
    hub.start()
    try:
        a.sendto(b"before", hub.address)
        b.settimeout(10)
        assert b.recv(100) == b"before"
        with hub._lock:
            a.sendto(b"held", hub.address)
            threading.Event().wait(0.5)
            released_s = time.monotonic()
        assert b.recv(100) == b"held"
        hub.stop()  # its turn is done (it says how long it was held after it forwarded)
        # The turn that forwarded it: begun before the release, held past it by 400 ms or more.
        held = [(began_s, held_ms) for began_s, held_ms in hub.held_back
                if began_s <= released_s <= began_s + held_ms / 1000 + 0.01 and held_ms >= 400]
        assert held, hub.held_back
        assert hub.held_back_ms >= held[0][1]
        assert (hub.held_back_at_s, hub.held_back_ms) in hub.held_back
    finally:
        hub.stop()
        a.close()
        b.close()


def test_a_simulator_held_back_says_so_when_it_closes(tmp_path: Path, device_root: Path) -> None:
    # A sample's consumer takes 300 ms once, holding the sampler's thread back as a loaded machine would: the
    # run's last words say how long and when, so that a bound missed on CI tells the machine's lateness from
    # a node's (virtual nodes: no processes needed).
    said: list[str] = []
    held: list[int] = []

    def slow_once(records: list[dict[str, object]]) -> None:
        t_ms = records[0]["t_ms"]
        assert isinstance(t_ms, int)
        if not held and t_ms >= 500:
            held.append(t_ms)
            time.sleep(0.3)

    sim = Simulation(three_evses(2, []), tmp_path / "site", device_root=device_root, progress=said.append,
                     on_sample=slow_once, virtual=("evse1", "evse2", "evse3"))
    try:
        sim.start()
        sim.run(1500)
    finally:
        sim.close()
    assert sim.plant is not None and sim.plant.held_back_ms >= 200, sim.plant and sim.plant.held_back_ms
    assert held and 0 < sim.plant.held_back_at_ms <= 1500
    told = [line for line in said if line.startswith("the simulator was held back")]
    assert len(told) == 1 and re.fullmatch(r"the simulator was held back up to \d+ ms \(the sample due at "
                                           r"t=\d+\.\d s\)", told[0]), said
    assert str(sim.plant.held_back_ms) in told[0]
