"""The group config: schema and checks, canonical hash, conflict resolution, conservative merge, sealed transport."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from .conftest import VECTORS_DIR

KEY = bytes(range(32))
GARAGE: dict[str, Any] = json.loads((VECTORS_DIR / "groupconfig" / "hash_garage.json").read_text())["input"]["config"]


def _config(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(GARAGE)
    raw.update(changes)
    return raw


def _canonical_by_cpython(config: dict[str, Any]) -> str:
    # An independent canonical form: CPython's json with sorted keys and no spaces (no floats, ASCII ids).
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def test_the_hash_vector_is_sha256_of_the_canonical_text() -> None:
    vector = json.loads((VECTORS_DIR / "groupconfig" / "hash_garage.json").read_text())
    result = vector["expect"]["ok"]
    canonical = result["canonical"]
    assert _canonical_by_cpython(json.loads(canonical)) == canonical
    assert result["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert result["announced"] == result["hash"][:16]
    parsed = json.loads(canonical)
    # Defaults filled in, circuits and members sorted by id, limits per phase.
    assert [member["id"] for member in parsed["members"]] == ["evse-1", "evse-2", "heater", "valve-bath"]
    assert parsed["circuits"] == [{"id": "garage", "parent": "site", "limit_ma": [20000, 20000, 20000]}]
    assert (parsed["heartbeat_ms"], parsed["peer_timeout_ms"], parsed["wdt_ms"], parsed["ev_lag_ms"]) == \
        (500, 3000, 2000, 5000)
    assert (parsed["antiflap_ms"], parsed["margin_ms"], parsed["ramp_ma"]) == (300000, 1000, 0)
    valve = parsed["members"][3]
    assert (valve["min_ma"], valve["max_ma"], valve["circuit"], valve["mode"]) == (0, 0, "site", "continuous")


def test_the_sealed_vector_is_the_documented_bytes() -> None:
    vector = json.loads((VECTORS_DIR / "groupconfig" / "seal.json").read_text())
    canonical = json.loads((VECTORS_DIR / "groupconfig" / "hash_garage.json").read_text())["expect"]["ok"]["canonical"]
    body = b"LMC\x01" + canonical.encode()
    expected = body + hmac.new(KEY, body, hashlib.sha256).digest()
    assert vector["expect"] == {"ok": {"hex": expected.hex(), "bytes": len(expected)}}


def test_parse_is_a_fixed_point(core: ModuleType) -> None:
    parsed = core.groupconfig.parse(GARAGE)
    again = core.groupconfig.parse(json.loads(core.groupconfig.canonical(parsed)))
    assert again == parsed


def test_a_valve_or_boiler_needs_no_phases_and_draws_nothing(core: ModuleType) -> None:
    site = {"phases": 3, "voltage_v": 230, "limit_ma": 25000, "safety_pct": 100}
    members = [{"id": "boiler", "kind": "boiler"}, {"id": "lounge", "kind": "valve"},
               {"id": "car", "kind": "evse", "phases": "L3", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}]
    parsed = core.groupconfig.parse(_config(site=site, circuits=[], members=members))
    assert [(member["id"], member["phases"], member["min_ma"], member["max_ma"]) for member in parsed["members"]] == \
        [("boiler", "L1", 0, 0), ("car", "L3", 6000, 16000), ("lounge", "L1", 0, 0)]
    # Said or left out, the same config: the same hash on every node.
    said = [dict(member, phases="L1") if member["kind"] != "evse" else member for member in members]
    assert core.groupconfig.parse(_config(site=site, circuits=[], members=said)) == parsed
    # A member that draws must still say where.
    car = {"id": "heater-x", "kind": "evse", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000}
    with pytest.raises(core.site.FieldError, match=r"members\[0\]\.phases"):
        core.groupconfig.parse(_config(members=[car]))


@given(st.permutations(range(4)))
def test_the_hash_does_not_depend_on_order(core: ModuleType, members: list[int]) -> None:
    shuffled = _config(members=[GARAGE["members"][index] for index in members])
    assert core.groupconfig.config_hash(core.groupconfig.parse(shuffled)) == \
        core.groupconfig.config_hash(core.groupconfig.parse(GARAGE))


@pytest.mark.parametrize(("change", "error"), [
    # timing: three heartbeats per timeout; the watchdog within the timeout
    # (a bound that is another field is named with it: "out of range 100..3000" did not say the 3000 was
    # peer_timeout_ms)
    ({"heartbeat_ms": 1000, "peer_timeout_ms": 2999},
     "peer_timeout_ms: 2999 is below 3000, three times heartbeat_ms 1000"),
    ({"peer_timeout_ms": 100}, "peer_timeout_ms: 100 is below 1500, three times heartbeat_ms 500"),
    ({"peer_timeout_ms": 60001}, "peer_timeout_ms: 60001 is out of range 1500..60000"),
    ({"peer_timeout_ms": True}, "peer_timeout_ms: true is not an integer"),
    ({"heartbeat_ms": 50}, "heartbeat_ms: 50 is out of range 100..10000"),
    ({"wdt_ms": 3001}, "wdt_ms: 3001 is above peer_timeout_ms 3000"),
    ({"wdt_ms": 5000, "peer_timeout_ms": 4000}, "wdt_ms: 5000 is above peer_timeout_ms 4000"),
    ({"wdt_ms": 99}, "wdt_ms: 99 is out of range 100..3000"),
    ({"wdt_ms": "5000"}, "wdt_ms: \"5000\" is not an integer"),
    ({"ev_lag_ms": -1}, "ev_lag_ms: -1 is out of range 0..60000"),
    ({"antiflap_ms": True}, "antiflap_ms: true is not an integer"),
    # identity
    ({"group": "my house"}, "group: \"my house\" is not an id (use letters, digits, '-', '_' and '.')"),
    ({"group": "g" * 17}, "group: \"" + "g" * 17 + "\" is not an id of 1 to 16 characters"),
    ({"version": -1}, "version: -1 is out of range 0..1073741823"),
    ({"origin": None}, "origin: null is not an id of 1 to 64 characters"),
    ({"failsafe": {"mode": "off"}}, "failsafe.mode: \"off\" is not one of safe_current|disable"),
    ({"failsafe": {"current_ma": 6000, "amps": 6}}, "failsafe.amps: is not a known field"),
    ({"members": "evse-1"}, "members: \"evse-1\" is not a list"),
    ({"members": [{"id": "a", "kind": "charger", "phases": "L1"}]},
     "members[0].kind: \"charger\" is not one of evse|valve|boiler|relay"),
    ({"members": [{"id": "a", "kind": "evse", "phases": "L1", "min_ma": 6000, "max_ma": 16000}]},
     "members[0].step_ma: is missing"),  # an EVSE states its steps
    ({"members": [{"id": "a", "kind": "valve", "phases": "L1", "failsafe_ma": -1}]},
     "members[0].failsafe_ma: -1 is out of range 0..1000000"),
    ({"circuits": [{"id": "garage", "parent": "site", "limit_ma": 20000},
                   {"id": "a-very-long-circuit", "parent": "site", "limit_ma": 16000}]},
     "circuits[1].id: \"a-very-long-circuit\" is longer than 16 characters (ids travel in heartbeats)"),
    ({"circuits": [{"id": "garage", "parent": "barn", "limit_ma": 16000}]},
     "circuits[0].parent: \"barn\" is not a circuit"),
])
def test_a_bad_config_is_named(core: ModuleType, change: dict[str, Any], error: str) -> None:
    with pytest.raises(core.errors.FieldError) as raised:
        core.groupconfig.parse(_config(**change))
    assert str(raised.value) == error


def test_every_member_at_its_failsafe_current_must_fit(core: ModuleType) -> None:
    # 6 A x 2 chargers on the garage's 18 A fits; at 10 A each it does not.
    core.groupconfig.parse(_config(failsafe={"mode": "safe_current", "current_ma": 9000}))
    with pytest.raises(core.errors.FieldError) as raised:
        core.groupconfig.parse(_config(failsafe={"mode": "safe_current", "current_ma": 10000}))
    assert raised.value.field == "failsafe"
    assert "circuit:garage:L1 carries 20000 mA, above its 18000 mA" in raised.value.problem
    # A member's own failsafe current counts; disable always fits.
    members = [dict(member, failsafe_ma=0) if member["id"] == "evse-2" else member for member in GARAGE["members"]]
    core.groupconfig.parse(_config(members=members, failsafe={"mode": "safe_current", "current_ma": 16000}))
    core.groupconfig.parse(_config(failsafe={"mode": "disable", "current_ma": 32000}))


@pytest.mark.parametrize(("a", "b", "winner"), [
    ({"version": 5}, {"version": 4, "updated_at": 1800000000}, 0),  # the higher version, whatever its time
    ({"version": 4, "updated_at": 1700000001, "key_id": "k2"}, {"version": 4}, 0),  # same version: the later
    ({"origin": "evse-1", "key_id": "k2"}, {"origin": "companion"}, 1),  # same time: the lower origin id
    ({}, {"members": list(reversed(GARAGE["members"]))}, 0),  # the same config: the first
])
def test_conflict_resolution(core: ModuleType, a: dict[str, Any], b: dict[str, Any], winner: int) -> None:
    configs = [core.groupconfig.parse(_config(**a)), core.groupconfig.parse(_config(**b))]
    assert core.configsync.winner(configs) == winner
    assert core.configsync.winner(list(reversed(configs))) == (1 - winner if configs[0] != configs[1] else 0)


def test_the_same_version_same_time_same_origin_is_still_decided(core: ModuleType) -> None:
    a = core.groupconfig.parse(_config(key_id="k2"))
    b = core.groupconfig.parse(_config(key_id="k3"))
    assert core.configsync.compare(a, b) == -core.configsync.compare(b, a) != 0


def test_the_conservative_merge_takes_the_smallest_limits(core: ModuleType) -> None:
    a = core.groupconfig.parse(GARAGE)
    site = dict(GARAGE["site"], limit_ma=[40000, 20000, 40000], safety_pct=100, import_limit_w=11000)
    b = core.groupconfig.parse(_config(version=5, site=site, ev_lag_ms=3000, antiflap_ms=600000))
    merged = core.configsync.conservative([a, b])
    assert merged["version"] == 5  # the winner's identity and structure
    assert merged["site"]["limit_ma"] == [32000, 20000, 25000]
    assert (merged["site"]["safety_pct"], merged["site"]["import_limit_w"]) == (90, 11000)
    assert (merged["ev_lag_ms"], merged["antiflap_ms"]) == (5000, 600000)
    assert merged == core.groupconfig.parse(merged)  # a valid config like any other
    assert core.configsync.conservative([a, a]) == a


def _seal(body: bytes, key: bytes = KEY) -> bytes:
    return body + hmac.new(key, body, hashlib.sha256).digest()


def test_open_sealed_round_trip_and_reasons(core: ModuleType) -> None:
    pads = core.hmac256.prepare(KEY)
    config = core.groupconfig.parse(GARAGE)
    sealed = core.configsync.seal(pads, config)
    assert sealed == _seal(b"LMC\x01" + core.groupconfig.canonical(config).encode())
    assert core.configsync.open_sealed(pads, "house", sealed) == ("ok", config)
    assert core.configsync.open_sealed(pads, "house", memoryview(bytearray(sealed))) == ("ok", config)
    assert core.configsync.open_sealed(pads, "flat", sealed) == ("wrong_group", None)
    assert core.configsync.open_sealed(pads, "house", "text") == ("not_bytes", None)
    assert core.configsync.open_sealed(pads, "house", b"LMC\x01" + b" " * 20000) == ("too_long", None)
    assert core.configsync.open_sealed(pads, "house", _seal(b"LMC\x02{}")) == ("bad_format", None)
    assert core.configsync.open_sealed(pads, "house", _seal(b"LMC\x01\xff\xfe")) == ("bad_json", None)
    assert core.configsync.open_sealed(pads, "house", _seal(b"LMC\x01" + b"[" * 5000)) == ("bad_json", None)


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_random_bytes_are_never_accepted(core: ModuleType, data: bytes) -> None:
    reason, config = core.configsync.open_sealed(core.hmac256.prepare(KEY), "house", data)
    assert config is None and reason in ("truncated", "bad_magic", "bad_format", "bad_tag")


@settings(max_examples=300)
@given(st.data())
def test_a_modified_sealed_config_is_never_accepted(core: ModuleType, data: st.DataObject) -> None:
    pads = core.hmac256.prepare(KEY)
    original = core.configsync.seal(pads, core.groupconfig.parse(GARAGE))
    sealed = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        index = data.draw(st.integers(0, len(sealed) - 1), label="index")
        sealed[index] ^= data.draw(st.integers(1, 255), label="xor")
    cut = data.draw(st.integers(0, len(sealed)), label="cut")
    assume(bytes(sealed[:cut]) != original)  # two changes of one byte can cancel out
    reason, config = core.configsync.open_sealed(pads, "house", bytes(sealed[:cut]))
    assert config is None
    assert reason in ("truncated", "bad_magic", "bad_format", "bad_tag")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=400)
@given(json_values)
def test_any_signed_json_is_refused_or_accepted_without_raising(core: ModuleType, value: object) -> None:
    # What a key holder with a bug might send: parse() only ever raises FieldError, which becomes a reason.
    sealed = _seal(b"LMC\x01" + json.dumps(value).encode())
    reason, config = core.configsync.open_sealed(core.hmac256.prepare(KEY), "house", sealed)
    assert (reason == "ok") == (config is not None)
    assert reason in ("ok", "bad_json", "bad_field", "not_canonical", "wrong_group")


@settings(max_examples=300)
@given(st.data())
def test_signed_mutations_of_a_valid_config_never_escape(core: ModuleType, data: st.DataObject) -> None:
    text = bytearray(core.groupconfig.canonical(core.groupconfig.parse(GARAGE)).encode())
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        index = data.draw(st.integers(0, len(text) - 1), label="index")
        text[index] = data.draw(st.integers(0, 255), label="byte")
    reason, config = core.configsync.open_sealed(core.hmac256.prepare(KEY), "house", _seal(b"LMC\x01" + bytes(text)))
    assert (reason == "ok") == (config is not None)
    if config is not None:  # whatever is accepted is exactly what was signed, and valid
        assert core.groupconfig.canonical(config).encode() == bytes(text)


def test_node_facts_refuse_a_stranger(core: ModuleType) -> None:
    with pytest.raises(core.errors.FieldError, match=r"^node: \"barn\" is not a member of the group$"):
        core.groupconfig.node_facts(core.groupconfig.parse(GARAGE), "barn")


_MEMBER = st.fixed_dictionaries({
    "kind": st.sampled_from(["evse", "evse", "relay", "valve"]), "circuit": st.sampled_from(["site", "garage", "shed"]),
    "phases": st.sampled_from(["L1", "L2", "L123"]), "min_ma": st.sampled_from([2000, 6000]),
    "max_ma": st.sampled_from([6000, 16000, 32000]), "step_ma": st.sampled_from([100, 1000]),
    "priority": st.integers(-2, 2), "mode": st.sampled_from(["continuous", "solar_priority", "excess"])})
_LIMITS = st.fixed_dictionaries({"site": st.sampled_from([6000, 12000, 20000, 25000, 40000, 63000]),
                                 "garage": st.sampled_from([4000, 8000, 16000, 30000]),
                                 "shed": st.sampled_from([2000, 6000, 10000]), "safety": st.sampled_from([80, 100])})


def _shared_site(members: list[dict[str, Any]], limits: dict[str, int]) -> dict[str, Any]:
    """A three-phase site with a garage and a shed inside it; members as drawn (a relay switches 2 A)."""
    listed = []
    for index, drawn in enumerate(members):
        member = dict(drawn, id="m" + str(index))
        if member["kind"] == "relay":
            member["min_ma"] = member["max_ma"] = 2000
        if member["kind"] == "valve":
            for key in ("min_ma", "max_ma", "step_ma"):
                del member[key]
        listed.append(member)
    return _config(site={"phases": 3, "voltage_v": 230, "limit_ma": limits["site"], "safety_pct": limits["safety"]},
                   circuits=[{"id": "garage", "parent": "site", "limit_ma": limits["garage"]},
                             {"id": "shed", "parent": "garage", "limit_ma": limits["shed"]}],
                   members=listed, failsafe={"mode": "disable", "current_ma": 0})


@settings(max_examples=300)
@given(st.lists(_MEMBER, min_size=1, max_size=8), st.lists(_LIMITS, min_size=1, max_size=3), st.data())
def test_any_mixture_of_configs_keeps_transition_shares_within_the_widest(
        core: ModuleType, members: list[dict[str, Any]], limits: list[dict[str, int]], data: st.DataObject) -> None:
    # Configs over the same members and circuits with different limits, each
    # running on some of the nodes: on every constraint the transition shares
    # together stay within the largest capacity among the configs running.
    configs = [core.groupconfig.parse(_shared_site(members, each)) for each in limits]
    shares = [core.groupconfig.transition_share_ma(config) for config in configs]
    running = data.draw(st.lists(st.integers(0, len(configs) - 1), min_size=len(members), max_size=len(members)))
    mixture = {"m" + str(index): shares[which]["m" + str(index)] for index, which in enumerate(running)}
    widest: dict[tuple[str, str], int] = {}
    for which in set(running):
        for name, capacity, ids in core.groupconfig.capacities(configs[which]):
            key = (name, ",".join(ids))
            widest[key] = max(widest.get(key, 0), capacity)
    for (name, ids), capacity in widest.items():
        assert sum(mixture[load_id] for load_id in ids.split(",") if load_id) <= capacity, name
    # Each share is on its member's lattice, and where every minimum fits, every member gets its minimum.
    for config, by_id in zip(configs, shares, strict=True):
        minimums_fit = all(capacity >= sum(member["min_ma"] for member in config["members"]
                                           if member["id"] in ids and member["max_ma"] > 0)
                           for _name, capacity, ids in core.groupconfig.capacities(config))
        for member in config["members"]:
            share = by_id[member["id"]]
            assert share == core.groupconfig.lattice_ma(member, share)
            if minimums_fit and member["max_ma"] > 0:
                assert share >= member["min_ma"], (member, share)


@settings(max_examples=300)
@given(st.lists(_MEMBER, min_size=1, max_size=8), _LIMITS, st.sampled_from(["site", "garage", "shed", "safety"]))
def test_a_wider_limit_never_lowers_a_transition_share(core: ModuleType, members: list[dict[str, Any]],
                                                       limits: dict[str, int], wider: str) -> None:
    raised = dict(limits, **{wider: limits[wider] + (20 if wider == "safety" else 5000)})
    raised["safety"] = min(raised["safety"], 100)
    before = core.groupconfig.transition_share_ma(core.groupconfig.parse(_shared_site(members, limits)))
    after = core.groupconfig.transition_share_ma(core.groupconfig.parse(_shared_site(members, raised)))
    assert all(after[member_id] >= share for member_id, share in before.items()), (before, after)
