"""The plant: cars, relay loads, the house and the mains meter, serving the nodes' simulated HALs over UDP.

Each node's HAL (loadmesh.node.hal_sim) sends its actuator commands and
watchdog feeds (loadmesh.node.simproto COMMAND); the plant answers each with
what that node's sensors read (READINGS). All model time is an explicit
now_ms, so the models are tested without a clock; PlantServer runs them in
real time on a thread.

Models:
- A car follows the pilot after its lag: it draws min(the current the duty
  signals, its max) as that was lag_ms ago (a pure delay, both up and down),
  0 while unplugged or while the pilot says no charging. Pilot state A
  without a car, C while it draws, else B.
- A relay load draws its max_ma on its phases while its relay is closed.
- Valve and boiler nodes drive the reference house (companion.house): valve
  openings per room, the boiler's call for heat and its flow setpoint (the
  scenario's setpoint, the boiler's own, while the node drives none); they
  read room, flow, return and outside temperatures, the confirmed valve
  position and the flame. The house steps in simulated time at `speed`
  times real time.
- The mains meter, read by one node: per phase, the unmanaged load plus
  every managed draw on that phase minus solar production (negative is
  export), a new reading every interval_ms, each with a sequence number.
  While stale (meter_stale) no new reading is taken and the age grows.

A node that stops feeding its watchdog (killed, hung) is modelled as the
hardware would behave: the PWM peripheral and the relays keep their last
state until the watchdog fires, wdt_ms after the last feed; then the node is
in its boot state (pilot constant +12 V, i.e. no charging; relays open;
valve closed; no boiler call) until it commands again. A life is one node
process (one address, a rising seq); a new process begins a new life at its
first command. What a killed process sent and this thread had not taken yet
is judged as of the kill (end_life).
"""

from __future__ import annotations

import contextlib
import selectors
import threading
import time
from collections.abc import Callable

from loadmesh.core import pilot
from loadmesh.node import simproto

from .. import house as house_model
from .scenario import Car, Scenario
from .udpthread import UdpThread

PHASE_INDEX = {"L1": (0,), "L2": (1,), "L3": (2,), "L123": (0, 1, 2)}
DEFAULT_WDT_MS = 2000
HOUSE_STEP_MS = 1000  # how often the house model advances


class CarModel:
    """A car behind an EVSE: follows the pilot's signalled current after lag_ms."""

    def __init__(self, car: Car) -> None:
        self.car = car
        self.plugged = False
        # (t_ms, wanted_ma) at every change of what the car is asked for; the
        # draw at t is the wanted value at t - lag_ms.
        self._wanted: list[tuple[int, int]] = []

    def plug(self, now_ms: int, pilot_permille: int) -> None:
        """The cable goes in: the car reads the pilot from now on."""
        if not self.plugged:
            self.plugged = True
            # Nothing before the lag has passed, whatever the duty.
            self._wanted = [(now_ms, 0)]
            self.follow(now_ms, pilot_permille)

    def unplug(self) -> None:
        """The cable comes out: the draw stops at once."""
        self.plugged = False
        self._wanted = []

    def follow(self, now_ms: int, pilot_permille: int) -> None:
        """The pilot duty at now_ms (call at every change; repeats are cheap)."""
        if not self.plugged:
            return
        wanted = min(pilot.signalled_ma(pilot_permille), self.car.max_ma)
        if self._wanted and self._wanted[-1][1] == wanted:
            return
        if self._wanted and self._wanted[-1][0] >= now_ms:
            self._wanted[-1] = (now_ms, wanted)
        else:
            self._wanted.append((now_ms, wanted))

    def draw_ma(self, now_ms: int) -> int:
        """What the car draws at now_ms (per phase it charges on)."""
        if not self.plugged:
            return 0
        seen = now_ms - self.car.lag_ms
        draw = 0
        keep_from = 0
        for index, (at_ms, wanted) in enumerate(self._wanted):
            if at_ms > seen:
                break
            draw = wanted
            keep_from = index
        del self._wanted[:keep_from]  # what lies further back can no longer matter
        return draw

    def pilot_state(self, now_ms: int) -> str:
        """The state the EVSE reads: A unplugged, C drawing, else B."""
        if not self.plugged:
            return "A"
        return "C" if self.draw_ma(now_ms) > 0 else "B"


