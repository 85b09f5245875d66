"""Local time of week by POSIX TZ rules against CPython's zoneinfo, the same on CPython and both unix ports."""

from __future__ import annotations

import calendar
import datetime
import functools
import importlib.resources
import io
import json
import random
import struct
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmesh.core.errors import FieldError
from loadmesh.node import localtime

from . import mpnode

# The current rule of every zone in the tz database (2025b): the distinct last lines of its files.
FOOTERS = [
    "<-03>3", "CET-1CEST,M3.5.0,M10.5.0/3", "AST4", "GMT0", "<+05>-5", "EST5EDT,M3.2.0,M11.1.0",
    "CST6CDT,M3.2.0,M11.1.0", "CST6", "<+07>-7", "<+04>-4", "<+03>-3", "WAT-1", "EET-2EEST,M3.5.0/3,M10.5.0/4",
    "CAT-2", "<+12>-12", "EAT-3", "<+11>-11", "MST7", "<-04>4", "<+08>-8", "MST7MDT,M3.2.0,M11.1.0", "<+06>-6",
    "EST5", "AST4ADT,M3.2.0,M11.1.0", "AKST9AKDT,M3.2.0,M11.1.0", "<-05>5", "<+10>-10", "<+09>-9",
    "WET0WEST,M3.5.0/1,M10.5.0", "<+13>-13", "PST8PDT,M3.2.0,M11.1.0", "MSK-3", "GMT0BST,M3.5.0/1,M10.5.0",
    "AEST-10AEDT,M10.1.0,M4.1.0/3", "SAST-2", "CST-8", "<-10>10", "<-02>2", "<+01>-1", "WIB-7", "SST11",
    "NZST-12NZDT,M9.5.0,M4.1.0/3", "KST-9", "HST10", "EET-2EEST,M3.4.4/50,M10.4.4/50", "EET-2", "ChST-10", "CET-1",
    "AEST-10", "ACST-9:30ACDT,M10.1.0,M4.1.0/3", "<-11>11", "<-09>9", "<-08>8", "<-06>6",
    "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "<-01>1", "<+14>-14", "<+0630>-6:30", "WITA-8", "WIT-9", "UTC0", "PST-8",
    "PKT-5", "NST3:30NDT,M3.2.0,M11.1.0", "MET-1MEST,M3.5.0,M10.5.0/3", "JST-9", "IST-5:30",
    "IST-2IDT,M3.4.4/26,M10.5.0", "IST-1GMT0,M10.5.0,M3.5.0/1", "HST10HDT,M3.2.0,M11.1.0", "HKT-8",
    "EET-2EEST,M4.5.5/0,M10.5.4/24", "EET-2EEST,M3.5.0/0,M10.5.0/0", "EET-2EEST,M3.5.0,M10.5.0/3",
    "CST5CDT,M3.2.0/0,M11.1.0/1", "AWST-8", "ACST-9:30", "<-12>12", "<-0930>9:30", "<-07>7",
    "<-06>6<-05>,M9.1.6/22,M4.1.6/22", "<-04>4<-03>,M9.1.6/24,M4.1.6/24", "<-03>3<-02>,M3.2.0,M11.1.0",
    "<-01>1<+00>,M3.5.0/0,M10.5.0/1", "<-00>0", "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
    "<+11>-11<+12>,M10.1.0,M4.1.0/3", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "<+0845>-8:45", "<+0545>-5:45",
    "<+0530>-5:30", "<+0430>-4:30", "<+0330>-3:30", "<+02>-2", "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
    # Beyond the database: seconds in offsets and times, explicit signs, a DST of 30 minutes.
    "ABC+3:15:20DEF+2:45:10,M3.2.3/1:02:03,M11.1.4/-2:30:30", "<+0030>-0:30<+01>-1,M4.1.0/12,M9.5.6/167",
]
YEARS = [*range(2025, 2041), 2099, 2100, 2101]  # 2036: NTP's era wraps; 2100 is not a leap year


def _tzif(footer: str) -> bytes:
    """A TZif (version 2) file with no transitions and footer as its rule: zoneinfo then runs the rule alone."""
    def block() -> bytes:
        counts = struct.pack(">6l", 0, 0, 0, 0, 1, 4)  # isutcnt isstdcnt leapcnt timecnt typecnt charcnt
        return b"TZif2" + b"\0" * 15 + counts + struct.pack(">lBB", 0, 0, 0) + b"UTC\0"
    return block() + block() + b"\n" + footer.encode() + b"\n"


