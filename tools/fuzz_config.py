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
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
KEY = bytes(range(32))


def _core(compiled: bool) -> ModuleType:
    from loadmesh.companion.paths import device_tree
    from loadmesh.companion.runtimes import load_compiled_core, load_pure_core

    tree = device_tree() / "py" / "lib" / "loadmesh" / "core"
    package = load_compiled_core(None) if compiled else load_pure_core(tree)
    for name in ("groupconfig", "configsync", "hmac256"):
        __import__(package.__name__ + "." + name)
    return package


def _sign(body: bytes) -> bytes:
    return body + hmac.new(KEY, body, hashlib.sha256).digest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--compiled", action="store_true")
    args = parser.parse_args()
    core = _core(args.compiled)
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
        buffer = bytearray(sealed if kind < 2 else text)
        for _ in range(rng.randint(1, 4)):
            action = rng.randrange(5)
            if action == 0 and buffer:
                bit = rng.randrange(len(buffer) * 8)
                buffer[bit // 8] ^= 1 << (bit % 8)
            elif action == 1 and buffer:
                buffer[rng.randrange(len(buffer))] = rng.randrange(256)
            elif action == 2 and buffer:
                del buffer[rng.randrange(len(buffer)):]
            elif action == 3:
                buffer += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
            else:
                cut = rng.randrange(len(buffer) + 1)
                buffer = buffer[:cut] + bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 8))) + buffer[cut:]
        data = bytes(buffer) if kind < 2 else _sign(b"LMC\x01" + bytes(buffer))
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
    sys.exit(main())
