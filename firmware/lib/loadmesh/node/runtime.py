"""The node runtime: boot from the store, the 100 ms control tick, the mesh, the HTTP API, config adoption."""

import gc
import sys
import time

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well

    def const(value: int) -> int:  # type: ignore[misc]
        return value

from loadmesh.core import controller, heartbeat
from loadmesh.core.errors import FieldError
from loadmesh.core.peers import MAX_PEERS, PeerTable, refill

from . import lastlimit
from .clock import Clock
from .hal import Hal, open_hal, os_error_words
from .httpapi import Api, token_for
from .mesh import Mesh
from .roles import Role, forget, open_role

# MicroPython's heap (a node) needs a collection to make room mid-tick; on
# CPython (the simulator's virtual nodes) a full collection walks the whole
# host process, which in a long test session holds millions of objects: it
# took ~150 ms a tick and starved the virtual peers of their heartbeats.
_COMPACT = hasattr(gc, "mem_free")

# Boot (Node()), in this order:
#   1. read the wiring (hw.json) and open the HAL: every actuator safe;
#   2. raise the boot counter in flash (before any heartbeat can carry it;
#      a node that cannot keep it never joins the mesh);
#   3. read the limit enforced before a watchdog reset (RTC memory), the
#      node's settings (node.json), the group key and the config;
#   4. clean the store's leftover temp files;
#   5. unadopted (no key): make or read the one-time adoption code and print
#      it; the HTTP API takes PUT /adopt. Adopted without a config it can run:
#      the HTTP API takes PUT /config. Either way the actuators stay safe and
#      the watchdog is fed: the node is alive, and off.
#   6. with a config: the plan, the peer table, the mesh socket, the role,
#      and the controller's boot state (at most the failsafe current and the
#      limit kept in RTC memory: DESIGN rule 6).
# run() then starts the HTTP server and the config sync task and runs the
# control loop: one tick() every TICK_MS, gc between ticks, the watchdog fed
# at the end of a good tick. The mesh is read and written inside the tick
# (non-blocking: at most Mesh.max_packets per tick, the rest waits in the
# socket), so the controller sees what arrived up to its tick, and nothing
# in the mesh or the HTTP API can hold the tick up longer than one request's
# handling. An exception in the tick puts the HAL in its safe state and stops
# feeding the watchdog: the node resets and boots safe. Without a watchdog
# (the "none" HAL) the process exits instead. A MemoryError is the one
# exception a tick may have once: the heap cut up for a moment (a datagram, a
# request beside the tick) is no fault of the node's. That tick is skipped,
# as a late one would be (see tick_and_collect); a second in a row halts.
#
# The tick's work is in plain methods, not in the coroutine: a coroutine's
# frame lives on the heap and would keep a tick's temporaries alive until
# overwritten (docs/firmware.md, Memory).
#
# Memory: a node with 16 peers on the ESP32's 12K-word heap has little to
# spare (docs/firmware.md). What only boot, a new config or adoption needs
# (the store, the settings, the group config's parser, config sync) is
# imported when needed and forgotten afterwards (_forget), and the tick keeps
# no more of its output than GET /status shows.

TICK_MS = const(100)
SYNC_MS = const(500)
FETCH_TIMEOUT_MS = const(3000)  # a peer's GET /config
GC_THRESHOLD = const(8192)
RESTART_MS = 10000  # a node whose boot or loop failed resets after this (main(): _failed); not const: a test sets it
CONFIG = "config.json"
HARDWARE = "hw.json"
SETTINGS = "node.json"
# Modules used only now and then; on MicroPython they are dropped after use and imported again when needed.
_OCCASIONAL = ("loadmesh.node.groupsync", "loadmesh.core.configsync", "loadmesh.core.groupconfig",
               "loadmesh.core.fieldcheck", "loadmesh.node.settings", "loadmesh.node.store", "loadmesh.node.adoption",
               "loadmesh.node.departed", "loadmesh.node.jsontext", "loadmesh.node.peerboots", "loadmesh.node.putsign",
               "loadmesh.node.hwconfig")

UNADOPTED = "unadopted"  # no group key: PUT /adopt
NO_CONFIG = "no_config"  # a key, but no config this node can run: PUT /config
LEFT_OUT = "left_out"  # the winning config has no member of this id: nothing driven, PUT /config
RUNNING = "running"
HALTED = "halted"  # the tick failed: actuators safe, the watchdog no longer fed