class NodeState:
    """What the plant knows of one node: its last commands, telemetry and watchdog."""

    def __init__(self, node_id: str, kind: str, phases: tuple[int, ...], max_ma: int, wdt_ms: int) -> None:
        self.id = node_id
        self.kind = kind
        self.phases = phases
        self.max_ma = max_ma
        self.wdt_ms = wdt_ms
        # A life is one node process: its commands come from one address (its HAL's socket) with a rising seq.
        self.address: tuple[str, int] | None = None
        # The watchdog runs from the first command of a life, and restarts at every feed.
        self.fed_ms: int | None = None
        self.reset_seen = True  # no life yet, so nothing to reset
        self.seq = 0
        # When the current life's process ended (killed), if it did: what of it is still queued was sent before.
        self.ended_ms: int | None = None
        # Commanded state; what is in force is effective() (the watchdog may have reset it).
        self.pilot_permille = pilot.PILOT_OFF_PERMILLE
        self.relay = False
        self.valve_pct = 0
        self.boiler_call = False
        self.setpoint_dc: int | None = None  # not driven
        # Telemetry.
        self.applied_ma = 0
        self.target_ma = 0
        self.failsafe = True
        self.mem_alloc: int | None = None
        self.peers = 0
        self.commands = 0

    def reset_ms(self) -> int | None:
        """When its watchdog fires if no feed comes first; None before its first command."""
        return None if self.fed_ms is None else self.fed_ms + self.wdt_ms

    def alive(self, now_ms: int) -> bool:
        """Whether its commands are in force: it has commanded, and fed its watchdog within wdt_ms."""
        reset_ms = self.reset_ms()
        return reset_ms is not None and now_ms < reset_ms

    def effective(self, now_ms: int) -> tuple[int, bool, int, bool]:
        """(pilot per mille, relay, valve %, boiler call) in force at now_ms."""
        if self.alive(now_ms):
            return self.pilot_permille, self.relay, self.valve_pct, self.boiler_call
        return pilot.PILOT_OFF_PERMILLE, False, 0, False


