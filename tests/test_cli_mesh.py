"""The mesh's commands: same bytes on every runtime, one-line errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .heartbeats import KEY, SAMPLE, independent_encode
from .test_cli import _run


def test_heartbeat_decode_same_bytes_on_every_runtime(device_root: Path, tmp_path: Path) -> None:
    request = tmp_path / "packets.json"
    good = independent_encode(SAMPLE)
    request.write_text(json.dumps({"key_hex": KEY.hex(), "group": "house", "packets": [good.hex(), good[:-1].hex()]}))
    outputs = set()
    for runtime in ("cpython", "micropython", "micropython-f32"):
        done = _run(device_root, "heartbeat-decode", "--runtime", runtime, str(request))
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
    results = json.loads(outputs.pop())["results"]
    assert results == [{"reason": "ok", "heartbeat": SAMPLE}, {"reason": "bad_tag", "heartbeat": None}]


def test_heartbeat_encode_prints_the_signed_bytes(device_root: Path, tmp_path: Path) -> None:
    request = tmp_path / "heartbeat.json"
    request.write_text(json.dumps({"key_hex": KEY.hex(), "heartbeat": SAMPLE}))
    done = _run(device_root, "heartbeat-encode", str(request))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"hex": independent_encode(SAMPLE).hex(), "bytes": 178}


@pytest.mark.parametrize("cli_runtime", ["cpython", "micropython-f32"])
@pytest.mark.parametrize(("command", "request_", "error"), [
    ("heartbeat-encode", {"key_hex": "00" * 8, "heartbeat": SAMPLE}, "key_hex: has 8 bytes; at least 16 are needed"),
    ("heartbeat-encode", {"key_hex": KEY.hex(), "heartbeat": dict(SAMPLE, applied_ma=-5)},
     "heartbeat.applied_ma: -5 is outside 0..1073741823"),
    ("heartbeat-decode", {"key_hex": KEY.hex(), "group": "house", "packets": ["zz"]}, "packets[0]: is not hex"),
    ("sensor", {"low": 0, "high": 10, "hold_ms": 0, "steps": []}, "sensor.hold_ms: 0 is outside 1..1073741823"),
    ("peers", {"key_hex": KEY.hex(), "group": "house", "own": "evse-0", "peer_timeout_ms": 3000,
               "base": SAMPLE, "steps": [{"t_ms": "soon"}]}, "steps[0].t_ms: must be an integer"),
    ("sensor", {"low": 0, "high": 10, "hold_ms": 1, "steps": [{"raw": 5}]}, "steps[0].t_ms: is missing"),
    # A step's own fields are named from the step, also those of the heartbeat it sends.
    ("peers", {"key_hex": KEY.hex(), "group": "house", "own": "evse-0", "peer_timeout_ms": 3000, "base": SAMPLE,
               "steps": [{"t_ms": 0}, {"t_ms": 1, "send": {"seq": 2}, "key_hex": "zz"}]},
     "steps[1].key_hex: is not hex"),
    ("peers", {"key_hex": KEY.hex(), "group": "house", "own": "evse-0", "peer_timeout_ms": 3000, "base": SAMPLE,
               "steps": [{"t_ms": 0}, {"t_ms": 1, "send": {"seq": "x"}}]},
     "steps[1].heartbeat.seq: \"x\" is not an integer"),
    ("peers", {"key_hex": KEY.hex(), "group": "house", "own": "evse-0", "peer_timeout_ms": 3000, "base": SAMPLE,
               "steps": [{"t_ms": 0}, 5]}, "steps[1]: must be an object"),
    # A misspelt key is named, not ignored (max_peers would silently take its default, a step do nothing).
    ("peers", {"key_hex": KEY.hex(), "group": "house", "own": "evse-0", "peer_timeout_ms": 3000, "base": SAMPLE,
               "max_peer": 2, "steps": []}, "max_peer: is not a known field"),
    ("peers", {"key_hex": KEY.hex(), "group": "house", "own": "evse-0", "peer_timeout_ms": 3000, "base": SAMPLE,
               "steps": [{"t_ms": 0, "sned": {"seq": 2}}]}, "steps[0].sned: is not a known field"),
    ("sensor", {"low": 0, "high": 10, "hold_ms": 5, "fast_rsie": True, "steps": []}, "fast_rsie: is not a known field"),
    ("sensor", {"low": 0, "high": 10, "hold_ms": 5, "steps": [{"t_ms": 0, "raw_": 5}]},
     "steps[0].raw_: is not a known field"),
    ("heartbeat-encode", {"key_hex": KEY.hex(), "heartbeat": SAMPLE, "hearbeat": {}}, "hearbeat: is not a known field"),
    ("heartbeat-decode", {"key_hex": KEY.hex(), "group": "house", "packets": [], "packet": ["00"]},
     "packet: is not a known field"),
])
def test_bad_input_is_one_line_naming_the_field(device_root: Path, tmp_path: Path, cli_runtime: str,
                                                command: str, request_: object, error: str) -> None:
    request = tmp_path / "bad.json"
    request.write_text(json.dumps(request_))
    done = _run(device_root, command, "--runtime", cli_runtime, str(request))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"loadmesh {command}: {request}: {error}\n"
