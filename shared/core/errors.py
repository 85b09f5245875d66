"""The one error the core raises for bad input: it names the field and the value."""


class FieldError(ValueError):
    """A field of an input is missing, of the wrong type or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field + ": " + problem)
        self.field = field
        self.problem = problem


def quoted(text: str) -> str:
    """Text as an error message shows it, the same on every runtime: as a JSON string, as the file says it (not
    repr(): MicroPython's escapes é, CPython's keeps it; and its quote is not JSON's)."""
    for char in text:
        code = ord(char)
        if code < 0x20 or code > 0x7E or char == '"' or char == "\\":
            from . import canon  # only for an error

            return canon.dumps(text)
    return '"' + text + '"'


def describe(value: object) -> str:
    """A value as an error message shows it, in the words of the JSON it came from (true, null, "text"), the same
    on every runtime: no float text (a float's repr differs between CPython and single-precision MicroPython, and
    a message is part of a vector's expected bytes), a list or an object by its kind."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quoted(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, float):
        return "a float"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a " + type(value).__name__
