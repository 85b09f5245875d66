"""An installer's mistakes in the files the checks read: one line naming the file, the field and the value (or
where in the text), exit 2, no traceback, nothing written.

Each case is a mistake made by hand in a real file (tmp_path), run through
the command's entry in this process (tests/test_cli_install.py's way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadmesh.companion import cli
from loadmesh.companion.paths import SetupError

from .conftest import ROOT

EXAMPLES = ROOT / "examples"


def loadmesh(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`loadmesh ARGS` through its entry, in this process: (exit, stdout, stderr)."""
    code = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def example(name: str) -> dict[str, object]:
    value = json.loads((EXAMPLES / name).read_text())
    assert isinstance(value, dict)
    return value


# NaN and Infinity: CPython's json reads them as floats, the node's refuses the file. They were refused without
# a position ("NaN is not valid JSON"); now where they are, in jsontext's words, as any other fault of the text.
@pytest.mark.parametrize(("command", "text", "shown"), [
    ("hw-check", '{\n  "hal": "esp32",\n  "wdt_ms": NaN\n}',
     "'N' where a value belongs (NaN is not valid JSON): line 3 column 13 (char 32)"),
    ("node-check", '{"id": "evse1", "peers_http": {"evse2": ["10.0.0.2", Infinity]}}',
     "'I' where a value belongs (Infinity is not valid JSON): line 1 column 54 (char 53)"),
    ("config-hash", '{"group": "NaN", "version": -Infinity}',
     "no digit after '-' (-Infinity is not valid JSON): line 1 column 30 (char 29)"),
    ("allocate", '{"site": {"limit_ma": [1, 2,\r\n NaN]}}',
     "'N' where a value belongs (NaN is not valid JSON): line 2 column 2 (char 31)"),
])
def test_nan_and_infinity_are_named_where_they_are(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   command: str, text: str, shown: str) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(text.encode())
    assert loadmesh(capsys, command, path) == (2, "", f"loadmesh {command}: {path}: {shown}\n")


def test_nan_in_a_node_check_group_file_is_named_where_it_is(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    node, group = tmp_path / "node.json", tmp_path / "group.json"
    node.write_text(json.dumps(example("node-evse1.json")))
    group.write_text(json.dumps(example("group-evse.json"), indent=1).replace('"version": 1', '"version": NaN'))
    code, out, err = loadmesh(capsys, "node-check", node, "--group", group)
    assert (code, out) == (2, "")
    assert err == (f"loadmesh node-check: {group}: 'N' where a value belongs (NaN is not valid JSON): "
                   "line 3 column 13 (char 34)\n")


@pytest.fixture
def key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "garage.key"
    assert loadmesh(capsys, "key-new", path)[0] == 0
    return path


def node_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, key_file: Path,
               folder: Path) -> tuple[int, str, str]:
    node, group = tmp_path / "node.json", tmp_path / "group.json"
    node.write_text(json.dumps(example("node-evse1.json")))
    group.write_text(json.dumps(example("group-evse.json")))
    return loadmesh(capsys, "node-files", "--key", key_file, "--node", node, "--config", group, "--write", folder,
                    "--boot-floor", 7)


def test_node_files_that_cannot_write_one_file_leaves_the_others_as_they_were(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, key_file: Path) -> None:
    # The folder of an earlier node: its files stay as they were when this one's cannot all be written (config.json
    # is a folder here). node.json and boot.a were written over before the failure.
    folder = tmp_path / "evse1"
    folder.mkdir()
    before = {"node.json": b"LM1 earlier node\n{}", "boot.a": b"LM1 earlier\n9", "key": b"LM1 earlier key\n00"}
    for name, data in before.items():
        (folder / name).write_bytes(data)
    (folder / "config.json").mkdir()
    assert node_files(capsys, tmp_path, key_file, folder) == (
        2, "", f"loadmesh node-files: --write {folder / 'config.json'}: is a folder, where the node's file goes\n")
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == before
    assert sorted(path.name for path in folder.iterdir()) == ["boot.a", "config.json", "key", "node.json"]


@pytest.mark.parametrize("failure", ["a folder in the way", "a file not written"])
def test_node_files_whose_move_fails_half_way_puts_back_the_files_moved(tmp_path: Path, failure: str) -> None:
    # The four files are written, then moved over their names one by one: a move that failed after others were
    # made left new files beside old ones, the old ones lost. Here the third name is taken by a folder made after
    # the check (as another program could), or the write leaves the last file unwritten: the moves of key and
    # node.json are made, then undone.
    from loadmesh.companion import nodefolder
    from loadmesh.node import store

    folder = tmp_path / "evse1"
    folder.mkdir()
    before = {"node.json": b"LM1 earlier node\n{}", "boot.a": b"LM1 earlier\n9", "key": b"LM1 earlier key\n00"}
    for name, data in before.items():
        (folder / name).write_bytes(data)
    names = ("key", "node.json", store.CONFIG, "boot.a")

    def write(root: str) -> None:
        kept = store.Store(root)
        kept.write_key(bytes(32))
        kept.write_json("node.json", {"id": "evse1"})
        kept.write_json(store.CONFIG, {"group": "garage"})
        if failure == "a folder in the way":
            kept.write("boot.a", b"7")
            (folder / store.CONFIG).mkdir()
        # else: no boot.a, the last of the four

    with pytest.raises(OSError) as caught:
        nodefolder.write_all(folder, names, write)
    at_fault = store.CONFIG if failure == "a folder in the way" else "boot.a"
    assert caught.value.filename == str(folder / at_fault)
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == before
    left = sorted(path.name for path in folder.iterdir())
    assert left == sorted([*before, *([store.CONFIG] if failure == "a folder in the way" else [])])


