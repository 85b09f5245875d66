"""A long fuzz run of the sealed-config decoder (not part of ./tools/test).

    .venv/bin/python tools/fuzz_config.py [--seconds 600] [--seed N] [--compiled]

Mutates sealed configs (bit flips, byte changes, cuts, extensions, splices),
re-signs mutated texts so that they reach the parser, and feeds random bytes;
checks on every input that configsync.open_sealed() returns a reason and
never raises, that nothing not signed with the key is accepted, and that a
config it accepts is exactly the text that was signed. Prints a count per
reason; exits 1 on the first failure with the input in hex.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import sys
import time
from collections import Counter

from benchkit import ROOT, cpython_core, mutate

KEY = bytes(range(32))


def _sign(body: bytes) -> bytes:
    return body + hmac.new(KEY, body, hashlib.sha256).digest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--compiled", action="store_true")
    args = parser.parse_args()
    core = cpython_core("cpython-compiled" if args.compiled else "cpython-pure")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    pads = core.hmac256.prepare(KEY)
    vector = json.loads((ROOT / "tests" / "vectors" / "groupconfig" / "hash_garage.json").read_text())
    config = core.groupconfig.parse(vector["input"]["config"])
    sealed = core.configsync.seal(pads, config)
    text = sealed[4:-32]
    counts: Counter[str] = Counter()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        kind = rng.randrange(4)
        buffer = mutate(sealed if kind < 2 else text, rng)
        data = buffer if kind < 2 else _sign(b"LMC\x01" + buffer)
        if kind == 3:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        try:
            reason, accepted = core.configsync.open_sealed(pads, "house", data)
        except Exception as exc:  # the contract: never raises
            print(f"seed {seed}: raised {type(exc).__name__}: {exc}\ninput: {data.hex()}")
            return 1
        signed = kind == 2 or data == sealed
        if accepted is not None and (not signed or core.groupconfig.canonical(accepted).encode() != data[4:-32]):
            print(f"seed {seed}: accepted what was not signed as it is\ninput: {data.hex()}")
            return 1
        counts[reason] += 1
    print(f"seed {seed}, {sum(counts.values())} inputs:", dict(sorted(counts.items())))
    return 0


if __name__ == "__main__":
    from loadmesh.companion.pipes import quiet_when_unread

    sys.exit(quiet_when_unread(main))  # `| head`: ends quietly when its reader goes away