class Node:
    """One node: its store, HAL, settings, and (once it has a config) plan, peer table, mesh, role and state."""

    def __init__(self, root: str = "", clock: Clock | None = None) -> None:
        self.root = root
        self.clock = clock if clock is not None else Clock()
        self.error = ""  # the last thing that kept the node from running, for /status
        self.hw_error = ""  # why hw.json was refused (then nothing is driven), for /status until a reboot
        # node.json's bind_host or http_host is not the node's address (_check_hosts), for /status
        self.bind_error = ""
        self.hosts_checked = ""  # the address they were last held against
        self.boot_id = 0
        self.last_applied_ma = 0
        self.last_exposure_ma = 0
        self.settings: dict[str, object] = {}
        self.store_state: dict[str, str] = {}
        self.boot_state = ""
        self.key: bytes | None = None
        self.code = b""
        self.pads: tuple[bytes, bytes] | None = None
        self.http_token: str | None = None
        # Config sync (groupsync): the adopted config, its announced hash, and the configs peers run.
        self.adopted: dict[str, object] | None = None
        self.announced = ""
        self.known: dict[str, dict[str, object]] = {}
        self.in_use: list[str] = []  # the announced hashes merged into the running plan
        self.tried_ms: dict[str, int] = {}
        # Members a config removed that may still draw (departed.py): id -> [since_ms, pad_ms].
        self.departed: dict[str, list[int]] = {}
        self.departed_kept: list[str] = []  # the ids departed.FILE holds
        # How many of them the peer table last listened to: fewer now means a tick dropped some and has yet to tell
        # the table and the file (again, if a MemoryError skipped that tick half way).
        self.departed_listened = 0
        self.fetched = 0
        self.fetch_errors = 0
        self.sync_error = ""
        self.plan: controller.Plan | None = None
        self.table: PeerTable | None = None
        self.peer_boots = [-1, -1, 0, 0, 0]  # the peers' boot ids kept across a reboot: peerboots.py's state
        self.mesh: Mesh | None = None
        self.role: Role | None = None
        self.state: dict[str, object] | None = None
        self.out: dict[str, object] | None = None
        self.server: object = None
        self.sync_task: object = None
        self.kept_ma = -1  # what RTC memory holds (-1: not yet written this boot)
        self.kept_exposure_ma = -1
        self.peers_online = 0
        self.ticks = 0
        self.late_ticks = 0
        self.skipped_ticks = 0  # ticks that ran out of memory and were skipped
        self.skipping = False  # the last tick was one of them
        self.driving = False  # the tick is between keeping its new state and driving its outputs
        self.max_tick_ms = 0
        self.mem_live = 0
        self.mem_live_max = 0
        self.mem_peak = 0
        self.halted = False
        self.mode = UNADOPTED
        self.hal = self._boot()
        _forget(self.role)

    def _boot(self) -> Hal:
        """Steps 1 to 6 above; the HAL (safe)."""
        from . import settings
        from .store import Store

        store = Store(self.root)
        hal = self._open_hal(store.read_json(HARDWARE))
        # The watchdog runs from here: each of boot's littlefs writes (the boot
        # counter, twice; a temp file put in place) can take a sector erase or two.
        hal.feed_watchdog()
        try:
            self.boot_id = store.next_boot_id()
        except OSError as exc:
            self.error = "boot counter: " + str(exc)
        self.last_applied_ma, self.last_exposure_ma = lastlimit.decode(hal.retained())
        self.settings = settings.defaults()
        raw_settings = store.read_json(SETTINGS)
        refused = ""  # why node.json was refused: with no id no config runs, and that is the reason to give
        if raw_settings is not None:
            try:
                self.settings = settings.parse(raw_settings)
            except FieldError as exc:
                self.error = refused = "node.json: " + str(exc)
                print("loadmesh node: node.json refused (" + str(exc) + "); no member id, so no config runs, "
                      "and the HTTP API is on port " + str(settings.HTTP_PORT))
        self.settings["peers_http"] = None  # read again when a fetch needs it: sixteen addresses take 2.5 KB
        self.key = store.read_key()
        hal.feed_watchdog()
        store.clean()
        hal.feed_watchdog()
        self.store_state = store.state
        self.boot_state = store.boot_state
        self.hal = hal
        if self.key is None:
            self.code = _adoption_code(store)
            if self.code:
                print("loadmesh node: unadopted; adoption code " + self.code.hex())
            else:
                print("loadmesh node: unadopted, and the file system cannot keep an adoption code: "
                      "no adoption this boot")
            return hal
        self._keyed(self.key)
        self.mode = NO_CONFIG
        try:
            config = _read_config(store)
            if config is None:
                self.error = self.error or "no config"
            elif self._left_out(config):
                self._leave(config)
            else:
                self._restore_departed(config)
                self._use(config, self._prepare(config, None))
        except FieldError as exc:  # the config's fault, or this node's: its settings name themselves
            self.error = refused or ("" if exc.field.startswith("node") else "config.json: ") + str(exc)
        head = "loadmesh node " + (self.node_id() or "?") + ": boot " + str(self.boot_id)
        if self.adopted is None or self.mode == LEFT_OUT:
            print(head + ", no config it can run (" + self.error + ")")
        else:
            print(head + ", config version " + str(self.adopted["version"]) + " " + self.announced)
        _drop_code(store, "loadmesh node " + (self.node_id() or "?"))
        return hal

    def _open_hal(self, hw: object) -> Hal:
        if hw is None:
            hw = {"hal": "none"}
        try:
            if not isinstance(hw, dict):
                raise ValueError("hw.json: not an object")
            return open_hal(hw)
        except ValueError as exc:  # FieldError is one: nothing is driven, every actuator stays as it booted
            return self._hw_refused(hw, str(exc))
        except OSError as exc:
            # A driver's error the HAL does not name a field for (the ESP32 HAL makes the ones the port raises
            # while it builds ValueErrors that do): the same refusal rather than a boot that ends here (on a
            # board at the REPL, with no radio or API to say why). Anything else (a TypeError: a bug) still ends it.
            return self._hw_refused(hw, "hw.hal: the hardware could not be set up (" + os_error_words(exc) + ")")

    def _hw_refused(self, hw: object, why: str) -> Hal:
        self.error = self.hw_error = why
        print("loadmesh node: hw.json refused (" + why + "); nothing is driven")
        return _radio_only(hw)

    def _keyed(self, key: bytes) -> None:
        self.pads = heartbeat.prepare_key(key)
        self.http_token = token_for(key)

    def node_id(self) -> str:
        """This node's member id ("" when it has none)."""
        node = self.settings["id"]
        return node if isinstance(node, str) else ""

    # Configs.

    def _prepare(self, config: dict[str, object], merged: dict[str, object] | None) -> controller.Plan:
        """The plan of config for this node (merged: the conservative merge to run meanwhile); FieldError if refused."""
        node = self.node_id()
        if not node:
            raise FieldError("node.id", "this node has no member id (node.json)")
        if self.boot_id < 1:
            raise FieldError("boot_id", "the boot counter cannot be kept: " + self.error)
        wdt_ms = self.hal.wdt_ms
        if wdt_ms is not None and wdt_ms > _int(config, "wdt_ms"):
            # The safety rules assume a hung node is reset within wdt_ms <= peer_timeout_ms.
            raise FieldError("wdt_ms", str(config["wdt_ms"]) + " is shorter than this node's watchdog, "
                             + str(wdt_ms) + " ms (hw.json)")
        if merged is None:
            return controller.prepare(config, node)
        return controller.prepare(merged, node, _int(config, "version"), self.announced)

    def _use(self, config: dict[str, object], plan: controller.Plan) -> None:
        """Run plan (of config, now the adopted one) from the next tick on; FieldError: nothing changed."""
        if self.mesh is None:
            self._open_mesh()  # first: a socket the stack refuses leaves the node as it was, not half switched
        if config is not self.adopted:
            if self.adopted is not None:
                self.known[self.announced] = self.adopted  # while peers still run it
            self.adopted = config
            self.announced = plan.announced  # the config's hash prefix, as prepare() computed it
            self.known.pop(self.announced, None)
        self._run_plan(plan, [])

    def _open_mesh(self) -> None:
        config = self.settings
        port = _int(config, "mesh_port")
        try:
            self.mesh = Mesh(port, str(config["mesh_host"]), _int(config, "mesh_dest_port"), str(config["bind_host"]))
        except OSError as exc:  # the port held by another program, bind_host not an address of this node
            raise FieldError("node.json", "the mesh cannot listen on " + str(config["bind_host"]) + " port "
                             + str(port) + " (" + str(exc) + ")") from None

    def _run_plan(self, plan: controller.Plan, in_use: list[str]) -> None:
        try:
            self._switch_to(plan, in_use)
        except Exception as exc:  # MemoryError above all
            # Half switched (the new members in the peer table, the old plan in
            # the controller, a config adopted but not in force): no state to
            # run on, least of all with a lowered limit. Safe now, and the
            # watchdog boots the node into the config it keeps.
            self._halt(exc, "config switch")
            raise

    def _switch_to(self, plan: controller.Plan, in_use: list[str]) -> None:
        assert self.pads is not None
        self.in_use = in_use
        now_ms = self.clock.now_ms()
        old = self.plan
        listen = plan.ids
        if self.departed or (old is not None and [node for node in old.ids if node not in plan.ids]):
            from . import departed

            departed.track(self.departed, old.ids if old is not None else [], plan.ids, plan.node, now_ms,
                           departed.wait_ms(old, plan))
            max_peers = self.table.max_peers if self.table is not None else MAX_PEERS
            listen = departed.listened(self.departed, plan.ids, plan.node, max_peers)
            self._keep_departed()
        if self.table is None or self.table.group != plan.group:
            self.table = PeerTable(self.pads, plan.group, plan.node, listen)
            from . import peerboots

            peerboots.restore(self.peer_boots, self.root, self.table, plan.ids)  # before the first heartbeat
        else:
            self.table.set_members(listen)
            self.peer_boots[0] = -1  # members may have gone: peerboots.py writes the file again
        self.departed_listened = len(self.departed)
        if self.role is None or self.role.kind != plan.me["kind"]:
            if self.role is not None:
                # Each role drives only its own actuator: the old one's (a pilot still
                # offering current, a burner call) would stay as it was for good.
                self.hal.safe()
            self.role = open_role(plan, self.root)
        else:
            self.role.replan(plan)
        if self.state is None:
            self.state = controller.boot(plan, self.boot_id, now_ms, self.last_applied_ma, self.last_exposure_ma)
        self.plan = plan
        self.mode = RUNNING
        self.error = ""

    def put_config(self, body: bytes) -> object:
        """PUT /config: adopt the sealed config in body if it wins over the adopted one."""
        try:
            return self._put_config(body)
        finally:
            _forget(self.role)

    def _put_config(self, body: bytes) -> object:
        from . import groupsync

        assert self.pads is not None
        group = self.plan.group if self.plan is not None else None
        config = groupsync.unseal(self.pads, group, body)
        order = groupsync.wins(config, self.adopted)
        if order == 0:
            return {"adopted": False, "reason": "same", "version": config["version"], "announced": self.announced}
        if order < 0:
            assert self.adopted is not None
            raise FieldError("config", "version " + str(config["version"]) + " does not win over the adopted "
                             "version " + str(self.adopted["version"]))
        self._adopt(config)
        return {"adopted": True, "version": config["version"], "announced": self.announced}

    def _refuse_if_halted(self, field: str) -> None:
        """Once halted, the node changes nothing and feeds no watchdog until the reset (its error stays)."""
        if self.halted:
            raise FieldError(field, "the node halted (" + self.error + "); the watchdog resets it")

    def _adopt(self, config: dict[str, object]) -> None:
        """Check, keep and run a config that wins; FieldError (nothing changed) if this node cannot run it."""
        from .store import Store

        self._refuse_if_halted("config")  # a PUT, or a fetch that was under way when the tick failed
        plan = None if self._left_out(config) else self._prepare(config, None)
        if plan is not None and self.mesh is None:
            self._open_mesh()  # before the config is kept: refused, nothing changed
        self.hal.feed_watchdog()  # a littlefs rename can take a sector erase or two
        old = self.plan
        if plan is not None and old is not None and [node for node in old.ids if node not in plan.ids]:
            # departed.FILE as it will be once plan runs, written before the config that removes members:
            # a reset between the two writes then still holds for them. One after both boots into the new
            # config and finds them; one before the config's write boots into the old config, which still
            # has them as members, and departed.restored() ignores those.
            from . import departed

            ahead = dict(self.departed)
            departed.track(ahead, old.ids, plan.ids, plan.node, self.clock.now_ms(), departed.wait_ms(old, plan))
            self._keep_departed(ahead)
        elif plan is not None and self.mode == LEFT_OUT and self.adopted is not None:
            # Named again: it boots into config having missed the configs in between (departed.py). The
            # members the config that left it out had and this one lacks are held for from that boot.
            from . import departed

            ahead = dict(self.departed)
            departed.track(ahead, departed.rejoin_ids(self.adopted), plan.ids, plan.node, self.clock.now_ms(),
                           departed.rejoin_wait_ms(self.adopted, plan))
            self._keep_departed(ahead)
        store = Store(self.root)
        store.write_json(CONFIG, config)
        self.store_state[CONFIG] = store.state[CONFIG]
        if plan is None:
            self._leave(config)
        elif self.mode == LEFT_OUT:
            self._rejoin(config)
        else:
            self._use(config, plan)

    def _left_out(self, config: dict[str, object]) -> bool:
        """Whether config, sealed with the group key, has no member of this node's id (a node without an id
        is refused by _prepare instead)."""
        node = self.node_id()
        return bool(node) and not _names(config, node)

    def _leave(self, config: dict[str, object]) -> None:
        """Stop for good under a config that leaves this node out: its peers no longer count what it draws."""
        from . import groupsync

        self.hal.safe()
        # What a reset finds kept from here on: nothing enforced, and what the car may
        # still draw for ev_lag (the limit before, or a lowered one it still follows).
        exposure_ma = self.last_exposure_ma if self.kept_exposure_ma < 0 else self.kept_exposure_ma
        applied_ma = self.last_applied_ma if self.kept_ma < 0 else self.kept_ma
        if applied_ma > exposure_ma:
            exposure_ma = applied_ma
        if self.kept_ma != 0 or self.kept_exposure_ma != exposure_ma:
            self.hal.retain(lastlimit.encode(0, exposure_ma))
            self.kept_ma = 0
            self.kept_exposure_ma = exposure_ma
        self.plan = self.role = self.state = None
        self.in_use = []
        self.known = {}
        self.adopted = config
        self.announced = groupsync.announced(config)
        self.mode = LEFT_OUT
        self.error = "config version " + str(config["version"]) + " has no member " + repr(self.node_id()) + \
            ": nothing driven"

    def _rejoin(self, config: dict[str, object]) -> None:
        """A config names this left-out node again: restart into it (the watchdog), as a new boot.

        Rejoining within this boot would start its heartbeats again at sequence
        number 0 under the boot id its peers saw before (refused as replays:
        silent to them, the group at failsafe), and from the limit kept before
        it left. After the reset it boots at 0 A (_leave kept that) with a new
        boot id, into the config kept above.
        """
        self.halted = True
        self.mode = HALTED
        self.error = "rejoin: config version " + str(config["version"]) + " names this node again; " \
            "the watchdog restarts it into that config"

    def role_settings(self, name: str, body: bytes | None) -> object:
        """GET (body None) or PUT of the role's settings "heating" or "load_sharing"; FieldError: nothing changed."""
        try:
            role = self.role
            if role is None:
                raise FieldError(name, "this node runs no config yet (" + self.mode + "): its kind is not known")
            if body is None:
                return role.heating() if name == "heating" else role.load_sharing()
            self._refuse_if_halted(name)
            try:
                return self._put_role_settings(role, name, body)
            except OSError as exc:
                from .hal import os_error_words

                raise FieldError(name, "could not be kept (" + os_error_words(exc) + "); nothing changed") from None
        finally:
            _forget(self.role)

    def _put_role_settings(self, role: Role, name: str, body: bytes) -> object:
        import json

        from . import heatsettings, jsontext

        # The body is kept as it came (heatsettings.save): MicroPython's json
        # reads text JSON refuses (a trailing comma, a leading zero, ...), which
        # must not be kept; jsontext names the first fault, as heating-check does.
        jsontext.check(body, name)
        try:
            raw = json.loads(body)
        except ValueError:  # not expected once jsontext took it; still a refusal (400), never a crash
            raise FieldError(name, "the body is not JSON") from None
        if name != "heating":
            self.hal.feed_watchdog()  # a littlefs rename can take a sector erase or two
            return role.put_load_sharing(raw)
        checked = role.check_heating(raw)
        raw = None  # the parsed file: the checked settings are what stays
        if _COMPACT:
            gc.collect()
        self.hal.feed_watchdog()
        heatsettings.save(self.root, body)
        return role.use_heating(checked)

    def get_config(self) -> object:
        """GET /config."""
        from . import groupsync

        assert self.pads is not None
        try:
            return groupsync.answer(self.pads, self.adopted)
        finally:
            _forget(self.role)

    async def sync(self) -> None:
        """Fetch the configs peers announce, adopt a winner, and run the merge of those in use."""
        if self.table is None or self.plan is None or self.pads is None or self.http_token is None:
            return
        now_ms = self.clock.now_ms()
        announced_by = self._announced_by(now_ms)
        if not announced_by and not self.known and not self.in_use:
            return  # everyone runs the adopted config: nothing to do (and nothing to import)
        try:
            await self._fetch(announced_by, now_ms)
            # Looked at again after the fetches' waits: a PUT adopted meanwhile made the old adopted
            # config one that peers announce (it is in known now), and a fetch may have changed the
            # plan; with the list from before, the merge forgot a config peers still run.
            self._merge(self._announced_by(self.clock.now_ms()))
        finally:
            _forget(self.role)

    def _announced_by(self, now_ms: int) -> dict[str, str]:
        """Each config hash that a fresh peer announces, other than the adopted one's: the first such peer."""
        announced_by: dict[str, str] = {}
        table = self.table
        plan = self.plan
        if table is None or plan is None:  # left out by a config a fetch brought
            return announced_by
        for member in plan.ids:
            peer = table.peer(member)
            if peer is None or member == plan.node or not table.online(member, now_ms, plan.peer_timeout_ms):
                continue
            announced = peer.heartbeat["config_hash"]
            if isinstance(announced, str) and announced != self.announced and announced not in announced_by:
                announced_by[announced] = member
        return announced_by

    async def _fetch(self, announced_by: dict[str, str], now_ms: int) -> None:
        from . import groupsync

        plan = self.plan
        assert plan is not None and self.pads is not None and self.http_token is not None
        addresses = _peer_addresses(self.root)
        for announced, member in groupsync.wanted(self.known, self.tried_ms, announced_by, now_ms):
            address = addresses.get(member)
            if address is None:
                continue
            host, port = address
            assert isinstance(host, str) and isinstance(port, int)
            self.tried_ms[announced] = now_ms
            try:
                body = await asyncio_wait(groupsync.fetch(host, port, self.http_token))
                fetched = groupsync.from_answer(self.pads, plan.group, body)
                if groupsync.announced(fetched) != announced:
                    raise FieldError("config", "the peer's config is not the one it announces")
                self.known[announced] = fetched
                self.fetched += 1
                if groupsync.wins(fetched, self.adopted) > 0:
                    self._adopt(fetched)
            except Exception as exc:  # a peer gone, a bad answer, a config this node cannot run
                self.fetch_errors += 1
                self.sync_error = member + ": " + str(exc)
                self.known.pop(announced, None)

    def _merge(self, announced_by: dict[str, str]) -> None:
        from . import groupsync

        adopted = self.adopted
        if adopted is None or self.halted:  # halted while the fetch was under way
            return
        in_use, merged = groupsync.merged(adopted, self.known, announced_by)
        if in_use == self.in_use:
            return
        try:
            self._run_plan(self._prepare(adopted, merged), in_use)
        except FieldError as exc:
            self.sync_error = "merge: " + str(exc)

    def adopt(self, body: bytes) -> object:
        """PUT /adopt: take the group key and settings from a request made with this node's code."""
        try:
            return self._adopt_node(body)
        finally:
            _forget(self.role)

    def adoptable(self) -> str:
        """Why PUT /adopt is refused now, before its body is read; "" while the node waits to be adopted."""
        if self.key is not None:
            return "this node is adopted already"
        if not self.code:
            return "this node could not keep an adoption code at boot (its file system refused it)"
        return ""

    def _adopt_node(self, body: bytes) -> object:
        from . import adoption
        from .store import Store

        refusal = self.adoptable()
        if refusal:
            raise FieldError("adopt", refusal)
        self._refuse_if_halted("adopt")
        node, key, boot_floor, node_settings = adoption.open_request(self.code, body)
        store = Store(self.root)
        self.hal.feed_watchdog()
        # Settings first and the key last: a reset in between leaves an unadopted node with its code.
        store.write_json(SETTINGS, node_settings)
        # Adoption vouches for the count even below this boot's id (a lost count, boot_state "reset", is then
        # taken as it stands: the floor is the installer's word for what the group has seen).
        store.raise_boot_floor(boot_floor)
        if boot_floor >= self.boot_id:
            self.boot_id = store.next_boot_id()
        self.boot_state = store.boot_state
        store.write_key(key)
        store.remove(adoption.CODE_FILE)
        self.store_state.update(store.state)
        self.code = b""
        node_settings["peers_http"] = None
        self.settings = node_settings
        self.hosts_checked = ""  # its hosts held against the address again (_check_hosts)
        self.key = key
        self._keyed(key)
        self.mode = NO_CONFIG
        self.error = "no config"
        return {"adopted": node, "boot_id": self.boot_id}

    # The tick.

    def tick(self) -> None:
        """One control tick: read, decide, drive, tell. Raises only on a bug or a MemoryError."""
        now_ms = self.clock.now_ms()
        hal = self.hal
        hal.poll(now_ms)
        plan = self.plan
        table = self.table
        role = self.role
        if plan is None or table is None or role is None or self.state is None or self.mesh is None:
            hal.report(0, 0, True, self.mem_live, 0)
            return
        if self.mesh.receive(table, now_ms) > 2 and _COMPACT:
            gc.collect()  # the decoded heartbeats the table replaced: room for the step's allocation
        inputs = role.inputs(hal, table, now_ms)
        if self.departed or self.departed_listened:
            self._hold_for_departed(inputs, plan, table, now_ms)
        if plan.meter_index == plan.own:
            meter = _meter_input(hal)
            if meter is not None:
                inputs["meter"] = meter
        out, state = controller.step(plan, self.state, inputs, table, now_ms)
        applied_ma = out["applied_ma"]
        exposure_ma = out["exposure_ma"]
        assert isinstance(applied_ma, int) and isinstance(exposure_ma, int)
        record = None
        if applied_ma != self.kept_ma or exposure_ma != self.kept_exposure_ma:
            record = lastlimit.encode(applied_ma, exposure_ma)
        # From here until the outputs are driven, a MemoryError halts the node: the state kept would say the
        # pilot was lowered at now_ms (its car's lag counted from then) while the pilot still held the old limit.
        # Before here it is skipped (tick_and_collect): nothing of the controller's kept, and what a role keeps in
        # inputs() it has driven there already (the boiler's relay: roles.py), so nothing to undo.
        self.driving = True
        # The new state and outputs in the dicts of the tick before, which stay where they are in the heap
        # (peers.refill; not their nested dicts, which the controller may hold): not two more kept every tick
        # wherever it found room, the holes around the last ones cut up (docs/heating.md, "8 rooms").
        if not refill(self.state, state, False):
            self.state = state
        if record is not None:
            # Before the actuator: a reset in between finds the new limit kept, and a raise
            # not yet driven is covered by ev_lag (a car takes that long to follow).
            hal.retain(record)
            self.kept_ma = applied_ma
            self.kept_exposure_ma = exposure_ma
        role.apply(hal, out, table, now_ms)
        self.driving = False  # a heartbeat not sent now is a lost one, which the peers allow for
        message = out["heartbeat"]
        if isinstance(message, dict):
            role.heartbeat(message, table, now_ms)
            self.mesh.send(self.pads, message)  # type: ignore[arg-type]
            out["heartbeat"] = None  # status keeps out: not the message as well
        online = 0
        for member in plan.ids:
            if member != plan.node and table.online(member, now_ms, plan.peer_timeout_ms):
                online += 1
        self.peers_online = online
        if self.out is None or not refill(self.out, out, False):
            self.out = out
        target_ma = out["target_ma"]
        assert isinstance(target_ma, int)
        hal.report(applied_ma, target_ma, out["failsafe"] is True, self.mem_live, online)

    def _hold_for_departed(self, inputs: dict[str, object], plan: controller.Plan, table: PeerTable,
                           now_ms: int) -> None:
        """Hold every raise while a member the config removed may still draw; stop listening to the gone."""
        from . import departed

        if departed.holding(self.departed, table, now_ms):
            inputs["hold"] = True
        if len(self.departed) != self.departed_listened:  # only ever fewer: a config switch sets both
            table.set_members(departed.listened(self.departed, plan.ids, plan.node, table.max_peers))
            self._keep_departed()
            self.departed_listened = len(self.departed)

    def _restore_departed(self, config: dict[str, object]) -> None:
        """At boot: the removed members a reset would otherwise forget (departed.FILE), held for from now."""
        from . import departed

        members = config["members"]
        assert isinstance(members, list)
        ids = [str(member["id"]) for member in members]
        self.departed = departed.restore(self.root, ids, self.node_id(), self.clock.now_ms(), MAX_PEERS)
        self.departed_kept = sorted(self.departed)  # as the file holds them (any others it names are ignored)

    def _keep_departed(self, removed: dict[str, list[int]] | None = None) -> None:
        """Write departed.FILE when the set of removed members (removed, or those held for now) has changed."""
        from . import departed

        if removed is None:
            removed = self.departed
        kept = sorted(removed)
        if kept == self.departed_kept:
            return
        before = self.departed_kept
        self.departed_kept = kept  # tried once: a failing file system is not written every tick
        try:
            departed.save(self.root, removed)
        except OSError:
            self.store_state[departed.FILE] = "not written"  # /status "store"; the hold itself runs on
        except MemoryError:
            self.departed_kept = before  # not tried: the heap, not the flash (the tick is skipped, the next writes)
            raise

    def _keep_peer_boots(self) -> None:
        """Between ticks (the sync loop), when the peers' boot ids changed: peerboots.py writes them, now and then."""
        table = self.table
        if table is not None and self.plan is not None and (table.boot_changes != self.peer_boots[0]
                                                            or self.peer_boots[1] >= 0):
            from . import peerboots

            peerboots.keep(self.peer_boots, self.root, table, self.plan.ids, self.clock.now_ms())

    def _check_hosts(self) -> None:
        """Between ticks (the sync loop): whether node.json's bind_host and the HTTP API's http_host are the address
        the node has; said on the console when that changes, and in /status (bind_error)."""
        # lwIP binds a socket to an address the node has not, and then it is lost without an error: udp_bind()
        # takes it, and udp_sendto_if() drops every datagram the mesh sends (ERR_RTE): the node hears its peers
        # and is never heard, counters.mesh.send_errors the only sign; tcp_bind() takes it, and no connection to
        # the node's address ever matches the listener (answered with a reset): no /status, no config for its
        # peers. Not refused at boot: the address comes from DHCP seconds later, and a new lease can change it
        # while the node runs. So both are compared whenever the station has one, and flagged while they differ;
        # the node runs on either way. One address read for both, as for one; nothing built unless it changed.
        bind_host = self.settings["bind_host"]
        server = self.server
        # The words are literals, not module names: a frozen module keeps them in flash, and no name more in the
        # module's globals takes room in the heap.
        http_host = server.host if server is not None else "0.0.0.0"  # type: ignore[attr-defined]  # what it bound
        if bind_host == "0.0.0.0" and http_host == "0.0.0.0":
            return
        address = self.hal.address()
        if address is None or address == self.hosts_checked:  # not joined (or no radio of the HAL's: the unix
            return  # port): the last verdict stands; the same address: the same verdict
        self.hosts_checked = address
        error = ""
        for key, host, lost in (
                ("bind_host", bind_host, "every heartbeat it sends is dropped (counters.mesh.send_errors); 0.0.0.0 "
                 "binds any"),
                ("http_host", http_host, "its HTTP API is refused to every client (no /status, no config for its "
                 "peers); 0.0.0.0 listens on any")):
            if host == "0.0.0.0":
                continue
            head = "node.json " + key + ": \"" + str(host) + "\" is "
            if host != address:
                said = head + "not this node's address (" + address + "): " + lost
                error += ("; " if error else "") + said
                changed = said not in self.bind_error  # new, or with another address
            else:
                said = head + "this node's address"
                changed = head in self.bind_error  # it was not
            if changed:
                print("loadmesh node: " + said)
        self.bind_error = error

    def tick_and_collect(self) -> bool:
        """A tick, gc, and the watchdog fed; False (and the HAL safe, the watchdog unfed) if the tick failed."""
        if self.halted:  # by a config switch that failed half way (_run_plan)
            return False
        started = time.ticks_ms()
        try:
            self.tick()
        except MemoryError as exc:
            # Two in a row: not a moment's fragmentation but a heap too small for the work. Or the tick kept its
            # new state and had not yet driven the outputs to it: see tick().
            if self.skipping or self.driving:
                self._halt(exc)
                return False
            self._skip(exc)
            return True
        except Exception as exc:
            self._halt(exc)
            return False
        self.skipping = False
        in_use = gc.mem_alloc()
        if in_use > self.mem_peak:
            self.mem_peak = in_use
        gc.collect()
        live = gc.mem_alloc()
        self.mem_live = live
        if live > self.mem_live_max:
            self.mem_live_max = live
        self.ticks += 1
        took_ms = time.ticks_diff(time.ticks_ms(), started)
        if took_ms > self.max_tick_ms:
            self.max_tick_ms = took_ms
        self.hal.feed_watchdog()
        return True

    def _skip(self, exc: MemoryError) -> None:
        """A tick out of memory for the first time: skipped, as a late tick would be; the next one runs as ever.

        What a skipped tick leaves is safe to run on from (docs/firmware.md, "A tick out of memory"): the actuators
        hold what the last good tick drove, which every peer counts; the controller's state and memo are replaced
        only once they are whole, and then the outputs are driven before anything can fail (self.driving); a
        datagram read and lost is a lost packet, a heartbeat not sent a lost one. Every reaction waits one tick
        more, as when a tick is late by one. The watchdog is not fed.
        """
        self.skipping = True
        self.skipped_ticks += 1
        # The next tick does the same work on the same heap: the view it allocates for, from the same table, with
        # the same live objects beside it (the allocation found no room after a collection of its own, and the
        # tick's garbage is collected below in any case). It failed again, and halted the node, while the view
        # stayed as it was (docs/firmware.md, "A tick out of memory"). What it gets more is the room of what the
        # failed tick left and the next one replaces: the last view's targets and digests, once their key is
        # gone.
        if self.plan is not None:
            controller.forget_view(self.plan)
        gc.collect()  # the failed tick's half-built garbage, unreachable now that its frames are gone
        try:
            print("loadmesh node: a tick ran out of memory; skipped, the next one runs (two in a row halt the node)")
            printer = getattr(sys, "print_exception", None)
            if printer is not None:
                printer(exc)
        except MemoryError:  # the console's words are not worth the node
            pass

    def _halt(self, exc: BaseException, where: str = "tick") -> None:
        self.halted = True
        self.mode = HALTED
        failed = None
        try:
            # First: after a MemoryError the words below may not fit, and the outputs must not wait on them.
            self.hal.safe()
        except Exception as error:  # the HAL itself failed: the watchdog still resets the node
            failed = error
        from .hal import exception_words

        self.error = "halted out of memory"  # a constant, until the exception's own words are made (if they fit)
        try:
            words = where + ": " + exception_words(exc)[:120]
            if failed is not None:
                words += "; safe: " + exception_words(failed)[:60]
            self.error = words
            printer = getattr(sys, "print_exception", None)  # MicroPython's; a virtual node on CPython keeps error
            if printer is not None:
                printer(exc)
        except MemoryError:
            pass  # halted all the same: the outputs are safe and the watchdog is no longer fed

    # Status.

    def status(self) -> dict[str, object]:
        """GET /status: what the node does and why, its peers, its counters, its memory."""
        now_ms = self.clock.now_ms()
        out = self.out
        plan = self.plan
        table = self.table
        role = self.role
        # The heap as the request found it, before the answer is built (as the status has always said it).
        memory = {"alloc": gc.mem_alloc(), "free": gc.mem_free(), "live": self.mem_live,
                  "live_max": self.mem_live_max, "peak": self.mem_peak}
        counters: dict[str, object] = {}
        peers: dict[str, object] | None = None
        unheard: list[str] | None = None
        if table is not None and plan is not None:
            # Each peer as [age_ms, online, applied_ma, target_ma, failsafe, boot_id]: a list, not an
            # object, so that sixteen of them fit the heap beside everything else.
            peers = {}
            for member in table.nodes():
                peer = table.peer(member)
                assert peer is not None
                peers[member] = [table.age_ms(member, now_ms), table.online(member, now_ms, plan.peer_timeout_ms),
                                 peer.applied_ma(), peer.target_ma(), peer.heartbeat["failsafe"], peer.boot_id]
            # Members not heard since the boot (or since they joined): not in peers, and those that draw no
            # current (valve, boiler) in no other field either; built here, never kept.
            unheard = [member for member in plan.ids if member != plan.node and table.peer(member) is None]
            counters["heartbeats"] = table.counts
            counters["boot_changes"] = table.boot_changes  # what makes peerboots.py write (peer_boots_writes)
        if self.mesh is not None:
            counters["mesh"] = self.mesh.counts()
        server = self.server
        if server is not None:
            counters["http"] = server.counts()  # type: ignore[attr-defined]
        config: dict[str, object] | None = None
        if self.adopted is not None:
            config = {"version": self.adopted["version"], "announced": self.announced, "merged_with": self.in_use,
                      "fetched": self.fetched, "fetch_errors": self.fetch_errors,
                      "last_error": self.sync_error or None}
        # Every key in one literal, and those this node has nothing for deleted after: MicroPython makes a
        # literal's table of its size (31 slots), where 17 keys added to a literal of 14 grew it four times
        # over (14 slots to 17, 23, 29, 37), the last a block of 592 bytes on the 64-bit host asked for beside
        # the one it replaced. Deleted keys leave the table as it is; canon writes the keys sorted: the answer
        # is the same bytes.
        status: dict[str, object] = {
            "node": self.node_id() or None, "kind": role.kind if role is not None else None,
            "state": self.mode, "error": self.error or None, "hw_error": self.hw_error or None,
            "bind_error": self.bind_error or None,
            "boot_id": self.boot_id, "uptime_ms": now_ms,
            "store": self.store_state, "boot_state": self.boot_state, "peer_boots_writes": self.peer_boots[3],
            "memory": memory, "ticks": {"count": self.ticks, "late": self.late_ticks, "max_ms": self.max_tick_ms,
                                          "skipped": self.skipped_ticks},
            "departed": sorted(self.departed),
            "applied_ma": None, "target_ma": None, "exposure_ma": None, "failsafe": None, "reason": None,
            "alloc_reason": None, "silent": None, "disagree": None, "config_mismatch": None,
            "role": role.status() if role is not None else None, "hal": self.hal.status(), "config": config,
            "peers": peers, "peer_fields": PEER_FIELDS, "peers_online": self.peers_online, "peers_unheard": unheard,
            "counters": counters,
        }
        if out is not None:
            for key in _OUT_KEYS:
                status[key] = out[key]
        else:
            for key in _OUT_KEYS:
                del status[key]
        if role is None:
            del status["role"]
        for key in ("hal", "config"):
            if status[key] is None:
                del status[key]
        if peers is None:
            for key in ("peers", "peer_fields", "peers_online", "peers_unheard"):
                del status[key]
        return status

    # The loops.

    async def run(self) -> None:
        """Serve the HTTP API, sync configs, and tick until the node halts."""
        import asyncio

        from .httpapi import HttpServer

        server = HttpServer(NodeApi(self), port=_int(self.settings, "http_port"),
                            host=str(self.settings["http_host"]))
        try:
            await server.start()
            self.server = server
        except OSError as exc:  # the control loop does not depend on the API
            # Said on the console too: /status, where the error shows, is served by the API that failed.
            self.error = "http: " + str(exc)
            print("loadmesh node: http: cannot listen on port " + str(_int(self.settings, "http_port")) + " ("
                  + str(exc) + "); no HTTP API, the node runs on without it")
        self.sync_task = asyncio.create_task(self._sync_loop())
        await self._control_loop()

    async def _control_loop(self) -> None:
        import asyncio

        due_ms = time.ticks_ms()
        while self.tick_and_collect():
            due_ms = time.ticks_add(due_ms, TICK_MS)
            wait_ms = time.ticks_diff(due_ms, time.ticks_ms())
            if wait_ms < 0:
                self.late_ticks += 1
                if wait_ms < -TICK_MS:
                    due_ms = time.ticks_ms()  # far behind: start again from now rather than rush
                wait_ms = 0
            await asyncio.sleep_ms(wait_ms)
        if self.hal.wdt_ms is None:
            raise SystemExit(3)  # no watchdog to reset this node: stop, with the actuators safe
        while True:  # the watchdog resets the node; the API answers until then
            await asyncio.sleep_ms(1000)

    async def _sync_loop(self) -> None:
        import asyncio

        while not self.halted:
            await asyncio.sleep_ms(SYNC_MS)
            try:
                self._check_hosts()
                self._keep_peer_boots()
                await self.sync()
            except Exception as exc:  # never let config sync stop the node; /status tells
                from .hal import exception_words

                self.sync_error = "sync: out of memory"  # a constant, until the exception's words are made
                try:  # noqa: SIM105  (MicroPython has no contextlib)
                    self.sync_error = "sync: " + exception_words(exc)[:120]
                except MemoryError:
                    pass  # no room for them now: a MemoryError here would end this task, and sync with it, for good


