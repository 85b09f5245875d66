"""The one error the core raises for bad input: it names the field and the value."""


class FieldError(ValueError):
    """A field of an input is missing, of the wrong type or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field + ": " + problem)
        self.field = field
        self.problem = problem
