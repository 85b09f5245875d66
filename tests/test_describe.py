"""A value in a core error message is shown in the words of the JSON file it came from."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.mark.parametrize(("value", "shown"), [
    (True, "true"),
    (False, "false"),
    (None, "null"),
    (0, "0"),
    (-16, "-16"),
    ("16", '"16"'),  # a text that reads as a number is still a text in the file
    ("", '""'),
    ("it's", '"it\'s"'),  # an apostrophe needs no escape in JSON
    ('say"hi', '"say\\"hi"'),
    ("a\\b", '"a\\\\b"'),
    ("x\ny", '"x\\ny"'),  # one line
    ("s\u00e9jour", '"s\\u00e9jour"'),  # ASCII, the same on every runtime
    ("x" * 41, '"' + "x" * 40 + '..."'),
    (1.5, "a float"),  # no float text: it differs between 64- and 32-bit floats
    ([1, 2], "a list"),
    ({"a": 1}, "an object"),
])
def test_a_value_is_shown_as_json_says_it(core: ModuleType, value: object, shown: str) -> None:
    assert core.errors.describe(value) == shown
    assert core.fieldcheck.describe(value) == shown  # one function, under the name the heating modules use


def test_the_allocation_and_the_heating_show_a_value_alike(core: ModuleType) -> None:
    with pytest.raises(core.errors.FieldError) as allocation:
        core.site.parse({"site": {"phases": 1, "voltage_v": 230, "limit_ma": True, "safety_pct": 100},
                         "circuits": [], "loads": []})
    with pytest.raises(core.errors.FieldError) as heating:
        core.fieldcheck.integer(True, "rated_w", 1, 10)
    assert allocation.value.problem == heating.value.problem == "true is not an integer"


def test_a_missing_list_is_said_to_be_missing(core: ModuleType) -> None:
    with pytest.raises(core.errors.FieldError) as missing:
        core.fieldcheck.array_field({}, "members", "members")
    assert str(missing.value) == "members: is missing"
    with pytest.raises(core.errors.FieldError) as null:
        core.fieldcheck.array_field({"members": None}, "members", "members")
    assert str(null.value) == "members: null is not a list"
