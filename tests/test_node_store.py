"""Persistence on the unix port with real files: atomic writes, torn writes, garbage, and the boot counter."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import mpnode


def store(device_root: Path, folder: Path, *ops: list[object]) -> list[dict[str, object]]:
    """Run ops in one node process (one boot) on the store in folder; their results."""
    out = mpnode.run("store_check.py", str(folder), mpnode.argfile(list(ops)), device_root=device_root)
    assert len(out) == 1 and isinstance(out[0], list)
    return out[0]


def test_boot_id_rises_at_every_boot(device_root: Path, tmp_path: Path) -> None:
    store(device_root, tmp_path, ["floor", 0])  # a count vouched for, as adoption or node-files leave it
    boots = [store(device_root, tmp_path, ["boot"])[0] for _ in range(3)]
    assert [b["boot_id"] for b in boots] == [1, 2, 3]
    assert [b["boot_state"] for b in boots] == ["ok", "ok", "ok"]


def test_a_count_started_from_nothing_stays_reset_until_a_floor_is_vouched_for(device_root: Path,
                                                                               tmp_path: Path) -> None:
    # No counter on the first boot: the count starts, and says it did, at every later boot too: those boot ids
    # may be ones the node had before (a PUT signed for one would be taken again).
    boots = [store(device_root, tmp_path, ["boot"])[0] for _ in range(3)]
    assert boots == [{"boot_id": n, "boot_state": "reset"} for n in (1, 2, 3)]
    assert (tmp_path / "boot.b").read_bytes().endswith(b"\n3 reset")
    # Adoption's floor, even one below the count, vouches for it and keeps it.
    floor, boot = store(device_root, tmp_path, ["floor", 2], ["boot"])
    assert floor == {"boot_state": "ok"} and boot == {"boot_id": 4, "boot_state": "ok"}


def test_node_files_boot_a_vouches_for_the_count_only_above_a_lost_one(device_root: Path, tmp_path: Path) -> None:
    for _ in range(5):
        store(device_root, tmp_path, ["boot"])
    # node-files writes boot.a alone, as plain digits (companion/nodefiles.py); one at or below the count the node
    # reached since it lost its counter leaves it reset, one above clears it.
    store(device_root, tmp_path, ["write", "boot.a", "5"])
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot == {"boot_id": 6, "boot_state": "reset"}
    store(device_root, tmp_path, ["write", "boot.a", "900"])
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot == {"boot_id": 901, "boot_state": "ok"}
    # --boot-floor 0 on a fresh node: 0 is a count, the first boot id 1.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    store(device_root, fresh, ["write", "boot.a", "0"])
    (boot,) = store(device_root, fresh, ["boot"])
    assert boot == {"boot_id": 1, "boot_state": "ok"}


def test_a_fresh_node_is_unadopted(device_root: Path, tmp_path: Path) -> None:
    key, config = store(device_root, tmp_path, ["read_key"], ["read_json", "config.json"])
    assert key == {"key": None, "state": "missing"}
    assert config == {"value": None, "state": "missing"}


def test_config_and_key_round_trip(device_root: Path, tmp_path: Path) -> None:
    config = {"group": "home", "version": 3, "members": ["a", "b"]}
    key_hex = bytes(range(32)).hex()
    store(device_root, tmp_path, ["write_json", "config.json", config], ["write_key", key_hex])
    # Read back by a later boot.
    read_config, read_key = store(device_root, tmp_path, ["read_json", "config.json"], ["read_key"])
    assert read_config == {"value": config, "state": "ok"}
    assert read_key == {"key": key_hex, "state": "ok"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "key"]  # no temp file left


def test_a_short_key_is_refused(device_root: Path, tmp_path: Path) -> None:
    (result,) = store(device_root, tmp_path, ["write_key", "00" * 15])
    assert "16" in str(result["error"])
    assert not (tmp_path / "key").exists()


def _envelope_of(device_root: Path, scratch: Path, name: str, value: object) -> bytes:
    """The bytes the store writes for value (written by the node, in a scratch folder)."""
    scratch.mkdir(exist_ok=True)
    store(device_root, scratch, ["write_json", name, value])
    return (scratch / name).read_bytes()


def test_torn_write_keeps_the_old_config(device_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    store(device_root, folder, ["write_json", "config.json", {"version": 1}])
    newer = _envelope_of(device_root, tmp_path / "scratch", "config.json", {"version": 2, "pad": "x" * 100})
    # Power lost while the temp file was half written: the rename never happened.
    (folder / "config.json.tmp").write_bytes(newer[: len(newer) // 2])
    read, cleaned, again = store(device_root, folder, ["read_json", "config.json"], ["clean"],
                                 ["read_json", "config.json"])
    assert read == {"value": {"version": 1}, "state": "ok"}
    assert cleaned == {"removed": ["config.json.tmp"]}
    assert again == read


def test_a_complete_temp_file_is_recovered_when_the_file_is_gone(device_root: Path, tmp_path: Path) -> None:
    # On FAT the store removes the old file before renaming: power lost in
    # between leaves only the (complete, hash-checked) temp file.
    folder = tmp_path / "node"
    folder.mkdir()
    newer = _envelope_of(device_root, tmp_path / "scratch", "config.json", {"version": 2})
    (folder / "config.json.tmp").write_bytes(newer)
    (read,) = store(device_root, folder, ["read_json", "config.json"])
    assert read == {"value": {"version": 2}, "state": "ok"}
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]


def test_garbage_reads_as_corrupt_never_as_a_crash(device_root: Path, tmp_path: Path) -> None:
    valid = _envelope_of(device_root, tmp_path / "scratch", "config.json", {"limit_ma": 32000})
    flipped = bytearray(valid)
    flipped[-3] ^= 0x01  # one bit of the payload
    cases = [
        # (what the file holds, why it must not be taken)
        (b"", "empty"),
        (b"\xff" * 700, "erased flash"),
        (b'{"limit_ma": 32000}', "JSON without the envelope (no hash)"),
        (bytes(flipped), "one flipped bit"),
        (valid[:-1], "one byte short"),
        (valid[:10], "cut inside the header"),
        (b"LM1 " + b"z" * 16 + b"\n{}", "a header whose hash is not hex"),
        (bytes(range(256)) * 3, "binary noise"),
    ]
    for content, why in cases:
        (tmp_path / "config.json").write_bytes(content)
        (tmp_path / "key").write_bytes(content)
        config, key = store(device_root, tmp_path, ["read_json", "config.json"], ["read_key"])
        assert config == {"value": None, "state": "corrupt"}, why
        assert key == {"key": None, "state": "corrupt"}, why


def test_a_valid_envelope_around_bad_content_is_still_refused(device_root: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # Written through the store, so the hash matches: what is inside is wrong.
    store(device_root, scratch, ["write", "config.json", "{not json"], ["write", "key", "00ff"])
    shutil.copy(scratch / "config.json", tmp_path / "config.json")
    shutil.copy(scratch / "key", tmp_path / "key")
    config, key = store(device_root, tmp_path, ["read_json", "config.json"], ["read_key"])
    assert config == {"value": None, "state": "corrupt"}
    assert key == {"key": None, "state": "corrupt"}  # a 2-byte key


def test_boot_counter_survives_one_corrupt_copy(device_root: Path, tmp_path: Path) -> None:
    store(device_root, tmp_path, ["floor", 7])
    (tmp_path / "boot.a").write_bytes(b"\x00garbage")
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot == {"boot_id": 8, "boot_state": "ok"}


def test_boot_counter_never_repeats_after_a_torn_counter_write(device_root: Path, tmp_path: Path) -> None:
    store(device_root, tmp_path, ["floor", 11])
    eleven = (tmp_path / "boot.a").read_bytes()
    store(device_root, tmp_path, ["floor", 12])
    twelve = (tmp_path / "boot.a").read_bytes()
    # Boot 12 wrote boot.a.tmp completely and lost power before the rename:
    # 12 may have been used (it was about to be), so the next boot is 13.
    (tmp_path / "boot.a").write_bytes(eleven)
    (tmp_path / "boot.b").write_bytes(eleven)
    (tmp_path / "boot.a.tmp").write_bytes(twelve)
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot["boot_id"] == 13
    # A half-written temp file is ignored: boot 14 follows.
    (tmp_path / "boot.b.tmp").write_bytes(twelve[:5])
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot["boot_id"] == 14


def test_boot_counter_lost_everywhere_restarts_and_says_so(device_root: Path, tmp_path: Path) -> None:
    store(device_root, tmp_path, ["floor", 40])
    for name in ("boot.a", "boot.b"):
        (tmp_path / name).write_bytes(b"LM1 0000000000000000\n41")
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot == {"boot_id": 1, "boot_state": "reset"}
    # And the next boot still says so: the loss outlives the boot that found it.
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot == {"boot_id": 2, "boot_state": "reset"}


def test_a_counter_that_is_not_a_number_is_ignored(device_root: Path, tmp_path: Path) -> None:
    store(device_root, tmp_path, ["write", "boot.a", "12x"], ["write", "boot.b", "-5"])
    (boot,) = store(device_root, tmp_path, ["boot"])
    assert boot == {"boot_id": 1, "boot_state": "reset"}


def test_re_adoption_raises_the_boot_floor(device_root: Path, tmp_path: Path) -> None:
    # The companion seeds the counter above the highest boot id the group saw.
    first, _, second = store(device_root, tmp_path, ["boot"], ["floor", 500], ["boot"])
    assert first["boot_id"] == 1 and second["boot_id"] == 501
    # A floor below the count changes nothing.
    _, third = store(device_root, tmp_path, ["floor", 3], ["boot"])
    assert third["boot_id"] == 502


def test_clean_puts_a_complete_temp_file_in_place_before_anyone_reads(device_root: Path, tmp_path: Path) -> None:
    # The runtime cleans at boot before it reads the config: on FAT the only
    # copy of a config whose rename did not happen is its temp file.
    folder = tmp_path / "node"
    folder.mkdir()
    newer = _envelope_of(device_root, tmp_path / "scratch", "config.json", {"version": 2})
    (folder / "config.json.tmp").write_bytes(newer)
    (folder / "hw.json.tmp").write_bytes(newer[:10])  # torn, and no hw.json: nothing to recover
    cleaned, read = store(device_root, folder, ["clean"], ["read_json", "config.json"])
    assert cleaned == {"removed": ["hw.json.tmp"]}
    assert read == {"value": {"version": 2}, "state": "ok"}
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]


def test_remove_and_clean_touch_only_their_files(device_root: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "hw.json.tmp").write_text("torn")
    store(device_root, tmp_path, ["write_json", "config.json", {}], ["write_key", "11" * 16])
    _, cleaned, key = store(device_root, tmp_path, ["remove", "config.json"], ["clean"], ["read_key"])
    assert cleaned == {"removed": ["hw.json.tmp"]}
    assert key["state"] == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key", "notes.txt"]


def test_clean_leaves_a_folder_named_like_a_temp_file_and_goes_on(device_root: Path, tmp_path: Path) -> None:
    # A folder is no torn write of ours: clean at boot must not fail on it (the node would not boot), and the
    # temp files after it are still settled.
    (tmp_path / "config.json.tmp").mkdir()
    (tmp_path / "hw.json.tmp").write_text("torn")
    (cleaned,) = store(device_root, tmp_path, ["clean"])
    assert cleaned == {"removed": ["hw.json.tmp"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json.tmp"]
