"""Config on running nodes: a lowered limit pushed to all, newer and older configs, forgeries, fetch from a peer."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from loadmesh.companion.sim import groupcfg, trace
from loadmesh.companion.sim.scenario import Event
from loadmesh.core import configsync, groupconfig

from .simsite import SITE, at_allocation, expected, field, last_before, samples, simulation, three_evses

pytestmark = pytest.mark.wallclock  # nodes against the wall clock: tools/test runs these in their own lane

ALL = {"evse1": True, "evse2": True, "evse3": True}


def test_configs_are_adopted_when_newer_refused_otherwise_and_fetched_from_a_peer(tmp_path: Path,
                                                                                 device_root: Path) -> None:
    lowered_ms = 5000
    scenario = three_evses(30, [{"at_s": lowered_ms / 1000, "limit_ma": 24000}])
    with simulation(scenario, tmp_path, device_root) as sim:
        sim.run(10000)
        found = samples(sim)
        # The lowered limit (version 2, PUT to every node at 5 s) holds once the nodes have it: counted from when
        # the simulator PUT it, which a loaded machine can hold back (the nodes cannot lower before they have it).
        assert trace.violations(list(sim.records), sim.scenario_as_played(), grace_ms=2000) == []
        at_24a = expected(scenario, ALL, limit_ma=24000)
        assert sum(at_24a.values()) == 24000
        assert at_allocation(found[-1][1], at_24a), field(found[-1][1], "applied_ma")
        assert at_allocation(last_before(found, lowered_ms), expected(scenario, ALL))
        for node in sim.nodes:
            status = sim.status(node)
            assert status is not None and status["config"]["version"] == 2  # type: ignore[index]

        version_1, version_2 = (config for _, config in sim.configs)
        sealed_2 = configsync.seal(sim.pads, version_2)
        tampered = bytearray(sealed_2)
        tampered[40] ^= 0x20  # a character of the config text: the tag no longer matches
        cases = [
            # (body, token, status, answer or error start)
            (configsync.seal(sim.pads, version_1), True, 400, "config: version 1 does not win over the adopted "
                                                              "version 2"),
            (sealed_2, True, 200, {"adopted": False, "reason": "same", "version": 2,
                                   "announced": groupconfig.announced(version_2)}),
            (sealed_2.hex().encode(), True, 200, {"adopted": False, "reason": "same", "version": 2,
                                                  "announced": groupconfig.announced(version_2)}),
            (bytes(tampered), True, 400, "config: refused: bad_tag"),
            (b"LMC\x01{}" + bytes(32), True, 400, "config: refused: bad_tag"),
            (b"a config", True, 400, "config: is neither sealed bytes nor their hex (loadmesh config-seal)"),
            (sealed_2, False, 401, "a PUT needs a signed request (Authorization: LoadMesh-HMAC boot, n, mac; "
                                   "loadmesh put signs)"),
        ]
        for body, token, status, answer in cases:
            got_status, got = sim.request("evse1", "PUT", "/config", body, token=token)
            assert got_status == status, (body[:12], got)
            assert got == answer if isinstance(answer, dict) else got == {"error": answer}, got

        # Version 3 (28 A) reaches evse1 alone; evse2 and evse3 see it announced in evse1's heartbeats,
        # fetch it over evse1's HTTP API, check its seal and adopt it.
        version_3 = groupconfig.parse(groupcfg.raw_config(scenario, 3, {**SITE, "limit_ma": 28000}))
        raised_ms = sim.now_ms()
        assert sim.put_config(version_3, ["evse1"])["evse1"]["adopted"] is True
        deadline = time.monotonic() + 15
        versions: dict[str, object] = {}
        while time.monotonic() < deadline:
            statuses = {node: sim.status(node) for node in sim.nodes}
            versions = {node: (s or {}).get("config", {}).get("version") for node, s in statuses.items()}
            if set(versions.values()) == {3}:
                break
            time.sleep(0.2)
        assert versions == {"evse1": 3, "evse2": 3, "evse3": 3}
        for node in ("evse2", "evse3"):
            status = sim.status(node)
            assert status is not None and status["config"]["fetched"] >= 1  # type: ignore[index]
        started = sim.now_ms()
        sim.run(started + 4000)
        found = samples(sim)
        assert at_allocation(found[-1][1], expected(scenario, ALL, limit_ma=28000)), field(found[-1][1], "applied_ma")
        # Never over the limit in force: 24 A until version 3 raises it to 28 A.
        played = sim.scenario_as_played()
        with_raise = dataclasses.replace(played, events=(*played.events, Event(raised_ms, "limit_ma", [28000])))
        assert trace.violations(list(sim.records), with_raise, grace_ms=2000) == []


def test_a_member_removed_by_a_config_is_held_for_until_it_has_left(tmp_path: Path, device_root: Path) -> None:
    # The config that removes evse3 reaches evse1 and evse2; evse3, still charging on the old one, fetches
    # it from them and leaves. Until it has been silent for peer_timeout + ev_lag + margin, nobody raises
    # into the share its car may still draw.
    scenario = three_evses(40, [])
    with simulation(scenario, tmp_path, device_root) as sim:
        sim.run(4000)
        members = [member for member in sim.config["members"] if member["id"] != "evse3"]  # type: ignore[union-attr]
        removed = dict(sim.config, members=members, version=int(sim.config["version"]) + 1)  # type: ignore[call-overload]
        answers = sim.put_config(groupconfig.parse(removed), ["evse1", "evse2"])
        assert [answers[node]["adopted"] for node in ("evse1", "evse2")] == [True, True]
        deadline = time.monotonic() + 5
        status = sim.status("evse1")
        while time.monotonic() < deadline and status is not None and status["reason"] != "hold":
            time.sleep(0.1)
            status = sim.status("evse1")
        # Its target is 16 A now, but it holds (evse3 is still heard drawing, or not yet silent long enough).
        assert status is not None and status["departed"] == ["evse3"] and status["target_ma"] == 16000, status
        assert status["reason"] == "hold" and status["applied_ma"] < 16000, status
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (sim.status("evse3") or {}).get("state") != "left_out":
            time.sleep(0.2)
        assert (sim.status("evse3") or {}).get("state") == "left_out"
        sim.run(sim.now_ms() + 12000)
        found = samples(sim)
        assert at_allocation(found[-1][1], {"evse1": 16000, "evse2": 16000}), field(found[-1][1], "applied_ma")
        for node in ("evse1", "evse2"):
            status = sim.status(node)
            assert status is not None and status["departed"] == [], status
        assert trace.violations(list(sim.records), scenario, field="draw_ma") == []
