"""A long fuzz run of the heartbeat decoder (not part of ./tools/test).

    .venv/bin/python tools/fuzz_heartbeat.py [--seconds 600] [--seed N] [--compiled]

Mutates valid heartbeats (bit flips, byte changes, cuts, extensions, splices)
and random bytes, and checks on every input that:
  - decode() returns (reason, None) or ("ok", heartbeat), never raises;
  - nothing that was not signed with the key is accepted;
  - anything accepted after re-signing a mutated body encodes back and decodes
    to the same heartbeat (the parser accepts only what the encoder can write).
Signed mutations reach the parser behind the tag; unsigned ones test the
checks in front of it. Prints a count per reason; exits 1 on the first failure
with the input in hex.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.heartbeats import KEY, SAMPLE, independent_encode, minimal  # noqa: E402


def _sign(body: bytes) -> bytes:
    return body + hmac.new(KEY, body, hashlib.sha256).digest()[:16]


def _seeds() -> list[bytes]:
    return [independent_encode(SAMPLE), independent_encode(minimal()),
            independent_encode(minimal(node="v", circuit="c", digest="", config_hash="", draw_ma=[None] * 3))]


def _mutate(data: bytes, rng: random.Random, seeds: list[bytes]) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(6)
        if action == 0 and buffer:
            bit = rng.randrange(len(buffer) * 8)
            buffer[bit // 8] ^= 1 << (bit % 8)
        elif action == 1 and buffer:
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
        elif action == 2 and buffer:
            del buffer[rng.randrange(len(buffer)):]
        elif action == 3:
            buffer += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        elif action == 4:
            other = rng.choice(seeds)
            cut = rng.randrange(len(other))
            buffer = buffer[:cut] + other[cut:]
        else:
            position = rng.randrange(len(buffer) + 1)
            buffer[position:position] = bytes([rng.choice((0, 1, 2, 0x7F, 0x80, 0xFF))] * rng.randint(1, 4))
    return bytes(buffer)


def _check(core: ModuleType, pads: tuple[bytes, bytes], data: bytes, signed: bool, counts: Counter[str]) -> None:
    try:
        reason, message = core.heartbeat.decode(pads, "house", data)
    except Exception as exc:
        raise AssertionError(f"decode raised {exc!r}") from exc
    counts[reason] += 1
    if (message is None) == (reason == "ok"):
        raise AssertionError(f"reason {reason} with heartbeat {message!r}")
    if reason == "ok":
        if not signed and data not in _SEEDS:
            raise AssertionError("an unsigned mutation was accepted")
        again = core.heartbeat.encode(pads, message)
        if core.heartbeat.decode(pads, "house", again) != ("ok", message):
            raise AssertionError("an accepted heartbeat does not survive encode and decode")


_SEEDS = set(_seeds())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--compiled", action="store_true", help="fuzz the installed, compiled core")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    if args.compiled:
        import loadmesh.core as core
        import loadmesh.core.heartbeat  # noqa: F401
    else:
        from loadmesh.companion.paths import device_tree
        from loadmesh.companion.runtimes import load_pure_core
        core = load_pure_core(device_tree() / "py" / "lib" / "loadmesh" / "core")
    pads = core.heartbeat.prepare_key(KEY)
    seeds = _seeds()
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + args.seconds
    runs = 0
    while time.monotonic() < deadline:
        for _ in range(1000):
            kind = rng.randrange(3)
            if kind == 0:
                data, signed = bytes(rng.randrange(256) for _ in range(rng.randint(0, 600))), False
            elif kind == 1:
                data, signed = _mutate(rng.choice(seeds), rng, seeds), False
            else:
                data, signed = _sign(_mutate(rng.choice(seeds)[:-16], rng, seeds)), True
            try:
                _check(core, pads, data, signed, counts)
            except AssertionError as exc:
                print(f"FAILED (seed {seed}, run {runs}): {exc}\ninput: {data.hex()}", file=sys.stderr)
                return 1
            runs += 1
    print(f"heartbeat fuzz: {runs} inputs in {args.seconds:g} s, seed {seed}, "
          f"{'compiled' if args.compiled else 'pure'} core, no failure")
    for reason, count in sorted(counts.items()):
        print(f"{reason:>12}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