def _unchangeable(folder: Path) -> bool:
    """folder made so that no name in it can be made, removed or renamed (mode 0500; for root, who passes that,
    the immutable attribute); False if this machine allows neither (a file system without the attribute)."""
    folder.chmod(0o500)
    probe = folder / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return True
    probe.unlink()
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    return done.returncode == 0


def _changeable(folder: Path) -> None:
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
    folder.chmod(0o700)


def test_node_files_whose_move_and_put_back_fail_keeps_the_old_files_and_says_where(tmp_path: Path) -> None:
    # The third move fails (a folder in the way), and the old files cannot be moved back: the folder that keeps
    # them is made unchangeable after they are kept there. They stay there, and the error says where; and beside
    # them the record of the files moved (alone in the folder of new files), by which the next write puts them back.
    from loadmesh.companion import nodefolder
    from loadmesh.node import store

    folder = tmp_path / "evse1"
    folder.mkdir()
    before = {"node.json": b"LM1 earlier node\n{}", "key": b"LM1 earlier key\n00"}
    for name, data in before.items():
        (folder / name).write_bytes(data)
    kept_in: list[Path] = []

    def write(root: str) -> None:
        kept = store.Store(root)
        kept.write_key(bytes(32))
        kept.write_json("node.json", {"id": "evse1"})
        kept.write_json(store.CONFIG, {"group": "garage"})
        (folder / store.CONFIG).mkdir()
        kept_in.extend(folder.glob(nodefolder.OLD_PREFIX + "*"))
        if not _unchangeable(kept_in[0]):
            pytest.skip("no way here to make a folder unchangeable")

    try:
        with pytest.raises(OSError) as caught:
            nodefolder.write_all(folder, ("key", "node.json", store.CONFIG), write)
    finally:
        for made in kept_in:
            _changeable(made)
    assert caught.value.filename == str(folder / store.CONFIG)
    assert str(caught.value.strerror).endswith(f": the old files are in {kept_in[0]}, and the next --write into "
                                              f"{folder} puts them back")
    assert {path.name: path.read_bytes() for path in kept_in[0].iterdir()} == before
    staging = [path for path in folder.iterdir() if path.name.startswith(nodefolder.NEW_PREFIX)]
    assert len(staging) == 1 and [path.name for path in staging[0].iterdir()] == [nodefolder.RECORD]
    assert sorted(path.name for path in folder.iterdir()) == sorted([kept_in[0].name, staging[0].name,
                                                                     store.CONFIG, *before])
    (folder / store.CONFIG).rmdir()
    said = nodefolder.write_all(folder, ("boot.a",), lambda root: store.Store(root).write("boot.a", b"7"))
    assert said[0] == (f"{kept_in[0]}: put back key, node.json, which a write into {folder} stopped half-way "
                       "(killed, or the machine stopped) had replaced: the folder is as it was before that write")
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.name != "boot.a"} == before