PEER_FIELDS = ("age_ms", "online", "applied_ma", "target_ma", "failsafe", "boot_id")
# What GET /status shows of the tick's output.
_OUT_KEYS = ("applied_ma", "target_ma", "exposure_ma", "failsafe", "reason", "alloc_reason", "silent", "disagree",
             "config_mismatch")


def _forget(role: Role | None) -> None:
    """Drop the occasional modules, the runtime's and the role's (MicroPython): imported again when needed, they
    cost nothing meanwhile."""
    forget(_OCCASIONAL + (role.occasional if role is not None else ()))


class NodeApi(Api):
    """The HTTP API's callbacks, answered by the node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def status(self) -> object:
        return self.node.status()

    def config(self) -> object:
        return self.node.get_config()

    def put_config(self, body: bytes) -> object:
        return self.node.put_config(body)

    def adoptable(self) -> str:
        return self.node.adoptable()

    def adopt(self, body: bytes) -> object:
        return self.node.adopt(body)

    def heating(self) -> object:
        return self.node.role_settings("heating", None)

    def put_heating(self, body: bytes) -> object:
        return self.node.role_settings("heating", body)

    def load_sharing(self) -> object:
        return self.node.role_settings("load_sharing", None)

    def put_load_sharing(self, body: bytes) -> object:
        return self.node.role_settings("load_sharing", body)

    def token(self) -> str | None:
        return self.node.http_token

    def pads(self) -> tuple[bytes, bytes] | None:
        return self.node.pads  # the group key, prepared for the heartbeats: the same HMAC key

    def boot(self) -> int:
        return self.node.boot_id

    def node_id(self) -> str:
        return self.node.node_id()

    def put_refused(self) -> None:
        _forget(self.node.role)

    def put_refusal(self) -> str:
        node = self.node
        if node.key is None or node.boot_id < 1 or node.boot_state != "reset":  # 401 says why (no key, no counter)
            return ""
        # Its boot ids since the loss may be ones it had before, and a PUT signed for one of those, seen on the
        # LAN, would be taken again (docs/safety.md): none is, until a boot floor is vouched for (store.py).
        return ("this node's boot counter was lost (boot_state reset), so its boot ids may repeat ones a PUT was "
                "signed for: it takes no PUT until it is adopted again (remove its key file, reset it, loadmesh "
                "adopt) or given a boot floor above its boot id and its peers' (loadmesh node-files' boot.a)")


async def asyncio_wait(coroutine: object) -> bytes:
    """coroutine's result, or TimeoutError after groupsync.FETCH_TIMEOUT_MS."""
    import asyncio

    result: bytes = await asyncio.wait_for(coroutine, FETCH_TIMEOUT_MS / 1000)
    return result