def _zone_week_s(zone: datetime.tzinfo, unix_s: int) -> int:
    local = datetime.datetime.fromtimestamp(unix_s, zone)
    return local.weekday() * 86400 + local.hour * 3600 + local.minute * 60 + local.second


def _instants(footer: str, rnd: random.Random) -> list[int]:
    """Each year's changes, a second either side, and instants drawn through the year."""
    rule = localtime.parse(footer, "tz")
    std, dst, start, end = rule
    found: list[int] = []
    for year in YEARS:
        if dst is not None and start is not None and end is not None:
            for change, offset in ((start, std), (end, dst)):
                at_s = localtime.rule_day(change, year) * 86400 + change[3] - offset
                found += [at_s - 1, at_s, at_s + 1]
        first = calendar.timegm((year, 1, 1, 0, 0, 0))
        found += [first + rnd.randrange(366 * 86400) for _ in range(3)]
    return found


@functools.cache
def _vectors() -> list[tuple[str, list[int], list[int]]]:
    """(footer, instants, zoneinfo's week_ms at each)."""
    rnd = random.Random(20250329)
    vectors = []
    for footer in FOOTERS:
        zone = zoneinfo.ZoneInfo.from_file(io.BytesIO(_tzif(footer)))
        instants = _instants(footer, rnd)
        vectors.append((footer, instants, [_zone_week_s(zone, u) * 1000 for u in instants]))
    return vectors


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_week_ms_is_zoneinfos_on_every_runtime(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    vectors = _vectors()
    path = tmp_path / "vectors.jsonl"
    path.write_text("".join(json.dumps(["week", footer, instants]) + "\n" for footer, instants, _ in vectors))
    out = mpnode.run_on(interpreter, "localtime_check.py", str(path), device_root=device_root)
    assert len(out) == len(vectors)
    checked = 0
    for (footer, instants, expected), got in zip(vectors, out, strict=True):
        for unix_s, want, have in zip(instants, expected, got, strict=True):  # type: ignore[call-overload]
            assert have == want, f"{footer} at {unix_s}: {have} (zoneinfo {want}) on {interpreter}"
            checked += 1
    assert checked > 5000


def _zone_file(name: str) -> bytes:
    """The TZif file zoneinfo reads for name: the system's database first, else the tzdata package."""
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / name
        if path.is_file():
            return path.read_bytes()
    return importlib.resources.files("tzdata").joinpath("zoneinfo", *name.split("/")).read_bytes()


def _footer(name: str) -> str:
    return _zone_file(name).rstrip(b"\n").rsplit(b"\n", 1)[-1].decode()


REAL_ZONES = ["Europe/Berlin", "Europe/London", "Europe/Dublin", "America/New_York", "America/St_Johns",
              "America/Santiago", "America/Nuuk", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Chatham",
              "Asia/Kolkata", "Asia/Jerusalem", "Africa/Cairo", "Antarctica/Troll"]


@pytest.mark.parametrize("name", REAL_ZONES)
def test_a_zones_tz_string_gives_the_zones_time(name: str) -> None:
    # The rule the installer copies from the zone's file gives what the zone itself gives, 2025 to 2032.
    zone = zoneinfo.ZoneInfo(name)
    rule = localtime.parse(_footer(name), "tz")
    rnd = random.Random(name)
    for year in range(2025, 2033):
        first = calendar.timegm((year, 1, 1, 0, 0, 0))
        for unix_s in [first + rnd.randrange(366 * 86400) for _ in range(40)]:
            assert localtime.week_ms(rule, unix_s) == _zone_week_s(zone, unix_s) * 1000, (name, unix_s)


def test_every_zone_of_the_installed_database_is_accepted() -> None:
    names = sorted(zoneinfo.available_timezones())
    assert len(names) > 300
    for name in names:
        footer = _footer(name)
        if footer:  # a few links and legacy files carry none
            localtime.parse(footer, "tz")


BAD = [
    ("Europe/Berlin", "is a zone name; the node has no tz database: give the zone's POSIX TZ string, the last line "
     "of its file: tail -n1 /usr/share/zoneinfo/Europe/Berlin (for Europe/Berlin: CET-1CEST,M3.5.0,M10.5.0/3)"),
    (":America/New_York", "is a zone name; the node has no tz database: give the zone's POSIX TZ string, the last "
     "line of its file: tail -n1 /usr/share/zoneinfo/America/New_York (for Europe/Berlin: "
     "CET-1CEST,M3.5.0,M10.5.0/3)"),
    ("", "is not a POSIX TZ string (e.g. CET-1CEST,M3.5.0,M10.5.0/3)"),
    ("CET-1CEST", "has daylight saving time without its rules (add ,start[/time],end[/time], e.g. "
     ",M3.5.0,M10.5.0/3)"),
    ("EST5EDT,J60,J300", "has a day rule other than Mmonth.week.day at position 8 (the Jn and n forms are not "
     "supported: no zone uses them)"),
    ("EST5EDT,59,300", "has a day rule other than Mmonth.week.day at position 8 (the Jn and n forms are not "
     "supported: no zone uses them)"),
    ("CET", "needs a UTC offset at position 3"),
    ("C1", "needs a zone name of 3 or more letters at position 0"),
    ("<+05-5", "has a name opened with < and not closed"),
    ("<+0_5>-5", "has \"_\" in a quoted name (letters, digits, + and - only)"),
    ("CET-25", "has a UTC offset out of range at position 4 (hours 0..24, minutes and seconds 0..59)"),
    ("CET-1:60", "has a UTC offset out of range at position 4 (hours 0..24, minutes and seconds 0..59)"),
    ("CET-1CEST,M13.5.0,M10.5.0", "has a rule M13.5.0 out of range (month 1..12, week 1..5, day 0..6)"),
    ("CET-1CEST,M3.5.0/168,M10.5.0", "has a rule time out of range at position 17 (hours 0..167, minutes and "
     "seconds 0..59)"),
    ("CET-1CEST;M3.5.0,M10.5.0", "needs a daylight offset at position 9"),
    ("CET-1CEST,M3.5.0", "needs \",\" at position 16"),
    ("CET-1CEST,M3.5.0,M10.5.0/3,", "has \",\" after the end rule"),
]


@pytest.mark.parametrize("interpreter", mpnode.SCRIPT_RUNTIMES)
def test_refused_strings_say_why_the_same_everywhere(interpreter: str, device_root: Path, tmp_path: Path) -> None:
    good = ["UTC0", "<+0530>-5:30", "GMT0BST,M3.5.0/1,M10.5.0"]
    path = tmp_path / "parse.jsonl"
    path.write_text("".join(json.dumps(["parse", text]) + "\n" for text in [*good, *(t for t, _ in BAD)]))
    out = mpnode.run_on(interpreter, "localtime_check.py", str(path), device_root=device_root)
    assert out[:3] == [{"rule": [0, None, None, None]}, {"rule": [19800, None, None, None]},
                       {"rule": [0, 3600, [3, 5, 0, 3600], [10, 5, 0, 7200]]}]
    for (text, problem), result in zip(BAD, out[3:], strict=True):
        assert result == {"error": "tz: " + json.dumps(text) + " " + problem}  # as hw.json says it
        with pytest.raises(FieldError) as raised:
            localtime.parse(text, "tz")
        assert str(raised.value) == result["error"]


def test_a_value_that_is_no_string_is_refused() -> None:
    with pytest.raises(FieldError, match=r"^hw.clock.tz: 5 is not a POSIX TZ string"):
        localtime.parse(5, "hw.clock.tz")
    with pytest.raises(FieldError, match=r"is not a POSIX TZ string"):
        localtime.parse("A" * 65, "tz")


@given(st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2200, 12, 31)))
def test_civil_dates(date: datetime.date) -> None:
    days = (date - datetime.date(1970, 1, 1)).days
    assert localtime.days_from_civil(date.year, date.month, date.day) == days
    assert localtime.year_of(days) == date.year
    assert localtime.week_s(days * 86400 + 45296) == date.weekday() * 86400 + 45296  # 12:34:56


@given(st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=5),
       st.integers(min_value=0, max_value=6), st.integers(min_value=1970, max_value=2200))
def test_a_rules_day_is_that_weekday_in_that_month(month: int, week: int, weekday: int, year: int) -> None:
    date = datetime.date(1970, 1, 1) + datetime.timedelta(days=localtime.rule_day((month, week, weekday, 0), year))
    assert (date.year, date.month) == (year, month)
    assert (date.weekday() + 1) % 7 == weekday  # POSIX counts from Sunday
    if week < 5:
        assert (date.day - 1) // 7 == week - 1
    else:
        assert (date + datetime.timedelta(days=7)).month != month  # the last one
