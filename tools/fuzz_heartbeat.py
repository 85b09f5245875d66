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
from types import ModuleType

from benchkit import cpython_core, mutate

from tests.heartbeats import KEY, SAMPLE, independent_encode, minimal


def _sign(body: bytes) -> bytes:
    return body + hmac.new(KEY, body, hashlib.sha256).digest()[:16]


def _seeds() -> list[bytes]:
    return [independent_encode(SAMPLE), independent_encode(minimal()),
            independent_encode(minimal(node="v", circuit="c", digest="", config_hash="", draw_ma=[None] * 3))]


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
    core = cpython_core("cpython-compiled" if args.compiled else "cpython-pure")
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
                data, signed = mutate(rng.choice(seeds), rng, seeds), False
            else:
                data, signed = _sign(mutate(rng.choice(seeds)[:-16], rng, seeds)), True
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
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
