"""The peer table: each peer's last verified heartbeat, with replay protection and liveness."""

from .errors import FieldError

# Only receive() changes the table, and it decodes with the group key first:
# nothing unauthenticated is ever stored. The threat left is replay of
# captured genuine packets, which boot id and sequence number stop:
#
# - Within one boot, a peer's sequence number must rise. A repeat is a
#   "duplicate", a lower one "old_seq" (a replay, or a packet that lost a race
#   with a newer one, whose news is already superseded).
# - A boot id is a counter each node raises at every boot and keeps in flash,
#   so a reboot is accepted only with a boot id higher than the one held.
#   Random boot ids would not do: an attacker replaying packets of a boot we
#   never saw would pass as a reboot, and the peer's real, current boot would
#   then look old and be locked out.
#
# The limits are in docs/heartbeat.md ("Replay protection"): this node forgets
# everything when it reboots (restore_boot_ids() narrows that), and a node
# whose counter went back (flash wiped) is refused until forget() is called.
#
# Memory: an accepted heartbeat is kept whole, and its text fields are new
# strings each time. Those every peer repeats are swapped for equal strings the
# table already holds (_share): the node id for the member list's, the group
# for the table's, and the circuit, the config hash, the view digest and the
# draws for another peer's (most members share a circuit, the site's; peers
# running one config and agreeing all send the same hash and digest; nodes
# that draw nothing, valves and boilers, the same draws). Equal values, so
# nothing read changes (a list in the table is never changed: one shared by
# two is safe); on a 12K-word heap that is about 0.3 KB a peer.
#
# A peer's next heartbeat is put into the dict the table holds for it (and its
# sections into theirs) when it has the same keys, as a peer's heartbeats do,
# and the decoded one left as garbage: the kept dicts stay where they are in
# the heap. Each one kept in its place would otherwise move to wherever its
# decoding found room, every 500 ms for every peer, and the heap's holes
# around the tables it left be cut up by the next: on the boiler node of 8
# rooms the heap had 8.5 KB free after a collection, its largest piece 512
# bytes, where a datagram's receive needs 514 in one (docs/heating.md). Only
# dicts are filled again: a list may be shared (above), and a caller holds
# no heartbeat across receives.

MAX_PEERS = 16

# heartbeat's OK and MAX_VALUE: the codec is imported only when a packet
# arrives, so code that reads a table (the controller) does not load it.
OK = "ok"
MAX_BOOT_ID = (1 << 30) - 1

# What receive() returns beyond heartbeat.decode()'s reasons.
OWN = "own"  # our own node id: our broadcast echoed back, or a replay of it
NOT_MEMBER = "not_member"
TABLE_FULL = "table_full"
OLD_BOOT = "old_boot"
DUPLICATE = "duplicate"
OLD_SEQ = "old_seq"
REBOOT = "reboot"  # counted beside "ok" when an accepted heartbeat starts a new boot


class Peer:
    """What one peer last said (its decoded heartbeat) and when it was heard."""

    # Its id, boot id and sequence number are the held heartbeat's (properties): an attribute
    # fewer or more changes the size of every entry's attribute table (16 peers on a 12K-word heap).

    def __init__(self, message: dict[str, object], now_ms: int) -> None:
        self.heartbeat = message
        self.heard_ms = now_ms
        self.boot_heard_ms = now_ms  # when this boot was first heard
        self.reboots = 0  # reboots seen since it entered the table

    @property
    def node(self) -> str:
        """The peer's node id."""
        value = self.heartbeat["node"]
        assert isinstance(value, str)
        return value

    @property
    def boot_id(self) -> int:
        """The boot id of the heartbeat held."""
        return _int(self.heartbeat, "boot_id")

    @property
    def seq(self) -> int:
        """The sequence number of the heartbeat held."""
        return _int(self.heartbeat, "seq")

    def applied_ma(self) -> int:
        """The limit the peer last reported enforcing."""
        return _int(self.heartbeat, "applied_ma")

    def target_ma(self) -> int:
        """The target the peer last reported."""
        return _int(self.heartbeat, "target_ma")

    def digest(self) -> str:
        """The peer's last reported view digest (hex)."""
        value = self.heartbeat["digest"]
        assert isinstance(value, str)
        return value


