"""Simulator scenarios: the bundled ones load and say what they claim; bad ones name the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from loadmesh.companion import cli
from loadmesh.companion.sim import scenario
from loadmesh.core import allocate, site
from loadmesh.core.errors import FieldError

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "tools" / "scenarios"


def test_three_evses_share_32_amps() -> None:
    s = scenario.load(BUNDLED / "evse3_32a.yaml")
    assert s.node_ids() == ["evse1", "evse2", "evse3"]
    assert all(n.kind == "evse" and n.car is not None for n in s.nodes)
    assert s.site["limit_ma"] == 32000 and s.phases() == 1
    # All three charging: 32 A three ways is 10 A each on 1 A steps, and the
    # 2 A left over go a step each to the first in preference order (ids, on a tie).
    result = allocate.allocate(site.parse(s.allocate_request()))
    assert result["alloc_ma"] == {"evse1": 11000, "evse2": 11000, "evse3": 10000}
    # evse2's car leaves at 60 s: the two others take their 16 A maximum.
    car2 = s.node("evse2").car
    assert car2 is not None and car2.unplug_at_ms == 60000
    result = allocate.allocate(site.parse(s.allocate_request(demand={"evse1": True, "evse3": True})))
    assert result["alloc_ma"] == {"evse1": 16000, "evse2": 0, "evse3": 16000}


def test_six_evses_on_nested_circuits_with_solar() -> None:
    s = scenario.load(BUNDLED / "evse6_nested_solar.yaml")
    assert len(s.nodes) == 6 and s.phases() == 3
    assert {c["id"]: c["parent"] for c in s.circuits} == {"garage": "site", "carport": "garage"}
    modes = sorted(str(n.load["mode"]) for n in s.nodes)
    assert modes.count("solar_only") == 2 and "solar_priority" in modes
    assert s.meter is not None and s.meter.node == "evse1" and s.meter.solar_ma == (9000, 9000, 9000)
    actions = {e.action for e in s.events}
    assert {"loss_pct", "limit_ma", "isolate", "heal", "kill", "restart", "meter_stale_s", "plug"} <= actions
    assert [e.at_ms for e in s.events] == sorted(e.at_ms for e in s.events)


def test_a_six_room_house_with_a_boiler_node() -> None:
    s = scenario.load(BUNDLED / "house6_boiler.yaml")
    valves = [n for n in s.nodes if n.kind == "valve"]
    # Six of the house's seven rooms: the hall has its radiator without a valve node.
    assert sorted(str(n.room) for n in valves) == [r for r in scenario.REFERENCE_ROOMS if r != "hall"]
    assert [n.id for n in s.nodes if n.kind == "boiler"] == ["boiler"]
    assert s.house is not None and s.house.model == "reference"
    # Heating nodes draw nothing the allocation counts.
    assert all(n.load["max_ma"] == 0 and n.load["mode"] == "off" for n in s.nodes)


def test_a_valve_node_may_sit_in_every_room_of_the_house() -> None:
    import yaml

    from loadmesh.companion import house
    from loadmesh.companion.sim import heatcfg

    data = yaml.safe_load((BUNDLED / "house6_boiler.yaml").read_text())
    data["nodes"].append({"id": "hall", "kind": "valve"})
    s = scenario.parse(data)
    # The boiler node commands the hall's valve too, with the hall's own facts.
    rooms = heatcfg.heating_files(s)["boiler"]["rooms"]
    assert isinstance(rooms, list)
    assert sorted(room["id"] for room in rooms) == list(scenario.REFERENCE_ROOMS)
    assert [room.id for room in house.reference_house().rooms if room.id == "hall"] == ["hall"]
    data["nodes"][-1]["room"] = "attic"
    with pytest.raises(FieldError) as caught:
        scenario.parse(data)
    assert str(caught.value) == (f"nodes[{len(data['nodes']) - 1}].room: \"attic\" is not a room of the house "
                                 "(bath, bedroom, hall, kids, kitchen, lounge, study)")


def test_json_and_yaml_read_the_same(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load((BUNDLED / "evse3_32a.yaml").read_text())
    path = tmp_path / "same.json"
    path.write_text(json.dumps(data))
    assert scenario.load(path) == scenario.load(BUNDLED / "evse3_32a.yaml")


BASE: dict[str, object] = {
    "duration_s": 60,
    "site": {"phases": 1, "voltage_v": 230, "limit_ma": 32000, "safety_pct": 100},
    "circuits": [{"id": "garage", "parent": "site", "limit_ma": 20000}],
    "nodes": [
        {"id": "a", "kind": "evse", "circuit": "garage", "phases": "L1", "min_ma": 6000, "max_ma": 16000,
         "step_ma": 1000, "priority": 0, "mode": "continuous", "car": {"plug_at_s": 0}},
        {"id": "b", "kind": "relay", "phases": "L1", "min_ma": 8000, "max_ma": 8000, "step_ma": 1000,
         "priority": 1, "mode": "continuous"},
    ],
    "events": [{"at_s": 10, "unplug": "a"}],
}


def _with(path: str, value: object) -> dict[str, object]:
    """BASE with the value at path (dots and [i]) set; a value of ... deletes it."""
    data = copy.deepcopy(BASE)
    parts = path.replace("[", ".").replace("]", "").split(".")
    target: object = data
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]  # type: ignore[index]
    last = parts[-1]
    if value is ...:
        del target[int(last) if isinstance(target, list) else last]  # type: ignore[attr-defined]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value  # type: ignore[index]
    return data


BAD = [
    # (what changes, the error)
    (_with("duration_s", ...), "duration_s: is missing"),
    (_with("duration_s", 0), "duration_s: 0 is out of range 1..604800"),
    (_with("nodes", []), "nodes: has 0 nodes; 1 to 17 are allowed"),
    (_with("nodes[0].kind", "heatpump"), "nodes[0].kind: \"heatpump\" is not one of evse|relay|valve|boiler"),
    (_with("nodes[0].id", "has space"), "nodes[0].id: \"has space\" is not a node id (1 to 16 printable ASCII "
                                        "characters, no space)"),
    (_with("nodes[0].min_ma", 20000), "nodes[0].min_ma: 20000 is above max_ma 16000"),
    (_with("nodes[0].circuit", "attic"), "nodes[0].circuit: \"attic\" is not a circuit"),
    (_with("nodes[0].mode", ...), "nodes[0].mode: is missing"),
    (_with("nodes[1].id", "a"), "nodes[1].id: \"a\" is a duplicate"),
    (_with("nodes[0].car.lag_ms", 500), "nodes[0].car.lag_ms: 500 is out of range 1000..5000"),
    (_with("nodes[0].car.plug_at_s", ...), "nodes[0].car.plug_at_s: is missing (null: unplugged until a plug "
                                           "event)"),
    (_with("nodes[0].car.unplug_at_s", 0), "nodes[0].car.unplug_at_s: must come after plug_at_s"),
    (_with("nodes[0].car.colour", "red"), "nodes[0].car.colour: is not a known field"),
    (_with("nodes[1].car", {"plug_at_s": 0}), "nodes[1].car: only an evse node has a car"),
    (_with("nodes[1].kind", "valve"), "nodes[1].kind: \"valve\" needs a house section"),
    (_with("events[0]", {"at_s": 10, "kill": "zz"}), "events[0].kill: \"zz\" is not a node"),
    (_with("events[0]", {"at_s": 10, "unplug": "b"}), "events[0].unplug: \"b\" has no car"),
    (_with("events[0]", {"at_s": 61, "kill": "a"}), "events[0].at_s: 61 is out of range 0..60.0"),
    (_with("events[0]", {"at_s": 5, "kill": "a", "heal": "a"}),
     "events[0]: must have exactly one of kill, restart, isolate, heal, plug, unplug, loss_pct, limit_ma, "
     "meter_stale_s (it has kill, heal)"),
    (_with("events[0]", {"at_s": 5}), "events[0]: must have exactly one of kill, restart, isolate, heal, plug, "
                                      "unplug, loss_pct, limit_ma, meter_stale_s"),
    (_with("events[0]", {"at_s": 5, "loss_pct": 101}), "events[0].loss_pct: 101 is out of range 0..100"),
    (_with("events[0]", {"at_s": 5, "limit_ma": [1, 2]}), "events[0].limit_ma: has 2 values; the site has 1 "
                                                          "phases"),
    (_with("events[0]", {"at_s": 5, "limit_ma": 1000, "circuit": "attic"}),
     "events[0].circuit: \"attic\" is not a circuit"),
    (_with("events[0]", {"at_s": 5, "isolate": "a", "circuit": "garage"}),
     "events[0].circuit: goes only with limit_ma"),
    (_with("events[0]", {"at_s": 5, "meter_stale_s": 10}), "events[0].meter_stale_s: there is no meter section"),
    (_with("meter", {"node": "zz"}), "meter.node: \"zz\" is not a node"),
    (_with("house", {"model": "castle"}), "house.model: \"castle\" is not one of reference"),
    (_with("site.meter", {"ma": [0], "age_ms": 0}), "site.meter: is live in a simulation: use the top-level "
                                                     "meter section"),
    (_with("site.limit_ma", -1), "site.limit_ma: -1 is below 0"),
    (_with("surprise", 1), "surprise: is not a known field"),
    (_with("group", []), "group: a list is not an object"),
]


@pytest.mark.parametrize(("data", "error"), BAD, ids=[e for _, e in BAD])
def test_bad_scenarios_name_the_field(data: dict[str, object], error: str) -> None:
    with pytest.raises(FieldError) as caught:
        scenario.parse(data)
    assert str(caught.value) == error


@pytest.mark.parametrize(("data", "error"), [
    (_with("nodes[1].kind", "valve"), "nodes[1].kind: \"valve\" needs a house section"),
    (_with("events[0]", {"at_s": 10, "unplug": "b"}), "events[0].unplug: \"b\" has no car"),
])
def test_a_value_is_named_in_the_files_words_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  data: dict[str, object], error: str) -> None:
    # The value as the file says it ("b"), not as Python's repr shows it ('b'); refused before a node starts.
    path = tmp_path / "site.json"
    path.write_text(json.dumps(data))
    assert cli.main(["sim", str(path)]) == 2
    assert capsys.readouterr() == ("", f"loadmesh sim: {path}: {error}\n")


def test_the_base_is_good() -> None:
    s = scenario.parse(BASE)
    assert s.node_ids() == ["a", "b"]
    assert s.events == (scenario.Event(at_ms=10000, action="unplug", value="a"),)


def test_events_at_the_same_time_keep_their_order() -> None:
    data = _with("events", [{"at_s": 5, "isolate": "a"}, {"at_s": 1.5, "loss_pct": 10}, {"at_s": 5, "heal": "a"}])
    s = scenario.parse(data)
    assert [(e.at_ms, e.action) for e in s.events] == [(1500, "loss_pct"), (5000, "isolate"), (5000, "heal")]


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("nodes: [unclosed\n")
    with pytest.raises(FieldError, match=r"^scenario: broken\.yaml is not valid YAML"):
        scenario.load(path)


@pytest.mark.parametrize(("name", "text", "error"), [
    # Both readers kept the last of a key named twice, silently: an edit of the first was lost.
    ("twice.yaml", "duration_s: 60\nnodes: []\nduration_s: 600\n",
     'twice.yaml is not valid YAML: the key "duration_s" twice in one mapping: line 3, column 1'),
    ("twice.yaml", "nodes:\n  - {id: a, kind: evse, id: b}\n",
     'twice.yaml is not valid YAML: the key "id" twice in one mapping: line 2, column 25'),
    ("twice.json", '{"duration_s": 60, "nodes": [], "duration_s": 600}',
     'twice.json is not valid JSON: the key "duration_s" twice in one object: line 1 column 33 (char 32)'),
])
def test_a_key_twice_is_refused_where_it_is(tmp_path: Path, name: str, text: str, error: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FieldError) as refused:
        scenario.load(path)
    assert str(refused.value) == "scenario: " + error


def test_a_yaml_merge_may_give_a_key_again(tmp_path: Path) -> None:
    # `<<: *base` then a key of base: an override YAML means, not a key twice.
    path = tmp_path / "merge.yaml"
    path.write_text("base: &base {a: 1, b: 2}\nother: {<<: *base, b: 3}\n")
    with pytest.raises(FieldError) as refused:  # loaded; then refused as a scenario, by its first field
        scenario.load(path)
    assert "twice" not in str(refused.value)


@pytest.mark.parametrize(("text", "error"), [
    ("", "scenario: empty.yaml is empty: it holds no YAML document"),
    ("# a scenario to come\n\n", "scenario: empty.yaml is empty: it holds no YAML document"),
    ("null\n", "scenario: null is not an object"),  # a document, not an empty file
])
def test_an_empty_file_says_so_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                   error: str) -> None:
    # Refused while the file is read, before a node starts. An empty file said "None is not an object".
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert cli.main(["sim", str(path)]) == 2
    assert capsys.readouterr().err == f"loadmesh sim: {path}: {error}\n"
