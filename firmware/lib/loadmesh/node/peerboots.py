"""Peers' boot ids kept across this node's reboots, so that replays of a peer's older boots stay refused."""

try:
    from micropython import const
except ImportError:  # CPython: importable on the host as well
    def const(value: int) -> int:  # type: ignore[misc]
        return value

from loadmesh.core.peers import PeerTable

FILE = "peerboots.json"
MAX_BOOT_ID = (1 << 30) - 1  # the heartbeat's bound
SETTLE_MS = const(5000)
GAP_MS = const(60000)

# docs/heartbeat.md ("Limits"). The peer table refuses a boot id below the
# one it holds for a peer, but it starts empty at this node's boot: the first
# packet of a peer is then taken whatever its boot. FILE ({id: boot id}, the
# store's envelope) is what the table held, restored into it (as floors) when
# the table is made at boot, before the first heartbeat is taken.
#
# Flash: the table raises boot_changes when the set changes (a peer first
# heard in another boot than the one restored for it, a peer's reboot, a peer
# forgotten), and a config switch counts as one (see below); nothing else is
# looked at, so a packet costs an int compare. A change is written SETTLE_MS after the
# first one, so the burst after a boot (every peer heard for the first time
# within a heartbeat period or two) is one write, and not sooner than GAP_MS
# after the previous write: a peer in a reset loop (one boot per wdt_ms plus
# its boot, some seconds) then costs one small file a minute at most, 1440 a
# day, which littlefs spreads over the partition's blocks (hundreds of 4 KB
# blocks of 100k erases each: decades). After this node's reboot its peers
# come back with the boot ids the file holds: the table counts no change, and
# nothing is written. When a write is due, the file is read first, and not
# written again if it holds those bytes already (a config switch that drops no
# kept member, a change undone before its write): /status peer_boots_writes
# counts only writes that changed the file. No copy of the file is held
# between writes (16 peers, a tight heap): the comparison reads a few hundred
# bytes once per due write.
# The cost of the wait: a peer's reboot not yet written when this node resets
# leaves its previous boot replayable in today's window, once.
#
# Only the running config's members are kept (a removed member's entry goes
# at the next write) and restored. A write that fails (a full flash) is said
# once on the console, and the node runs on as without the file.
#
# Memory: the node holds only five ints (the list Node.peer_boots, below);
# this module is imported when a change is pending and forgotten once it is
# written (a module, its functions and an object would take about 1 KB of a
# 16-peer node's heap for good).

# Node.peer_boots: [boot_changes seen (-1: look again), due_ms (-1: none pending), earliest_ms of the next write,
# writes, failed (1: a failed write was said)]
SEEN = 0
DUE_MS = 1
EARLIEST_MS = 2
WRITES = 3
FAILED = 4


def restore(peer_boots: list[int], root: str, table: PeerTable, member_ids: list[str]) -> None:
    """Restore FILE's boot ids of member_ids into a new table, refusing their older boots; a corrupt or unreadable
    file is said once on the console and ignored (the node runs with the window of docs/heartbeat.md)."""
    from .store import Store

    store = Store(root)
    try:
        raw = store.read_json(FILE)
    except OSError as exc:  # a temp file that could not be put in place: never a reason not to boot
        raw = None
        from .hal import os_error_words

        store.state[FILE] = "unreadable: " + os_error_words(exc)[:40]
    kept: dict[str, int] = {}
    if isinstance(raw, dict):
        for node in sorted(raw):
            boot_id = raw[node]
            # A floor of 0 refuses nothing; ids of no member are not restored (and go at the next write).
            if node in member_ids and isinstance(boot_id, int) and not isinstance(boot_id, bool) \
                    and 0 < boot_id <= MAX_BOOT_ID:
                kept[node] = boot_id
    elif raw is not None or store.state.get(FILE) != "missing":
        print("loadmesh node: " + FILE + " ignored (" + ("not an object" if raw is not None else
                                                      str(store.state.get(FILE))) + "): peers' older boots "
              "are refused only once each is heard")
    table.restore_boot_ids(kept)
    peer_boots[SEEN] = table.boot_changes
    peer_boots[DUE_MS] = -1


def keep(peer_boots: list[int], root: str, table: PeerTable, member_ids: list[str], now_ms: int) -> None:
    """Write FILE once the table's boot ids changed and the wait is over (see the top); then this module (and the
    store) are forgotten until the next change."""
    changes = table.boot_changes
    if changes != peer_boots[SEEN]:
        peer_boots[SEEN] = changes
        if peer_boots[DUE_MS] < 0:
            due_ms = now_ms + SETTLE_MS
            earliest_ms = peer_boots[EARLIEST_MS]
            peer_boots[DUE_MS] = due_ms if due_ms > earliest_ms else earliest_ms
    if now_ms < peer_boots[DUE_MS]:
        return
    peer_boots[DUE_MS] = -1
    boot_ids = table.boot_ids()
    from loadmesh.core import canon

    from .roles import forget
    from .store import MISSING, Store

    store = Store(root)
    try:
        payload = canon.encode({node: boot_ids[node] for node in boot_ids if node in member_ids})
        try:
            held = store.read(FILE)
        except OSError:  # unreadable: written again
            held = None
        # What the file holds already (or nothing to keep, and no file): not written, no wear, no wait.
        # bytes == bytearray compares contents (CPython and MicroPython): no copy of either.
        if held == payload or (  # type: ignore[comparison-overlap]
                held is None and payload == b"{}" and store.state.get(FILE) == MISSING):
            return
        # Tried once: a failing file system is not written again before the next change, nor sooner than GAP_MS.
        peer_boots[EARLIEST_MS] = now_ms + GAP_MS
        store.write(FILE, payload)
        peer_boots[WRITES] += 1
    except OSError as exc:
        if not peer_boots[FAILED]:
            peer_boots[FAILED] = 1
            from .hal import os_error_words

            print("loadmesh node: " + FILE + " not written (" + os_error_words(exc)[:60] + "); running on without it")
    finally:
        forget(("loadmesh.node.store", "loadmesh.node.peerboots"))  # no heap until the next change