class Plant:
    """Every model of a scenario's site, driven by node commands and scripted events at explicit times."""

    def __init__(self, scenario: Scenario, wdt_ms: int = DEFAULT_WDT_MS, start_ms: int = 0) -> None:
        self.scenario = scenario
        self.start_ms = start_ms
        self.nodes: dict[str, NodeState] = {}
        self.cars: dict[str, CarModel] = {}
        for node in scenario.nodes:
            phases_name = node.load["phases"]
            max_ma = node.load["max_ma"]
            assert isinstance(phases_name, str) and isinstance(max_ma, int)
            self.nodes[node.id] = NodeState(node.id, node.kind, PHASE_INDEX[phases_name], max_ma, wdt_ms)
            if node.car is not None:
                self.cars[node.id] = CarModel(node.car)
        self.house: house_model.House | None = None
        self._rooms: dict[str, str] = {}  # valve node -> room
        self._boiler_node: str | None = None
        if scenario.house is not None:
            self.house = house_model.House(house_model.reference_house(start_week_s=scenario.house.start_week_s))
            for node in scenario.nodes:
                if node.kind == "valve" and node.room is not None:
                    self._rooms[node.id] = node.room
                elif node.kind == "boiler":
                    self._boiler_node = node.id
        self._house_ms = start_ms
        self._meter_seq = 0
        self._meter_ma: list[int | None] = [None, None, None]
        self._meter_read_ms: int | None = None
        self._meter_stale_until_ms = -1
        self._pending_plugs = sorted(
            [(car.plug_at_ms + start_ms, node_id, "plug") for node_id, car in self._car_specs()
             if car.plug_at_ms is not None]
            + [(car.unplug_at_ms + start_ms, node_id, "unplug") for node_id, car in self._car_specs()
               if car.unplug_at_ms is not None])
        self._tx = simproto.new_buffer()
        # The plant time up to which every node's datagrams have been taken: a watchdog is judged there, not
        # at now, which may lie past datagrams (feeds) still waiting while this plant is held back. PlantServer
        # sets it; None: every datagram is taken as it is sent (the explicit clock of a test).
        self.heard_ms: int | None = None

    def _heard(self, now_ms: int) -> int:
        """When the nodes' watchdogs are judged at now_ms: now, or the time up to which they have been heard."""
        return now_ms if self.heard_ms is None else min(now_ms, self.heard_ms)

    def _car_specs(self) -> list[tuple[str, Car]]:
        return [(node.id, node.car) for node in self.scenario.nodes if node.car is not None]

    # Events.

    def plug(self, node_id: str, now_ms: int) -> None:
        """Plug the car of node_id in."""
        self.step(now_ms)
        self.cars[node_id].plug(now_ms, self.nodes[node_id].effective(self._heard(now_ms))[0])

    def unplug(self, node_id: str, now_ms: int) -> None:
        """Unplug the car of node_id."""
        self.step(now_ms)
        self.cars[node_id].unplug()

    def meter_stale(self, duration_ms: int, now_ms: int) -> None:
        """The meter stops reporting for duration_ms."""
        self.step(now_ms)
        self._meter_stale_until_ms = now_ms + duration_ms

    # Nodes.

    def command(self, data: bytes, address: tuple[str, int], now_ms: int) -> bytes | None:
        """Take one COMMAND datagram; the READINGS to send back (None: not a command of a known node)."""
        decoded = simproto.decode_command(data)
        if decoded is None or decoded[0] not in self.nodes:
            return None
        node_id, body = decoded
        self.step(now_ms)
        state = self.nodes[node_id]
        seq, flags, pilot_permille, valve_pct, setpoint_dc, applied_ma, target_ma, mem_alloc, peers = body
        # Another process than the one commanding so far (a restart: its own socket, its seq from 1 again) is
        # a new life, whether or not the last one's watchdog has fired: the node has reset.
        new_life = address != state.address or seq <= state.seq
        if new_life:
            state.ended_ms = None
        # A datagram of a life whose process has ended waited in the socket while this thread was held back:
        # it was sent before the end, and is judged then. At processing time, a killed node's last feed taken
        # after its watchdog had fired would begin a life of its own, its commands in force again for wdt_ms.
        judged_ms = now_ms if state.ended_ms is None else min(now_ms, state.ended_ms)
        if new_life or not state.alive(judged_ms):
            # A new life (a first boot, a restart), or this life's commands after its watchdog fired at the
            # plant's last look, which may have come late (see PlantServer): its watchdog starts now.
            state.fed_ms = judged_ms
            state.reset_seen = False
        state.address = address
        state.seq = seq
        state.commands += 1
        state.pilot_permille = pilot_permille
        state.relay = bool(flags & simproto.FLAG_RELAY)
        state.boiler_call = bool(flags & simproto.FLAG_BOILER)
        state.valve_pct = valve_pct
        state.setpoint_dc = None if setpoint_dc == simproto.SETPOINT_NONE else setpoint_dc
        state.failsafe = bool(flags & simproto.FLAG_FAILSAFE)
        state.applied_ma = applied_ma
        state.target_ma = target_ma
        state.mem_alloc = simproto.known(mem_alloc)
        state.peers = peers
        if flags & simproto.FLAG_FEED:
            state.fed_ms = judged_ms
        car = self.cars.get(node_id)
        if car is not None:
            car.follow(now_ms, state.effective(self._heard(now_ms))[0])
        return self.readings(node_id, seq, now_ms)

    def end_life(self, node_id: str, now_ms: int) -> None:
        """node_id's process has ended (killed): its datagrams still to be taken were sent before now_ms."""
        state = self.nodes[node_id]
        if state.address is not None and state.ended_ms is None:
            state.ended_ms = now_ms

    def readings(self, node_id: str, seq: int, now_ms: int) -> bytes:
        """The READINGS datagram for node_id at now_ms."""
        state = self.nodes[node_id]
        flags = 0
        pilot_state = ""
        current: list[int | None] = [None, None, None]
        temps: list[int | None] = [None, None, None, None]
        valve: int | None = None
        if state.kind in ("evse", "relay"):
            draw = self.draw_ma(node_id, now_ms)
            for phase in state.phases:
                current[phase] = draw
        car = self.cars.get(node_id)
        if state.kind == "evse":
            pilot_state = car.pilot_state(now_ms) if car is not None else "A"
        if self.house is not None:
            readings = self.house.readings()
            rooms = readings["rooms"]
            assert isinstance(rooms, dict)
            if node_id in self._rooms:
                room = rooms[self._rooms[node_id]]
                temps[0] = _int(room["temp_dc"])
                valve = _int(room["valve_pct"])
            if node_id == self._boiler_node:
                temps[1] = _int(readings["flow_dc"])
                temps[2] = _int(readings["return_dc"])
                temps[3] = _int(readings["outside_dc"])
                flags |= simproto.FLAG_BURNER
                if readings["flame"]:
                    flags |= simproto.FLAG_FLAME
        meter_ma: list[int | None] = [None, None, None]
        meter_age_ms = 0
        if self.scenario.meter is not None and self.scenario.meter.node == node_id:
            flags |= simproto.FLAG_METER
            meter_ma = self._meter_ma
            meter_age_ms = now_ms - self._meter_read_ms if self._meter_read_ms is not None else 0x3FFFFFFF
        week_ms = -1
        if self.house is not None:
            week_ms = int(self.house.week_s() * 1000) % (7 * 86400000)
        size = simproto.encode_readings(self._tx, node_id, seq, pilot_state, flags, valve, current, meter_ma,
                                        self._meter_seq, min(meter_age_ms, 0x3FFFFFFF), temps, week_ms)
        return bytes(self._tx[:size])

    def draw_ma(self, node_id: str, now_ms: int) -> int:
        """What node_id's load draws now, per phase it is on."""
        state = self.nodes[node_id]
        if state.kind == "evse":
            car = self.cars.get(node_id)
            return car.draw_ma(now_ms) if car is not None else 0
        if state.kind == "relay":
            return state.max_ma if state.effective(self._heard(now_ms))[1] else 0
        return 0

    # Time.

    def step(self, now_ms: int) -> None:
        """Bring every model up to now_ms: scripted plugs, watchdog resets, the meter, the house."""
        # Plugs up to now and watchdog resets up to what has been heard, in time order.
        heard_ms = self._heard(now_ms)
        due: list[tuple[int, str, str]] = []
        while self._pending_plugs and self._pending_plugs[0][0] <= now_ms:
            due.append(self._pending_plugs.pop(0))
        for node_id in sorted(self.nodes):
            state = self.nodes[node_id]
            reset_ms = state.reset_ms()
            if not state.reset_seen and reset_ms is not None and reset_ms <= heard_ms:
                state.reset_seen = True
                due.append((reset_ms, node_id, "reset"))
        for at_ms, node_id, what in sorted(due):
            car = self.cars.get(node_id)
            if car is None:
                continue
            if what == "plug":
                car.plug(at_ms, self.nodes[node_id].effective(min(at_ms, heard_ms))[0])
            elif what == "unplug":
                car.unplug()
            else:
                car.follow(at_ms, pilot.PILOT_OFF_PERMILLE)  # the reset pilot: no charging
        self._step_meter(now_ms)
        if self.house is not None and self.scenario.house is not None:
            while now_ms - self._house_ms >= HOUSE_STEP_MS:
                self._house_ms += HOUSE_STEP_MS
                self._command_house(self._house_ms)
                self.house.advance(HOUSE_STEP_MS / 1000 * self.scenario.house.speed)

    def _command_house(self, now_ms: int) -> None:
        assert self.house is not None and self.scenario.house is not None
        heard_ms = self._heard(now_ms)
        valves = {room: self.nodes[node_id].effective(heard_ms)[2] for node_id, room in sorted(self._rooms.items())}
        boiler_on = False
        setpoint_dc = self.scenario.house.setpoint_dc
        if self._boiler_node is not None:
            boiler_on = self.nodes[self._boiler_node].effective(heard_ms)[3]
            driven = self.boiler_setpoint_dc(now_ms)
            setpoint_dc = driven if driven is not None else setpoint_dc
        self.house.command(valves, boiler_on, setpoint_dc)

    def boiler_setpoint_dc(self, now_ms: int) -> int | None:
        """The flow setpoint the boiler node drives now; None if none (or its commands are not in force)."""
        if self._boiler_node is None:
            return None
        state = self.nodes[self._boiler_node]
        return state.setpoint_dc if state.alive(self._heard(now_ms)) else None

    def _step_meter(self, now_ms: int) -> None:
        meter = self.scenario.meter
        if meter is None or now_ms < self._meter_stale_until_ms:
            return
        if self._meter_read_ms is not None and now_ms - self._meter_read_ms < meter.interval_ms:
            return
        phases = self.scenario.phases()
        values: list[int | None] = [None, None, None]
        for phase in range(phases):
            total = meter.unmanaged_ma[phase] - meter.solar_ma[phase]
            for node_id in sorted(self.nodes):
                if phase in self.nodes[node_id].phases:
                    total += self.draw_ma(node_id, now_ms)
            values[phase] = total
        self._meter_ma = values
        self._meter_seq += 1
        self._meter_read_ms = now_ms

    def sample(self, now_ms: int) -> list[dict[str, object]]:
        """One trace record per node at now_ms (sorted by node id); t_ms counts from start_ms."""
        self.step(now_ms)
        records = []
        for node_id in sorted(self.nodes):
            state = self.nodes[node_id]
            pilot_permille, _relay, valve_pct, boiler_call = state.effective(self._heard(now_ms))
            alive = state.alive(self._heard(now_ms))
            # What the hardware enforces: the node's own report while its
            # commands are in force (a killed node's too, until its watchdog
            # fires), nothing once it is in its boot state.
            applied = state.applied_ma if alive else 0
            record: dict[str, object] = {
                "t_ms": now_ms - self.start_ms, "node": node_id, "alive": alive,
                "applied_ma": applied, "target_ma": state.target_ma, "draw_ma": self.draw_ma(node_id, now_ms),
                "failsafe": state.failsafe, "mem_alloc": state.mem_alloc if alive else None,
                "pilot_ma": pilot.signalled_ma(pilot_permille) if state.kind == "evse" else None,
                "peers": state.peers,
            }
            car = self.cars.get(node_id)
            if state.kind == "evse":
                record["state"] = car.pilot_state(now_ms) if car is not None else "A"
            if state.kind == "valve":
                record["valve_pct"] = valve_pct
                if self.house is not None and node_id in self._rooms:
                    # The valve's position (what its feedback confirms), behind the command by its motor's travel.
                    rooms_now = self.house.readings()["rooms"]
                    assert isinstance(rooms_now, dict)
                    record["valve_confirmed_pct"] = rooms_now[self._rooms[node_id]]["valve_pct"]
            if state.kind == "boiler":
                record["boiler_on"] = boiler_call
                record["setpoint_dc"] = state.setpoint_dc if alive else None
                record["flame"] = bool(self.house is not None and self.house.burner_on)
            records.append(record)
        return records


