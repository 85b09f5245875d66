"""Field checks for configs, states and inputs: each failure names the field and the value."""

from .errors import FieldError
from .errors import describe as describe  # the one way to show a value; callers name it fc.describe

# The heating modules validate everything that reaches them through these
# helpers, so every message has the same shape; values are shown by
# errors.describe, as every core message shows them.


def key_name(name: object) -> str:
    """A key as a field path names it: as it is when printable ASCII, else quoted and escaped, on one line."""
    text = str(name)
    for char in text:
        code = ord(char)
        if code < 0x20 or code > 0x7E:
            return describe(text)
    return text


def join(path: str, key: str) -> str:
    """path.key, or key alone at the top level."""
    return path + "." + key if path else key


def index(path: str, position: int) -> str:
    """path[position]."""
    return path + "[" + str(position) + "]"


def required(request: object, name: str) -> object:
    """request[name], request being a contract entry's request object."""
    if not isinstance(request, dict):
        raise FieldError("request", "must be an object")
    if name not in request:
        raise FieldError(name, "is missing")
    return request[name]


def merged(previous: object, patch: object) -> object:
    """patch laid over previous, object by object: a step names only what changed since the step before."""
    if not isinstance(previous, dict) or not isinstance(patch, dict):
        return patch
    result = dict(previous)
    for key in patch:
        result[key] = merged(previous.get(key), patch[key])
    return result


def same_keys(mapping: dict[str, object], ids: list[str], path: str) -> None:
    """mapping has a key for every configured id in ids, and no other."""
    for key in sorted(mapping):
        if key not in ids:
            raise FieldError(join(path, key_name(key)), "is not a configured room")
    for key in ids:
        if key not in mapping:
            raise FieldError(join(path, key), "is missing")


def obj(value: object, path: str) -> dict[str, object]:
    """value, which must be a JSON object."""
    if not isinstance(value, dict):
        raise FieldError(path or "request", describe(value) + " is not an object")
    return value


def array(value: object, path: str) -> list[object]:
    """value, which must be a JSON list."""
    if not isinstance(value, list):
        raise FieldError(path, describe(value) + " is not a list")
    return value


def given(mapping: dict[str, object], key: str, path: str) -> object:
    """mapping[key], which is required (path names it): an absent field is said to be missing, not shown as null."""
    if key not in mapping:
        raise FieldError(path, "is missing")
    return mapping[key]


def obj_field(mapping: dict[str, object], key: str, path: str) -> dict[str, object]:
    """mapping[key], which must be there (path names it) and be a JSON object."""
    return obj(given(mapping, key, path), path)


def array_field(mapping: dict[str, object], key: str, path: str) -> list[object]:
    """mapping[key], which must be there (path names it) and be a JSON list."""
    return array(given(mapping, key, path), path)


def only(mapping: dict[str, object], allowed: tuple[str, ...], path: str) -> None:
    """Refuse keys outside allowed: a misspelt setting must not silently take its default."""
    extra = sorted(name for name in mapping if name not in allowed)
    if extra:
        raise FieldError(join(path, key_name(extra[0])), "is not a known field")


def integer(value: object, path: str, low: int, high: int) -> int:
    """value as an int within low..high."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(path, describe(value) + " is not an integer")
    if value < low or value > high:
        raise FieldError(path, str(value) + " is out of range " + str(low) + ".." + str(high))
    return value


def int_field(mapping: dict[str, object], key: str, path: str, low: int, high: int,
              default: int | None = None) -> int:
    """mapping[key] as an int within low..high; default when absent (None: required)."""
    if key not in mapping:
        if default is None:
            raise FieldError(join(path, key), "is missing")
        return default
    return integer(mapping[key], join(path, key), low, high)


def opt_int_field(mapping: dict[str, object], key: str, path: str, low: int, high: int) -> int | None:
    """mapping[key] as an int within low..high, or None when absent or null."""
    value = mapping.get(key)
    if value is None:
        return None
    return integer(value, join(path, key), low, high)


def bool_field(mapping: dict[str, object], key: str, path: str, default: bool | None = None) -> bool:
    """mapping[key] as a bool; default when absent (None: required)."""
    if key not in mapping:
        if default is None:
            raise FieldError(join(path, key), "is missing")
        return default
    value = mapping[key]
    if value is not True and value is not False:
        raise FieldError(join(path, key), describe(value) + " is not true or false")
    return value


def choice_field(mapping: dict[str, object], key: str, path: str, choices: tuple[str, ...],
                 default: str | None = None) -> str:
    """mapping[key], one of choices; default when absent (None: required)."""
    if key not in mapping:
        if default is None:
            raise FieldError(join(path, key), "is missing")
        return default
    value = mapping[key]
    if not isinstance(value, str) or value not in choices:
        raise FieldError(join(path, key), describe(value) + " is not one of " + "|".join(choices))
    return value


def room_id(value: object, path: str) -> str:
    """A room id: 1 to 32 characters of a-z, 0-9, _ and -."""
    if not isinstance(value, str) or not 1 <= len(value) <= 32:
        raise FieldError(path, describe(value) + " is not a room id (1 to 32 characters)")
    for char in value:
        if not ("a" <= char <= "z" or "0" <= char <= "9" or char in "_-"):
            raise FieldError(path, describe(value) + " is not a room id (use a-z, 0-9, _ and -)")
    return value


def pct_step(value: int, path: str) -> int:
    """A valve percentage that must be a multiple of 10."""
    if value % 10:
        raise FieldError(path, str(value) + " is not a multiple of 10")
    return value
