"""What every load role measures: its current per phase, through the core's sensor channels."""

from loadmesh.core import sensor

from .hal import Hal

# Raw CT readings become the draw the controller publishes (and, on a site
# with a mains meter, subtracts from the meter's reading): an absurd reading
# is refused, a good one is held for HOLD_MS (the ESP32 HAL renews each phase
# every third tick), and after that the phase is unknown (None), never 0.

MAX_MA = 200000  # above this a CT reading is absurd for a house
HOLD_MS = 1000


class CurrentChannels:
    """A sensor channel per phase for the load's measured current."""

    def __init__(self) -> None:
        self._channels = [sensor.Channel(0, MAX_MA, HOLD_MS) for _ in range(3)]
        self.last: list[int | None] = [None, None, None]

    def read(self, hal: Hal, now_ms: int) -> list[int | None]:
        """Take this tick's readings; the draw per phase in mA (None: unknown). A new list each tick."""
        raw = hal.current_ma()
        out: list[int | None] = [None, None, None]
        for phase in range(3):
            channel = self._channels[phase]
            value = raw[phase]
            if value is not None:
                channel.update(value, now_ms)
            out[phase] = channel.read(now_ms)[1]
        self.last = out
        return out

    def rejected(self) -> int:
        """Readings refused as absurd, over every phase."""
        total = 0
        for channel in self._channels:
            for reason in channel.counts:
                if reason != sensor.OK:
                    total += channel.counts[reason]
        return total
