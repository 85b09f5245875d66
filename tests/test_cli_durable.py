"""A user's files as the real CLI writes them: whole after a power cut at any instant, and what a killed write left
put right by the next.

A power cut cannot be made here, but what decides is the order of the
system calls a real run makes (companion/durable.py): the data of the file
that ends under a name flushed before the rename (or link) that names it,
and the folder after it. strace shows them, for the command run as the
installer runs it. A write killed half-way is a real process, killed by
strace at the system call chosen (its fault injection: SIGKILL at the Nth
rename), or a folder left as such a kill leaves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadmesh.companion import nodefolder

from .conftest import ROOT
from .test_cli_install import answering_once

EXAMPLES = ROOT / "examples"
LOADMESH = Path(sys.executable).with_name("loadmesh")
STRACE = shutil.which("strace")
TRACED = "fsync,fdatasync,rename,renameat,renameat2,link,linkat"
NODE_FILES = ("key", "node.json", "config.json", "boot.a")

needs_strace = pytest.mark.skipif(STRACE is None, reason="strace is not installed")


def run(*args: object, cwd: Path, strace: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    command = [str(LOADMESH), *(str(arg) for arg in args)]
    if strace:
        assert STRACE is not None
        command = [STRACE, "-f", "-qq", *strace, "--", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def traced(tmp_path: Path, *args: object) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, list[str]]]]:
    """`loadmesh ARGS` run under strace: its result, and each traced call as (name, the paths it names, in order;
    for a flush the path of the file or folder flushed)."""
    log = tmp_path / "strace.log"
    done = run(*args, cwd=tmp_path, strace=("-y", "-o", str(log), "-e", "trace=" + TRACED))
    calls = []
    for line in log.read_text().splitlines():
        found = re.match(r"\d+\s+(\w+)\((.*)\)\s+= 0", line)
        if found is None:
            continue  # a call that failed, or an exit
        name, arguments = found.groups()
        if name in ("fsync", "fdatasync"):
            calls.append((name, re.findall(r"<([^>]*)>", arguments)))
        else:
            calls.append((name, re.findall(r'"((?:[^"\\]|\\.)*)"', arguments)))
    return done, calls


def assert_durable(calls: list[tuple[str, list[str]]], path: Path) -> None:
    """path was put under its name by a rename or link of a file flushed before it, and its folder flushed
    after it."""
    target = os.path.realpath(path)
    named = [at for at, (name, paths) in enumerate(calls)
             if name.startswith(("rename", "link")) and paths and os.path.realpath(paths[-1]) == target]
    assert named, f"{path} was not renamed or linked into place: {calls}"
    at = named[-1]
    source = os.path.realpath(calls[at][1][0])
    flushes = [(at_flush, flushed) for at_flush, (name, paths) in enumerate(calls)
               if name in ("fsync", "fdatasync") for flushed in paths]
    assert any(at_flush < at and flushed == source for at_flush, flushed in flushes), \
        f"{source} was not flushed before it was renamed to {path}: {calls}"
    assert any(at_flush > at and flushed == os.path.dirname(target) for at_flush, flushed in flushes), \
        f"the folder of {path} was not flushed after the rename: {calls}"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    from loadmesh.companion import groupkey

    path = tmp_path / "garage.key"
    groupkey.write_new(path)  # in this process: a run of key-new costs half a second
    return path


def node_files_args(key_file: Path, folder: Path) -> list[object]:
    return ["node-files", "--key", key_file, "--node", EXAMPLES / "node-evse1.json",
            "--config", EXAMPLES / "group-evse.json", "--write", folder, "--boot-floor", 7]


@needs_strace
def test_key_new_flushes_the_key_before_its_name_and_the_folder_after(tmp_path: Path) -> None:
    # It wrote the key in place, unflushed: a power cut soon after could leave an empty group.key, and the group's
    # only copy of its key lost once its nodes hold it.
    path = tmp_path / "garage.key"
    done, calls = traced(tmp_path, "key-new", path)
    assert done.returncode == 0, done.stderr
    assert_durable(calls, path)
    assert len(bytes.fromhex(path.read_text())) == 32
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["garage.key", "strace.log"]


@needs_strace
def test_node_files_flushes_each_file_before_its_move_and_the_folder_after(tmp_path: Path, key_file: Path) -> None:
    # Over the files of an earlier node: each is replaced by a rename, which only the flushes make durable.
    folder = tmp_path / "evse1"
    folder.mkdir()
    for name in NODE_FILES:
        (folder / name).write_bytes(b"LM1 earlier\n" + name.encode())
    done, calls = traced(tmp_path, *node_files_args(key_file, folder))
    assert done.returncode == 0, done.stderr
    for name in NODE_FILES:
        assert_durable(calls, folder / name)
    # The old files kept, on the disk, before the first is replaced: the only copy of those replaced after a cut.
    first_move = min(at for at, (name, paths) in enumerate(calls)
                     if name.startswith("rename") and os.path.dirname(paths[-1]) == str(folder))
    kept_flushed = [at for at, (name, paths) in enumerate(calls)
                    if name == "fsync" and os.path.basename(paths[0]).startswith(nodefolder.OLD_PREFIX)]
    assert kept_flushed and kept_flushed[0] < first_move, calls
    # Once all are moved, the kept files are no longer to be put back, on the disk before the command says it wrote.
    marked = [at for at, (name, paths) in enumerate(calls)
              if name.startswith("rename") and os.path.basename(paths[-1]).startswith(nodefolder.DONE_PREFIX)]
    assert marked and any(name == "fsync" and paths == [str(folder)] for name, paths in calls[marked[0] + 1:])
    assert sorted(entry.name for entry in folder.iterdir()) == sorted(NODE_FILES)


@needs_strace
@pytest.mark.parametrize(("command", "name"), [
    (("hw-check", EXAMPLES / "hw-evse.json"), "hw.json"),
    (("node-check", EXAMPLES / "node-evse1.json"), "node.json"),
    (("heating-check", EXAMPLES / "heating-lounge.json", "--group", EXAMPLES / "group-heating.json"),
     "heating.json"),
])
def test_a_checks_write_flushes_its_file_before_its_move_and_the_folder_after(tmp_path: Path,
                                                                              command: tuple[object, ...],
                                                                              name: str) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    (folder / name).write_bytes(b"LM1 earlier\n{}")
    done, calls = traced(tmp_path, *command, "--write", folder)
    assert done.returncode == 0, done.stderr
    assert_durable(calls, folder / name)


@needs_strace
def test_get_flushes_the_file_it_saves_before_its_name_and_the_folder_after(tmp_path: Path, key_file: Path) -> None:
    # It flushed the file before linking it, but not the folder after: the name could be gone after a cut, with
    # the command's word that it wrote.
    body = json.dumps({"config": {"version": 3}, "version": 3, "announced": "0123456789abcdef"}).encode()
    port, server = answering_once(f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    path = tmp_path / "group.json"
    done, calls = traced(tmp_path, "get", f"127.0.0.1:{port}", "config", "--key", key_file, "--write", path)
    server.join(5)
    assert done.returncode == 0, done.stderr
    assert_durable(calls, path)
    assert json.loads(path.read_text()) == {"version": 3}


@needs_strace
def test_a_key_new_killed_before_its_link_leaves_a_temporary_file_the_next_write_removes(tmp_path: Path) -> None:
    # Killed (SIGKILL) as it links its flushed temporary file to the key's name: no key, and the hidden
    # .garage.key.PID.XXXXXXXX.tmp stayed for good, the key in it. The next write into the folder (another
    # key-new) now removes it, its process gone, and says so.
    folder = tmp_path / "keys"
    folder.mkdir()
    killed = run("key-new", folder / "garage.key", cwd=tmp_path,
                 strace=("-o", os.devnull, "-e", "trace=link,linkat", "-e", "inject=link,linkat:signal=KILL:when=1"))
    assert killed.returncode != 0, killed.stderr
    left = list(folder.iterdir())
    assert len(left) == 1 and re.fullmatch(r"\.garage\.key\.[0-9]+\.[0-9a-f]{8}\.tmp", left[0].name), left
    pid = left[0].name.split(".")[3]

    done = run("key-new", folder / "house.key", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"loadmesh key-new: {left[0]}: removed, the temporary file of a write of {folder / 'garage.key'} that stopped "
        f"half-way (its process ({pid}) is gone, killed or the machine stopped)")
    assert [entry.name for entry in folder.iterdir()] == ["house.key"]


@needs_strace
def test_without_hard_links_a_file_made_under_the_name_meanwhile_is_never_replaced(tmp_path: Path) -> None:
    # As on FAT, which has no hard links (strace fails each link, EPERM), key-new renames its flushed temporary
    # file to the key's name; strace holds that rename 0.6 s, and another program makes a file under the name
    # meanwhile. key-new checked the name free, then renamed: the other program's file was replaced, lost. Now
    # the rename itself refuses a name that is taken (renameat2, RENAME_NOREPLACE): key-new says the file exists,
    # and the other file stays.
    assert STRACE is not None
    path = tmp_path / "garage.key"
    writing = subprocess.Popen(
        [STRACE, "-f", "-qq", "-o", os.devnull, "-e", "trace=link,linkat,rename,renameat,renameat2",
         "-e", "inject=link,linkat:error=EPERM", "-e", "inject=rename,renameat,renameat2:delay_enter=600000",
         "--", str(LOADMESH), "key-new", str(path)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not [entry for entry in tmp_path.iterdir() if entry.name.endswith(".tmp")]:
            assert time.monotonic() < deadline and writing.poll() is None, writing.stderr
            time.sleep(0.01)
        time.sleep(0.2)  # past where it checked the name, inside the rename held
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the name is still free
        os.write(descriptor, b"someone's\n")
        os.close(descriptor)
    finally:
        _, err = writing.communicate(timeout=60)
    assert writing.returncode == 2, err
    assert err.startswith(f"loadmesh key-new: {path}: exists already;"), err
    assert path.read_bytes() == b"someone's\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["garage.key"]


def test_only_a_stopped_writes_temporary_files_are_removed(tmp_path: Path) -> None:
    # Of write_new's temporary files in a folder, the next write removes those whose process is gone, or that
    # are older than an hour (the PID may be another process's by then), and never one a writer holds locked;
    # nor anything else.
    from loadmesh.companion import durable

    fcntl = pytest.importorskip("fcntl")  # no locks on Windows

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    gone, live = int(ended.stdout), os.getpid()
    names = {"gone": f".a.json.{gone}.0123abcd.tmp", "live": f".b.json.{live}.0123abcd.tmp",
             "live, old": f".c.json.{live}.0123abcd.tmp", "gone, locked": f".d.json.{gone}.0123abcd.tmp",
             "gone, old, locked": f".e.json.{gone}.0123abcd.tmp", "not ours": f".f.json.{gone}.tmp"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"{}")
    hour_ago = os.stat(tmp_path).st_mtime - durable.STALE_TEMPORARY_S - 60
    for which in ("live, old", "gone, old, locked"):
        os.utime(tmp_path / names[which], (hour_ago, hour_ago))
    held = [os.open(tmp_path / names[which], os.O_WRONLY) for which in ("gone, locked", "gone, old, locked")]
    try:
        for descriptor in held:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as write_new holds its own
        said = durable.write_new(tmp_path / "g.json", b"{}")
    finally:
        for descriptor in held:
            os.close(descriptor)
    assert [line.split(": removed, ")[0] for line in said] == [str(tmp_path / names["gone"]),
                                                               str(tmp_path / names["live, old"])]
    assert said[1].endswith(f"of {tmp_path / 'c.json'} that stopped half-way (written 61 minutes ago, killed or "
                            "the machine stopped)")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == sorted(
        [names[which] for which in ("live", "gone, locked", "gone, old, locked", "not ours")] + ["g.json"])


def _contents(folder: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}


def earlier_folder(tmp_path: Path, names: tuple[str, ...] = NODE_FILES) -> tuple[Path, dict[str, bytes]]:
    """The folder of an earlier node, evse1, holding names: it, and what each file holds."""
    folder = tmp_path / "evse1"
    folder.mkdir()
    before = {name: b"LM1 earlier\n" + name.encode() for name in names}
    for name, data in before.items():
        (folder / name).write_bytes(data)
    return folder, before


def kill_node_files(tmp_path: Path, key_file: Path, folder: Path, at_rename: int) -> None:
    """node-files into folder killed (SIGKILL) as it starts its at_rename-th rename: the store's 4 in its folder of
    new files come first, then one move per file (key, node.json, config.json, boot.a)."""
    killed = run(*node_files_args(key_file, folder), cwd=tmp_path,
                 strace=("-o", os.devnull, "-e", "trace=rename,renameat,renameat2",
                         "-e", f"inject=rename,renameat,renameat2:signal=KILL:when={at_rename}"))
    assert killed.returncode != 0, killed.stderr


@needs_strace
def test_a_node_files_killed_between_two_moves_is_put_back_by_the_next_write(tmp_path: Path,
                                                                             key_file: Path) -> None:
    # The folder of an earlier node; node-files for another is killed (SIGKILL, at its 6th rename: the store's 4
    # in the new folder, then key moved over the old key, node.json not yet): the folder holds the new key beside
    # the old node.json, the old key only in DIR/.loadmesh-old-*. The next run ignored that, and a check's
    # --write into the folder left the mix. Now it puts the old key back first, says so, and removes the rest.
    folder, before = earlier_folder(tmp_path)
    kill_node_files(tmp_path, key_file, folder, at_rename=6)
    assert (folder / "key").read_bytes() != before["key"]  # replaced: the old key is only in the kept folder
    kept = [entry for entry in folder.iterdir() if entry.name.startswith(nodefolder.OLD_PREFIX)]
    assert len(kept) == 1 and (kept[0] / "key").read_bytes() == before["key"]
    new = [entry for entry in folder.iterdir() if entry.name.startswith(nodefolder.NEW_PREFIX)]
    assert len(new) == 1

    done = run("hw-check", EXAMPLES / "hw-evse.json", "--write", folder, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[:2] == [
        f"loadmesh hw-check: {kept[0]}: put back key, which a write into {folder} stopped half-way (killed, or the "
        "machine stopped) had replaced: the folder is as it was before that write",
        f"loadmesh hw-check: {new[0]}: removed, the new files of a write into {folder} that stopped half-way"]
    after = _contents(folder)
    assert after.pop("hw.json").startswith(b"LM1 ")
    assert after == before
    assert sorted(entry.name for entry in folder.iterdir()) == sorted([*NODE_FILES, "hw.json"])


@needs_strace
def test_a_file_changed_by_hand_after_a_killed_node_files_is_kept_and_the_old_one_beside_it(tmp_path: Path,
                                                                                           key_file: Path) -> None:
    # Killed at its 7th rename: key and node.json moved, config.json and boot.a not. Then, before the next write,
    # the installer edits node.json (the killed run's) in place and config.json (still the old one) as an editor
    # saves it, a new file renamed over the name. The next write put both old files back over those edits. Now it
    # puts back only a file that is the killed run's (by the hash it recorded before its first move): key; the
    # two edited files stay, each old one beside it, under a name the message gives.
    folder, before = earlier_folder(tmp_path)
    kill_node_files(tmp_path, key_file, folder, at_rename=7)
    with (folder / "node.json").open("ab") as edited:
        edited.write(b"\n")
    node_json = (folder / "node.json").read_bytes()
    (folder / "config.json.swp").write_bytes(b"LM1 edited\nconfig.json")
    os.replace(folder / "config.json.swp", folder / "config.json")
    kept = next(folder.glob(nodefolder.OLD_PREFIX + "*"))
    suffix = kept.name[len(nodefolder.OLD_PREFIX):]

    done = run("hw-check", EXAMPLES / "hw-evse.json", "--write", folder, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stopped = f"a write into {folder} stopped half-way (killed, or the machine stopped)"
    assert [line for line in done.stderr.splitlines() if nodefolder.NEW_PREFIX not in line][:3] == [
        f"loadmesh hw-check: {kept}: put back key, which {stopped} had replaced",
        *(f"loadmesh hw-check: {folder / name}: kept as it is, changed since {stopped}; the file it held before "
          f"that write is beside it, as {folder / name}.loadmesh-old-{suffix}: compare the two, and remove the one "
          "not wanted" for name in ("config.json", "node.json"))]
    after = _contents(folder)
    assert after.pop("hw.json").startswith(b"LM1 ")
    assert after == {"key": before["key"], "boot.a": before["boot.a"],
                     "node.json": node_json, f"node.json.loadmesh-old-{suffix}": before["node.json"],
                     "config.json": b"LM1 edited\nconfig.json", f"config.json.loadmesh-old-{suffix}":
                     before["config.json"]}
    assert not [entry for entry in folder.iterdir() if entry.name.startswith(".")]


@needs_strace
def test_a_file_a_killed_node_files_added_is_removed_by_the_next_write(tmp_path: Path, key_file: Path) -> None:
    # A folder with key and node.json only; node-files killed at its 8th rename, config.json added under a name
    # that held no file, boot.a not yet. The next write left config.json there: a folder as no write left it.
    # Now it removes it, as the killed run's (by its recorded hash; changed by hand since, it would stay: below).
    folder, before = earlier_folder(tmp_path, ("key", "node.json"))
    kill_node_files(tmp_path, key_file, folder, at_rename=8)
    assert (folder / "config.json").exists() and not (folder / "boot.a").exists()
    kept = next(folder.glob(nodefolder.OLD_PREFIX + "*"))

    done = run("hw-check", EXAMPLES / "hw-evse.json", "--write", folder, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stopped = f"a write into {folder} stopped half-way (killed, or the machine stopped)"
    assert done.stderr.splitlines()[:2] == [
        f"loadmesh hw-check: {kept}: put back key, node.json, which {stopped} had replaced: the folder is as it was "
        "before that write",
        f"loadmesh hw-check: {folder / 'config.json'}: removed, added by {stopped}: the name held no file before it"]
    after = _contents(folder)
    assert after.pop("hw.json").startswith(b"LM1 ")
    assert after == before
    assert not [entry for entry in folder.iterdir() if entry.name.startswith(".")]


def test_a_write_settles_a_folder_left_as_a_kill_leaves_it_and_never_loses_a_kept_key(tmp_path: Path) -> None:
    # As a run killed after its second move leaves it (and as a failed put-back does): key and node.json new,
    # their old ones kept; config.json kept as a link to the same file (not replaced yet), boot.a kept as a copy
    # of the same bytes (a file system without hard links); the run's record of what it moves, with its new
    # files' hashes, in its folder of new files. Only key and node.json go back: the two others are there
    # already, and their kept copies are removed.
    from loadmesh.node import store

    folder = tmp_path / "evse1"
    folder.mkdir()
    before = {name: b"LM1 earlier\n" + name.encode() for name in NODE_FILES}
    new = {name: b"LM1 new\n" + name.encode() for name in NODE_FILES}
    for name, data in before.items():
        (folder / name).write_bytes(new[name] if name in ("key", "node.json") else data)
    kept = folder / (nodefolder.OLD_PREFIX + "abc123")
    kept.mkdir(mode=0o700)
    for name in ("key", "node.json", "boot.a"):
        (kept / name).write_bytes(before[name])
    os.link(folder / "config.json", kept / "config.json")
    staging = folder / (nodefolder.NEW_PREFIX + "def456")
    staging.mkdir()
    (staging / "config.json").write_bytes(new["config.json"])
    # And hw.json, which it added under a name that held no file, changed by hand since: it stays.
    (folder / "hw.json").write_bytes(b"LM1 edited\nhw.json")
    (staging / nodefolder.RECORD).write_text(json.dumps({
        "old": kept.name, "kept": list(NODE_FILES),
        "staged": {name: hashlib.sha256(data).hexdigest() for name, data in {**new, "hw.json": b"LM1 new"}.items()}}))
    done_folder = folder / (nodefolder.DONE_PREFIX + "0a1b2c")
    done_folder.mkdir()
    (done_folder / "key").write_bytes(b"LM1 long replaced\nkey")

    def write(root: str) -> None:
        store.Store(root).write_json("heating.json", {})

    said = nodefolder.write_all(folder, ("heating.json",), write)
    stopped = f"a write into {folder} stopped half-way (killed, or the machine stopped)"
    assert sorted(said) == sorted([
        f"{kept}: put back key, node.json, which {stopped} had replaced",
        f"{folder / 'hw.json'}: kept as it is, added by {stopped} and changed since",
        f"{staging}: removed, the new files of a write into {folder} that stopped half-way",
        f"{done_folder}: removed, the replaced files of a write into {folder} that stopped half-way"])
    after = _contents(folder)
    assert after.pop("heating.json").startswith(b"LM1 ")
    assert after == {**before, "hw.json": b"LM1 edited\nhw.json"}
    assert sorted(entry.name for entry in folder.iterdir()) == sorted([*NODE_FILES, "heating.json", "hw.json"])


def test_a_kept_key_whose_name_is_taken_by_a_folder_goes_beside_it(tmp_path: Path) -> None:
    # The kept key's name is taken by a folder now (not a file the stopped write moved there): it cannot go back,
    # and it is the only copy of that key. It goes beside the folder, under a name the line gives.
    folder = tmp_path / "evse1"
    folder.mkdir()
    (folder / "key").mkdir()
    kept = folder / (nodefolder.OLD_PREFIX + "abc123")
    kept.mkdir()
    (kept / "key").write_bytes(b"LM1 earlier\nkey")
    said = nodefolder.write_all(folder, ("node.json",), lambda root: Path(root, "node.json").write_bytes(b"LM1 n\n"))
    assert said == [
        f"{kept}: removed, left by a write into {folder} stopped before it replaced a file",
        f"{folder / 'key'}: kept as it is, changed since a write into {folder} stopped half-way (killed, or the "
        f"machine stopped); the file it held before that write is beside it, as "
        f"{folder / 'key.loadmesh-old-abc123'}: compare the two, and remove the one not wanted"]
    assert (folder / "key.loadmesh-old-abc123").read_bytes() == b"LM1 earlier\nkey"
    assert sorted(entry.name for entry in folder.iterdir()) == ["key", "key.loadmesh-old-abc123", "node.json"]


def test_a_kept_file_that_cannot_be_moved_stops_the_write_and_stays(tmp_path: Path) -> None:
    # As above, and the name beside is taken too: nothing is written over, and the kept key is the only copy of
    # that key. The write stops before writing anything, naming the path; the kept key stays where it is.
    folder = tmp_path / "evse1"
    folder.mkdir()
    (folder / "key").mkdir()
    (folder / "key.loadmesh-old-abc123").write_bytes(b"someone's")
    kept = folder / (nodefolder.OLD_PREFIX + "abc123")
    kept.mkdir()
    (kept / "key").write_bytes(b"LM1 earlier\nkey")
    with pytest.raises(OSError) as caught:
        nodefolder.write_all(folder, ("node.json",), lambda root: None)
    assert caught.value.filename == str(folder / "key.loadmesh-old-abc123")
    assert caught.value.strerror == f"is there already: the file kept in {kept / 'key'} is to go there"
    assert (kept / "key").read_bytes() == b"LM1 earlier\nkey"
    assert (folder / "key.loadmesh-old-abc123").read_bytes() == b"someone's"
    assert sorted(entry.name for entry in folder.iterdir()) == sorted(["key", "key.loadmesh-old-abc123", kept.name])


def test_two_writes_into_one_folder_at_once_are_refused(tmp_path: Path) -> None:
    # The second would take the first's folders for leftovers and put its old files back under it.
    folder = tmp_path / "evse1"
    folder.mkdir()
    said: list[str] = []

    def write(root: str) -> None:
        with pytest.raises(BlockingIOError) as caught:
            nodefolder.write_all(folder, ("hw.json",), lambda inner: None)
        said.append(f"{caught.value.filename}: {caught.value.strerror}")
        Path(root, "node.json").write_bytes(b"LM1 new\n{}")

    if sys.platform == "win32":
        pytest.skip("no folder lock on Windows")
    nodefolder.write_all(folder, ("node.json",), write)
    assert said == [f"{folder}: another loadmesh is writing into this folder: try again once it is done"]
    assert sorted(entry.name for entry in folder.iterdir()) == ["node.json"]


def test_what_a_write_settled_is_said_even_when_the_write_then_fails(tmp_path: Path) -> None:
    # A killed write's leftover folder is removed before this write, which then fails (hw.json's name is taken
    # by a folder). The user is told both: the removal happened whatever came after it.
    folder = tmp_path / "evse1"
    folder.mkdir()
    staging = folder / (nodefolder.NEW_PREFIX + "abc123")
    staging.mkdir()
    (staging / "node.json").write_bytes(b"LM1 new\n{}")
    (folder / "hw.json").mkdir()
    done = run("hw-check", EXAMPLES / "hw-evse.json", "--write", folder, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == (f"loadmesh hw-check: {staging}: removed, the new files of a write into {folder} that "
                        "stopped half-way")
    assert lines[1] == f"loadmesh hw-check: --write {folder / 'hw.json'}: is a folder, where the node's file goes"
    assert sorted(entry.name for entry in folder.iterdir()) == ["hw.json"]