def _names(config: dict[str, object], node: str) -> bool:
    """Whether config has a member of id node."""
    members = config["members"]
    assert isinstance(members, list)
    return any(member["id"] == node for member in members)


def _read_config(store: object) -> dict[str, object] | None:
    """The stored config, checked; None if there is none. FieldError if it is not a config."""
    raw = store.read_json(CONFIG)  # type: ignore[attr-defined]
    if raw is None:
        return None
    from loadmesh.core import groupconfig

    return groupconfig.parse(raw)  # the raw text and its first parse die with this frame


def _peer_addresses(root: str) -> dict[str, list[object]]:
    """The peers' HTTP APIs from the node's settings (node.json); none if it cannot be read."""
    from . import settings
    from .store import Store

    raw = Store(root).read_json(SETTINGS)
    try:
        addresses = settings.parse(raw)["peers_http"] if raw is not None else {}
    except FieldError:
        return {}
    assert isinstance(addresses, dict)
    return addresses


def _drop_code(store: object, head: str) -> None:
    """Delete an adoption code left from before the key came (files copied onto the node), and say so."""
    # A node adopted by copying its files in (loadmesh node-files) keeps the code it printed while it booted
    # unadopted: PUT /adopt deletes it, a copy does not. Kept, it would be the code again after a factory reset
    # (the key removed), a code that was once shown. Once: at the first boot with a key; a stat or two a boot
    # after that. Not adoption.CODE_FILE: that module is not imported by an adopted node's boot.
    from .store import ADOPTION_CODE, Store

    assert isinstance(store, Store)
    if not store.exists(ADOPTION_CODE):
        return
    try:
        store.remove(ADOPTION_CODE)
    except OSError as exc:  # tried again at the next boot; the node runs either way
        print(head + ": adopted, and the adoption code from before could not be deleted: " + str(exc))
        return
    print(head + ": adopted, so the adoption code from before is deleted (a factory reset makes a new one)")