class PeerTable:
    """Peers of one group, keyed by node id; bounded, and fed only by receive()."""

    def __init__(self, pads: tuple[bytes, bytes], group: str, own_node: str,
                 members: list[str] | None = None, max_peers: int = MAX_PEERS) -> None:
        if not isinstance(max_peers, int) or isinstance(max_peers, bool) or max_peers < 1:
            raise FieldError("max_peers", "must be a positive integer")
        self._pads = pads
        self.group = group
        self.own_node = own_node
        self.max_peers = max_peers
        self._members: list[str] | None = None
        self._peers: dict[str, Peer] = {}
        self._boot_floor: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        # Raised whenever boot_ids() changes (a peer first heard in another boot than restored, a reboot, a
        # peer forgotten): a node persisting them tells a change from an int compare, and holds no copy.
        self.boot_changes = 0
        self.set_members(members)

    def set_members(self, members: list[str] | None) -> None:
        """Admit only these node ids (None: any key holder); forget peers that are no longer members."""
        if members is None:
            self._members = None
            return
        if not isinstance(members, list):
            raise FieldError("members", "must be a list of node ids")
        for index in range(len(members)):
            if not isinstance(members[index], str):
                raise FieldError("members[" + str(index) + "]", "must be a node id")
        others = sorted(set(members) - {self.own_node})
        if len(others) > self.max_peers:
            raise FieldError("members", str(len(others)) + " peers exceed max_peers " + str(self.max_peers))
        self._members = others
        # Replay state of the members that stay is kept: a new table would
        # accept any first packet again.
        for node in sorted(self._peers):
            if node not in others:
                self.forget(node)

    def receive(self, data: object, now_ms: int) -> str:
        """Take one packet heard at now_ms; "ok" if it updated the table, else why not."""
        from . import heartbeat

        reason, message = heartbeat.decode(self._pads, self.group, data)
        if message is not None:
            reason = self._accept(message, now_ms)
        self.counts[reason] = self.counts.get(reason, 0) + 1
        return reason

    def accept_decoded(self, message: dict[str, object], now_ms: int) -> str:
        """Take a heartbeat that heartbeat.decode() returned with "ok" for this group; the replay checks apply.

        receive() is this after decoding. Never pass anything else: a message
        that did not pass decode() is unauthenticated.
        """
        reason = self._accept(message, now_ms)
        self.counts[reason] = self.counts.get(reason, 0) + 1
        return reason

    def _accept(self, message: dict[str, object], now_ms: int) -> str:
        node = message["node"]
        assert isinstance(node, str)
        boot_id = _int(message, "boot_id")
        seq = _int(message, "seq")
        if node == self.own_node:
            return OWN
        peer = self._peers.get(node)
        if peer is None:
            if self._members is not None and node not in self._members:
                return NOT_MEMBER
            # Never evict: a peer that is silent is still drawing what it last
            # reported until it must have reached failsafe, and only the
            # controller can judge when that is. Newcomers wait for room.
            if len(self._peers) >= self.max_peers:
                return TABLE_FULL
            if boot_id < self._boot_floor.get(node, 0):
                return OLD_BOOT
            floor = self._boot_floor.pop(node, None)
            self._share(message)
            self._peers[node] = Peer(message, now_ms)
            if boot_id != floor:  # not the boot restored for it (this node's reboot): news
                self.boot_changes += 1
            return OK
        held_boot_id = peer.boot_id
        if boot_id < held_boot_id:
            return OLD_BOOT
        if boot_id > held_boot_id:
            peer.boot_heard_ms = now_ms
            peer.reboots += 1
            self.boot_changes += 1
            self.counts[REBOOT] = self.counts.get(REBOOT, 0) + 1
        elif seq == peer.seq:
            return DUPLICATE
        elif seq < peer.seq:
            return OLD_SEQ
        self._share(message)
        if not refill(peer.heartbeat, message):
            peer.heartbeat = message
        peer.heard_ms = now_ms
        return OK

    def _share(self, message: dict[str, object]) -> None:
        """Swap message's repeated values for equal ones the table holds (see the top)."""
        if "group" in message:
            message["group"] = self.group  # decode() checked that they are equal
        node = message["node"]
        members = self._members
        if members is not None:
            for member in members:
                if member == node:
                    message["node"] = member
                    break
        for key in ("circuit", "config_hash", "digest", "draw_ma"):
            value = message.get(key)
            if value is None:
                continue  # not in a message a caller decoded (accept_decoded), for a test
            # Any equal value will do: the order the peers are looked at in changes nothing read.
            for other in self._peers.values():
                held = other.heartbeat.get(key)
                if held == value:
                    message[key] = held
                    break

    def peer(self, node: str) -> Peer | None:
        """The entry for node, or None if it has not been heard."""
        return self._peers.get(node)

    def nodes(self) -> list[str]:
        """The node ids in the table, sorted."""
        return sorted(self._peers)

    def age_ms(self, node: str, now_ms: int) -> int | None:
        """How long ago node was last heard; None if never."""
        peer = self._peers.get(node)
        if peer is None:
            return None
        # now_ms must be monotonic; a packet stamped a moment after the
        # caller's now_ms is simply fresh, not from the future.
        age = now_ms - peer.heard_ms
        return age if age > 0 else 0

    def online(self, node: str, now_ms: int, peer_timeout_ms: int) -> bool:
        """Whether node was heard less than peer_timeout_ms ago."""
        age = self.age_ms(node, now_ms)
        return age is not None and age < peer_timeout_ms

    def forget(self, node: str) -> None:
        """Drop everything known of node: after its re-adoption, or its removal from the group."""
        peer = self._peers.pop(node, None)
        if self._boot_floor.pop(node, None) is not None or peer is not None:
            self.boot_changes += 1

    def boot_ids(self) -> dict[str, int]:
        """Each peer's current boot id (and restored ones not heard since), to persist."""
        out = dict(self._boot_floor)
        for node, peer in self._peers.items():
            out[node] = peer.boot_id
        return out

    def restore_boot_ids(self, boot_ids: dict[str, int]) -> None:
        """Refuse boot ids below these, for peers not yet heard (after this node reboots)."""
        for node in sorted(boot_ids):
            boot_id = boot_ids[node]
            if not isinstance(boot_id, int) or isinstance(boot_id, bool) or not 1 <= boot_id <= MAX_BOOT_ID:
                raise FieldError("boot_ids." + str(node), "must be an integer 1.." + str(MAX_BOOT_ID))
            if node not in self._peers:
                self._boot_floor[node] = boot_id

    def snapshot(self, now_ms: int, peer_timeout_ms: int) -> dict[str, object]:
        """A JSON-able view of the table at now_ms, for status pages and tests."""
        peers: dict[str, object] = {}
        for node in self.nodes():
            peer = self._peers[node]
            peers[node] = {
                "boot_id": peer.boot_id, "seq": peer.seq, "age_ms": self.age_ms(node, now_ms),
                "online": self.online(node, now_ms, peer_timeout_ms), "reboots": peer.reboots,
                "applied_ma": peer.applied_ma(), "target_ma": peer.target_ma(),
                "failsafe": peer.heartbeat["failsafe"], "digest": peer.digest(),
            }
        return {"peers": peers, "counts": dict(self.counts)}


def refill(held: dict[str, object], new: dict[str, object], nested: bool = True) -> bool:
    """Put new's values into held, the dict it replaces, if both have the same keys; with nested, their nested dicts
    alike, in place too. False, and held untouched, if their keys differ.

    The dicts a node keeps stay where they are in its heap, and new is left as garbage (see the top). nested only for
    a held dict whose nested dicts nothing else holds: those are changed.
    """
    if len(held) != len(new):
        return False
    for key in new:
        if key not in held:
            return False
    for key in new:
        value = new[key]
        old = held[key]
        if nested and type(value) is dict and type(old) is dict and refill(old, value):
            continue
        held[key] = value
    return True


def _int(message: dict[str, object], name: str) -> int:
    value = message[name]
    assert isinstance(value, int)
    return value
