"""The one error the core raises for bad input: it names the field and the value."""


class FieldError(ValueError):
    """A field of an input is missing, of the wrong type or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field + ": " + problem)
        self.field = field
        self.problem = problem


def quoted(text: str) -> str:
    """Text as an error message shows it, the same on every runtime: 'as it is' when printable ASCII without a
    quote or backslash, else as a JSON string (not repr(): MicroPython's escapes é, CPython's keeps it)."""
    for char in text:
        code = ord(char)
        if code < 0x20 or code > 0x7E or char == "'" or char == "\\":
            from . import canon  # only for an error

            return canon.dumps(text)
    return "'" + text + "'"
