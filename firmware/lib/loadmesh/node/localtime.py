"""Local time from UTC by a POSIX TZ rule, in integers: the time of week the heating schedules run on."""

# describe from errors (always in the heap), not fieldcheck's: this module stays for the clock, and a fieldcheck
# it held would stay with it (runtime._OCCASIONAL lets fieldcheck go after boot).
from loadmesh.core.errors import FieldError, describe

# The house's time zone is a POSIX TZ string (hw.json clock.tz), the form the
# tz database gives for every zone's current rules as the last line of its
# file (tail -n1 /usr/share/zoneinfo/Europe/Berlin):
#
#   CET-1CEST,M3.5.0,M10.5.0/3      std name, offset west of UTC, dst name
#   GMT0BST,M3.5.0/1,M10.5.0        [, dst offset], start[/time], end[/time]
#   EST5EDT,M3.2.0,M11.1.0
#   UTC0, <+0530>-5:30, IST-1GMT0,M10.5.0,M3.5.0/1 (negative DST), ...
#
# Supported: what the tz database writes. Names of 3 or more letters, or
# quoted in <> (letters, digits, + and -); offsets [+|-]hh[:mm[:ss]] up to 24
# hours, the daylight one by default an hour ahead of standard time; rules
# Mmonth.week.day (week 5 is the last; day 0 is Sunday) with an optional
# /time, [+|-]hh[:mm[:ss]] up to 167 hours (RFC 8536: Gaza's M3.4.4/50), 02:00
# by default; the start's time is in standard time, the end's in daylight
# time. Refused, with an error naming the field and the value: zone names
# (Europe/Berlin, :Europe/Berlin: the node has no tz database), the Jn and n
# day rules (no zone has used them since 2022), and daylight saving time
# without its rules (POSIX leaves their default to the implementation).
#
# No floats and no time.localtime(): MicroPython's epoch is 2000 on the ESP32
# and 1970 on the unix port. Time here is Unix seconds (since 1970-01-01
# UTC), which sntp computes from the NTP seconds it receives; dates are days
# since 1970 (Howard Hinnant's civil-date algorithms), the same on CPython
# and both unix ports. Unix seconds are above 2^30, so long ints on an ESP32:
# sntp calls this once an hour and at each change of offset, not every tick.
#
# A rule is a tuple (std offset, dst offset, start, end): offsets in seconds
# east of UTC (local = UTC + offset; the string's sign is the other way),
# dst None for a fixed zone, start and end (month, week, weekday, seconds
# after local midnight).

DAY_S = 86400
WEEK_S = 7 * DAY_S
EXAMPLE = "CET-1CEST,M3.5.0,M10.5.0/3"
_DEFAULT_TIME_S = 7200  # 02:00
_MAX_OFFSET_H = 24
_MAX_TIME_H = 167
_MAX_TEXT = 64


def parse(text: object, path: str) -> tuple[int, int | None, tuple[int, int, int, int] | None,
                                             tuple[int, int, int, int] | None]:
    """The rule of a POSIX TZ string; FieldError (naming path and the value) for anything outside the subset."""
    if not isinstance(text, str) or not 1 <= len(text) <= _MAX_TEXT:
        raise FieldError(path, describe(text) + " is not a POSIX TZ string (e.g. " + EXAMPLE + ")")
    if text[0] == ":" or "/" in text.split(",")[0]:
        raise FieldError(path, describe(text) + " is a zone name; the node has no tz database: give the zone's "
                         "POSIX TZ string, the last line of its file: tail -n1 /usr/share/zoneinfo/"
                         + text.lstrip(":") + " (for Europe/Berlin: " + EXAMPLE + ")")
    reader = _Reader(text, path)
    reader.name()
    std = -reader.clock(_MAX_OFFSET_H, "UTC offset")
    if reader.done():
        return (std, None, None, None)
    reader.name()
    dst = std + 3600
    if not reader.done() and reader.peek() != ",":
        dst = -reader.clock(_MAX_OFFSET_H, "daylight offset")
    if reader.done():
        reader.fail("has daylight saving time without its rules (add ,start[/time],end[/time], e.g. "
                    ",M3.5.0,M10.5.0/3)")
    reader.expect(",")
    start = reader.rule()
    reader.expect(",")
    end = reader.rule()
    if not reader.done():
        reader.fail("has " + describe(text[reader.pos:]) + " after the end rule")
    return (std, dst, start, end)


