"""Weekly heating schedules: the target now and the next block, from the time of week."""

from .errors import FieldError

# Time of week is in ms since Monday 00:00 local time; the node's clock (or the
# simulator) provides it. A loaded schedule is plain data:
#   {"default_target_dc": 160, "blocks": [[start_min, end_min, target_dc], ...]}
# with start and end in minutes of the week, sorted, never overlapping.

WEEK_MS = 7 * 24 * 60 * 60 * 1000
DAY_MIN = 24 * 60
WEEK_MIN = 7 * DAY_MIN
TARGET_MIN_DC = 50
TARGET_MAX_DC = 300
MAX_BLOCKS = 64


def load(raw: object, path: str) -> dict[str, object]:
    """Validate a schedule {"default_target_dc", "blocks": [{"days", "start_min", "end_min", "target_dc"}]}."""
    from . import fieldcheck as fc  # settings and state files only: not kept between reads
    mapping = fc.obj(raw, path)
    fc.only(mapping, ("default_target_dc", "blocks"), path)
    default_dc = fc.int_field(mapping, "default_target_dc", path, TARGET_MIN_DC, TARGET_MAX_DC)
    blocks_raw = fc.array(mapping.get("blocks", []), fc.join(path, "blocks"))
    blocks: list[list[int]] = []
    for position, block_raw in enumerate(blocks_raw):
        where = fc.index(fc.join(path, "blocks"), position)
        block = fc.obj(block_raw, where)
        fc.only(block, ("days", "start_min", "end_min", "target_dc"), where)
        start = fc.int_field(block, "start_min", where, 0, DAY_MIN - 1)
        end = fc.int_field(block, "end_min", where, start + 1, DAY_MIN)
        target = fc.int_field(block, "target_dc", where, TARGET_MIN_DC, TARGET_MAX_DC)
        days = fc.array_field(block, "days", fc.join(where, "days"))
        if not days:
            raise FieldError(fc.join(where, "days"), "is empty")
        seen: list[int] = []
        for day_position, day_raw in enumerate(days):
            day = fc.integer(day_raw, fc.index(fc.join(where, "days"), day_position), 0, 6)
            if day in seen:
                raise FieldError(fc.index(fc.join(where, "days"), day_position), str(day) + " is listed twice")
            seen.append(day)
            blocks.append([day * DAY_MIN + start, day * DAY_MIN + end, target, position])
    if len(blocks) > MAX_BLOCKS:
        raise FieldError(fc.join(path, "blocks"), str(len(blocks)) + " day blocks is more than " + str(MAX_BLOCKS))
    blocks.sort(key=lambda block: block[0])
    for position in range(1, len(blocks)):
        earlier, later = blocks[position - 1], blocks[position]
        if later[0] < earlier[1]:
            raise FieldError(fc.index(fc.join(path, "blocks"), later[3]),
                             "overlaps blocks[" + str(earlier[3]) + "]")
    return {"default_target_dc": default_dc, "blocks": [block[:3] for block in blocks]}


def _blocks(schedule: dict[str, object]) -> list[list[int]]:
    blocks = schedule["blocks"]
    assert isinstance(blocks, list)
    return blocks


def target_at(schedule: dict[str, object], week_ms: int) -> int:
    """The target in deci-degrees at week_ms: the block's, else the default."""
    minute = (week_ms % WEEK_MS) // 60000
    for start, end, target in _blocks(schedule):
        if start <= minute < end:
            return target
    default_dc = schedule["default_target_dc"]
    assert isinstance(default_dc, int)
    return default_dc


def next_block(schedule: dict[str, object], week_ms: int) -> tuple[int, int] | None:
    """(ms until the next block starts, its target), wrapping into next week; None without blocks."""
    now_ms = week_ms % WEEK_MS
    best: tuple[int, int] | None = None
    for start, _end, target in _blocks(schedule):
        starts_in_ms = (start * 60000 - now_ms) % WEEK_MS
        if starts_in_ms == 0:
            starts_in_ms = WEEK_MS  # starting this very ms: the current block; its next start is a week on
        if best is None or starts_in_ms < best[0]:
            best = (starts_in_ms, target)
    return best
