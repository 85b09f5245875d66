"""The core's contract entries: a JSON request in, one canonical JSON line out."""

from . import canon
from . import fieldcheck as fc
from .errors import FieldError

# Every runtime (CPython pure and compiled, both MicroPython builds) answers
# through respond(), so what the tests compare is exactly what the CLI prints.


def _pilot(request: object) -> object:
    from . import pilot

    fc.only(fc.obj(request, "request"), ("ma",), "")  # a misspelt key is named, not taken for a missing "ma"
    currents = fc.required(request, "ma")
    if not isinstance(currents, list):
        raise FieldError("ma", "must be a list of integers")
    duties = []
    readback = []
    for index, value in enumerate(currents):
        if not isinstance(value, int) or isinstance(value, bool):
            raise FieldError("ma[" + str(index) + "]", fc.describe(value) + " is not an integer")
        duty = pilot.duty_permille(value)
        duties.append(duty)
        readback.append(pilot.signalled_ma(duty))
    return {"duty_permille": duties, "signalled_ma": readback}


def _allocate(request: object) -> object:
    from . import allocate, site

    return allocate.allocate(site.parse(request))


def _canon(request: object) -> object:
    # The request back as canonical JSON: proves the encoding on every runtime.
    return request


# The other entries live with their area, each module imported on use: an
# ESP32-sized heap holds one area's modules, not every entry's.
_AREAS = {
    "heartbeat_decode": "mesh", "heartbeat_encode": "mesh", "hmac_sha256": "mesh", "peers": "mesh",
    "sensor": "mesh",
    "tiers": "heat", "boiler": "heat", "room": "heat", "heating": "heat", "radiator": "heat",
    "controller": "control", "config_hash": "config", "config_merge": "config", "config_seal": "config",
    "config_open": "config",
}


def _in_area(area: str, name: str, request: object) -> object:
    if area == "mesh":
        from . import meshentry

        return meshentry.run(name, request)
    if area == "heat":
        from . import heatentry

        return heatentry.run(name, request)
    if area == "control":
        from . import ctrlentry

        return ctrlentry.run(request)
    from . import cfgentry

    return cfgentry.run(name, request)


ENTRIES = {
    "allocate": _allocate,
    "canon": _canon,
    "pilot": _pilot,
}


def respond(name: str, request: object) -> str:
    """Run entry name on request; a FieldError becomes {"error": ...}, never a partial result."""
    handler = ENTRIES.get(name)
    area = _AREAS.get(name)
    if handler is None and area is None:
        return canon.dumps({"error": "entry: unknown entry " + fc.describe(name)})
    try:
        result = handler(request) if handler is not None else _in_area(str(area), name, request)
    except FieldError as exc:
        return canon.dumps({"error": str(exc)})
    return canon.dumps({"ok": result})