class _Reader:
    """A cursor over a TZ string; each method reads one part or raises FieldError."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0

    def fail(self, problem: str) -> None:
        raise FieldError(self.path, describe(self.text) + " " + problem)

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            self.fail("needs " + describe(char) + " at position " + str(self.pos))
        self.pos += 1

    def name(self) -> None:
        text = self.text
        start = self.pos
        if self.peek() == "<":
            end = text.find(">", start)
            if end < 0:
                self.fail("has a name opened with < and not closed")
            for char in text[start + 1:end]:
                if not (_letter(char) or "0" <= char <= "9" or char in "+-"):
                    self.fail("has " + describe(char) + " in a quoted name (letters, digits, + and - only)")
            size = end - start - 1
            self.pos = end + 1
        else:
            while self.pos < len(text) and _letter(text[self.pos]):
                self.pos += 1
            size = self.pos - start
        if size < 3:
            self.fail("needs a zone name of 3 or more letters at position " + str(start))

    def number(self, digits: int, what: str) -> int:
        """An unsigned decimal of 1 to digits digits."""
        text = self.text
        start = self.pos
        while self.pos < len(text) and "0" <= text[self.pos] <= "9" and self.pos - start < digits:
            self.pos += 1
        if self.pos == start:
            self.fail("needs " + what + " at position " + str(start))
        return int(text[start:self.pos])

    def clock(self, max_hours: int, what: str) -> int:
        """[+|-]hh[:mm[:ss]] in seconds, signed as written."""
        sign = 1
        if self.peek() in ("+", "-"):
            sign = -1 if self.peek() == "-" else 1
            self.pos += 1
        start = self.pos
        hours = self.number(3, "a " + what)
        minutes = seconds = 0
        if self.peek() == ":":
            self.pos += 1
            minutes = self.number(2, "the minutes")
            if self.peek() == ":":
                self.pos += 1
                seconds = self.number(2, "the seconds")
        if hours > max_hours or minutes > 59 or seconds > 59:
            self.fail("has a " + what + " out of range at position " + str(start) + " (hours 0.." + str(max_hours)
                      + ", minutes and seconds 0..59)")
        return sign * (hours * 3600 + minutes * 60 + seconds)

    def rule(self) -> tuple[int, int, int, int]:
        """Mmonth.week.day[/time]."""
        if self.peek() != "M":
            self.fail("has a day rule other than Mmonth.week.day at position " + str(self.pos) + " (the Jn and n "
                      "forms are not supported: no zone uses them)")
        self.pos += 1
        month = self.number(2, "the month")
        self.expect(".")
        week = self.number(1, "the week")
        self.expect(".")
        weekday = self.number(1, "the day")
        if not (1 <= month <= 12 and 1 <= week <= 5 and weekday <= 6):
            self.fail("has a rule M" + str(month) + "." + str(week) + "." + str(weekday) + " out of range (month "
                      "1..12, week 1..5, day 0..6)")
        time_s = _DEFAULT_TIME_S
        if self.peek() == "/":
            self.pos += 1
            time_s = self.clock(_MAX_TIME_H, "rule time")
        return (month, week, weekday, time_s)


def _letter(char: str) -> bool:
    return "a" <= char <= "z" or "A" <= char <= "Z"


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    if month <= 2:
        year -= 1
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def year_of(days: int) -> int:
    """The year of the day days after 1970-01-01."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    shifted_month = (5 * doy + 2) // 153  # 0 is March
    return yoe + era * 400 + (1 if shifted_month >= 10 else 0)


def rule_day(rule: tuple[int, int, int, int], year: int) -> int:
    """The day (since 1970-01-01) a rule Mmonth.week.day names in year."""
    month, week, weekday = rule[0], rule[1], rule[2]
    first = days_from_civil(year, month, 1)
    # 1970-01-01 was a Thursday (4; 0 is Sunday).
    day = first + (weekday - (first + 4)) % 7 + (week - 1) * 7
    if week == 5 and day >= days_from_civil(year + 1 if month == 12 else year, month % 12 + 1, 1):
        day -= 7  # the fifth does not exist this month: the last is the fourth
    return day


def offset_at(rule: tuple[int, int | None, tuple[int, int, int, int] | None, tuple[int, int, int, int] | None],
              unix_s: int) -> tuple[int, int | None]:
    """(local offset east of UTC in s, unix_s of its next change or None) at unix_s.

    An offset applies from the instant of its change on. The changes of the
    standard-time year around unix_s and of the years either side are put in
    order, so a southern zone (DST over new year) and rule times past
    midnight, even by days, need no special case.
    """
    std, dst, start, end = rule
    if dst is None or start is None or end is None:
        return std, None
    year = year_of((unix_s + std) // DAY_S)
    changes = []
    for each in (year - 1, year, year + 1):
        # The start's time is standard time, the end's daylight time.
        changes.append((rule_day(start, each) * DAY_S + start[3] - std, 1))
        changes.append((rule_day(end, each) * DAY_S + end[3] - dst, 0))
    changes.sort()
    daylight = changes[0][1] == 0  # before the first change: the state it ends
    following = None
    for at_s, to_daylight in changes:
        if at_s <= unix_s:
            daylight = to_daylight == 1
        elif following is None:
            following = at_s
    return (dst if daylight else std), following


def week_s(local_s: int) -> int:
    """Seconds since Monday 00:00 of a local time given as seconds since 1970-01-01 00:00 local."""
    days = local_s // DAY_S
    return (days + 3) % 7 * DAY_S + local_s % DAY_S  # 1970-01-01 was a Thursday: 3 days after a Monday


def week_ms(rule: tuple[int, int | None, tuple[int, int, int, int] | None, tuple[int, int, int, int] | None],
            unix_s: int, ms: int = 0) -> int:
    """The local time of week in ms (Monday 00:00 = 0) at unix_s + ms / 1000."""
    offset, _ = offset_at(rule, unix_s)
    return week_s(unix_s + offset) * 1000 + ms
