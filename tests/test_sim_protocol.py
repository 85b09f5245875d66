"""The simulated HAL's wire protocol and the hub's fault model, on the host."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmesh.companion import nodeimage
from loadmesh.companion.paths import SetupError
from loadmesh.companion.sim.hub import Hub
from loadmesh.node import simproto

ROOT = Path(__file__).resolve().parent.parent
node_ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16)
i32 = st.integers(min_value=-0x7FFFFFFF, max_value=0x7FFFFFFF)
maybe = st.one_of(st.none(), i32)


@given(node_ids, st.integers(0, 0x3FFFFFFF), st.integers(0, 15), st.integers(0, 1000), st.integers(0, 100),
       st.one_of(st.none(), st.integers(-100, 1600)), i32, i32, i32, st.integers(0, 400))
def test_a_command_round_trips(node: str, seq: int, flags: int, pilot_permille: int, valve_pct: int,
                               setpoint_dc: int | None, applied_ma: int, target_ma: int, mem_alloc: int,
                               peers: int) -> None:
    buffer = simproto.new_buffer()
    size = simproto.encode_command(buffer, node, seq, flags, pilot_permille, valve_pct, setpoint_dc, applied_ma,
                                   target_ma, mem_alloc, peers)
    # A setpoint outside 0..150 deg C goes out as not driven, never as another setpoint.
    sent = simproto.SETPOINT_NONE if setpoint_dc is None or not 0 <= setpoint_dc <= 1500 else setpoint_dc
    assert simproto.decode_command(bytes(buffer[:size])) == (
        node, (seq, flags, pilot_permille, valve_pct, sent, applied_ma, target_ma, mem_alloc, min(peers, 255)))


@given(node_ids, st.sampled_from(["", "A", "B", "C", "D", "E", "F"]), st.integers(0, 7),
       st.one_of(st.none(), st.integers(0, 100)), st.lists(maybe, min_size=3, max_size=3),
       st.lists(maybe, min_size=3, max_size=3), st.integers(0, 0x3FFFFFFF), st.integers(0, 0x3FFFFFFF),
       st.lists(maybe, min_size=4, max_size=4), st.integers(-1, 604799999))
def test_readings_round_trip(node: str, state: str, flags: int, valve: int | None, current: list[int | None],
                             meter: list[int | None], meter_seq: int, age_ms: int, temps: list[int | None],
                             week_ms: int) -> None:
    buffer = simproto.new_buffer()
    size = simproto.encode_readings(buffer, node, 7, state, flags, valve, current, meter, meter_seq, age_ms,
                                    temps, week_ms)
    decoded = simproto.decode_readings(bytes(buffer[:size]))
    assert decoded is not None and decoded[0] == node
    body = decoded[1]
    assert (chr(body[1]) if body[1] else "") == state
    assert (None if body[3] == simproto.VALVE_UNKNOWN else body[3]) == valve
    assert [simproto.known(v) for v in body[4:7]] == current
    assert [simproto.known(v) for v in body[7:10]] == meter
    assert (body[10], body[11]) == (meter_seq, age_ms)
    assert [simproto.known(v) for v in body[12:16]] == temps
    assert body[16] == week_ms


@given(st.binary(max_size=200))
def test_decoding_never_raises(data: bytes) -> None:
    # Anything that is not a whole, well-formed datagram is None, never an exception.
    for decode in (simproto.decode_command, simproto.decode_readings):
        result = decode(data)
        assert result is None or isinstance(result[0], str)


def test_a_cut_datagram_is_refused() -> None:
    buffer = simproto.new_buffer()
    size = simproto.encode_command(buffer, "ev", 1, 1, 266, 0, None, 16000, 16000, 100, 2)
    whole = bytes(buffer[:size])
    for cut in range(size):
        assert simproto.decode_command(whole[:cut]) is None
    assert simproto.decode_command(whole + b"\x00") is None
    assert simproto.decode_readings(whole) is None  # a command is not readings
    # A setpoint field above 150 deg C that is not "not driven" is not a command.
    setpoint_at = size - 15
    assert whole[setpoint_at:setpoint_at + 2] == b"\xff\xff"
    assert simproto.decode_command(whole[:setpoint_at] + b"\x05\xdd" + whole[setpoint_at + 2:]) is None
    assert simproto.decode_command(whole[:setpoint_at] + b"\x05\xdc" + whole[setpoint_at + 2:]) is not None


def test_the_hub_drops_cuts_delays_and_duplicates() -> None:
    hub = Hub({"a": 50001, "b": 50002, "c": 50003}, seed=3)
    try:
        assert sorted(r for _, r in hub.forward(b"x", 50001, 10.0)) == ["b", "c"]
        assert sorted(r for _, r in hub.forward(b"x", 40000, 10.0)) == ["a", "b", "c"]  # a stranger: everyone
        hub.isolate("b")
        assert [r for _, r in hub.forward(b"x", 50001, 10.0)] == ["c"]
        assert hub.forward(b"x", 50002, 10.0) == []  # nothing from b
        hub.heal("b")
        hub.set_loss(100)
        assert hub.forward(b"x", 50001, 10.0) == []
        hub.set_loss(0)
        hub.set_delay(100, 50, 100)  # every copy twice, each 100 to 150 ms late
        copies = hub.forward(b"x", 50001, 10.0)
        assert sorted(r for _, r in copies) == ["b", "b", "c", "c"]
        assert all(10.1 <= due <= 10.15 for due, _ in copies)
        counts = hub.counts
        assert (counts.received, counts.cut, counts.lost, counts.duplicated) == (6, 3, 2, 2)
        with pytest.raises(ValueError):
            hub.set_loss(101)
        with pytest.raises(KeyError):
            hub.isolate("zz")
    finally:
        hub.stop()


def test_a_stale_node_image_is_refused(device_root: Path, tmp_path: Path) -> None:
    assert nodeimage.node_binary(device_root, ROOT).is_file()
    changed = tmp_path / "device"
    shutil.copytree(device_root / "py", changed / "py")
    clock = changed / "py" / "lib" / "loadmesh" / "node" / "clock.py"
    clock.write_text(clock.read_text() + "\n# changed\n")
    with pytest.raises(SetupError,
                       match=r"older than the firmware \(or the tests' fakes it freezes\): run \./tools/setup"):
        nodeimage.node_binary(changed, ROOT)
