"""The node's own settings (node.json): its member id and where its mesh and HTTP API listen."""

from loadmesh.core import fieldcheck as fc
from loadmesh.core.errors import FieldError

# Written once, by the installer or at adoption, and read at boot. Every field
# but the id has a device default; the simulator points the mesh at its hub and
# everything at loopback:
#
#   {"id": "evse1",                         the node's member id in the group config
#    "mesh_port": 4210,                     UDP port heartbeats are heard on
#    "mesh_host": "255.255.255.255",        where heartbeats go (broadcast; the sim: its hub)
#    "mesh_dest_port": 4210,                that destination's port (default mesh_port)
#    "bind_host": "0.0.0.0",                the address the mesh socket binds
#    "http_host": "0.0.0.0", "http_port": 80,
#    "peers_http": {"evse2": ["192.168.1.12", 80]}}   peers' HTTP APIs, for fetching their config
#
# Every host is an IPv4 address in four numbers: a name would be looked up by
# getaddrinfo, which blocks the node's loop for as long as DNS takes, and one
# not found (a typo, "http://...") raised out of boot; "16" and "192.168.1"
# were taken as 0.0.0.16 and 192.168.0.1. http_port may equal mesh_port: one
# is TCP, the other UDP.
#
# A node without the file (or with a bad one), or with no id in it, cannot
# run a config: it waits for adoption (node.adoption), which writes the id.
# Its HTTP API listens where the file says, else on the defaults.

FILE = "node.json"
MESH_PORT = 4210
HTTP_PORT = 80
ANY_HOST = "0.0.0.0"
BROADCAST = "255.255.255.255"

_KEYS = ("id", "mesh_port", "mesh_host", "mesh_dest_port", "bind_host", "http_host", "http_port", "peers_http")


def defaults() -> dict[str, object]:
    """The settings of a node that has none: no id, device ports."""
    return {"id": None, "mesh_port": MESH_PORT, "mesh_host": BROADCAST, "mesh_dest_port": MESH_PORT,
            "bind_host": ANY_HOST, "http_host": ANY_HOST, "http_port": HTTP_PORT, "peers_http": {}}


def parse(raw: object) -> dict[str, object]:
    """Settings checked and completed; FieldError names the first bad field."""
    top = fc.obj(raw, "node")
    fc.only(top, _KEYS, "node")
    out = defaults()
    if top.get("id") is not None:
        out["id"] = member_id(top["id"], "node.id")
    mesh_port = fc.int_field(top, "mesh_port", "node", 1, 65535, MESH_PORT)
    out["mesh_port"] = mesh_port
    out["mesh_dest_port"] = fc.int_field(top, "mesh_dest_port", "node", 1, 65535, mesh_port)
    out["http_port"] = fc.int_field(top, "http_port", "node", 1, 65535, HTTP_PORT)
    for key in ("mesh_host", "bind_host", "http_host"):
        if key in top:
            out[key] = _ipv4(top[key], "node." + key)
    if out["mesh_host"] == ANY_HOST:
        raise FieldError("node.mesh_host", "\"0.0.0.0\" is no destination (the default, 255.255.255.255, is the LAN)")
    peers = fc.obj(top.get("peers_http", {}), "node.peers_http")
    addresses: dict[str, object] = {}
    for peer in sorted(peers):
        path = "node.peers_http." + peer
        if member_id(peer, path) == out["id"]:
            raise FieldError(path, "is this node itself (a node fetches configs from its peers)")
        pair = fc.array(peers[peer], path)
        if len(pair) != 2:
            raise FieldError(path, "must be [host, port]")
        addresses[peer] = [_ipv4(pair[0], path + "[0]"), fc.integer(pair[1], path + "[1]", 1, 65535)]
    out["peers_http"] = addresses
    return out


def member_id(value: object, path: str) -> str:
    """A member id as group configs have them: 1 to 16 letters, digits, '-', '_' or '.'."""
    if not isinstance(value, str) or not 1 <= len(value) <= 16:
        raise FieldError(path, fc.describe(value) + " is not a member id (1 to 16 characters)")
    for char in value:
        if not ("a" <= char <= "z" or "A" <= char <= "Z" or "0" <= char <= "9" or char in "-_."):
            raise FieldError(path, fc.describe(value) + " is not a member id (letters, digits, '-', '_', '.')")
    return value


def _ipv4(value: object, path: str) -> str:
    # A name would be resolved where it is used (a peer's fetch, the mesh socket),
    # and MicroPython's getaddrinfo blocks the whole loop, control tick
    # included, for as long as DNS takes.
    if ipv4_octets(value) is None:
        raise FieldError(path, fc.describe(value) + " is not an IPv4 address (a name would block the node "
                         "while it is looked up; no leading zeros)")
    return str(value)


def ipv4_octets(value: object) -> list[int] | None:
    """The four numbers of a dotted-quad IPv4 address, or None if value is not one.

    ASCII digits only, and no leading zeros: the C library and lwIP read "010"
    as octal (8), so "010.0.0.1" would be checked as one address and used as
    another."""
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 4:
        return None
    octets = []
    for part in parts:
        if not 1 <= len(part) <= 3 or (part[0] == "0" and len(part) > 1):
            return None
        for char in part:
            if not "0" <= char <= "9":
                return None
        number = int(part)
        if number > 255:
            return None
        octets.append(number)
    return octets