def test_node_files_writes_all_four_and_leaves_nothing_else(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                            key_file: Path) -> None:
    folder = tmp_path / "evse1"
    code, out, err = node_files(capsys, tmp_path, key_file, folder)
    assert (code, out) == (0, ""), err
    assert sorted(path.name for path in folder.iterdir()) == ["boot.a", "config.json", "key", "node.json"]
    assert (folder / "key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("command", ["node-files", "hw-check"])
def test_a_write_folder_that_is_a_file_is_named_so(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   key_file: Path, command: str) -> None:
    # mkdir said "File exists": as if the file were the trouble, not that it is no folder.
    folder = tmp_path / "out"
    folder.write_text("mine")
    if command == "node-files":
        code, _, err = node_files(capsys, tmp_path, key_file, folder)
    else:
        hw = tmp_path / "hw.json"
        hw.write_text(json.dumps(example("hw-evse.json")))
        code, _, err = loadmesh(capsys, "hw-check", hw, "--write", folder)
    assert (code, err) == (2, f"loadmesh {command}: --write {folder}: is a file, not a folder to write into\n")
    assert folder.read_text() == "mine"


@pytest.fixture
def piped() -> Iterator[Callable[[bytes], Path]]:
    """A file that can be read once, as a shell's <(...) gives one: the bytes in a pipe whose writer has closed,
    named /dev/fd/N. A second read gets nothing."""
    ends: list[int] = []

    def pipe_of(data: bytes) -> Path:
        read_end, write_end = os.pipe()
        ends.append(read_end)
        os.write(write_end, data)  # within a pipe's buffer: the examples are a few hundred bytes
        os.close(write_end)
        return Path(f"/dev/fd/{read_end}")

    yield pipe_of
    for end in ends:
        os.close(end)


@pytest.mark.parametrize(("command", "name", "kept"), [("hw-check", "hw-evse.json", "hw.json"),
                                                       ("node-check", "node-evse1.json", "node.json"),
                                                       ("heating-check", "heating-lounge.json", "heating.json")])
def test_a_check_reads_its_file_once_and_writes_what_it_checked(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, piped: Callable[[bytes], Path], command: str, name: str,
        kept: str) -> None:
    # The file was read to check it, then again for --write: a pipe (`hw-check <(...) --write DIR`) gave nothing
    # the second time, and a file changed in between was written unchecked.
    data = (EXAMPLES / name).read_bytes()
    given = tmp_path / name
    given.write_bytes(data)
    as_file = loadmesh(capsys, command, given, "--write", tmp_path / "from-file")
    assert as_file[0] == 0, as_file
    as_pipe = loadmesh(capsys, command, piped(data), "--write", tmp_path / "from-pipe")
    assert as_pipe[:2] == as_file[:2], as_pipe
    assert (tmp_path / "from-pipe" / kept).read_bytes() == (tmp_path / "from-file" / kept).read_bytes()


def test_put_heating_sends_the_bytes_it_checked(piped: Callable[[bytes], Path]) -> None:
    # Read once: the body sent is the file as checked (it was read again, and from a pipe sent empty).
    from loadmesh.companion import nodeput

    data = (EXAMPLES / "heating-lounge.json").read_bytes()
    assert nodeput.heating_file(piped(data)) == (data, "valve")


def test_a_check_whose_file_name_is_taken_by_a_folder_names_that_folder(capsys: pytest.CaptureFixture[str],
                                                                       tmp_path: Path) -> None:
    hw, folder = tmp_path / "hw.json", tmp_path / "out"
    hw.write_text(json.dumps(example("hw-evse.json")))
    (folder / "hw.json").mkdir(parents=True)
    code, _, err = loadmesh(capsys, "hw-check", hw, "--write", folder)
    assert (code, err) == (2, f"loadmesh hw-check: --write {folder / 'hw.json'}: is a folder, where the node's file "
                              "goes\n")
    assert sorted(path.name for path in folder.iterdir()) == ["hw.json"]


@pytest.mark.parametrize(("text", "shown"), [("null", "config: null is not an object"),
                                             ("[]", "config: a list is not an object")])
def test_a_heating_check_group_file_that_holds_no_object_is_refused(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path, text: str, shown: str) -> None:
    # A group file holding null was taken as no --group at all: the rooms went unchecked, and exit 0.
    heating, group = tmp_path / "heating.json", tmp_path / "group.json"
    heating.write_text(json.dumps(example("heating-lounge.json")))
    group.write_text(text)
    assert loadmesh(capsys, "heating-check", heating, "--group", group, "--write", tmp_path / "out") == (
        2, "", f"loadmesh heating-check: {group}: {shown}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("heating_name", "group_name", "shown"), [
    ("heating-lounge.json", "group-evse.json", 'members: has no boiler node in group "garage": no room is heated'),
    ("heating-boiler.json", "group-evse.json",
     'heating.rooms[0].id: "lounge" is not a valve node of group "garage" (its valve nodes: none)'),
])
def test_a_heating_check_names_the_group_and_room_in_the_files_words(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, heating_name: str, group_name: str, shown: str) -> None:
    # As the files say them ("lounge"), not as Python's repr shows them ('lounge').
    heating, group = tmp_path / "heating.json", tmp_path / "group.json"
    heating.write_text(json.dumps(example(heating_name)))
    group.write_text(json.dumps(example(group_name)))
    where = group if shown.startswith("members") else heating
    assert loadmesh(capsys, "heating-check", heating, "--group", group) == (
        2, "", f"loadmesh heating-check: {where}: {shown}\n")


def test_key_new_on_a_folder_says_it_is_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # It said "exists already ... remove the file first": advice for a key file, not for a folder.
    assert loadmesh(capsys, "key-new", tmp_path) == (
        2, "", f"loadmesh key-new: {tmp_path}: is a folder: give the key file's name, e.g. "
               f"{tmp_path / 'group.key'}\n")
    assert list(tmp_path.iterdir()) == []


def _renamed(name: str, path: tuple[str | int, ...], new: str) -> dict[str, object]:
    """Example file name with the key at path renamed to new (the installer's typo)."""
    raw = example(name)
    parent: object = raw
    for step in path[:-1]:
        parent = parent[step]  # type: ignore[index]
    assert isinstance(parent, dict)
    parent[new] = parent.pop(path[-1])
    return raw


