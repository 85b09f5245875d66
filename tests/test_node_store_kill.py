"""The store on the unix port (the simulator's nodes) when the node process is killed in the middle of its writes:
every file reads whole, old or new, and the boot counter never goes back (docs/firmware.md, "Persistence")."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from . import mpnode

pytestmark = pytest.mark.wallclock  # a node process killed against the wall clock: tools/test runs these apart

KILLS = 20


def test_a_node_killed_while_it_writes_leaves_every_file_whole(device_root: Path, tmp_path: Path) -> None:
    # No fsync, and none needed here: the unix port's file.write() is write(2), unbuffered, so what a write handed
    # over is the kernel's when the process dies, and a rename is atomic. A kill leaves at worst a part of a
    # NAME.tmp, which a read passes over and clean() removes. (A power cut of the computer is another matter.)
    rng = random.Random(29)
    used = 0  # the highest boot id a process was given (next_boot_id returned it): none may be given again
    torn = 0
    for kill in range(KILLS):
        writer = mpnode.NodeProcess("store_writer.py", str(tmp_path), device_root=device_root)
        try:
            ready = writer.expect(lambda line: "ready" in line)
            time.sleep(rng.uniform(0, 0.05))  # somewhere in the writes of the rounds that follow
        finally:
            writer.close()  # SIGKILL
        assert ready["ready"] > used, (kill, ready, used)
        torn += any(path.name.endswith(".tmp") for path in tmp_path.iterdir())
        config, cleaned, last, again = mpnode.run("store_check.py", str(tmp_path), mpnode.argfile(
            [["read_json", "config.json"], ["clean"], ["last"], ["read_json", "config.json"]]),
            device_root=device_root)[0]  # type: ignore[misc]
        assert config["state"] == "ok", (kill, config, sorted(path.name for path in tmp_path.iterdir()))
        value = config["value"]
        assert value == {"boot_id": value["boot_id"], "pad": "x" * (value["boot_id"] * 37 % 3000)}, kill
        used = value["boot_id"]  # written after next_boot_id gave it; the counter's two copies hold it or more
        assert used >= ready["ready"] and last["last"] >= used, (kill, ready, value, last)
        assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")], cleaned
        assert again == config
    print(f"{KILLS} kills, {torn} left a temp file behind")
