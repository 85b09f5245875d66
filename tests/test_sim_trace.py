"""The simulator's trace: the contract's fields, the limit check at every sample, the demo's table."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from loadmesh.companion.sim import command, trace
from loadmesh.companion.sim import scenario as sc

ROOT = Path(__file__).resolve().parent.parent
EVSE3 = sc.load(ROOT / "tools" / "scenarios" / "evse3_32a.yaml")
EVSE6 = sc.load(ROOT / "tools" / "scenarios" / "evse6_nested_solar.yaml")


def record(t_ms: int, node: str, applied_ma: int, draw_ma: int = 0, **extra: object) -> dict[str, object]:
    return {"t_ms": t_ms, "node": node, "applied_ma": applied_ma, "target_ma": applied_ma, "draw_ma": draw_ma,
            "failsafe": False, "mem_alloc": 50000, **extra}


def sample(t_ms: int, applied: dict[str, int], draw: dict[str, int] | None = None) -> list[dict[str, object]]:
    return [record(t_ms, node, ma, (draw or {}).get(node, 0)) for node, ma in sorted(applied.items())]


def test_writer_and_reader_keep_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with trace.TraceWriter(path) as writer:
        writer.write(sample(0, {"evse1": 6000, "evse2": 6000}))
        writer.write([record(100, "lounge", 0, valve_pct=40, mem_alloc=None)])
    lines = path.read_text().splitlines()
    assert lines[0] == ('{"applied_ma":6000,"draw_ma":0,"failsafe":false,"mem_alloc":50000,"node":"evse1",'
                        '"t_ms":0,"target_ma":6000}')
    assert trace.read(path)[2] == record(100, "lounge", 0, valve_pct=40, mem_alloc=None)


@pytest.mark.parametrize(("broken", "error"), [
    ({"t_ms": 0, "node": "a"}, "trace record for \"a\" has no applied_ma"),
    ({**record(0, "a", 0), "applied_ma": 1.5}, "applied_ma: a float is not an integer"),
    ({**record(0, "a", 0), "failsafe": 1}, "failsafe: 1 is not true or false"),
    ({**record(0, "a", 0), "failsafe": None}, "failsafe: null is not true or false"),  # as JSON says it, not None
    ({**record(0, "a", 0), "mem_alloc": "lots"}, "mem_alloc: \"lots\" is not an integer or null"),
])
def test_records_outside_the_contract_are_refused(broken: dict[str, object], error: str) -> None:
    with pytest.raises(trace.TraceError, match="^" + error.replace("(", r"\(").replace(")", r"\)") + "$"):
        trace.TraceWriter(io.StringIO()).write([broken])


def test_a_sample_over_several_limits_counts_once_among_the_samples_over() -> None:
    # The carport's three 1-phase chargers at 16 A each, the garage's two at 16 A on every phase: the carport
    # circuit is fine (16 A a phase), the garage carries 48 A a phase on 32 A, and the site 48 A on 35 A.
    over = {"evse1": 16000, "evse2": 16000, "evse3": 16000, "evse4": 16000, "evse5": 16000}
    records = [*sample(0, {"evse1": 6000}), *sample(100, over), *sample(200, over)]
    found = trace.violations(records, EVSE6)
    assert len(found) == 12  # two samples x (garage, site) x three phases
    assert trace.samples_over(found) == 2


def test_the_sum_of_applied_limits_is_checked_at_every_sample() -> None:
    records = [
        *sample(0, {"evse1": 11000, "evse2": 11000, "evse3": 10000}),  # 32 A: at the limit
        *sample(100, {"evse1": 16000, "evse2": 11000, "evse3": 6000}),  # 33 A: over
        *sample(200, {"evse1": 16000, "evse3": 16000}),  # evse2 missing from the sample counts as 0
    ]
    found = trace.violations(records, EVSE3)
    assert found == [trace.Violation(100, "site:L1", 33000, 32000)]
    # The physical check reads the draws instead.
    assert trace.violations(records, EVSE3, field="draw_ma") == []


def test_a_lowered_limit_counts_after_the_grace_a_raised_one_at_once() -> None:
    data = json.loads(json.dumps({"duration_s": 60, "site": EVSE3.site, "nodes": [
        {"id": n.id, "kind": "evse", **{k: v for k, v in n.load.items() if k != "id"}} for n in EVSE3.nodes],
        "events": [{"at_s": 10, "limit_ma": 20000}, {"at_s": 20, "limit_ma": 40000}]}))
    lowered = sc.parse(data)
    records = [
        *sample(10000, {"evse1": 11000, "evse2": 11000, "evse3": 10000}),  # the old limit holds for now
        *sample(10400, {"evse1": 11000, "evse2": 11000, "evse3": 10000}),
        *sample(10500, {"evse1": 7000, "evse2": 7000, "evse3": 7000}),  # 21 A: over the new 20 A
        *sample(15000, {"evse1": 6000, "evse2": 6000, "evse3": 6000}),
        *sample(20000, {"evse1": 16000, "evse2": 16000, "evse3": 6000}),  # 38 A: within the raised 40 A
    ]
    found = trace.violations(records, lowered, grace_ms=500)
    assert found == [trace.Violation(10500, "site:L1", 21000, 20000)]


def test_nested_circuits_are_checked_per_phase() -> None:
    base = {"evse1": 6000, "evse2": 6000, "evse3": 6000, "evse4": 6000, "evse5": 6000, "evse6": 6000}
    over_carport = {**base, "evse3": 17000}  # the carport is 16 A per phase; evse3 is on L1
    found = trace.violations(sample(0, base) + sample(100, over_carport), EVSE6)
    assert found == [trace.Violation(100, "circuit:carport:L1", 17000, 16000)]
    # evse1 and evse2 (L123, garage) at 16 A: the garage carries 16 + 16 + 6 (the carport's load on
    # that phase) = 38 A of 32 on every phase, and the site 38 + 6 (evse6) = 44 A of 35.
    over_garage = {**base, "evse1": 16000, "evse2": 16000}
    found = trace.violations(sample(0, over_garage), EVSE6)
    assert [(v.constraint, v.total_ma) for v in found] == [
        ("circuit:garage:L1", 38000), ("circuit:garage:L2", 38000), ("circuit:garage:L3", 38000),
        ("site:L1", 44000), ("site:L2", 44000), ("site:L3", 44000)]


def test_the_demo_table() -> None:
    rows = trace.table({
        "evse1": record(0, "evse1", 16000, 15960, state="C", peers=2, alive=True),
        "evse2": {**record(0, "evse2", 0), "failsafe": True, "alive": False, "peers": 0, "state": "B"},
    })
    assert rows == [
        "node             state   target  applied     draw peers failsafe",
        "evse1            C       16.0 A   16.0 A   16.0 A     2 no      ",
        "evse2            dead     0.0 A    0.0 A    0.0 A     0 yes     ",
    ]


@pytest.mark.parametrize(("about", "shown"), [
    ("Three EVSEs on 32 A. The second leaves.", "Three EVSEs on 32 A"),
    ("A 3.5 kW heater beside two cars", "A 3.5 kW heater beside two cars"),  # a decimal point is not a sentence
    ("One car charging on a long garage circuit behind a shared breaker and a meter node",
     "One car charging on a long garage circuit behind a shared…"),
    ("x" * 70, "x" * 59 + "…"),
])
def test_the_live_table_heads_with_the_first_sentence_cut_at_a_word(about: str, shown: str) -> None:
    assert command.title(about) == shown
    assert len(command.title(about)) <= command.TITLE_CHARS


def test_a_lowered_limit_counts_from_when_the_run_played_it(tmp_path: Path, device_root: Path) -> None:
    # The limit drops to 24 A at 5 s, but a loaded machine held the run loop back and it was played (PUT to the
    # nodes) at 7.3 s: at 7.1 s the nodes cannot have it yet, so 32 A then is not over it. Counted from the
    # scenario's 5 s (loadmesh sim's summary did), it was.
    from loadmesh.companion.sim.runner import Simulation

    from .simsite import three_evses

    scenario = three_evses(30, [{"at_s": 5, "limit_ma": 24000}, {"at_s": 20, "limit_ma": 28000}])
    sim = Simulation(scenario, tmp_path / "site", device_root=device_root)
    sim.played.append((7300, scenario.events[0]))
    played = sim.scenario_as_played()
    assert [event.at_ms for event in played.events] == [7300, 20000]  # the one not played yet: as written
    records = sample(7100, {"evse1": 16000, "evse2": 16000})
    assert trace.violations(records, scenario, grace_ms=2000) != []
    assert trace.violations(records, played, grace_ms=2000) == []
    assert trace.violations(sample(9400, {"evse1": 16000, "evse2": 16000}), played, grace_ms=2000) != []
