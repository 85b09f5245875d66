# A stand-in for MicroPython's onewire module with DS18B20s on the bus, at the HAL boundary. The esp32 port
# freezes micropython-lib's onewire.py over extmod/modonewire.c: OneWire() makes its pin open drain with the
# chip's pull-up, reset(required) raises OneWireError only when required, select_rom() resets the bus again
# before MATCH ROM, and a bus nobody answers on reads all ones.
#
# The sensors answer as the DS18B20 datasheet's transaction has it: a reset, a ROM command (MATCH ROM and the
# 8-byte ROM id, or SKIP ROM), then the function command. A read of the scratchpad answers only right after
# MATCH ROM with a known id and READ SCRATCHPAD in the same transaction, else all ones (nobody drives the bus).
# bus["us"] counts the time on the bus at modonewire.c's timings: 960 us a reset (TIMING_RESET1..3), 70 us a
# bit written or read (TIMING_WRITE1..3, TIMING_READ1..3); bus["resets"] the resets. Only counts are kept, and a
# transaction's bytes until the next reset (what a sensor answers from): a node that reads its sensors for minutes
# grows nothing here (a list of every byte written did, by kilobytes, in the heap a script measured).
scratchpads = {}  # ROM id (bytes) -> the 9-byte scratchpad it answers
bus = {"present": True, "resets": 0, "us": 0}

RESET_US = 960
BIT_US = 70
MATCH_ROM = 0x55
SKIP_ROM = 0xCC
READ_SCRATCHPAD = 0xBE


class OneWireError(Exception):
    pass


class OneWire:
    SKIP_ROM = SKIP_ROM
    MATCH_ROM = MATCH_ROM

    def __init__(self, pin):
        self.pin = pin
        pin.init(pin.OPEN_DRAIN, pin.PULL_UP)
        self.transaction = []  # the bytes written since the last reset

    def reset(self, required=False):
        bus["resets"] += 1
        bus["us"] += RESET_US
        self.transaction = []
        if not bus["present"]:
            if required:
                raise OneWireError()
            return False
        return True

    def writebyte(self, value):
        bus["us"] += 8 * BIT_US
        self.transaction.append(value)

    def write(self, buf):
        for value in buf:
            self.writebyte(value)

    def select_rom(self, rom):
        self.reset()
        self.writebyte(MATCH_ROM)
        self.write(rom)

    def readinto(self, buf):
        bus["us"] += 8 * BIT_US * len(buf)
        sent = self.transaction
        data = b"\xff" * 9
        if bus["present"] and len(sent) == 10 and sent[0] == MATCH_ROM and sent[9] == READ_SCRATCHPAD:
            data = scratchpads.get(bytes(sent[1:9]), data)
        for index in range(len(buf)):
            buf[index] = data[index]