def _adoption_code(store: object) -> bytes:
    from . import adoption

    try:
        return adoption.code(store)  # type: ignore[arg-type]
    except OSError:  # a file system that cannot keep the code: no adoption this boot, still safe
        return b""


def _meter_input(hal: Hal) -> dict[str, object] | None:
    """The mains meter's reading for the controller (the meter node), absurd phases as unknown; None if absent."""
    reading = hal.meter()
    if reading is None:
        return None
    values, seq, age_ms = reading
    phases: list[int | None] = [None, None, None]
    for phase in range(3):
        value = values[phase]
        if isinstance(value, int) and -_METER_MAX_MA <= value <= _METER_MAX_MA:
            phases[phase] = value
    if not 0 <= seq <= _MAX_VALUE or not 0 <= age_ms <= _MAX_VALUE:
        return None
    return {"seq": seq, "age_ms": age_ms, "ma": phases}


_METER_MAX_MA = 1000000  # a house's connection carries far less; beyond this a reading is absurd (unknown)
_MAX_VALUE = (1 << 30) - 1


def _int(mapping: dict[str, object], key: str) -> int:
    value = mapping[key]
    assert isinstance(value, int)
    return value


def _radio_only(hw: object) -> Hal:
    """A refused wiring's Wi-Fi alone, when that part is good: nothing is driven, but /status can say why."""
    if isinstance(hw, dict) and hw.get("hal") == "esp32" and hw.get("wifi") is not None:
        try:
            return open_hal({"hal": "esp32", "wifi": hw["wifi"]})
        except (ValueError, OSError):  # the Wi-Fi part is refused too, or the driver fails again
            pass
    hal = Hal()
    hal.safe()
    return hal