class PlantServer(UdpThread):
    """Serves a Plant on a UDP port in a thread, in real time; samples it every sample_ms into on_sample."""

    thread_name = "plant"

    def __init__(self, plant: Plant, host: str = "127.0.0.1", port: int = 0, sample_ms: int = 100,
                 on_sample: Callable[[list[dict[str, object]]], None] | None = None) -> None:
        super().__init__(host, port)
        self.plant = plant
        self.sample_ms = sample_ms
        self.on_sample = on_sample
        self.lock = threading.Lock()  # hold it to call plant methods from another thread
        self._origin = time.monotonic()  # the plant's time 0: the scenario starts now
        # Every datagram that arrived before this plant time has been taken (a feed among them). A watchdog
        # judged later than this would charge the plant thread's own lateness (a loaded machine, a long
        # collection in this process) to the node: see heard_until_ms().
        self.drained_ms = 0
        # The most a sample came after its time (ms), and which one: this thread held back (a loaded machine),
        # and with it the hub and the run loop of the same process, as far as a test can tell from here.
        self.held_back_ms = 0
        self.held_back_at_ms = 0

    def now_ms(self) -> int:
        """Milliseconds on the plant's clock."""
        return int((time.monotonic() - self._origin) * 1000)

    def ms_of(self, monotonic_s: float) -> int:
        """A time.monotonic() on the plant's clock (ms)."""
        return int((monotonic_s - self._origin) * 1000)

    def plug(self, node_id: str) -> None:
        """Plug node_id's car in, now."""
        with self.lock:
            self.plant.plug(node_id, self.now_ms())

    def unplug(self, node_id: str) -> None:
        """Unplug node_id's car, now."""
        with self.lock:
            self.plant.unplug(node_id, self.now_ms())

    def meter_stale(self, duration_ms: int) -> None:
        """Silence the meter for duration_ms from now."""
        with self.lock:
            self.plant.meter_stale(duration_ms, self.now_ms())

    def end_life(self, node_id: str) -> None:
        """node_id's process has ended, now (call once it is gone)."""
        with self.lock:
            self.plant.end_life(node_id, self.now_ms())

    def heard_until_ms(self, now_ms: int) -> int:
        """The plant time up to which the nodes' feeds are known: now_ms, or earlier if this thread is behind."""
        return min(now_ms, self.drained_ms)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            next_sample = self.now_ms()
            while not self._stop.is_set():
                before_ms = self.now_ms()
                wait_ms = max(0, next_sample - before_ms)
                if selector.select(wait_ms / 1000):
                    self._drain()
                else:
                    self.drained_ms = before_ms  # nothing had come by then, or select would have returned it
                now = self.now_ms()
                if now >= next_sample:
                    if now - next_sample > self.held_back_ms:
                        self.held_back_ms = now - next_sample
                        self.held_back_at_ms = next_sample
                    next_sample += self.sample_ms
                    with self.lock:
                        self.plant.heard_ms = self.drained_ms
                        records = self.plant.sample(now)
                    if self.on_sample is not None:
                        self.on_sample(records)

    def _drain(self) -> None:
        while True:
            before_ms = self.now_ms()
            try:
                data, address = self._sock.recvfrom(simproto.MAX_BYTES + 1)
            except BlockingIOError:
                self.drained_ms = before_ms  # all that came before then is taken
                return
            with self.lock:
                self.plant.heard_ms = self.drained_ms
                answer = self.plant.command(data, address, self.now_ms())
            if answer is not None:
                with contextlib.suppress(OSError):  # the node is gone; its next command finds us again
                    self._sock.sendto(answer, address)


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value