# A misspelt field was named "is not a known field" alone: the installer looked the spelling up in the docs.
@pytest.mark.parametrize(("command", "name", "path", "typo", "shown"), [
    ("hw-check", "hw-evse.json", ("wdt_ms",), "wdt_mss", "hw.wdt_mss: is not a known field (did you mean wdt_ms?)"),
    ("hw-check", "hw-evse.json", ("pilot", "pwm_pin"), "pwm_pn",  # a required one: the parse without it says so
     "hw.pilot.pwm_pn: is not a known field (did you mean pwm_pin?)"),
    ("hw-check", "hw-evse.json", ("wifi", "ssid"), "SSID", "hw.wifi.SSID: is not a known field (did you mean ssid?)"),
    ("hw-check", "hw-evse.json", ("ct", 1, "ma_per_v"), "ma_per_volt",
     "hw.ct[1].ma_per_volt: is not a known field (did you mean ma_per_v?)"),
    ("node-check", "node-evse1.json", ("peers_http",), "peer_http",
     "node.peer_http: is not a known field (did you mean peers_http?)"),
    ("config-hash", "group-evse.json", ("members", 1, "min_ma"), "min_maa",
     "members[1].min_maa: is not a known field (did you mean min_ma?)"),
    ("config-hash", "group-evse.json", ("heartbeat_ms",), "heartbeat_msec",
     "heartbeat_msec: is not a known field (did you mean heartbeat_ms?)"),
    ("heating-check", "heating-lounge.json", ("room", "schedule", "blocks", 1, "start_min"), "start",
     "heating.room.schedule.blocks[1].start: is not a known field (did you mean start_min?)"),
    ("heating-check", "heating-boiler.json", ("load_sharing",), "loadsharing",
     "heating.loadsharing: is not a known field (did you mean load_sharing?)"),
    # No field spelt like it: no guess.
    ("config-hash", "group-evse.json", ("heartbeat_ms",), "beat", "beat: is not a known field"),
    ("hw-check", "hw-evse.json", ("wifi", "ssid"), "network", "hw.wifi.network: is not a known field"),
])
def test_a_misspelt_field_is_named_with_the_one_meant(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     command: str, name: str, path: tuple[str | int, ...],
                                                     typo: str, shown: str) -> None:
    file = tmp_path / name
    file.write_text(json.dumps(_renamed(name, path, typo), indent=2))
    assert loadmesh(capsys, command, file) == (2, "", f"loadmesh {command}: {file}: {shown}\n")