def main(root: str = "") -> None:
    """Boot the node and run it (main.py)."""
    import asyncio

    gc.collect()
    # Collect after every GC_THRESHOLD bytes allocated rather than only when the heap is full: the
    # peer table's heartbeats, replaced every half second, are then placed where the last tick's
    # garbage was, and the heap does not fragment into holes too small for a datagram.
    gc.threshold(GC_THRESHOLD)
    built: list[Node] = []
    try:
        asyncio.run(_start(root, built))
    except KeyboardInterrupt:
        _stopped_at_console(built)
    except Exception as exc:
        _failed(exc, built)


def _stopped_at_console(built: list[Node]) -> None:
    # Ctrl-C at the console (mpremote does it to copy files): the node stops with its outputs safe and
    # hands the board to the REPL (Hal.hand_over); its peers see it fall silent.
    if built:
        built[0].hal.hand_over()
    print("loadmesh node: stopped by Ctrl-C at the console; outputs safe; a reset runs the node again")


def _failed(exc: Exception, built: list[Node]) -> None:
    """The node's boot or its loop ended by an exception (a bug, or no memory for a step boot cannot do without).

    The watchdog runs only once the HAL started it: a failure before (reading hw.json, building the HAL) would leave
    the board at the REPL, silent until power-cycled, its peers in failsafe all the while. So the board resets after
    RESTART_MS, whether or not a watchdog would: a failure of the moment (out of memory) heals, and a lasting one
    resets every RESTART_MS (before the HAL, boot has written nothing: a loop of these wears no flash) with the
    traceback on the console. RESTART_MS leaves time for Ctrl-C (mpremote sends it) to keep the REPL instead. A
    port with no machine.reset (the unix port: a virtual node) ends with the traceback as before."""
    if built:
        try:  # noqa: SIM105  (MicroPython has no contextlib)
            built[0].hal.safe()  # the loop failed past its halt (which makes them safe): not one tick more as driven
        except Exception:  # the reset below makes them safe all the same
            pass
    try:
        import machine
    except ImportError:
        raise exc from None
    reset = getattr(machine, "reset", None)
    if reset is None:
        raise exc
    try:  # Ctrl-C from here on keeps the REPL
        printer = getattr(sys, "print_exception", None)
        if printer is not None:
            printer(exc)
        print("loadmesh node: stopped by an error; the board resets in " + str(RESTART_MS // 1000) + " s "
              "(Ctrl-C for the REPL)")
        time.sleep_ms(RESTART_MS)
    except KeyboardInterrupt:
        _stopped_at_console(built)
        return
    reset()


async def _start(root: str, built: list[Node]) -> None:
    # The node is built inside a function, so that no module-level frame keeps boot's temporaries.
    node = Node(root)
    built.append(node)
    await node.run()
