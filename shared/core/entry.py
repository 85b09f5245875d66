"""The core's contract entries: a JSON request in, one canonical JSON line out."""

from . import canon
from .errors import FieldError

# Every runtime (CPython pure and compiled, both MicroPython builds) answers
# through respond(), so what the tests compare is exactly what the CLI prints.


def _pilot(request: object) -> object:
    from . import pilot

    currents = _field(request, "ma")
    if not isinstance(currents, list):
        raise FieldError("ma", "must be a list of integers")
    duties = []
    readback = []
    for index, value in enumerate(currents):
        if not isinstance(value, int) or isinstance(value, bool):
            raise FieldError("ma[" + str(index) + "]", repr(value) + " is not an integer")
        duty = pilot.duty_permille(value)
        duties.append(duty)
        readback.append(pilot.signalled_ma(duty))
    return {"duty_permille": duties, "signalled_ma": readback}


def _field(request: object, name: str) -> object:
    if not isinstance(request, dict):
        raise FieldError("request", "must be an object")
    if name not in request:
        raise FieldError(name, "is missing")
    return request[name]


def _canon(request: object) -> object:
    # The request back as canonical JSON: proves the encoding on every runtime.
    return request


def _heating(kind: str, request: object) -> object:
    # Imported on use: an ESP32-sized heap holds one node's heating modules, not every entry's.
    from . import heatentry

    return heatentry.run(kind, request)


def _tiers(request: object) -> object:
    return _heating("tiers", request)


def _boiler(request: object) -> object:
    return _heating("boiler", request)


def _room(request: object) -> object:
    return _heating("room", request)


def _heating_chain(request: object) -> object:
    return _heating("heating", request)


def _radiator(request: object) -> object:
    return _heating("radiator", request)


ENTRIES = {
    "canon": _canon,
    "pilot": _pilot,
    "tiers": _tiers,
    "boiler": _boiler,
    "room": _room,
    "heating": _heating_chain,
    "radiator": _radiator,
}


def respond(name: str, request: object) -> str:
    """Run entry name on request; a FieldError becomes {"error": ...}, never a partial result."""
    handler = ENTRIES.get(name)
    if handler is None:
        return canon.dumps({"error": "entry: unknown entry " + repr(name)})
    try:
        result = handler(request)
    except FieldError as exc:
        return canon.dumps({"error": str(exc)})
    return canon.dumps({"ok": result})