def test_a_misspelt_field_beside_the_real_one_is_not_offered_it(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    raw = example("hw-evse.json")
    raw["wdt_mss"] = 3000  # both: the real one is there already
    file = tmp_path / "hw.json"
    file.write_text(json.dumps(raw))
    assert loadmesh(capsys, "hw-check", file) == (2, "", f"loadmesh hw-check: {file}: hw.wdt_mss: is not a known "
                                                         "field\n")


def test_a_misspelt_field_in_a_wrapped_config_or_on_micropython_is_named_alike(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, device_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADMESH_DEVICE_TREE", str(device_root))
    file = tmp_path / "request.json"
    file.write_text(json.dumps({"config": _renamed("group-evse.json", ("site", "limit_ma"), "limit")}))
    shown = f"loadmesh config-hash: {file}: site.limit: is not a known field (did you mean limit_ma?)\n"
    assert loadmesh(capsys, "config-hash", file) == (2, "", shown)
    assert loadmesh(capsys, "config-hash", "--runtime", "micropython", file) == (2, "", shown)


def test_a_misspelt_field_in_a_heating_check_group_file_is_named_there(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    heating, group = tmp_path / "heating.json", tmp_path / "group.json"
    heating.write_text(json.dumps(example("heating-lounge.json")))
    group.write_text(json.dumps(_renamed("group-heating.json", ("peer_timeout_ms",), "peer_timeout")))
    assert loadmesh(capsys, "heating-check", heating, "--group", group) == (
        2, "", f"loadmesh heating-check: {group}: peer_timeout: is not a known field (did you mean "
               "peer_timeout_ms?)\n")


def test_the_commands_that_send_a_file_name_a_misspelt_field_with_the_one_meant(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, key_file: Path) -> None:
    # Refused before the network: nothing listens at port 9.
    node, group, heating = tmp_path / "node.json", tmp_path / "group.json", tmp_path / "heating.json"
    node.write_text(json.dumps(_renamed("node-evse1.json", ("http_port",), "http_prot")))
    group.write_text(json.dumps(_renamed("group-evse.json", ("failsafe", "current_ma"), "curent_ma")))
    heating.write_text(json.dumps(_renamed("heating-lounge.json", ("room", "mode"), "mdoe")))
    node_error = f"{node}: node.http_prot: is not a known field (did you mean http_port?)\n"
    group_error = f"{group}: failsafe.curent_ma: is not a known field (did you mean current_ma?)\n"
    assert loadmesh(capsys, "adopt", "127.0.0.1:9", "--code", "00" * 16, "--key", key_file, "--node", node) == (
        2, "", "loadmesh adopt: " + node_error)
    assert loadmesh(capsys, "put", "127.0.0.1:9", "config", group, "--key", key_file) == (
        2, "", "loadmesh put: " + group_error)
    assert loadmesh(capsys, "put", "127.0.0.1:9", "heating", heating, "--key", key_file) == (
        2, "", f"loadmesh put: {heating}: heating.room.mdoe: is not a known field (did you mean mode?)\n")
    good_node, good_group = tmp_path / "good-node.json", tmp_path / "good-group.json"
    good_node.write_text(json.dumps(example("node-evse1.json")))
    good_group.write_text(json.dumps(example("group-evse.json")))
    for node_file, group_file, error in ((node, good_group, node_error), (good_node, group, group_error)):
        assert loadmesh(capsys, "node-files", "--key", key_file, "--node", node_file, "--config", group_file,
                        "--write", tmp_path / "out") == (2, "", "loadmesh node-files: " + error)
    assert not (tmp_path / "out").exists()


def test_stage_never_deletes_a_folder_that_is_not_a_staged_tree(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # `stage --out ~/site` deleted the folder with everything in it, then staged the tree there.
    monkeypatch.setenv("LOADMESH_ROOT", str(ROOT))
    site = tmp_path / "site"
    site.mkdir()
    (site / "group.json").write_text("mine")
    assert loadmesh(capsys, "stage", "--out", site) == (
        1, "", f"stage: {site}: holds \"group.json\", which a staged device tree does not: the device tree replaces "
               "the whole folder, so give a new folder or one staged before\n")
    assert [path.name for path in site.iterdir()] == ["group.json"]
    (tmp_path / "notes").write_text("mine")
    code, _, err = loadmesh(capsys, "stage", "--out", tmp_path / "notes")
    assert (code, err) == (1, f"stage: {tmp_path / 'notes'}: is not a folder: the device tree is written as a folder "
                              "of its own (py/ and mpy/)\n")
    assert (tmp_path / "notes").read_text() == "mine"
    (tmp_path / "new.tmp").mkdir()  # where the tree is made first: someone's too
    (tmp_path / "new.tmp" / "draft").write_text("mine")
    code, _, err = loadmesh(capsys, "stage", "--out", tmp_path / "new")
    assert code == 1 and err.startswith(f"stage: {tmp_path / 'new.tmp'}: holds \"draft\", "), err
    assert (tmp_path / "new.tmp" / "draft").read_text() == "mine"


def test_stage_replaces_a_tree_it_staged(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADMESH_ROOT", str(ROOT))
    out = tmp_path / "device"
    for _ in range(2):
        code, out_text, err = loadmesh(capsys, "stage", "--out", out)
        assert (code, err) == (0, ""), err
        assert out_text.startswith("staged ")
    assert sorted(path.name for path in out.iterdir()) == ["mpy", "py"]


def test_a_path_a_command_uses_unchecked_is_named_in_one_line(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # loadmesh sim opens --trace before it starts a node: into a folder that is not there, a traceback.
    monkeypatch.setenv("LOADMESH_ROOT", str(ROOT))
    trace = tmp_path / "no-such-folder" / "run.jsonl"
    assert loadmesh(capsys, "sim", ROOT / "tools" / "scenarios" / "evse3_32a.yaml", "--trace", trace,
                    "--duration", 1) == (2, "", f"loadmesh sim: {trace}: No such file or directory\n")


def test_loadmesh_traceback_keeps_the_traceback_of_a_path_a_command_uses_unchecked(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug that fails on a named path read as the installer's mistake, in one line, and no way to see where.
    monkeypatch.setenv("LOADMESH_ROOT", str(ROOT))
    trace = tmp_path / "no-such-folder" / "run.jsonl"
    args = ["sim", str(ROOT / "tools" / "scenarios" / "evse3_32a.yaml"), "--trace", str(trace), "--duration", "1"]
    monkeypatch.setenv("LOADMESH_TRACEBACK", "0")  # 0 is as if not set
    assert loadmesh(capsys, *args)[0] == 2
    monkeypatch.setenv("LOADMESH_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError) as caught:
        cli.main(args)
    assert caught.value.filename == str(trace)
    assert capsys.readouterr() == ("", "")
    # A step of the setup missing (no checkout where LOADMESH_ROOT says): its one line, or its traceback.
    monkeypatch.setenv("LOADMESH_ROOT", str(tmp_path))
    with pytest.raises(SetupError, match="is not a loadmesh checkout"):
        cli.main(["demo", "--duration", "1"])
    monkeypatch.delenv("LOADMESH_TRACEBACK")
    code, out, err = loadmesh(capsys, "demo", "--duration", "1")
    assert (code, out) == (1, "") and err.startswith(f"loadmesh demo: LOADMESH_ROOT={tmp_path} is not a loadmesh")


def test_loadmesh_traceback_shows_the_traceback_on_the_command_line(tmp_path: Path) -> None:
    trace = tmp_path / "no-such-folder" / "run.jsonl"
    done = subprocess.run([sys.executable, "-m", "loadmesh.companion.cli", "sim",
                           str(ROOT / "tools" / "scenarios" / "evse3_32a.yaml"), "--trace", str(trace)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env=dict(os.environ, LOADMESH_ROOT=str(ROOT), LOADMESH_TRACEBACK="1"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("Traceback (most recent call last):\n"), done.stderr
    assert done.stderr.endswith(f"FileNotFoundError: [Errno 2] No such file or directory: '{trace}'\n")


@pytest.mark.parametrize("parent", ["no-such-folder", "a-file"])
def test_get_write_into_no_folder_is_refused_before_the_network(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                key_file: Path, parent: str) -> None:
    # It asked the node first (here, nothing listens at port 9: the refused connection was what it said).
    (tmp_path / "a-file").write_text("mine")
    target = tmp_path / parent / "group.json"
    assert loadmesh(capsys, "get", "127.0.0.1:9", "config", "--key", key_file, "--write", target) == (
        2, "", f"loadmesh get: {target}: no folder {tmp_path / parent} to write it into: make it first, or give a "
               "file in a folder that is there\n")
    assert (tmp_path / "a-file").read_text() == "mine"


@pytest.mark.parametrize(("setting", "shown"), [
    # Named as load_sharing.KEY "is not a known field": neither the option nor the name meant.
    ("tier_3_rest=900000", "--set tier_3_rest=900000: tier_3_rest is not a load-sharing setting (did you mean "
                           "tier_3_rest_ms?)"),
    ("nosuch=5", "--set nosuch=5: nosuch is not a load-sharing setting (docs/heating.md, \"`tiers`: load sharing\", "
                 "names them)"),
    # Was shown after a blank line (the end of a progress line not yet begun), without the --set.
    ("tier_1_max_pct=5", "--set tier_1_max_pct=5: load_sharing.tier_1_max_pct: 5 is out of range 10..100"),
])
def test_house_bench_names_the_set_it_refuses_in_one_line(capsys: pytest.CaptureFixture[str], setting: str,
                                                          shown: str) -> None:
    assert loadmesh(capsys, "house-bench", "--days", 1, "--set", "tier_3_rest_ms=600000", "--set", setting) == (
        2, "", f"loadmesh house-bench: {shown}\n")


def test_a_request_too_large_for_a_nodes_heap_is_said_in_one_line(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path, device_root: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # micropython-f32 runs with a node's heap: the file's text alone does not fit. It printed MicroPython's
    # traceback, its lines naming the runner's, after "micropython-f32 failed:".
    monkeypatch.setenv("LOADMESH_DEVICE_TREE", str(device_root))
    request = tmp_path / "pilot.json"
    request.write_text(json.dumps({"ma": [6000] * 20000}))
    code, out, err = loadmesh(capsys, "pilot", "--runtime", "micropython-f32", request)
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert err.startswith(f"loadmesh pilot: {request}: micropython-f32: MemoryError: ")
    assert err.endswith(": the request does not fit the 48wK heap a node has (--runtime micropython or cpython "
                        "take it)\n")
    assert loadmesh(capsys, "pilot", "--runtime", "micropython", request)[0] == 0


def test_a_heating_json_with_a_byte_order_mark_is_named_with_the_fix(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path, key_file: Path) -> None:
    # The node's words alone ("byte 0xef where a value belongs at byte 0"), where the other checks say what it is.
    heating = tmp_path / "heating.json"
    heating.write_bytes(b"\xef\xbb\xbf" + json.dumps(example("heating-lounge.json")).encode())
    shown = (f"{heating}: heating: the body is not JSON: byte 0xef where a value belongs at byte 0 (a byte order "
             "mark, U+FEFF: save the file as UTF-8 without one)\n")
    assert loadmesh(capsys, "heating-check", heating) == (2, "", "loadmesh heating-check: " + shown)
    assert loadmesh(capsys, "put", "127.0.0.1:9", "heating", heating, "--key", key_file) == (
        2, "", "loadmesh put: " + shown)


# Files this user may not read or write. Root passes every mode by its capabilities to override them
# (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): as root the commands run without those (setpriv, util-linux: out of
# the bounding and inheritable sets, so the command's process never has them), and the modes apply as to anyone.
SETPRIV = shutil.which("setpriv")
LOADMESH = str(Path(sys.executable).with_name("loadmesh"))
NO_OVERRIDE = ("--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search")


def as_plain_user(folder: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """loadmesh ARGS in folder, as a user whom file modes stop."""
    command = [LOADMESH, *[str(arg) for arg in args]]
    if os.geteuid() == 0:
        assert SETPRIV is not None, "setpriv (util-linux) runs the commands as root without its override of modes"
        command = [SETPRIV, *NO_OVERRIDE, *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=folder,
                          env=dict(os.environ, LOADMESH_ROOT=str(ROOT)), timeout=60)


@pytest.mark.parametrize(("command", "name"), [("hw-check", "hw-evse.json"), ("node-check", "node-evse1.json"),
                                               ("config-hash", "group-evse.json"),
                                               ("heating-check", "heating-lounge.json")])
def test_a_file_the_user_may_not_read_is_named_so(tmp_path: Path, command: str, name: str) -> None:
    file = tmp_path / name
    shutil.copyfile(EXAMPLES / name, file)
    file.chmod(0o000)  # not even its owner may read it
    done = as_plain_user(tmp_path, command, name)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"loadmesh {command}: {name}: Permission denied\n")


def test_a_write_folder_the_user_may_not_write_is_named_and_left_as_it_was(tmp_path: Path) -> None:
    # Named as the folder: not as the folder made inside it first (".loadmesh-write-..."), which could not be made.
    shutil.copyfile(EXAMPLES / "hw-evse.json", tmp_path / "hw.json")
    shutil.copyfile(EXAMPLES / "node-evse1.json", tmp_path / "node.json")
    shutil.copyfile(EXAMPLES / "group-evse.json", tmp_path / "group.json")
    assert as_plain_user(tmp_path, "key-new", "garage.key").returncode == 0
    shut = tmp_path / "node"
    shut.mkdir(mode=0o555)
    shut.chmod(0o555)
    done = as_plain_user(tmp_path, "hw-check", "hw.json", "--write", "node")
    assert (done.returncode, done.stderr) == (2, "loadmesh hw-check: --write node: Permission denied\n")
    done = as_plain_user(tmp_path, "node-files", "--key", "garage.key", "--node", "node.json", "--config",
                         "group.json", "--write", "node")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", "loadmesh node-files: --write node: Permission "
                                                                  "denied\n")
    assert list(shut.iterdir()) == []


HW_WORDS = "an ESP32 node's hw.json, its wiring: loadmesh hw-check checks it"
NODE_WORDS = "a node's node.json: loadmesh node-check checks it"
GROUP_WORDS = "a group config: loadmesh config-hash checks it"
HEATING_WORDS = "a valve or boiler node's heating.json: loadmesh heating-check checks it"


# One file given for another: the message named a field of it ("hw.http_port: is not a known field") as if it
# were misspelt, not that the file is another kind, and which check takes it.
@pytest.mark.parametrize(("command", "name", "shown"), [
    ("hw-check", "node-evse1.json", f"hw.http_port: is not a known field (the file looks like {NODE_WORDS})"),
    ("node-check", "hw-valve.json", f"node.clock: is not a known field (the file looks like {HW_WORDS})"),
    ("node-check", "group-evse.json", f"node.circuits: is not a known field (the file looks like {GROUP_WORDS})"),
    ("config-hash", "heating-boiler.json", f"boiler: is not a known field (the file looks like {HEATING_WORDS})"),
    ("heating-check", "node-evse1.json", "heating: has neither room (a valve node's settings) nor rooms (the boiler "
                                         f"node's) (the file looks like {NODE_WORDS})"),
])
def test_a_file_given_to_the_wrong_check_is_named_as_what_it_is(capsys: pytest.CaptureFixture[str],
                                                               command: str, name: str, shown: str) -> None:
    assert loadmesh(capsys, command, EXAMPLES / name) == (2, "", f"loadmesh {command}: {EXAMPLES / name}: {shown}\n")


def test_a_file_sent_for_another_is_named_as_what_it_is(capsys: pytest.CaptureFixture[str], key_file: Path) -> None:
    assert loadmesh(capsys, "put", "127.0.0.1:9", "config", EXAMPLES / "heating-lounge.json", "--key", key_file) == (
        2, "", f"loadmesh put: {EXAMPLES / 'heating-lounge.json'}: room: is not a known field (the file looks like "
               f"{HEATING_WORDS})\n")
    assert loadmesh(capsys, "adopt", "127.0.0.1:9", "--code", "00" * 16, "--key", key_file, "--node",
                    EXAMPLES / "hw-evse.json") == (
        2, "", f"loadmesh adopt: {EXAMPLES / 'hw-evse.json'}: node.ct: is not a known field (the file looks like "
               f"{HW_WORDS})\n")


def test_an_unknown_field_of_a_file_of_the_right_kind_is_not_called_another_kind(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    raw = example("node-evse1.json")
    raw["room"] = {}  # heating.json's: one key of another kind, beside this kind's own
    file = tmp_path / "node.json"
    file.write_text(json.dumps(raw))
    assert loadmesh(capsys, "node-check", file) == (2, "", f"loadmesh node-check: {file}: node.room: is not a known "
                                                           "field\n")


@pytest.mark.parametrize("command", ["hw-check", "node-check", "config-hash", "heating-check"])
def test_a_file_saved_as_utf16_is_named_so_with_the_fix(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       command: str) -> None:
    # Windows Notepad's "Unicode": it said only "not UTF-8 text (byte 0xff at offset 0)", or in heating-check the
    # node's "byte 0xff where a value belongs at byte 0".
    file = tmp_path / "file.json"
    file.write_bytes('{"id": "evse1"}'.encode("utf-16"))
    fault = ("heating: the body is not JSON: byte 0xff where a value belongs at byte 0 (UTF-16 text: save the file "
             "as UTF-8)" if command == "heating-check" else
             "not UTF-8 text (byte 0xff at offset 0): UTF-16 text: save the file as UTF-8")
    assert loadmesh(capsys, command, file) == (2, "", f"loadmesh {command}: {file}: {fault}\n")


def test_a_node_name_without_local_is_named_with_it(capsys: pytest.CaptureFixture[str]) -> None:
    # hw.json's wifi.hostname is the node's mDNS name without its .local: looked up as it is, it went to the LAN's
    # DNS, and the refusal said nothing of .local.
    name = "garage-evse-loadmesh-test"
    code, out, err = loadmesh(capsys, "status", name, "--timeout", 2)
    if code == 0 or "is not resolved" not in err:
        pytest.skip(f"this machine's resolver finds a name for {name}")
    assert (code, out) == (2, "")
    assert err.startswith(f"loadmesh status: {name}: the name \"{name}\" is not resolved ")
    assert err.endswith(f"; a node's name on mDNS ends in .local: {name}.local\n")


def test_key_new_into_a_folder_that_is_not_there_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # It said "No such file or directory" of the file it was asked to make.
    key = tmp_path / "keys" / "garage.key"
    assert loadmesh(capsys, "key-new", key) == (
        2, "", f"loadmesh key-new: {key}: no folder {tmp_path / 'keys'} to make it in: make the folder first\n")
    assert not (tmp_path / "keys").exists()


def test_a_misspelt_required_field_of_a_core_request_is_named_with_the_one_meant(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, device_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The README's scenario, min_ma misspelt: the core names it as unknown, and without it says min_ma is missing.
    monkeypatch.setenv("LOADMESH_DEVICE_TREE", str(device_root))
    load = {"id": "a", "phases": "L1", "min_maa": 6000, "max_ma": 16000, "step_ma": 1000, "priority": 0,
            "mode": "continuous", "demand": True, "online": True}
    scenario = tmp_path / "site.json"
    scenario.write_text(json.dumps({"site": {"phases": 1, "voltage_v": 230, "limit_ma": 40000, "safety_pct": 100},
                                    "loads": [load], "offline_reserve_ma": 6000}))
    shown = f"loadmesh allocate: {scenario}: loads[0].min_maa: is not a known field (did you mean min_ma?)\n"
    assert loadmesh(capsys, "allocate", scenario) == (2, "", shown)
    assert loadmesh(capsys, "allocate", "--runtime", "micropython-f32", scenario) == (2, "", shown)


def test_control_characters_in_a_nodes_words_are_shown_as_json_escapes_them() -> None:
    # One notation in the CLI: the node's answers are JSON, and its text was shown with Python's escapes
    # (\x07, \U000e0001) beside JSON's elsewhere. White space is one space, on one line.
    from loadmesh.companion import nodehttp

    assert nodehttp.shown("bell\x07 back\x08 esc\x1b zw\u200b tag\U000e0001 two\n\tlines") == (
        "bell\\u0007 back\\b esc\\u001b zw\\u200b tag\\udb40\\udc01 two lines")
    assert nodehttp.answered(500, "Internal Server Error", b'{"error": "a\\u0007b"}').endswith(": a\\u0007b")


def test_a_virtual_nodes_failure_is_said_in_words_with_where_it_was_raised(tmp_path: Path) -> None:
    # It was repr(exc), which reads as code: "ZeroDivisionError('division by zero')", "FileNotFoundError(2, ...)".
    from loadmesh.companion.sim.virtual import failure_words

    def tick() -> None:
        print(1 // 0)

    with pytest.raises(ZeroDivisionError) as divided:
        tick()
    assert failure_words(divided.value) == (
        f"ZeroDivisionError: integer division or modulo by zero (at test_cli_errors.py line "
        f"{tick.__code__.co_firstlineno + 1}, in tick)")
    with pytest.raises(OSError) as missing:
        os.open(tmp_path / "missing", os.O_RDONLY)
    # A driver's OSError as the node says one (hal.os_error_words), the same on every interpreter.
    assert failure_words(missing.value).startswith("OSError 2 No such file or directory (at test_cli_errors.py line ")
    assert failure_words(KeyError("rooms")) == "KeyError: 'rooms'"  # never raised: no line to name
