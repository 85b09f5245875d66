"""`loadmesh status HOST[:PORT]`: a real node's GET /status, as a short summary or as it came.

Every node serves GET /status without a token (docs/firmware.md, "The HTTP
API"). This is the installer's first look at a node just flashed and given
the Wi-Fi: did it join, what does it run, and why not. One plain HTTP GET
(companion/nodehttp.py) within one deadline, --timeout.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import nodehttp
from .nodehttp import NodeHttpError, parse_address

WHAT = ("read a node's GET /status over the network (no token needed): a short summary of what it runs and why, "
        "or with --json its answer as it came")


def add_arguments(status: argparse.ArgumentParser) -> None:
    """The status subcommand's arguments (cli.py registers it)."""
    nodehttp.add_host_argument(status)
    status.add_argument("--json", action="store_true",
                        help="print the node's answer as it came (canonical JSON, one line) instead of the summary")
    nodehttp.add_timeout_option(status, nodehttp.STATUS_TIMEOUT_S)


def main(args: argparse.Namespace) -> int:
    """`loadmesh status`: 0 with the summary (or the JSON) on stdout; 2 with one line on stderr."""
    where = str(args.host)
    try:
        host, port = parse_address(where)
        body = fetch(host, port, float(args.timeout))
        answer = nodehttp.decode(body, 200, "a node's /status")
        lines = [body.decode().strip()] if args.json else summary(answer)
    except NodeHttpError as exc:
        print(f"loadmesh status: {where}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while waiting: the installer knows why it stopped
        return 130
    for line in lines:
        print(line)
    return 0


def fetch(host: str, port: int, timeout_s: float) -> bytes:
    """The body of GET /status, answered 200, within timeout_s; NodeHttpError naming what failed."""
    status, reason, body = nodehttp.exchange(host, port, timeout_s, "GET", "/status")
    if status != 200:
        raise NodeHttpError(nodehttp.answered(status, reason, body))
    return body


# The summary: one line per topic, only what the answer holds, in values of the expected type
# (an unexpected one leaves its topic out rather than stop the rest).

_STATE_HINTS = {
    "unadopted": "waiting to be adopted (PUT /adopt); nothing driven",
    "no_config": "adopted, but no config it can run; nothing driven",
    "left_out": "its config has no member of its id; nothing driven",
    "halted": "stopped; its watchdog resets it",
}
_LABEL = 10
# A node whose boot counter was lost (docs/firmware.md, "Persistence"): what it does now, and the way out.
BOOT_RESET = ("its boot counter was lost and counts again from 1: its peers refuse its heartbeats (old_boot) "
              "below the boot ids they heard from it, and it takes no PUT (a PUT seen before could be sent "
              "again); adopt it again (remove its key file, reset it, loadmesh adopt) or copy a boot floor above "
              "its boot id and its peers' onto it (loadmesh node-files' boot.a)")
HEATING_KINDS = ("boiler", "valve")  # the nodes whose summary is their heating (companion/heatstatus.py)


def summary(status: dict[str, Any]) -> list[str]:
    """The lines `loadmesh status` prints for a node's /status answer."""
    if not isinstance(status.get("state"), str):
        raise NodeHttpError('answered JSON without a "state": not a loadmesh node\'s /status')
    lines: list[tuple[str, str]] = []
    node = _text(status, "node")
    kind = _text(status, "kind")
    state = _text(status, "state")
    head = (node or "(no id yet)") + (f" ({kind})" if kind else "") + ": " + state
    if state in _STATE_HINTS:
        head += ", " + _STATE_HINTS[state]
    uptime_ms = _count(status, "uptime_ms")
    if uptime_ms is not None:
        head += ", up " + _duration(uptime_ms)
    boot_id = _count(status, "boot_id")
    if boot_id is not None:
        head += f", boot {boot_id}"
    lines.append(("node", head))
    # bind_error: the mesh (or the HTTP API) listens on an address the node lacks, and every heartbeat it sends
    # is lost: the group never hears it, which nothing else in the answer says.
    for key, label in (("error", "ERROR"), ("hw_error", "HW ERROR"), ("bind_error", "BIND ERROR")):
        text = _text(status, key)
        if text:
            lines.append((label, text))
    if _text(status, "boot_state") == "reset" and state != "unadopted":  # an unadopted node has counted nothing yet
        lines.append(("BOOT", BOOT_RESET))
    hal = status.get("hal")
    if isinstance(hal, dict):
        wifi = hal.get("wifi")
        if isinstance(wifi, dict):
            lines.append(("wifi", _wifi(wifi)))
        clock = hal.get("clock")
        if isinstance(clock, dict):
            lines.append(("clock", _clock(clock)))
    # A valve or boiler node draws no current the group shares: its role takes nothing from the controller's
    # allocation (role_valve.py, role_boiler.py). Its current is 0 A, its failsafe (a cap on that current) is
    # one for a charger not heard: the controller's lines mean nothing there or mislead (its peers line says
    # only the boot ids kept). Its heating lines name what it does not hear that matters to it (a room's valve
    # node SILENT, the BOILER not heard).
    heating = kind in HEATING_KINDS
    if not heating:
        lines.extend(_control(status))
    from . import heatstatus  # here, not at the top: it uses this module's helpers

    lines.extend(heatstatus.lines(status))  # a valve or boiler node's heating: its role's view
    kept = _boot_ids_kept(status)
    if heating and kept:  # its peers line: only the boot ids it keeps (the counts mislead there, as above)
        lines.append(("peers", kept))
    config = status.get("config")
    if isinstance(config, dict):
        lines.append(("config", _config(config, status)))
    departed = _names(status, "departed") if not heating else []  # held raises: the allocation's, as above
    if departed:
        lines.append(("departed", ", ".join(departed) + " (removed from the config, may still draw: no raise "
                                                        "until gone)"))
    memory = status.get("memory")
    if isinstance(memory, dict):
        alloc, free = _count(memory, "alloc"), _count(memory, "free")
        parts = ([f"{alloc:,} bytes in use"] if alloc is not None else []) + \
            ([f"{free:,} free"] if free is not None else [])
        if parts:
            lines.append(("memory", ", ".join(parts)))
    ticks = status.get("ticks")
    if isinstance(ticks, dict):
        late, count, max_ms = _count(ticks, "late"), _count(ticks, "count"), _count(ticks, "max_ms")
        if late is not None:
            line = f"{late:,} late" + (f" of {count:,}" if count is not None else "")
            if max_ms is not None:
                line += f", the longest {max_ms} ms"
            skipped = _count(ticks, "skipped")
            if skipped:  # each a MemoryError the node ran on past (docs/firmware.md, "A tick out of memory")
                line += f"; {skipped:,} skipped for want of memory"
            lines.append(("ticks", line))
    return [(label.ljust(_LABEL) + text).rstrip() for label, text in lines]


def _wifi(wifi: dict[str, Any]) -> str:
    state = _text(wifi, "state") or "?"
    line = state
    hostname = _text(wifi, "hostname")
    address = _text(wifi, "address")
    if address:
        line += " at " + address
    if hostname:
        line += f" as {hostname}"
    rssi_dbm = wifi.get("rssi_dbm")
    if isinstance(rssi_dbm, int) and not isinstance(rssi_dbm, bool):
        line += f", {rssi_dbm} dBm"
    for_ms = _count(wifi, "for_ms")
    if for_ms is not None:
        line += ", for " + _duration(for_ms)
    reason = _text(wifi, "reason")
    if reason:
        line += ", last failure: " + reason
    counts = [f"{name} {value}" for name, value in
              (("tries", _count(wifi, "tries")), ("joins", _count(wifi, "joins")), ("lost", _count(wifi, "lost")))
              if value is not None]
    if counts:
        line += " (" + ", ".join(counts) + ")"
    return line


def _clock(clock: dict[str, Any]) -> str:
    synced_ago_ms = _count(clock, "synced_ago_ms")
    source = _text(clock, "source")
    if synced_ago_ms is not None:
        line = "synced " + _duration(synced_ago_ms) + " ago" + (f" from {source}" if source else "")
        if "week_ms" in clock and clock["week_ms"] is None:
            line += "; too long ago to trust: no time of week (schedules hold their setback)"
    else:
        line = "not synced"
        if clock.get("waiting") is True:
            line += ", waiting for an answer"
    counts = clock.get("counts")
    if isinstance(counts, dict):
        shown = [f"{name} {value}" for name, value in sorted(counts.items())
                 if isinstance(value, int) and not isinstance(value, bool)]
        if shown:
            line += " (" + ", ".join(shown) + ")"
    denied = _names(clock, "denied")
    if denied:
        line += "; denied by " + ", ".join(denied)
    return line


def _control(status: dict[str, Any]) -> list[tuple[str, str]]:
    """The controller's lines: current, failsafe, peers."""
    lines: list[tuple[str, str]] = []
    applied_ma, target_ma = _count(status, "applied_ma"), _count(status, "target_ma")
    parts = []
    for word, value, why in (("applied", applied_ma, _text(status, "reason")),
                             ("target", target_ma, _text(status, "alloc_reason"))):
        if value is not None:
            parts.append(f"{word} {_amperes(value)}" + (f" ({why})" if why else ""))
    if parts:
        lines.append(("current", ", ".join(parts)))
    silent = _names(status, "silent")
    failsafe = status.get("failsafe")
    if failsafe is True:
        lines.append(("FAILSAFE", "yes" + (": not hearing " + ", ".join(silent) if silent else "")))
    elif failsafe is False:
        lines.append(("failsafe", "no"))
    peers = status.get("peers")
    online = _count(status, "peers_online")
    if isinstance(peers, dict) and online is not None:
        # Those never heard are not in the table: the silent that draw current, and from a node that names them,
        # all of them (a valve or boiler node that never came is in no other field).
        unheard = _names(status, "peers_unheard")
        # The table also holds the members a new config removed while the node still listens to them: they
        # have their own line (departed), and peers_online counts only the config's members.
        known = (set(peers) | set(silent) | set(unheard)) - set(_names(status, "departed"))
        line = f"{online} of {len(known)} online"
        if unheard:
            line += "; never heard: " + ", ".join(unheard)
        disagree = _names(status, "disagree")
        if disagree:
            line += "; not agreeing yet: " + ", ".join(disagree)
        kept = _boot_ids_kept(status)
        if kept:
            line += "; " + kept
        lines.append(("peers", line))
    return lines


def _boot_ids_kept(status: dict[str, Any]) -> str:
    """The peers' boot ids kept in peerboots.json: the changes of them the node counted (counters.boot_changes: a
    peer first heard, a peer's reboot, a member forgotten; from a node that has them) and this boot's writes of
    them ("" from a node before `peer_boots_writes`): a write keeps the changes of a few seconds across its reboot,
    and is left out when the file holds them already (docs/firmware.md, "Persistence")."""
    writes = _count(status, "peer_boots_writes")
    if writes is None:
        return ""
    counters = status.get("counters")
    changes = _count(counters, "boot_changes") if isinstance(counters, dict) else None
    seen = f"{changes:,} change" + ("" if changes == 1 else "s") + " seen, " if changes is not None else ""
    return f"boot ids kept ({seen}{writes:,} write" + ("" if writes == 1 else "s") + " this boot)"


def _config(config: dict[str, Any], status: dict[str, Any]) -> str:
    version = _count(config, "version")
    line = f"version {version}" if version is not None else "version ?"
    announced = _text(config, "announced")
    if announced:
        line += f" ({announced})"
    merged = config.get("merged_with")
    if isinstance(merged, list) and merged:
        line += f", merged with {len(merged)} other" + ("s" if len(merged) > 1 else "")
    mismatch = _names(status, "config_mismatch")
    if mismatch:
        line += "; another config announced by " + ", ".join(mismatch)
    last_error = _text(config, "last_error")
    if last_error:
        line += "; last sync error: " + last_error
    return line


def _text(mapping: dict[str, Any], key: str) -> str:
    """A string value on one line, or "" (absent, null or not a string)."""
    value = mapping.get(key)
    return nodehttp.shown(value) if isinstance(value, str) else ""


def _count(mapping: dict[str, Any], key: str) -> int | None:
    """An integer value, or None (absent, null or not an integer)."""
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _names(mapping: dict[str, Any], key: str) -> list[str]:
    """A list of strings (node ids, servers), the rest left out."""
    value = mapping.get(key)
    return [nodehttp.shown(item) for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _amperes(ma: int) -> str:
    """Milliamps as amperes with one decimal, rounded half up in integers (16,950 mA: 17.0 A)."""
    tenths = (abs(ma) + 50) // 100
    return ("-" if ma < 0 else "") + f"{tenths // 10}.{tenths % 10} A"


def _duration(ms: int) -> str:
    """A duration as the installer reads it: 45 s, 12 min 5 s, 3 h 12 min, 2 d 4 h."""
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
